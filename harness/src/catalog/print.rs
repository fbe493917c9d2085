//! Output of `zbx-conform catalog`: an aligned table for people, JSON for scripts.

use super::{CatalogRow, Unverified};
use serde_json::{json, Value};

/// The widest line the table prints: it must read in a terminal and a CI log without
/// side-scrolling. Recognisers and schema paths can be hundreds of characters long, so
/// they are not columns: `--verbose` shows them under each row, wrapped.
pub const WIDTH: usize = 100;

const HEADERS: [&str; 6] = ["FAMILY", "VERSION", "KIND", "MODE", "FROM→TO", "UNVERIFIED"];

/// What the UNVERIFIED column says for a row: nothing, `whole kind`, or how many
/// sections (named in the notes below the table, and under the row with `--verbose`).
fn unverified_cell(entries: &[Unverified]) -> String {
    let sections: usize = entries.iter().map(|u| u.sections.len()).sum();
    if entries.iter().any(|u| u.sections.is_empty()) {
        "whole kind".to_string()
    } else if sections == 1 {
        "1 section".to_string()
    } else if sections > 1 {
        format!("{sections} sections")
    } else {
        String::new()
    }
}

/// The rows as an aligned text table, one line per row, with a header line. Columns are
/// padded by character count (the arrow is one character), the last one is not padded.
/// With `verbose`, each row is followed by its recogniser, schema and unverified
/// sections on indented lines. When rows carry `unverified` entries, their reasons
/// follow the table, once each. Every line fits [`WIDTH`] (long text wraps).
pub fn table(rows: &[CatalogRow], verbose: bool) -> String {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.family.clone(),
                r.version.clone(),
                r.kind.clone(),
                r.mode.clone(),
                format!("{}→{}", r.from, r.to),
                unverified_cell(&r.unverified),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    push_line(&mut out, &HEADERS.map(str::to_string), &widths);
    for (row, r) in cells.iter().zip(rows) {
        push_line(&mut out, row, &widths);
        if verbose {
            details(&mut out, r);
        }
    }
    let mut notes: Vec<String> = Vec::new();
    for r in rows {
        for u in &r.unverified {
            let what = if u.sections.is_empty() {
                String::new()
            } else {
                format!(" ({})", u.sections.join(", "))
            };
            // A version no real peer confirmed marks every kind alike: say it once.
            let note = if u.reason.starts_with(super::DOCUMENTED_NOT_MEASURED) {
                format!("every kind at {}: {}", u.versions.join(", "), u.reason)
            } else {
                format!(
                    "{} {} {}{what}: {}",
                    r.family,
                    r.kind,
                    u.versions.join(", "),
                    u.reason
                )
            };
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    if !notes.is_empty() {
        out.push_str("\nunverified: schema rules that no message from a real peer backs\n");
        for n in notes {
            push_wrapped(&mut out, &n, "  ", "      ");
        }
    }
    out
}

/// The long facts of a row, under it: recogniser, schema, unverified sections.
fn details(out: &mut String, r: &CatalogRow) {
    push_wrapped(
        out,
        &format!("recognised by: {}", r.recognised_by),
        "    ",
        "      ",
    );
    push_wrapped(
        out,
        &format!("schema: {}", r.schema.display()),
        "    ",
        "      ",
    );
    let sections: Vec<&str> = r
        .unverified
        .iter()
        .flat_map(|u| u.sections.iter().map(String::as_str))
        .collect();
    if !sections.is_empty() {
        push_wrapped(
            out,
            &format!("unverified: {}", sections.join(", ")),
            "    ",
            "      ",
        );
    }
}

/// `text` as lines of at most [`WIDTH`] characters: `first` before the first line,
/// `rest` before the others; breaks at spaces, and inside a word only when one word
/// is wider than a line.
fn push_wrapped(out: &mut String, text: &str, first: &str, rest: &str) {
    for line in wrap(text, first, rest, WIDTH) {
        out.push_str(&line);
        out.push('\n');
    }
}

fn wrap(text: &str, first: &str, rest: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = first.to_string();
    let mut empty = true;
    let len = |s: &str| s.chars().count();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let mut word = word.to_string();
        loop {
            let sep = usize::from(!empty);
            if len(&line) + sep + len(&word) <= width {
                if !empty {
                    line.push(' ');
                }
                line.push_str(&word);
                empty = false;
                break;
            }
            if empty {
                // One word wider than a line: cut it.
                let room = width.saturating_sub(len(&line)).max(1);
                let head: String = word.chars().take(room).collect();
                word = word.chars().skip(room).collect();
                line.push_str(&head);
                if word.is_empty() {
                    empty = false;
                    break;
                }
            }
            lines.push(std::mem::replace(&mut line, rest.to_string()));
            empty = true;
        }
    }
    if !empty || lines.is_empty() {
        lines.push(line);
    }
    lines
}

fn push_line(out: &mut String, cells: &[String; 6], widths: &[usize; 6]) {
    // The last non-empty cell ends the line: no trailing padding.
    let last = cells.iter().rposition(|c| !c.is_empty()).unwrap_or(0);
    for (i, (cell, width)) in cells.iter().zip(widths.iter()).enumerate().take(last + 1) {
        out.push_str(cell);
        if i < last {
            let pad = width.saturating_sub(cell.chars().count()) + 2;
            out.push_str(&" ".repeat(pad));
        }
    }
    out.push('\n');
}

/// The rows as a pretty-printed JSON array of objects (all row fields; paths relative to
/// the data root, as strings).
pub fn json(rows: &[CatalogRow]) -> String {
    let arr: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "family": r.family,
                "version": r.version,
                "kind": r.kind,
                "mode": r.mode,
                "from": r.from,
                "to": r.to,
                "recognised_by": r.recognised_by,
                "schema": r.schema.to_string_lossy(),
                "fixture": r.fixture.to_string_lossy(),
                "summary": r.summary,
                "unverified": r.unverified,
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&Value::Array(arr)).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn row(kind: &str, from: &str, recognised_by: &str) -> CatalogRow {
        CatalogRow {
            family: "server-proxy".into(),
            version: "6.0".into(),
            kind: kind.into(),
            mode: "passive".into(),
            from: from.into(),
            to: "proxy".into(),
            recognised_by: recognised_by.into(),
            schema: PathBuf::from(format!("schemas/server-proxy/6.0/{kind}.json")),
            fixture: PathBuf::from(format!("fixtures/server-proxy/6.0/{kind}.json")),
            summary: "s".into(),
            unverified: Vec::new(),
        }
    }

    #[test]
    fn table_columns_line_up() {
        let rows = [
            row("a", "server", "/request=\"proxy data\""),
            row("passive.proxy-config.request", "any", "has /x"),
        ];
        let t = table(&rows, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("FAMILY"));
        let col = |l: &str, needle: &str| {
            let byte = l.find(needle).expect("column present");
            l[..byte].chars().count()
        };
        assert_eq!(col(lines[1], "server→proxy"), col(lines[0], "FROM→TO"));
        assert_eq!(col(lines[2], "any→proxy"), col(lines[0], "FROM→TO"));
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
        assert!(
            !t.contains("has /x"),
            "recognisers only with --verbose: {t}"
        );
    }

    #[test]
    fn verbose_shows_long_recognisers_wrapped_under_the_row() {
        let long = format!("{}end", "/request=\"x\" or ".repeat(40));
        let t = table(&[row("k", "server", &long)], true);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[2].starts_with("    recognised by: /request="), "{t}");
        assert!(lines[3].starts_with("      /request="), "{t}");
        assert!(
            t.contains("    schema: schemas/server-proxy/6.0/k.json"),
            "{t}"
        );
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH), "{t}");
        let words: Vec<&str> = t
            .lines()
            .filter(|l| l.starts_with("    ") && !l.contains("schema:"))
            .flat_map(|l| l.split_whitespace())
            .collect();
        assert_eq!(words.join(" "), format!("recognised by: {}", long.trim()));
    }

    #[test]
    fn a_word_wider_than_a_line_is_cut() {
        let w = "x".repeat(250);
        let lines = wrap(&format!("a {w} b"), "  ", "    ", 100);
        assert!(lines.iter().all(|l| l.chars().count() <= 100), "{lines:?}");
        assert_eq!(lines[0], "  a");
        assert_eq!(
            lines.concat().chars().filter(|c| *c == 'x').count(),
            250,
            "{lines:?}"
        );
        assert_eq!(wrap("", "  ", "    ", 100), ["  "]);
    }

    #[test]
    fn unverified_rows_say_what_in_a_column_and_why_once_below() {
        let mut a = row("k", "proxy", "x");
        a.unverified = vec![Unverified {
            versions: vec!["6.0".into(), "6.4".into()],
            sections: vec!["host data".into(), "more".into()],
            reason: "no 6.4 peer here".into(),
        }];
        let mut b = a.clone();
        b.version = "6.4".into();
        let mut whole = row("w", "proxy", "x");
        whole.unverified = vec![Unverified {
            versions: vec!["6.0".into()],
            sections: vec![],
            reason: "copied".into(),
        }];
        let t = table(&[a.clone(), b, whole, row("plain", "proxy", "y")], false);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].ends_with("UNVERIFIED"), "{t}");
        assert!(lines[1].ends_with("2 sections"), "{t}");
        assert!(lines[3].ends_with("whole kind"), "{t}");
        assert!(lines[4].ends_with("proxy→proxy"), "{t}");
        assert_eq!(t.matches("no 6.4 peer here").count(), 1, "{t}");
        assert!(t.contains("server-proxy k 6.0, 6.4 (host data, more): no 6.4 peer here"));
        assert!(t.contains("server-proxy w 6.0: copied"));
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
        let verbose = table(&[a.clone()], true);
        assert!(
            verbose.contains("    unverified: host data, more"),
            "{verbose}"
        );
        let v: Value = serde_json::from_str(&json(&[a])).expect("valid JSON");
        assert_eq!(v[0]["unverified"][0]["sections"][1], "more");
        assert_eq!(v[0]["unverified"][0]["reason"], "no 6.4 peer here");
    }

    #[test]
    fn json_is_an_array_of_rows() {
        let v: Value =
            serde_json::from_str(&json(&[row("k", "server", "anything")])).expect("valid JSON");
        assert_eq!(v[0]["kind"], "k");
        assert_eq!(v[0]["schema"], "schemas/server-proxy/6.0/k.json");
        assert_eq!(v[0]["fixture"], "fixtures/server-proxy/6.0/k.json");
        assert_eq!(v.as_array().map(Vec::len), Some(1));
        assert_eq!(json(&[]).trim(), "[]");
    }
}

//! Output of `zbx-conform catalog`: an aligned table for people, JSON for scripts.

use super::{CatalogRow, Unverified};
use serde_json::{json, Value};

const HEADERS: [&str; 8] = [
    "FAMILY",
    "VERSION",
    "KIND",
    "MODE",
    "FROM→TO",
    "RECOGNISED BY",
    "SCHEMA",
    "UNVERIFIED",
];

/// What the UNVERIFIED column says for a row: nothing, `whole kind`, or the sections.
fn unverified_cell(entries: &[Unverified]) -> String {
    entries
        .iter()
        .map(|u| {
            if u.sections.is_empty() {
                "whole kind".to_string()
            } else {
                u.sections.join(", ")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The rows as an aligned text table, one line per row, with a header line. Columns are
/// padded by character count (the arrow is one character), the last one is not padded.
/// When rows carry `unverified` entries, their reasons follow the table, once each.
pub fn table(rows: &[CatalogRow]) -> String {
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.family.clone(),
                r.version.clone(),
                r.kind.clone(),
                r.mode.clone(),
                format!("{}→{}", r.from, r.to),
                r.recognised_by.clone(),
                r.schema.to_string_lossy().into_owned(),
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
    for row in &cells {
        push_line(&mut out, row, &widths);
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
                format!("  every kind at {}: {}", u.versions.join(", "), u.reason)
            } else {
                format!(
                    "  {} {} {}{what}: {}",
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
            out.push_str(&n);
            out.push('\n');
        }
    }
    out
}

fn push_line(out: &mut String, cells: &[String; 8], widths: &[usize; 8]) {
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
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("FAMILY"));
        // The schema column starts at the same character offset on every line.
        let col = |l: &str, needle: &str| {
            let byte = l.find(needle).expect("column present");
            l[..byte].chars().count()
        };
        let h = col(lines[0], "SCHEMA");
        assert_eq!(col(lines[1], "schemas/"), h);
        assert_eq!(col(lines[2], "schemas/"), h);
        assert_eq!(col(lines[1], "server→proxy"), col(lines[0], "FROM→TO"));
        assert_eq!(col(lines[2], "any→proxy"), col(lines[0], "FROM→TO"));
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
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
        let t = table(&[a.clone(), b, whole, row("plain", "proxy", "y")]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].ends_with("UNVERIFIED"), "{t}");
        assert!(lines[1].ends_with("host data, more"), "{t}");
        assert!(lines[3].ends_with("whole kind"), "{t}");
        assert!(
            lines[4].ends_with("schemas/server-proxy/6.0/plain.json"),
            "{t}"
        );
        assert_eq!(t.matches("no 6.4 peer here").count(), 1, "{t}");
        assert!(t.contains("server-proxy k 6.0, 6.4 (host data, more): no 6.4 peer here"));
        assert!(t.contains("server-proxy w 6.0: copied"));
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
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

//! Output of `zbx-conform catalog`: an aligned table for people, JSON for scripts.

use super::CatalogRow;
use serde_json::{json, Value};

const HEADERS: [&str; 7] = [
    "FAMILY",
    "VERSION",
    "KIND",
    "MODE",
    "FROM→TO",
    "RECOGNISED BY",
    "SCHEMA",
];

/// The rows as an aligned text table, one line per row, with a header line. Columns are
/// padded by character count (the arrow is one character), the last one is not padded.
pub fn table(rows: &[CatalogRow]) -> String {
    let cells: Vec<[String; 7]> = rows
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
    out
}

fn push_line(out: &mut String, cells: &[String; 7], widths: &[usize; 7]) {
    let last = cells.len() - 1;
    for (i, (cell, width)) in cells.iter().zip(widths.iter()).enumerate() {
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

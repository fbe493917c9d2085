//! Coverage matrix: message kinds × protocol versions, saying for each cell whether a
//! run exchanged that kind with a real peer, only with the harness's own reference
//! peers, or not at all (then only its stored fixture vouches for the schema).
//!
//! A conformance claim is only as good as what was actually on the wire, and a green
//! run against the reference peers says nothing about a real proxy. The matrix makes the
//! difference visible at the end of every run, and `zbx-conform matrix` merges the JSON
//! reports of several runs (say, 6.0 and 7.0 real peers plus the reference run in CI)
//! into one table.

use crate::catalog::Catalog;
use crate::runner::result::{Direction, RunResult};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// What is known about one kind at one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Coverage {
    /// The kind does not exist in this version.
    Absent,
    /// In the catalog, but no fixture file: only the schema exists.
    SchemaOnly,
    /// Not exchanged in these runs; its fixture is validated against the schema by the
    /// test suite.
    Fixture,
    /// Exchanged with the harness's built-in reference peers only.
    Reference,
    /// Exchanged with a real peer (`--peer`, `--start-peer` or a scenario address).
    Real,
}

impl Coverage {
    /// The cell text in the terminal table.
    pub fn cell(self) -> &'static str {
        match self {
            Coverage::Absent => "-",
            Coverage::SchemaOnly => "schema",
            Coverage::Fixture => "fixture",
            Coverage::Reference => "ref",
            Coverage::Real => "REAL",
        }
    }
}

/// One message seen in a run: which family, version and kind, and whether the other
/// side was a real peer. `section` names a top-level member the message carried (not
/// empty); the kind itself has `None`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Exercised {
    pub family: String,
    pub version: String,
    pub kind: String,
    pub real: bool,
    pub section: Option<String>,
}

/// Note that `kind` of `family` was exchanged at `version` (with a real peer or not).
fn add(out: &mut BTreeSet<Exercised>, family: &str, version: &str, kind: &str, real: bool) {
    out.insert(Exercised {
        family: family.to_string(),
        version: version.to_string(),
        kind: kind.to_string(),
        real,
        section: None,
    });
}

/// Note `kind` and every top-level member its (transcript) body carries.
fn add_with_sections(
    out: &mut BTreeSet<Exercised>,
    family: &str,
    version: &str,
    kind: &str,
    real: bool,
    body: &str,
) {
    add(out, family, version, kind, real);
    for name in present_members(body) {
        out.insert(Exercised {
            family: family.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            real,
            section: Some(name),
        });
    }
}

/// The top-level members of a JSON object text whose value is not an empty array,
/// object or string. Transcript bodies are cut at 4000 characters, so this scans the text
/// instead of parsing it: members after the cut are not seen (a long `history data` can
/// hide the sections behind it), and nothing is ever reported that is not there.
pub fn present_members(body: &str) -> Vec<String> {
    // A cut body names its members after the cut (runner::transcript::render_body).
    if let Some(list) = body
        .rfind("; members: ")
        .filter(|_| body.ends_with(')') && body.contains(" … (truncated, "))
        .map(|i| &body[i + "; members: ".len()..body.len() - 1])
    {
        return list.split(", ").map(str::to_string).collect();
    }
    let b = body.as_bytes();
    let mut out = Vec::new();
    let Some(start) = b.iter().position(|c| !c.is_ascii_whitespace()) else {
        return out;
    };
    if b[start] != b'{' {
        return out;
    }
    let mut depth = 0usize;
    let mut i = start;
    // The key just read at depth 1, waiting for its value.
    let mut key: Option<String> = None;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let s = i + 1;
                let mut j = s;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                let text = body.get(s..j.min(b.len())).unwrap_or("");
                if depth == 1 && key.is_none() {
                    // A key if a colon follows.
                    let mut k = j + 1;
                    while k < b.len() && b[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    if k < b.len() && b[k] == b':' {
                        key = Some(text.to_string());
                        i = k + 1;
                        continue;
                    }
                } else if depth == 1 {
                    if let Some(k) = key.take() {
                        if !text.is_empty() {
                            out.push(k);
                        }
                    }
                }
                i = j + 1;
            }
            b'{' | b'[' => {
                if depth == 1 {
                    if let Some(k) = key.take() {
                        let close = if b[i] == b'{' { b'}' } else { b']' };
                        let mut k2 = i + 1;
                        while k2 < b.len() && b[k2].is_ascii_whitespace() {
                            k2 += 1;
                        }
                        if k2 < b.len() && b[k2] != close {
                            out.push(k);
                        }
                    }
                }
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            c if depth == 1 && key.is_some() && !c.is_ascii_whitespace() && c != b',' => {
                // A number, true, false or null: present unless null.
                if let Some(k) = key.take() {
                    if !body[i..].starts_with("null") {
                        out.push(k);
                    }
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// Peers the runner names `reference:<name>` are the harness's own.
fn is_real_peer(peer: &str) -> bool {
    !peer.is_empty() && !peer.starts_with("reference:")
}

/// Every kind sent or received in `run`, with the kind of peer.
pub fn exercised_in_run(run: &RunResult) -> Vec<Exercised> {
    let mut out = BTreeSet::new();
    for s in &run.scenarios {
        let real = is_real_peer(&s.peer);
        for e in &s.transcript {
            if e.direction == Direction::Note {
                continue;
            }
            if let Some(kind) = &e.kind {
                add_with_sections(&mut out, &s.family, &s.version, kind, real, &e.body);
            }
        }
    }
    out.into_iter().collect()
}

/// The same from a JSON report written by `run --json` (only the fields needed here are
/// read, so reports of older or newer harness versions still merge).
pub fn exercised_in_json_report(report: &serde_json::Value) -> Result<Vec<Exercised>, String> {
    let scenarios = report
        .get("scenarios")
        .and_then(|s| s.as_array())
        .ok_or("not a zbx-conform JSON report: no `scenarios` array")?;
    let mut out = BTreeSet::new();
    for (i, s) in scenarios.iter().enumerate() {
        let field = |name: &str| {
            s.get(name)
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("scenarios[{i}]: no `{name}` string"))
        };
        let family = field("family")?;
        let version = field("version")?;
        let real = is_real_peer(field("peer")?);
        let entries = s.get("transcript").and_then(|t| t.as_array());
        for e in entries.into_iter().flatten() {
            if e.get("direction").and_then(|d| d.as_str()) == Some("note") {
                continue;
            }
            if let Some(kind) = e.get("kind").and_then(|k| k.as_str()) {
                let body = e.get("body").and_then(|b| b.as_str()).unwrap_or("");
                add_with_sections(&mut out, family, version, kind, real, body);
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// The same from a `mock-plugin --record` file (JSON lines): every message a real Agent 2
/// sent to the mock plugin, with its recognised kind. Lines without a kind (not
/// recognised) are skipped; a line that is not JSON is an error naming the line.
pub fn exercised_in_plugin_record(text: &str) -> Result<Vec<Exercised>, String> {
    let mut out = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        let version = v
            .get("version")
            .and_then(|x| x.as_str())
            .ok_or_else(|| format!("line {}: no `version` (not a mock-plugin record?)", i + 1))?;
        if let Some(kind) = v.get("kind").and_then(|k| k.as_str()) {
            add(&mut out, "plugin", version, kind, true);
        }
    }
    Ok(out.into_iter().collect())
}

/// The matrix of one protocol family.
#[derive(Debug, Clone, Serialize)]
pub struct FamilyMatrix {
    pub family: String,
    pub versions: Vec<String>,
    /// Kind → one cell per entry of `versions`, in catalog order.
    pub rows: Vec<MatrixRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatrixRow {
    pub kind: String,
    /// A data section of `kind` (catalog `sections`); `None` for the kind itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    pub cells: Vec<Coverage>,
    /// Per cell: the catalog marks the schema rules of that version (and section)
    /// `unverified`: no message from a real peer backs them.
    pub unverified: Vec<bool>,
}

/// Build the matrices of `families` (all catalog families when empty) from what the
/// runs exercised.
pub fn build(catalog: &Catalog, exercised: &[Exercised], families: &[String]) -> Vec<FamilyMatrix> {
    type Key<'a> = (&'a str, &'a str, &'a str, Option<&'a str>);
    let mut best: BTreeMap<Key, Coverage> = BTreeMap::new();
    for e in exercised {
        let c = if e.real {
            Coverage::Real
        } else {
            Coverage::Reference
        };
        let slot = best
            .entry((
                e.family.as_str(),
                e.version.as_str(),
                e.kind.as_str(),
                e.section.as_deref(),
            ))
            .or_insert(c);
        *slot = (*slot).max(c);
    }
    let mut out = Vec::new();
    for fam in catalog.families() {
        if !families.is_empty() && !families.contains(&fam.family) {
            continue;
        }
        let versions = catalog.versions(&fam.family);
        let mut rows: Vec<MatrixRow> = Vec::new();
        for k in &fam.kinds {
            // A kind may have several catalog entries (one per version range).
            let mut names: Vec<Option<&str>> = vec![None];
            names.extend(k.sections.iter().map(|s| Some(s.name.as_str())));
            for section in names {
                let i = match rows
                    .iter()
                    .position(|r| r.kind == k.kind && r.section.as_deref() == section)
                {
                    Some(i) => i,
                    None => {
                        rows.push(MatrixRow {
                            kind: k.kind.clone(),
                            section: section.map(str::to_string),
                            cells: vec![Coverage::Absent; versions.len()],
                            unverified: vec![false; versions.len()],
                        });
                        rows.len() - 1
                    }
                };
                let row = &mut rows[i];
                for (col, v) in versions.iter().enumerate() {
                    let exists = match section {
                        None => k.versions.contains(v),
                        Some(s) => k.has_section(s, v),
                    };
                    if !exists {
                        continue;
                    }
                    let fixture = catalog.fixture_path(&fam.family, v, &k.kind);
                    let stored = match section {
                        None if fixture.is_file() => Coverage::Fixture,
                        Some(s) if fixture_has(&fixture, s) => Coverage::Fixture,
                        _ => Coverage::SchemaOnly,
                    };
                    let seen = best
                        .get(&(fam.family.as_str(), v.as_str(), k.kind.as_str(), section))
                        .copied()
                        .unwrap_or(stored);
                    row.cells[col] = row.cells[col].max(seen);
                    row.unverified[col] |= k.unverified_at(v, section).next().is_some();
                }
            }
        }
        out.push(FamilyMatrix {
            family: fam.family.clone(),
            versions,
            rows,
        });
    }
    out
}

/// Whether the stored fixture at `path` carries `section` (not empty).
fn fixture_has(path: &std::path::Path, section: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| present_members(&t).iter().any(|m| m == section))
}

/// Keep only the columns of `versions` (all when empty): the matrix at the end of a
/// filtered run (`--version 6.0`, or a peer that speaks one version) shows what that run
/// could exercise, not every other version as `fixture`.
pub fn keep_versions(matrices: &mut [FamilyMatrix], versions: &[String]) {
    if versions.is_empty() {
        return;
    }
    for m in matrices {
        let keep: Vec<bool> = m.versions.iter().map(|v| versions.contains(v)).collect();
        retain_columns(&mut m.versions, &keep);
        for r in &mut m.rows {
            retain_columns(&mut r.cells, &keep);
            retain_columns(&mut r.unverified, &keep);
        }
    }
}

/// Keep the items whose position is `true` in `keep`.
fn retain_columns<T>(items: &mut Vec<T>, keep: &[bool]) {
    let mut i = 0;
    items.retain(|_| {
        i += 1;
        keep.get(i - 1).copied().unwrap_or(false)
    });
}

/// The versions a run ran scenarios at (skipped ones included: they were selected).
pub fn versions_in_run(run: &RunResult) -> Vec<String> {
    let set: BTreeSet<&str> = run.scenarios.iter().map(|s| s.version.as_str()).collect();
    set.into_iter().map(str::to_string).collect()
}

/// The matrices shown at the end of a run: the families it touched, the versions it
/// ran (the terminal table and the HTML report show the same).
pub fn for_run(catalog: &Catalog, run: &RunResult) -> Vec<FamilyMatrix> {
    let exercised = exercised_in_run(run);
    let families = families_in(catalog, &exercised);
    let mut matrices = build(catalog, &exercised, &families);
    keep_versions(&mut matrices, &versions_in_run(run));
    matrices
}

/// Families a run touched, in catalog order, for the end-of-run matrix.
pub fn families_in(catalog: &Catalog, exercised: &[Exercised]) -> Vec<String> {
    catalog
        .families()
        .iter()
        .map(|f| f.family.clone())
        .filter(|f| exercised.iter().any(|e| &e.family == f))
        .collect()
}

/// The matrices as plain text tables, with a legend and per-version totals (of the
/// kinds; section rows are indented under their kind).
pub fn render(matrices: &[FamilyMatrix]) -> String {
    let mut out = String::new();
    if matrices.is_empty() {
        return out;
    }
    // One legend entry per line: readable in a narrow terminal and in CI logs.
    out.push_str("coverage:\n");
    for (cell, meaning) in [
        (Coverage::Real, "exchanged with a real peer"),
        (
            Coverage::Reference,
            "exchanged only with the built-in reference peers",
        ),
        (
            Coverage::Fixture,
            "not exchanged (its stored fixture is checked)",
        ),
        (
            Coverage::SchemaOnly,
            "not exchanged, no stored fixture (schema only)",
        ),
        (Coverage::Absent, "not in that version"),
    ] {
        let _ = writeln!(out, "  {:<8} {meaning}", cell.cell());
    }
    let any_section = matrices
        .iter()
        .any(|m| m.rows.iter().any(|r| r.section.is_some()));
    let any_unverified = matrices
        .iter()
        .any(|m| m.rows.iter().any(|r| r.unverified.iter().any(|u| *u)));
    if any_section {
        out.push_str("  ›        rows: data sections of the kind above, seen in its bodies\n");
    }
    if any_unverified {
        out.push_str(
            "  ?        after a cell: the catalog marks that version's schema rules unverified\n\
             \x20          (no message from a real peer backs them; `zbx-conform catalog` says why)\n",
        );
    }
    for m in matrices {
        let label = |r: &MatrixRow| match &r.section {
            Some(s) => format!("  › {s}"),
            None => r.kind.clone(),
        };
        let text = |r: &MatrixRow, i: usize| {
            let mut c = r.cells[i].cell().to_string();
            if r.unverified.get(i).copied().unwrap_or(false) {
                c.push('?');
            }
            c
        };
        let kind_width = m
            .rows
            .iter()
            .map(|r| label(r).chars().count())
            .chain([m.family.len() + 2])
            .max()
            .unwrap_or(0);
        let col = m
            .versions
            .iter()
            .map(String::len)
            .chain(
                m.rows
                    .iter()
                    .flat_map(|r| (0..r.cells.len()).map(move |i| text(r, i).len())),
            )
            .chain([Coverage::Fixture.cell().len()])
            .max()
            .unwrap_or(0);
        // Lines are built whole and trimmed: no trailing spaces in logs and snapshots.
        let line = |first: &str, cells: Vec<String>| {
            let pad = kind_width.saturating_sub(first.chars().count());
            let mut l = format!("{first}{}", " ".repeat(pad));
            for c in cells {
                let _ = write!(l, "  {c:<col$}");
            }
            l.trim_end().to_string() + "\n"
        };
        out.push('\n');
        out.push_str(&line(&format!("[{}]", m.family), m.versions.clone()));
        for r in &m.rows {
            let cells = (0..r.cells.len()).map(|i| text(r, i)).collect();
            out.push_str(&line(&label(r), cells));
        }
        let totals = (0..m.versions.len())
            .map(|i| {
                let kinds = m.rows.iter().filter(|r| r.section.is_none());
                let present = kinds.filter(|r| r.cells[i] != Coverage::Absent);
                let real = present.clone().filter(|r| r.cells[i] == Coverage::Real);
                format!("{}/{}", real.count(), present.count())
            })
            .collect();
        out.push_str(&line("real/kinds", totals));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::present_members;

    #[test]
    fn top_level_members_with_content_are_found_even_in_a_cut_body() {
        let body = r#"{"session":"ab","interface availability":[],"history data":[{"id":1,"value":"x\"y"}],"more":1,"x":null,"s":"","o":{},"tasks":[{"type":3}],"version":"7.0.22"}"#;
        assert_eq!(
            present_members(body),
            ["session", "history data", "more", "tasks", "version"]
        );
        // Cut inside history data: what follows the cut is not seen, nothing is made up.
        let cut = r#"{"session":"ab","history data":[{"id":1,"value":"discovery data\":[1]"},{"id":2 … (truncated, 9999 bytes in all)"#;
        assert_eq!(present_members(cut), ["session", "history data"]);
        // What the transcript says about a cut object wins over the scan.
        let named = format!("{} … (truncated, 700000 bytes in all; members: session, history data, more, proxy_delay)", &cut[..40]);
        assert_eq!(
            present_members(&named),
            ["session", "history data", "more", "proxy_delay"]
        );
        assert!(present_members("not json").is_empty());
        assert!(present_members("").is_empty());
        assert!(present_members("[1,2]").is_empty());
        assert!(present_members("{\"a\"").is_empty());
    }
}

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
/// side was a real peer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Exercised {
    pub family: String,
    pub version: String,
    pub kind: String,
    pub real: bool,
}

/// Note that `kind` of `family` was exchanged at `version` (with a real peer or not).
fn add(out: &mut BTreeSet<Exercised>, family: &str, version: &str, kind: &str, real: bool) {
    out.insert(Exercised {
        family: family.to_string(),
        version: version.to_string(),
        kind: kind.to_string(),
        real,
    });
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
                add(&mut out, &s.family, &s.version, kind, real);
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
                add(&mut out, family, version, kind, real);
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
    pub cells: Vec<Coverage>,
}

/// Build the matrices of `families` (all catalog families when empty) from what the
/// runs exercised.
pub fn build(catalog: &Catalog, exercised: &[Exercised], families: &[String]) -> Vec<FamilyMatrix> {
    let mut best: BTreeMap<(&str, &str, &str), Coverage> = BTreeMap::new();
    for e in exercised {
        let c = if e.real {
            Coverage::Real
        } else {
            Coverage::Reference
        };
        let slot = best
            .entry((e.family.as_str(), e.version.as_str(), e.kind.as_str()))
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
            let row = match rows.iter().position(|r| r.kind == k.kind) {
                Some(i) => &mut rows[i],
                None => {
                    rows.push(MatrixRow {
                        kind: k.kind.clone(),
                        cells: vec![Coverage::Absent; versions.len()],
                    });
                    let last = rows.len() - 1;
                    &mut rows[last]
                }
            };
            for (i, v) in versions.iter().enumerate() {
                if !k.versions.contains(v) {
                    continue;
                }
                let stored = if catalog.fixture_path(&fam.family, v, &k.kind).is_file() {
                    Coverage::Fixture
                } else {
                    Coverage::SchemaOnly
                };
                let seen = best
                    .get(&(fam.family.as_str(), v.as_str(), k.kind.as_str()))
                    .copied()
                    .unwrap_or(stored);
                row.cells[i] = row.cells[i].max(seen);
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

/// Families a run touched, in catalog order, for the end-of-run matrix.
pub fn families_in(catalog: &Catalog, exercised: &[Exercised]) -> Vec<String> {
    catalog
        .families()
        .iter()
        .map(|f| f.family.clone())
        .filter(|f| exercised.iter().any(|e| &e.family == f))
        .collect()
}

/// The matrices as plain text tables, with a legend and per-version totals.
pub fn render(matrices: &[FamilyMatrix]) -> String {
    let mut out = String::new();
    if matrices.is_empty() {
        return out;
    }
    out.push_str(
        "coverage: REAL = exchanged with a real peer, ref = only with the built-in reference \
         peers, fixture = not exchanged (stored fixture only), - = not in that version\n",
    );
    for m in matrices {
        let kind_width = m
            .rows
            .iter()
            .map(|r| r.kind.chars().count())
            .chain([m.family.len() + 2])
            .max()
            .unwrap_or(0);
        let col = m
            .versions
            .iter()
            .map(String::len)
            .chain([Coverage::Fixture.cell().len()])
            .max()
            .unwrap_or(0);
        // Lines are built whole and trimmed: no trailing spaces in logs and snapshots.
        let line = |first: &str, cells: Vec<String>| {
            let mut l = format!("{first:<kind_width$}");
            for c in cells {
                let _ = write!(l, "  {c:<col$}");
            }
            l.trim_end().to_string() + "\n"
        };
        out.push('\n');
        out.push_str(&line(&format!("[{}]", m.family), m.versions.clone()));
        for r in &m.rows {
            let cells = r.cells.iter().map(|c| c.cell().to_string()).collect();
            out.push_str(&line(&r.kind, cells));
        }
        let totals = (0..m.versions.len())
            .map(|i| {
                let present = m.rows.iter().filter(|r| r.cells[i] != Coverage::Absent);
                let real = present.clone().filter(|r| r.cells[i] == Coverage::Real);
                format!("{}/{}", real.count(), present.count())
            })
            .collect();
        out.push_str(&line("real/kinds", totals));
    }
    out
}

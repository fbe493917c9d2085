//! Results in a stable order: by scenario file, then version (oldest first). Scenarios
//! finish in an order that changes from run to run; logs that are compared between runs,
//! and people reading them, want the same order every time.

use crate::catalog::compare_versions;
use crate::runner::result::ScenarioResult;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File, then version, then name.
pub fn compare(a: &ScenarioResult, b: &ScenarioResult) -> Ordering {
    compare_keys((&a.file, &a.version), (&b.file, &b.version)).then_with(|| a.name.cmp(&b.name))
}

fn compare_keys(a: (&Path, &str), b: (&Path, &str)) -> Ordering {
    a.0.cmp(b.0).then_with(|| compare_versions(a.1, b.1))
}

/// The scenarios of a run in that order.
pub fn sorted(scenarios: &[ScenarioResult]) -> Vec<&ScenarioResult> {
    let mut v: Vec<&ScenarioResult> = scenarios.iter().collect();
    v.sort_by(|a, b| compare(a, b));
    v
}

/// Holds back lines of results that finished early until every result before them in
/// the stable order has finished: a log still streams, in the same order every run.
#[derive(Debug, Default)]
pub struct InOrder {
    /// The expected results' (file, version), in the stable order.
    slots: Vec<(PathBuf, String)>,
    /// Which slots have a result already.
    filled: Vec<bool>,
    /// Lines waiting for an earlier slot, by slot.
    waiting: BTreeMap<usize, String>,
    /// The first slot whose line has not been released.
    next: usize,
}

impl InOrder {
    /// Expect one result per (file, version) given (a file and version twice: twice).
    pub fn new(expected: impl IntoIterator<Item = (PathBuf, String)>) -> Self {
        let mut slots: Vec<(PathBuf, String)> = expected.into_iter().collect();
        slots.sort_by(|a, b| compare_keys((&a.0, &a.1), (&b.0, &b.1)));
        let filled = vec![false; slots.len()];
        InOrder {
            slots,
            filled,
            ..InOrder::default()
        }
    }

    /// Take the line of a finished result; returns the lines that may be printed now,
    /// in order. A result nobody expected is released at once rather than lost.
    pub fn push(&mut self, r: &ScenarioResult, line: String) -> Vec<String> {
        let slot = self
            .slots
            .iter()
            .zip(&self.filled)
            .position(|((f, v), filled)| !filled && *f == r.file && *v == r.version);
        let Some(slot) = slot else {
            return vec![line];
        };
        self.filled[slot] = true;
        self.waiting.insert(slot, line);
        let mut out = Vec::new();
        while let Some(line) = self.waiting.remove(&self.next) {
            out.push(line);
            self.next += 1;
        }
        out
    }

    /// Whatever is still held back (results that never came), in order.
    pub fn rest(&mut self) -> Vec<String> {
        std::mem::take(&mut self.waiting).into_values().collect()
    }
}

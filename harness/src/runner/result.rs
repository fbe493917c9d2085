//! Results of a run: plain data produced by the runner and consumed by the reporters.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// The verdict of a scenario or a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    /// A check failed: the peer did not conform.
    Failed,
    /// The scenario itself is wrong (bad fixture, bad pointer...): exit code 2.
    Error(String),
    /// The peer could not be reached or started: exit code 3.
    Unreachable(String),
    /// Not run (e.g. `when` did not match).
    Skipped(String),
}

impl Outcome {
    pub fn is_pass(&self) -> bool {
        matches!(self, Outcome::Passed | Outcome::Skipped(_))
    }
}

pub use crate::check::failure::{CheckFailure, CheckKind};

/// The result of one step (one line in the terminal report on failure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepResult {
    /// 1-based position, with nesting for repeats: `3`, `4.2`, `4.2#1` (iteration).
    pub index: String,
    /// `exchange`, `accept`, `repeat`, `sleep`.
    pub action: String,
    /// The step's `name`, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The requirement ids the step checks (its `requirement:`), if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requirement: Vec<String>,
    /// Source line of the step in the scenario file.
    pub line: u64,
    pub outcome: Outcome,
    pub failures: Vec<CheckFailure>,
    /// The last message the harness sent in this step, when it failed (redacted): what
    /// the peer's answer answers — e.g. the batch behind `failed: 2` of sender data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<String>,
    #[serde(with = "duration_ms")]
    pub duration: Duration,
}

/// Direction of a transcript entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Sent,
    Received,
    Note,
}

/// One line of the conversation as it happened (bodies already redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TranscriptEntry {
    #[serde(with = "duration_ms")]
    pub at: Duration,
    pub direction: Direction,
    /// Recognised or declared message kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Frame flags, when a frame was involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<u8>,
    /// The body as text (JSON compacted, secrets redacted, long bodies truncated).
    pub body: String,
    /// The index of the step (as in [`StepResult::index`]) that was running when the
    /// entry was made, so a step's failures can be shown on the message they concern;
    /// `None` outside steps (peer start-up, listening, stopping).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// The result of one scenario at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScenarioResult {
    pub name: String,
    pub file: PathBuf,
    pub family: String,
    pub version: String,
    pub plays: String,
    pub tags: Vec<String>,
    /// What the peer was: an address, or `reference:<name>` for a built-in peer.
    pub peer: String,
    pub outcome: Outcome,
    pub steps: Vec<StepResult>,
    pub transcript: Vec<TranscriptEntry>,
    /// The peer's log, when the harness started the peer (attached to JUnit on failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_log: Option<String>,
    /// Facts about the test for CI tools (JUnit `<property>`, JSON): what the peer said
    /// it is, which protocol version was assumed and why.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// When the scenario began, counted from the start of the run: with `duration` it
    /// gives a group of scenarios its wall time (they overlap when run concurrently, so
    /// summing durations overstates it).
    #[serde(with = "duration_ms")]
    pub started: Duration,
    #[serde(with = "duration_ms")]
    pub duration: Duration,
}

impl ScenarioResult {
    /// Replace every secret value seen during the scenario in every text of the result
    /// (failure details, transcripts, the peer's log, properties): text that lost the
    /// JSON structure around a secret cannot be redacted by key.
    pub fn scrub(&mut self, secrets: &crate::check::redact::SecretValues) {
        if secrets.is_empty() {
            return;
        }
        let s = |t: &mut String| *t = secrets.scrub(t);
        let outcome_reason = |o: &mut Outcome| {
            if let Outcome::Error(r) | Outcome::Unreachable(r) | Outcome::Skipped(r) = o {
                s(r);
            }
        };
        outcome_reason(&mut self.outcome);
        for step in &mut self.steps {
            outcome_reason(&mut step.outcome);
            if let Some(sent) = &mut step.sent {
                s(sent);
            }
            for f in &mut step.failures {
                s(&mut f.expected);
                s(&mut f.detail);
                if let Some(r) = &mut f.received {
                    s(r);
                }
            }
        }
        for e in &mut self.transcript {
            s(&mut e.body);
        }
        if let Some(log) = &mut self.peer_log {
            s(log);
        }
        for v in self.properties.values_mut() {
            s(v);
        }
    }

    /// Unique test name: scenario name plus version.
    pub fn test_name(&self) -> String {
        format!("{} [{}]", self.name, self.version)
    }

    /// All failures of all steps, in order.
    pub fn failures(&self) -> impl Iterator<Item = (&StepResult, &CheckFailure)> {
        self.steps
            .iter()
            .flat_map(|s| s.failures.iter().map(move |f| (s, f)))
    }
}

/// The result of a whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunResult {
    pub scenarios: Vec<ScenarioResult>,
    /// Wall-clock time the run began (JUnit `timestamp`); absent for results not made
    /// by a run.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::report::timestamp::serialize_opt"
    )]
    pub started_at: Option<SystemTime>,
    #[serde(with = "duration_ms")]
    pub duration: Duration,
    /// What the run's memory budget saw (absent for results not made by a run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<crate::frame::BudgetReport>,
}

impl RunResult {
    /// Process exit code per the CLI contract: 0 all passed, 1 a check failed,
    /// 2 a scenario error, 3 a peer could not be reached (worst wins: 2 > 3 > 1).
    pub fn exit_code(&self) -> i32 {
        let mut code = 0;
        for s in &self.scenarios {
            let c = match s.outcome {
                Outcome::Passed | Outcome::Skipped(_) => 0,
                Outcome::Failed => 1,
                Outcome::Unreachable(_) => 3,
                Outcome::Error(_) => 2,
            };
            code = worst(code, c);
        }
        code
    }

    pub fn count(&self, pred: impl Fn(&Outcome) -> bool) -> usize {
        self.scenarios.iter().filter(|s| pred(&s.outcome)).count()
    }
}

fn worst(a: i32, b: i32) -> i32 {
    let rank = |c: i32| match c {
        0 => 0,
        1 => 1,
        3 => 2,
        _ => 3,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// Serialize durations as milliseconds (f64) in JSON reports.
mod duration_ms {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
}

//! The result of one check: which check, what was expected, what was found, where.
//! Plain data the runner collects into step results and every reporter shows.

use serde::Serialize;

/// Which kind of check produced a failure; reports group and name failures by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// The frame could not be decoded or had unexpected header fields.
    Frame,
    /// The message did not arrive in time.
    Timeout,
    /// The message is not of the expected kind.
    Kind,
    /// JSON Schema validation failed.
    Schema,
    /// A `match` expectation failed.
    Match,
    /// A `capture` pointer did not resolve.
    Capture,
    /// The body differs from its stored snapshot.
    Snapshot,
    /// The peer closed when we expected a message, or did not close when we expected it to.
    Close,
    /// The peer sent something when silence was expected.
    Silence,
    /// Connecting or listening failed.
    Connect,
    /// The scenario could not build what it had to send.
    Scenario,
    /// The started peer's log shows a problem (a rejected config, a crash).
    PeerLog,
    /// The message does not fit the run's memory budget (`--memory-budget`).
    Budget,
    /// The TLS handshake failed, or the connection is of a type the step does not accept.
    Tls,
}

impl CheckKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckKind::Frame => "frame",
            CheckKind::Timeout => "timeout",
            CheckKind::Kind => "kind",
            CheckKind::Schema => "schema",
            CheckKind::Match => "match",
            CheckKind::Capture => "capture",
            CheckKind::Snapshot => "snapshot",
            CheckKind::Close => "close",
            CheckKind::Silence => "silence",
            CheckKind::Connect => "connect",
            CheckKind::Scenario => "scenario",
            CheckKind::PeerLog => "peer-log",
            CheckKind::Budget => "budget",
            CheckKind::Tls => "tls",
        }
    }
}

/// One failed check, with everything a reader needs to understand it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckFailure {
    pub check: CheckKind,
    /// What was expected, in the scenario's words (e.g. `/response == "success"`).
    pub expected: String,
    /// What went wrong (e.g. `got "failed"`, or the schema error message).
    pub detail: String,
    /// JSON pointer into the received message where the problem is, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The received message (redacted, possibly truncated), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<String>,
}

impl CheckFailure {
    /// A failure of `check`: `expected` in the scenario's words, `detail` what was found.
    pub fn new(check: CheckKind, expected: impl Into<String>, detail: impl Into<String>) -> Self {
        CheckFailure {
            check,
            expected: expected.into(),
            detail: detail.into(),
            path: None,
            received: None,
        }
    }

    /// The same failure, located at a JSON pointer into the received message.
    pub fn at(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
}

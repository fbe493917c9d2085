//! The typed scenario model: what a YAML scenario file deserializes into.
//!
//! The shapes here are the public contract of the scenario format (mirrored by
//! `schemas/scenario.schema.json`). Steps carry their source location so every later
//! error — at lint time or at run time — can name `file:line`.
//!
//! Steps are structs with one optional field per action (rather than a serde enum) so
//! that `name` and `when` can sit beside the action key and spans survive
//! deserialization (serde-saphyr loses spans inside untagged/flattened enums).

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

pub use serde_saphyr::Spanned;

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique, human-readable name; used as the JUnit test name (plus the version).
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Protocol family: `server-proxy`, `agent`, `sender`, `plugin`.
    pub family: String,
    /// Protocol versions to run this scenario for, e.g. `["5.4", "6.0"]`.
    pub versions: Vec<Spanned<String>>,
    /// The side the harness plays.
    pub plays: Side,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Default values for variables (lowest precedence after `${NAME:-default}`).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// The peer under test.
    #[serde(default)]
    pub peer: PeerSpec,
    /// Where the harness listens for `accept` steps. Port 0 (the default) picks an
    /// ephemeral port; `${listen_addr}` and `${listen_port}` hold what was bound
    /// (`${listen_port_number}`: the port as a JSON number).
    #[serde(default)]
    pub listen: Option<String>,
    /// Default timeout for every expectation without its own `within`.
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// The scenario neither changes the peer's state nor depends on it (malformed frames
    /// the peer only closes, a refused request), so it may share a long-lived peer with
    /// other stateless scenarios at the same time. Scenarios that are not stateless run
    /// one at a time against a peer they share (`run --peer`).
    #[serde(default)]
    pub stateless: bool,
    pub steps: Vec<Spanned<Step>>,
}

/// The side of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Server,
    Proxy,
    Agent,
    Sender,
    Plugin,
}

impl Side {
    pub fn as_str(&self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Proxy => "proxy",
            Side::Agent => "agent",
            Side::Sender => "sender",
            Side::Plugin => "plugin",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who the harness talks to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSpec {
    /// Address of the peer for `exchange` steps, usually `${PROXY_ADDR:-}`. When it
    /// resolves to an empty string and `reference` is set, the runner starts that
    /// built-in reference peer and uses its address.
    #[serde(default)]
    pub address: Option<String>,
    /// Name of the built-in reference peer that stands in for a real one
    /// (`zbx-conform catalog --references` lists them).
    #[serde(default)]
    pub reference: Option<String>,
}

/// One step. Exactly one of the action fields must be set (checked by the loader).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Optional label shown in reports.
    #[serde(default)]
    pub name: Option<String>,
    /// Run the step only for matching versions.
    #[serde(default)]
    pub when: Option<When>,
    /// Connect to the peer, send, expect, and go on with `then` on the same connection.
    #[serde(default)]
    pub exchange: Option<Exchange>,
    /// Wait for the peer to connect to us, expect its request, reply.
    #[serde(default)]
    pub accept: Option<Accept>,
    /// Run nested steps several times.
    #[serde(default)]
    pub repeat: Option<Repeat>,
    /// Pause.
    #[serde(default)]
    pub sleep: Option<DurationSpec>,
    /// Run an `exchange` or `accept` again while only its `match` (and `capture`) checks
    /// fail, until they pass or `within` has passed: for data a peer produces on its own timers
    /// (discovery, availability, task results) and delivers in whichever message.
    #[serde(default)]
    pub retry: Option<Retry>,
}

impl Step {
    /// The name of the action this step performs, for reports.
    pub fn action_name(&self) -> &'static str {
        if self.exchange.is_some() {
            "exchange"
        } else if self.accept.is_some() {
            "accept"
        } else if self.repeat.is_some() {
            "repeat"
        } else if self.sleep.is_some() {
            "sleep"
        } else {
            "empty"
        }
    }

    /// How many action fields are set (the loader requires exactly one).
    pub fn action_count(&self) -> usize {
        [
            self.exchange.is_some(),
            self.accept.is_some(),
            self.repeat.is_some(),
            self.sleep.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }
}

/// Version condition: `when: { version: ">=6.4" }` or a list of such conditions,
/// any of which may match (`["5.4", "6.0"]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    pub version: OneOrMany<String>,
}

/// A value written either alone or as a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// One connection initiated by the harness.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// Address to connect to; defaults to the scenario's peer address.
    #[serde(default)]
    pub connect: Option<String>,
    pub send: Message,
    #[serde(default)]
    pub expect: Option<Expect>,
    /// Further sends/expectations on the same connection (e.g. the server's
    /// acknowledgement after passive `proxy data`).
    #[serde(default)]
    pub then: Vec<Spanned<Action>>,
}

/// One connection initiated by the peer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accept {
    /// Listen address for this step only; defaults to the scenario's listener.
    #[serde(default)]
    pub listen: Option<String>,
    pub expect: Expect,
    #[serde(default)]
    pub reply: Option<Message>,
    /// Choose the reply by what the peer sent: the received payload as text (trailing
    /// whitespace trimmed; e.g. a passive check's item key) → message. A payload with no
    /// entry gets `reply` if given, else the step fails. This is how a scenario plays a
    /// passive agent from a key → value table.
    #[serde(default)]
    pub reply_by: BTreeMap<String, Message>,
    #[serde(default)]
    pub then: Vec<Spanned<Action>>,
    /// What to do with connections whose first message is not the expected kind:
    /// `fail` (default) or `skip` (close them, note them, keep waiting). Active peers
    /// send heartbeats, config and data requests on their own timers, so suites for
    /// them usually want `skip`. `skip-unmatched` also skips messages of the expected
    /// kind that fail `match`: a long-lived agent still sends values of an earlier run's
    /// items before the ones this step waits for.
    #[serde(default)]
    pub others: Others,
    /// With `others: skip`: the reply for a skipped connection of a given kind, sent
    /// before it is closed. A real server retries a configuration push that got no
    /// answer on every poll, which can starve the request the step waits for.
    #[serde(default)]
    pub answer_others: BTreeMap<String, Message>,
}

impl Accept {
    /// Every message this step may send in reply (`reply`, `reply_by`, `answer_others`).
    pub fn replies(&self) -> impl Iterator<Item = &Message> {
        self.reply
            .iter()
            .chain(self.reply_by.values())
            .chain(self.answer_others.values())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Others {
    #[default]
    Fail,
    Skip,
    SkipUnmatched,
}

impl Others {
    /// Whether connections the step does not wait for are skipped (not failed).
    pub fn skips(self) -> bool {
        self != Others::Fail
    }
}

/// A follow-up action on an open connection: exactly one of `send` or `expect`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    #[serde(default)]
    pub send: Option<Message>,
    #[serde(default)]
    pub expect: Option<Expect>,
}

/// `retry: { within: 90s, every: 1s }` on an `exchange` or `accept` step.
///
/// An attempt whose failures are all `match` failures (or a `capture` of what the
/// message does not carry yet) is repeated after `every` (1 s by default) while `within`
/// has not passed; any other failure (schema, frame, timeout,
/// close) ends the step at once, so a message that breaks its schema fails on the first
/// attempt. A failed `exchange` attempt does not run its `then` actions (a passive proxy
/// then keeps what it sent, unacknowledged, for the next attempt); a failed `accept`
/// attempt still sends its `reply` (an active proxy holds its data back after a message
/// that got no answer).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    pub within: DurationSpec,
    #[serde(default)]
    pub every: Option<DurationSpec>,
}

impl Retry {
    /// Pause between attempts when `every` is not given.
    pub const DEFAULT_EVERY: Duration = Duration::from_secs(1);

    pub fn every(&self) -> Duration {
        self.every.map(|d| d.0).unwrap_or(Self::DEFAULT_EVERY)
    }
}

/// `repeat: { times: 3, steps: [...] }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    pub times: u32,
    pub steps: Vec<Spanned<Step>>,
}

/// What to send. Exactly one body source: `fixture`, `json`, `text` or `raw`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// A fixture name: `fixtures/<family>/<version>/<name>.json` (usually a kind name).
    #[serde(default)]
    pub fixture: Option<String>,
    /// Inline JSON body (YAML mapping or a JSON string).
    #[serde(default)]
    pub json: Option<Value>,
    /// A plain-text body (e.g. an item key for a passive check).
    #[serde(default)]
    pub text: Option<String>,
    /// Raw bytes in hex, written as-is without any framing (malformed-frame tests).
    #[serde(default)]
    pub raw: Option<String>,
    /// JSON pointer → value overrides applied to the body (after templating).
    #[serde(default)]
    pub set: Map<String, Value>,
    /// JSON pointers removed from the body.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Frame options (compression, large, deliberately wrong header fields).
    #[serde(default)]
    pub frame: Option<FrameSpec>,
    /// The message kind being sent; when given, the body is validated against its
    /// schema before sending (unless it is a deliberately broken message: `check: false`).
    #[serde(default)]
    pub kind: Option<String>,
    /// Validate what we send against `kind`'s schema (default true when `kind` is set).
    #[serde(default)]
    pub check: Option<bool>,
}

/// Frame options for a send.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameSpec {
    #[serde(default)]
    pub compress: bool,
    #[serde(default)]
    pub large: bool,
    /// Override the flags byte.
    #[serde(default)]
    pub flags: Option<u8>,
    /// Override the declared payload length.
    #[serde(default)]
    pub datalen: Option<u64>,
    /// Override the reserved field.
    #[serde(default)]
    pub reserved: Option<u64>,
    /// Override the magic (4 ASCII characters).
    #[serde(default)]
    pub magic: Option<String>,
    /// Hex bytes appended after the frame.
    #[serde(default)]
    pub trailing: Option<String>,
}

/// What to expect from the peer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Message kind; the body is validated against its schema for the run's version.
    /// Without it the kind is recognised from the catalog and validated if known.
    #[serde(default)]
    pub kind: Option<String>,
    /// JSON pointer (or top-level key) → expected value or matcher.
    #[serde(default, rename = "match")]
    pub matches: Map<String, Value>,
    /// Variable name → JSON pointer; the value is stored for later templating.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    /// Compare the (redacted) body with a stored snapshot of this name.
    #[serde(default)]
    pub snapshot: Option<String>,
    /// How long to wait.
    #[serde(default)]
    pub within: Option<DurationSpec>,
    /// Expect the peer to close the connection without sending anything.
    #[serde(default)]
    pub closes: Option<bool>,
    /// Expect no bytes at all for this long (a close also counts as silence).
    #[serde(default)]
    pub silent: Option<DurationSpec>,
    /// Expect this exact plain-text payload.
    #[serde(default)]
    pub text: Option<String>,
    /// Expectations on the frame header.
    #[serde(default)]
    pub frame: Option<FrameExpect>,
    /// Validate against the kind's schema (default true).
    #[serde(default)]
    pub schema: Option<bool>,
}

/// Expectations on a received frame header.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameExpect {
    #[serde(default)]
    pub compressed: Option<bool>,
    #[serde(default)]
    pub large: Option<bool>,
    #[serde(default)]
    pub flags: Option<u8>,
}

/// A duration written as `5s`, `500ms`, `2m`, `1h` or a plain number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSpec(pub Duration);

impl DurationSpec {
    /// Parse `5s`, `1.5s`, `500ms`, `2m`, `1h`, or `5` (seconds).
    pub fn parse(text: &str) -> Result<Duration, String> {
        let t = text.trim();
        let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
            Some(i) => (&t[..i], t[i..].trim()),
            None => (t, "s"),
        };
        let value: f64 = num
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: expected e.g. 5s, 500ms, 2m"))?;
        let secs = match unit {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m or h)"
                ))
            }
        };
        if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
            return Err(format!(
                "invalid duration {text:?}: must be between 0 and 24h"
            ));
        }
        Ok(Duration::from_secs_f64(secs))
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Num(n) => n.to_string(),
            Raw::Text(t) => t,
        };
        DurationSpec::parse(&text)
            .map(DurationSpec)
            .map_err(serde::de::Error::custom)
    }
}

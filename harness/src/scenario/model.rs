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
    /// Protocol versions to run this scenario for: a list (`["5.4", "6.0"]`) or a
    /// condition (`">=5.4"`) meaning every catalog version of the family it matches.
    pub versions: Spanned<Versions>,
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
    /// Encryption of every connection the scenario makes or accepts (steps may override
    /// single fields; `run --tls-*` options override these, not the steps').
    #[serde(default)]
    pub tls: Option<TlsSpec>,
    pub steps: Vec<Spanned<Step>>,
}

impl Scenario {
    /// The requirement ids of every step that runs at `version` (nested `repeat` steps
    /// included, steps whose `when` excludes the version left out), sorted, once each:
    /// what a test case of this scenario at this version checks.
    pub fn requirements_at(&self, version: &str) -> Vec<String> {
        fn walk(steps: &[Spanned<Step>], version: &str, out: &mut Vec<String>) {
            for sp in steps {
                let step = &sp.value;
                let runs = step.when.as_ref().is_none_or(|w| w.runs_at(version));
                if !runs {
                    continue;
                }
                out.extend(step.requirements());
                if let Some(r) = &step.repeat {
                    walk(&r.steps, version, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.steps, version, &mut out);
        out.sort();
        out.dedup();
        out
    }
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
    /// Ids of the requirements this step checks (`PROXY-DATA-ACK`): shown in the JUnit
    /// test case and the JSON report, so a CI failure names the requirement it broke.
    #[serde(default)]
    pub requirement: Option<OneOrMany<String>>,
    /// Encryption of this step's connection: fields set here win over the scenario's
    /// `tls:` and the `run --tls-*` options (a refusal step connects unencrypted or with
    /// a wrong key whatever the run says).
    #[serde(default)]
    pub tls: Option<TlsSpec>,
}

impl Step {
    /// The requirement ids of this step (none when it names none).
    pub fn requirements(&self) -> Vec<String> {
        self.requirement
            .as_ref()
            .map(OneOrMany::to_vec)
            .unwrap_or_default()
    }

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

/// A `tls:` block (protocol.md §4b), in Zabbix's terms; every value may use variables.
///
/// ```yaml
/// tls:
///   connect: psk                 # unencrypted | psk | cert: how we connect
///   accept: [unencrypted, psk]   # what we accept
///   psk_identity: ${PSK_IDENTITY}
///   psk_file: ${PSK_FILE}        # relative paths: from the scenario's folder
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    #[serde(default)]
    pub connect: Option<Spanned<String>>,
    #[serde(default)]
    pub accept: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub psk_identity: Option<Spanned<String>>,
    #[serde(default)]
    pub psk_file: Option<Spanned<String>>,
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    #[serde(default)]
    pub crl_file: Option<Spanned<String>>,
    #[serde(default)]
    pub cert_file: Option<Spanned<String>>,
    #[serde(default)]
    pub key_file: Option<Spanned<String>>,
    #[serde(default)]
    pub server_cert_issuer: Option<Spanned<String>>,
    #[serde(default)]
    pub server_cert_subject: Option<Spanned<String>>,
    /// TLS 1.2 cipher list (OpenSSL syntax).
    #[serde(default)]
    pub cipher: Option<Spanned<String>>,
    /// TLS 1.3 ciphersuites (OpenSSL syntax); empty: TLS 1.2 only.
    #[serde(default)]
    pub cipher13: Option<Spanned<String>>,
}

impl TlsSpec {
    /// The settings as written (variables not expanded yet).
    pub fn settings(&self) -> crate::transport::tls::TlsSettings {
        let v = |f: &Option<Spanned<String>>| f.as_ref().map(|s| s.value.clone());
        crate::transport::tls::TlsSettings {
            connect: v(&self.connect),
            accept: self
                .accept
                .as_ref()
                .map(|l| l.iter().map(|s| s.value.clone()).collect()),
            psk_identity: v(&self.psk_identity),
            psk_file: v(&self.psk_file),
            ca_file: v(&self.ca_file),
            crl_file: v(&self.crl_file),
            cert_file: v(&self.cert_file),
            key_file: v(&self.key_file),
            server_cert_issuer: v(&self.server_cert_issuer),
            server_cert_subject: v(&self.server_cert_subject),
            cipher: v(&self.cipher),
            cipher13: v(&self.cipher13),
        }
    }

    /// The values whose spelling can be checked before a run, with where they were
    /// written: `(field, value)`.
    pub fn checkable(&self) -> Vec<(&'static str, &Spanned<String>)> {
        let mut out = Vec::new();
        for (name, f) in [
            ("connect", &self.connect),
            ("psk_identity", &self.psk_identity),
        ] {
            if let Some(v) = f {
                out.push((name, v));
            }
        }
        for v in self.accept.iter().flatten() {
            out.push(("accept", v));
        }
        out
    }
}

/// When a step runs: `when: { version: ">=6.4" }` or a list of version conditions, any
/// of which may match (`["5.4", "6.0"]`); `when: { tls: [unencrypted, psk] }`, the
/// connection types of the harness (its scenario-level `connect`) the step runs with. A
/// step runs when every condition given matches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default)]
    pub version: Option<OneOrMany<String>>,
    #[serde(default)]
    pub tls: Option<OneOrMany<String>>,
}

impl When {
    /// The version conditions, empty when none are given (every version).
    pub fn versions(&self) -> Vec<String> {
        self.version
            .as_ref()
            .map(OneOrMany::to_vec)
            .unwrap_or_default()
    }

    /// Whether the version conditions let the step run at `version` (an unparsable
    /// condition is the loader's finding, not this answer's).
    pub fn runs_at(&self, version: &str) -> bool {
        let conds = self.versions();
        conds.is_empty() || super::when::any_matches(&conds, version).unwrap_or(true)
    }
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

/// The `versions` of a scenario: an explicit list, or a condition that selects every
/// version of the family the catalog knows (so adding a version to the catalog adds it to
/// such scenarios without editing them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Versions {
    /// `versions: ["6.0", "7.0"]`: exactly these.
    List(Vec<Spanned<String>>),
    /// `versions: ">=5.4"`: a condition as in `when:`.
    Range(String),
}

impl Versions {
    /// The versions to run, given the family's versions from the catalog (oldest first):
    /// the list as written, or the catalog's versions the condition matches. A condition
    /// that does not parse matches nothing (the loader has refused it already).
    pub fn resolve(&self, known: &[String]) -> Vec<String> {
        match self {
            Versions::List(list) => list.iter().map(|v| v.value.trim().to_string()).collect(),
            Versions::Range(cond) => known
                .iter()
                .filter(|v| super::when::version_matches(cond, v).unwrap_or(false))
                .cloned()
                .collect(),
        }
    }
}

impl<'de> Deserialize<'de> for Versions {
    /// A visitor rather than an untagged enum, so the list entries keep their spans.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Versions;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of versions such as [\"6.0\", \"7.0\"] or a condition such as \">=5.4\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Versions, E> {
                Ok(Versions::Range(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Versions, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Spanned<String>>()? {
                    out.push(v);
                }
                Ok(Versions::List(out))
            }
        }
        d.deserialize_any(V)
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
    /// The message kind being sent, `kind` or `family:kind` (a kind of another family at
    /// the same version); the body is validated against its schema before sending
    /// (unless it is a deliberately broken message: `check: false`). Defaults to the
    /// fixture's name when that names a kind (see [`Message::fixture_kind`]).
    #[serde(default)]
    pub kind: Option<String>,
    /// Validate what we send against `kind`'s schema (default true when `kind` is set).
    #[serde(default)]
    pub check: Option<bool>,
}

impl Message {
    /// The kind this message declares: `kind` when written, else the fixture's name when
    /// `is_kind` says it names a kind (`fixture: passive.proxy-config.request`,
    /// `fixture: server-proxy:passive.proxy-config.request`). A fixture named after its
    /// kind says what it is; repeating it under `kind:` only invites the two to drift.
    pub fn declared_kind(&self, is_kind: impl Fn(&str) -> bool) -> Option<String> {
        self.kind.clone().or_else(|| self.fixture_kind(is_kind))
    }

    /// The fixture's name, when it names a kind (templated names never do: they are
    /// only known at run time, where the expanded name is asked again).
    pub fn fixture_kind(&self, is_kind: impl Fn(&str) -> bool) -> Option<String> {
        self.fixture
            .as_ref()
            .filter(|f| !f.contains("${") && is_kind(f))
            .cloned()
    }
}

/// Frame options for a send.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameSpec {
    /// Compress the payload (flag 0x02); the same word as in expectations.
    #[serde(default)]
    pub compressed: bool,
    /// The old spelling, kept only so the loader can say what to write instead.
    #[serde(default)]
    pub compress: Option<Spanned<Value>>,
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
    /// Message kind, `kind` or `family:kind` (a kind of another family at the same
    /// version, e.g. a proxy's `sender:sender.data.response` in a server-proxy scenario);
    /// the body is recognised and validated in that family. Without it the kind is
    /// recognised from the scenario family's catalog and validated if known.
    #[serde(default)]
    pub kind: Option<String>,
    /// JSON pointer (or top-level key) → expected value or matcher.
    #[serde(default, rename = "match")]
    pub matches: MatchSpec,
    /// Variable name → JSON pointer; the value is stored for later templating.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    /// Compare the (redacted) body with a stored snapshot of this name.
    #[serde(default)]
    pub snapshot: Option<String>,
    /// Which keys this expectation's snapshot redacts, when not the family's list.
    #[serde(default)]
    pub volatile: Option<VolatileSpec>,
    /// How long to wait.
    #[serde(default)]
    pub within: Option<DurationSpec>,
    /// Expect the peer to close the connection without sending anything.
    #[serde(default)]
    pub closes: Option<bool>,
    /// Expect no bytes at all for this long (a close also counts as silence).
    #[serde(default)]
    pub silent: Option<DurationSpec>,
    /// Expect the peer to refuse the connection at this level (`tls`: the TLS handshake
    /// fails). Only on an `exchange`'s own expectation: the refusal comes before any
    /// message, so nothing else can be checked.
    #[serde(default)]
    pub refused: Option<Refusal>,
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

/// The level at which a peer must refuse a connection (`expect: { refused: tls }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Refusal {
    /// The TLS handshake fails (a wrong PSK key or identity, an unknown CA), or the peer
    /// ends the connection right after it without answering the step's message: with an
    /// alert (TLS 1.3 refuses a client certificate only then) or by closing (Zabbix
    /// checks a certificate's chain, issuer and subject after the handshake). A peer
    /// that answers, or stays silent, does not refuse.
    Tls,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Tls => "tls",
        }
    }
}

/// `volatile: { keep: [version], add: [/data/0/name] }` beside a `snapshot`: the
/// family's volatile keys less `keep` (compared after all) plus `add` (redacted too).
/// Entries are written like the catalog's: a key name, or a JSON pointer for one value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolatileSpec {
    #[serde(default)]
    pub keep: Vec<String>,
    #[serde(default)]
    pub add: Vec<String>,
}

impl VolatileSpec {
    /// The keys to redact: `family`'s list without `keep`, then `add`.
    pub fn apply(spec: Option<&VolatileSpec>, family: &[String]) -> Vec<String> {
        let Some(spec) = spec else {
            return family.to_vec();
        };
        let mut out: Vec<String> = family
            .iter()
            .filter(|k| !spec.keep.contains(k))
            .cloned()
            .collect();
        for k in &spec.add {
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
        out
    }
}

/// The `match` mapping of an expectation: pointer (or top-level key) → expected value,
/// with where each key was written, so a bad key is reported at its own line and column.
/// Dereferences to the plain map the matcher takes.
#[derive(Debug, Clone, Default)]
pub struct MatchSpec {
    map: Map<String, Value>,
    /// `(key, line, column)` in file order.
    keys: Vec<(String, u64, u64)>,
}

impl MatchSpec {
    /// The spec as the matcher takes it.
    pub fn map(&self) -> &Map<String, Value> {
        &self.map
    }

    /// Where `key` was written, `(0, 0)` when unknown.
    pub fn key_location(&self, key: &str) -> (u64, u64) {
        self.keys
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, l, c)| (*l, *c))
            .unwrap_or((0, 0))
    }
}

impl std::ops::Deref for MatchSpec {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Map<String, Value> {
        &self.map
    }
}

impl<'de> Deserialize<'de> for MatchSpec {
    /// A map visitor that reads each key as a `Spanned<String>` to keep its location.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = MatchSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of JSON pointers (or top-level keys) to expected values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<MatchSpec, A::Error> {
                let mut out = MatchSpec::default();
                while let Some(key) = m.next_key::<Spanned<String>>()? {
                    let value: Value = m.next_value()?;
                    let (line, column) = (key.referenced.line(), key.referenced.column());
                    out.keys.push((key.value.clone(), line, column));
                    out.map.insert(key.value, value);
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
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

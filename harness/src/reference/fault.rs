//! Deliberate misbehaviours of the reference peers. Each fault exists to prove that one
//! kind of check can fail: a suite that passes against the correct peer must fail
//! against the faulty one (design.md, "Testing strategy").
//!
//! One name means one idea across every peer (`wrong-response` is a refusal where
//! success is due, whether a proxy, a server or an agent gives it); which peers
//! implement a fault is said by the registry (`REFERENCES` at the module root), not here.

/// One deliberate misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `"response":"failed"` (or `"upload":"disabled"`, a wrong value) where success is due.
    WrongResponse,
    /// Required fields left out (`session`, `version`, `upload`, the `data` wrapper...).
    MissingFields,
    /// Fields with the wrong JSON type or format (numeric history value or port,
    /// session of the wrong length...).
    WrongTypes,
    /// Announces a version that is not the one it was asked to speak.
    WrongVersion,
    /// Server accepts data from proxies of any version (no compatibility check).
    NoVersionCheck,
    /// Frames that cannot be decoded: bad magic, truncated, wrong declared length.
    BadFrame,
    /// Accepts or connects, then never answers; keeps the connection open.
    NoReply,
    /// Marks data as sent without waiting for the acknowledgement.
    NoAckWait,
    /// Keeps the connection open after the exchange instead of closing it.
    NoClose,
    /// Sends plain 0x01 frames where compressed 0x03 frames are due.
    Uncompressed,
    /// Appends garbage bytes after each frame.
    ExtraBytes,
    /// Answers requests that must be met with silence (unknown request, no `request`,
    /// configuration for an unknown proxy).
    RepliesUnknown,
    /// 6.4+ incremental configuration ignored: a proxy or agent never keeps the revision
    /// it was sent (always reports 0), a server always sends everything.
    StaleRevision,
    /// 6.4+ proxy takes an unchanged answer (`{}`) as an empty full configuration: it
    /// drops its items and goes back to revision 0.
    ResetOnUnchanged,
    /// A sloppy receiver: ignores bad magic, flags, lengths and trailing bytes and
    /// answers the first JSON object it finds in what arrived.
    LenientFrames,
    /// A proxy whose collected data sections carry a field of the wrong JSON type.
    BrokenSections,
    /// A passive agent that puts a space where the NUL of `ZBX_NOTSUPPORTED` belongs.
    NoNul,
    /// A 7.0 passive agent that takes a JSON request for an item key.
    NoJson,
}

/// Every fault: its name and what it does, per peer, and which check kind it breaks.
pub(crate) const FAULTS: &[(Fault, &str, &str)] = &[
    (
        Fault::WrongResponse,
        "wrong-response",
        "answers \"response\":\"failed\" where success is due (passive proxy: proxy config, \
         6.4+ the answer to the configuration data; server trapper: heartbeat, and proxy \
         data with \"upload\":\"disabled\"; server poller: the acknowledgement; \
         server-for-agents: every value counted as failed, active checks refused as \
         \"host [..] not found\"); agent-passive: agent.ping answers 0, agent.version \
         4.0.0, unknown keys and 7.0 JSON requests it must refuse get a value — breaks \
         `match`/`kind` checks",
    ),
    (
        Fault::MissingFields,
        "missing-fields",
        "omits required fields (proxy: session and version, 6.4+ also config_revision in \
         the revision reply and the config request; server trapper: upload, the hosts \
         table and macro.secrets (6.4+: hosts and config_revision), heartbeat response (up \
         to 6.0); server poller: the \"data\" wrapper of proxy config (6.4+: hosts and \
         config_revision of the config answer) and the ack's response; agent-passive: \
         ZBX_NOTSUPPORTED + NUL without a message, 7.0 JSON replies without variant; \
         agent-active: no session in agent data, no host in active checks, no \
         heartbeat_freq in heartbeats; server-for-agents: no info / no data (6.4+: items \
         without mtime)) — breaks `schema` checks",
    ),
    (
        Fault::WrongTypes,
        "wrong-types",
        "wrong JSON types: history value and auto-registration port as numbers, a 31-char \
         session, 6.4+ config_revision as a string; server: string hostid (and numeric \
         interface ports) in configuration tables, boolean upload/response; agent-passive: \
         7.0 JSON replies with numeric values and a string variant; agent-active: numeric \
         values and string ids in agent data, a string heartbeat_freq; server-for-agents: \
         numeric info, string itemid, integer delay for >= 4.4 agents — breaks `schema` \
         checks",
    ),
    (
        Fault::WrongVersion,
        "wrong-version",
        "announces version \"4.0.0\" instead of the one it speaks — breaks `match` checks on \
         /version (and a real server refuses its data)",
    ),
    (
        Fault::NoVersionCheck,
        "no-version-check",
        "server accepts proxy data whatever the proxy's version (even < 4.2 or newer than \
         itself) — breaks `match` checks expecting {\"response\":\"failed\"}",
    ),
    (
        Fault::BadFrame,
        "bad-frame",
        "undecodable frames: bad magic (proxy config / heartbeat / invalid-JSON reply / \
         agent answers), truncated (declared longer than sent, then close: proxy data, \
         agent data), wrong declared length (proxy tasks / heartbeat) — breaks `frame` \
         checks",
    ),
    (
        Fault::NoReply,
        "no-reply",
        "never answers (server poller: never acknowledges; active proxy and active agent: \
         connect and send nothing) and keeps the connection open — breaks `timeout` checks",
    ),
    (
        Fault::NoAckWait,
        "no-ack-wait",
        "marks data as sent without waiting for the server's acknowledgement, so data is never \
         sent again — breaks `match` checks comparing the next proxy data with the previous one",
    ),
    (
        Fault::NoClose,
        "no-close",
        "keeps the connection open after the exchange, and where it should close silently — \
         breaks `close` checks",
    ),
    (
        Fault::Uncompressed,
        "uncompressed",
        "sends 0x01 frames where the real peer sends 0x03 (proxy) or mirrors a compressed \
         request (server trapper) — breaks `frame` checks on flags",
    ),
    (
        Fault::ExtraBytes,
        "extra-bytes",
        "appends 8 garbage bytes after every frame — breaks `frame` checks (trailing bytes) \
         or `close` checks (bytes before close)",
    ),
    (
        Fault::RepliesUnknown,
        "replies-unknown",
        "answers {\"response\":\"failed\",\"info\":\"unknown request\"} to unknown requests, \
         JSON without request, and proxy config from unknown proxies, where the real peer closes \
         silently — breaks `close`/`silence` checks",
    ),
    (
        Fault::StaleRevision,
        "stale-revision",
        "6.4+ only: the proxy and the active agent forget the config_revision they were sent \
         (report 0 again), the servers ignore the revision they are told and always send \
         everything (a full sync instead of {}, every item) — breaks `match` checks on \
         config_revision and on \"unchanged revision sends no data\"",
    ),
    (
        Fault::ResetOnUnchanged,
        "reset-on-unchanged",
        "6.4+ proxy only: takes the unchanged answer {} as an empty full configuration — \
         forgets its trapper items and reports revision 0 again — breaks `match` checks made \
         after an unchanged answer",
    ),
    (
        Fault::LenientFrames,
        "lenient-frames",
        "accepts malformed frames (bad magic or flags, wrong declared length, trailing \
         bytes, a too-long length then silence) and answers the JSON found in them, where a \
         Zabbix receiver closes without a reply — breaks the `close`/`silence` checks of \
         the robustness suites",
    ),
    (
        Fault::BrokenSections,
        "broken-sections",
        "proxy only: what it collects from its configuration carries a wrong JSON type — \
         interface availability `available` and host data `active_status` as strings, \
         discovery `port` as a string, auto-registration `port` of the other version's type \
         (6.x string, 7.0 number), task result `status`, `more` and `proxy_delay` as strings \
         — breaks `schema` checks on the data sections (scenarios/server-proxy/*/data-*.yaml)",
    ),
    (
        Fault::NoNul,
        "no-nul",
        "agent-passive: \"ZBX_NOTSUPPORTED Unsupported item key.\" with a space instead of \
         the NUL, which a server takes as an ordinary value — breaks `kind` checks",
    ),
    (
        Fault::NoJson,
        "no-json",
        "agent-passive with JSON passive checks (7.0): takes a JSON request for an item \
         key, as a pre-7.0 agent does (ZBX_NOTSUPPORTED + NUL + message) — breaks `kind` \
         checks",
    ),
];

impl Fault {
    /// Parse a fault name as `zbx-conform references` lists it.
    pub fn parse(name: &str) -> Option<Fault> {
        FAULTS
            .iter()
            .find(|(_, n, _)| *n == name.trim())
            .map(|(f, _, _)| *f)
    }

    /// The fault's name.
    pub fn name(self) -> &'static str {
        FAULTS
            .iter()
            .find(|(f, _, _)| *f == self)
            .map(|(_, n, _)| *n)
            .unwrap_or("unknown")
    }
}

/// Whether `fault` is `Some(f)`; keeps call sites short.
pub(crate) fn is(fault: Option<Fault>, f: Fault) -> bool {
    fault == Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_round_trips() {
        for (f, name, what) in FAULTS {
            assert_eq!(Fault::parse(name), Some(*f));
            assert_eq!(f.name(), *name);
            assert!(
                what.contains("— breaks "),
                "{name} says which check it breaks"
            );
        }
        assert_eq!(Fault::parse("nonsense"), None);
    }
}

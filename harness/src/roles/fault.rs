//! Deliberate misbehaviours of the reference peers. Each fault exists to prove that one
//! kind of check can fail: a suite that passes against the correct peer must fail
//! against the faulty one (design.md, "Testing strategy").

/// One deliberate misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `"response":"failed"` (or `"upload":"disabled"`) where success is due.
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
    /// 6.4+ incremental configuration ignored: a proxy never keeps the revision it was
    /// sent (always reports 0), a server always sends a full sync (never `{}`).
    StaleRevision,
    /// 6.4+ proxy takes an unchanged answer (`{}`) as an empty full configuration: it
    /// drops its items and goes back to revision 0.
    ResetOnUnchanged,
    /// A sloppy receiver: ignores bad magic, flags, lengths and trailing bytes and
    /// answers the first JSON object it finds in what arrived.
    LenientFrames,
    /// A proxy whose collected data sections carry a field of the wrong JSON type.
    BrokenSections,
}

/// Every fault: name, what it does, which check kind it breaks, and which reference
/// peers support it.
pub(crate) const FAULTS: &[(Fault, &str, &str, &[&str])] = &[
    (
        Fault::WrongResponse,
        "wrong-response",
        "answers \"response\":\"failed\" where success is due (passive proxy: proxy config, \
         6.4+ the answer to the configuration data; server trapper: heartbeat, and proxy data with \"upload\":\"disabled\"; server poller: \
         the acknowledgement) — breaks `match` checks",
        &["passive-proxy", "server-trapper", "server-poller"],
    ),
    (
        Fault::MissingFields,
        "missing-fields",
        "omits required fields (proxy: session and version, 6.4+ also config_revision in \
         the revision reply and the config request; server trapper: upload, hosts and \
         macro.secrets tables (6.4+: hosts and config_revision), heartbeat response (up to \
         6.0); server \
         poller: the \"data\" wrapper of proxy config (6.4+: config_revision of the config \
         answer) and the ack's response) — breaks `schema` checks",
        &[
            "passive-proxy",
            "active-proxy",
            "server-trapper",
            "server-poller",
        ],
    ),
    (
        Fault::WrongTypes,
        "wrong-types",
        "wrong JSON types: history value and auto-registration port as numbers, a 31-char \
         session, 6.4+ config_revision as a string; server: numeric interface port and string hostid in config tables, boolean \
         upload/response — breaks `schema` checks",
        &[
            "passive-proxy",
            "active-proxy",
            "server-trapper",
            "server-poller",
        ],
    ),
    (
        Fault::WrongVersion,
        "wrong-version",
        "announces version \"4.0.0\" instead of the one it speaks — breaks `match` checks on \
         /version (and a real server refuses its data)",
        &["passive-proxy", "active-proxy"],
    ),
    (
        Fault::NoVersionCheck,
        "no-version-check",
        "server accepts proxy data whatever the proxy's version (even < 4.2 or newer than \
         itself) — breaks `match` checks expecting {\"response\":\"failed\"}",
        &["server-trapper"],
    ),
    (
        Fault::BadFrame,
        "bad-frame",
        "undecodable frames: bad magic (proxy config / heartbeat / invalid-JSON reply), \
         truncated (declared longer than sent, then close: proxy data), wrong declared \
         length (proxy tasks / heartbeat) — breaks `frame` checks",
        &[
            "passive-proxy",
            "active-proxy",
            "server-trapper",
            "server-poller",
        ],
    ),
    (
        Fault::NoReply,
        "no-reply",
        "never answers (server poller: never acknowledges; active proxy: connects and sends \
         nothing) and keeps the connection open — breaks `timeout` checks",
        &[
            "passive-proxy",
            "active-proxy",
            "server-trapper",
            "server-poller",
        ],
    ),
    (
        Fault::NoAckWait,
        "no-ack-wait",
        "marks data as sent without waiting for the server's acknowledgement, so data is never \
         sent again — breaks `match` checks comparing the next proxy data with the previous one",
        &["passive-proxy", "active-proxy"],
    ),
    (
        Fault::NoClose,
        "no-close",
        "keeps the connection open after the exchange, and where it should close silently — \
         breaks `close` checks",
        &["passive-proxy", "server-trapper", "server-poller"],
    ),
    (
        Fault::Uncompressed,
        "uncompressed",
        "sends 0x01 frames where the real peer sends 0x03 (proxy) or mirrors a compressed \
         request (server trapper) — breaks `frame` checks on flags",
        &["passive-proxy", "active-proxy", "server-trapper"],
    ),
    (
        Fault::ExtraBytes,
        "extra-bytes",
        "appends 8 garbage bytes after every frame — breaks `frame` checks (trailing bytes) \
         or `close` checks (bytes before close)",
        &[
            "passive-proxy",
            "active-proxy",
            "server-trapper",
            "server-poller",
        ],
    ),
    (
        Fault::RepliesUnknown,
        "replies-unknown",
        "answers {\"response\":\"failed\",\"info\":\"unknown request\"} to unknown requests, \
         JSON without request, and proxy config from unknown proxies, where the real peer closes \
         silently — breaks `close`/`silence` checks",
        &["passive-proxy", "server-trapper"],
    ),
    (
        Fault::StaleRevision,
        "stale-revision",
        "6.4+ only: the proxy forgets the config_revision it was sent (reports 0 again), the \
         server ignores the proxy's revision and always answers with a full sync instead of {} \
         — breaks `match` checks on config_revision and on \"unchanged revision sends no data\"",
        &[
            "passive-proxy",
            "active-proxy",
            "server-trapper",
            "server-poller",
        ],
    ),
    (
        Fault::ResetOnUnchanged,
        "reset-on-unchanged",
        "6.4+ proxy only: takes the unchanged answer {} as an empty full configuration — \
         forgets its trapper items and reports revision 0 again — breaks `match` checks made \
         after an unchanged answer",
        &["passive-proxy", "active-proxy"],
    ),
    (
        Fault::LenientFrames,
        "lenient-frames",
        "accepts malformed frames (bad magic or flags, wrong declared length, trailing \
         bytes, a too-long length then silence) and answers the JSON found in them, where a \
         Zabbix receiver closes without a reply — breaks the `close`/`silence` checks of \
         the robustness suites",
        &["passive-proxy", "server-trapper"],
    ),
    (
        Fault::BrokenSections,
        "broken-sections",
        "proxy only: what it collects from its configuration carries a wrong JSON type — \
         interface availability `available` and host data `active_status` as strings, \
         discovery `port` as a string, auto-registration `port` of the other version's type \
         (6.x string, 7.0 number), task result `status`, `more` and `proxy_delay` as strings \
         — breaks `schema` checks on the data sections (scenarios/server-proxy/*/data-*.yaml)",
        &["passive-proxy", "active-proxy"],
    ),
];

impl Fault {
    /// Parse a fault name as listed by [`super::faults`].
    pub fn parse(name: &str) -> Option<Fault> {
        FAULTS
            .iter()
            .find(|(_, n, _, _)| *n == name.trim())
            .map(|(f, _, _, _)| *f)
    }

    /// The fault's name.
    pub fn name(self) -> &'static str {
        FAULTS
            .iter()
            .find(|(f, _, _, _)| *f == self)
            .map(|(_, n, _, _)| *n)
            .unwrap_or("unknown")
    }

    /// Whether the reference peer `reference` implements this fault.
    pub fn applies_to(self, reference: &str) -> bool {
        FAULTS
            .iter()
            .any(|(f, _, _, refs)| *f == self && refs.contains(&reference))
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
    fn every_fault_round_trips_and_applies_somewhere() {
        for (f, name, _, refs) in FAULTS {
            assert_eq!(Fault::parse(name), Some(*f));
            assert_eq!(f.name(), *name);
            assert!(!refs.is_empty());
            for r in *refs {
                assert!(f.applies_to(r));
            }
        }
        assert_eq!(Fault::parse("nonsense"), None);
    }
}

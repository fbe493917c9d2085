//! Protocol versions the reference peers can speak, as a small table so that adding
//! 6.4 or 7.0 later means adding a row (plus whatever behaviour differs), not hunting
//! for string literals across the peers.

/// What differs between the protocol versions a reference peer can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionProfile {
    /// The protocol version as scenarios name it (`"6.0"`).
    pub protocol: &'static str,
    /// The `version` string a peer of this version puts on the wire (`"6.0.14"`).
    pub full: &'static str,
    /// Major and minor, for the server's compatibility check (protocol.md §2.2).
    pub major: u32,
    pub minor: u32,
    /// Oldest proxy major.minor whose data the server still accepts (with a warning).
    /// 6.0.14 refuses anything below 4.2; 5.4 presumed identical (protocol.md §2.2).
    pub oldest_accepted: (u32, u32),
}

/// Every version the reference peers speak. 5.4 uses `5.4.0` (the version of the source
/// documents); 6.0 uses `6.0.14`, the real peer Debian ships; 6.4 and 7.0 use `6.4.0`
/// and `7.0.0`.
pub const VERSIONS: &[VersionProfile] = &[
    VersionProfile {
        protocol: "5.4",
        full: "5.4.0",
        major: 5,
        minor: 4,
        oldest_accepted: (4, 2),
    },
    VersionProfile {
        protocol: "6.0",
        full: "6.0.14",
        major: 6,
        minor: 0,
        oldest_accepted: (4, 2),
    },
    // 6.4 and 7.0: no real peer of these versions exists here; `x.y.0` is the first
    // release of each line. A 6.4+ server accepts data from "current" and "outdated"
    // proxies, i.e. not older than 6.0 (protocol.md §2.2).
    VersionProfile {
        protocol: "6.4",
        full: "6.4.0",
        major: 6,
        minor: 4,
        oldest_accepted: (6, 0),
    },
    VersionProfile {
        protocol: "7.0",
        full: "7.0.0",
        major: 7,
        minor: 0,
        oldest_accepted: (6, 0),
    },
];

/// The version string a deliberately wrong peer announces: old enough that a 5.4/6.0
/// server refuses it (below 4.2), so both `match` checks and version checks notice.
pub const WRONG_VERSION: &str = "4.0.0";

/// Find a profile by protocol version (`"6.0"`) or full version string (`"6.0.14"`).
pub fn lookup(version: &str) -> Option<&'static VersionProfile> {
    let v = version.trim();
    VERSIONS.iter().find(|p| p.protocol == v || p.full == v)
}

/// Names of the supported protocol versions, for error messages.
pub fn supported() -> Vec<&'static str> {
    VERSIONS.iter().map(|p| p.protocol).collect()
}

/// Parse `major.minor` out of a peer's version string. A missing or unparsable version
/// counts as 3.2, as the 6.0 server does (protocol.md §2.2).
pub fn parse_major_minor(version: Option<&str>) -> (u32, u32) {
    const UNKNOWN: (u32, u32) = (3, 2);
    let Some(v) = version else { return UNKNOWN };
    let mut parts = v.split('.');
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| {
        // "6.0rc1" style suffixes belong to the last part; keep only the leading digits.
        let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse::<u32>().ok()
    });
    match (major, minor) {
        (Some(a), Some(b)) => (a, b),
        _ => UNKNOWN,
    }
}

impl VersionProfile {
    fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// 6.4+: incremental configuration sync (protocol.md §2.4) — the passive config
    /// dialogue of four messages, session + config_revision in the active request,
    /// `full_sync`/`{}` answers — and `host data` rows in proxy data (§2.5).
    pub fn incremental_config(&self) -> bool {
        self.at_least(6, 4)
    }

    /// 7.0+: proxy groups (`hostmap_revision`, `proxy_group`).
    pub fn proxy_groups(&self) -> bool {
        self.at_least(7, 0)
    }

    /// 7.0+: JSON passive checks (`{"request":"passive checks",...}` answered with
    /// `version`, `variant` and one value or error), `variant` in every active-agent
    /// message (protocol.md §3.1; ci/NOTES-trixie.md §4).
    pub fn json_passive_checks(&self) -> bool {
        self.at_least(7, 0)
    }

    /// 7.0+: active agents put `variant` (1 agentd, 2 agent2) and, in heartbeats, their
    /// version in every message (measured on 7.0.22, ci/NOTES-trixie.md §4).
    pub fn agent_variant(&self) -> bool {
        self.at_least(7, 0)
    }

    /// 6.2+: active agents send `active check heartbeat` (protocol.md §3.4); of the
    /// versions here, 6.4 and 7.0.
    pub fn agent_heartbeat(&self) -> bool {
        self.at_least(6, 2)
    }

    /// 6.4+: active agents send their version, `session` and `config_revision` in
    /// `active checks` and take only itemid-shaped items (7.0.22 agentd logs `cannot
    /// retrieve value of tag "itemid"` for the legacy shape); `agent data` has itemid rows
    /// and a top-level host. Measured on 7.0.22 (ci/NOTES-trixie.md §4); 6.4 agentd is
    /// unverified and assumed to be the same.
    pub fn agent_item_revisions(&self) -> bool {
        self.at_least(6, 4)
    }

    /// 7.0+: the proxy buffer writes auto-registration `port` and `flags` as JSON numbers
    /// (6.x: strings). Measured on 7.0.22 (ci/NOTES-trixie.md §7); 6.4 is taken to be
    /// like 6.0 (its source still lists them as strings; no 6.4 peer here).
    pub fn numeric_autoreg(&self) -> bool {
        self.at_least(7, 0)
    }

    /// Whether an active proxy of this version sends `proxy heartbeat` (deprecated and
    /// no longer sent since 6.4; servers still answer it).
    pub fn sends_heartbeat(&self) -> bool {
        !self.incremental_config()
    }

    /// Whether a server of this version accepts data from a proxy announcing `version`:
    /// not older than `oldest_accepted` and not newer than the server itself.
    pub fn accepts_proxy_version(&self, version: Option<&str>) -> bool {
        let v = parse_major_minor(version);
        v >= self.oldest_accepted && v <= (self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_either_name() {
        assert_eq!(lookup("6.0").map(|p| p.full), Some("6.0.14"));
        assert_eq!(lookup("5.4.0").map(|p| p.protocol), Some("5.4"));
        assert_eq!(lookup("7.0").map(|p| p.full), Some("7.0.0"));
        assert_eq!(lookup("6.4.0").map(|p| p.protocol), Some("6.4"));
        assert!(lookup("7.2").is_none());
    }

    #[test]
    fn version_check_follows_6_0_rules() {
        let p = lookup("6.0").expect("6.0 is in the table");
        assert!(p.accepts_proxy_version(Some("6.0.14")));
        assert!(p.accepts_proxy_version(Some("5.4.0")));
        assert!(p.accepts_proxy_version(Some("4.2.1")));
        assert!(!p.accepts_proxy_version(Some("4.0.0")));
        assert!(!p.accepts_proxy_version(Some("6.2.0")));
        assert!(!p.accepts_proxy_version(None));
        assert!(!p.accepts_proxy_version(Some("garbage")));
        let old = lookup("5.4").expect("5.4 is in the table");
        assert!(!old.accepts_proxy_version(Some("6.0.14")));
    }

    #[test]
    fn version_check_follows_6_4_and_7_0_rules() {
        for (v, own) in [("6.4", "6.4.0"), ("7.0", "7.0.0")] {
            let p = lookup(v).expect("in the table");
            assert!(p.incremental_config() && !p.sends_heartbeat());
            assert!(p.accepts_proxy_version(Some(own)));
            assert!(
                p.accepts_proxy_version(Some("6.0.14")),
                "outdated is accepted"
            );
            assert!(!p.accepts_proxy_version(Some("5.4.0")), "unsupported");
            assert!(!p.accepts_proxy_version(Some(WRONG_VERSION)));
        }
        assert!(!lookup("6.4")
            .expect("6.4")
            .accepts_proxy_version(Some("7.0.0")));
        assert!(lookup("7.0").expect("7.0").proxy_groups());
        assert!(!lookup("6.4").expect("6.4").proxy_groups());
        let old = lookup("6.0").expect("6.0");
        assert!(!old.incremental_config() && old.sends_heartbeat());
    }
}

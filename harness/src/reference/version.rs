//! What the reference peers do with version strings. What each protocol version is and
//! does comes from the catalog (`schemas/versions.yaml`: `announce`, `features`,
//! `accepts_proxies_from`); this module only holds the rules that read versions the
//! other side announces, which are the same at every version the catalog knows.

use super::fault::{is, Fault};
use crate::catalog::VersionInfo;

/// What a peer with the `wrong-version` fault announces (and a `wrong-response` agent
/// answers to `agent.version`): older than any proxy a server of the catalog's versions
/// accepts (the oldest `accepts_proxies_from` is 4.2), so `match` checks on the version
/// and a server's compatibility check both notice.
pub const WRONG_VERSION: &str = "4.0.0";

/// `major.minor` a server assumes for a version it cannot parse (6.0.14
/// `zbx_get_component_version`, protocol.md §2.2).
const UNPARSABLE: (u32, u32) = (3, 2);

/// `major.minor` a server assumes for an agent whose `active checks` name no version
/// (protocol.md §3.2).
pub const AGENT_WITHOUT_VERSION: (u32, u32) = (4, 2);

/// The oldest agent a server sends itemid-shaped active items to (protocol.md §3.2).
pub const AGENT_ITEMIDS_FROM: (u32, u32) = (4, 4);

/// Parse `major.minor` out of a version string; a missing or unparsable one counts as
/// [`UNPARSABLE`], as the 6.0 server does.
pub fn parse_major_minor(version: Option<&str>) -> (u32, u32) {
    let Some(v) = version else { return UNPARSABLE };
    let mut parts = v.trim().split('.');
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| {
        // "6.0rc1" style suffixes belong to the last part; keep only the leading digits.
        let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse::<u32>().ok()
    });
    match (major, minor) {
        (Some(a), Some(b)) => (a, b),
        _ => UNPARSABLE,
    }
}

/// Whether a server speaking `own` accepts data from a proxy announcing `version`: not
/// older than `own.accepts_proxies_from` and not newer than the server itself.
pub fn accepts_proxy_version(own: &VersionInfo, version: Option<&str>) -> bool {
    let v = parse_major_minor(version);
    v >= parse_major_minor(Some(&own.accepts_proxies_from))
        && v <= parse_major_minor(Some(&own.version))
}

/// The version string a peer announces: the catalog's `announce`, or
/// [`WRONG_VERSION`] under `wrong-version`.
pub fn announced(own: &VersionInfo, fault: Option<Fault>) -> &str {
    if is(fault, Fault::WrongVersion) {
        WRONG_VERSION
    } else {
        &own.announce
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(version: &str, accepts: &str) -> VersionInfo {
        VersionInfo {
            version: version.into(),
            announce: format!("{version}.0"),
            like: None,
            measured: false,
            evidence: String::new(),
            features: Default::default(),
            accepts_proxies_from: accepts.into(),
            plugin: None,
        }
    }

    #[test]
    fn the_compatibility_check_reads_the_catalog() {
        let v60 = info("6.0", "4.2");
        assert!(accepts_proxy_version(&v60, Some("6.0.14")));
        assert!(accepts_proxy_version(&v60, Some("5.4.0")));
        assert!(accepts_proxy_version(&v60, Some("4.2.1")));
        assert!(!accepts_proxy_version(&v60, Some(WRONG_VERSION)));
        assert!(!accepts_proxy_version(&v60, Some("6.2.0")), "newer");
        assert!(!accepts_proxy_version(&v60, None));
        assert!(!accepts_proxy_version(&v60, Some("garbage")));
        let v72 = info("7.2", "6.0");
        assert!(accepts_proxy_version(&v72, Some("7.2.3")));
        assert!(accepts_proxy_version(&v72, Some("6.0.14")), "outdated");
        assert!(!accepts_proxy_version(&v72, Some("5.4.0")), "unsupported");
        assert!(!accepts_proxy_version(&v72, Some("7.4.0")));
    }

    /// The wrong version stays wrong whatever the catalog says a server accepts.
    #[test]
    fn every_project_version_refuses_the_wrong_version() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for v in crate::catalog::versions::load(&root).unwrap() {
            assert!(
                !accepts_proxy_version(&v, Some(WRONG_VERSION)),
                "{}",
                v.version
            );
            assert!(
                accepts_proxy_version(&v, Some(&v.announce)),
                "{}",
                v.version
            );
        }
    }

    #[test]
    fn versions_parse_like_the_server() {
        assert_eq!(parse_major_minor(Some("6.0rc1")), (6, 0));
        assert_eq!(parse_major_minor(Some("7")), UNPARSABLE);
        assert_eq!(announced(&info("6.0", "4.2"), None), "6.0.0");
        assert_eq!(
            announced(&info("6.0", "4.2"), Some(Fault::WrongVersion)),
            WRONG_VERSION
        );
    }
}

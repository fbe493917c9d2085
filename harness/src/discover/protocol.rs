//! From the version a peer names (`6.0.14`, `7.4.2`, agent2's `6.0`) to the catalog
//! version whose cases run for it.
//!
//! Zabbix protocols change per major.minor release (protocol.md 2.2): the patch level
//! never changes a message. A peer newer than anything the catalog knows runs as the
//! newest known version, with a warning: Zabbix keeps compatibility forward within a
//! line, and the run says what it assumed. An unknown version in between (6.2) or older
//! than the oldest is not guessed at.

use crate::catalog::compare_versions;
use std::cmp::Ordering;

/// The catalog version chosen for a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub protocol: String,
    pub warning: Option<String>,
}

/// `major.minor` of a version string (`6.0.14rc1` → `6.0`), if it starts like one.
pub fn major_minor(version: &str) -> Option<String> {
    let mut parts = version.trim().splitn(3, '.');
    let major = digits(parts.next()?)?;
    let minor = digits(parts.next()?)?;
    Some(format!("{major}.{minor}"))
}

/// The leading digits of `s`, when it starts with at least one.
fn digits(s: &str) -> Option<&str> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

/// The catalog version (`known`, any order) for a peer version, or `None` when the
/// catalog does not know it and it is not newer than all it knows.
pub fn protocol_for(known: &[String], version: &str) -> Option<Resolved> {
    let mm = major_minor(version)?;
    if known.contains(&mm) {
        return Some(Resolved {
            protocol: mm,
            warning: None,
        });
    }
    let newest = known.iter().max_by(|a, b| compare_versions(a, b))?.clone();
    if compare_versions(&mm, &newest) == Ordering::Greater {
        return Some(Resolved {
            warning: Some(format!(
                "the peer speaks {mm}, newer than any version the catalog knows; running the {newest} cases"
            )),
            protocol: newest,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        ["5.4", "6.0", "6.4", "7.0"].map(String::from).to_vec()
    }

    #[test]
    fn major_minor_takes_the_first_two_numbers() {
        assert_eq!(major_minor("6.0.14").as_deref(), Some("6.0"));
        assert_eq!(major_minor("6.0").as_deref(), Some("6.0"));
        assert_eq!(major_minor("7.0.0rc1").as_deref(), Some("7.0"));
        assert_eq!(major_minor("10.12.3").as_deref(), Some("10.12"));
        assert_eq!(major_minor("6"), None);
        assert_eq!(major_minor("v6.0"), None);
        assert_eq!(major_minor(""), None);
        assert_eq!(major_minor("ZBX_NOTSUPPORTED"), None);
    }

    #[test]
    fn a_known_version_runs_as_itself() {
        let r = protocol_for(&known(), "6.0.14").unwrap();
        assert_eq!(r.protocol, "6.0");
        assert_eq!(r.warning, None);
        assert_eq!(protocol_for(&known(), "7.0.22").unwrap().protocol, "7.0");
    }

    #[test]
    fn a_newer_version_runs_as_the_newest_with_a_warning() {
        for v in ["7.2.1", "7.4.0", "8.0.0"] {
            let r = protocol_for(&known(), v).unwrap();
            assert_eq!(r.protocol, "7.0", "{v}");
            let w = r.warning.unwrap();
            assert!(
                w.contains("newer than any version the catalog knows"),
                "{w}"
            );
            assert!(w.contains("7.0 cases"), "{w}");
        }
    }

    #[test]
    fn an_unknown_older_or_intermediate_version_is_not_guessed() {
        assert_eq!(protocol_for(&known(), "6.2.9"), None);
        assert_eq!(protocol_for(&known(), "5.0.30"), None);
        assert_eq!(protocol_for(&known(), "garbage"), None);
        assert_eq!(protocol_for(&[], "6.0.14"), None);
    }
}

//! The protocol versions the catalog knows (`schemas/versions.yaml`): what a version
//! announces, whether a real peer confirmed it, and the behaviours the reference peers
//! play at it. Everything the harness knows about one version is here or in that
//! version's schema and fixture folders, so a new version is data.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// The names of [`FEATURES`], for code that asks [`VersionInfo::has`]: a misspelt
/// constant does not compile, a misspelt string would silently be false.
pub mod feature {
    pub const PROXY_HEARTBEAT: &str = "proxy-heartbeat";
    pub const INCREMENTAL_CONFIG: &str = "incremental-config";
    pub const PROXY_HOST_DATA: &str = "proxy-host-data";
    pub const AGENT_HEARTBEAT: &str = "agent-heartbeat";
    pub const AGENT_ITEM_REVISIONS: &str = "agent-item-revisions";
    pub const PROXY_GROUPS: &str = "proxy-groups";
    pub const JSON_PASSIVE_CHECKS: &str = "json-passive-checks";
    pub const ITEM_TIMEOUTS: &str = "item-timeouts";
    pub const AGENT_VARIANT: &str = "agent-variant";
    pub const NUMERIC_AUTOREG: &str = "numeric-autoreg";
    pub const DISCOVERY_RUN_END: &str = "discovery-run-end";
}

/// Protocol behaviours that differ between versions, by the name `versions.yaml` uses.
/// The reference peers implement each; a version lists the ones it has.
pub const FEATURES: &[(&str, &str)] = &[
    (
        feature::PROXY_HEARTBEAT,
        "active proxies send `proxy heartbeat` (up to 6.2)",
    ),
    (
        feature::INCREMENTAL_CONFIG,
        "the configuration dialogue with session and config_revision (6.4+)",
    ),
    (
        feature::PROXY_HOST_DATA,
        "proxies report active agents' availability as `host data` in proxy data (6.4+)",
    ),
    (
        feature::AGENT_HEARTBEAT,
        "active agents send `active check heartbeat` (6.2+)",
    ),
    (
        feature::AGENT_ITEM_REVISIONS,
        "`active checks` carries session and config_revision; items by revision (6.4+)",
    ),
    (
        feature::PROXY_GROUPS,
        "proxy groups: host maps, redirects, hostmap_revision (7.0+)",
    ),
    (
        feature::JSON_PASSIVE_CHECKS,
        "passive checks as JSON requests with per-item timeouts (7.0+)",
    ),
    (
        feature::ITEM_TIMEOUTS,
        "`active checks` items carry their own `timeout` (7.0+)",
    ),
    (
        feature::AGENT_VARIANT,
        "agents name their variant, 1 zabbix_agentd or 2 zabbix_agent2 (7.0+)",
    ),
    (
        feature::NUMERIC_AUTOREG,
        "auto-registration port and flags are JSON numbers (7.0+)",
    ),
    (
        feature::DISCOVERY_RUN_END,
        "discovery data ends each run with a status 4 row and carries no dns (7.0+)",
    ),
];

/// The loadable-plugin protocol of a version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginProtocol {
    /// The Register `version` string the agent sends (compared by plugins as a string).
    pub register: String,
    /// Whether Export requests carry the item timeout.
    #[serde(default)]
    pub export_timeout: bool,
}

/// One version as written in `versions.yaml` (before `like` is applied).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    version: String,
    #[serde(default)]
    like: Option<String>,
    announce: String,
    measured: bool,
    evidence: String,
    #[serde(default)]
    features: Option<Vec<String>>,
    #[serde(default)]
    accepts_proxies_from: Option<String>,
    #[serde(default)]
    plugin: Option<PluginProtocol>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    versions: Vec<Entry>,
}

/// One protocol version, complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    pub version: String,
    /// The version this one repeats unless it says otherwise; its fixtures stand in for
    /// the ones this version's folder does not hold.
    pub like: Option<String>,
    /// The full version the reference peers name.
    pub announce: String,
    /// A real peer of this version confirmed the schemas.
    pub measured: bool,
    pub evidence: String,
    pub features: BTreeSet<String>,
    /// Oldest proxy version whose data a server of this version takes.
    pub accepts_proxies_from: String,
    pub plugin: Option<PluginProtocol>,
}

impl VersionInfo {
    /// Whether the version has `feature` (one of [`FEATURES`]; see [`feature`]).
    pub fn has(&self, feature: &str) -> bool {
        debug_assert!(
            FEATURES.iter().any(|(n, _)| *n == feature),
            "unknown feature {feature:?}"
        );
        self.features.contains(feature)
    }
}

/// Load `schemas/versions.yaml` under `root`: versions in order, each complete (`like`
/// applied), every feature known.
pub fn load(root: &Path) -> Result<Vec<VersionInfo>, String> {
    let path = root.join("schemas").join("versions.yaml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parse the text of `versions.yaml`.
pub fn parse(text: &str) -> Result<Vec<VersionInfo>, String> {
    let file: File = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let mut out: Vec<VersionInfo> = Vec::new();
    for e in file.versions {
        let parts: Vec<&str> = e.version.split('.').collect();
        let major_minor = parts.len() == 2
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if !major_minor {
            return Err(format!("version {:?} is not major.minor", e.version));
        }
        if out.iter().any(|v| v.version == e.version) {
            return Err(format!("version {} is listed twice", e.version));
        }
        if let Some(last) = out.last() {
            if super::compare_versions(&last.version, &e.version) != std::cmp::Ordering::Less {
                return Err(format!(
                    "version {} comes after {}: list versions oldest first",
                    e.version, last.version
                ));
            }
        }
        let base = match &e.like {
            None => None,
            Some(l) => Some(
                out.iter()
                    .find(|v| &v.version == l)
                    .ok_or_else(|| {
                        format!(
                            "version {}: like {l}, which is not listed before it",
                            e.version
                        )
                    })?
                    .clone(),
            ),
        };
        let features: BTreeSet<String> = match (e.features, &base) {
            (Some(f), _) => f.into_iter().collect(),
            (None, Some(b)) => b.features.clone(),
            (None, None) => BTreeSet::new(),
        };
        if let Some(f) = features
            .iter()
            .find(|f| !FEATURES.iter().any(|(n, _)| n == f))
        {
            let known: Vec<&str> = FEATURES.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "version {}: unknown feature {f:?} (known: {})",
                e.version,
                known.join(", ")
            ));
        }
        let accepts_proxies_from = e
            .accepts_proxies_from
            .or_else(|| base.as_ref().map(|b| b.accepts_proxies_from.clone()))
            .ok_or_else(|| format!("version {}: accepts_proxies_from is missing", e.version))?;
        out.push(VersionInfo {
            like: e.like,
            version: e.version,
            announce: e.announce,
            measured: e.measured,
            evidence: e.evidence,
            features,
            accepts_proxies_from,
            plugin: e.plugin.or_else(|| base.and_then(|b| b.plugin)),
        });
    }
    if out.is_empty() {
        return Err("no versions".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
versions:
  - { version: "6.0", announce: "6.0.14", measured: true, evidence: e, accepts_proxies_from: "4.2", features: [proxy-heartbeat], plugin: { register: "6.0.13" } }
  - { version: "7.0", announce: "7.0.0", measured: true, evidence: e, accepts_proxies_from: "6.0", features: [incremental-config], plugin: { register: "6.4.0", export_timeout: true } }
  - { version: "7.2", like: "7.0", announce: "7.2.0", measured: false, evidence: documented }
"#;

    #[test]
    fn like_copies_what_a_version_does_not_say() {
        let v = parse(TEXT).unwrap();
        assert_eq!(v.len(), 3);
        let v72 = &v[2];
        assert!(v72.has("incremental-config") && !v72.has("proxy-heartbeat"));
        assert_eq!(v72.accepts_proxies_from, "6.0");
        assert_eq!(v72.plugin.as_ref().unwrap().register, "6.4.0");
        assert!(!v72.measured);
    }

    #[test]
    fn mistakes_are_named() {
        let unknown = TEXT.replace("[incremental-config]", "[incremental-confg]");
        assert!(parse(&unknown)
            .unwrap_err()
            .contains("unknown feature \"incremental-confg\""));
        let order = TEXT.replace("version: \"6.0\"", "version: \"7.4\"");
        assert!(parse(&order).unwrap_err().contains("oldest first"));
        let like = TEXT.replace("like: \"7.0\"", "like: \"8.0\"");
        assert!(parse(&like).unwrap_err().contains("like 8.0"));
    }

    #[test]
    fn the_project_versions_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let v = load(&root).unwrap();
        assert!(v.iter().any(|x| x.version == "6.0" && x.measured));
    }
}

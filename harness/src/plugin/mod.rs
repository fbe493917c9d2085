//! Agent 2 loadable plugins: the harness plays the agent (the plugin host).
//!
//! - [`host`] launches a plugin binary the way Agent 2 does (`<path> <socket> true|false`),
//!   listens on a private Unix socket, talks the type+size framed JSON protocol, routes
//!   responses by id, collects log requests and checks every message the plugin sends
//!   against the `plugin` family schemas of the protocol version it imitates.
//! - [`certify`] is the certification suite behind `zbx-conform certify-plugin`: one named
//!   requirement per protocol rule, each PASS/WARN/FAIL with a reason; [`requirements`]
//!   is the table of those rules with each one's severity and source.
//! - [`cli`] is the subcommand's arguments and entry point.
//! - [`mock`] is the other direction: a mock plugin that a real Agent 2 launches, which
//!   validates and records what the agent sends (`zbx-conform mock-plugin`); with
//!   [`mock_scenario`] its metrics and replies come from a YAML file.
//!
//! Facts: protocol.md §4 (6.0.14 agent2 and the plugin SDK it was built with).

pub mod certify;
pub mod cli;
pub mod discover;
pub mod host;
pub mod mock;
pub mod mock_scenario;
pub mod options;
pub mod requirements;

use crate::catalog::Catalog;

pub use certify::{certify, Certification, CertifyOptions, RequirementResult, Verdict};
pub use cli::{certify_main, CertifyArgs};
pub use host::{
    Checked, HostConfig, HostError, MessageChecker, PluginHost, Received, SessionLog, WireProblem,
    WireProblemKind,
};
pub use mock::{mock_main, MockArgs};
pub use mock_scenario::{is_mock_plugin_file, MockScenario, Outcome};
pub use requirements::{Requirement, RequirementId, Severity, Source, REQUIREMENTS};

/// The catalog family of the plugin protocol.
pub const FAMILY: &str = "plugin";

/// Which agent generation the harness imitates, from the catalog's version data
/// (`schemas/versions.yaml`, `plugin:`): the catalog version (schemas) and the Register
/// `version` string an agent of that generation sends differ (6.4 and 7.0 agents both
/// send "6.4.0"), and whether its Export requests carry the item timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginVersion {
    catalog: String,
    register: String,
    export_timeout: bool,
    /// A real agent of this generation confirmed the catalog (schemas/versions.yaml).
    measured: bool,
}

impl PluginVersion {
    /// Every version with a plugin protocol, oldest first.
    pub fn all(catalog: &Catalog) -> Vec<PluginVersion> {
        catalog
            .all_versions()
            .iter()
            .filter_map(|v| {
                v.plugin.as_ref().map(|p| PluginVersion {
                    catalog: v.version.clone(),
                    register: p.register.clone(),
                    export_timeout: p.export_timeout,
                    measured: v.measured,
                })
            })
            .collect()
    }

    /// The version `s` (a catalog version such as `7.0`), or an error naming the known ones.
    pub fn parse(catalog: &Catalog, s: &str) -> Result<PluginVersion, String> {
        let all = PluginVersion::all(catalog);
        all.iter()
            .find(|v| v.catalog == s.trim())
            .cloned()
            .ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|v| v.catalog.as_str()).collect();
                format!(
                    "unknown plugin protocol version {s:?} (known: {})",
                    known.join(", ")
                )
            })
    }

    /// The folder name under `schemas/plugin/`.
    pub fn catalog_version(&self) -> &str {
        &self.catalog
    }

    /// Whether a real agent of this generation confirmed the catalog.
    pub fn measured(&self) -> bool {
        self.measured
    }

    /// The `version` member of the Register request an agent of this generation sends
    /// (protocol.md §4.4): compared by plugins for exact string equality.
    pub fn wire_version(&self) -> &str {
        &self.register
    }

    /// An Export request as an agent of this generation sends it (without `id`): 7.0
    /// agents add the item timeout in whole seconds as `timeout` (measured on agent2
    /// 7.0.22: 10 for `zabbix_get -t 10`, ci/NOTES-trixie.md §6); 6.0 sends none.
    pub fn export_request(&self, key: &str, timeout: std::time::Duration) -> serde_json::Value {
        let mut msg = serde_json::json!({"type": types::EXPORT_REQUEST, "key": key});
        if self.export_timeout {
            msg["timeout"] = serde_json::json!(timeout.as_secs().clamp(1, 600));
        }
        msg
    }
}

impl std::fmt::Display for PluginVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.catalog_version())
    }
}

/// Message type codes (protocol.md §4.2).
pub mod types {
    pub const LOG_REQUEST: u64 = 1;
    pub const REGISTER_REQUEST: u64 = 2;
    pub const REGISTER_RESPONSE: u64 = 3;
    pub const START_REQUEST: u64 = 4;
    pub const TERMINATE_REQUEST: u64 = 5;
    pub const EXPORT_REQUEST: u64 = 6;
    pub const EXPORT_RESPONSE: u64 = 7;
    pub const CONFIGURE_REQUEST: u64 = 8;
    pub const VALIDATE_REQUEST: u64 = 9;
    pub const VALIDATE_RESPONSE: u64 = 10;
}

/// Interface bits of the Register response (protocol.md §4.2).
pub mod interfaces {
    pub const EXPORTER: u64 = 1;
    pub const CONFIGURATOR: u64 = 2;
    pub const RUNNER: u64 = 4;
    /// Every bit a loadable plugin may set.
    pub const ALL: u64 = EXPORTER | CONFIGURATOR | RUNNER;
}

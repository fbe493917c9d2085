//! Which agent generation a plugin was built for, by the means the protocol gives: a
//! plugin accepts only the exact Register `version` string of its SDK and refuses any
//! other with an error (protocol.md §4.4). The plugin is started in registration mode
//! and offered each generation's string, newest first, until one is accepted. Several
//! generations send the same string (6.4, 7.0, 7.2 and 7.4 send "6.4.0"); the plugin is
//! then certified as the newest of them a real agent was measured at.

use super::host::{HostConfig, HostError, MessageChecker, PluginHost};
use super::{types, PluginVersion};
use std::sync::Arc;
use std::time::Duration;

/// What the plugin accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub version: PluginVersion,
    /// The Register version string it accepted.
    pub wire: String,
    /// For the reader: other generations that send the same string.
    pub note: Option<String>,
}

/// Why the plugin could not tell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoverError {
    /// It could not be started or did not connect (exit code 3).
    #[error("{0}")]
    Start(String),
    /// It refused every Register version the catalog knows.
    #[error(
        "the plugin refused every Register version ({tried}); pass --version to certify one anyway"
    )]
    Refused { tried: String },
}

/// The generation a plugin accepting `wire` is certified as: the newest measured one
/// sending it, else the newest.
fn representative<'a>(versions: &'a [PluginVersion], wire: &str) -> Option<&'a PluginVersion> {
    let mut sending = versions.iter().rev().filter(|v| v.wire_version() == wire);
    let newest = sending.clone().next();
    sending.find(|v| v.measured()).or(newest)
}

/// Offer each distinct Register version (newest generation first) to a fresh
/// registration run of the plugin.
pub async fn register_version(
    program: &std::path::Path,
    checker: Arc<MessageChecker>,
    versions: &[PluginVersion],
    timeout: Duration,
) -> Result<Discovered, DiscoverError> {
    let mut tried = Vec::new();
    let mut offered: Vec<&str> = Vec::new();
    for newest in versions.iter().rev() {
        let wire = newest.wire_version();
        if offered.contains(&wire) {
            continue;
        }
        offered.push(wire);
        let version = representative(versions, wire).unwrap_or(newest);
        let cfg = HostConfig::new(program, version.clone());
        let mut host = match PluginHost::launch(&cfg, checker.clone(), true).await {
            Ok(h) => h,
            Err(e @ HostError::Start { .. }) => return Err(DiscoverError::Start(e.to_string())),
            Err(e) => {
                tried.push(format!("\"{wire}\": {e}"));
                continue;
            }
        };
        let request = serde_json::json!({"type": types::REGISTER_REQUEST, "version": wire});
        let answer = host.request(request, timeout).await;
        let _ = host.terminate(timeout).await;
        match answer {
            Ok(r) if r.error().is_none_or(str::is_empty) => {
                let same: Vec<String> = versions
                    .iter()
                    .filter(|v| v.wire_version() == wire && *v != version)
                    .map(|v| v.to_string())
                    .collect();
                let note = (!same.is_empty()).then(|| {
                    format!(
                        "{} agents send the same Register version; certifying as {version} (--version picks another)",
                        same.join(", ")
                    )
                });
                return Ok(Discovered {
                    version: version.clone(),
                    wire: wire.to_string(),
                    note,
                });
            }
            Ok(r) => tried.push(format!("\"{wire}\": {}", r.error().unwrap_or_default())),
            Err(e) => tried.push(format!("\"{wire}\": {e}")),
        }
    }
    Err(DiscoverError::Refused {
        tried: tried.join("; "),
    })
}

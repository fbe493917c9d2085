//! What a reference peer is given: [`Setup`] when it starts (checked by the registry:
//! a known version, a fault the peer implements, an address when it connects), and the
//! [`PeerContext`] every part of it reads while it runs.

use super::data;
use super::fault::Fault;
use super::version;
use crate::catalog::VersionInfo;
use crate::transport::tls::TlsConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Everything a peer's start function needs.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// The reference peer's name.
    pub name: &'static str,
    /// The protocol version it speaks, as the catalog describes it.
    pub version: Arc<VersionInfo>,
    pub fault: Option<Fault>,
    /// Where a connecting peer connects (checked present for them by the registry).
    pub connect_to: Option<SocketAddr>,
    /// Where a listening peer listens.
    pub listen: String,
    /// The data root (holds `fixtures/`), for peers that answer with fixture data.
    pub data_root: PathBuf,
    /// The version and those it is `like`, in the order its fixtures are looked up.
    pub lineage: Vec<String>,
    /// `reference:<name> <announce>[ (fault: ...)]`.
    pub describe: String,
    /// What it accepts when it listens and how it connects (plaintext unless the
    /// scenario encrypts: see [`crate::reference::start_with_tls`]).
    pub tls: Arc<TlsConfig>,
}

impl Setup {
    /// The context the peer runs with: a fresh session and start time.
    pub fn context(&self) -> PeerContext {
        PeerContext {
            version: self.version.clone(),
            fault: self.fault,
            session: data::new_session(),
            started: data::now().0,
            tls: self.tls.clone(),
        }
    }

    /// The address a connecting peer connects to.
    pub fn target(&self) -> Result<SocketAddr, String> {
        self.connect_to.ok_or_else(|| {
            format!(
                "reference peer {} needs an address to connect to",
                self.name
            )
        })
    }

    /// Bind the listening address.
    pub async fn bind(&self) -> Result<TcpListener, String> {
        crate::transport::bind_listener(&self.listen)
            .await
            .map_err(|e| e.to_string())
    }
}

/// What every reference peer is configured with while it runs.
#[derive(Debug, Clone)]
pub(crate) struct PeerContext {
    /// The version it speaks: what it announces and which behaviours it has.
    pub version: Arc<VersionInfo>,
    pub fault: Option<Fault>,
    /// Session token, fixed for the peer's lifetime like a proxy's per-process session.
    pub session: String,
    /// Unix time the peer started (base of its data rows' clocks).
    pub started: i64,
    /// How it connects out (and what its listener accepts).
    pub tls: Arc<TlsConfig>,
}

impl PeerContext {
    /// Whether the version has `feature` (`catalog::versions::feature`).
    pub fn has(&self, feature: &str) -> bool {
        self.version.has(feature)
    }

    /// The version the peer announces (wrong on purpose under `wrong-version`).
    pub fn announced(&self) -> &str {
        version::announced(&self.version, self.fault)
    }

    /// Whether the fault is `f`.
    pub fn is(&self, f: Fault) -> bool {
        self.fault == Some(f)
    }
}

/// A context at one of the project's versions (`schemas/versions.yaml`), for unit tests.
#[cfg(test)]
pub(crate) fn test_context(version: &str, fault: Option<Fault>) -> PeerContext {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let info = crate::catalog::versions::load(&root)
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.version == version)
        .unwrap_or_else(|| panic!("version {version} is in schemas/versions.yaml"));
    PeerContext {
        version: Arc::new(info),
        fault,
        session: data::new_session(),
        started: data::now().0,
        tls: Default::default(),
    }
}

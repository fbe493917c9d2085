//! Built-in reference peers: in-process implementations of the other side of each
//! conversation, so that the standard suites pass on a machine without Zabbix, plus
//! deliberately broken variants (faults) that prove every check can fail.
//!
//! Each peer behaves like the real 6.0.14 component as protocol.md describes it
//! (§1.4 framing errors, §1.7 trapper payload handling, §2 server<->proxy, §3 agents),
//! and at later versions like those are described there and measured on 7.0.22
//! (ci/NOTES-trixie.md). What differs between versions is data: the peer is given the
//! catalog's [`VersionInfo`] (`schemas/versions.yaml`: the version it announces, the
//! behaviours it has, the proxies a server accepts) and reads the configuration a
//! server hands out from the version's fixtures ([`server_config`]); no peer branches
//! on a version number, so a version folder added as data is spoken without Rust.
//!
//! [`REFERENCES`] is the one registry: every peer's name, description, what it listens
//! for or where it connects, its faults and its start function. The modules it points
//! at never import this one (shared pieces live in leaf modules: [`task`], `context`,
//! `wire`, `fault`, `agent_common`...), so there is no import circle. Every read has a
//! timeout, frames are capped at `wire::MAX_FRAME`, the number of concurrent
//! connections is bounded, and [`RunningPeer::stop`] ends every task at once.

mod active_proxy;
mod agent_active;
mod agent_common;
mod agent_passive;
mod context;
mod data;
mod fault;
mod passive_proxy;
mod sections;
mod server_config;
mod server_poller;
mod server_trapper;
mod task;
mod trapper_agents;
mod version;
mod wire;

pub use data::PROXY_HOST;
pub use fault::Fault;
pub use task::RunningPeer;

use crate::catalog::{Catalog, VersionInfo};
use crate::transport::tls::TlsConfig;
use context::Setup;
use std::net::SocketAddr;
use std::sync::Arc;
// The fault lists of the registry read better without `Fault::` on every line.
use Fault::*;

/// What a reference peer needs to start.
#[derive(Debug, Clone)]
pub struct ReferenceConfig {
    /// Reference name (see [`references`]).
    pub name: String,
    /// Protocol version to speak, as the catalog names it ("6.0") or as the peer
    /// announces it ("6.0.14").
    pub version: String,
    /// Deliberate misbehaviour (see [`faults`]).
    pub fault: Option<String>,
    /// For peers that connect to the harness: the harness's listen address.
    pub connect_to: Option<SocketAddr>,
    /// For listening peers: where to listen (default `127.0.0.1:0`, a free port).
    pub listen: Option<String>,
}

/// What a reference peer listens for, or where it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// It listens (at [`ReferenceConfig::listen`]) for what the text names.
    Listens(&'static str),
    /// It connects to [`ReferenceConfig::connect_to`]: the text names to whom.
    Connects(&'static str),
    /// It connects (first text) and also listens (second text), as an active proxy
    /// does for its agents.
    ConnectsAndListens(&'static str, &'static str),
}

impl Reach {
    /// What it listens for, if it listens.
    pub fn listens(self) -> Option<&'static str> {
        match self {
            Reach::Listens(what) | Reach::ConnectsAndListens(_, what) => Some(what),
            Reach::Connects(_) => None,
        }
    }

    /// Where it connects, if it connects.
    pub fn connects(self) -> Option<&'static str> {
        match self {
            Reach::Connects(to) | Reach::ConnectsAndListens(to, _) => Some(to),
            Reach::Listens(_) => None,
        }
    }
}

/// One reference peer.
pub struct Reference {
    /// The name scenarios give as `peer.reference`.
    pub name: &'static str,
    /// What it is and how it behaves.
    pub description: &'static str,
    pub reach: Reach,
    /// The faults it implements, in [`faults`] order.
    pub faults: &'static [Fault],
    start: fn(Setup) -> task::Started,
}

impl std::fmt::Debug for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reference")
            .field("name", &self.name)
            .field("reach", &self.reach)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

/// Every reference peer.
pub const REFERENCES: &[Reference] = &[
    Reference {
        name: "passive-proxy",
        description: "a passive proxy: data is committed only after the server's ack; 6.4+: \
            proxy config is the revision dialogue on one connection; polls the agent \
            interfaces and runs the TCP discovery rules of its configuration, registers \
            active agents and runs `echo` remote commands and diagnostic tasks",
        reach: Reach::Listens(
            "a server's proxy config / proxy data / proxy tasks (the harness plays the \
             server), sender data, agents' active checks and heartbeats",
        ),
        faults: &[
            WrongResponse,
            MissingFields,
            WrongTypes,
            WrongVersion,
            BadFrame,
            NoReply,
            NoAckWait,
            NoClose,
            Uncompressed,
            ExtraBytes,
            RepliesUnknown,
            StaleRevision,
            ResetOnUnchanged,
            LenientFrames,
            BrokenSections,
        ],
        start: |s| Box::pin(passive_proxy::start(s)),
    },
    Reference {
        name: "active-proxy",
        description: "an active proxy named \"zbx-conform-proxy\": cycles proxy heartbeat \
            (versions with proxy-heartbeat), proxy config (6.4+: with session and \
            config_revision), proxy data, one request per connection, retrying quietly",
        reach: Reach::ConnectsAndListens(
            "the server (the harness plays its trapper)",
            "agents and senders, as a trapper: sender data, active checks, 6.4+ active \
             check heartbeat",
        ),
        faults: &[
            MissingFields,
            WrongTypes,
            WrongVersion,
            BadFrame,
            NoReply,
            NoAckWait,
            Uncompressed,
            ExtraBytes,
            StaleRevision,
            ResetOnUnchanged,
            BrokenSections,
        ],
        start: |s| Box::pin(active_proxy::start(s)),
    },
    Reference {
        name: "server-trapper",
        description: "a server trapper for active proxies: every host is known except names \
            starting with \"unknown\"; hands out the configuration of \
            fixtures/server-proxy/<version>/proxy-config.trapper.{tables,sync}.json",
        reach: Reach::Listens(
            "an active proxy's proxy heartbeat / proxy config / proxy data (the harness \
             plays the proxy)",
        ),
        faults: &[
            WrongResponse,
            MissingFields,
            WrongTypes,
            NoVersionCheck,
            BadFrame,
            NoReply,
            NoClose,
            Uncompressed,
            ExtraBytes,
            RepliesUnknown,
            StaleRevision,
            LenientFrames,
        ],
        start: |s| Box::pin(server_trapper::start(s)),
    },
    Reference {
        name: "server-poller",
        description: "a server polling a passive proxy: cycles proxy config (tables in \
            \"data\"), proxy data + ack, proxy tasks + ack, one exchange per connection \
            (6.4+: proxy config is the revision dialogue: full sync for revision 0, {} when \
            current); pushes the configuration the server trapper hands out",
        reach: Reach::Connects("the passive proxy (the harness)"),
        faults: &[
            WrongResponse,
            MissingFields,
            WrongTypes,
            BadFrame,
            NoReply,
            NoClose,
            ExtraBytes,
            StaleRevision,
        ],
        start: |s| Box::pin(server_poller::start(s)),
    },
    Reference {
        name: "agent-passive",
        description: "a passive agent (zabbix_agentd style): answers one plain-text passive \
            check per connection from a fixed table (agent.ping → 1, agent.version → the \
            full version, agent.hostname → zbx-conform-agent, agent.variant → 1), anything \
            else ZBX_NOTSUPPORTED + NUL + \"Unsupported item key.\", then closes; with \
            json-passive-checks (7.0) also JSON passive checks \
            (`{\"request\":\"passive checks\",...}` → version, variant 1, the first item's \
            value or error, or a request error, as zabbix_agentd 7.0.22 answers)",
        reach: Reach::Listens("passive checks (the harness plays the server or proxy)"),
        faults: &[
            WrongResponse,
            MissingFields,
            WrongTypes,
            BadFrame,
            NoReply,
            NoClose,
            ExtraBytes,
            NoNul,
            NoJson,
        ],
        start: |s| Box::pin(agent_passive::start(s)),
    },
    Reference {
        name: "agent-active",
        description: "an active agent named \"zbx-conform-agent\" (zabbix_agentd style, no \
            version field): asks for `active checks`, then sends `agent data` rows for the \
            items it was given, one request per connection, every 200 ms; 6.4+ as \
            zabbix_agentd 7.0.22: version, session and config_revision in `active checks`, \
            itemid items only, itemid rows, an `active check heartbeat` at start and every \
            second (7.0: variant 1 everywhere)",
        reach: Reach::Connects("the server trapper (the harness)"),
        faults: &[
            MissingFields,
            WrongTypes,
            BadFrame,
            NoReply,
            ExtraBytes,
            StaleRevision,
        ],
        start: |s| Box::pin(agent_active::start(s)),
    },
    Reference {
        name: "server-for-agents",
        description: "a server trapper for agents and senders: answers `active checks` with \
            agent.ping and agent.version (legacy item shape without version, itemid shape \
            for version >= 4.4; 6.4+ with config_revision 7001 and no items for an agent \
            reporting it; 7.0 items with a timeout), `agent data` and `sender data` with \
            processed/failed/total counts (hosts or keys starting with \"unknown\" count as \
            failed; itemid rows count with the message's host)",
        reach: Reach::Listens(
            "agents' active checks and agent data, senders' sender data (the harness plays \
             the agent or sender)",
        ),
        faults: &[
            WrongResponse,
            MissingFields,
            WrongTypes,
            BadFrame,
            NoReply,
            NoClose,
            ExtraBytes,
            StaleRevision,
        ],
        start: |s| Box::pin(trapper_agents::start(s)),
    },
];

/// The registry entry of `name`.
pub fn find(name: &str) -> Option<&'static Reference> {
    REFERENCES.iter().find(|r| r.name == name)
}

/// The name of every reference peer.
pub fn names() -> Vec<&'static str> {
    REFERENCES.iter().map(|r| r.name).collect()
}

/// `(name, description)` of every reference peer.
pub fn references() -> Vec<(&'static str, &'static str)> {
    REFERENCES.iter().map(|r| (r.name, r.description)).collect()
}

/// `(name, description)` of every fault. The description says what the fault does and
/// which check kind it breaks; [`faults_for`] says which peers implement it.
pub fn faults() -> Vec<(&'static str, &'static str)> {
    fault::FAULTS
        .iter()
        .map(|(_, name, what)| (*name, *what))
        .collect()
}

/// Names of the faults the reference peer `reference` implements (none for a name the
/// registry does not know).
pub fn faults_for(reference: &str) -> Vec<&'static str> {
    find(reference)
        .map(|r| r.faults.iter().map(|f| f.name()).collect())
        .unwrap_or_default()
}

/// The catalog's version `version` names, by protocol version ("6.0") or by what a
/// peer of it announces ("6.0.14").
fn version_of<'c>(catalog: &'c Catalog, version: &str) -> Option<&'c VersionInfo> {
    let v = version.trim();
    catalog.version_info(v).or_else(|| {
        catalog
            .all_versions()
            .iter()
            .find(|info| info.announce == v)
    })
}

/// Start a reference peer speaking a version of `catalog` (whose data root holds the
/// fixtures the servers answer with).
pub async fn start(cfg: &ReferenceConfig, catalog: &Catalog) -> Result<RunningPeer, String> {
    start_with_tls(cfg, catalog, TlsConfig::plaintext()).await
}

/// [`start`] with encryption: a listening peer accepts what `tls.accept` lists (told
/// by the first byte, a connection of another type closed unanswered, a wrong PSK
/// identity or key refused in the handshake), a connecting peer connects as
/// `tls.connect` says. `tls` is the peer's side, not the harness's: see
/// [`TlsConfig::mirrored`].
pub async fn start_with_tls(
    cfg: &ReferenceConfig,
    catalog: &Catalog,
    tls: TlsConfig,
) -> Result<RunningPeer, String> {
    let reference = find(&cfg.name).ok_or_else(|| {
        format!(
            "unknown reference peer {:?} (known: {})",
            cfg.name,
            names().join(", ")
        )
    })?;
    let name = reference.name;
    let version = version_of(catalog, &cfg.version).ok_or_else(|| {
        let known: Vec<&str> = catalog
            .all_versions()
            .iter()
            .map(|v| v.version.as_str())
            .collect();
        format!(
            "reference peer {name} cannot speak version {:?} (known: {})",
            cfg.version,
            known.join(", ")
        )
    })?;
    let fault = match cfg.fault.as_deref() {
        None => None,
        Some(f) => {
            let parsed = Fault::parse(f).ok_or_else(|| {
                let known: Vec<&str> = faults().into_iter().map(|(n, _)| n).collect();
                format!("unknown fault {f:?} (known: {})", known.join(", "))
            })?;
            if !reference.faults.contains(&parsed) {
                return Err(format!(
                    "fault {f:?} is not implemented by reference peer {name} (it has: {})",
                    faults_for(name).join(", ")
                ));
            }
            Some(parsed)
        }
    };
    if reference.reach.connects().is_some() && cfg.connect_to.is_none() {
        return Err(format!(
            "reference peer {name} needs an address to connect to"
        ));
    }
    let mut describe = format!("reference:{name} {}", version.announce);
    if let Some(f) = fault {
        describe.push_str(&format!(" (fault: {})", f.name()));
    }
    let setup = Setup {
        name,
        version: Arc::new(version.clone()),
        fault,
        connect_to: cfg.connect_to,
        listen: cfg
            .listen
            .clone()
            .unwrap_or_else(|| "127.0.0.1:0".to_string()),
        data_root: catalog.root().to_path_buf(),
        lineage: catalog.lineage(&version.version),
        describe,
        tls: Arc::new(tls),
    };
    (reference.start)(setup).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_belongs_to_a_peer_and_every_peer_has_faults() {
        for (f, name, _) in fault::FAULTS {
            assert!(
                REFERENCES.iter().any(|r| r.faults.contains(f)),
                "no peer implements {name}"
            );
        }
        for r in REFERENCES {
            assert!(!r.faults.is_empty(), "{}", r.name);
            let order: Vec<&str> = fault::FAULTS
                .iter()
                .filter(|(f, _, _)| r.faults.contains(f))
                .map(|(_, n, _)| *n)
                .collect();
            assert_eq!(faults_for(r.name), order, "{}: in faults() order", r.name);
        }
        let mut names = names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REFERENCES.len(), "names are unique");
    }
}

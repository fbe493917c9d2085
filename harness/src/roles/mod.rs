//! Built-in reference peers: in-process implementations of the other side of each
//! conversation, so that the standard suites pass on a machine without Zabbix, plus
//! deliberately broken variants (faults) that prove every check can fail.
//!
//! Each peer behaves like the real 6.0.14 component as protocol.md describes it
//! (§1.4 framing errors, §1.7 trapper payload handling, §2 server<->proxy), and at 6.4
//! and 7.0 like those versions are described there (§2.2, §2.4, §2.5: incremental
//! configuration sync, `host data`, no heartbeats from proxies); no real 6.4/7.0 peer
//! was available to confirm the latter. Every read
//! has a timeout, frames are capped at [`wire::MAX_FRAME`], the number of concurrent
//! connections is bounded, and [`RunningPeer::stop`] ends every task at once.

mod active_proxy;
mod agent_active;
mod agent_passive;
mod agent_registry;
mod data;
mod fault;
mod passive_proxy;
mod sections;
mod server_poller;
mod server_trapper;
mod trapper_agents;
mod version;
mod wire;

pub use data::PROXY_HOST;
pub use fault::Fault;
pub use version::{VersionProfile, VERSIONS};

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// A reference peer that is running.
pub struct RunningPeer {
    /// Where it listens, for peers the harness connects to.
    pub listen: Option<SocketAddr>,
    /// Human-readable description for reports (`reference:passive-proxy`, fault...).
    pub describe: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningPeer {
    /// Stop the peer and wait for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
        }
    }
}

/// What a reference peer needs to start.
#[derive(Debug, Clone)]
pub struct ReferenceConfig {
    /// Reference name (see [`references`]).
    pub name: String,
    /// Protocol version to speak ("5.4", "6.0", ...).
    pub version: String,
    /// Deliberate misbehaviour (see [`faults`]).
    pub fault: Option<String>,
    /// For peers that connect to the harness: the harness's listen address.
    pub connect_to: Option<SocketAddr>,
    /// For listening peers: where to listen (default `127.0.0.1:0`, a free port).
    pub listen: Option<String>,
}

impl ReferenceConfig {
    /// The address a listening peer binds.
    pub(crate) fn listen_addr(&self) -> &str {
        self.listen.as_deref().unwrap_or("127.0.0.1:0")
    }
}

/// Name, description, and whether the peer listens (true) or connects (false).
const REFERENCES: &[(&str, &str, bool)] = &[
    (
        "passive-proxy",
        "a passive proxy: listens; the harness plays the server and connects to send proxy \
         config / proxy data / proxy tasks (data is committed only after the server's ack); \
         6.4+: proxy config is the revision dialogue on one connection; polls the agent \
         interfaces and runs the TCP discovery rules of its configuration, registers \
         active agents and runs `echo` remote commands and diagnostic tasks",
        true,
    ),
    (
        "active-proxy",
        "an active proxy named \"zbx-conform-proxy\": connects to the harness (connect_to), \
         which plays the server trapper; cycles proxy heartbeat (up to 6.0), proxy config \
         (6.4+: with session and config_revision), proxy data, one request per connection, \
         retrying quietly; also listens as a trapper for agents and senders (sender data, \
         active checks, 6.4+ active check heartbeat)",
        false,
    ),
    (
        "server-trapper",
        "a server trapper: listens; the harness plays an active proxy and connects with proxy \
         heartbeat / proxy config / proxy data (every host is known except names starting with \
         \"unknown\")",
        true,
    ),
    (
        "server-poller",
        "a server polling a passive proxy: connects to the harness (connect_to), which plays the \
         passive proxy; cycles proxy config (tables in \"data\"), proxy data + ack, proxy tasks + \
         ack, one exchange per connection (6.4+: proxy config is the revision dialogue: \
         full sync for revision 0, {} when current)",
        false,
    ),
];

/// How many connections a listening reference peer serves at once.
const MAX_CONNECTIONS: usize = 32;

/// `(name, description)` of every reference peer.
pub fn references() -> Vec<(&'static str, &'static str)> {
    REFERENCES
        .iter()
        .chain(agent_registry::REFERENCES)
        .map(|(n, d, _)| (*n, *d))
        .collect()
}

/// `(name, description)` of every fault. The description says what the fault does and
/// which check kind it breaks; [`faults_for`] says which peers implement it.
pub fn faults() -> Vec<(&'static str, &'static str)> {
    fault::FAULTS
        .iter()
        .map(|(_, name, what, _)| (*name, *what))
        .chain(agent_registry::extra_faults())
        .collect()
}

/// Names of the faults the reference peer `reference` implements.
pub fn faults_for(reference: &str) -> Vec<&'static str> {
    if agent_registry::REFERENCES
        .iter()
        .any(|(n, _, _)| *n == reference)
    {
        return agent_registry::faults_for(reference);
    }
    fault::FAULTS
        .iter()
        .filter(|(_, _, _, refs)| refs.contains(&reference))
        .map(|(_, name, _, _)| *name)
        .collect()
}

/// Start a reference peer.
pub async fn start(cfg: &ReferenceConfig) -> Result<RunningPeer, String> {
    if let Some(started) = agent_registry::start(cfg).await {
        return started;
    }
    let Some(&(name, _, listens)) = REFERENCES.iter().find(|(n, _, _)| *n == cfg.name) else {
        let known: Vec<&str> = REFERENCES.iter().map(|(n, _, _)| *n).collect();
        return Err(format!(
            "unknown reference peer {:?} (known: {})",
            cfg.name,
            known.join(", ")
        ));
    };
    let profile = version::lookup(&cfg.version).ok_or_else(|| {
        format!(
            "reference peer {name} cannot speak version {:?} (supported: {})",
            cfg.version,
            version::supported().join(", ")
        )
    })?;
    let fault = match cfg.fault.as_deref() {
        None => None,
        Some(f) => {
            let parsed = Fault::parse(f).ok_or_else(|| {
                let known: Vec<&str> = fault::FAULTS.iter().map(|(_, n, _, _)| *n).collect();
                format!("unknown fault {f:?} (known: {})", known.join(", "))
            })?;
            if !parsed.applies_to(name) {
                return Err(format!(
                    "fault {f:?} is not implemented by reference peer {name}"
                ));
            }
            Some(parsed)
        }
    };
    let mut describe = format!("reference:{name} {}", profile.full);
    if let Some(f) = fault {
        describe.push_str(&format!(" (fault: {})", f.name()));
    }
    let ctx = PeerContext {
        profile,
        fault,
        session: data::new_session(),
        started: data::now().0,
    };
    if name == "active-proxy" {
        // It connects to the server and listens as a trapper (agents, senders).
        let target = cfg
            .connect_to
            .ok_or_else(|| format!("reference peer {name} needs an address to connect to"))?;
        let listener = crate::transport::bind_listener("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let sections = std::sync::Arc::new(sections::Sections::new(ctx.profile, ctx.fault));
        let proxy = std::sync::Arc::new(active_proxy::ActiveProxy::new(ctx, sections.clone()));
        let trapper: std::sync::Arc<dyn Serve> = proxy.clone();
        return Ok(spawn(describe, Some(addr), move |stop| async move {
            tokio::select! {
                _ = serve(listener, trapper, stop) => {}
                _ = proxy.run(target) => {}
                _ = sections.run() => {}
            }
        }));
    }
    if listens {
        let listener = crate::transport::bind_listener(cfg.listen_addr())
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        if name == "passive-proxy" {
            let sections = std::sync::Arc::new(sections::Sections::new(ctx.profile, ctx.fault));
            let peer: std::sync::Arc<dyn Serve> =
                std::sync::Arc::new(passive_proxy::PassiveProxy::new(ctx, sections.clone()));
            return Ok(spawn(describe, Some(addr), move |stop| async move {
                tokio::select! {
                    _ = serve(listener, peer, stop) => {}
                    _ = sections.run() => {}
                }
            }));
        }
        let peer: std::sync::Arc<dyn Serve> =
            std::sync::Arc::new(server_trapper::ServerTrapper::new(ctx));
        Ok(spawn(describe, Some(addr), move |stop| {
            serve(listener, peer, stop)
        }))
    } else {
        let target = cfg
            .connect_to
            .ok_or_else(|| format!("reference peer {name} needs an address to connect to"))?;
        Ok(spawn(describe, None, move |stop| {
            until_stopped(stop, server_poller::run(ctx, target))
        }))
    }
}

/// What every reference peer is configured with.
#[derive(Debug, Clone)]
pub(crate) struct PeerContext {
    pub profile: &'static VersionProfile,
    pub fault: Option<Fault>,
    /// Session token, fixed for the peer's lifetime like a proxy's per-process session.
    pub session: String,
    /// Unix time the peer started (base of its data rows' clocks).
    pub started: i64,
}

/// A listening peer: serves one accepted connection.
pub(crate) trait Serve: Send + Sync + 'static {
    fn serve(
        self: std::sync::Arc<Self>,
        conn: wire::Conn,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;
}

fn spawn<F, Fut>(describe: String, listen: Option<SocketAddr>, body: F) -> RunningPeer
where
    F: FnOnce(oneshot::Receiver<()>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(body(rx));
    RunningPeer {
        listen,
        describe,
        shutdown: Some(tx),
        task: Some(task),
    }
}

/// Run `work` until it ends or the peer is stopped (or its handle dropped); dropping
/// the future cancels whatever I/O it was waiting for.
async fn until_stopped(stop: oneshot::Receiver<()>, work: impl Future<Output = ()>) {
    tokio::select! {
        _ = stop => {}
        _ = work => {}
    }
}

/// Accept loop of a listening peer: one task per connection, at most
/// [`MAX_CONNECTIONS`] at once; stopping drops the set, which aborts every task.
async fn serve(
    listener: TcpListener,
    peer: std::sync::Arc<dyn Serve>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept(), if tasks.len() < MAX_CONNECTIONS => {
                match accepted {
                    Ok((stream, addr)) => {
                        let _ = stream.set_nodelay(true);
                        let conn = wire::conn(stream, addr.to_string());
                        tasks.spawn(peer.clone().serve(conn));
                    }
                    // Transient accept errors (EMFILE...): back off briefly, keep serving.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
    }
    tasks.abort_all();
}

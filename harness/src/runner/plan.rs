//! From scenario files to jobs: load and lint, filter by tag and name, ask every peer the
//! harness did not start which protocol version it speaks, and keep each scenario's case
//! for that version only. A 5.4 case run against a 6.0 proxy fails on every version
//! pattern: that is a false failure, not a finding.
//!
//! Also decided here, because it depends on where each scenario's peer is: which jobs
//! share a long-lived peer and must take turns (`Share`).

use super::{peer::LoadedProfile, RunOptions};
use crate::catalog::Catalog;
use crate::check::SchemaCache;
use crate::discover::{self, DiscoverError, PeerIdentity};
use crate::scenario::vars::Vars;
use crate::scenario::{self, LoadedScenario, ScenarioError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// One scenario at one version.
#[derive(Debug, Clone)]
pub struct Job {
    pub scenario: Arc<LoadedScenario>,
    pub version: String,
    /// What the peer said it is, when it was asked.
    pub peer: Option<Arc<PeerIdentity>>,
    /// Long-lived things this job shares with others (a peer address, a fixed listen
    /// address): the runner lets it start only when it may use them.
    pub share: Vec<Share>,
    /// The run's socket on a fixed listen address, bound once for the whole run: a peer
    /// that connects to the harness (an active proxy) must never find the port closed
    /// between two scenarios, or it backs off for minutes (120 s for a 6.0 proxy's
    /// configuration request).
    pub listener: Option<Arc<std::net::TcpListener>>,
}

/// The sockets of a run's fixed listen addresses, one per address.
#[derive(Debug, Default)]
struct Listeners(BTreeMap<String, Arc<std::net::TcpListener>>);

impl Listeners {
    fn get(&mut self, addr: &str) -> Result<Arc<std::net::TcpListener>, RunError> {
        if let Some(l) = self.0.get(addr) {
            return Ok(l.clone());
        }
        let l = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| RunError::Unreachable(format!("cannot listen on {addr}: {e}")))?;
        let l = Arc::new(l);
        self.0.insert(addr.to_string(), l.clone());
        Ok(l)
    }
}

/// A tokio listener on the same socket as `l` (a duplicate descriptor: closing it
/// leaves the run's socket bound).
pub fn tokio_listener(l: &std::net::TcpListener) -> std::io::Result<tokio::net::TcpListener> {
    let dup = l.try_clone()?;
    dup.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(dup)
}

/// A resource several jobs may point at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Share {
    /// `peer 127.0.0.1:10051` or `listen 127.0.0.1:10051`.
    pub key: String,
    /// Whether the job needs it alone (it changes or depends on the peer's state, or it
    /// binds the address).
    pub exclusive: bool,
}

/// What `prepare` decided.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub jobs: Vec<Job>,
    /// Every peer that was asked, in the order asked.
    pub peers: Vec<PeerIdentity>,
    /// Lines for the reader: scenarios left out, warnings.
    pub notes: Vec<String>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Scenarios(Vec<ScenarioError>),
    #[error("no scenario selected (paths: {paths}; filters: {filters})")]
    NothingSelected { paths: String, filters: String },
    /// A usage problem found while preparing (e.g. `--version` contradicting the peer).
    #[error("{0}")]
    Usage(String),
    /// A peer could not be reached or started while asking its version.
    #[error("{0}")]
    Unreachable(String),
}

impl RunError {
    /// Exit code per the CLI contract: 3 for an unreachable peer, else 2.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Unreachable(_) => 3,
            _ => 2,
        }
    }
}

/// Load, lint and select without asking any peer: every listed version of every
/// selected scenario (the built-in reference peers speak them all).
pub fn plan(catalog: &Catalog, opts: &RunOptions) -> Result<Vec<Job>, RunError> {
    let loaded = load(catalog, opts)?;
    let mut listeners = Listeners::default();
    let mut jobs = Vec::new();
    for l in loaded {
        jobs.extend(jobs_for(catalog, &l, None, opts, &mut listeners)?);
    }
    nothing_selected(jobs, opts, &[])
}

/// The selected jobs of one scenario: every listed version, or only the peer's.
fn jobs_for(
    catalog: &Catalog,
    l: &Arc<LoadedScenario>,
    identity: Option<&Arc<PeerIdentity>>,
    opts: &RunOptions,
    listeners: &mut Listeners,
) -> Result<Vec<Job>, RunError> {
    let share = shares(l, opts);
    let mut jobs = Vec::new();
    let known = catalog.versions(&l.scenario.family);
    for version in &l.scenario.versions.value.resolve(&known) {
        let wanted = identity.is_none_or(|id| &id.protocol == version);
        if !wanted || !selected(l, version, opts) {
            continue;
        }
        let listener = match fixed_listen(l, opts) {
            Some(a) => Some(listeners.get(&a)?),
            None => None,
        };
        jobs.push(Job {
            scenario: l.clone(),
            version: version.clone(),
            peer: identity.cloned(),
            share: share.clone(),
            listener,
        });
    }
    Ok(jobs)
}

/// Like `plan`, but first ask every peer the harness did not start (or starts from a
/// profile) what it is, and keep only that version's cases. `progress` sees one line per
/// peer asked, before the asking (it may take a while) and after.
pub async fn prepare(
    catalog: &Catalog,
    opts: &RunOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Plan, RunError> {
    let loaded = load(catalog, opts)?;
    let schemas = SchemaCache::new();
    let mut listeners = Listeners::default();
    let mut asked: BTreeMap<Target, Result<Arc<PeerIdentity>, DiscoverError>> = BTreeMap::new();
    let mut out = Plan::default();
    let mut left_out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in &loaded {
        let Some(target) = target(l, opts, catalog) else {
            // The built-in reference peers: every listed version.
            out.jobs
                .extend(jobs_for(catalog, l, None, opts, &mut listeners)?);
            continue;
        };
        if !asked.contains_key(&target) {
            progress(&format!("asking {} what it is …", target.describe()));
            let what = format!("{} to say what it is", target.describe());
            let r = opts
                .progress
                .watch(
                    &what,
                    None,
                    ask(catalog, &schemas, opts, &target, l, &mut listeners),
                )
                .await;
            match &r {
                Ok(id) => {
                    progress(&id.to_string());
                    out.peers.push(id.as_ref().clone());
                }
                Err(e) => progress(&format!("{}: {e}", target.describe())),
            }
            asked.insert(target.clone(), r);
        }
        let identity = match &asked[&target] {
            Ok(id) => Some(id.clone()),
            Err(DiscoverError::Unreachable { .. }) if opts.versions.is_empty() => {
                let e = asked[&target].as_ref().err().map(ToString::to_string);
                return Err(RunError::Unreachable(e.unwrap_or_default()));
            }
            Err(e) if opts.versions.is_empty() => {
                return Err(RunError::Usage(format!(
                "{e}\n(give --version V to run the cases of one protocol version without asking)"
            )))
            }
            // --version given: run it, unverified (the first step says more if it is wrong).
            Err(_) => None,
        };
        if let Some(id) = &identity {
            if !opts.versions.is_empty() && !opts.versions.contains(&id.protocol) {
                return Err(RunError::Usage(format!(
                    "--version {} contradicts the peer: {id} (leave --version out to run the {} cases)",
                    opts.versions.join(","),
                    id.protocol
                )));
            }
        }
        let jobs = jobs_for(catalog, l, identity.as_ref(), opts, &mut listeners)?;
        let any = !jobs.is_empty();
        out.jobs.extend(jobs);
        if let (false, Some(id)) = (any, &identity) {
            if name_selected(l, opts) {
                left_out
                    .entry(id.protocol.clone())
                    .or_default()
                    .push(l.path.display().to_string());
            }
        }
    }
    for id in &out.peers {
        if let Some(w) = &id.warning {
            out.notes.push(format!("warning: peer {}: {w}", id.address));
        }
    }
    for (protocol, files) in &left_out {
        out.notes.push(format!(
            "{} scenario(s) have no {protocol} case and were left out: {}",
            files.len(),
            files.join(", ")
        ));
    }
    out.jobs = nothing_selected(std::mem::take(&mut out.jobs), opts, &out.notes)?;
    Ok(out)
}

/// Where a scenario's peer is, when it is not a built-in reference peer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    /// The harness connects to it: `--peer`, or the scenario's address variable.
    Connect {
        address: String,
        family: String,
        side: String,
    },
    /// It connects to the harness at a fixed address (`--listen`).
    Accept {
        listen: String,
        family: String,
        side: String,
    },
    /// The harness starts it from a profile (`--start-peer`), once to ask.
    Started { family: String, side: String },
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Connect { address, .. } => format!("peer {address}"),
            Target::Accept { listen, .. } => format!("the peer connecting to {listen}"),
            Target::Started { family, .. } => format!("the started peer ({family})"),
        }
    }
}

/// A scenario's target, or `None` when it runs against a built-in reference peer (or has
/// no peer at all).
fn target(l: &LoadedScenario, opts: &RunOptions, catalog: &Catalog) -> Option<Target> {
    let s = &l.scenario;
    let family = s.family.clone();
    let side = super::context::peer_side(catalog, &s.family, s.plays);
    if opts.start_peer.is_some() {
        return Some(Target::Started { family, side });
    }
    if let Some(address) = address(l, opts).filter(|a| !a.is_empty()) {
        return Some(Target::Connect {
            address,
            family,
            side,
        });
    }
    let listen = opts.listen.clone()?;
    super::uses_accept(&s.steps).then_some(Target::Accept {
        listen,
        family,
        side,
    })
}

/// The address the harness connects to: `--peer`, else the scenario's `peer.address`
/// with the variables known before the run (an address built from captures is not).
pub(super) fn address(l: &LoadedScenario, opts: &RunOptions) -> Option<String> {
    if let Some(p) = &opts.peer {
        return Some(p.clone());
    }
    let template = l.scenario.peer.address.as_deref()?;
    Vars::new(opts.vars.clone(), l.scenario.vars.clone())
        .expand_str(template)
        .ok()
}

/// The scenario's fixed listen address (`--listen`, or `listen:` with a port other than
/// 0 after expanding variables).
fn fixed_listen(l: &LoadedScenario, opts: &RunOptions) -> Option<String> {
    if !super::uses_accept(&l.scenario.steps) && l.scenario.listen.is_none() {
        return None;
    }
    let addr = match &opts.listen {
        Some(a) => a.clone(),
        None => Vars::new(opts.vars.clone(), l.scenario.vars.clone())
            .expand_str(l.scenario.listen.as_deref()?)
            .ok()?,
    };
    let port = addr.rsplit_once(':').map(|(_, p)| p.trim())?;
    (port != "0" && !port.is_empty()).then_some(addr)
}

/// What a job shares with others: the peer it connects to when that peer lives longer
/// than the job (not a started or reference peer), and a fixed listen address.
fn shares(l: &LoadedScenario, opts: &RunOptions) -> Vec<Share> {
    let mut out = Vec::new();
    if opts.start_peer.is_none() {
        if let Some(a) = address(l, opts).filter(|a| !a.is_empty()) {
            out.push(Share {
                key: format!("peer {a}"),
                exclusive: !l.scenario.stateless,
            });
        }
    }
    if let Some(a) = fixed_listen(l, opts) {
        out.push(Share {
            key: format!("listen {a}"),
            exclusive: true,
        });
    }
    out.sort();
    out.dedup_by(|a, b| a.key == b.key);
    out
}

/// Ask one target what it is.
async fn ask(
    catalog: &Catalog,
    schemas: &SchemaCache,
    opts: &RunOptions,
    target: &Target,
    example: &LoadedScenario,
    listeners: &mut Listeners,
) -> Result<Arc<PeerIdentity>, DiscoverError> {
    let limits = discover::Limits::default();
    let id = match target {
        Target::Connect {
            address,
            family,
            side,
        } => {
            let vars = Vars::new(opts.vars.clone(), example.scenario.vars.clone());
            let tls = discovery_tls(example, opts, &vars, address)?;
            discover::ask(catalog, family, side, address, &tls, limits).await?
        }
        Target::Accept {
            listen,
            family,
            side,
        } => {
            let unreachable = |reason: String| DiscoverError::Unreachable {
                address: listen.clone(),
                reason,
            };
            let shared = listeners
                .get(listen)
                .map_err(|e| unreachable(e.to_string()))?;
            let listener = tokio_listener(&shared).map_err(|e| unreachable(e.to_string()))?;
            let vars = Vars::new(opts.vars.clone(), example.scenario.vars.clone());
            let tls = discovery_tls(example, opts, &vars, listen)?;
            first_message(catalog, schemas, opts, family, side, &listener, &tls).await?
        }
        Target::Started { family, side } => match &opts.start_peer {
            Some(profile) => {
                ask_started(catalog, schemas, opts, profile, family, side, example).await?
            }
            None => {
                return Err(DiscoverError::NoProbes {
                    family: family.clone(),
                    side: "started".into(),
                })
            }
        },
    };
    Ok(Arc::new(id))
}

/// How discovery connects to a peer: the example scenario's `tls:` block with the run's
/// `--tls-*` options over it, variables expanded, files read (relative paths from the
/// scenario's folder), as its steps would. Steps' own `tls:` blocks are not used: a
/// refusal step's wrong key must not decide how the peer is asked. Peers are asked once
/// per address, so the first scenario naming an address decides for the others.
fn discovery_tls(
    example: &LoadedScenario,
    opts: &RunOptions,
    vars: &Vars,
    address: &str,
) -> Result<crate::transport::tls::TlsConfig, DiscoverError> {
    use crate::transport::tls::TlsConfig;
    let bad = |reason: String| DiscoverError::TlsSettings {
        address: address.to_string(),
        reason,
    };
    let mut settings = example
        .scenario
        .tls
        .as_ref()
        .map(|t| t.settings())
        .unwrap_or_default()
        .overlaid(&opts.tls);
    if settings.is_empty() {
        return Ok(TlsConfig::plaintext());
    }
    for (field, value) in settings.fields_mut() {
        *value = vars
            .expand_str(value)
            .map_err(|e| bad(format!("tls {field}: {e}")))?;
    }
    TlsConfig::load(&settings, example.path.parent()).map_err(|e| bad(e.to_string()))
}

/// How long to wait for a peer that connects to the harness to send its first message:
/// an active agent refreshes its checks every few seconds, an active proxy sends data
/// every second, but a proxy whose data sender is idle waits for its heartbeat (60 s).
const ACCEPT_WAIT: Duration = Duration::from_secs(70);

/// What the first message of a peer connecting to `listener` says, waiting at most
/// [`ACCEPT_WAIT`], accepting as `tls` says.
async fn first_message(
    catalog: &Catalog,
    schemas: &SchemaCache,
    opts: &RunOptions,
    family: &str,
    side: &str,
    listener: &tokio::net::TcpListener,
    tls: &crate::transport::tls::TlsConfig,
) -> Result<PeerIdentity, DiscoverError> {
    discover::first_message(
        catalog,
        schemas,
        family,
        side,
        listener,
        tls,
        ACCEPT_WAIT,
        opts.max_frame,
    )
    .await
}

/// Start the profile's peer once, in a run dir of its own, ask it, and stop it.
async fn ask_started(
    catalog: &Catalog,
    schemas: &SchemaCache,
    opts: &RunOptions,
    profile: &LoadedProfile,
    family: &str,
    side: &str,
    example: &LoadedScenario,
) -> Result<PeerIdentity, DiscoverError> {
    let unreachable = |reason: String| DiscoverError::Unreachable {
        address: profile.profile.name.clone(),
        reason,
    };
    let listener = crate::transport::bind_listener("127.0.0.1:0")
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let mut vars = Vars::new(opts.vars.clone(), example.scenario.vars.clone());
    if let Ok(local) = listener.local_addr() {
        vars.set("listen_addr", local.to_string().into());
        vars.set("listen_port", local.port().to_string().into());
    }
    let dir = opts.run_dir.join(format!("discover-{}", super::run_id()));
    let process = profile
        .start(&mut vars, &dir)
        .await
        .map_err(|e| unreachable(format!("cannot start peer: {e}")))?;
    let address = example
        .scenario
        .peer
        .address
        .as_deref()
        .and_then(|a| vars.expand_str(a).ok())
        .filter(|a| !a.is_empty());
    let result = match address {
        Some(a) => match discovery_tls(example, opts, &vars, &a) {
            Ok(tls) => {
                discover::ask(catalog, family, side, &a, &tls, discover::Limits::default()).await
            }
            Err(e) => Err(e),
        },
        None => {
            let at = listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            match discovery_tls(example, opts, &vars, &at) {
                Ok(tls) => {
                    first_message(catalog, schemas, opts, family, side, &listener, &tls).await
                }
                Err(e) => Err(e),
            }
        }
    };
    process.stop().await;
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map(|mut id| {
        id.address = format!("{} ({})", profile.profile.name, id.address);
        id
    })
}

/// Load and lint every scenario file, then keep those with a selected tag.
fn load(catalog: &Catalog, opts: &RunOptions) -> Result<Vec<Arc<LoadedScenario>>, RunError> {
    let files = scenario::discover(&opts.paths).map_err(|e| RunError::Scenarios(vec![e]))?;
    let mut errors = Vec::new();
    let mut loaded = Vec::new();
    for f in files {
        match scenario::load_file(&f) {
            Ok(l) => {
                let lint = scenario::lint_errors(&l, catalog, &reference_names());
                if lint.is_empty() {
                    loaded.push(Arc::new(l));
                } else {
                    errors.extend(lint.iter().map(scenario::Finding::to_error));
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(RunError::Scenarios(errors));
    }
    loaded
        .retain(|l| opts.tags.is_empty() || l.scenario.tags.iter().any(|t| opts.tags.contains(t)));
    Ok(loaded)
}

/// The names a scenario's `peer.reference` may take: the built-in reference peers.
pub fn reference_names() -> Vec<&'static str> {
    crate::reference::references()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// `--version` and `--filter` keep this case.
fn selected(l: &LoadedScenario, version: &str, opts: &RunOptions) -> bool {
    if !opts.versions.is_empty() && !opts.versions.iter().any(|v| v == version) {
        return false;
    }
    match &opts.filter {
        None => true,
        Some(f) => {
            let name = format!("{} [{}]", l.scenario.name, version);
            name.contains(f.as_str()) || l.path.to_string_lossy().contains(f.as_str())
        }
    }
}

/// `--filter` keeps this scenario at some version (for the "left out" note).
fn name_selected(l: &LoadedScenario, opts: &RunOptions) -> bool {
    match &opts.filter {
        None => true,
        Some(f) => {
            l.scenario.name.contains(f.as_str()) || l.path.to_string_lossy().contains(f.as_str())
        }
    }
}

/// The jobs, or the "nothing selected" error naming paths, filters and what was left out.
fn nothing_selected(
    jobs: Vec<Job>,
    opts: &RunOptions,
    notes: &[String],
) -> Result<Vec<Job>, RunError> {
    if !jobs.is_empty() {
        return Ok(jobs);
    }
    let mut filters = Vec::new();
    if !opts.versions.is_empty() {
        filters.push(format!("--version {}", opts.versions.join(",")));
    }
    if !opts.tags.is_empty() {
        filters.push(format!("--tag {}", opts.tags.join(",")));
    }
    if let Some(f) = &opts.filter {
        filters.push(format!("--filter {f}"));
    }
    filters.extend(notes.iter().cloned());
    Err(RunError::NothingSelected {
        paths: opts
            .paths
            .iter()
            .map(|p| display(p))
            .collect::<Vec<_>>()
            .join(" "),
        filters: if filters.is_empty() {
            "none".into()
        } else {
            filters.join("; ")
        },
    })
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

//! The runner: loads scenarios, expands them per version, and runs each as one task
//! playing its side. Everything that happens becomes a result; nothing the peer does can
//! make the runner panic.

pub mod context;
pub mod expect;
pub mod peer;
pub mod plan;
pub mod result;
pub mod send;
pub mod step;
pub mod transcript;
mod turns;

pub use plan::{plan, prepare, Job, Plan, RunError, Share};
pub use result::*;

use crate::catalog::Catalog;
use crate::check::SchemaCache;
use crate::roles::{self, ReferenceConfig};
use crate::scenario::vars::Vars;
use context::{peer_side, ScenarioContext};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use step::StepRunner;
use transcript::Transcript;
use turns::Turns;

/// Options of `zbx-conform run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Scenario files and folders.
    pub paths: Vec<PathBuf>,
    /// `--var NAME=VALUE`.
    pub vars: BTreeMap<String, String>,
    /// `--peer ADDR`: overrides every scenario's peer address.
    pub peer: Option<String>,
    /// `--listen ADDR`: where the harness listens for peers that connect to it; overrides
    /// every scenario's `listen`, and means a real peer connects there (no reference peer
    /// is started).
    pub listen: Option<String>,
    /// `--version`: only these versions (empty = all the scenario lists).
    pub versions: Vec<String>,
    /// `--tag`: only scenarios with at least one of these tags.
    pub tags: Vec<String>,
    /// `--filter`: substring of the test name (`name [version]`) or file path.
    pub filter: Option<String>,
    /// `--jobs`: scenarios run concurrently.
    pub jobs: usize,
    pub update_snapshots: bool,
    /// `--fault`: make built-in reference peers misbehave (self-tests).
    pub fault: Option<String>,
    /// Default per-expectation timeout.
    pub timeout: Duration,
    /// `--start-peer PROFILE`: start a real peer for every scenario.
    pub start_peer: Option<Arc<peer::LoadedProfile>>,
    /// Where started peers get their run directories.
    pub run_dir: PathBuf,
    /// `--max-frame`: largest payload accepted from a peer (declared length, and the
    /// inflated size of compressed frames), checked before anything is allocated.
    pub max_frame: u64,
    /// `--memory-budget`: most bytes received messages may hold at once, across every
    /// connection of the run (frames, inflated payloads and their parsed form).
    pub memory_budget: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            paths: Vec::new(),
            vars: BTreeMap::new(),
            peer: None,
            listen: None,
            versions: Vec::new(),
            tags: Vec::new(),
            filter: None,
            jobs: 4,
            update_snapshots: false,
            fault: None,
            timeout: Duration::from_secs(10),
            start_peer: None,
            run_dir: std::env::temp_dir().join("zbx-conform"),
            max_frame: crate::frame::zbxd::DEFAULT_MAX_SIZE,
            memory_budget: crate::frame::budget::DEFAULT_BUDGET,
        }
    }
}

/// Run jobs with at most `opts.jobs` at a time; `on_result` sees each result as it
/// finishes (for live terminal output). Results come back in job order.
///
/// Jobs that share a long-lived peer take turns: a job that needs the peer alone (it
/// changes or depends on the peer's state) waits until no other job uses it; stateless
/// jobs use it together. A job takes its turn before its `--jobs` slot, so waiting for a
/// peer does not hold a slot that another peer's jobs could use.
pub async fn run_jobs(
    catalog: Arc<Catalog>,
    jobs: Vec<Job>,
    opts: &RunOptions,
    mut on_result: impl FnMut(&ScenarioResult),
) -> RunResult {
    let start = Instant::now();
    let schemas = Arc::new(SchemaCache::new());
    let budget = crate::frame::Budget::new(opts.memory_budget);
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let turns = Turns::for_jobs(&jobs);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let total = jobs.len();
    for (i, job) in jobs.into_iter().enumerate() {
        let catalog = catalog.clone();
        let schemas = schemas.clone();
        let sem = sem.clone();
        let opts = opts.clone();
        let tx = tx.clone();
        let turns = turns.clone();
        let budget = budget.clone();
        tokio::spawn(async move {
            let _turn = turns.take(&job.share).await;
            let _permit = sem.acquire().await;
            let result = run_one(catalog, schemas, &job, &opts, budget).await;
            let _ = tx.send((i, result));
        });
    }
    drop(tx);
    let mut results: Vec<Option<ScenarioResult>> = vec![None; total];
    while let Some((i, r)) = rx.recv().await {
        on_result(&r);
        results[i] = Some(r);
    }
    RunResult {
        scenarios: results.into_iter().flatten().collect(),
        duration: start.elapsed(),
        memory: Some(budget.report()),
    }
}

/// Run one scenario at one version, start to finish, including its reference peer.
pub async fn run_one(
    catalog: Arc<Catalog>,
    schemas: Arc<SchemaCache>,
    job: &Job,
    opts: &RunOptions,
    budget: crate::frame::Budget,
) -> ScenarioResult {
    let start = Instant::now();
    let s = &job.scenario.scenario;
    let mut vars = Vars::new(opts.vars.clone(), s.vars.clone());
    vars.set("version", serde_json::Value::String(job.version.clone()));
    vars.set("run_id", serde_json::Value::String(run_id()));
    vars.set("revision", serde_json::Value::from(revision()));
    let mut ctx = ScenarioContext {
        peer_side: peer_side(&catalog, &s.family, s.plays),
        catalog,
        schemas,
        vars,
        family: s.family.clone(),
        version: job.version.clone(),
        plays: s.plays,
        peer_addr: None,
        timeout: s.timeout.map(|d| d.0).unwrap_or(opts.timeout),
        update_snapshots: opts.update_snapshots,
        max_frame: opts.max_frame,
        budget: budget.clone(),
        transcript: Transcript::new(),
        secrets: Default::default(),
    };
    let mut result = ScenarioResult {
        name: s.name.clone(),
        file: job.scenario.path.clone(),
        family: s.family.clone(),
        version: job.version.clone(),
        plays: s.plays.to_string(),
        tags: s.tags.clone(),
        peer: String::new(),
        outcome: Outcome::Passed,
        steps: Vec::new(),
        transcript: Vec::new(),
        peer_log: None,
        properties: peer_properties(job.peer.as_deref()),
        duration: Duration::ZERO,
    };
    let requirements = s.requirements_at(&job.version);
    if !requirements.is_empty() {
        // One property: JUnit consumers key properties by name.
        let ids = requirements.join(", ");
        result.properties.insert("requirement".into(), ids);
    }
    if let Some(id) = &job.peer {
        ctx.transcript.note(format!("{id} ({})", id.found.how));
    }

    // The scenario's listener (for accept steps and for peers that connect to us).
    let needs_listener = s.listen.is_some() || uses_accept(&s.steps);
    let listen = opts.listen.as_deref().or(s.listen.as_deref());
    let listener = if needs_listener {
        let addr = match ctx.vars.expand_str(listen.unwrap_or("127.0.0.1:0")) {
            Ok(a) => a,
            Err(e) => return finish(result, ctx, start, Outcome::Error(format!("listen: {e}"))),
        };
        let bound = match &job.listener {
            // The run's socket for a fixed address, shared with the scenarios before.
            Some(shared) => {
                plan::tokio_listener(shared).map_err(|e| crate::transport::TransportError::Listen {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })
            }
            None => crate::transport::bind_listener(&addr).await,
        };
        match bound {
            Ok(l) => {
                if let Ok(local) = l.local_addr() {
                    ctx.vars.set("listen_addr", local.to_string().into());
                    ctx.vars.set("listen_port", local.port().to_string().into());
                    // The same as a JSON number, for matching numeric fields (a discovery
                    // row's `port`); `${listen_port}` stays a string for configurations.
                    ctx.vars.set("listen_port_number", local.port().into());
                    ctx.transcript.note(format!("listening on {local}"));
                }
                Some(l)
            }
            Err(e) => return finish(result, ctx, start, Outcome::Unreachable(e.to_string())),
        }
    } else {
        None
    };

    // A real peer started for this scenario (after the listener: it may connect to it).
    let mut process = None;
    let mut peer_dir = None;
    if let Some(profile) = &opts.start_peer {
        // Short: daemons put Unix sockets in here and socket paths are limited (~100 bytes).
        let slug: String = sanitize(&s.name).chars().take(16).collect();
        let dir = opts.run_dir.join(format!(
            "{}-{}-{}",
            slug.trim_end_matches('-'),
            job.version,
            run_id()
        ));
        result.peer = format!("{} ({})", profile.profile.name, dir.display());
        ctx.transcript
            .note(format!("starting peer {}", profile.profile.name));
        peer_dir = Some(dir.clone());
        match profile.start(&mut ctx.vars, &dir).await {
            Ok(p) => {
                ctx.transcript
                    .note(format!("peer started, pid {}", p.pid()));
                process = Some(p);
            }
            Err(e) => {
                return finish(
                    result,
                    ctx,
                    start,
                    Outcome::Unreachable(format!("cannot start peer: {e}")),
                )
            }
        }
    }

    // The peer: --peer, else the scenario's address, else its reference peer (only
    // when no real peer is involved).
    let address = match &opts.peer {
        Some(p) => p.clone(),
        None => match s.peer.address.as_deref().map(|a| ctx.vars.expand_str(a)) {
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                return finish(
                    result,
                    ctx,
                    start,
                    Outcome::Error(format!("peer.address: {e}")),
                )
            }
            None => String::new(),
        },
    };
    let mut reference = None;
    // A real peer is involved: no reference peer stands in (`--listen` says a real peer
    // connects to the harness there).
    let external = opts.peer.is_some() || process.is_some() || opts.listen.is_some();
    if s.peer.address.is_some() && address.is_empty() && !external && s.peer.reference.is_none() {
        // Written for a real peer only (an address variable, no built-in stand-in), and
        // no address given: nothing to run against. (A scenario without `peer.address`
        // waits for whoever connects to its listener.)
        return finish(
            result,
            ctx,
            start,
            Outcome::Skipped(
                "needs a real peer: give --peer ADDR, --start-peer PROFILE or the scenario's address variable".into(),
            ),
        );
    }
    if address.is_empty() && !external {
        if let Some(name) = &s.peer.reference {
            let cfg = ReferenceConfig {
                name: name.clone(),
                version: job.version.clone(),
                fault: opts.fault.clone(),
                connect_to: listener.as_ref().and_then(|l| l.local_addr().ok()),
                listen: None,
            };
            match roles::start(&cfg).await {
                Ok(peer) => {
                    result.peer = peer.describe.clone();
                    if let Some(a) = peer.listen {
                        ctx.peer_addr = Some(a.to_string());
                    }
                    reference = Some(peer);
                }
                Err(e) => {
                    return finish(
                        result,
                        ctx,
                        start,
                        Outcome::Unreachable(format!("cannot start reference peer `{name}`: {e}")),
                    )
                }
            }
        }
    } else if !address.is_empty() {
        if process.is_none() {
            result.peer = address.clone();
        }
        ctx.peer_addr = Some(address);
    }
    if let Some(a) = &ctx.peer_addr {
        ctx.vars.set("peer", a.clone().into());
    }

    let mut runner = StepRunner {
        ctx: &mut ctx,
        listener: listener.as_ref(),
        results: Vec::new(),
        last_sent: None,
    };
    runner.run_steps(&s.steps, "").await;
    let steps = std::mem::take(&mut runner.results);
    if let Some(peer) = reference {
        peer.stop().await;
    }
    let mut steps = steps;
    if let (Some(p), Some(profile)) = (&process, &opts.start_peer) {
        let problems = profile.log_problems(&p.log().unwrap_or_default());
        if !problems.is_empty() {
            steps.push(StepResult {
                sent: None,
                index: "peer-log".into(),
                action: "peer log".into(),
                name: None,
                requirement: Vec::new(),
                line: 0,
                outcome: Outcome::Failed,
                failures: problems
                    .iter()
                    .take(10)
                    .map(|l| CheckFailure {
                        check: CheckKind::PeerLog,
                        expected: format!(
                            "no log line matching {}",
                            profile.profile.fail_on_log.join(" | ")
                        ),
                        detail: l.clone(),
                        path: None,
                        received: None,
                    })
                    .collect(),
                duration: Duration::ZERO,
            });
        }
    }
    let outcome = scenario_outcome(&steps);
    if let Some(p) = process {
        if outcome != Outcome::Passed {
            result.peer_log = p.log().or_else(|| Some(p.log_tail(200)));
        }
        let status = p.stop().await;
        ctx.transcript.note(format!("peer stopped: {status}"));
        // Keep the run directory (config, data, log) of a failed scenario for
        // inspection; a passed one leaves nothing behind.
        if let Some(dir) = &peer_dir {
            if outcome == Outcome::Passed {
                let _ = std::fs::remove_dir_all(dir);
            } else {
                ctx.transcript
                    .note(format!("peer files kept in {}", dir.display()));
            }
        }
    }
    result.steps = steps;
    finish(result, ctx, start, outcome)
}

/// JUnit/JSON properties naming what the peer said it is.
fn peer_properties(id: Option<&crate::discover::PeerIdentity>) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    if let Some(id) = id {
        p.insert("peer.program".into(), id.found.program.clone());
        p.insert("peer.version".into(), id.found.version.clone());
        p.insert("peer.protocol".into(), id.protocol.clone());
        p.insert("peer.discovered-by".into(), id.found.how.clone());
        if let Some(w) = &id.warning {
            p.insert("peer.warning".into(), w.clone());
        }
    }
    p
}

fn finish(
    mut result: ScenarioResult,
    ctx: ScenarioContext,
    start: Instant,
    outcome: Outcome,
) -> ScenarioResult {
    result.outcome = outcome;
    result.transcript = ctx.transcript.into_entries();
    result.duration = start.elapsed();
    result.scrub(&ctx.secrets);
    result
}

/// The worst step outcome decides the scenario's.
fn scenario_outcome(steps: &[StepResult]) -> Outcome {
    for s in steps {
        match &s.outcome {
            Outcome::Passed | Outcome::Skipped(_) => {}
            other => return other.clone(),
        }
    }
    if !steps.is_empty()
        && steps
            .iter()
            .all(|s| matches!(s.outcome, Outcome::Skipped(_)))
    {
        return Outcome::Skipped("every step was skipped for this version".into());
    }
    Outcome::Passed
}

pub(crate) fn uses_accept(
    steps: &[crate::scenario::model::Spanned<crate::scenario::model::Step>],
) -> bool {
    steps.iter().any(|s| {
        s.value.accept.is_some()
            || s.value
                .repeat
                .as_ref()
                .is_some_and(|r| uses_accept(&r.steps))
    })
}

/// A file-name-safe version of a scenario name.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// A configuration revision for this scenario run (`${revision}`): a number that grows
/// from run to run (Unix seconds), so a peer that kept the revision of an earlier run
/// still sees a new one, and "reports the revision it was sent" proves something on a
/// long-lived peer too.
fn revision() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1)
}

/// A short id unique enough to tell runs apart in peer data (host names, keys).
pub(crate) fn run_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{:06x}{:02x}",
        (nanos ^ std::process::id()) & 0xff_ffff,
        COUNTER.fetch_add(1, Ordering::Relaxed) & 0xff
    )
}

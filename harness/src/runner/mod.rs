//! The runner: loads scenarios, expands them per version, and runs each as one task
//! playing its side. Everything that happens becomes a result; nothing the peer does can
//! make the runner panic.

pub mod context;
pub mod expect;
pub mod peer;
pub mod result;
pub mod send;
pub mod step;
pub mod transcript;

pub use result::*;

use crate::catalog::Catalog;
use crate::check::SchemaCache;
use crate::roles::{self, ReferenceConfig};
use crate::scenario::vars::Vars;
use crate::scenario::{self, LoadedScenario, ScenarioError};
use context::{peer_side, ScenarioContext};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use step::StepRunner;
use transcript::Transcript;

/// Options of `zbx-conform run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Scenario files and folders.
    pub paths: Vec<PathBuf>,
    /// `--var NAME=VALUE`.
    pub vars: BTreeMap<String, String>,
    /// `--peer ADDR`: overrides every scenario's peer address.
    pub peer: Option<String>,
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
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            paths: Vec::new(),
            vars: BTreeMap::new(),
            peer: None,
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
        }
    }
}

/// Why a run could not start (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Scenarios(Vec<ScenarioError>),
    #[error("no scenario selected (paths: {paths}; filters: {filters})")]
    NothingSelected { paths: String, filters: String },
}

/// One scenario at one version.
#[derive(Debug, Clone)]
pub struct Job {
    pub scenario: Arc<LoadedScenario>,
    pub version: String,
}

/// Load, lint and select: the jobs to run, or every error found.
pub fn plan(catalog: &Catalog, opts: &RunOptions) -> Result<Vec<Job>, RunError> {
    let files = scenario::discover(&opts.paths).map_err(|e| RunError::Scenarios(vec![e]))?;
    let mut errors = Vec::new();
    let mut loaded = Vec::new();
    for f in files {
        match scenario::load_file(&f) {
            Ok(l) => {
                let lint = scenario::lint(&l, catalog);
                if lint.is_empty() {
                    loaded.push(Arc::new(l));
                } else {
                    errors.extend(lint);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(RunError::Scenarios(errors));
    }
    let mut jobs = Vec::new();
    for l in loaded {
        let s = &l.scenario;
        if !opts.tags.is_empty() && !s.tags.iter().any(|t| opts.tags.contains(t)) {
            continue;
        }
        for v in &s.versions {
            let version = v.value.clone();
            if !opts.versions.is_empty() && !opts.versions.contains(&version) {
                continue;
            }
            if let Some(f) = &opts.filter {
                let name = format!("{} [{}]", s.name, version);
                if !name.contains(f.as_str()) && !l.path.to_string_lossy().contains(f.as_str()) {
                    continue;
                }
            }
            jobs.push(Job {
                scenario: l.clone(),
                version,
            });
        }
    }
    if jobs.is_empty() {
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
        return Err(RunError::NothingSelected {
            paths: opts
                .paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            filters: if filters.is_empty() {
                "none".into()
            } else {
                filters.join(" ")
            },
        });
    }
    Ok(jobs)
}

/// Run jobs with at most `opts.jobs` at a time; `on_result` sees each result as it
/// finishes (for live terminal output). Results come back in job order.
pub async fn run_jobs(
    catalog: Arc<Catalog>,
    jobs: Vec<Job>,
    opts: &RunOptions,
    mut on_result: impl FnMut(&ScenarioResult),
) -> RunResult {
    let start = Instant::now();
    let schemas = Arc::new(SchemaCache::new());
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let total = jobs.len();
    for (i, job) in jobs.into_iter().enumerate() {
        let catalog = catalog.clone();
        let schemas = schemas.clone();
        let sem = sem.clone();
        let opts = opts.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _permit = sem.acquire().await;
            let result = run_one(catalog, schemas, &job, &opts).await;
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
    }
}

/// Run one scenario at one version, start to finish, including its reference peer.
pub async fn run_one(
    catalog: Arc<Catalog>,
    schemas: Arc<SchemaCache>,
    job: &Job,
    opts: &RunOptions,
) -> ScenarioResult {
    let start = Instant::now();
    let s = &job.scenario.scenario;
    let mut vars = Vars::new(opts.vars.clone(), s.vars.clone());
    vars.set("version", serde_json::Value::String(job.version.clone()));
    vars.set("run_id", serde_json::Value::String(run_id()));
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
        transcript: Transcript::new(),
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
        duration: Duration::ZERO,
    };

    // The scenario's listener (for accept steps and for peers that connect to us).
    let needs_listener = s.listen.is_some() || uses_accept(&s.steps);
    let listener = if needs_listener {
        let addr = match ctx
            .vars
            .expand_str(s.listen.as_deref().unwrap_or("127.0.0.1:0"))
        {
            Ok(a) => a,
            Err(e) => return finish(result, ctx, start, Outcome::Error(format!("listen: {e}"))),
        };
        match crate::transport::bind_listener(&addr).await {
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
    let external = opts.peer.is_some() || process.is_some();
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

fn finish(
    mut result: ScenarioResult,
    ctx: ScenarioContext,
    start: Instant,
    outcome: Outcome,
) -> ScenarioResult {
    result.outcome = outcome;
    result.transcript = ctx.transcript.into_entries();
    result.duration = start.elapsed();
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

fn uses_accept(steps: &[crate::scenario::model::Spanned<crate::scenario::model::Step>]) -> bool {
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

/// A short id unique enough to tell runs apart in peer data (host names, keys).
fn run_id() -> String {
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

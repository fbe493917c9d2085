//! The runner: loads scenarios, expands them per version, and runs each as one task
//! playing its side. Everything that happens becomes a result; nothing the peer does can
//! make the runner panic.

pub mod context;
pub mod expect;
mod lifecycle;
pub mod peer;
pub mod plan;
pub mod progress;
pub mod result;
pub mod send;
pub mod step;
pub mod test_keys;
pub mod transcript;
mod turns;

pub use plan::{plan, prepare, Job, Plan, RunError, Share};
pub use result::*;

use crate::catalog::Catalog;
use crate::check::SchemaCache;
use crate::scenario::model::{Spanned, Step};
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
    /// `--tls-*`: encryption of every connection, over each scenario's `tls:` (a step's
    /// own `tls:` still wins). Paths are absolute (made so by the command line).
    pub tls: crate::transport::tls::TlsSettings,
    /// `--memory-budget`: most bytes received messages may hold at once, across every
    /// connection of the run (frames, inflated payloads and their parsed form).
    pub memory_budget: u64,
    /// "Still waiting for …" lines during long steps and peer start-ups (off by default).
    pub progress: progress::Progress,
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
            tls: Default::default(),
            progress: progress::Progress::default(),
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
    let started_at = std::time::SystemTime::now();
    // The TLS scenarios' keys for this run (removed when `keys` drops, after the jobs).
    let keys = test_keys::TestKeys::make(&opts.run_dir);
    let mut opts = opts.clone();
    if let Ok(k) = &keys {
        for (var, file) in [
            (test_keys::PSK_FILE_VAR, &k.psk_file),
            (test_keys::WRONG_PSK_FILE_VAR, &k.wrong_psk_file),
        ] {
            opts.vars
                .entry(var.to_string())
                .or_insert_with(|| file.display().to_string());
        }
    }
    let opts = &opts;
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
            let begun = start.elapsed();
            let mut result = run_one(catalog, schemas, &job, &opts, budget).await;
            result.started = begun;
            let _ = tx.send((i, result));
        });
    }
    drop(tx);
    let mut results: Vec<Option<ScenarioResult>> = vec![None; total];
    while let Some((i, r)) = rx.recv().await {
        on_result(&r);
        results[i] = Some(r);
    }
    drop(keys);
    RunResult {
        scenarios: results.into_iter().flatten().collect(),
        started_at: Some(started_at),
        duration: start.elapsed(),
        memory: Some(budget.report()),
    }
}

/// Run one scenario at one version, start to finish, including its reference peer:
/// bind, start a profile's peer, resolve the peer under test, run the steps, collect
/// the peer's log, tear down ([`lifecycle`] has the stages).
pub async fn run_one(
    catalog: Arc<Catalog>,
    schemas: Arc<SchemaCache>,
    job: &Job,
    opts: &RunOptions,
    budget: crate::frame::Budget,
) -> ScenarioResult {
    let start = Instant::now();
    let s = &job.scenario.scenario;
    let mut ctx = new_context(catalog, schemas, job, opts, budget);
    lifecycle::set_connection_vars(&mut ctx);
    let mut result = new_result(job);
    if let Some(id) = &job.peer {
        ctx.transcript.note(format!("{id} ({})", id.found.how));
    }

    let listener = match lifecycle::bind(&mut ctx, s, job, opts).await {
        Ok(l) => l,
        Err(outcome) => return finish(result, ctx, start, outcome),
    };
    let started = match lifecycle::start_profile(&mut ctx, &mut result, job, opts).await {
        Ok(p) => p,
        Err(outcome) => return finish(result, ctx, start, outcome),
    };
    let resolved = lifecycle::resolve_peer(
        &mut ctx,
        &mut result,
        s,
        job,
        opts,
        listener.as_ref(),
        started.as_ref(),
    )
    .await;
    let reference = match resolved {
        Ok(r) => r,
        Err(outcome) => {
            // A started peer is stopped even when the scenario cannot run.
            if let Some(started) = started {
                lifecycle::stop_started(&mut ctx, &mut result, started, &outcome).await;
            }
            return finish(result, ctx, start, outcome);
        }
    };

    let mut runner = StepRunner {
        ctx: &mut ctx,
        listener: listener.as_ref(),
        results: Vec::new(),
        last_sent: None,
    };
    runner.run_steps(&s.steps, "").await;
    let mut steps = std::mem::take(&mut runner.results);

    if let Some(peer) = reference {
        peer.stop().await;
    }
    if let (Some(started), Some(profile)) = (&started, &opts.start_peer) {
        steps.extend(lifecycle::log_problems(started, profile));
    }
    let outcome = scenario_outcome(&steps);
    tls_properties(&mut result.properties, &ctx.tls_seen);
    if let Some(started) = started {
        lifecycle::stop_started(&mut ctx, &mut result, started, &outcome).await;
    }
    result.steps = steps;
    finish(result, ctx, start, outcome)
}

/// The context the steps of one job share: its variables (the run's, the scenario's
/// and the built-in ones), the catalog and the checks' settings.
fn new_context(
    catalog: Arc<Catalog>,
    schemas: Arc<SchemaCache>,
    job: &Job,
    opts: &RunOptions,
    budget: crate::frame::Budget,
) -> ScenarioContext {
    let s = &job.scenario.scenario;
    let mut vars = Vars::new(opts.vars.clone(), s.vars.clone());
    vars.set("version", serde_json::Value::String(job.version.clone()));
    vars.set("run_id", serde_json::Value::String(run_id()));
    vars.set("revision", serde_json::Value::from(revision()));
    ScenarioContext {
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
        budget,
        transcript: Transcript::new(),
        secrets: Default::default(),
        tls: s
            .tls
            .as_ref()
            .map(|t| t.settings())
            .unwrap_or_default()
            .overlaid(&opts.tls),
        scenario_dir: job.scenario.path.parent().map(|d| d.to_path_buf()),
        connect_mode: crate::transport::tls::TlsMode::Unencrypted,
        tls_seen: Vec::new(),
        progress: opts
            .progress
            .labelled(format!("{} [{}]", s.name, job.version)),
    }
}

/// A result for the job before anything ran (passed, no steps yet).
fn new_result(job: &Job) -> ScenarioResult {
    let s = &job.scenario.scenario;
    let mut properties = peer_properties(job.peer.as_deref());
    let requirements = s.requirements_at(&job.version);
    if !requirements.is_empty() {
        // One property: JUnit consumers key properties by name.
        properties.insert("requirement".into(), requirements.join(", "));
    }
    // The description is a property, not part of the test name: rewording it must not
    // break a CI tool's test history.
    if let Some(d) = s
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        properties.insert("description".into(), d.to_string());
    }
    ScenarioResult {
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
        properties,
        started: Duration::ZERO,
        duration: Duration::ZERO,
    }
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

/// JUnit/JSON properties of the TLS connections: `tls.version`, `tls.cipher` and
/// `tls.psk-identity` or `tls.peer-subject` of the first, and one line per step
/// (`tls.step-2`) for every step that encrypted.
fn tls_properties(
    props: &mut BTreeMap<String, String>,
    seen: &[(String, crate::transport::tls::TlsInfo)],
) {
    if let Some((_, first)) = seen.first() {
        props.insert("tls.version".into(), first.version.clone());
        props.insert("tls.cipher".into(), first.cipher.clone());
        if let Some(id) = &first.psk_identity {
            props.insert("tls.psk-identity".into(), id.clone());
        }
        if let Some(s) = &first.peer_subject {
            props.insert("tls.peer-subject".into(), s.clone());
        }
    }
    for (index, info) in seen {
        props.insert(format!("tls.step-{index}"), info.to_string());
    }
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

/// Whether any step (also inside `repeat`) has an `accept`: the scenario needs a
/// listener.
pub(crate) fn uses_accept(steps: &[Spanned<Step>]) -> bool {
    any_step(steps, &|s| s.accept.is_some())
}

/// Whether any step (also inside `repeat`) has an `exchange` without its own
/// `connect` address: the scenario connects to the peer and needs its address.
pub(crate) fn uses_exchange(steps: &[Spanned<Step>]) -> bool {
    any_step(steps, &|s| {
        s.exchange.as_ref().is_some_and(|e| e.connect.is_none())
    })
}

fn any_step(steps: &[Spanned<Step>], pred: &dyn Fn(&Step) -> bool) -> bool {
    steps.iter().any(|s| {
        pred(&s.value)
            || s.value
                .repeat
                .as_ref()
                .is_some_and(|r| any_step(&r.steps, pred))
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

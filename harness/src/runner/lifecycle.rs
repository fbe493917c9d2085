//! The stages of one scenario run, in the order `run_one` takes them: bind the
//! scenario's listener, start a real peer from a profile, resolve the peer under test
//! (or start the reference peer standing in for it), and after the steps collect the
//! peer's log and tear everything down.
//!
//! Each stage either succeeds or ends the scenario with the outcome it returns as `Err`
//! (an unreachable peer, a bad address variable); nothing here panics.

use super::context::ScenarioContext;
use super::peer::LoadedProfile;
use super::plan::{self, Job};
use super::result::{CheckFailure, CheckKind, Outcome, ScenarioResult, StepResult};
use super::RunOptions;
use crate::reference::{self, ReferenceConfig, RunningPeer};
use crate::scenario::model::Scenario;
use crate::transport::spawn::PeerProcess;
use crate::transport::tls::{TlsConfig, TlsMode};
use crate::transport::TransportError;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;

/// How many log lines matching `fail_on_log` a failure lists.
const MAX_LOG_PROBLEMS: usize = 10;

/// Bind the scenario's listener (for `accept` steps and for peers that connect to the
/// harness), when it needs one, and tell the variables where it listens.
pub async fn bind(
    ctx: &mut ScenarioContext,
    s: &Scenario,
    job: &Job,
    opts: &RunOptions,
) -> Result<Option<TcpListener>, Outcome> {
    if s.listen.is_none() && !super::uses_accept(&s.steps) {
        return Ok(None);
    }
    let listen = opts.listen.as_deref().or(s.listen.as_deref());
    let addr = ctx
        .vars
        .expand_str(listen.unwrap_or("127.0.0.1:0"))
        .map_err(|e| Outcome::Error(format!("listen: {e}")))?;
    let bound = match &job.listener {
        // The run's socket for a fixed address, shared with the scenarios before.
        Some(shared) => plan::tokio_listener(shared).map_err(|e| TransportError::Listen {
            addr: addr.clone(),
            reason: e.to_string(),
        }),
        None => crate::transport::bind_listener(&addr).await,
    };
    let l = bound.map_err(|e| Outcome::Unreachable(e.to_string()))?;
    if let Ok(local) = l.local_addr() {
        ctx.vars.set("listen_addr", local.to_string().into());
        ctx.vars.set("listen_port", local.port().to_string().into());
        // The same as a JSON number, for matching numeric fields (a discovery row's
        // `port`); `${listen_port}` stays a string for configurations.
        ctx.vars.set("listen_port_number", local.port().into());
        ctx.transcript.note(format!("listening on {local}"));
    }
    Ok(Some(l))
}

/// A real peer started from a `--start-peer` profile for this scenario, with the run
/// directory holding its configuration, data and log.
pub struct Started {
    pub process: PeerProcess,
    pub dir: PathBuf,
}

/// Start the `--start-peer` profile, if any (after binding: the peer may connect to the
/// listener).
pub async fn start_profile(
    ctx: &mut ScenarioContext,
    result: &mut ScenarioResult,
    job: &Job,
    opts: &RunOptions,
) -> Result<Option<Started>, Outcome> {
    let Some(profile) = &opts.start_peer else {
        return Ok(None);
    };
    // Short: daemons put Unix sockets in here and socket paths are limited (~100 bytes).
    let slug: String = super::sanitize(&job.scenario.scenario.name)
        .chars()
        .take(16)
        .collect();
    let dir = opts.run_dir.join(format!(
        "{}-{}-{}",
        slug.trim_end_matches('-'),
        job.version,
        super::run_id()
    ));
    result.peer = format!("{} ({})", profile.profile.name, dir.display());
    ctx.transcript
        .note(format!("starting peer {}", profile.profile.name));
    let ready_within = profile
        .profile
        .ready
        .within
        .map_or(super::peer::DEFAULT_READY_WITHIN, |d| d.0);
    let progress = ctx.progress.clone();
    let what = format!("peer {} to start", profile.profile.name);
    let process = progress
        .watch(
            &what,
            Some(ready_within),
            profile.start(&mut ctx.vars, &dir),
        )
        .await
        .map_err(|e| Outcome::Unreachable(format!("cannot start peer: {e}")))?;
    ctx.transcript
        .note(format!("peer started, pid {}", process.pid()));
    Ok(Some(Started { process, dir }))
}

/// Decide which peer the steps talk to: `--peer`, else the scenario's address, else
/// its reference peer (started here, only when no real peer is involved). Returns the
/// reference peer to stop afterwards.
pub async fn resolve_peer(
    ctx: &mut ScenarioContext,
    result: &mut ScenarioResult,
    s: &Scenario,
    job: &Job,
    opts: &RunOptions,
    listener: Option<&TcpListener>,
    started: Option<&Started>,
) -> Result<Option<RunningPeer>, Outcome> {
    let address = match (&opts.peer, s.peer.address.as_deref()) {
        (Some(p), _) => p.clone(),
        (None, Some(a)) => ctx
            .vars
            .expand_str(a)
            .map_err(|e| Outcome::Error(format!("peer.address: {e}")))?,
        (None, None) => String::new(),
    };
    // A real peer is involved: no reference peer stands in (`--listen` says a real peer
    // connects to the harness there).
    let external = opts.peer.is_some() || started.is_some() || opts.listen.is_some();
    let mut stand_in = None;
    if !address.is_empty() {
        if started.is_none() {
            result.peer = address.clone();
        }
        ctx.peer_addr = Some(address);
    } else if !external {
        match &s.peer.reference {
            Some(name) => {
                let peer = start_reference(ctx, name, job, opts, listener).await?;
                result.peer = peer.describe.clone();
                if let Some(a) = peer.listen {
                    ctx.peer_addr = Some(a.to_string());
                }
                stand_in = Some(peer);
            }
            // Written for a real peer only (an address variable, no built-in stand-in),
            // and no address given: nothing to run against. (A scenario without
            // `peer.address` waits for whoever connects to its listener.)
            None if s.peer.address.is_some() => {
                let variable = address_variable(s.peer.address.as_deref())
                    .map_or("the scenario's address variable".to_string(), |v| {
                        format!("{v}=HOST:PORT")
                    });
                return Err(Outcome::Skipped(format!(
                    "needs a real peer: give --peer ADDR, --start-peer PROFILE or {variable}"
                )));
            }
            None => {}
        }
    }
    match &ctx.peer_addr {
        Some(a) => ctx.vars.set("peer", a.clone().into()),
        // A real peer connects to the listener (`--listen`), but the scenario also
        // connects to it (e.g. to an active proxy's trapper) and was not told where.
        None if external && super::uses_exchange(&s.steps) => {
            return Err(Outcome::Skipped(format!(
                "connects to the peer too and needs its address: give --peer ADDR{}",
                address_variable(s.peer.address.as_deref())
                    .map(|v| format!(" or {v}=HOST:PORT"))
                    .unwrap_or_default()
            )))
        }
        None => {}
    }
    Ok(stand_in)
}

/// The variable a scenario's `peer.address` is read from (`${PROXY_ADDR:-}` →
/// `PROXY_ADDR`), to name it in a message.
fn address_variable(address: Option<&str>) -> Option<&str> {
    let inner = address?.strip_prefix("${")?.strip_suffix('}')?;
    Some(inner.split(":-").next().unwrap_or(inner))
}

/// Start the named reference peer at the job's version, connecting to the scenario's
/// listener when it is a peer that dials out.
async fn start_reference(
    ctx: &ScenarioContext,
    name: &str,
    job: &Job,
    opts: &RunOptions,
    listener: Option<&TcpListener>,
) -> Result<RunningPeer, Outcome> {
    let cfg = ReferenceConfig {
        name: name.to_string(),
        version: job.version.clone(),
        fault: opts.fault.clone(),
        connect_to: listener.and_then(|l| l.local_addr().ok()),
        listen: None,
    };
    reference::start_with_tls(&cfg, &ctx.catalog, reference_tls(ctx))
        .await
        .map_err(|e| Outcome::Unreachable(format!("cannot start reference peer `{name}`: {e}")))
}

/// The reference peer's side of the scenario's encryption (its `tls:` block under the
/// run's `--tls-*` options; see [`TlsConfig::mirrored`]). Settings that cannot be used
/// leave the peer in plaintext: the first step that connects reports them, with the line.
fn reference_tls(ctx: &ScenarioContext) -> TlsConfig {
    scenario_tls(ctx)
        .map(|cfg| cfg.mirrored())
        .unwrap_or_else(TlsConfig::plaintext)
}

/// The scenario's encryption (its `tls:` block under the run's `--tls-*` options),
/// variables expanded and files read; `None` when nothing is set or a setting cannot be
/// used (the first step that connects reports why, with its line).
fn scenario_tls(ctx: &ScenarioContext) -> Option<TlsConfig> {
    let mut settings = ctx.tls.clone();
    if settings.is_empty() {
        return None;
    }
    for (_, value) in settings.fields_mut() {
        *value = ctx.vars.expand_str(value).ok()?;
    }
    TlsConfig::load(&settings, ctx.scenario_dir.as_deref()).ok()
}

/// Built-in variables that describe how the harness connects to the peer, so that a
/// configuration the scenario pushes can let the harness's own connections in: a proxy
/// checks a sender's or an agent's connection against the host's `tls_accept` (and, for
/// PSK, its `tls_psk_identity` and `tls_psk`), and an auto-registration against the
/// `autoreg_tls_accept` setting. In a plaintext run they describe a plaintext
/// connection, so the same scenario runs either way:
/// - `tls_connect_type`: the connection type as Zabbix numbers it (1 unencrypted,
///   2 PSK, 4 certificate);
/// - `tls_host_accept`: that type or unencrypted (1, 3 or 5);
/// - `tls_host_connect`: how the peer is to connect to a host the harness plays (a
///   passive agent on the harness's listener): the first type the harness accepts
///   (1, 2 or 4), so a PSK-only or certificate-only listener is reached too;
/// - `tls_host_psk_identity`, `tls_host_psk`: the run's PSK when that type is PSK, else
///   empty (an identity pushed in a host's secret field is redacted from the reports,
///   so it is pushed only when it is used);
/// - `tls_autoreg_accept`: unencrypted, and PSK in a PSK run (1 or 3): Zabbix
///   auto-registers over those two only;
/// - `tls_psk_identity`, `tls_psk`: the run's PSK identity and key (hex), empty without
///   PSK. The key joins the values scrubbed from every report.
pub fn set_connection_vars(ctx: &mut ScenarioContext) {
    let cfg = scenario_tls(ctx).unwrap_or_else(TlsConfig::plaintext);
    ctx.connect_mode = cfg.connect;
    let bit = cfg.connect.bit();
    let (identity, key) = match &cfg.psk {
        Some(psk) => (psk.identity().to_string(), psk.hex().to_string()),
        None => (String::new(), String::new()),
    };
    if !key.is_empty() {
        ctx.secrets
            .add_value(&serde_json::Value::String(key.clone()));
    }
    ctx.vars.set("tls_connect_type", bit.into());
    ctx.vars.set("tls_host_accept", (bit | 1).into());
    let accepted = cfg.accept.first().copied().unwrap_or(TlsMode::Unencrypted);
    ctx.vars.set("tls_host_connect", accepted.bit().into());
    let (host_identity, host_key) = match accepted {
        TlsMode::Psk => (identity.clone(), key.clone()),
        _ => (String::new(), String::new()),
    };
    ctx.vars.set("tls_host_psk_identity", host_identity.into());
    ctx.vars.set("tls_host_psk", host_key.into());
    ctx.vars.set("tls_autoreg_accept", ((bit & 2) | 1).into());
    ctx.vars.set("tls_psk_identity", identity.into());
    ctx.vars.set("tls_psk", key.into());
}

/// A failed pseudo-step for the lines of the started peer's log that its profile
/// calls problems (`fail_on_log`), if any.
pub fn log_problems(started: &Started, profile: &LoadedProfile) -> Option<StepResult> {
    let problems = profile.log_problems(&started.process.log().unwrap_or_default());
    if problems.is_empty() {
        return None;
    }
    let expected = format!(
        "no log line matching {}",
        profile.profile.fail_on_log.join(" | ")
    );
    Some(StepResult {
        sent: None,
        index: "peer-log".into(),
        action: "peer log".into(),
        name: None,
        requirement: Vec::new(),
        line: 0,
        outcome: Outcome::Failed,
        failures: problems
            .iter()
            .take(MAX_LOG_PROBLEMS)
            .map(|l| CheckFailure::new(CheckKind::PeerLog, expected.clone(), l.clone()))
            .collect(),
        duration: Duration::ZERO,
    })
}

/// Stop the started peer; keep its log in the result and its run directory (config,
/// data, log) on disk when the scenario did not pass, for inspection. A passed
/// scenario leaves nothing behind.
pub async fn stop_started(
    ctx: &mut ScenarioContext,
    result: &mut ScenarioResult,
    started: Started,
    outcome: &Outcome,
) {
    let Started { process, dir } = started;
    let passed = *outcome == Outcome::Passed;
    let logs = process.log_files();
    let status = process.stop().await;
    // Read once the peer has exited: nothing is half written any more.
    if !passed {
        result.peer_log = logs.whole().or_else(|| Some(logs.tail(200)));
    }
    ctx.transcript.note(format!("peer stopped: {status}"));
    if passed {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        ctx.transcript
            .note(format!("peer files kept in {}", dir.display()));
    }
}

//! Load generation shared by `tests/load_smoke.rs` (always on, small) and
//! `benches/load.rs` (`cargo bench --bench load`, 200 connections, prints figures).
//!
//! Three targets, all on 127.0.0.1:
//! - the reference passive proxy: `proxy tasks` request → tasks reply → acknowledgement
//!   → the proxy closes;
//! - the reference server trapper: an active `proxy heartbeat` → `{"response":"success"}`
//!   → close;
//! - the harness's own listener: an `accept` scenario of N steps run by the runner,
//!   while N clients connect at once and send heartbeats.
//!
//! Each client keeps one conversation in flight at a time; every conversation that does
//! not complete exactly as specified is a failure with its reason.

#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use zbx_conform::catalog::Catalog;
use zbx_conform::frame::{encode_frame, FrameOptions, ZbxdCodec};
use zbx_conform::reference::{self, ReferenceConfig};
use zbx_conform::runner::{self, Outcome, RunOptions};
use zbx_conform::transport::Connection;

/// Per-operation timeout of a load client: generous, a slow answer is not a failure
/// under load, a missing one is.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// Memory figures of this process, from /proc/self/status (KiB). Zero where unavailable.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

pub fn mem() -> Mem {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Mem {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

/// What one load run measured.
#[derive(Debug, Clone)]
pub struct Figures {
    pub target: String,
    pub connections: usize,
    pub elapsed: Duration,
    pub completed: u64,
    pub failures: u64,
    /// The first few failure reasons.
    pub reasons: Vec<String>,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub before: Mem,
    pub after: Mem,
}

impl Figures {
    pub fn line(&self) -> String {
        format!(
            "{:<28} conns {:>4}  {:>7} ok  {:>3} failed  {:>8.0}/s  p50 {:>6.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  RSS {} -> {} MiB  HWM {} -> {} MiB",
            self.target,
            self.connections,
            self.completed,
            self.failures,
            self.completed as f64 / self.elapsed.as_secs_f64().max(1e-9),
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.max.as_secs_f64() * 1e3,
            self.before.rss_kib / 1024,
            self.after.rss_kib / 1024,
            self.before.hwm_kib / 1024,
            self.after.hwm_kib / 1024,
        )
    }
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn fixture(name: &str) -> Vec<u8> {
    let p = root().join(format!("fixtures/server-proxy/6.0/{name}.json"));
    let text = std::fs::read_to_string(&p).expect("fixture readable");
    let v: Value = serde_json::from_str(&text).expect("fixture is JSON");
    serde_json::to_vec(&v).expect("encode")
}

/// Which conversation a client repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversation {
    /// Against a passive proxy: tasks request, reply, acknowledgement, close.
    PassiveTasks,
    /// Against a server trapper or the harness's listener: heartbeat, success, close.
    Heartbeat,
}

/// One conversation on a fresh connection; `Err` says what went wrong.
async fn converse(addr: &str, conv: Conversation) -> Result<(), String> {
    let stream = tokio::time::timeout(OP_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let mut conn = Connection::new(stream, ZbxdCodec::new(16 << 20), addr);
    let request = match conv {
        Conversation::PassiveTasks => {
            encode_frame(br#"{"request":"proxy tasks"}"#, &FrameOptions::plain())
        }
        Conversation::Heartbeat => encode_frame(
            &fixture("active.proxy-heartbeat.request"),
            &FrameOptions::compressed(),
        ),
    };
    conn.write_all(&request, OP_TIMEOUT)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let reply = conn
        .read_frame(OP_TIMEOUT)
        .await
        .map_err(|e| format!("read: {e}"))?
        .ok_or("closed without a reply")?;
    let v: Value =
        serde_json::from_slice(&reply.payload).map_err(|e| format!("reply is not JSON: {e}"))?;
    match conv {
        Conversation::PassiveTasks => {
            if v.get("version").and_then(Value::as_str).is_none() {
                return Err(format!("tasks reply without version: {v}"));
            }
            let ack = encode_frame(br#"{"response":"success"}"#, &FrameOptions::plain());
            conn.write_all(&ack, OP_TIMEOUT)
                .await
                .map_err(|e| format!("write ack: {e}"))?;
        }
        Conversation::Heartbeat => {
            if v.get("response").and_then(Value::as_str) != Some("success") {
                return Err(format!("heartbeat reply is not success: {v}"));
            }
        }
    }
    let rest = conn
        .wait_close(OP_TIMEOUT)
        .await
        .map_err(|e| format!("close: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the reply", rest.len()));
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Collected per-client results.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    failures: u64,
    reasons: Vec<String>,
}

fn summarise(
    target: &str,
    connections: usize,
    elapsed: Duration,
    tallies: Vec<Tally>,
    before: Mem,
) -> Figures {
    let mut lat = Vec::new();
    let mut failures = 0;
    let mut reasons = Vec::new();
    for t in tallies {
        lat.extend(t.latencies);
        failures += t.failures;
        for r in t.reasons {
            if reasons.len() < 5 {
                reasons.push(r);
            }
        }
    }
    lat.sort();
    Figures {
        target: target.to_string(),
        connections,
        elapsed,
        completed: lat.len() as u64,
        failures,
        reasons,
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        max: lat.last().copied().unwrap_or_default(),
        before,
        after: mem(),
    }
}

/// `connections` clients, each repeating `conv` against `addr` until `duration` passed.
pub async fn hammer(
    target: &str,
    addr: &str,
    connections: usize,
    duration: Duration,
    conv: Conversation,
) -> Figures {
    let before = mem();
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let addr = addr.to_string();
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            while Instant::now() < deadline {
                let began = Instant::now();
                match converse(&addr, conv).await {
                    Ok(()) => t.latencies.push(began.elapsed()),
                    Err(e) => {
                        t.failures += 1;
                        if t.reasons.len() < 5 {
                            t.reasons.push(e);
                        }
                    }
                }
            }
            t
        }));
    }
    let mut tallies = Vec::new();
    for task in tasks {
        tallies.push(task.await.unwrap_or_else(|e| Tally {
            failures: 1,
            reasons: vec![format!("client task: {e}")],
            ..Tally::default()
        }));
    }
    summarise(target, connections, start.elapsed(), tallies, before)
}

/// Start a listening reference peer (`passive-proxy`, `server-trapper`) for 6.0, hammer
/// it, stop it.
pub async fn against_reference(name: &str, connections: usize, duration: Duration) -> Figures {
    let cfg = ReferenceConfig {
        name: name.to_string(),
        version: "6.0".to_string(),
        fault: None,
        connect_to: None,
        listen: None,
    };
    let catalog = Catalog::load(&root()).expect("catalog loads");
    let peer = reference::start(&cfg, &catalog)
        .await
        .expect("reference peer starts");
    let addr = peer.listen.expect("a listening peer").to_string();
    let conv = if name == "passive-proxy" {
        Conversation::PassiveTasks
    } else {
        Conversation::Heartbeat
    };
    let f = hammer(
        &format!("reference {name}"),
        &addr,
        connections,
        duration,
        conv,
    )
    .await;
    peer.stop().await;
    f
}

/// The harness's own listener: an `accept` scenario with `connections * rounds` steps
/// (each accepts one connection, checks the heartbeat, replies success), while
/// `connections` clients connect at once, `rounds` times each. The scenario's result
/// must be a pass and every client conversation must succeed.
pub async fn against_harness_listener(connections: usize, rounds: usize) -> (Figures, Outcome) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let yaml = format!(
        r#"
name: accept load
family: server-proxy
versions: ["6.0"]
plays: server
listen: 127.0.0.1:{port}
steps:
  - repeat:
      times: {}
      steps:
        - accept:
            expect: {{ kind: active.proxy-heartbeat.request, within: 30s }}
            reply: {{ json: {{ response: success }} }}
"#,
        connections * rounds
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("accept-load.yaml");
    std::fs::write(&file, yaml).expect("write scenario");
    let catalog = Arc::new(Catalog::load(&root()).expect("catalog"));
    let opts = RunOptions {
        paths: vec![file],
        jobs: 1,
        ..RunOptions::default()
    };
    let jobs = runner::plan(&catalog, &opts).expect("scenario loads");
    let before = mem();
    let start = Instant::now();
    let run = tokio::spawn(async move { runner::run_jobs(catalog, jobs, &opts, |_| {}).await });
    let addr = format!("127.0.0.1:{port}");
    // No readiness probe: a probe connection would be accepted by the first step and
    // fail it. Clients retry a refused connect until the runner listens.
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            for _ in 0..rounds {
                let began = Instant::now();
                match converse_retrying(&addr, Conversation::Heartbeat).await {
                    Ok(()) => t.latencies.push(began.elapsed()),
                    Err(e) => {
                        t.failures += 1;
                        if t.reasons.len() < 5 {
                            t.reasons.push(e);
                        }
                    }
                }
            }
            t
        }));
    }
    let mut tallies = Vec::new();
    for task in tasks {
        tallies.push(task.await.unwrap_or_default());
    }
    let result = run.await.expect("runner task");
    let outcome = result
        .scenarios
        .first()
        .map(|s| s.outcome.clone())
        .unwrap_or(Outcome::Error("no result".into()));
    (
        summarise(
            "harness accept listener",
            connections,
            start.elapsed(),
            tallies,
            before,
        ),
        outcome,
    )
}

/// [`converse`], but a refused connect (listener not bound yet) is retried for up to
/// 10 s first.
async fn converse_retrying(addr: &str, conv: Conversation) -> Result<(), String> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match converse(addr, conv).await {
            Err(e) if e.starts_with("connect:") && Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            other => return other,
        }
    }
}

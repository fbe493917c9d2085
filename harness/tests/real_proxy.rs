//! The standard server<->proxy suite against a real `zabbix_proxy` 6.0 (Debian 12 package
//! `zabbix-proxy-sqlite3`, installed by `ci/install-peers.sh`), in passive and active
//! mode, through the library exactly as `zbx-conform run --start-peer` does it: one fresh
//! proxy per scenario, started from `ci/peers/zabbix-proxy-{passive,active}.yaml`.
//!
//! Beyond "every scenario passes", checks the scenario format cannot express:
//! - every data section of `proxy data` (interface availability, history, discovery,
//!   auto registration, tasks, more, proxy_delay) came from the real proxy, in both
//!   modes, and the secrets of the tasks handed to it reach no report;
//! - every proxy log is free of rejected configuration updates and crashes (a real proxy
//!   answers `"response":"success"` to a configuration it then fails to apply);
//! - active mode: heartbeats arrive at HeartbeatFrequency=1 (every interval within
//!   [0.5 s, 3 s]) and a value sent to the proxy's trapper comes back in `proxy data`.
//!
//! Without the binary the tests print why and skip — unless `CI=true`, where a missing
//! peer is a failure. `ZABBIX_PROXY` overrides the binary path.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zbx_conform::catalog::Catalog;
use zbx_conform::frame::{encode_frame, FrameOptions, ZbxdCodec};
use zbx_conform::runner::peer::LoadedProfile;
use zbx_conform::runner::{self, CheckKind, Outcome, RunOptions};
use zbx_conform::scenario::vars::Vars;
use zbx_conform::transport::{connect_tcp, Connection};

/// Log lines that mean the proxy rejected what a scenario sent, or crashed. The profiles
/// list them in `fail_on_log`, so a scenario with such a line fails (checked while its
/// run dir still exists; passed scenarios' run dirs are deleted).
const BAD_LOG_LINES: &[&str] = &[
    "failed to update local proxy configuration copy",
    "Something impossible has just happened",
    "Crashing",
    "One child process died",
];

/// Whether the real proxy is there; without it: skip (print why), or fail under CI=true.
fn proxy_available(test: &str) -> bool {
    let found = support::require_binary("ZABBIX_PROXY", "/usr/sbin/zabbix_proxy").is_some();
    if !found {
        eprintln!("SKIPPED {test}: no zabbix_proxy (bash ci/install-peers.sh)");
    }
    found
}

fn profile(mode: &str) -> Arc<LoadedProfile> {
    let p = support::load_profile(&format!("ci/peers/zabbix-proxy-{mode}.yaml"));
    for line in BAD_LOG_LINES {
        assert!(
            p.profile.fail_on_log.iter().any(|l| l == line),
            "{mode} profile: `{line}` is missing from fail_on_log"
        );
    }
    p
}

/// Run `scenarios/server-proxy/<mode>` at 6.0 against a fresh real proxy per scenario;
/// every data section of `kind` must have come from the real proxy, and the secrets of
/// the tasks handed to it must reach no report.
fn run_suite(mode: &str, min: usize, kind: &str) {
    let test = format!("real proxy, {mode} suite");
    if !proxy_available(&test) {
        return;
    }
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-real-");
    let suite = format!("scenarios/server-proxy/{mode}");
    let r = support::run_with_peer(
        &test,
        Some(profile(mode)),
        &[&suite],
        &["6.0"],
        &[],
        &run_dir,
    );
    support::assert_all_passed(&test, &r, min);
    support::assert_sections_from_real_peer(&test, &r, "6.0", kind);
    support::assert_task_secrets_redacted(&test, &r);
}

#[test]
fn passive_suite_passes_against_real_proxy_6_0() {
    // 9 older scenarios, the data sections (interface availability, discovery,
    // auto-registration, tasks, more/proxy_delay) and tasks-results.
    run_suite("passive", 15, "passive.proxy-data.response");
}

#[test]
fn active_suite_passes_against_real_proxy_6_0() {
    run_suite("active", 9, "active.proxy-data.request");
}

// ------------------------------------------------- active: cadence and history

/// Write one compressed JSON frame.
async fn send_json<S>(conn: &mut Connection<S, ZbxdCodec>, v: &Value)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let opts = FrameOptions {
        compress: true,
        ..FrameOptions::default()
    };
    let bytes = encode_frame(v.to_string().as_bytes(), &opts);
    let _ = conn.write_all(&bytes, Duration::from_secs(5)).await;
}

/// Send `sender data` for the trapper item to the proxy's own trapper; the reply's
/// `info` string.
async fn send_value(proxy_addr: &str, value: &str) -> Option<String> {
    let stream = connect_tcp(proxy_addr, Duration::from_secs(2)).await.ok()?;
    let mut conn = Connection::new(stream, ZbxdCodec::default(), proxy_addr.to_string());
    let req = json!({"request": "sender data",
        "data": [{"host": "zbx-conform-h1", "key": "zbx.conform.text", "value": value}]});
    let bytes = encode_frame(req.to_string().as_bytes(), &FrameOptions::default());
    conn.write_all(&bytes, Duration::from_secs(5)).await.ok()?;
    let frame = conn.read_frame(Duration::from_secs(5)).await.ok()??;
    let reply: Value = serde_json::from_slice(&frame.payload).ok()?;
    reply["info"].as_str().map(str::to_string)
}

/// The harness plays the server for 20 s at most: answers every request, records when
/// heartbeats arrive, gives the proxy a configuration with a trapper item, sends it a
/// value and waits for that value in `proxy data`.
#[test]
fn active_proxy_heartbeat_cadence_and_history() {
    let test = "real active proxy: heartbeat cadence and history";
    if !proxy_available(test) {
        return;
    }
    let tables: Value = serde_json::from_str(
        &std::fs::read_to_string(
            support::root().join("fixtures/server-proxy/6.0/proxy-config.trapper.tables.json"),
        )
        .expect("fixture"),
    )
    .expect("fixture JSON");
    let run_dir = tempfile::Builder::new()
        .prefix("zbxc-cadence-")
        .tempdir()
        .expect("temp dir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut vars = Vars::new(BTreeMap::new(), BTreeMap::new());
        vars.set("listen_port", port.to_string().into());
        let process = profile("active")
            .start(&mut vars, &run_dir.path().join("proxy"))
            .await
            .expect("the proxy starts");
        let proxy_addr = vars
            .get("PROXY_ADDR")
            .and_then(|v| v.as_str().map(str::to_string))
            .expect("profile exports PROXY_ADDR");
        let marker = format!("cadence-{}", std::process::id());
        let started = Instant::now();
        let mut heartbeats: Vec<Instant> = Vec::new();
        let mut configured = false;
        // The value goes out from a task of its own: the accept loop must not lag, or
        // heartbeats pile up in the backlog and seem to come in bursts.
        let value_sent = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut sender: Option<tokio::task::JoinHandle<()>> = None;
        let mut history_row: Option<Value> = None;
        let mut other = Vec::new();
        while started.elapsed() < Duration::from_secs(20)
            && (heartbeats.len() < 5 || history_row.is_none())
        {
            let Ok(Ok((stream, _))) =
                tokio::time::timeout(Duration::from_secs(3), listener.accept()).await
            else {
                continue;
            };
            let arrived = Instant::now();
            let mut conn = Connection::new(stream, ZbxdCodec::default(), "proxy");
            let Ok(Some(frame)) = conn.read_frame(Duration::from_secs(5)).await else {
                continue;
            };
            let Ok(msg) = serde_json::from_slice::<Value>(&frame.payload) else {
                other.push(String::from_utf8_lossy(&frame.payload).into_owned());
                continue;
            };
            match msg["request"].as_str() {
                Some("proxy heartbeat") => {
                    heartbeats.push(arrived);
                    send_json(&mut conn, &json!({"response": "success"})).await;
                }
                Some("proxy config") => {
                    send_json(&mut conn, &tables).await;
                    configured = true;
                }
                Some("proxy data") => {
                    if let Some(rows) = msg["history data"].as_array() {
                        if let Some(row) = rows.iter().find(|r| r["value"] == json!(marker)) {
                            history_row = Some(row.clone());
                        }
                    }
                    send_json(&mut conn, &json!({"upload": "enabled", "response": "success"}))
                        .await;
                }
                _ => other.push(msg.to_string()),
            }
            conn.shutdown().await;
            // Once configured, the trapper accepts the value as soon as the proxy's
            // configuration cache has the item; retry until it does.
            if configured && sender.is_none() {
                let (addr, marker, sent) = (proxy_addr.clone(), marker.clone(), value_sent.clone());
                sender = Some(tokio::spawn(async move {
                    while started.elapsed() < Duration::from_secs(20) {
                        if let Some(info) = send_value(&addr, &marker).await {
                            if info.starts_with("processed: 1;") {
                                sent.store(true, std::sync::atomic::Ordering::SeqCst);
                                return;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }));
            }
        }
        if let Some(t) = sender {
            t.abort();
        }
        let value_sent = value_sent.load(std::sync::atomic::Ordering::SeqCst);
        let status = process.stop().await;
        eprintln!(
            "{test}: {} heartbeats, value sent: {value_sent}, history row: {history_row:?}, proxy stopped: {status}",
            heartbeats.len()
        );
        assert!(other.is_empty(), "unexpected messages: {other:?}");
        assert!(heartbeats.len() >= 3, "only {} heartbeats in 20 s", heartbeats.len());
        let intervals: Vec<f64> = heartbeats
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect();
        eprintln!("{test}: heartbeat intervals (s): {intervals:.3?}");
        for i in &intervals {
            assert!(
                (0.5..=3.0).contains(i),
                "heartbeat interval {i:.3} s outside [0.5, 3] for HeartbeatFrequency=1: {intervals:.3?}"
            );
        }
        assert!(value_sent, "the active proxy's trapper never processed the value");
        let row = history_row.expect("the value came back in proxy data");
        for field in ["id", "itemid", "clock", "ns"] {
            assert!(row[field].is_u64(), "history row {field}: {row}");
        }
        assert_eq!(row["itemid"], json!(20001));
    });
}

/// The real proxy answers `success` to a configuration it cannot apply; the profile's
/// `fail_on_log` turns the log line that says so into a failed `peer-log` check.
#[test]
fn a_rejected_config_fails_through_the_peer_log() {
    let test = "real proxy, rejected config";
    if !proxy_available(test) {
        return;
    }
    let root = support::root();
    let tmp = tempfile::Builder::new()
        .prefix("zbxc-real-")
        .tempdir()
        .expect("temp dir");
    // As deep as run dirs get below a CI checkout: the proxy's Unix sockets would not
    // fit below it (107 bytes), so this proves they go to the peer's short socket dir.
    let run_dir = tmp
        .path()
        .join("builds/some-group/some-project/target/real-proxy/run-suite");
    let catalog = Arc::new(Catalog::load(&root).expect("catalog loads"));
    let opts = RunOptions {
        paths: vec![root.join("harness/tests/data/peer-log")],
        start_peer: Some(profile("passive")),
        run_dir: run_dir.clone(),
        ..RunOptions::default()
    };
    let jobs = runner::plan(&catalog, &opts).expect("scenario loads");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let r = rt.block_on(runner::run_jobs(catalog, jobs, &opts, |_| {}));
    let s = &r.scenarios[0];
    assert_eq!(s.outcome, Outcome::Failed, "{}", support::describe(&r));
    assert!(
        s.failures()
            .any(|(_, f)| f.check == CheckKind::PeerLog && f.detail.contains("nosuchtable")),
        "{}",
        support::describe(&r)
    );
    assert!(
        s.peer_log.is_some(),
        "the log is attached to the failed case"
    );
}

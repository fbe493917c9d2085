//! Self-tests of the server<->proxy suite (scenarios/server-proxy/{passive,active}): every
//! scenario is shown to FAIL against a broken peer, with the check kind that should
//! catch the breakage.
//!
//! Most breakages come from the reference peers' faults (`--fault`). Three checks need a
//! misbehaviour no fault has, so this file brings tiny broken peers of its own:
//! - a passive proxy that answers `proxy config` with success but never applies it (the
//!   "configuration was applied" steps of config-push / config-large);
//! - an active proxy whose heartbeats come every 5 s (the 3 s cadence bound);
//! - an active proxy that stops connecting once told `"upload":"disabled"`.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zbx_conform::catalog::Catalog;
use zbx_conform::frame::{encode_frame, FrameOptions, ZbxdCodec};
use zbx_conform::runner::{self, CheckKind, Outcome, RunOptions, RunResult};
use zbx_conform::transport::{connect_tcp, Connection};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn options(scenario: &str) -> RunOptions {
    RunOptions {
        paths: vec![root().join(scenario)],
        versions: vec!["6.0".into()],
        jobs: 4,
        timeout: Duration::from_secs(5),
        ..RunOptions::default()
    }
}

fn run(opts: &RunOptions) -> RunResult {
    let catalog = Arc::new(Catalog::load(&root()).expect("catalog loads"));
    let jobs = runner::plan(&catalog, opts).expect("scenarios load and lint");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(runner::run_jobs(catalog, jobs, opts, |_| {}))
}

fn describe(r: &RunResult) -> String {
    let mut out = String::new();
    for s in &r.scenarios {
        out.push_str(&format!("{:?} {}\n", s.outcome, s.test_name()));
        for (step, f) in s.failures() {
            out.push_str(&format!(
                "    step {} line {}: [{}] expected {} — {}\n",
                step.index,
                step.line,
                f.check.as_str(),
                f.expected,
                f.detail
            ));
        }
    }
    out
}

/// Every scenario of `r` failed, at least one with a `check` failure, and (when given)
/// in the step named `step`.
fn assert_caught(r: &RunResult, what: &str, check: CheckKind, step: Option<&str>) {
    assert!(!r.scenarios.is_empty(), "{what}: nothing ran");
    for s in &r.scenarios {
        assert_eq!(
            s.outcome,
            Outcome::Failed,
            "{what} should fail:\n{}",
            describe(r)
        );
        let hit = s
            .failures()
            .any(|(st, f)| f.check == check && step.is_none_or(|n| st.name.as_deref() == Some(n)));
        assert!(
            hit,
            "{what} should fail a `{}` check{}:\n{}",
            check.as_str(),
            step.map(|n| format!(" in step \"{n}\""))
                .unwrap_or_default(),
            describe(r)
        );
    }
    assert_eq!(r.exit_code(), 1);
}

/// (scenario, fault, check kind that must catch it). Together with selftest.rs this
/// covers every scenario of the passive and active suites.
const FAULT_CASES: &[(&str, &str, CheckKind)] = &[
    // passive
    (
        "passive/config-push.yaml",
        "missing-fields",
        CheckKind::Schema,
    ),
    (
        "passive/config-push.yaml",
        "wrong-version",
        CheckKind::Match,
    ),
    (
        "passive/config-large.yaml",
        "wrong-response",
        CheckKind::Match,
    ),
    ("passive/config-large.yaml", "bad-frame", CheckKind::Frame),
    (
        "passive/config-without-data.yaml",
        "wrong-response",
        CheckKind::Kind,
    ),
    ("passive/data-ack.yaml", "no-close", CheckKind::Close),
    ("passive/data-ack.yaml", "extra-bytes", CheckKind::Frame),
    (
        "passive/data-compressed.yaml",
        "uncompressed",
        CheckKind::Frame,
    ),
    ("passive/data-no-ack.yaml", "wrong-types", CheckKind::Schema),
    ("passive/invalid-json.yaml", "bad-frame", CheckKind::Frame),
    ("passive/invalid-json.yaml", "no-reply", CheckKind::Timeout),
    ("passive/tasks.yaml", "wrong-version", CheckKind::Match),
    ("passive/tasks.yaml", "no-close", CheckKind::Close),
    ("passive/tasks.yaml", "uncompressed", CheckKind::Frame),
    ("passive/data-ack.yaml", "uncompressed", CheckKind::Frame),
    (
        "passive/unknown-request.yaml",
        "replies-unknown",
        CheckKind::Close,
    ),
    ("passive/unknown-request.yaml", "no-close", CheckKind::Close),
    // active
    ("active/config.yaml", "wrong-version", CheckKind::Match),
    ("active/config.yaml", "missing-fields", CheckKind::Schema),
    ("active/heartbeat.yaml", "uncompressed", CheckKind::Frame),
    ("active/heartbeat.yaml", "no-reply", CheckKind::Timeout),
    ("active/data.yaml", "wrong-types", CheckKind::Schema),
    ("active/data.yaml", "missing-fields", CheckKind::Schema),
    (
        "active/upload-disabled.yaml",
        "wrong-types",
        CheckKind::Schema,
    ),
    (
        "active/upload-disabled.yaml",
        "missing-fields",
        CheckKind::Schema,
    ),
    // data sections: what the proxy collects, with a wrong JSON type (`broken-sections`)
    (
        "passive/data-interface-availability.yaml",
        "broken-sections",
        CheckKind::Schema,
    ),
    (
        "passive/data-discovery.yaml",
        "broken-sections",
        CheckKind::Schema,
    ),
    (
        "passive/data-auto-registration.yaml",
        "broken-sections",
        CheckKind::Schema,
    ),
    (
        "passive/data-tasks.yaml",
        "broken-sections",
        CheckKind::Schema,
    ),
    (
        "passive/data-more.yaml",
        "broken-sections",
        CheckKind::Schema,
    ),
    (
        "active/data-interface-availability.yaml",
        "broken-sections",
        CheckKind::Schema,
    ),
    (
        "active/data-discovery.yaml",
        "broken-sections",
        CheckKind::Schema,
    ),
    (
        "active/data-auto-registration.yaml",
        "broken-sections",
        CheckKind::Schema,
    ),
    (
        "active/data-tasks.yaml",
        "broken-sections",
        CheckKind::Schema,
    ),
    (
        "active/data-more.yaml",
        "broken-sections",
        CheckKind::Schema,
    ),
];

#[test]
fn every_suite_scenario_fails_against_a_faulty_reference_peer() {
    // The cases wait on timeouts more than they compute: run them side by side.
    let problems: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = FAULT_CASES
            .iter()
            .map(|(scenario, fault, check)| {
                scope.spawn(move || {
                    let path = format!("scenarios/server-proxy/{scenario}");
                    let mut opts = options(&path);
                    opts.fault = Some((*fault).to_string());
                    let r = run(&opts);
                    let caught = !r.scenarios.is_empty()
                        && r.exit_code() == 1
                        && r.scenarios.iter().all(|s| {
                            s.outcome == Outcome::Failed
                                && s.failures().any(|(_, f)| f.check == *check)
                        });
                    (!caught).then(|| {
                        format!(
                            "{scenario} with fault {fault} should fail a `{}` check:\n{}",
                            check.as_str(),
                            describe(&r)
                        )
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap_or_else(|_| Some("a case panicked".into())))
            .collect()
    });
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// 6.4/7.0 steps (`when: { version: ">=6.4" }`): (scenario, fault, check kind, step
/// that must fail). Each new step of the incremental configuration sync is shown to fail
/// in that very step, at both versions.
const FAULT_CASES_64: &[(&str, &str, CheckKind, &str)] = &[
    (
        "passive/config-push.yaml",
        "missing-fields",
        CheckKind::Schema,
        "configuration dialogue",
    ),
    (
        "passive/config-push.yaml",
        "wrong-response",
        CheckKind::Match,
        "configuration dialogue",
    ),
    (
        "passive/config-push.yaml",
        "uncompressed",
        CheckKind::Frame,
        "configuration dialogue",
    ),
    (
        "passive/config-push.yaml",
        "stale-revision",
        CheckKind::Match,
        "the proxy reports the revision it was sent",
    ),
    (
        "passive/config-push.yaml",
        "reset-on-unchanged",
        CheckKind::Match,
        "after an unchanged answer the item still accepts values",
    ),
    (
        "passive/config-large.yaml",
        "wrong-response",
        CheckKind::Match,
        "push a large configuration (6.4+ dialogue)",
    ),
    (
        "passive/data-ack.yaml",
        "wrong-response",
        CheckKind::Match,
        "configure a trapper item (6.4+ dialogue)",
    ),
    (
        "passive/data-no-ack.yaml",
        "missing-fields",
        CheckKind::Schema,
        "configure a trapper item (6.4+ dialogue)",
    ),
    (
        "active/config.yaml",
        "missing-fields",
        CheckKind::Schema,
        "first request, answered with a full sync",
    ),
    (
        "active/config.yaml",
        "stale-revision",
        CheckKind::Match,
        "next request reports the revision it was sent",
    ),
    (
        "active/config.yaml",
        "reset-on-unchanged",
        CheckKind::Match,
        "an unchanged answer keeps the revision",
    ),
    (
        "active/upload-disabled.yaml",
        "wrong-types",
        CheckKind::Schema,
        "data answered with upload disabled",
    ),
    (
        "passive/data-interface-availability.yaml",
        "missing-fields",
        CheckKind::Schema,
        "configuration without the host (6.4+ dialogue)",
    ),
    (
        "passive/data-interface-availability.yaml",
        "stale-revision",
        CheckKind::Match,
        "configuration with the host, its interface on the harness (6.4+ dialogue)",
    ),
    (
        "passive/data-discovery.yaml",
        "wrong-response",
        CheckKind::Match,
        "configuration with the discovery rule (6.4+ dialogue)",
    ),
    (
        "passive/data-auto-registration.yaml",
        "missing-fields",
        CheckKind::Schema,
        "configuration (6.4+ dialogue)",
    ),
    (
        "passive/data-tasks.yaml",
        "wrong-response",
        CheckKind::Match,
        "configuration (6.4+ dialogue)",
    ),
    (
        "passive/data-more.yaml",
        "missing-fields",
        CheckKind::Schema,
        "configure the trapper items (6.4+ dialogue)",
    ),
    (
        "passive/tasks-results.yaml",
        "wrong-response",
        CheckKind::Match,
        "configuration (6.4+ dialogue)",
    ),
    (
        "passive/data-host-data.yaml",
        "stale-revision",
        CheckKind::Match,
        "configuration with the host",
    ),
    (
        "passive/data-host-data.yaml",
        "broken-sections",
        CheckKind::Schema,
        "the host is reported available for active checks",
    ),
    (
        "active/data-interface-availability.yaml",
        "missing-fields",
        CheckKind::Schema,
        "configuration without the host (6.4+)",
    ),
    (
        "active/data-interface-availability.yaml",
        "stale-revision",
        CheckKind::Match,
        "configuration with the host, its interface on the harness (6.4+)",
    ),
    (
        "active/data-discovery.yaml",
        "missing-fields",
        CheckKind::Schema,
        "configuration with the discovery rule (6.4+)",
    ),
    (
        "active/data-auto-registration.yaml",
        "wrong-types",
        CheckKind::Schema,
        "configuration (6.4+)",
    ),
    (
        "active/data-tasks.yaml",
        "missing-fields",
        CheckKind::Schema,
        "configuration (6.4+)",
    ),
    (
        "active/data-more.yaml",
        "wrong-types",
        CheckKind::Schema,
        "configure the trapper items (6.4+)",
    ),
    (
        "active/data-host-data.yaml",
        "stale-revision",
        CheckKind::Match,
        "configuration with the host",
    ),
    (
        "active/data-host-data.yaml",
        "broken-sections",
        CheckKind::Schema,
        "the proxy has applied the configuration",
    ),
    (
        "as-proxy/passive-polled.yaml",
        "missing-fields",
        CheckKind::Schema,
        "configuration dialogue, revision 0 gets a full sync",
    ),
    (
        "as-proxy/passive-polled.yaml",
        "stale-revision",
        CheckKind::Match,
        "unchanged revision sends no data",
    ),
    (
        "as-proxy/active-exchanges.yaml",
        "missing-fields",
        CheckKind::Schema,
        "revision 0 gets a full sync",
    ),
    (
        "as-proxy/active-exchanges.yaml",
        "stale-revision",
        CheckKind::Match,
        "unchanged revision sends no data",
    ),
];

#[test]
fn every_6_4_step_fails_against_a_faulty_reference_peer() {
    let problems: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = FAULT_CASES_64
            .iter()
            .map(|(scenario, fault, check, step)| {
                scope.spawn(move || {
                    let path = format!("scenarios/server-proxy/{scenario}");
                    let mut opts = options(&path);
                    opts.versions = vec!["6.4".into(), "7.0".into()];
                    opts.fault = Some((*fault).to_string());
                    let r = run(&opts);
                    let caught = r.scenarios.len() == 2
                        && r.exit_code() == 1
                        && r.scenarios.iter().all(|s| {
                            s.outcome == Outcome::Failed
                                && s.failures().any(|(st, f)| {
                                    f.check == *check && st.name.as_deref() == Some(*step)
                                })
                        });
                    (!caught).then(|| {
                        format!(
                            "{scenario} with fault {fault} should fail a `{}` check in step \"{step}\" at 6.4 and 7.0:\n{}",
                            check.as_str(),
                            describe(&r)
                        )
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap_or_else(|_| Some("a case panicked".into())))
            .collect()
    });
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_6_4_step_has_a_fault_case() {
    // A step that only runs at 6.4+ must come with a way to break it.
    for dir in ["passive", "active", "as-proxy"] {
        for e in
            std::fs::read_dir(root().join("scenarios/server-proxy").join(dir)).expect("suite dir")
        {
            let path = e.expect("dir entry").path();
            let text = std::fs::read_to_string(&path).expect("scenario readable");
            let name = format!(
                "{dir}/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("scenario parses");
            for step in doc["steps"].as_array().into_iter().flatten() {
                if step["when"]["version"] != json!(">=6.4") {
                    continue;
                }
                let step_name = step["name"].as_str().unwrap_or("");
                assert!(
                    FAULT_CASES_64
                        .iter()
                        .any(|(s, _, _, st)| *s == name && *st == step_name),
                    "{name}: 6.4+ step \"{step_name}\" has no fault case"
                );
            }
        }
    }
}

#[test]
fn every_suite_scenario_has_a_fault_case() {
    // A new scenario in the suite must come with a way to break it.
    let covered_by_selftest_rs = ["passive/config-push.yaml", "passive/data-ack.yaml"];
    for mode in ["passive", "active"] {
        let dir = root().join("scenarios/server-proxy").join(mode);
        for e in std::fs::read_dir(&dir).expect("suite dir") {
            let name = format!(
                "{mode}/{}",
                e.expect("dir entry").file_name().to_string_lossy()
            );
            assert!(
                FAULT_CASES.iter().any(|(s, _, _)| *s == name)
                    || FAULT_CASES_64.iter().any(|(s, _, _, _)| *s == name)
                    || covered_by_selftest_rs.contains(&name.as_str()),
                "{name} has no fault case"
            );
        }
    }
}

// ------------------------------------------------------------- hand-made broken peers

async fn write_json<S>(conn: &mut Connection<S, ZbxdCodec>, v: &Value, compress: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let opts = FrameOptions {
        compress,
        ..FrameOptions::default()
    };
    let _ = conn
        .write_all(
            &encode_frame(v.to_string().as_bytes(), &opts),
            Duration::from_secs(2),
        )
        .await;
}

/// A passive proxy that says "success" to every configuration and applies none: every
/// `sender data` value fails.
async fn config_ignoring_proxy(listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut conn = Connection::new(stream, ZbxdCodec::default(), "harness");
            let Ok(Some(frame)) = conn.read_frame(Duration::from_secs(5)).await else {
                return;
            };
            let msg: Value = serde_json::from_slice(&frame.payload).unwrap_or(Value::Null);
            match msg["request"].as_str() {
                Some("proxy config") => {
                    write_json(
                        &mut conn,
                        &json!({"response": "success", "version": "6.0.14"}),
                        true,
                    )
                    .await
                }
                Some("sender data") => {
                    let n = msg["data"].as_array().map_or(0, Vec::len);
                    let info =
                        format!("processed: 0; failed: {n}; total: {n}; seconds spent: 0.000010");
                    write_json(
                        &mut conn,
                        &json!({"response": "success", "info": info}),
                        false,
                    )
                    .await
                }
                _ => {}
            }
            conn.shutdown().await;
        });
    }
}

#[test]
fn config_that_is_not_applied_is_caught_by_the_sender_data_check() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let peer = rt.spawn(config_ignoring_proxy(listener));
    for (scenario, step) in [
        (
            "config-push.yaml",
            "a configured trapper item accepts a value",
        ),
        ("config-large.yaml", "the last host's item accepts a value"),
    ] {
        let mut opts = options(&format!("scenarios/server-proxy/passive/{scenario}"));
        opts.peer = Some(addr.clone());
        let r = run(&opts);
        assert_caught(&r, scenario, CheckKind::Match, Some(step));
    }
    peer.abort();
}

/// An active proxy: heartbeat every `heartbeat_every`, header-only `proxy data` after
/// each; with `quit_on_disabled` it stops for good once told `"upload":"disabled"`.
async fn broken_active_proxy(server: String, heartbeat_every: Duration, quit_on_disabled: bool) {
    let session = "0123456789abcdef0123456789abcdef";
    loop {
        let hb =
            json!({"request": "proxy heartbeat", "host": "zbx-conform-proxy", "version": "6.0.14"});
        let data = json!({"request": "proxy data", "host": "zbx-conform-proxy", "session": session,
            "version": "6.0.14", "clock": 1_795_000_000, "ns": 1});
        for msg in [hb, data] {
            let Ok(stream) = connect_tcp(&server, Duration::from_secs(1)).await else {
                continue;
            };
            let mut conn = Connection::new(stream, ZbxdCodec::default(), "server");
            write_json(&mut conn, &msg, true).await;
            if let Ok(Some(f)) = conn.read_frame(Duration::from_secs(3)).await {
                let reply: Value = serde_json::from_slice(&f.payload).unwrap_or(Value::Null);
                if quit_on_disabled && reply["upload"] == json!("disabled") {
                    return;
                }
            }
            conn.shutdown().await;
        }
        tokio::time::sleep(heartbeat_every).await;
    }
}

/// Run an active scenario against a hand-made active proxy connecting to SERVER_PORT.
fn run_active_against(
    scenario: &str,
    heartbeat_every: Duration,
    quit_on_disabled: bool,
) -> RunResult {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut opts = options(&format!("scenarios/server-proxy/active/{scenario}"));
    opts.vars.insert("SERVER_PORT".into(), port.to_string());
    // An external peer: the runner must not start its own reference active proxy.
    opts.peer = Some("127.0.0.1:1".into());
    let catalog = Arc::new(Catalog::load(&root()).expect("catalog loads"));
    let jobs = runner::plan(&catalog, &opts).expect("scenarios load and lint");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let peer = rt.spawn(broken_active_proxy(
        format!("127.0.0.1:{port}"),
        heartbeat_every,
        quit_on_disabled,
    ));
    let r = rt.block_on(runner::run_jobs(catalog, jobs, &opts, |_| {}));
    peer.abort();
    r
}

#[test]
fn slow_heartbeats_are_caught_by_the_cadence_bound() {
    let r = run_active_against("heartbeat.yaml", Duration::from_secs(5), false);
    assert_caught(
        &r,
        "heartbeat every 5 s",
        CheckKind::Timeout,
        Some("next heartbeat within 3 s"),
    );
    let ok = run_active_against("heartbeat.yaml", Duration::from_millis(500), false);
    assert_eq!(ok.exit_code(), 0, "{}", describe(&ok));
}

#[test]
fn a_proxy_that_gives_up_after_upload_disabled_is_caught() {
    let r = run_active_against("upload-disabled.yaml", Duration::from_millis(300), true);
    assert_caught(
        &r,
        "proxy quitting on upload disabled",
        CheckKind::Timeout,
        Some("the proxy still sends heartbeats"),
    );
    // The same hand-made proxy without the flaw passes: the failure is the flaw's.
    let ok = run_active_against("upload-disabled.yaml", Duration::from_millis(300), false);
    assert_eq!(ok.exit_code(), 0, "{}", describe(&ok));
}

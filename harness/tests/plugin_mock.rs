//! The mock plugin (what a real Agent 2 launches): played against an in-test agent over
//! a Unix socket, its replies are valid plugin messages, it refuses a wrong protocol
//! version by name, records every agent message with its kind and schema problems, and
//! ends on Terminate. When the binary has the `mock-plugin` subcommand and agent2 is
//! installed, the real agent2 drives it too.

mod plugin_support;

use plugin_support::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use tokio::net::UnixListener;
use zbx_conform::frame::{encode_plugin_frame, PluginCodec};
use zbx_conform::plugin::mock::{run_mock, MockConfig};
use zbx_conform::transport::Connection;

type AgentSide = Connection<tokio::net::UnixStream, PluginCodec>;

async fn send(conn: &mut AgentSide, v: Value) {
    let bytes = serde_json::to_vec(&v).expect("json");
    conn.write_all(&encode_plugin_frame(&bytes), Duration::from_secs(3))
        .await
        .expect("write");
}

/// Next non-log message from the mock (log requests are checked and skipped).
async fn reply(conn: &mut AgentSide) -> Value {
    let checker = checker();
    loop {
        let f = conn
            .read_frame(Duration::from_secs(3))
            .await
            .expect("read")
            .expect("frame");
        let v: Value = serde_json::from_slice(&f.payload).expect("json");
        let (kind, problems) = checker.check(&pv("6.0"), "plugin", &v);
        assert!(
            problems.is_empty(),
            "mock sent an invalid {kind:?}: {v} {problems:?}"
        );
        if kind.as_deref() != Some("log.request") {
            return v;
        }
    }
}

async fn start(
    dir: &Path,
    initial: bool,
) -> (
    AgentSide,
    tokio::task::JoinHandle<
        Result<zbx_conform::plugin::mock::MockSummary, zbx_conform::plugin::mock::MockError>,
    >,
) {
    let socket = dir.join("agent.plugin.sock");
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).expect("bind");
    let cfg = MockConfig {
        socket,
        initial,
        version: pv("6.0"),
        name: "Mock".into(),
        record: Some(dir.join("record.jsonl")),
        scenario: None,
    };
    let task = tokio::spawn(async move { run_mock(&cfg, checker()).await });
    let (stream, _) = tokio::time::timeout(Duration::from_secs(3), listener.accept())
        .await
        .expect("mock dials in time")
        .expect("accept");
    (
        Connection::new(stream, PluginCodec::default(), "mock"),
        task,
    )
}

#[tokio::test]
async fn mock_plugin_answers_like_a_correct_plugin_and_records_the_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut conn, task) = start(dir.path(), true).await;
    send(&mut conn, json!({"id": 1, "type": 2, "version": "6.0.13"})).await;
    let r = reply(&mut conn).await;
    assert_eq!(
        (r["id"].as_u64(), r["name"].as_str()),
        (Some(1), Some("Mock")),
        "{r}"
    );
    assert_eq!(r["interfaces"], 3);
    send(&mut conn, json!({"id": 2, "type": 9, "private_options": {"Name": "Mock", "Nodes": [{"Name": "ZbxConformNoSuchOption", "Nodes": [{"Value": "MQ==", "Line": 2}], "Line": 2}], "Line": 1}})).await;
    let r = reply(&mut conn).await;
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("ZbxConformNoSuchOption")),
        "{r}"
    );
    send(
        &mut conn,
        json!({"id": 3, "type": 6, "key": "mock.echo", "parameters": ["x"]}),
    )
    .await;
    assert_eq!(
        reply(&mut conn).await,
        json!({"id": 3, "type": 7, "value": "x"})
    );
    send(&mut conn, json!({"id": 4, "type": 6, "key": "nope"})).await;
    assert!(reply(&mut conn).await["error"].is_string());
    // An agent message that breaks its schema is recorded as such.
    send(
        &mut conn,
        json!({"id": 5, "type": 6, "key": "mock.ping", "timeout": 3}),
    )
    .await;
    assert_eq!(reply(&mut conn).await["value"], 1);
    send(&mut conn, json!({"id": 0, "type": 5})).await;
    let summary = task.await.expect("join").expect("mock ran");
    assert!(summary.terminated);
    assert_eq!((summary.received, summary.invalid), (6, 1));
    let text = std::fs::read_to_string(dir.path().join("record.jsonl")).expect("recorded");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "register.request",
            "validate.request",
            "export.request",
            "export.request",
            "export.request",
            "terminate.request"
        ]
    );
    assert!(
        lines[4]["problems"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{}",
        lines[4]
    );
    assert!(lines.iter().all(|l| l["initial"] == true));
}

#[tokio::test]
async fn mock_plugin_refuses_a_wrong_version_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut conn, task) = start(dir.path(), true).await;
    send(&mut conn, json!({"id": 1, "type": 2, "version": "6.4.0"})).await;
    let r = reply(&mut conn).await;
    let e = r["error"].as_str().unwrap_or_default();
    assert!(e.contains("6.4.0") && e.contains("6.0.13"), "{r}");
    drop(conn);
    let summary = task.await.expect("join").expect("mock ran");
    assert!(!summary.terminated, "closed, not terminated");
}

#[tokio::test]
async fn mock_plugin_reports_an_unreachable_socket() {
    let cfg = MockConfig {
        socket: "/nonexistent/zbxc.sock".into(),
        initial: false,
        version: pv("6.0"),
        name: "Mock".into(),
        record: None,
        scenario: None,
    };
    let started = std::time::Instant::now();
    let e = run_mock(&cfg, checker()).await.unwrap_err();
    assert!(e.to_string().contains("cannot connect"), "{e}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "retries like the SDK (3 s)"
    );
}

//! The mock agent (plugin host): launch, routing by id, log requests at any time,
//! validation of what the plugin sends, and cleanup on every exit path.

mod plugin_support;

use plugin_support::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zbx_conform::plugin::{HostConfig, HostError, PluginHost, WireProblemKind};

/// Write an executable Python plugin script (a prelude with framing helpers + `body`).
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let prelude = r#"#!/usr/bin/env python3
import json, socket, struct, sys, time
def send(c, o, typ=1):
    d = json.dumps(o).encode(); c.sendall(struct.pack("<II", typ, len(d)) + d)
def recv(c):
    h = b""
    while len(h) < 8:
        x = c.recv(8 - len(h))
        if not x: sys.exit(0)
        h += x
    t, n = struct.unpack("<II", h)
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x: sys.exit(0)
        b += x
    return json.loads(b)
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(sys.argv[1])
"#;
    let p = dir.join(name);
    std::fs::write(&p, format!("{prelude}{body}")).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

fn config(program: &Path) -> HostConfig {
    let mut c = HostConfig::new(program, pv("6.0"));
    c.connect_within = Duration::from_secs(3);
    c
}

/// Whether `pid` is a live (not zombie, not gone) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            !matches!(state, Some("Z" | "X") | None)
        }
        Err(_) => false,
    }
}

async fn eventually_dead(pid: u32) -> bool {
    for _ in 0..50 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn routes_out_of_order_replies_by_id_and_collects_logs_at_any_time() {
    if fake_plugin().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let p = script(
        dir.path(),
        "reorder.py",
        r#"a = recv(c); b = recv(c)
send(c, {"id": 0, "type": 1, "severity": 3, "message": "before"})
send(c, {"id": b["id"], "type": 7, "value": "second"})
send(c, {"id": 0, "type": 1, "severity": 4, "message": "between"})
send(c, {"id": a["id"], "type": 7, "value": "first"})
print("to stdout", flush=True)
print("to stderr", file=sys.stderr, flush=True)
recv(c)
"#,
    );
    let mut host = PluginHost::launch(&config(&p), checker(), false)
        .await
        .expect("launch");
    let pid = host.pid().expect("pid");
    let dir_path = host.dir().to_path_buf();
    let mode = std::fs::metadata(&dir_path)
        .expect("dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "socket directory must be private");
    assert!(
        !host.socket_path().exists(),
        "socket path removed once connected"
    );

    let (a, b) = (host.next_id(), host.next_id());
    assert_eq!((a, b), (1, 2), "ids start at 1 and increment");
    for id in [a, b] {
        host.send(&json!({"id": id, "type": 6, "key": "k"}))
            .await
            .expect("send");
    }
    let first = host
        .wait_response(a, Duration::from_secs(3))
        .await
        .expect("reply a");
    assert_eq!(first.body["value"], "first");
    assert_eq!(first.kind.as_deref(), Some("export.response"));
    assert!(first.problems.is_empty(), "{:?}", first.problems);
    let second = host
        .wait_response(b, Duration::from_secs(3))
        .await
        .expect("reply b");
    assert_eq!(second.body["value"], "second");
    let msgs: Vec<&str> = host
        .logs()
        .iter()
        .filter_map(|l| l.body["message"].as_str())
        .collect();
    assert_eq!(msgs, ["before", "between"]);
    assert!(host.problems().is_empty(), "{:?}", host.problems());

    let log = host.finish().await;
    assert!(log.stdout.contains("to stdout"), "{log:?}");
    assert!(log.stderr.contains("to stderr"), "{log:?}");
    assert!(
        log.killed,
        "it waited for another message, so the host killed it"
    );
    assert!(log.exit.is_some());
    assert!(!dir_path.exists(), "private directory removed");
    assert!(eventually_dead(pid).await, "process {pid} still alive");
}

#[tokio::test]
async fn invalid_and_unsolicited_messages_are_recorded() {
    if fake_plugin().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let p = script(
        dir.path(),
        "noisy.py",
        r#"r = recv(c)
send(c, {"id": 99, "type": 7, "value": 1})
send(c, {"id": 0, "type": 1, "severity": 42, "message": "bad severity"})
send(c, {"id": r["id"], "type": 3, "name": "", "metrics": ["k"], "interfaces": 1})
recv(c)
"#,
    );
    let mut host = PluginHost::launch(&config(&p), checker(), true)
        .await
        .expect("launch");
    let reply = host
        .request(
            json!({"type": 2, "version": "6.0.13"}),
            Duration::from_secs(3),
        )
        .await
        .expect("reply");
    assert_eq!(reply.kind.as_deref(), Some("register.response"));
    assert!(
        !reply.problems.is_empty(),
        "empty name and 1-element metrics are schema violations"
    );
    assert!(
        reply
            .problems
            .iter()
            .any(|p| p.contains("/name") || p.contains("/metrics")),
        "{:?}",
        reply.problems
    );
    assert_eq!(host.logs().len(), 1);
    assert!(
        host.logs()[0]
            .problems
            .iter()
            .any(|p| p.contains("/severity")),
        "{:?}",
        host.logs()[0].problems
    );
    assert_eq!(host.problems().len(), 1, "{:?}", host.problems());
    assert!(
        host.problems()[0].detail.contains("id 99"),
        "{:?}",
        host.problems()
    );
    // agent2 drops a reply nobody waits for: not a breaking problem.
    assert_eq!(host.problems()[0].kind, WireProblemKind::Ignored);
    let _ = host.finish().await;
}

#[tokio::test]
async fn a_late_reply_is_a_note_and_the_host_is_stalled_until_it_comes() {
    if fake_plugin().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let p = script(
        dir.path(),
        "slow.py",
        r#"r = recv(c)
time.sleep(0.6)
send(c, {"id": r["id"], "type": 3, "name": "Slow", "metrics": ["s.k", "A key."], "interfaces": 1, "extra": 1})
recv(c)
"#,
    );
    let mut host = PluginHost::launch(&config(&p), checker(), true)
        .await
        .expect("launch");
    let e = host
        .request(
            json!({"type": 2, "version": "6.0.13"}),
            Duration::from_millis(100),
        )
        .await
        .expect_err("times out");
    assert!(matches!(e, HostError::Timeout { id: 1, .. }), "{e:?}");
    assert!(host.is_stalled(), "the reply is still owed");
    assert!(!host.is_usable());
    let late = host
        .wait_response(1, Duration::from_secs(3))
        .await
        .expect("the late reply");
    assert_eq!(late.body["name"], "Slow");
    assert!(!host.is_stalled(), "the reply came");
    assert!(host.is_usable());
    assert!(late.problems.is_empty(), "{:?}", late.problems);
    // The undefined member is kept apart: agent2's decoder skips it.
    let kinds: Vec<WireProblemKind> = host.problems().iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [WireProblemKind::ExtraMember],
        "{:?}",
        host.problems()
    );
    let log = host.finish().await;
    assert!(
        log.transcript
            .iter()
            .any(|t| t.body.contains("late response with id 1")),
        "{:?}",
        log.transcript
    );
    assert_eq!(
        log.problems.len(),
        1,
        "a late reply is no problem: {:?}",
        log.problems
    );
}

#[tokio::test]
async fn request_timeout_then_close_are_reported() {
    if fake_plugin().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let p = script(
        dir.path(),
        "mute.py",
        "recv(c)\ntime.sleep(0.8)\nsys.exit(4)\n",
    );
    let mut host = PluginHost::launch(&config(&p), checker(), true)
        .await
        .expect("launch");
    let e = host
        .request(
            json!({"type": 2, "version": "6.0.13"}),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e,
        HostError::Timeout {
            id: 1,
            after: Duration::from_millis(200)
        }
    );
    let e = host
        .wait_response(1, Duration::from_secs(3))
        .await
        .unwrap_err();
    match e {
        HostError::Closed { status, .. } => assert!(status.contains("4"), "{status}"),
        other => panic!("expected Closed, got {other:?}"),
    }
    let log = host.finish().await;
    assert!(!log.killed);
    assert!(
        log.exit.as_deref().is_some_and(|s| s.contains('4')),
        "{log:?}"
    );
}

#[tokio::test]
async fn dropping_the_host_kills_the_plugin_and_removes_the_socket_dir() {
    if fake_plugin().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let p = script(dir.path(), "sleeper.py", "time.sleep(60)\n");
    let host = PluginHost::launch(&config(&p), checker(), false)
        .await
        .expect("launch");
    let pid = host.pid().expect("pid");
    let dir_path = host.dir().to_path_buf();
    assert!(alive(pid));
    drop(host);
    assert!(!dir_path.exists(), "private directory removed on drop");
    assert!(
        eventually_dead(pid).await,
        "process {pid} survived the drop"
    );
}

#[tokio::test]
async fn a_plugin_that_exits_or_never_connects_is_a_start_error_with_its_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("sockets");
    std::fs::create_dir(&base).expect("mkdir");
    let with_base = |p: &Path, within: Duration| {
        let mut c = config(p);
        c.temp_base = Some(base.clone());
        c.connect_within = within;
        c
    };
    let exits = dir.path().join("exits.sh");
    std::fs::write(&exits, "#!/bin/sh\necho \"cannot open $1\" >&2\nexit 7\n").expect("write");
    std::fs::set_permissions(&exits, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let e = PluginHost::launch(&with_base(&exits, Duration::from_secs(3)), checker(), true)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, HostError::Start { .. }), "{e:?}");
    assert!(
        text.contains("exited") && text.contains("cannot open") && text.contains('7'),
        "{text}"
    );

    let idle = dir.path().join("idle.sh");
    std::fs::write(&idle, "#!/bin/sh\nsleep 30\n").expect("write");
    std::fs::set_permissions(&idle, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let e = PluginHost::launch(
        &with_base(&idle, Duration::from_millis(300)),
        checker(),
        true,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("did not connect"), "{e}");

    let missing = with_base(Path::new("/nonexistent/plugin"), Duration::from_secs(1));
    let e = PluginHost::launch(&missing, checker(), true)
        .await
        .unwrap_err();
    assert!(matches!(e, HostError::Start { .. }), "{e:?}");
    // No private directory is left behind by any of the failures.
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&base)
        .expect("base")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

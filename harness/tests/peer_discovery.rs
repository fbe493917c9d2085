//! `run --peer` against peers the run did not start: the harness asks the peer what it
//! is and runs only that protocol version's cases, refuses a contradicting `--version`,
//! runs a newer peer as the newest known version with a warning, and lets scenarios that
//! change a shared peer take turns, so the same suite passes twice in a row on one
//! long-lived peer. The long-lived peers here are the built-in reference peers run by
//! `zbx-conform serve` (with `--fault`: deliberately broken ones); the real Zabbix
//! peers are in `long_lived_peers.rs`.

mod support;

use support::{output_text as text, root, zbx};

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A reference peer served by `zbx-conform serve` until dropped.
struct Served {
    child: Child,
    addr: String,
}

impl Served {
    fn start(args: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_zbx-conform"))
            .arg("serve")
            .args(args)
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("serve prints its address");
        // "serving reference:passive-proxy 6.0.14 on 127.0.0.1:40123 (Ctrl-C stops it)"
        let addr = line
            .split(" on ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_default()
            .to_string();
        Served { child, addr }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Test names (`name [version]`) of the PASS/FAIL lines of a run.
fn versions_run(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("PASS") || l.starts_with("FAIL "))
        .filter_map(|l| {
            let open = l.find(" [")?;
            let close = l[open..].find(']')?;
            Some(l[open + 2..open + close].to_string())
        })
        .collect()
}

/// Run `suite` against the peer at `addr`; returns the exit code and the output, and
/// checks that the run named the peer as `found`.
fn run_suite(suite: &str, addr: &str, found: &str) -> (Option<i32>, String) {
    let o = zbx(["run", suite, "--peer", addr, "--no-matrix"]);
    let out = text(&o);
    assert!(out.contains(&format!("peer {addr}: {found}")), "{out}");
    (o.status.code(), out)
}

#[test]
fn a_long_lived_proxy_is_asked_its_version_and_passes_twice() {
    let peer = Served::start(&["passive-proxy", "--version", "6.0"]);
    for round in 1..=2 {
        let (code, out) = run_suite(
            "scenarios/server-proxy/passive",
            &peer.addr,
            "zabbix_proxy (passive) 6.0.14 → protocol 6.0",
        );
        assert_eq!(code, Some(0), "round {round}:\n{out}");
        let versions = versions_run(&out);
        assert!(!versions.is_empty(), "{out}");
        assert!(
            versions.iter().all(|v| v == "6.0"),
            "only 6.0 cases: {versions:?}"
        );
    }
}

#[test]
fn a_broken_long_lived_proxy_fails_the_same_run() {
    for fault in ["no-ack-wait", "wrong-types", "no-close"] {
        let peer = Served::start(&["passive-proxy", "--version", "6.0", "--fault", fault]);
        let o = zbx([
            "run",
            "scenarios/server-proxy/passive",
            "--peer",
            &peer.addr,
            "--no-matrix",
            "--timeout",
            "3s",
        ]);
        assert_eq!(o.status.code(), Some(1), "{fault}:\n{}", text(&o));
        assert!(text(&o).contains("→ protocol 6.0"), "{}", text(&o));
    }
}

#[test]
fn a_proxy_that_names_no_version_is_told_apart_from_an_unreachable_one() {
    // The missing-fields proxy leaves "version" out of every reply.
    let peer = Served::start(&[
        "passive-proxy",
        "--version",
        "6.0",
        "--fault",
        "missing-fields",
    ]);
    let o = zbx([
        "run",
        "scenarios/server-proxy/passive",
        "--peer",
        &peer.addr,
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("did not name its version"), "{out}");
    assert!(
        out.contains("`proxy tasks`: the reply names no version"),
        "{out}"
    );
    assert!(out.contains("give --version V"), "{out}");
    // Told which version to run, the run goes on and the peer fails its checks.
    let o = zbx([
        "run",
        "scenarios/server-proxy/passive",
        "--peer",
        &peer.addr,
        "--version",
        "6.0",
        "--no-matrix",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn a_contradicting_version_is_a_usage_error_naming_both() {
    let peer = Served::start(&["passive-proxy", "--version", "7.0"]);
    let o = zbx([
        "run",
        "scenarios/server-proxy/passive",
        "--peer",
        &peer.addr,
        "--version",
        "6.0",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("--version 6.0 contradicts the peer"), "{out}");
    assert!(
        out.contains("zabbix_proxy (passive) 7.0.0 → protocol 7.0"),
        "{out}"
    );
    // The same --version as the peer's is fine.
    let o = zbx([
        "run",
        "scenarios/server-proxy/passive/tasks.yaml",
        "--peer",
        &peer.addr,
        "--version",
        "7.0",
        "--no-matrix",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn an_unreachable_peer_is_exit_3_before_anything_runs() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    let o = zbx(["run", "scenarios/server-proxy/passive", "--peer", &addr]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(out.contains(&format!("cannot reach {addr}")), "{out}");
    assert!(!out.contains("PASS") && !out.contains("FAIL "), "{out}");
}

#[test]
fn an_address_without_a_port_is_a_usage_error() {
    let o = zbx([
        "run",
        "scenarios/server-proxy/passive",
        "--peer",
        "127.0.0.1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no port"), "{}", text(&o));
}

#[test]
fn a_passive_agent_names_its_program_and_version() {
    let peer = Served::start(&["agent-passive", "--version", "7.0"]);
    let (code, out) = run_suite(
        "scenarios/agent/passive",
        &peer.addr,
        "zabbix_agentd 7.0.0 → protocol 7.0",
    );
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn an_active_peer_is_known_by_its_first_message_on_the_listen_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let _peer = Served::start(&["active-proxy", "--version", "7.0", "--connect", &listen]);
    let o = zbx([
        "run",
        "scenarios/server-proxy/active",
        "--listen",
        &listen,
        "--no-matrix",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "peer connections to {listen}: zabbix_proxy (active) 7.0.0 → protocol 7.0"
        )),
        "{out}"
    );
    assert!(versions_run(&out).iter().all(|v| v == "7.0"), "{out}");
}

/// A peer that says it is `version` when asked `proxy tasks`, and closes anything else
/// without a word.
fn claiming(version: &str) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    let version = version.to_string();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
            while let Ok(Ok((mut s, _))) =
                tokio::time::timeout_at(deadline, listener.accept()).await
            {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                if String::from_utf8_lossy(&buf[..n]).contains("proxy tasks") {
                    let body = format!(r#"{{"version":"{version}","clock":1,"ns":2}}"#);
                    let mut frame = b"ZBXD\x01".to_vec();
                    frame.extend((body.len() as u32).to_le_bytes());
                    frame.extend(0u32.to_le_bytes());
                    frame.extend(body.as_bytes());
                    let _ = s.write_all(&frame).await;
                }
            }
        });
    });
    (addr, handle)
}

#[test]
fn a_newer_peer_runs_as_the_newest_known_version_with_a_warning() {
    // Two minor versions past the newest the catalog lists (7.4 → 7.6.1).
    let newest = support::catalog()
        .all_versions()
        .last()
        .expect("versions")
        .version
        .clone();
    let (major, minor) = newest.split_once('.').expect("major.minor");
    let minor: u32 = minor.parse().expect("minor");
    let newer = format!("{major}.{}", minor + 2);
    let (addr, _h) = claiming(&format!("{newer}.1"));
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("j.xml");
    let o = zbx([
        "run",
        "scenarios/server-proxy/passive/unknown-request.yaml",
        "--peer",
        &addr,
        "--junit",
        junit.to_str().unwrap(),
        "--no-matrix",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!("{newer}.1 → protocol {newest}")),
        "{out}"
    );
    assert!(
        out.contains("warning: peer") && out.contains("newer than any version the catalog knows"),
        "{out}"
    );
    assert_eq!(versions_run(&out), vec![newest.clone()], "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(&format!(
            r#"<property name="peer.version" value="{newer}.1"/>"#
        )),
        "{xml}"
    );
    assert!(
        xml.contains(&format!(
            r#"<property name="peer.warning" value="the peer speaks {newer}"#
        )),
        "{xml}"
    );
}

#[test]
fn a_version_the_catalog_does_not_know_is_not_guessed() {
    let (addr, _h) = claiming("6.2.9");
    let o = zbx(["run", "scenarios/server-proxy/passive", "--peer", &addr]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("speaks 6.2.9, a version the catalog does not know"),
        "{out}"
    );
    assert!(out.contains("--version"), "{out}");
}

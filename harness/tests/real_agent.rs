//! Interoperability with the real Zabbix 6.0.14 agent-side programs (Debian 12 packages
//! zabbix-agent, zabbix-agent2, zabbix-sender, zabbix-get; `ci/install-peers.sh`):
//!
//! - scenarios/agent against real zabbix_agentd and zabbix_agent2, passive and active,
//!   started per scenario from the profiles in ci/peers/;
//! - the real clients zabbix_get and zabbix_sender against the harness's reference
//!   peers (agent-passive, server-for-agents), checking their exit codes and output.
//!
//! A missing binary skips the test with a printed reason, except when CI=true: then it is
//! a failure, never a silent skip.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use zbx_conform::reference::{self, ReferenceConfig, RunningPeer};
use zbx_conform::runner::{Outcome, RunOptions};

/// Run `paths` (version 6.0) against a real peer started from `profile`, a fresh agent
/// per scenario, and require that every scenario passes.
fn run_against(profile: &str, paths: &[&str]) {
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-agent-");
    let r = support::run_with_peer(
        profile,
        Some(support::load_profile(profile)),
        paths,
        &["6.0"],
        &[],
        &run_dir,
    );
    support::assert_all_passed(profile, &r, 1);
}

#[test]
fn agentd_passive_passes_the_passive_suite() {
    if support::require_binary("ZABBIX_AGENTD", "/usr/sbin/zabbix_agentd").is_none() {
        return;
    }
    run_against(
        "ci/peers/zabbix-agentd-passive.yaml",
        &["scenarios/agent/passive"],
    );
}

#[test]
fn agentd_active_passes_the_active_suite() {
    if support::require_binary("ZABBIX_AGENTD", "/usr/sbin/zabbix_agentd").is_none() {
        return;
    }
    run_against(
        "ci/peers/zabbix-agentd-active.yaml",
        &["scenarios/agent/active"],
    );
}

#[test]
fn agent2_passive_passes_the_passive_suite() {
    if support::require_binary("ZABBIX_AGENT2", "/usr/sbin/zabbix_agent2").is_none() {
        return;
    }
    run_against(
        "ci/peers/zabbix-agent2-passive.yaml",
        &["scenarios/agent/passive"],
    );
}

/// agent2 announces version "6.0", so it only takes the itemid item shape (the legacy
/// shape of checks-and-data.yaml is for zabbix_agentd, which sends no version).
#[test]
fn agent2_active_passes_the_itemid_scenario() {
    if support::require_binary("ZABBIX_AGENT2", "/usr/sbin/zabbix_agent2").is_none() {
        return;
    }
    run_against(
        "ci/peers/zabbix-agent2-active.yaml",
        &["scenarios/agent/active/checks-itemid.yaml"],
    );
}

/// A reference peer running on its own runtime while the test thread runs a client.
struct Reference {
    rt: tokio::runtime::Runtime,
    peer: Option<RunningPeer>,
    port: u16,
}

impl Reference {
    fn start(name: &str) -> Reference {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let cfg = ReferenceConfig {
            name: name.to_string(),
            version: "6.0".to_string(),
            fault: None,
            connect_to: None,
            listen: None,
        };
        let peer = rt
            .block_on(reference::start(&cfg, support::catalog()))
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let port = peer.listen.expect("a listening peer").port();
        Reference {
            rt,
            peer: Some(peer),
            port,
        }
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        if let Some(p) = self.peer.take() {
            self.rt.block_on(p.stop());
        }
    }
}

fn run_client(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn zabbix_get_reads_the_reference_passive_agent() {
    let Some(get) = support::require_binary("ZABBIX_GET", "/usr/bin/zabbix_get") else {
        return;
    };
    let agent = Reference::start("agent-passive");
    let port = agent.port.to_string();
    let ping = run_client(&get, &["-s", "127.0.0.1", "-p", &port, "-k", "agent.ping"]);
    assert_eq!(ping.status.code(), Some(0), "{}", text(&ping));
    assert_eq!(
        String::from_utf8_lossy(&ping.stdout).trim(),
        "1",
        "{}",
        text(&ping)
    );

    let version = run_client(
        &get,
        &["-s", "127.0.0.1", "-p", &port, "-k", "agent.version"],
    );
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "6.0.14",
        "{}",
        text(&version)
    );

    // zabbix_get shows ZBX_NOTSUPPORTED with the message after the NUL.
    let unknown = run_client(&get, &["-s", "127.0.0.1", "-p", &port, "-k", "no.such.key"]);
    let out = String::from_utf8_lossy(&unknown.stdout);
    assert!(
        out.contains("ZBX_NOTSUPPORTED") && out.contains("Unsupported item key."),
        "{}",
        text(&unknown)
    );
}

#[test]
fn zabbix_sender_reports_processed_and_failed_values() {
    let Some(sender) = support::require_binary("ZABBIX_SENDER", "/usr/bin/zabbix_sender") else {
        return;
    };
    let server = Reference::start("server-for-agents");
    let port = server.port.to_string();
    let args = |host: &'static str| {
        vec![
            "-z",
            "127.0.0.1",
            "-p",
            &port,
            "-s",
            host,
            "-k",
            "trap.text",
            "-o",
            "hello",
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    let ok_args = args("agent-01");
    let ok = run_client(
        &sender,
        &ok_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        out.contains("processed: 1; failed: 0; total: 1"),
        "{}",
        text(&ok)
    );
    assert!(
        out.contains("sent: 1; skipped: 0; total: 1"),
        "{}",
        text(&ok)
    );

    // A value for a host the server does not know: exit status 2, counted as failed.
    let bad_args = args("unknown-host");
    let bad = run_client(
        &sender,
        &bad_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stdout).contains("processed: 0; failed: 1; total: 1"),
        "{}",
        text(&bad)
    );
}

/// A batch from an input file (`-i`, one "host key value" line each, with timestamps):
/// the unknown host's value is the one counted as failed, and the exit status says so.
#[test]
fn zabbix_sender_batch_with_an_unknown_host() {
    let Some(sender) = support::require_binary("ZABBIX_SENDER", "/usr/bin/zabbix_sender") else {
        return;
    };
    let server = Reference::start("server-for-agents");
    let port = server.port.to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("values.txt");
    std::fs::write(
        &input,
        "agent-01 trap.text 1763890000 hello\n\
         agent-01 trap.num 1763890001 42\n\
         unknown-host trap.num 1763890002 7\n",
    )
    .expect("write input");
    let input = input.display().to_string();
    let out = run_client(
        &sender,
        &["-z", "127.0.0.1", "-p", &port, "-T", "-i", &input],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("processed: 2; failed: 1; total: 3"),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("sent: 3; skipped: 0; total: 3"),
        "{}",
        text(&out)
    );
}

/// The harness plays a passive agent from a scenario's key table (`accept.reply_by`);
/// the real zabbix_get reads three keys from it and gets the scenario's values.
#[test]
fn zabbix_get_reads_the_harness_playing_an_agent_from_a_key_table() {
    let Some(get) = support::require_binary("ZABBIX_GET", "/usr/bin/zabbix_get") else {
        return;
    };
    let port = zbx_conform::runner::peer::free_port().expect("a free port");
    let mut vars = std::collections::BTreeMap::new();
    vars.insert("AGENT_PORT".to_string(), port.to_string());
    let opts = RunOptions {
        paths: vec![support::root().join("harness/tests/data/mock-agent")],
        vars,
        ..RunOptions::default()
    };
    let runner = std::thread::spawn(move || support::run_opts(&opts));
    // Wait until the scenario listens — without connecting, which the accept step
    // would take as the first (empty) request.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !listening(port) {
        assert!(
            std::time::Instant::now() < deadline,
            "the scenario never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let p = port.to_string();
    let key = |k: &str| {
        let o = run_client(&get, &["-s", "127.0.0.1", "-p", &p, "-k", k]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let ping = key("agent.ping");
    let host = key("agent.hostname");
    let unknown = key("no.such.key");
    let r = runner.join().expect("runner thread");
    assert_eq!(ping, "1");
    assert_eq!(host, "zbx-conform-table");
    assert!(unknown.contains("ZBX_NOTSUPPORTED"), "{unknown}");
    assert_eq!(
        r.scenarios[0].outcome,
        Outcome::Passed,
        "{}",
        support::describe(&r)
    );
}

/// Whether something listens on 127.0.0.1:`port` (from /proc/net/tcp, state 0A).
fn listening(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .map(|t| {
            t.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1] == want && f[3] == "0A"
            })
        })
        .unwrap_or(false)
}

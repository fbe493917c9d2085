//! Interoperability with the real Zabbix 7.0.22 agent-side programs of Debian 13, run in
//! the trixie root (ci/trixie/build-root.sh) through ci/trixie/peer.sh:
//!
//! - scenarios/agent/passive and scenarios/agent/active against zabbix_agentd and
//!   zabbix_agent2 7.0, started per scenario from the profiles in ci/trixie/;
//! - 7.0's zabbix_get (JSON passive checks first, plain key as fallback) against the
//!   reference passive agent at 7.0 and at 6.0;
//! - zabbix_agent2 7.0 loading the harness's mock plugin (`zbx-conform mock-plugin
//!   --version 7.0 --scenario scenarios/plugin/mock-basic.yaml`), queried with 7.0's
//!   zabbix_get (and bookworm's when installed); every message the agent sent must be
//!   valid against the 7.0 plugin schemas.
//!
//! Skipped with a printed reason when the root is not built or we are not root, except
//! under CI=true, where that is a failure (support::require_trixie_root).

mod support;

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zbx_conform::reference::{self, ReferenceConfig};
use zbx_conform::transport::spawn::{PeerProcess, Readiness, SpawnSpec};

const EXE: &str = env!("CARGO_BIN_EXE_zbx-conform");

/// ci/trixie/peer.sh.
fn peer_sh() -> PathBuf {
    support::root().join("ci/trixie/peer.sh")
}

/// Run `paths` at `versions` against a real peer started from `profile` (one fresh peer
/// per scenario), require that every scenario passes, and return how many ran.
fn run_against(profile: &str, paths: &[&str], versions: &[&str], vars: &[(&str, &str)]) -> usize {
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-a70-");
    let r = support::run_with_peer(
        profile,
        Some(support::load_profile(profile)),
        paths,
        versions,
        vars,
        &run_dir,
    );
    support::assert_all_passed(profile, &r, 1);
    r.scenarios.len()
}

/// The agent robustness suite (malformed frames, then a valid `agent.ping`), including
/// the large (0x04) frame only real agents are asked about.
#[rstest::rstest]
#[case("ci/trixie/zabbix-agentd-7.0-passive.yaml")]
#[case("ci/trixie/zabbix-agent2-7.0-passive.yaml")]
fn agents_7_0_survive_malformed_frames(#[case] profile: &str) {
    if !support::require_trixie_root(&format!("robustness against {profile}")) {
        return;
    }
    let n = run_against(profile, &["scenarios/robustness-agent"], &["7.0"], &[]);
    assert_eq!(n, 6);
}

/// Passive files: 3 at 6.0 (plain keys, still answered by 7.0 agents) + 4 at 7.0.
const PASSIVE: (&str, &[&str], usize) = ("scenarios/agent/passive", &["6.0", "7.0"], 7);

/// RefreshActiveChecks=10 for the active suite: checks-itemid's last step waits for the
/// agent's next refresh, which must come well after the first two values (agent2 sends
/// them 2-4 s after its items), so that no refresh arrives while a step waits for values (a refresh closed unanswered makes 7.0 agents drop their
/// revision and stop sending).
const REFRESH: [(&str, &str); 2] = [
    ("AGENTD_REFRESH_ACTIVE_CHECKS", "10"),
    ("AGENT2_REFRESH_ACTIVE_CHECKS", "10"),
];

/// Active files at 7.0: checks-and-data, checks-itemid, heartbeat.
const ACTIVE: (&str, &[&str], usize) = ("scenarios/agent/active", &["7.0"], 3);

/// Both 7.0 agents pass the passive suite (at 6.0 and 7.0) and the active suite.
#[rstest::rstest]
#[case("ci/trixie/zabbix-agentd-7.0-passive.yaml", PASSIVE, &[])]
#[case("ci/trixie/zabbix-agent2-7.0-passive.yaml", PASSIVE, &[])]
#[case("ci/trixie/zabbix-agentd-7.0-active.yaml", ACTIVE, &REFRESH)]
#[case("ci/trixie/zabbix-agent2-7.0-active.yaml", ACTIVE, &REFRESH)]
fn agents_7_0_pass_the_agent_suites(
    #[case] profile: &str,
    #[case] suite: (&str, &[&str], usize),
    #[case] vars: &[(&str, &str)],
) {
    if !support::require_trixie_root(&format!("agent suite against {profile}")) {
        return;
    }
    let (path, versions, runs) = suite;
    let n = run_against(profile, &[path], versions, vars);
    assert_eq!(n, runs, "{profile}");
}

/// Run a program of the root through peer.sh with a throwaway run dir; its output.
fn in_root(args: &[&str]) -> std::process::Output {
    let dir = tempfile::Builder::new()
        .prefix("zbxc-get")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let dir_s = dir.path().display().to_string();
    let mut all = vec!["", dir_s.as_str(), "--"];
    all.extend_from_slice(args);
    std::process::Command::new(peer_sh())
        .args(&all)
        .env("ZBX_TRIXIE_ROOT", support::trixie_root())
        .output()
        .expect("run peer.sh")
}

/// 7.0's zabbix_get `-k key` against 127.0.0.1:`port`: (exit code, stdout trimmed).
fn get70(port: u16, key: &str) -> (Option<i32>, String) {
    let p = port.to_string();
    let o = in_root(&[
        "/usr/bin/zabbix_get",
        "-s",
        "127.0.0.1",
        "-p",
        &p,
        "-t",
        "10",
        "-k",
        key,
    ]);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).trim_end().to_string(),
    )
}

/// The reference passive agent speaks JSON passive checks at 7.0 the way 7.0's
/// zabbix_get expects, and at 6.0 answers the JSON with ZBX_NOTSUPPORTED, which makes
/// zabbix_get fall back to the plain key: the value arrives either way.
#[test]
fn zabbix_get_7_0_reads_the_reference_passive_agent() {
    if !support::require_trixie_root("zabbix_get_7_0_reads_the_reference_passive_agent") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for version in ["7.0", "6.0"] {
        let cfg = ReferenceConfig {
            name: "agent-passive".into(),
            version: version.into(),
            fault: None,
            connect_to: None,
            listen: None,
        };
        let peer = rt
            .block_on(reference::start(&cfg, support::catalog()))
            .expect("reference agent starts");
        let port = peer.listen.expect("listens").port();
        let full = if version == "7.0" { "7.0.0" } else { "6.0.14" };
        assert_eq!(
            get70(port, "agent.ping"),
            (Some(0), "1".into()),
            "{version}"
        );
        assert_eq!(
            get70(port, "agent.version"),
            (Some(0), full.into()),
            "{version}"
        );
        let (_, unknown) = get70(port, "zbx.conform.nope");
        assert!(
            unknown.contains("ZBX_NOTSUPPORTED") && unknown.contains("Unsupported item key."),
            "{version}: {unknown}"
        );
        rt.block_on(peer.stop());
    }
}

/// 7.0's zabbix_sender against the reference server trapper at 7.0: a known host's value
/// is processed (exit 0), an unknown host's counts as failed (exit 2), and the counts in
/// the trapper's info string reach the user.
#[test]
fn zabbix_sender_7_0_talks_to_the_reference_trapper() {
    if !support::require_trixie_root("zabbix_sender_7_0_talks_to_the_reference_trapper") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cfg = ReferenceConfig {
        name: "server-for-agents".into(),
        version: "7.0".into(),
        fault: None,
        connect_to: None,
        listen: None,
    };
    let peer = rt
        .block_on(reference::start(&cfg, support::catalog()))
        .expect("reference trapper starts");
    let port = peer.listen.expect("listens").port().to_string();
    let send = |host: &str| {
        in_root(&[
            "/usr/bin/zabbix_sender",
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
        ])
    };
    let ok = send("agent-01");
    let out = String::from_utf8_lossy(&ok.stdout).to_string();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("processed: 1; failed: 0; total: 1"), "{out}");
    let bad = send("unknown-host");
    let out = String::from_utf8_lossy(&bad.stdout).to_string();
    assert_eq!(bad.status.code(), Some(2), "{out}");
    assert!(out.contains("processed: 0; failed: 1; total: 1"), "{out}");
    rt.block_on(peer.stop());
}

/// The plugin name mock-basic.yaml registers.
const PLUGIN: &str = "Mockscn";

/// Real zabbix_agent2 7.0 (in the trixie root) loads the harness's mock plugin and
/// serves its metrics; every message it sends the plugin is valid for the 7.0 schemas.
/// The binary and its data (schemas, the scenario) are made visible in the root with a
/// read-only bind mount of the workspace (peer.sh --ro-bind).
#[tokio::test]
async fn real_agent2_7_0_serves_the_mock_plugin() {
    if !support::require_trixie_root("real_agent2_7_0_serves_the_mock_plugin") {
        return;
    }
    let root = support::root();
    let dir = tempfile::Builder::new()
        .prefix("zbxc-p70")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let d = dir.path().display().to_string();
    let record = dir.path().join("record.jsonl");
    let wrapper = dir.path().join("mock-plugin.sh");
    let scenario = root.join("scenarios/plugin/mock-basic.yaml");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {EXE} --root {} mock-plugin --version 7.0 --scenario {} --record {} \"$@\"\n",
            root.display(),
            scenario.display(),
            record.display()
        ),
    )
    .expect("write wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let port = zbx_conform::runner::peer::free_port().expect("a free port");
    // Sockets in the root's private /tmp: short paths, never shared.
    let conf = format!(
        "LogType=file\nLogFile={d}/agent2.log\nDebugLevel=3\nPidFile={d}/agent2.pid\n\
         Server=127.0.0.1\nServerActive=\nListenIP=127.0.0.1\nListenPort={port}\n\
         Hostname=zbxc-mock-70\nControlSocket=/tmp/agent2.ctl\n\
         PluginSocket=/tmp/agent.plugin.sock\nPluginTimeout=10\nTimeout=10\n\
         Plugins.{PLUGIN}.System.Path={}\nPlugins.{PLUGIN}.Greeting=hi\n",
        wrapper.display()
    );
    let conf_path = dir.path().join("agent2.conf");
    std::fs::write(&conf_path, conf).expect("write config");
    let mut args = vec![
        String::new(),
        d.clone(),
        "--ro-bind".into(),
        root.display().to_string(),
    ];
    // The test binary's target dir may lie outside the workspace (CARGO_TARGET_DIR).
    let exe_dir = Path::new(EXE).parent().expect("exe dir").to_path_buf();
    if !exe_dir.starts_with(&root) {
        args.extend(["--ro-bind".into(), exe_dir.display().to_string()]);
    }
    args.extend(
        ["--", "/usr/sbin/zabbix_agent2", "-f", "-c"]
            .iter()
            .map(|s| s.to_string()),
    );
    args.push(conf_path.display().to_string());
    let started = Instant::now();
    let peer = PeerProcess::start(SpawnSpec {
        program: peer_sh(),
        args,
        env: vec![(
            "ZBX_TRIXIE_ROOT".into(),
            support::trixie_root().display().to_string(),
        )],
        run_dir: dir.path().to_path_buf(),
        ready: Readiness::Port(format!("127.0.0.1:{port}")),
        ready_within: Duration::from_secs(20),
        log: Some(dir.path().join("agent2.log")),
        stop_grace: Duration::from_secs(10),
        scratch: vec![],
    })
    .await
    .unwrap_or_else(|e| panic!("agent2 7.0 did not start: {e}"));
    let start_time = started.elapsed();

    // 7.0's zabbix_get sends JSON passive checks with its -t timeout (10).
    let queries = [
        ("mockscn.text", "hello from the scenario"),
        // 7.0 agent2 formats a JSON number from a plugin with six decimals, like 6.0.
        ("mockscn.number", "42.500000"),
        (
            "mockscn.fail",
            "ZBX_NOTSUPPORTED: The scenario says this metric fails.",
        ),
        ("mockscn.pick[alpha]", "first"),
        ("mockscn.pick[beta,2]", "2.000000"),
        ("mockscn.pick", "no parameters"),
        ("mockscn.pick[gamma]", "ZBX_NOTSUPPORTED: Unknown choice."),
    ];
    let mut got = Vec::new();
    for (key, _) in queries {
        let t = Instant::now();
        let g = tokio::task::spawn_blocking(move || get70(port, key))
            .await
            .expect("zabbix_get task");
        got.push((g, t.elapsed()));
    }
    // Bookworm's zabbix_get 6.0.14 (plain key), when installed: no SKIP for its absence,
    // the 7.0 client above already covers the test's point.
    let plain = Path::new("/usr/bin/zabbix_get")
        .is_file()
        .then(|| {
            std::process::Command::new("/usr/bin/zabbix_get")
                .args([
                    "-s",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-k",
                    "mockscn.text",
                ])
                .output()
                .expect("run zabbix_get 6.0")
        })
        .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_string());
    let log = peer.log().unwrap_or_default();
    let status = support::stop_agent2(peer, &record).await;
    eprintln!("agent2 7.0 with the mock plugin started in {start_time:?}; stopped: {status}");
    assert_eq!(status, "exit status: 0", "agent2 log:\n{log}");
    for ((key, want), ((code, text), _)) in queries.iter().zip(&got) {
        // 7.0's zabbix_get exits 1 for ZBX_NOTSUPPORTED (6.0.14's exits 0).
        let want_code = if want.starts_with("ZBX_NOTSUPPORTED") {
            1
        } else {
            0
        };
        assert_eq!(
            (code, text.as_str()),
            (&Some(want_code), *want),
            "{key}; agent2 log:\n{log}"
        );
    }
    assert!(
        got[4].1 >= Duration::from_millis(300),
        "the 300ms delay: {:?}",
        got[4].1
    );
    if let Some(p) = plain {
        assert_eq!(p, "hello from the scenario", "zabbix_get 6.0.14");
    }
    assert!(log.contains(&format!("using plugin '{PLUGIN}'")), "{log}");
    assert!(
        log.contains("Plugin communication protocol version is 6.4.0"),
        "{log}"
    );

    // Every message the agent sent, checked again against the 7.0 plugin schemas.
    let rec =
        support::recorded_agent_messages(&record, support::pv("7.0"), "plugin-7.0-agent2-7.0.22");
    let (text, seen) = (&rec.text, &rec.seen);
    assert_eq!(
        rec.kinds(true),
        ["register.request", "validate.request", "terminate.request"],
        "{text}"
    );
    assert_eq!(seen[0].2["version"], "6.4.0", "{text}");
    let op = rec.kinds(false);
    assert_eq!(op.first(), Some(&"configure.request"), "{text}");
    assert_eq!(op.last(), Some(&"terminate.request"), "{text}");
    let exports: Vec<&Value> = seen
        .iter()
        .filter(|(i, k, _)| !*i && k == "export.request")
        .map(|(_, _, m)| m)
        .collect();
    let from_get70: Vec<(String, Value, Value)> = exports
        .iter()
        .take(queries.len())
        .map(|m| {
            (
                m["key"].as_str().unwrap_or("").to_string(),
                m["parameters"].clone(),
                m["timeout"].clone(),
            )
        })
        .collect();
    let ten = json!(10);
    let expected: Vec<(String, Value, Value)> = vec![
        ("mockscn.text".into(), Value::Null, ten.clone()),
        ("mockscn.number".into(), Value::Null, ten.clone()),
        ("mockscn.fail".into(), Value::Null, ten.clone()),
        ("mockscn.pick".into(), json!(["alpha"]), ten.clone()),
        ("mockscn.pick".into(), json!(["beta", "2"]), ten.clone()),
        ("mockscn.pick".into(), Value::Null, ten.clone()),
        ("mockscn.pick".into(), json!(["gamma"]), ten),
    ];
    assert_eq!(from_get70, expected, "{text}");
    drop(dir);
}

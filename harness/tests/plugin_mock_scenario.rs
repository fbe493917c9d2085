//! `zbx-conform mock-plugin --scenario FILE`: the mock plugin's name, metrics and Export
//! replies come from scenarios/plugin/mock-basic.yaml.
//!
//! - Under the real Zabbix Agent 2 6.0.14 (Debian 12): agent2 launches the mock through a
//!   one-line wrapper, `zabbix_get` queries it, and the values, errors and parameters the
//!   scenario defines come back; every message the agent sent is schema-valid. Skipped
//!   with a printed reason when zabbix_agent2 or zabbix_get is missing, unless CI=true,
//!   where that is a failure. agent2 listens on 127.0.0.1 on a port picked here, with
//!   config, sockets, pid and log in its own temp dir, and is stopped by PID.
//! - Without an agent: the binary is driven over a Unix socket the test listens on, so
//!   the scenario replies (and the delay) are checked everywhere.

mod plugin_support;
use plugin_support::pv;

mod support;

use plugin_support::root;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::net::UnixListener;
use zbx_conform::frame::{encode_plugin_frame, PluginCodec};
use zbx_conform::transport::spawn::{PeerProcess, Readiness, SpawnSpec};
use zbx_conform::transport::Connection;

const EXE: &str = env!("CARGO_BIN_EXE_zbx-conform");

/// The plugin name mock-basic.yaml registers.
const NAME: &str = "Mockscn";

fn scenario() -> PathBuf {
    root().join("scenarios/plugin/mock-basic.yaml")
}

/// `Some(path)` when the tool is installed; otherwise says why the test is skipped
/// (and panics under CI=true).
fn tool(env: &str, default: &str, _package: &str) -> Option<PathBuf> {
    support::require_binary(env, default)
}

/// A free port in agent2's accepted ListenPort range (1024-32767), as the runner picks
/// them for peer profiles.
fn free_port() -> u16 {
    zbx_conform::runner::peer::free_port().expect("a free port in 20000-32767")
}

/// agent2 6.0.14 sometimes panics during start-up when the registration-run plugin
/// exits after Terminate (its SIGCHLD handler races with the exit). That exact panic is
/// the agent's defect and such a start is retried; any other failure fails the test.
const AGENT2_SIGCHLD_RACE: &str = "failed to obtain PID of dead child process";
const START_ATTEMPTS: u32 = 6;

/// Start agent2 with the given `Plugins.*` lines; returns the process and its port.
async fn start_agent2(bin: &Path, dir: &Path, record: &Path, plugins: &str) -> (PeerProcess, u16) {
    let mut last = String::new();
    for attempt in 1..=START_ATTEMPTS {
        // What the mock recorded during a failed attempt must not count.
        let _ = std::fs::remove_file(record);
        let _ = std::fs::remove_file(dir.join("agent2.log"));
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "LogType=file\nLogFile={d}/agent2.log\nDebugLevel=3\nPidFile={d}/agent2.pid\n\
             Server=127.0.0.1\nServerActive=\nListenIP=127.0.0.1\nListenPort={port}\n\
             Hostname=zbxc-mock-scenario\nControlSocket={d}/agent2.ctl\n\
             PluginSocket={d}/agent.plugin.sock\nPluginTimeout=10\nTimeout=10\n{plugins}"
        );
        let conf_path = dir.join("agent2.conf");
        std::fs::write(&conf_path, conf).expect("write config");
        let spec = SpawnSpec {
            program: bin.to_path_buf(),
            args: vec!["-c".into(), conf_path.display().to_string(), "-f".into()],
            env: vec![],
            run_dir: dir.to_path_buf(),
            ready: Readiness::Port(format!("127.0.0.1:{port}")),
            ready_within: Duration::from_secs(20),
            log: Some(dir.join("agent2.log")),
            stop_grace: Duration::from_secs(10),
            scratch: vec![],
        };
        match PeerProcess::start(spec).await {
            Ok(peer) => return (peer, port),
            Err(e) => {
                last = e.to_string();
                assert!(
                    last.contains(AGENT2_SIGCHLD_RACE),
                    "agent2 did not start: {last}"
                );
                eprintln!("note: agent2 start {attempt} hit its SIGCHLD race; retrying");
            }
        }
    }
    panic!("agent2 did not start in {START_ATTEMPTS} attempts: {last}");
}

/// `zabbix_get -s 127.0.0.1 -p PORT -k KEY`: its output line, and how long it took.
async fn zabbix_get(bin: &Path, port: u16, key: &str) -> (String, Duration) {
    let started = Instant::now();
    let out = tokio::process::Command::new(bin)
        .args([
            "-s",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "10",
            "-k",
            key,
        ])
        .output()
        .await
        .expect("run zabbix_get");
    let text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
    assert!(
        out.status.success(),
        "zabbix_get -k {key} failed ({}): {text} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (text, started.elapsed())
}

#[tokio::test]
async fn real_agent2_serves_the_scenario_metrics_of_the_mock_plugin() {
    let Some(agent) = tool(
        "ZBXC_AGENT2",
        "/usr/sbin/zabbix_agent2",
        "zabbix-agent2; bash ci/install-peers.sh",
    ) else {
        return;
    };
    let Some(get) = tool(
        "ZBXC_ZABBIX_GET",
        "/usr/bin/zabbix_get",
        "zabbix-proxy-sqlite3 (Debian 12 ships zabbix_get there); bash ci/install-peers.sh",
    ) else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("zbxc-mscn")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let record = dir.path().join("record.jsonl");
    let wrapper = dir.path().join("mock-plugin.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {EXE} --root {} mock-plugin --scenario {} --record {} \"$@\"\n",
            root().display(),
            scenario().display(),
            record.display()
        ),
    )
    .expect("write wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let plugins = format!(
        "Plugins.{NAME}.System.Path={}\nPlugins.{NAME}.Greeting=hi\n",
        wrapper.display()
    );
    let started = Instant::now();
    let (peer, port) = start_agent2(&agent, dir.path(), &record, &plugins).await;
    let start_time = started.elapsed();

    let queries = [
        "mockscn.text",
        "mockscn.number",
        "mockscn.fail",
        "mockscn.pick[alpha]",
        "mockscn.pick[beta,2]",
        "mockscn.pick",
        "mockscn.pick[gamma]",
    ];
    let mut got = Vec::new();
    for key in queries {
        got.push(zabbix_get(&get, port, key).await);
    }
    let log = peer.log().unwrap_or_default();
    let status = support::stop_agent2(peer, &record).await;
    eprintln!("agent2 started in {start_time:?}; stopped: {status}");
    assert_eq!(status, "exit status: 0", "agent2 log:\n{log}");
    let value = |i: usize| got[i].0.as_str();
    assert_eq!(value(0), "hello from the scenario", "agent2 log:\n{log}");
    // agent2 6.0.14 formats a JSON number from a plugin as a float with six decimals.
    assert_eq!(value(1), "42.500000");
    assert_eq!(
        value(2),
        "ZBX_NOTSUPPORTED: The scenario says this metric fails."
    );
    assert_eq!(value(3), "first");
    assert_eq!(value(4), "2.000000", "a whole number too");
    assert!(
        got[4].1 >= Duration::from_millis(300),
        "the 300ms delay was applied: {:?}",
        got[4].1
    );
    assert_eq!(value(5), "no parameters");
    assert_eq!(value(6), "ZBX_NOTSUPPORTED: Unknown choice.");
    assert!(log.contains(&format!("using plugin '{NAME}'")), "{log}");

    // What the agent sent, checked again here (not only by the mock's own recorder).
    let rec = support::recorded_agent_messages(&record, pv("6.0"), "plugin-6.0-agent2-6.0.14");
    let (text, seen) = (&rec.text, &rec.seen);
    assert_eq!(
        rec.kinds(true),
        ["register.request", "validate.request", "terminate.request"],
        "{text}"
    );
    let register = &seen[0].2;
    assert_eq!(register["version"], "6.0.13", "{register}");
    let validate = &seen[1].2;
    assert!(
        validate["private_options"].to_string().contains("Greeting"),
        "{validate}"
    );
    let op = rec.kinds(false);
    assert_eq!(op.first(), Some(&"configure.request"), "{text}");
    assert_eq!(op.last(), Some(&"terminate.request"), "{text}");
    let exports: Vec<(String, Value)> = seen
        .iter()
        .filter(|(i, k, _)| !*i && k == "export.request")
        .map(|(_, _, m)| {
            (
                m["key"].as_str().unwrap_or("").to_string(),
                m["parameters"].clone(),
            )
        })
        .collect();
    let expected: Vec<(String, Value)> = vec![
        ("mockscn.text".into(), Value::Null),
        ("mockscn.number".into(), Value::Null),
        ("mockscn.fail".into(), Value::Null),
        ("mockscn.pick".into(), json!(["alpha"])),
        ("mockscn.pick".into(), json!(["beta", "2"])),
        ("mockscn.pick".into(), Value::Null),
        ("mockscn.pick".into(), json!(["gamma"])),
    ];
    assert_eq!(exports, expected, "{text}");
    drop(dir);
}

/// Send one plugin frame.
async fn send(conn: &mut Connection<tokio::net::UnixStream, PluginCodec>, v: &Value) {
    let bytes = serde_json::to_vec(v).expect("json");
    conn.write_all(&encode_plugin_frame(&bytes), Duration::from_secs(3))
        .await
        .expect("send");
}

/// The next message that is not a log request.
async fn reply(conn: &mut Connection<tokio::net::UnixStream, PluginCodec>) -> Value {
    loop {
        let f = conn
            .read_frame(Duration::from_secs(5))
            .await
            .expect("read")
            .expect("a frame");
        let v: Value = serde_json::from_slice(&f.payload).expect("json");
        if v["type"] != 1 {
            return v;
        }
    }
}

/// The binary with `--scenario`, driven over a socket this test listens on (no agent).
#[tokio::test]
async fn mock_plugin_answers_exports_from_the_scenario_file() {
    let dir = tempfile::Builder::new()
        .prefix("zbxc-mscn")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let socket = dir.path().join("agent.plugin.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    let record = dir.path().join("record.jsonl");
    let mut child = tokio::process::Command::new(EXE)
        .arg("--root")
        .arg(root())
        .arg("mock-plugin")
        .arg("--scenario")
        .arg(scenario())
        .arg("--record")
        .arg(&record)
        .arg(&socket)
        .arg("false")
        .kill_on_drop(true)
        .spawn()
        .expect("spawn mock-plugin");
    let (stream, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .expect("the mock dials in time")
        .expect("accept");
    let mut conn = Connection::new(stream, PluginCodec::default(), "mock");

    send(&mut conn, &json!({"id": 1, "type": 2, "version": "6.0.13"})).await;
    let r = reply(&mut conn).await;
    assert_eq!(r["name"], NAME, "{r}");
    assert_eq!(r["interfaces"], 3, "{r}");
    assert_eq!(r["metrics"][0], "mockscn.text", "{r}");
    assert_eq!(r["metrics"][1], "Returns a fixed text.", "{r}");
    assert_eq!(r["metrics"].as_array().map(Vec::len), Some(8), "{r}");

    let cases = [
        (
            json!({"key": "mockscn.text"}),
            json!({"value": "hello from the scenario"}),
        ),
        (json!({"key": "mockscn.number"}), json!({"value": 42.5})),
        (
            json!({"key": "mockscn.fail"}),
            json!({"error": "The scenario says this metric fails."}),
        ),
        (
            json!({"key": "mockscn.pick", "parameters": ["alpha"]}),
            json!({"value": "first"}),
        ),
        (
            json!({"key": "mockscn.pick", "parameters": ["beta", "2"]}),
            json!({"value": 2}),
        ),
        (
            json!({"key": "mockscn.pick", "parameters": []}),
            json!({"value": "no parameters"}),
        ),
        (
            json!({"key": "mockscn.pick"}),
            json!({"value": "no parameters"}),
        ),
        (
            json!({"key": "mockscn.pick", "parameters": ["alpha", "x"]}),
            json!({"error": "Unknown choice."}),
        ),
    ];
    for (n, (request, want)) in cases.iter().enumerate() {
        let id = 10 + n as u64;
        let mut msg = json!({"id": id, "type": 6});
        for (k, v) in request.as_object().expect("object") {
            msg[k] = v.clone();
        }
        let started = Instant::now();
        send(&mut conn, &msg).await;
        let r = reply(&mut conn).await;
        let mut expected = json!({"id": id, "type": 7});
        for (k, v) in want.as_object().expect("object") {
            expected[k] = v.clone();
        }
        assert_eq!(r, expected, "for {msg}");
        if request["parameters"] == json!(["beta", "2"]) {
            assert!(started.elapsed() >= Duration::from_millis(300), "delayed");
        }
    }
    send(&mut conn, &json!({"id": 0, "type": 5})).await;
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("the mock exits after Terminate")
        .expect("wait");
    assert_eq!(
        status.code(),
        Some(0),
        "valid messages and Terminate: exit 0"
    );
    let lines = std::fs::read_to_string(&record).expect("record");
    assert_eq!(lines.lines().count(), 2 + cases.len(), "{lines}");
}

/// A mistake in the scenario file stops the mock before it dials, naming file:line.
#[test]
fn a_broken_scenario_file_is_reported_with_its_line() {
    let dir = tempfile::Builder::new()
        .prefix("zbxc-mscn")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let text = std::fs::read_to_string(scenario()).expect("read scenario");
    let broken = text.replacen(
        "          value: first\n",
        "          value: first\n          error: both\n",
        1,
    );
    assert_ne!(
        broken, text,
        "the example still has the line this test breaks"
    );
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, &broken).expect("write");
    let line = broken
        .lines()
        .position(|l| l.contains("params: [alpha]"))
        .expect("line")
        + 1;
    let out = std::process::Command::new(EXE)
        .arg("--root")
        .arg(root())
        .arg("mock-plugin")
        .arg("--scenario")
        .arg(&file)
        .arg(dir.path().join("no.sock"))
        .arg("true")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}:{line}:", file.display())) && err.contains("not both"),
        "{err}"
    );
}

/// Every file in scenarios/plugin/ is a loadable mock-plugin scenario, and no `run`
/// scenario looks like one (folder discovery for `run`/`lint` tells them apart with
/// `is_mock_plugin_file`).
#[test]
fn mock_plugin_files_and_run_scenarios_are_told_apart() {
    let plugin_dir = root().join("scenarios/plugin");
    // Walked here, not with `discover`, which may itself skip the mock-plugin files.
    let mut all = Vec::new();
    let mut stack = vec![root().join("scenarios")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("scenario dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                all.push(p);
            }
        }
    }
    let mut mocks = 0;
    for f in &all {
        let is_mock = zbx_conform::plugin::is_mock_plugin_file(f);
        assert_eq!(is_mock, f.starts_with(&plugin_dir), "{}", f.display());
        if is_mock {
            mocks += 1;
            if let Err(e) = zbx_conform::plugin::MockScenario::load(f) {
                panic!("{e}");
            }
        }
    }
    assert!(
        mocks >= 1,
        "no mock-plugin scenario found in {}",
        plugin_dir.display()
    );
    assert!(all.len() > mocks, "run scenarios were found too");
}

//! Scenarios over TLS, the harness against itself over real loopback sockets: one run
//! plays the accepting side (a PSK-only trapper or passive agent, from scenarios/tls/),
//! the other connects (the passive agent suite's agent.ping with `--tls-connect psk`,
//! or a test client); certificates too. Each refusal fails the `tls` check with a
//! reason, and no report shows the key.

mod support;
mod tls_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::{describe, root, run_opts};
use tls_support::*;
use zbx_conform::frame::{encode_frame, FrameOptions, ZbxdCodec};
use zbx_conform::runner::{CheckKind, Outcome, RunOptions, RunResult};
use zbx_conform::transport::tls::{self, TlsConfig, TlsSettings};
use zbx_conform::transport::{connect_tcp, Connection};

const WAIT: Duration = Duration::from_secs(5);

fn psk_settings(pki: &Pki, key: &str) -> TlsSettings {
    TlsSettings {
        psk_identity: Some(IDENTITY.into()),
        psk_file: Some(pki.file(key)),
        ..Default::default()
    }
}

fn free_port() -> u16 {
    zbx_conform::runner::peer::free_port().expect("a free port")
}

/// Wait until something listens on `port` (binding it fails), without connecting: a
/// probe connection would be taken by the accept step.
fn wait_bound(port: u16) {
    let start = Instant::now();
    while std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
        assert!(start.elapsed() < WAIT, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run `scenario` (relative to the root) at 6.0 in a thread, listening on `port`.
fn accepting(scenario: &str, port: u16, tls: TlsSettings) -> std::thread::JoinHandle<RunResult> {
    let opts = RunOptions {
        paths: vec![root().join(scenario)],
        listen: Some(format!("127.0.0.1:{port}")),
        versions: vec!["6.0".into()],
        timeout: WAIT,
        tls,
        ..RunOptions::default()
    };
    let handle = std::thread::spawn(move || run_opts(&opts));
    wait_bound(port);
    handle
}

/// A test client: connect to `port` with `cfg`, send `payload`, return the reply's
/// payload (or the error, as text).
fn client(port: u16, cfg: &TlsConfig, payload: &[u8]) -> Result<Vec<u8>, String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let addr = format!("127.0.0.1:{port}");
        let tcp = connect_tcp(&addr, WAIT).await.map_err(|e| e.to_string())?;
        let s = tls::connect(tcp, cfg, &addr, WAIT)
            .await
            .map_err(|e| e.to_string())?;
        let mut conn = Connection::new(s.stream, ZbxdCodec::default(), addr);
        let frame = encode_frame(payload, &FrameOptions::default());
        conn.write_all(&frame, WAIT)
            .await
            .map_err(|e| e.to_string())?;
        match conn.read_frame(WAIT).await.map_err(|e| e.to_string())? {
            Some(f) => Ok(f.payload.to_vec()),
            None => Err("closed".into()),
        }
    })
}

fn client_cfg(pki: &Pki, key: &str) -> TlsConfig {
    let mut s = psk_settings(pki, key);
    s.connect = Some("psk".into());
    TlsConfig::load(&s, None).unwrap()
}

const SENDER_DATA: &[u8] =
    br#"{"request":"sender data","data":[{"host":"h","key":"k","value":"v"}]}"#;

/// Everything a reporter would show of `r`: the JSON report, and the descriptions.
fn report_text(r: &RunResult) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    zbx_conform::report::json::write(r, &path).unwrap();
    format!(
        "{}\n{}",
        std::fs::read_to_string(path).unwrap(),
        describe(r)
    )
}

fn assert_no_key(r: &RunResult) {
    let text = report_text(r);
    for k in [PSK, WRONG_PSK] {
        assert!(
            !text.contains(&k[..16]),
            "a key shows in the report:\n{text}"
        );
    }
}

fn only(r: &RunResult) -> &zbx_conform::runner::ScenarioResult {
    assert_eq!(r.scenarios.len(), 1, "{}", describe(r));
    &r.scenarios[0]
}

#[test]
fn the_trapper_takes_sender_data_over_psk_and_reports_the_connection() {
    let pki = Pki::psk_only();
    let port = free_port();
    let run = accepting(
        "scenarios/tls/trapper-psk.yaml",
        port,
        psk_settings(&pki, "good.psk"),
    );
    let reply = client(port, &client_cfg(&pki, "good.psk"), SENDER_DATA).expect("a reply");
    assert!(String::from_utf8_lossy(&reply).contains("\"success\""));
    let r = run.join().unwrap();
    let s = only(&r);
    assert_eq!(s.outcome, Outcome::Passed, "{}", describe(&r));
    assert_eq!(
        s.properties.get("tls.psk-identity").map(String::as_str),
        Some(IDENTITY)
    );
    assert_eq!(
        s.properties.get("tls.version").map(String::as_str),
        Some("TLSv1.3")
    );
    assert!(
        s.properties.contains_key("tls.cipher"),
        "{:?}",
        s.properties
    );
    assert!(
        s.properties.contains_key("tls.step-1"),
        "{:?}",
        s.properties
    );
    // The HTML report shows the same facts with the test.
    let html = zbx_conform::report::html::render(&r, &[]);
    for (k, v) in [("tls.version", "TLSv1.3"), ("tls.psk-identity", IDENTITY)] {
        assert!(
            html.contains(&format!("<dt>{k}</dt><dd>{v}</dd>")),
            "{k} is not in the HTML report"
        );
    }
    assert!(
        html.contains("<dt>tls.cipher</dt>"),
        "no cipher in the HTML report"
    );
    assert_no_key(&r);
}

#[test]
fn the_trapper_refuses_a_wrong_key_and_plaintext_with_a_tls_failure() {
    let pki = Pki::psk_only();
    for wrong in ["wrong key", "plaintext"] {
        let port = free_port();
        let run = accepting(
            "scenarios/tls/trapper-psk.yaml",
            port,
            psk_settings(&pki, "good.psk"),
        );
        let cfg = match wrong {
            "plaintext" => TlsConfig::plaintext(),
            _ => client_cfg(&pki, "wrong.psk"),
        };
        assert!(
            client(port, &cfg, SENDER_DATA).is_err(),
            "{wrong}: answered"
        );
        let r = run.join().unwrap();
        let s = only(&r);
        assert_eq!(s.outcome, Outcome::Failed, "{wrong}: {}", describe(&r));
        let (_, f) = s.failures().next().expect("a failure");
        assert_eq!(f.check, CheckKind::Tls, "{wrong}: {}", describe(&r));
        match wrong {
            "plaintext" => assert!(
                f.detail.contains("connection of type \"unencrypted\""),
                "{}",
                f.detail
            ),
            _ => assert!(
                f.detail.starts_with("TLS handshake with 127.0.0.1:"),
                "{}",
                f.detail
            ),
        }
        assert_no_key(&r);
    }
}

/// The passive agent suite's agent.ping run encrypted (`--tls-connect psk`) against the
/// harness playing a PSK-only passive agent: both runs pass, and the connecting run
/// records the PSK identity.
#[test]
fn the_passive_suite_talks_psk_to_the_harness_as_a_passive_agent() {
    let pki = Pki::psk_only();
    let port = free_port();
    let agent = accepting(
        "scenarios/tls/passive-agent-psk.yaml",
        port,
        psk_settings(&pki, "good.psk"),
    );
    let mut tls = psk_settings(&pki, "good.psk");
    tls.connect = Some("psk".into());
    let server = run_opts(&RunOptions {
        paths: vec![root().join("scenarios/agent/passive/ping.yaml")],
        vars: [("AGENT_ADDR".to_string(), format!("127.0.0.1:{port}"))].into(),
        versions: vec!["6.0".into()],
        timeout: WAIT,
        tls,
        ..RunOptions::default()
    });
    let agent = agent.join().unwrap();
    assert_eq!(
        only(&server).outcome,
        Outcome::Passed,
        "{}",
        describe(&server)
    );
    assert_eq!(
        only(&agent).outcome,
        Outcome::Passed,
        "{}",
        describe(&agent)
    );
    assert_eq!(
        only(&server)
            .properties
            .get("tls.psk-identity")
            .map(String::as_str),
        Some(IDENTITY)
    );
    assert_no_key(&server);
}

/// A scenario of its own with certificates named through variables, relative to the
/// scenario's folder: the harness accepts `cert` and checks the client's subject.
fn cert_scenario(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("cert.yaml");
    std::fs::write(
        &path,
        r#"
name: agent.ping with certificates
family: agent
versions: ["6.0"]
plays: agent
peer: { address: "${TLS_CLIENT:-}" }
tls:
  accept: [cert]
  ca_file: ca.crt
  cert_file: server.crt
  key_file: ${KEY_NAME}
  server_cert_subject: "CN=zbxc client,O=zbx-conform"
steps:
  - accept:
      expect: { kind: passive.check.request, text: agent.ping }
      reply: { text: "1", kind: passive.check.value }
"#,
    )
    .unwrap();
    path
}

#[test]
fn certificates_from_the_known_ca_pass_and_an_unknown_ca_fails_the_tls_check() {
    let Some(pki) = Pki::with_certs() else { return };
    let scenario = cert_scenario(pki.dir.path());
    for (who, passes) in [("client", true), ("rogue", false)] {
        let port = free_port();
        let opts = RunOptions {
            paths: vec![scenario.clone()],
            listen: Some(format!("127.0.0.1:{port}")),
            vars: [("KEY_NAME".to_string(), "server.key".to_string())].into(),
            timeout: WAIT,
            ..RunOptions::default()
        };
        let run = std::thread::spawn(move || run_opts(&opts));
        wait_bound(port);
        let cfg = TlsConfig::load(
            &TlsSettings {
                connect: Some("cert".into()),
                ca_file: Some(pki.file("ca.crt")),
                cert_file: Some(pki.file(&format!("{who}.crt"))),
                key_file: Some(pki.file(&format!("{who}.key"))),
                server_cert_subject: Some(SERVER_SUBJECT.into()),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        let reply = client(port, &cfg, b"agent.ping");
        let r = run.join().unwrap();
        let s = only(&r);
        if passes {
            assert_eq!(reply.as_deref(), Ok(&b"1"[..]));
            assert_eq!(s.outcome, Outcome::Passed, "{}", describe(&r));
            assert_eq!(
                s.properties.get("tls.peer-subject").map(String::as_str),
                Some(CLIENT_SUBJECT)
            );
        } else {
            assert!(reply.is_err(), "the rogue got {reply:?}");
            let (_, f) = s.failures().next().expect("a failure");
            assert_eq!(f.check, CheckKind::Tls, "{}", describe(&r));
            assert!(
                f.detail.contains("certificate verify failed"),
                "{}",
                f.detail
            );
        }
    }
}

#[test]
fn a_bad_tls_value_in_a_scenario_is_a_lint_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let head = "name: bad tls\nfamily: agent\nversions: [\"6.0\"]\nplays: server\n";
    let cases = [
        ("mode.yaml", "tls:\n  connect: tls\nsteps:\n  - sleep: 1ms\n", "mode.yaml:6:", "invalid `tls.connect`: \"tls\" is not one of unencrypted, psk, cert"),
        ("identity.yaml", "tls:\n  psk_identity: \"\"\nsteps:\n  - sleep: 1ms\n", "identity.yaml:6:", "psk_identity is empty"),
        ("long.yaml", &format!("tls:\n  psk_identity: {}\nsteps:\n  - sleep: 1ms\n", "i".repeat(129)), "long.yaml:6:", "129 characters"),
        ("accept.yaml", "steps:\n  - exchange: { connect: \"h:1\", send: { text: x } }\n    tls: { accept: [psk, ssl] }\n", "accept.yaml:7:", "\"ssl\" is not one of"),
        ("sleep.yaml", "steps:\n  - sleep: 1ms\n    tls: { connect: psk }\n", "sleep.yaml:6:", "`tls` applies to `exchange` and `accept` steps only"),
    ];
    for (file, body, at, want) in cases {
        std::fs::write(dir.path().join(file), format!("{head}{body}")).unwrap();
        let out = support::zbx(["lint".as_ref(), dir.path().join(file).as_os_str()]);
        let text = support::output_text(&out);
        assert_eq!(out.status.code(), Some(2), "{file}: {text}");
        assert!(text.contains(at) && text.contains(want), "{file}: {text}");
    }
}

/// A default run (no `--tls-*`, no peer) runs the TLS suites against the built-in
/// reference peers, which take the scenarios' side of the encryption: agent-passive and
/// server-for-agents accept PSK only (plaintext closed, a wrong key or identity refused
/// in the handshake), agent-active connects with PSK to the harness's PSK-only trapper.
/// Only the scenarios a real client must drive are skipped.
#[test]
fn the_tls_suites_run_against_the_reference_peers_by_default() {
    let r = support::run(
        &[
            "scenarios/tls",
            "scenarios/tls-agent",
            "scenarios/tls-proxy",
        ],
        None,
        WAIT,
    );
    let mut passed = 0;
    for s in &r.scenarios {
        let file = s.file.display().to_string();
        let real_client =
            file.ends_with("passive-agent-psk.yaml") || file.ends_with("trapper-psk.yaml");
        if real_client {
            assert!(
                matches!(s.outcome, Outcome::Skipped(_)),
                "{file}: {:?}",
                s.outcome
            );
            continue;
        }
        assert_eq!(s.outcome, Outcome::Passed, "{}", describe(&r));
        passed += 1;
        let encrypted =
            !file.ends_with("plaintext-refused.yaml") && !file.ends_with("-refused.yaml");
        if encrypted {
            assert_eq!(
                s.properties.get("tls.psk-identity").map(String::as_str),
                Some("zbx-conform"),
                "{file}: {:?}",
                s.properties
            );
        }
    }
    // 4 agent and 3 proxy refusal scenarios and the sender one at six versions, the
    // active agent at 6.0.
    assert!(passed >= 43, "only {passed} passed:\n{}", describe(&r));
}

/// The passive proxy scenarios that also send values or register an agent run over PSK
/// against the built-in passive proxy: the configuration they push names the run's
/// identity and key for the host (`${tls_psk_identity}`, `${tls_psk}`), and the
/// registration reports the connection type the harness used (`tls_accepted` 2, which a
/// proxy that always reported 1 would fail). With certificates the registration steps
/// are skipped (`when: { tls: [unencrypted, psk] }`: Zabbix does not auto-register over
/// certificates) and the rest passes.
#[test]
fn the_passive_proxy_suite_pushes_the_runs_psk_for_its_hosts() {
    let pki = Pki::with_certs();
    let psk = Pki::psk_only();
    let root = support::root();
    let paths: Vec<_> = ["data-ack.yaml", "data-auto-registration.yaml"]
        .iter()
        .map(|f| root.join("scenarios/server-proxy/passive").join(f))
        .collect();
    let run = |tls: TlsSettings| {
        support::run_opts(&RunOptions {
            paths: paths.clone(),
            versions: vec!["6.0".into(), "7.0".into()],
            jobs: 4,
            timeout: WAIT,
            tls,
            ..RunOptions::default()
        })
    };
    let r = run(TlsSettings {
        connect: Some("psk".into()),
        ..psk_settings(&psk, "good.psk")
    });
    assert_eq!(r.scenarios.len(), 4, "{}", describe(&r));
    for s in &r.scenarios {
        assert_eq!(s.outcome, Outcome::Passed, "{}", describe(&r));
        assert!(
            s.properties.contains_key("tls.psk-identity"),
            "{:?}",
            s.properties
        );
    }
    assert!(!describe(&r).contains(&tls_support::PSK[..16]));

    let Some(pki) = pki else {
        return;
    };
    let r = run(TlsSettings {
        connect: Some("cert".into()),
        ca_file: Some(pki.file("ca.crt")),
        cert_file: Some(pki.file("client.crt")),
        key_file: Some(pki.file("client.key")),
        ..Default::default()
    });
    for s in &r.scenarios {
        assert_eq!(s.outcome, Outcome::Passed, "{}", describe(&r));
        let skipped = s
            .steps
            .iter()
            .filter(|st| matches!(&st.outcome, Outcome::Skipped(why) if why.contains("when tls")))
            .count();
        let expected = if s.file.ends_with("data-auto-registration.yaml") {
            2
        } else {
            0
        };
        assert_eq!(skipped, expected, "{}: {:?}", s.name, s.steps);
    }
}

/// `serve agent-passive --tls-accept psk …` is a long-lived PSK-only agent: `run --peer`
/// asks it its version over PSK and the refusal suite passes against it; against one
/// served without TLS the run cannot even ask over PSK, and says why.
#[test]
fn a_served_psk_only_reference_passes_the_refusal_suite_over_the_cli() {
    let pki = Pki::psk_only();
    let good = pki.file("good.psk");
    let run = |addr: &str| {
        support::zbx([
            "run",
            "scenarios/tls-agent",
            "--peer",
            addr,
            "--no-matrix",
            "--tls-psk-identity",
            IDENTITY,
            "--tls-psk-file",
            &good,
        ])
    };
    let served = Served::start(&[
        "agent-passive",
        "--version",
        "6.0",
        "--tls-accept",
        "psk",
        "--tls-psk-identity",
        IDENTITY,
        "--tls-psk-file",
        &good,
    ]);
    assert!(served.line.contains("TLS accept psk"), "{}", served.line);
    let o = run(&served.addr);
    let out = support::output_text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("4 passed, 0 failed"), "{out}");
    assert!(!out.contains(&PSK[..16]), "{out}");
    drop(served);

    let plain = Served::start(&["agent-passive", "--version", "6.0"]);
    let o = run(&plain.addr);
    let out = support::output_text(&o);
    // A peer without TLS cannot be asked over PSK: the run stops, naming the handshake.
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("TLS handshake with"), "{out}");
}

/// zabbix_get's names for the agent certificate checks carry over: against a served
/// certificate-only agent, `--tls-agent-cert-subject` with the agent's subject passes and
/// with another subject fails the TLS check.
#[test]
fn zabbix_get_certificate_flags_carry_over() {
    let Some(pki) = Pki::with_certs() else {
        return;
    };
    let served = Served::start(&[
        "agent-passive",
        "--version",
        "6.0",
        "--tls-accept",
        "cert",
        "--tls-ca-file",
        &pki.file("ca.crt"),
        "--tls-cert-file",
        &pki.file("server.crt"),
        "--tls-key-file",
        &pki.file("server.key"),
    ]);
    let run = |subject: &str| {
        support::zbx([
            "run",
            "scenarios/agent/passive",
            "--peer",
            &served.addr,
            "--version",
            "6.0",
            "--no-matrix",
            "--tls-connect",
            "cert",
            "--tls-ca-file",
            &pki.file("ca.crt"),
            "--tls-cert-file",
            &pki.file("client.crt"),
            "--tls-key-file",
            &pki.file("client.key"),
            "--tls-agent-cert-issuer",
            CA_SUBJECT,
            "--tls-agent-cert-subject",
            subject,
        ])
    };
    let o = run(SERVER_SUBJECT);
    let out = support::output_text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let o = run(CLIENT_SUBJECT);
    let out = support::output_text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("subject"), "{out}");
}

/// A reference peer served by `zbx-conform serve` until dropped (stopped by its PID).
struct Served {
    child: std::process::Child,
    addr: String,
    line: String,
}

impl Served {
    fn start(args: &[&str]) -> Served {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_zbx-conform"))
            .arg("serve")
            .args(args)
            .current_dir(root())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("serve starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("serve prints its address");
        let addr = line
            .split(" on ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_default()
            .to_string();
        Served { child, addr, line }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The real zabbix_sender and zabbix_get (6.0.14, GnuTLS builds) talk PSK to the harness:
//! the harness plays a PSK-only trapper (scenarios/tls/trapper-psk.yaml) and a PSK-only
//! passive agent (scenarios/tls/passive-agent-psk.yaml), run as `run --listen`. With the
//! right key both scenarios pass and record the TLS the tools spoke; with a wrong key the
//! tool fails and the scenario fails its `tls` check, naming OpenSSL's reason.
//!
//! A missing tool skips with a message, except under CI=true, where it fails.

mod support;
mod tls_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{describe, require_binary, root, run_opts};
use tls_support::*;
use zbx_conform::runner::{CheckKind, Outcome, RunOptions, RunResult};
use zbx_conform::transport::tls::TlsSettings;

const WAIT: Duration = Duration::from_secs(10);

/// Wait until something listens on `port` (binding it fails), without connecting.
fn wait_bound(port: u16) {
    let start = Instant::now();
    while std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
        assert!(start.elapsed() < WAIT, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run `scenario` with the harness listening on a free port, the PSK from the run's
/// options (as `--tls-psk-identity`/`--tls-psk-file`), and `tool` pointed at that port.
fn with_tool(
    scenario: &str,
    pki: &Pki,
    tool: impl FnOnce(u16) -> std::process::Output,
) -> (RunResult, std::process::Output) {
    let port = zbx_conform::runner::peer::free_port().unwrap();
    let opts = RunOptions {
        paths: vec![root().join(scenario)],
        listen: Some(format!("127.0.0.1:{port}")),
        versions: vec!["6.0".into()],
        timeout: WAIT,
        tls: TlsSettings {
            psk_identity: Some(IDENTITY.into()),
            psk_file: Some(pki.file("good.psk")),
            ..Default::default()
        },
        ..RunOptions::default()
    };
    let run = std::thread::spawn(move || run_opts(&opts));
    wait_bound(port);
    let out = tool(port);
    (run.join().unwrap(), out)
}

fn psk_args(pki: &Pki, key: &str) -> Vec<String> {
    vec![
        "--tls-connect".into(),
        "psk".into(),
        "--tls-psk-identity".into(),
        IDENTITY.into(),
        "--tls-psk-file".into(),
        pki.file(key),
    ]
}

fn text(o: &std::process::Output) -> String {
    support::output_text(o)
}

fn sender(bin: &Path, pki: &Pki, key: &str, port: u16) -> std::process::Output {
    Command::new(bin)
        .args(["-z", "127.0.0.1", "-p", &port.to_string()])
        .args(["-s", "zbxc-host", "-k", "trap.text", "-o", "hello"])
        .args(psk_args(pki, key))
        .output()
        .expect("zabbix_sender runs")
}

fn get(bin: &Path, pki: &Pki, key: &str, port: u16) -> std::process::Output {
    Command::new(bin)
        .args([
            "-s",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-k",
            "agent.ping",
        ])
        .args(psk_args(pki, key))
        .output()
        .expect("zabbix_get runs")
}

/// The one scenario of `r` passed, over TLS with our identity.
fn assert_passed_over_psk(r: &RunResult, tool: &std::process::Output) {
    assert_eq!(r.scenarios.len(), 1, "{}", describe(r));
    let s = &r.scenarios[0];
    assert_eq!(
        s.outcome,
        Outcome::Passed,
        "{}\ntool: {}",
        describe(r),
        text(tool)
    );
    assert_eq!(
        s.properties.get("tls.psk-identity").map(String::as_str),
        Some(IDENTITY)
    );
    let version = s.properties.get("tls.version").cloned().unwrap_or_default();
    assert!(version.starts_with("TLSv1."), "{:?}", s.properties);
    eprintln!(
        "{}: {}",
        s.name,
        s.properties.get("tls.step-1").cloned().unwrap_or_default()
    );
}

/// The one scenario of `r` failed its `tls` check with a handshake reason, and no
/// report line shows a key.
fn assert_refused(r: &RunResult) {
    assert_eq!(r.scenarios.len(), 1, "{}", describe(r));
    let s = &r.scenarios[0];
    assert_eq!(s.outcome, Outcome::Failed, "{}", describe(r));
    let (_, f) = s.failures().next().expect("a failure");
    assert_eq!(f.check, CheckKind::Tls, "{}", describe(r));
    assert!(
        f.detail.starts_with("TLS handshake with 127.0.0.1:"),
        "{}",
        f.detail
    );
    let all = describe(r);
    for k in [PSK, WRONG_PSK] {
        assert!(!all.contains(&k[..16]), "a key shows: {all}");
    }
    eprintln!("{}: refused: {}", s.name, f.detail);
}

#[test]
fn zabbix_sender_sends_over_psk_to_the_harness_as_trapper() {
    let Some(bin) = require_binary("ZABBIX_SENDER", "/usr/bin/zabbix_sender") else {
        return;
    };
    let pki = Pki::psk_only();
    let (r, out) = with_tool("scenarios/tls/trapper-psk.yaml", &pki, |p| {
        sender(&bin, &pki, "good.psk", p)
    });
    assert!(out.status.success(), "zabbix_sender: {}", text(&out));
    assert!(
        text(&out).contains("processed: 1; failed: 0"),
        "{}",
        text(&out)
    );
    assert_passed_over_psk(&r, &out);

    let (r, out) = with_tool("scenarios/tls/trapper-psk.yaml", &pki, |p| {
        sender(&bin, &pki, "wrong.psk", p)
    });
    assert!(
        !out.status.success(),
        "zabbix_sender with a wrong key: {}",
        text(&out)
    );
    assert_refused(&r);
}

#[test]
fn zabbix_get_polls_over_psk_the_harness_as_passive_agent() {
    let Some(bin) = require_binary("ZABBIX_GET", "/usr/bin/zabbix_get") else {
        return;
    };
    let pki = Pki::psk_only();
    let (r, out) = with_tool("scenarios/tls/passive-agent-psk.yaml", &pki, |p| {
        get(&bin, &pki, "good.psk", p)
    });
    assert!(out.status.success(), "zabbix_get: {}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "{}",
        text(&out)
    );
    assert_passed_over_psk(&r, &out);

    let (r, out) = with_tool("scenarios/tls/passive-agent-psk.yaml", &pki, |p| {
        get(&bin, &pki, "wrong.psk", p)
    });
    assert!(
        !out.status.success() || String::from_utf8_lossy(&out.stdout).trim() != "1",
        "zabbix_get with a wrong key: {}",
        text(&out)
    );
    assert_refused(&r);
}

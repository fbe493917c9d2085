//! The real 6.0.14 zabbix_proxy (a GnuTLS build) with encryption on, started from
//! profiles with a key written at test time: passive with TLSAccept=psk
//! (ci/peers/zabbix-proxy-passive-psk.yaml), the harness playing the server over PSK,
//! asking the proxy its version inside TLS, and the passive suite's server-facing
//! scenarios (configuration, data, tasks, malformed requests) pass; active with
//! TLSConnect=psk (ci/peers/zabbix-proxy-active-psk.yaml), and the whole active suite
//! passes with the harness as a trapper accepting PSK. A proxy also answers an agent's
//! request over a connection type the host does not accept with the documented `failed`
//! reply (scenarios/server-proxy-tls).
//!
//! Left out: the scenarios that also play a sender or an agent towards the proxy
//! (config-push, config-large, data-ack, data-more, data-no-ack,
//! data-auto-registration). Their host is configured with tls_accept=1 (unencrypted) in
//! the pushed configuration, so a value sent over PSK is counted failed and a PSK-only
//! proxy refuses a plaintext one: running them encrypted needs the host's PSK in the
//! configuration the scenario pushes.
//!
//! A missing proxy skips with a message, except under CI=true, where it fails.

mod support;
mod tls_support;

use std::sync::Arc;
use std::time::Duration;
use support::{describe, root};
use tls_support::{Pki, IDENTITY, PSK};
use zbx_conform::catalog::Catalog;
use zbx_conform::runner::{self, RunOptions};
use zbx_conform::transport::tls::TlsSettings;

const PROFILE: &str = "ci/peers/zabbix-proxy-passive-psk.yaml";

/// The passive suite's scenarios at 6.0 that only play the server.
const SERVER_FACING: &[&str] = &[
    "config-without-data.yaml",
    "data-compressed.yaml",
    "data-discovery.yaml",
    "data-interface-availability.yaml",
    "data-tasks.yaml",
    "invalid-json.yaml",
    "tasks-results.yaml",
    "tasks.yaml",
    "unknown-request.yaml",
];

#[test]
fn a_psk_only_passive_proxy_passes_the_server_facing_suite_over_psk() {
    if support::require_binary("ZABBIX_PROXY", "/usr/sbin/zabbix_proxy").is_none() {
        return;
    }
    let pki = Pki::psk_only();
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-proxy-psk-");
    let catalog = Arc::new(Catalog::load(&root()).expect("catalog loads"));
    let opts = RunOptions {
        paths: SERVER_FACING
            .iter()
            .map(|f| root().join("scenarios/server-proxy/passive").join(f))
            .collect(),
        vars: [
            ("PSK_IDENTITY".to_string(), IDENTITY.to_string()),
            ("PSK_FILE".into(), pki.file("good.psk")),
        ]
        .into_iter()
        .collect(),
        jobs: 2,
        timeout: Duration::from_secs(10),
        start_peer: Some(support::load_profile(PROFILE)),
        run_dir: run_dir.clone(),
        tls: TlsSettings {
            connect: Some("psk".into()),
            psk_identity: Some(IDENTITY.into()),
            psk_file: Some(pki.file("good.psk")),
            ..Default::default()
        },
        ..RunOptions::default()
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let plan = rt
        .block_on(runner::prepare(&catalog, &opts, &mut |l| eprintln!("{l}")))
        .unwrap_or_else(|e| panic!("the run does not start: {e}"));
    assert_eq!(plan.peers.len(), 1, "one peer asked");
    assert_eq!(plan.peers[0].protocol, "6.0", "{:?}", plan.peers[0]);
    let r = rt.block_on(runner::run_jobs(catalog, plan.jobs, &opts, |_| {}));
    support::assert_all_passed(PROFILE, &r, SERVER_FACING.len());
    for s in &r.scenarios {
        assert_eq!(
            s.properties.get("tls.psk-identity").map(String::as_str),
            Some(IDENTITY),
            "{}: {:?}",
            s.name,
            s.properties
        );
    }
    let all = describe(&r);
    assert!(!all.contains(&PSK[..16]), "a key shows: {all}");
}

const WRONG_TYPE: &str = "scenarios/server-proxy-tls/wrong-connection-type.yaml";

/// Run the wrong-connection-type scenario at 6.0 against the peer at `addr`, or against a
/// fresh real passive proxy per scenario when `addr` is `None`.
fn run_wrong_type(addr: Option<&str>, run_dir: &std::path::Path) -> zbx_conform::runner::RunResult {
    let catalog = Arc::new(Catalog::load(&root()).expect("catalog loads"));
    let opts = RunOptions {
        paths: vec![root().join(WRONG_TYPE)],
        versions: vec!["6.0".into()],
        peer: addr.map(str::to_string),
        timeout: Duration::from_secs(10),
        start_peer: addr
            .is_none()
            .then(|| support::load_profile("ci/peers/zabbix-proxy-passive.yaml")),
        run_dir: run_dir.to_path_buf(),
        ..RunOptions::default()
    };
    let jobs = runner::plan(&catalog, &opts).expect("the scenario loads and lints");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(runner::run_jobs(catalog, jobs, &opts, |_| {}))
}

/// The real proxy answers an agent's request in clear for a host that accepts PSK only
/// with the documented `failed` reply, and answers it while the host accepts plaintext;
/// the built-in passive proxy, which checks hosts' connection types too, agrees.
#[test]
fn a_proxy_refuses_a_request_over_a_type_the_host_does_not_accept() {
    if support::require_binary("ZABBIX_PROXY", "/usr/sbin/zabbix_proxy").is_none() {
        return;
    }
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-proxy-wrong-type-");
    let r = run_wrong_type(None, &run_dir);
    support::assert_all_passed(WRONG_TYPE, &r, 1);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cfg = zbx_conform::reference::ReferenceConfig {
        name: "passive-proxy".into(),
        version: "6.0".into(),
        fault: None,
        connect_to: None,
        listen: None,
    };
    let peer = rt
        .block_on(zbx_conform::reference::start(&cfg, support::catalog()))
        .expect("the reference starts");
    let addr = peer.listen.expect("it listens").to_string();
    let r = run_wrong_type(Some(&addr), &run_dir.join("reference"));
    rt.block_on(peer.stop());
    support::assert_all_passed("the built-in passive proxy", &r, 1);
}

/// The real 6.0.14 active zabbix_proxy with TLSConnect=psk
/// (ci/peers/zabbix-proxy-active-psk.yaml): the harness plays the server trapper accepting PSK (and plaintext, as a server's
/// listener does: the proxy polls the agent the harness also plays with the host's
/// tls_connect, unencrypted), and the whole active suite passes, every scenario having
/// taken the proxy's messages over PSK.
#[test]
fn an_active_proxy_connecting_with_psk_passes_the_active_suite() {
    if support::require_binary("ZABBIX_PROXY", "/usr/sbin/zabbix_proxy").is_none() {
        return;
    }
    let profile = "ci/peers/zabbix-proxy-active-psk.yaml";
    let pki = Pki::psk_only();
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-aproxy-psk-");
    let catalog = Arc::new(Catalog::load(&root()).expect("catalog loads"));
    let opts = RunOptions {
        paths: vec![root().join("scenarios/server-proxy/active")],
        versions: vec!["6.0".into()],
        vars: [
            ("PSK_IDENTITY".to_string(), IDENTITY.to_string()),
            ("PSK_FILE".into(), pki.file("good.psk")),
        ]
        .into_iter()
        .collect(),
        jobs: 2,
        timeout: Duration::from_secs(10),
        start_peer: Some(support::load_profile(profile)),
        run_dir: run_dir.clone(),
        tls: TlsSettings {
            accept: Some(vec!["unencrypted".into(), "psk".into()]),
            psk_identity: Some(IDENTITY.into()),
            psk_file: Some(pki.file("good.psk")),
            ..Default::default()
        },
        ..RunOptions::default()
    };
    let jobs = runner::plan(&catalog, &opts).expect("scenarios load and lint");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let r = rt.block_on(runner::run_jobs(catalog, jobs, &opts, |_| {}));
    support::assert_all_passed(profile, &r, 9);
    for s in &r.scenarios {
        assert_eq!(
            s.properties.get("tls.psk-identity").map(String::as_str),
            Some(IDENTITY),
            "{}: {:?}",
            s.name,
            s.properties
        );
    }
    let all = describe(&r);
    assert!(!all.contains(&PSK[..16]), "a key shows: {all}");
}

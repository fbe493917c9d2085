//! The real 6.0.14 zabbix_proxy (a GnuTLS build) with encryption on, started from
//! profiles with keys and certificates made at test time:
//! - passive with TLSAccept=psk (ci/peers/zabbix-proxy-passive-psk.yaml): the harness
//!   plays the server over PSK, asking the proxy its version inside TLS; the passive
//!   scenarios that also send values or ask for checks as a sender or an agent pass, the
//!   configuration they push naming the run's PSK for the host (`${tls_psk}`). The whole
//!   passive suite runs over PSK and certificates, at 6.0 and 7.0, as lines of
//!   ci/matrix.tsv;
//! - the proxy refusal scenarios (scenarios/tls-proxy, scenarios/tls-proxy-cert) pass
//!   against PSK-only and certificate-only proxies, and each fails against a proxy that
//!   accepts what it refuses;
//! - active with TLSConnect=psk (ci/peers/zabbix-proxy-active-psk.yaml): the whole active
//!   suite passes with the harness as a trapper accepting PSK;
//! - a proxy answers an agent's request over a connection type the host does not accept
//!   with the documented `failed` reply (scenarios/server-proxy-tls).
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

/// The passive suite's scenarios that also play a sender or an agent towards the proxy,
/// for a host (or an auto-registration) the configuration they push lets in over PSK.
const HOSTS_OVER_PSK: &[&str] = &[
    "config-push.yaml",
    "config-large.yaml",
    "data-ack.yaml",
    "data-more.yaml",
    "data-no-ack.yaml",
    "data-auto-registration.yaml",
];

#[test]
fn a_psk_only_passive_proxy_takes_values_and_registrations_over_psk() {
    if support::require_binary("ZABBIX_PROXY", "/usr/sbin/zabbix_proxy").is_none() {
        return;
    }
    let pki = Pki::psk_only();
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-proxy-psk-");
    let paths: Vec<String> = HOSTS_OVER_PSK
        .iter()
        .map(|f| format!("scenarios/server-proxy/passive/{f}"))
        .collect();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let vars = vec![
        ("PSK_IDENTITY".to_string(), IDENTITY.to_string()),
        ("PSK_FILE".into(), pki.file("good.psk")),
    ];
    let (named, r) =
        tls_support::run_started(PROFILE, &paths, &[], vars, pki.psk_client(), &run_dir);
    assert_eq!(named.as_deref(), Some("6.0"), "the proxy asked over PSK");
    support::assert_all_passed(PROFILE, &r, HOSTS_OVER_PSK.len());
    // Every scenario spoke PSK. The identity itself shows redacted: the configuration
    // pushed it as a host's `tls_psk_identity`, a secret field, so reports scrub it.
    for s in &r.scenarios {
        assert_eq!(
            s.properties.get("tls.psk-identity").map(String::as_str),
            Some("[redacted]"),
            "{}: {:?}",
            s.name,
            s.properties
        );
    }
    let all = describe(&r);
    assert!(!all.contains(&PSK[..16]), "a key shows: {all}");
    assert!(!all.contains(IDENTITY), "the pushed identity shows: {all}");
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

/// Run `folder` at 6.0 with a fresh passive proxy per scenario from `profile`.
fn run_refusals(
    profile: &str,
    folder: &str,
    vars: Vec<(String, String)>,
    tls: TlsSettings,
    run_dir: &std::path::Path,
) -> zbx_conform::runner::RunResult {
    tls_support::run_started(profile, &[folder], &["6.0"], vars, tls, run_dir).1
}

fn psk_vars(identity: &str, key_file: &str, accept: &str) -> Vec<(String, String)> {
    vec![
        ("PSK_IDENTITY".to_string(), identity.to_string()),
        ("PSK_FILE".into(), key_file.to_string()),
        ("PROXY_TLS_ACCEPT".into(), accept.into()),
    ]
}

const PSK_REFUSALS: &str = "scenarios/tls-proxy";
const CERT_REFUSALS: &str = "scenarios/tls-proxy-cert";
const CERT_PROFILE: &str = "ci/peers/zabbix-proxy-passive-cert.yaml";

/// The PSK refusal scenarios pass against a PSK-only proxy, and each fails against a
/// proxy that accepts what it refuses: one that takes plaintext too, one whose key is
/// the scenario's wrong key, one whose identity is the scenario's wrong identity.
#[test]
fn each_psk_refusal_passes_against_a_psk_only_proxy_and_fails_against_a_lenient_one() {
    if support::require_binary("ZABBIX_PROXY", "/usr/sbin/zabbix_proxy").is_none() {
        return;
    }
    let pki = Pki::psk_only();
    let good = pki.file("good.psk");
    let wrong = pki.file("wrong.psk");
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-proxy-refuse-");
    let run = |vars, sub: &str| {
        let mut vars: Vec<(String, String)> = vars;
        vars.push(("WRONG_PSK_FILE".into(), wrong.clone()));
        run_refusals(
            PROFILE,
            PSK_REFUSALS,
            vars,
            pki.psk_client(),
            &run_dir.join(sub),
        )
    };
    let r = run(psk_vars(IDENTITY, &good, "psk"), "strict");
    support::assert_all_passed("a PSK-only proxy", &r, 3);
    let all = describe(&r);
    assert!(!all.contains(&PSK[..16]), "a key shows: {all}");

    use zbx_conform::runner::Outcome;
    for (vars, sub, fails) in [
        (
            psk_vars(IDENTITY, &good, "unencrypted,psk"),
            "plain",
            "plaintext-refused.yaml",
        ),
        (
            psk_vars(IDENTITY, &wrong, "psk"),
            "key",
            "wrong-key-refused.yaml",
        ),
        (
            psk_vars("zbx-conform wrong identity", &good, "psk"),
            "identity",
            "wrong-identity-refused.yaml",
        ),
    ] {
        let r = run(vars, sub);
        assert_eq!(
            *support::outcome_of(&r, fails),
            Outcome::Failed,
            "{sub}: {}",
            describe(&r)
        );
    }
}

/// A certificate-only passive proxy (TLSAccept=cert, TLSServerCertSubject set) is asked
/// its version over TLS and passes the certificate refusal scenarios: plaintext closed, a
/// certificate from an unknown CA and one of another subject refused. Against a proxy
/// that accepts plaintext, trusts both CAs and requires no subject, each fails.
#[test]
fn each_certificate_refusal_passes_against_a_strict_proxy_and_fails_against_a_lenient_one() {
    if support::require_binary("ZABBIX_PROXY", "/usr/sbin/zabbix_proxy").is_none() {
        return;
    }
    let Some(pki) = Pki::with_certs() else {
        return;
    };
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-proxy-cert-refuse-");
    let run = |ca: &str, subject, accept, sub: &str| {
        let vars = pki.cert_peer_vars(ca, subject, "PROXY_TLS_ACCEPT", accept);
        run_refusals(
            CERT_PROFILE,
            CERT_REFUSALS,
            vars,
            pki.cert_client(),
            &run_dir.join(sub),
        )
    };
    let r = run(
        &pki.file("ca.crt"),
        Some(tls_support::CLIENT_SUBJECT),
        "cert",
        "strict",
    );
    support::assert_all_passed("a certificate-only proxy", &r, 3);
    let r = run(&pki.both_cas(), None, "unencrypted,cert", "lenient");
    for f in [
        "plaintext-refused.yaml",
        "unknown-ca-refused.yaml",
        "wrong-subject-refused.yaml",
    ] {
        assert_eq!(
            *support::outcome_of(&r, f),
            zbx_conform::runner::Outcome::Failed,
            "{f}: {}",
            describe(&r)
        );
    }
}

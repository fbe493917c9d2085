//! Real agents with encryption on: zabbix_agentd 6.0.14 (a GnuTLS build) and
//! zabbix_agent2 6.0.14 (an OpenSSL build) of Debian 12, and both at 7.0.22 in the trixie
//! root, started from profiles (ci/peers/*-psk.yaml, *-cert.yaml, ci/trixie/*-psk.yaml)
//! with keys and certificates made at test time.
//!
//! - `run --peer ADDR --tls-connect psk …` asks the agent its version over TLS (a
//!   plaintext probe is closed unanswered, and the error says to give --tls-connect);
//! - the passive agent suite passes over PSK (and with certificates), the active suite
//!   with an agent connecting over PSK;
//! - the refusal scenarios (scenarios/tls-agent, scenarios/tls-agent-cert) pass against
//!   the TLS-only agent, and each fails against an agent that accepts what it must
//!   refuse.
//!
//! A missing agent skips with a message, except under CI=true, where it fails.

mod support;
mod tls_support;

use std::path::{Path, PathBuf};
use support::{describe, output_text, zbx};
use tls_support::{Pki, IDENTITY, PSK, WRONG_PSK};
use zbx_conform::runner::{CheckKind, Outcome, RunResult};
use zbx_conform::scenario::vars::Vars;
use zbx_conform::transport::tls::TlsSettings;

const AGENTD: &str = "ci/peers/zabbix-agentd-passive-psk.yaml";
const AGENT2: &str = "ci/peers/zabbix-agent2-passive-psk.yaml";
const REFUSALS: &str = "scenarios/tls-agent";

/// The harness's side of the PSK: the run's `--tls-psk-identity`/`--tls-psk-file`.
fn run_tls(pki: &Pki) -> TlsSettings {
    TlsSettings {
        psk_identity: Some(IDENTITY.into()),
        psk_file: Some(pki.file("good.psk")),
        ..Default::default()
    }
}

/// The agent's side: its identity, key file and TLSAccept, as profile variables.
fn agent_vars(identity: &str, key_file: &str, accept: &str) -> Vec<(String, String)> {
    vec![
        ("PSK_IDENTITY".into(), identity.into()),
        ("PSK_FILE".into(), key_file.into()),
        ("AGENT_TLS_ACCEPT".into(), accept.into()),
    ]
}

/// Run `paths` with a fresh agent per scenario from `profile`. Without `versions` the
/// run first asks a started agent its version (over TLS, as the run's settings say).
fn run_against(
    profile: &str,
    paths: &[&str],
    versions: &[&str],
    vars: Vec<(String, String)>,
    tls: TlsSettings,
    run_dir: &Path,
) -> RunResult {
    run_with(profile, paths, versions, vars, tls, run_dir, "6.0")
}

/// [`run_against`] for a peer that must name `protocol` when asked.
fn run_with(
    profile: &str,
    paths: &[&str],
    versions: &[&str],
    vars: Vec<(String, String)>,
    tls: TlsSettings,
    run_dir: &Path,
    protocol: &str,
) -> RunResult {
    let (named, r) = tls_support::run_started(profile, paths, versions, vars, tls, run_dir);
    if let Some(named) = named {
        assert_eq!(named, protocol, "{profile}: the protocol the peer named");
    }
    r
}

/// No key (of the harness's or the agent's) shows in what the run reports.
fn assert_no_key(r: &RunResult) {
    let all = describe(r);
    for k in [PSK, WRONG_PSK, "deadbeefdeadbeef"] {
        assert!(!all.contains(&k[..16]), "a key shows: {all}");
    }
}

/// A key of the test's own (64 hex digits), for runs where the agent holds the key the
/// refusal scenarios call wrong.
fn wrong_key_file(dir: &std::path::Path) -> String {
    let keys = zbx_conform::runner::test_keys::TestKeys::make(dir).expect("a key file");
    let path = dir.join("wrong.psk");
    std::fs::copy(&keys.wrong_psk_file, &path).expect("copy the key");
    path.display().to_string()
}

/// The agent from `profile` (PSK-only, the test's key) on a port of its own, for tests
/// that run the binary against `--peer`. Stopped by PID on drop.
struct Agent {
    rt: tokio::runtime::Runtime,
    process: Option<zbx_conform::transport::spawn::PeerProcess>,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start(profile: &str, pki: &Pki) -> Agent {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut vars = Vars::new(
            agent_vars(IDENTITY, &pki.file("good.psk"), "psk")
                .into_iter()
                .collect(),
            Default::default(),
        );
        let process = rt
            .block_on(support::load_profile(profile).start(&mut vars, dir.path()))
            .unwrap_or_else(|e| panic!("{profile}: cannot start: {e}"));
        let addr = vars
            .expand_str("${AGENT_ADDR}")
            .expect("the profile exports AGENT_ADDR");
        Agent {
            rt,
            process: Some(process),
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(p) = self.process.take() {
            self.rt.block_on(p.stop());
        }
    }
}

fn agentd() -> Option<PathBuf> {
    support::require_binary("ZABBIX_AGENTD", "/usr/sbin/zabbix_agentd")
}

fn agent2() -> Option<PathBuf> {
    support::require_binary("ZABBIX_AGENT2", "/usr/sbin/zabbix_agent2")
}

#[test]
fn run_asks_a_psk_only_agent_its_version_over_tls() {
    if agentd().is_none() {
        return;
    }
    let pki = Pki::psk_only();
    let agent = Agent::start(AGENTD, &pki);
    let ping = "scenarios/agent/passive/ping.yaml";

    // In clear, the agent closes every probe: no version, and the error says why.
    let out = zbx(["run", ping, "--peer", &agent.addr]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("closed without a reply") && text.contains("give --tls-connect"),
        "{text}"
    );

    let good = pki.file("good.psk");
    let tls = [
        "--tls-connect",
        "psk",
        "--tls-psk-identity",
        IDENTITY,
        "--tls-psk-file",
        &good,
    ];
    let mut args = vec!["run", ping, "--peer", &agent.addr];
    args.extend(tls);
    let out = zbx(&args);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("6.0.14 → protocol 6.0"), "{text}");
    assert!(!text.contains(&PSK[..16]), "{text}");

    // A wrong key: the probes fail their handshake, and the error says so.
    let wrong = pki.file("wrong.psk");
    let mut args = vec!["run", ping, "--peer", &agent.addr];
    args.extend(&tls[..4]);
    args.extend(["--tls-psk-file", &wrong]);
    let out = zbx(&args);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("TLS handshake with"), "{text}");
    assert!(!text.contains(&WRONG_PSK[..16]), "{text}");
}

#[test]
fn agentd_with_psk_only_passes_the_passive_suite_over_psk() {
    if agentd().is_none() {
        return;
    }
    let pki = Pki::psk_only();
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-agentd-psk-");
    let mut tls = run_tls(&pki);
    tls.connect = Some("psk".into());
    let vars = agent_vars(IDENTITY, &pki.file("good.psk"), "psk");
    let r = run_against(
        AGENTD,
        &["scenarios/agent/passive"],
        &[],
        vars,
        tls,
        &run_dir,
    );
    support::assert_all_passed(AGENTD, &r, 3);
    for s in &r.scenarios {
        assert_eq!(
            s.properties.get("tls.psk-identity").map(String::as_str),
            Some(IDENTITY),
            "{}: {:?}",
            s.name,
            s.properties
        );
    }
    assert_no_key(&r);
}

#[test]
fn agent2_with_psk_only_passes_the_passive_suite_over_psk() {
    if agent2().is_none() {
        return;
    }
    let pki = Pki::psk_only();
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-agent2-psk-");
    let mut tls = run_tls(&pki);
    tls.connect = Some("psk".into());
    let vars = agent_vars(IDENTITY, &pki.file("good.psk"), "psk");
    let r = run_against(
        AGENT2,
        &["scenarios/agent/passive"],
        &[],
        vars,
        tls,
        &run_dir,
    );
    support::assert_all_passed(AGENT2, &r, 3);
    assert_no_key(&r);
}

/// The refusal scenarios pass against each PSK-only agent.
#[rstest::rstest]
#[case::agentd(AGENTD, agentd as fn() -> Option<PathBuf>, "zbxc-agentd-refuse-")]
#[case::agent2(AGENT2, agent2 as fn() -> Option<PathBuf>, "zbxc-agent2-refuse-")]
fn the_refusal_scenarios_pass_against_a_psk_only_agent(
    #[case] profile: &str,
    #[case] binary: fn() -> Option<PathBuf>,
    #[case] dir_prefix: &str,
) {
    if binary().is_none() {
        return;
    }
    let pki = Pki::psk_only();
    let (_tmp, run_dir) = support::deep_run_dir(dir_prefix);
    let vars = agent_vars(IDENTITY, &pki.file("good.psk"), "psk");
    let r = run_against(
        profile,
        &[REFUSALS],
        &["6.0"],
        vars,
        run_tls(&pki),
        &run_dir,
    );
    support::assert_all_passed(profile, &r, 4);
    assert_no_key(&r);
}

/// Each refusal scenario fails against an agent that accepts what it must refuse: one
/// that also accepts plaintext, one whose key is the scenario's wrong key, one whose
/// identity is the scenario's wrong identity. The control scenario shows which agent
/// still holds the harness's pair.
#[test]
fn each_refusal_scenario_fails_against_an_agent_that_accepts_it() {
    if agentd().is_none() {
        return;
    }
    let pki = Pki::psk_only();
    let good = pki.file("good.psk");
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-agentd-lenient-");
    let run = |vars, sub: &str| {
        run_against(
            AGENTD,
            &[REFUSALS],
            &["6.0"],
            vars,
            run_tls(&pki),
            &run_dir.join(sub),
        )
    };

    // Plaintext accepted too: the agent answers in clear.
    let r = run(agent_vars(IDENTITY, &good, "unencrypted,psk"), "plain");
    eprintln!("{}", describe(&r));
    assert_eq!(
        *support::outcome_of(&r, "plaintext-refused.yaml"),
        Outcome::Failed
    );
    let plain = r
        .scenarios
        .iter()
        .find(|s| s.file.ends_with("plaintext-refused.yaml"))
        .and_then(|s| s.failures().next().map(|(_, f)| f.check))
        .expect("a failure");
    assert_eq!(plain, CheckKind::Close, "{}", describe(&r));
    for ok in [
        "wrong-key-refused.yaml",
        "wrong-identity-refused.yaml",
        "right-psk-answered.yaml",
    ] {
        assert_eq!(
            *support::outcome_of(&r, ok),
            Outcome::Passed,
            "{ok}\n{}",
            describe(&r)
        );
    }

    // The agent holds the key the scenario calls wrong: the handshake succeeds with it.
    let keys = tempfile::tempdir().expect("temporary directory");
    let wrong = wrong_key_file(keys.path());
    let mut vars = agent_vars(IDENTITY, &wrong, "psk");
    vars.push(("WRONG_PSK_FILE".into(), wrong.clone()));
    let r = run(vars, "key");
    eprintln!("{}", describe(&r));
    assert_eq!(
        *support::outcome_of(&r, "wrong-key-refused.yaml"),
        Outcome::Failed
    );
    assert_eq!(
        *support::outcome_of(&r, "right-psk-answered.yaml"),
        Outcome::Failed
    );
    let detail = r
        .scenarios
        .iter()
        .find(|s| s.file.ends_with("wrong-key-refused.yaml"))
        .and_then(|s| s.failures().next().map(|(_, f)| f.clone()))
        .expect("a failure");
    assert_eq!(detail.check, CheckKind::Tls);
    assert!(
        detail.detail.contains("the TLS handshake succeeded") && detail.detail.contains("answered"),
        "{}",
        detail.detail
    );
    assert_no_key(&r);

    // The agent's identity is the scenario's wrong identity.
    let r = run(
        agent_vars("zbx-conform wrong identity", &good, "psk"),
        "identity",
    );
    eprintln!("{}", describe(&r));
    assert_eq!(
        *support::outcome_of(&r, "wrong-identity-refused.yaml"),
        Outcome::Failed
    );
    assert_eq!(
        *support::outcome_of(&r, "right-psk-answered.yaml"),
        Outcome::Failed
    );
    assert_eq!(
        *support::outcome_of(&r, "wrong-key-refused.yaml"),
        Outcome::Passed
    );
    assert_no_key(&r);
}

/// An active zabbix_agentd with TLSConnect=psk: the run asks it its version from the
/// first message it sends inside TLS (it names none: the shape decides), then the
/// active suite passes with the harness as a PSK-only trapper.
#[test]
fn agentd_connecting_with_psk_passes_the_active_suite() {
    if agentd().is_none() {
        return;
    }
    let pki = Pki::psk_only();
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-agentd-active-psk-");
    let mut tls = run_tls(&pki);
    tls.accept = Some(vec!["psk".into()]);
    let vars = agent_vars(IDENTITY, &pki.file("good.psk"), "psk");
    let profile = "ci/peers/zabbix-agentd-active-psk.yaml";
    let r = run_against(
        profile,
        &["scenarios/agent/active"],
        &[],
        vars,
        tls,
        &run_dir,
    );
    support::assert_all_passed(profile, &r, 1);
    for s in &r.scenarios {
        assert_eq!(
            s.properties.get("tls.psk-identity").map(String::as_str),
            Some(IDENTITY),
            "{}: {:?}",
            s.name,
            s.properties
        );
    }
    assert_no_key(&r);
}

const AGENTD_CERT: &str = "ci/peers/zabbix-agentd-passive-cert.yaml";
const CERT_REFUSALS: &str = "scenarios/tls-agent-cert";

/// The agent's side with certificates (see [`Pki::cert_peer_vars`]).
fn cert_agent_vars(
    pki: &Pki,
    ca: &str,
    subject: Option<&str>,
    accept: &str,
) -> Vec<(String, String)> {
    pki.cert_peer_vars(ca, subject, "AGENT_TLS_ACCEPT", accept)
}

/// A certificate-only agentd (TLSAccept=cert, TLSServerCertSubject set): the run asks it
/// its version over TLS, the passive suite passes with the harness's certificate (the
/// agent's own subject checked), and the certificate refusal scenarios pass: plaintext
/// closed, a certificate from an unknown CA and one of another subject refused.
#[test]
fn agentd_with_certificates_only_passes_the_passive_suite_and_refuses() {
    if agentd().is_none() {
        return;
    }
    let Some(pki) = Pki::with_certs() else {
        return;
    };
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-agentd-cert-");
    let vars = cert_agent_vars(
        &pki,
        &pki.file("ca.crt"),
        Some(tls_support::CLIENT_SUBJECT),
        "cert",
    );
    let r = run_against(
        AGENTD_CERT,
        &["scenarios/agent/passive", CERT_REFUSALS],
        &[],
        vars,
        pki.cert_client(),
        &run_dir,
    );
    support::assert_all_passed(AGENTD_CERT, &r, 7);
    let ping = r
        .scenarios
        .iter()
        .find(|s| s.file.ends_with("ping.yaml"))
        .expect("ping ran");
    assert_eq!(
        ping.properties.get("tls.peer-subject").map(String::as_str),
        Some(tls_support::SERVER_SUBJECT),
        "{:?}",
        ping.properties
    );
}

/// Against an agentd that accepts everything it should refuse (plaintext too, both CAs,
/// no subject required), every certificate refusal scenario fails and the control
/// passes.
#[test]
fn each_certificate_refusal_fails_against_an_agent_that_accepts_it() {
    if agentd().is_none() {
        return;
    }
    let Some(pki) = Pki::with_certs() else {
        return;
    };
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-agentd-cert-lenient-");
    let vars = cert_agent_vars(&pki, &pki.both_cas(), None, "unencrypted,cert");
    let r = run_against(
        AGENTD_CERT,
        &[CERT_REFUSALS],
        &["6.0"],
        vars,
        pki.cert_client(),
        &run_dir,
    );
    eprintln!("{}", describe(&r));
    for refusal in [
        "plaintext-refused.yaml",
        "unknown-ca-refused.yaml",
        "wrong-subject-refused.yaml",
    ] {
        assert_eq!(
            *support::outcome_of(&r, refusal),
            Outcome::Failed,
            "{refusal}"
        );
    }
    assert_eq!(
        *support::outcome_of(&r, "right-cert-answered.yaml"),
        Outcome::Passed
    );
}

/// The 7.0.22 agents of Debian 13 (the trixie root, ci/trixie/) with TLSAccept=psk: asked
/// their version over PSK, they pass the passive suite and the PSK refusal scenarios.
#[rstest::rstest]
#[case("ci/trixie/zabbix-agentd-7.0-passive-psk.yaml")]
#[case("ci/trixie/zabbix-agent2-7.0-passive-psk.yaml")]
fn agents_7_0_with_psk_only_pass_the_passive_suite_and_refuse(#[case] profile: &str) {
    if !support::require_trixie_root(&format!("{profile} over PSK")) {
        return;
    }
    let pki = Pki::psk_only();
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-a70-psk-");
    let mut tls = run_tls(&pki);
    tls.connect = Some("psk".into());
    let mut vars = agent_vars(IDENTITY, &pki.file("good.psk"), "psk");
    // The key's folder is mounted read-only inside the root, at the same path.
    vars.push(("PSK_DIR".into(), pki.dir.path().display().to_string()));
    let r = run_with(
        profile,
        &["scenarios/agent/passive", REFUSALS],
        &[],
        vars,
        tls,
        &run_dir,
        "7.0",
    );
    support::assert_all_passed(profile, &r, 8);
    assert_no_key(&r);
}

/// zabbix_agent2 6.0.14 (OpenSSL) with TLSAccept=cert: the passive suite passes with the
/// harness's certificate, and it closes plaintext and refuses a certificate from an
/// unknown CA; but it answers a certificate of its CA whose subject is not its
/// TLSServerCertSubject (zabbix_get 6.0.14 gets the same answer), which zabbix_agentd
/// refuses: the wrong-subject scenario fails against it, naming the answer. A finding,
/// kept here so that a change in agent2's behaviour is noticed.
#[test]
fn agent2_with_certificates_only_answers_a_wrong_subject() {
    if agent2().is_none() {
        return;
    }
    let Some(pki) = Pki::with_certs() else {
        return;
    };
    let profile = "ci/peers/zabbix-agent2-passive-cert.yaml";
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-agent2-cert-");
    let vars = cert_agent_vars(
        &pki,
        &pki.file("ca.crt"),
        Some(tls_support::CLIENT_SUBJECT),
        "cert",
    );
    let r = run_against(
        profile,
        &["scenarios/agent/passive", CERT_REFUSALS],
        &[],
        vars,
        pki.cert_client(),
        &run_dir,
    );
    eprintln!("{}", describe(&r));
    for s in &r.scenarios {
        if s.file.ends_with("wrong-subject-refused.yaml") {
            assert_eq!(s.outcome, Outcome::Failed);
            let (_, f) = s.failures().next().expect("a failure");
            assert_eq!(f.check, CheckKind::Tls);
            assert!(f.detail.contains("the peer answered"), "{}", f.detail);
        } else {
            assert_eq!(s.outcome, Outcome::Passed, "{}", s.name);
        }
    }
    assert!(r.scenarios.len() >= 7, "{}", describe(&r));
}

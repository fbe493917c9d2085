//! The harness's client roles — zabbix_sender and an active agent — against a real
//! passive `zabbix_proxy` 6.0.14 (Debian 12 package `zabbix-proxy-sqlite3`,
//! `ci/install-peers.sh`), one fresh proxy per scenario from
//! `ci/peers/zabbix-proxy-passive.yaml`, through the library exactly as
//! `zbx-conform run --start-peer` does it.
//!
//! The scenarios (scenarios/sender-real-proxy, scenarios/agent-real-proxy) first push a
//! configuration to the proxy, then check that its trapper answers `sender data`,
//! `active checks` and `agent data` as protocol.md §3.2–3.5 say, each answer validated
//! against the sender/agent catalog schemas. They have no reference peer, so a default
//! `zbx-conform run` reports them skipped; this test is where they run.
//!
//! Without the binary the tests print why and skip — unless `CI=true`, where a missing
//! peer is a failure. `ZABBIX_PROXY` overrides the binary path.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zbx_conform::catalog::Catalog;
use zbx_conform::runner::peer::LoadedProfile;
use zbx_conform::runner::{self, Outcome, RunOptions};

/// Whether the real proxy is there; without it: skip (print why), or fail under CI=true.
fn proxy_available(test: &str) -> bool {
    let bin = std::env::var_os("ZABBIX_PROXY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/zabbix_proxy"));
    if bin.is_file() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !ci,
        "{test}: {} is missing and CI=true: install it with `bash ci/install-peers.sh`",
        bin.display()
    );
    eprintln!(
        "SKIPPED {test}: {} not found (install with `bash ci/install-peers.sh`, or set ZABBIX_PROXY)",
        bin.display()
    );
    false
}

/// Run the scenarios under `dir` at 6.0 against a fresh real passive proxy each; every
/// one must pass.
fn run_dir_against_proxy(test: &str, dir: &str) {
    if !proxy_available(test) {
        return;
    }
    let root = support::root();
    let run_dir = tempfile::Builder::new()
        .prefix("zbxc-clients-")
        .tempdir()
        .expect("temp dir");
    let catalog = Arc::new(Catalog::load(&root).expect("catalog loads"));
    let profile = LoadedProfile::load(&root.join("ci/peers/zabbix-proxy-passive.yaml"))
        .expect("peer profile loads");
    let opts = RunOptions {
        paths: vec![root.join(dir)],
        versions: vec!["6.0".into()],
        jobs: 2,
        timeout: Duration::from_secs(10),
        start_peer: Some(Arc::new(profile)),
        run_dir: run_dir.path().to_path_buf(),
        ..RunOptions::default()
    };
    let jobs = runner::plan(&catalog, &opts).expect("scenarios load and lint");
    let planned = jobs.len();
    assert!(planned >= 1, "{test}: nothing planned under {dir}");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let started = Instant::now();
    let r = rt.block_on(runner::run_jobs(catalog, jobs, &opts, |_| {}));
    let passed = r.count(|o| *o == Outcome::Passed);
    eprintln!(
        "{test}: {passed}/{planned} passed, wall time {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(r.scenarios.len(), planned);
    assert_eq!(
        passed,
        planned,
        "{test}: not every scenario passed:\n{}",
        support::describe(&r)
    );
    assert_eq!(r.exit_code(), 0);
}

#[test]
fn sender_against_real_proxy_6_0() {
    run_dir_against_proxy("sender vs real proxy", "scenarios/sender-real-proxy");
}

#[test]
fn active_agent_against_real_proxy_6_0() {
    run_dir_against_proxy("active agent vs real proxy", "scenarios/agent-real-proxy");
}

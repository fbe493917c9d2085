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

/// Whether the real proxy is there; without it: skip (print why), or fail under CI=true.
fn proxy_available(test: &str) -> bool {
    let found = support::require_binary("ZABBIX_PROXY", "/usr/sbin/zabbix_proxy").is_some();
    if !found {
        eprintln!("SKIPPED {test}: no zabbix_proxy (bash ci/install-peers.sh)");
    }
    found
}

/// Run the scenarios under `dir` at 6.0 against a fresh real passive proxy each; every
/// one must pass.
fn run_dir_against_proxy(test: &str, dir: &str) {
    if !proxy_available(test) {
        return;
    }
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-clients-");
    let r = support::run_with_peer(
        test,
        Some(support::load_profile("ci/peers/zabbix-proxy-passive.yaml")),
        &[dir],
        &["6.0"],
        &[],
        &run_dir,
    );
    support::assert_all_passed(test, &r, 1);
}

#[test]
fn sender_against_real_proxy_6_0() {
    run_dir_against_proxy("sender vs real proxy", "scenarios/sender-real-proxy");
}

#[test]
fn active_agent_against_real_proxy_6_0() {
    run_dir_against_proxy("active agent vs real proxy", "scenarios/agent-real-proxy");
}

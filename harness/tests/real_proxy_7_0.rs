//! The standard server<->proxy suites against a real `zabbix_proxy` 7.0.22 (Debian 13's
//! `zabbix-proxy-sqlite3`, in the root built by `ci/trixie/build-root.sh`), passive and
//! active, at protocol version 7.0, through the library exactly as
//! `zbx-conform run --version 7.0 --start-peer ci/trixie/zabbix-proxy-7.0-<mode>.yaml`
//! does it: one fresh proxy per scenario.
//!
//! Beyond "every scenario passes":
//! - the proxy must have applied every configuration it was sent: any log line saying
//!   it could not process or parse one fails the scenario (added to the profiles'
//!   `fail_on_log` here; the passive profile leaves it out on purpose, so that a
//!   scenario may push a bad configuration and check the refusal);
//! - `data/real-7.0/short-columns.yaml` pins the rule that made the 6.0-era pushes fail:
//!   7.0 checks each table's `fields` against its own column list, in order, needs
//!   `host_inventory` once `hosts` is sent, and keeps revision 0 after a refusal.
//!
//! Without the root, or not as root, the tests print why and skip — unless `CI=true`,
//! where that is a failure (`support::require_trixie_root`).

mod support;

use std::sync::Arc;
use zbx_conform::runner::peer::LoadedProfile;
use zbx_conform::runner::{self, Outcome, RunResult};

/// Log lines of a 7.0 proxy that refused or could not read a configuration
/// (passive: `cannot process proxy onfiguration data` [sic]; active: `cannot process
/// received configuration data`; both: `cannot parse proxy configuration data`).
const CONFIG_REFUSED: &str = "cannot (process|parse) .*onfiguration data";

/// The trixie profile for `mode`, made strict: a refused configuration fails the run.
fn strict_profile(mode: &str) -> Arc<LoadedProfile> {
    let path = support::root().join(format!("ci/trixie/zabbix-proxy-7.0-{mode}.yaml"));
    let mut p = LoadedProfile::load(&path).expect("peer profile loads");
    if !p.profile.fail_on_log.iter().any(|l| l == CONFIG_REFUSED) {
        p.profile.fail_on_log.push(CONFIG_REFUSED.to_string());
    }
    Arc::new(p)
}

/// Run `paths` at 7.0, one fresh real 7.0 proxy per scenario from `profile`.
fn run_7_0(test: &str, paths: &[&str], profile: Arc<LoadedProfile>) -> RunResult {
    let (_tmp, run_dir) = support::deep_run_dir("zbxc-real70-");
    support::run_with_peer(test, Some(profile), paths, &["7.0"], &[], &run_dir)
}

fn run_suite(mode: &str, min: usize, kind: &str) {
    let test = format!("real 7.0 proxy, {mode} suite");
    if !support::require_trixie_root(&test) {
        return;
    }
    let path = format!("scenarios/server-proxy/{mode}");
    let r = run_7_0(&test, &[&path], strict_profile(mode));
    support::assert_all_passed(&test, &r, min);
    // Every data section, host data included, came from the real 7.0.22 proxy.
    support::assert_sections_from_real_peer(&test, &r, "7.0", kind);
    support::assert_task_secrets_redacted(&test, &r);
}

#[test]
fn passive_suite_passes_against_real_proxy_7_0() {
    // invalid-json, data-compressed, tasks, unknown-request, config-push, config-large,
    // data-ack, data-no-ack (config-without-data is 5.4/6.0 only), the data sections
    // (interface availability, discovery, auto-registration, host data, tasks,
    // more/proxy_delay) and tasks-results.
    run_suite("passive", 15, "passive.proxy-data.response");
}

#[test]
fn active_suite_passes_against_real_proxy_7_0() {
    // config (incremental sync), data, upload-disabled (no heartbeats since 6.4) and the
    // data sections.
    run_suite("active", 9, "active.proxy-data.request");
}

/// The robustness suite (malformed frames, then a valid request), and the harness as
/// zabbix_sender and as a 7.0 active agent (after configuring the proxy through the 7.0
/// dialogue: a trapper item, and an active item the agent gets with its revision).
#[test]
fn robustness_sender_and_agent_pass_against_real_proxy_7_0() {
    let test = "real 7.0 proxy, robustness, sender and active agent";
    if !support::require_trixie_root(test) {
        return;
    }
    let paths = [
        "scenarios/robustness",
        "scenarios/sender-real-proxy",
        "scenarios/agent-real-proxy",
    ];
    let r = run_7_0(test, &paths, strict_profile("passive"));
    // 12 robustness scenarios + 1 sender scenario + 1 agent scenario.
    support::assert_all_passed(test, &r, 14);
}

#[test]
fn real_proxy_7_0_refuses_short_columns_and_keeps_its_revision() {
    let test = "real 7.0 proxy, configuration refusals";
    if !support::require_trixie_root(test) {
        return;
    }
    // The refusals are logged on purpose: not the strict log rule here.
    let r = run_7_0(
        test,
        &["harness/tests/data/real-7.0/short-columns.yaml"],
        support::load_profile("ci/trixie/zabbix-proxy-7.0-passive.yaml"),
    );
    support::assert_all_passed(test, &r, 1);
}

/// The strict rule is not a no-op: against the real 7.0 proxy, the refusals of
/// `short-columns.yaml` (all expected by that scenario) fail it as `peer-log` checks.
#[test]
fn strict_log_rule_catches_a_refused_configuration() {
    let test = "real 7.0 proxy, strict log rule";
    if !support::require_trixie_root(test) {
        return;
    }
    let r = run_7_0(
        test,
        &["harness/tests/data/real-7.0/short-columns.yaml"],
        strict_profile("passive"),
    );
    let s = &r.scenarios[0];
    assert_eq!(s.outcome, Outcome::Failed, "{}", support::describe(&r));
    let caught: Vec<&str> = s
        .failures()
        .filter(|(_, f)| f.check == runner::CheckKind::PeerLog)
        .map(|(_, f)| f.detail.as_str())
        .collect();
    assert!(
        caught
            .iter()
            .any(|l| l.contains("missing field \"hosts.ipmi_authtype\"")),
        "{}",
        support::describe(&r)
    );
    assert!(
        caught
            .iter()
            .any(|l| l.contains("cannot find host_inventory data")),
        "{}",
        support::describe(&r)
    );
}

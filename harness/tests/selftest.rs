//! Self-tests: the standard suites against the built-in reference peers.
//!
//! 1. Against the well-behaved reference peers every scenario passes (this is also what
//!    `zbx-conform run` does on a machine without Zabbix).
//! 2. Against each deliberately broken reference peer (`--fault`), the scenarios that
//!    exercise the broken behaviour FAIL, with the check kind that should catch it.
//!    A check that a broken peer would pass is a bug in the harness.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use zbx_conform::catalog::Catalog;
use zbx_conform::runner::{self, CheckKind, Outcome, RunOptions, RunResult};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn run(paths: &[&str], fault: Option<&str>) -> RunResult {
    run_versions(paths, fault, &[])
}

/// Run `paths` at `versions` (empty: every version each scenario lists).
fn run_versions(paths: &[&str], fault: Option<&str>, versions: &[&str]) -> RunResult {
    let root = root();
    let catalog = Arc::new(Catalog::load(&root).expect("catalog loads"));
    let opts = RunOptions {
        paths: paths.iter().map(|p| root.join(p)).collect(),
        fault: fault.map(str::to_string),
        versions: versions.iter().map(|v| v.to_string()).collect(),
        jobs: 8,
        timeout: std::time::Duration::from_secs(5),
        ..RunOptions::default()
    };
    let jobs = runner::plan(&catalog, &opts).expect("scenarios load and lint");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(runner::run_jobs(catalog, jobs, &opts, |_| {}))
}

fn describe(r: &RunResult) -> String {
    let mut out = String::new();
    for s in &r.scenarios {
        out.push_str(&format!(
            "{:?} {} ({})\n",
            s.outcome,
            s.test_name(),
            s.file.display()
        ));
        for (step, f) in s.failures() {
            out.push_str(&format!(
                "    step {} line {}: [{}] expected {} — {}\n",
                step.index,
                step.line,
                f.check.as_str(),
                f.expected,
                f.detail
            ));
        }
    }
    out
}

#[test]
fn standard_suite_passes_against_reference_peers() {
    let r = run(&["scenarios/server-proxy"], None);
    assert!(!r.scenarios.is_empty());
    let bad: Vec<_> = r
        .scenarios
        .iter()
        .filter(|s| s.outcome != Outcome::Passed)
        .collect();
    assert!(bad.is_empty(), "not all passed:\n{}", describe(&r));
    assert_eq!(r.exit_code(), 0);
}

/// Run `scenario` against the reference peer with `fault` and require that it fails
/// with a failure of `check` kind.
fn assert_fault_caught(scenario: &str, fault: &str, check: CheckKind) {
    assert_fault_caught_at(scenario, fault, check, &[]);
}

fn assert_fault_caught_at(scenario: &str, fault: &str, check: CheckKind, versions: &[&str]) {
    let r = run_versions(&[scenario], Some(fault), versions);
    assert!(!r.scenarios.is_empty(), "{scenario}: nothing ran");
    for s in &r.scenarios {
        assert_eq!(
            s.outcome,
            Outcome::Failed,
            "{scenario} with fault {fault} should fail:\n{}",
            describe(&r)
        );
        assert!(
            s.failures().any(|(_, f)| f.check == check),
            "{scenario} with fault {fault} should fail a `{}` check:\n{}",
            check.as_str(),
            describe(&r)
        );
    }
    assert_eq!(r.exit_code(), 1);
}

/// Every fault of every reference peer is caught by the check kind it should break.
#[rstest::rstest]
// passive proxy (the harness plays the server)
#[case("passive/config-push.yaml", "wrong-response", CheckKind::Match)]
#[case("passive/config-push.yaml", "wrong-version", CheckKind::Match)]
#[case("passive/config-push.yaml", "bad-frame", CheckKind::Frame)]
#[case("passive/data-ack.yaml", "missing-fields", CheckKind::Schema)]
#[case("passive/data-ack.yaml", "wrong-types", CheckKind::Schema)]
#[case("passive/data-no-ack.yaml", "no-ack-wait", CheckKind::Match)]
#[case("passive/data-compressed.yaml", "uncompressed", CheckKind::Frame)]
#[case("passive/tasks.yaml", "no-reply", CheckKind::Timeout)]
#[case("passive/tasks.yaml", "extra-bytes", CheckKind::Frame)]
#[case("passive/unknown-request.yaml", "no-close", CheckKind::Close)]
#[case("passive/unknown-request.yaml", "replies-unknown", CheckKind::Close)]
// active proxy (the harness plays the server trapper)
#[case("active/heartbeat.yaml", "wrong-version", CheckKind::Match)]
#[case("active/heartbeat.yaml", "uncompressed", CheckKind::Frame)]
#[case("active/data.yaml", "missing-fields", CheckKind::Schema)]
#[case("active/data.yaml", "wrong-types", CheckKind::Schema)]
// server trapper (the harness plays an active proxy)
#[case("as-proxy/active-exchanges.yaml", "wrong-response", CheckKind::Match)]
#[case("as-proxy/active-exchanges.yaml", "missing-fields", CheckKind::Schema)]
#[case("as-proxy/active-exchanges.yaml", "bad-frame", CheckKind::Frame)]
#[case("as-proxy/active-exchanges.yaml", "no-reply", CheckKind::Timeout)]
#[case("as-proxy/unknown-proxy.yaml", "replies-unknown", CheckKind::Close)]
// server poller (the harness plays a passive proxy)
#[case("as-proxy/passive-polled.yaml", "missing-fields", CheckKind::Schema)]
#[case("as-proxy/passive-polled.yaml", "wrong-response", CheckKind::Match)]
fn fault_is_caught(#[case] scenario: &str, #[case] fault: &str, #[case] check: CheckKind) {
    assert_fault_caught(&format!("scenarios/server-proxy/{scenario}"), fault, check);
}

#[test]
fn standard_suite_runs_every_version_against_reference_peers() {
    // 6.4 and 7.0 are spoken by the reference peers only (no real peer here): every
    // scenario of the suite that lists them passes at both.
    for v in ["6.4", "7.0"] {
        let r = run_versions(&["scenarios/server-proxy"], None, &[v]);
        assert!(
            r.scenarios.len() >= 10,
            "{v}: only {} scenarios ran:\n{}",
            r.scenarios.len(),
            describe(&r)
        );
        assert!(
            r.scenarios.iter().all(|s| s.outcome == Outcome::Passed),
            "{v}: not all passed:\n{}",
            describe(&r)
        );
    }
}

/// 6.4/7.0 behaviour (incremental configuration, protocol.md §2.4) is caught at both
/// versions by the check kind it should break.
#[rstest::rstest]
// passive proxy: the four-message configuration dialogue
#[case("passive/config-push.yaml", "missing-fields", CheckKind::Schema)]
#[case("passive/config-push.yaml", "wrong-types", CheckKind::Schema)]
#[case("passive/config-push.yaml", "wrong-response", CheckKind::Match)]
#[case("passive/config-push.yaml", "wrong-version", CheckKind::Match)]
#[case("passive/config-push.yaml", "stale-revision", CheckKind::Match)]
#[case("passive/config-push.yaml", "reset-on-unchanged", CheckKind::Match)]
#[case("passive/config-push.yaml", "bad-frame", CheckKind::Frame)]
#[case("passive/data-ack.yaml", "missing-fields", CheckKind::Schema)]
#[case("passive/data-no-ack.yaml", "no-ack-wait", CheckKind::Match)]
// active proxy: session + config_revision in the request
#[case("active/config.yaml", "missing-fields", CheckKind::Schema)]
#[case("active/config.yaml", "wrong-types", CheckKind::Schema)]
#[case("active/config.yaml", "stale-revision", CheckKind::Match)]
#[case("active/config.yaml", "reset-on-unchanged", CheckKind::Match)]
#[case("active/data.yaml", "wrong-types", CheckKind::Schema)]
// server trapper: full sync for revision 0, {} for its own revision
#[case("as-proxy/active-exchanges.yaml", "stale-revision", CheckKind::Match)]
#[case("as-proxy/active-exchanges.yaml", "missing-fields", CheckKind::Schema)]
#[case("as-proxy/active-exchanges.yaml", "wrong-types", CheckKind::Schema)]
// server poller: the dialogue seen from the proxy side
#[case("as-proxy/passive-polled.yaml", "stale-revision", CheckKind::Match)]
#[case("as-proxy/passive-polled.yaml", "missing-fields", CheckKind::Schema)]
#[case("as-proxy/passive-polled.yaml", "wrong-types", CheckKind::Schema)]
#[case("as-proxy/passive-polled.yaml", "wrong-response", CheckKind::Match)]
fn fault_is_caught_at_6_4_and_7_0(
    #[case] scenario: &str,
    #[case] fault: &str,
    #[case] check: CheckKind,
) {
    assert_fault_caught_at(
        &format!("scenarios/server-proxy/{scenario}"),
        fault,
        check,
        &["6.4", "7.0"],
    );
}

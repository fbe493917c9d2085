//! Self-tests of the agent and sender suites: they pass against the reference peers
//! (agent-passive, agent-active, server-for-agents), and every fault of those peers makes
//! a scenario FAIL with the check kind that should catch it.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;
use zbx_conform::runner::{CheckKind, Direction, Outcome};

#[test]
fn agent_and_sender_suites_pass_against_reference_peers() {
    let r = support::run(
        &["scenarios/agent", "scenarios/sender"],
        None,
        Duration::from_secs(5),
    );
    // Every version of every scenario file (5.4 to 7.0).
    let files: Vec<PathBuf> = ["agent", "sender"]
        .iter()
        .flat_map(|d| {
            walk(&support::root().join("scenarios").join(d))
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        })
        .collect();
    assert!(
        files.len() >= 11,
        "expected the agent and sender suites, found {} files",
        files.len()
    );
    let runs: usize = files.iter().map(|f| versions_of(f).len()).sum();
    assert_eq!(r.scenarios.len(), runs, "{}", support::describe(&r));
    for v in ["5.4", "6.0", "6.4", "7.0"] {
        assert!(
            r.scenarios.iter().any(|s| s.version == v),
            "no agent/sender scenario ran at {v}"
        );
    }
    let bad: Vec<_> = r
        .scenarios
        .iter()
        .filter(|s| s.outcome != Outcome::Passed)
        .collect();
    assert!(bad.is_empty(), "not all passed:\n{}", support::describe(&r));
    assert_eq!(r.exit_code(), 0);
}

/// The versions a scenario file runs at: its list, or the catalog versions its
/// condition (`versions: ">=5.4"`) matches.
fn versions_of(file: &Path) -> Vec<String> {
    let l = zbx_conform::scenario::load_file(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let known = support::catalog().versions(&l.scenario.family);
    l.scenario.versions.value.resolve(&known)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Every fault of every agent-protocol reference peer is caught by the check kind it
/// should break. (Under `others: skip` an undecodable frame from an active agent is
/// skipped like any other connection, so `bad-frame` shows up there as a timeout.)
#[rstest::rstest]
// agent-passive (the harness plays the server)
#[case("agent/passive/ping.yaml", "wrong-response", CheckKind::Match, "")]
#[case("agent/passive/ping.yaml", "no-reply", CheckKind::Timeout, "")]
#[case("agent/passive/ping.yaml", "extra-bytes", CheckKind::Frame, "")]
#[case("agent/passive/ping.yaml", "no-close", CheckKind::Close, "")]
#[case("agent/passive/version.yaml", "bad-frame", CheckKind::Frame, "")]
#[case(
    "agent/passive/unsupported.yaml",
    "missing-fields",
    CheckKind::Schema,
    ""
)]
#[case("agent/passive/unsupported.yaml", "no-nul", CheckKind::Kind, "")]
// agent-active (the harness plays the server trapper)
#[case(
    "agent/active/checks-and-data.yaml",
    "missing-fields",
    CheckKind::Schema,
    ""
)]
#[case(
    "agent/active/checks-and-data.yaml",
    "wrong-types",
    CheckKind::Schema,
    ""
)]
#[case("agent/active/checks-itemid.yaml", "extra-bytes", CheckKind::Frame, "")]
#[case("agent/active/checks-itemid.yaml", "bad-frame", CheckKind::Timeout, "")]
#[case(
    "agent/active/checks-and-data.yaml",
    "no-reply",
    CheckKind::Timeout,
    ""
)]
// 7.0 steps only (at 5.4/6.0 these faults leave the plain-text steps intact):
// JSON passive checks, heartbeats.
#[case("agent/passive/ping.yaml", "missing-fields", CheckKind::Schema, "7.0")]
#[case("agent/passive/ping.yaml", "wrong-types", CheckKind::Schema, "7.0")]
#[case("agent/passive/version.yaml", "no-json", CheckKind::Kind, "7.0")]
#[case("agent/passive/unsupported.yaml", "no-json", CheckKind::Kind, "7.0")]
#[case(
    "agent/passive/json-requests.yaml",
    "wrong-response",
    CheckKind::Kind,
    "7.0"
)]
#[case(
    "agent/passive/json-requests.yaml",
    "missing-fields",
    CheckKind::Schema,
    "7.0"
)]
#[case("agent/active/heartbeat.yaml", "missing-fields", CheckKind::Schema, "")]
#[case("agent/active/heartbeat.yaml", "wrong-types", CheckKind::Schema, "")]
#[case(
    "agent/active/checks-itemid.yaml",
    "missing-fields",
    CheckKind::Schema,
    "7.0"
)]
// 6.4+ config_revision steps (at 5.4/6.0 the fault changes nothing, hence per version).
#[case(
    "agent/active/checks-itemid.yaml",
    "stale-revision",
    CheckKind::Match,
    "6.4"
)]
#[case(
    "agent/active/checks-itemid.yaml",
    "stale-revision",
    CheckKind::Match,
    "7.0"
)]
#[case(
    "agent/as-agent/active-checks.yaml",
    "stale-revision",
    CheckKind::Match,
    "7.0"
)]
// server-for-agents (the harness plays an active agent)
#[case(
    "agent/as-agent/active-checks.yaml",
    "wrong-response",
    CheckKind::Kind,
    ""
)]
#[case(
    "agent/as-agent/active-checks.yaml",
    "missing-fields",
    CheckKind::Schema,
    ""
)]
#[case(
    "agent/as-agent/active-checks.yaml",
    "wrong-types",
    CheckKind::Schema,
    ""
)]
#[case("agent/as-agent/agent-data.yaml", "bad-frame", CheckKind::Frame, "")]
#[case("agent/as-agent/agent-data.yaml", "no-close", CheckKind::Close, "")]
// server-for-agents (the harness plays zabbix_sender)
#[case("sender/data.yaml", "wrong-response", CheckKind::Match, "")]
#[case("sender/data.yaml", "missing-fields", CheckKind::Schema, "")]
#[case("sender/data.yaml", "wrong-types", CheckKind::Schema, "")]
#[case("sender/data.yaml", "no-close", CheckKind::Close, "")]
#[case("sender/invalid-json.yaml", "extra-bytes", CheckKind::Frame, "")]
#[case("sender/unknown-host.yaml", "no-reply", CheckKind::Timeout, "")]
fn fault_is_caught(
    #[case] scenario: &str,
    #[case] fault: &str,
    #[case] check: CheckKind,
    #[case] version: &str,
) {
    let root = support::root();
    let r = support::run_opts(&zbx_conform::runner::RunOptions {
        paths: vec![root.join("scenarios").join(scenario)],
        fault: Some(fault.to_string()),
        versions: if version.is_empty() {
            vec![]
        } else {
            vec![version.to_string()]
        },
        jobs: 8,
        timeout: Duration::from_secs(5),
        ..zbx_conform::runner::RunOptions::default()
    });
    support::assert_all_failed_with(
        &r,
        &format!("{scenario} [{version}] with fault {fault}"),
        check,
    );
}

/// Every fault an agent-protocol peer implements appears in the table above at least
/// once, so a new fault cannot be added without showing what catches it.
#[test]
fn every_agent_fault_is_exercised() {
    let table = include_str!("agent_selftest.rs");
    for peer in ["agent-passive", "agent-active", "server-for-agents"] {
        for fault in zbx_conform::reference::faults_for(peer) {
            assert!(
                table.contains(&format!("\"{fault}\", CheckKind::"))
                    || table.contains(&format!("\"{fault}\",\n    CheckKind::")),
                "fault {fault} of {peer} has no self-test case"
            );
        }
        assert!(
            !zbx_conform::reference::faults_for(peer).is_empty(),
            "{peer}"
        );
    }
}

/// When the trapper reports failed values, the report must show which values were sent:
/// the failing check names the counts, and the scenario's transcript (JUnit
/// `<system-out>`) holds the batch with every host, key and value.
#[test]
fn failed_values_are_reported_with_the_values_sent() {
    let r = support::run(
        &["scenarios/sender/data.yaml"],
        Some("wrong-response"),
        Duration::from_secs(5),
    );
    assert!(!r.scenarios.is_empty());
    let fixture = std::fs::read_to_string(
        support::root().join("fixtures/sender/6.0/sender.data.request.json"),
    )
    .expect("fixture");
    let batch: serde_json::Value = serde_json::from_str(&fixture).expect("fixture JSON");
    let values: Vec<&str> = batch["data"]
        .as_array()
        .expect("data rows")
        .iter()
        .filter_map(|row| row["value"].as_str())
        .collect();
    assert!(values.len() >= 2);
    for s in &r.scenarios {
        assert_eq!(s.outcome, Outcome::Failed, "{}", support::describe(&r));
        let (_, f) = s
            .failures()
            .find(|(_, f)| f.check == CheckKind::Match && f.path.as_deref() == Some("/info"))
            .unwrap_or_else(|| panic!("a match failure on /info:\n{}", support::describe(&r)));
        assert!(f.detail.contains("failed: 2"), "{}", f.detail);
        let sent: Vec<&str> = s
            .transcript
            .iter()
            .filter(|e| {
                e.direction == Direction::Sent && e.kind.as_deref() == Some("sender.data.request")
            })
            .map(|e| e.body.as_str())
            .collect();
        assert_eq!(sent.len(), 1, "one batch sent");
        for v in &values {
            assert!(
                sent[0].contains(&format!("\"value\":\"{v}\"")),
                "{v} not in {}",
                sent[0]
            );
        }
        assert!(sent[0].contains("\"host\":\"agent-01\""), "{}", sent[0]);
    }
}

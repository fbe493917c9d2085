//! The peer-side robustness suite (`scenarios/robustness/`): it passes against the
//! reference passive proxy, which reacts to malformed frames like Zabbix 6.0.14
//! (protocol.md §1.4, §1.7), and it fails — with the right check kind — against
//! reference peers broken on purpose.

mod support;

use std::time::Duration;
use zbx_conform::runner::{CheckKind, Outcome};

#[test]
fn robustness_suite_passes_against_the_reference_passive_proxy() {
    let r = support::run(&["scenarios/robustness"], None, Duration::from_secs(3));
    // 12 scenarios × every server-proxy version (each says `versions: ">=5.4"`).
    assert!(
        r.scenarios.len() >= 12 * versions(),
        "{}",
        support::describe(&r)
    );
    assert!(
        r.scenarios.iter().all(|s| s.outcome == Outcome::Passed),
        "not all passed:\n{}",
        support::describe(&r)
    );
}

/// How many versions every robustness scenario runs at: all the catalog knows of
/// server-proxy.
fn versions() -> usize {
    support::catalog().versions("server-proxy").len()
}

/// Every scenario in `files` fails, each with at least one failure of `check` in `step`.
fn assert_caught(files: &[&str], fault: &str, check: CheckKind, step: &str) {
    let paths: Vec<String> = files
        .iter()
        .map(|f| format!("scenarios/robustness/{f}"))
        .collect();
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let r = support::run(&refs, Some(fault), Duration::from_secs(3));
    assert_eq!(
        r.scenarios.len(),
        files.len() * versions(),
        "{}",
        support::describe(&r)
    );
    for s in &r.scenarios {
        assert_eq!(
            s.outcome,
            Outcome::Failed,
            "{fault}: {}",
            support::describe(&r)
        );
        assert!(
            s.failures()
                .any(|(st, f)| f.check == check && st.index == step),
            "{fault}: {} has no [{}] failure in step {step}:\n{}",
            s.test_name(),
            check.as_str(),
            support::describe(&r)
        );
    }
}

/// A peer that answers where Zabbix closes silently is caught by the close checks.
#[test]
fn replying_to_what_must_be_ignored_is_caught() {
    assert_caught(
        &[
            "unknown-request.yaml",
            "json-without-request.yaml",
            "not-json.yaml",
        ],
        "replies-unknown",
        CheckKind::Close,
        "1",
    );
}

/// A peer that stops serving is caught by the "still served" step at the end of every
/// scenario (and by the invalid-JSON answer).
#[test]
fn a_peer_that_stops_answering_is_caught() {
    assert_caught(
        &["bad-magic.yaml", "length-huge.yaml"],
        "no-reply",
        CheckKind::Timeout,
        "3",
    );
    assert_caught(&["invalid-json.yaml"], "no-reply", CheckKind::Timeout, "1");
}

/// A peer whose valid answers are broken frames is caught by the final step's frame check.
#[test]
fn broken_frames_in_the_served_request_are_caught() {
    assert_caught(&["bad-flags.yaml"], "bad-frame", CheckKind::Frame, "4");
}

/// The server-side robustness scenarios fail against a broken server trapper: one that
/// answers what it must ignore, one that stops answering, one that sends bad frames.
#[rstest::rstest]
#[case("replies-unknown", CheckKind::Close)]
#[case("no-reply", CheckKind::Timeout)]
#[case("bad-frame", CheckKind::Frame)]
fn server_robustness_faults_are_caught(#[case] fault: &str, #[case] check: CheckKind) {
    let r = support::run(
        &["scenarios/robustness-server"],
        Some(fault),
        Duration::from_secs(3),
    );
    assert!(
        r.scenarios
            .iter()
            .any(|s| s.failures().any(|(_, f)| f.check == check)),
        "{fault} should fail a `{}` check:\n{}",
        check.as_str(),
        support::describe(&r)
    );
    assert_eq!(r.exit_code(), 1, "{}", support::describe(&r));
}

/// A receiver that accepts malformed frames (and answers the JSON inside) fails the
/// frame-level robustness scenarios: the peer must close without a reply, or stay silent.
#[rstest::rstest]
#[case("scenarios/robustness/bad-magic.yaml", CheckKind::Close)]
#[case("scenarios/robustness/bad-flags.yaml", CheckKind::Close)]
#[case("scenarios/robustness/length-shorter-than-data.yaml", CheckKind::Close)]
#[case(
    "scenarios/robustness/length-longer-than-data.yaml",
    CheckKind::Silence
)]
#[case("scenarios/robustness/length-huge.yaml", CheckKind::Close)]
#[case("scenarios/robustness-server/malformed-frames.yaml", CheckKind::Close)]
fn lenient_frame_handling_is_caught(#[case] scenario: &str, #[case] check: CheckKind) {
    let r = support::run(&[scenario], Some("lenient-frames"), Duration::from_secs(3));
    support::assert_all_failed_with(&r, &format!("{scenario} with lenient-frames"), check);
}

//! Terminal report: scenario lines, failure summary and the counts line.

use std::path::PathBuf;
use std::time::Duration;
use zbx_conform::report::terminal::{
    counts_line, scenario_line, scenario_line_styled, summary, summary_styled, truncate, Style,
};
use zbx_conform::runner::result::*;

fn scenario(name: &str, outcome: Outcome, steps: Vec<StepResult>) -> ScenarioResult {
    ScenarioResult {
        name: name.into(),
        file: PathBuf::from("scenarios/server-proxy/passive.yaml"),
        family: "server-proxy".into(),
        version: "6.0".into(),
        plays: "server".into(),
        tags: vec![],
        peer: "127.0.0.1:10051".into(),
        outcome,
        steps,
        transcript: vec![],
        peer_log: None,
        properties: Default::default(),
        started: Duration::ZERO,
        duration: Duration::from_millis(1234),
    }
}

fn failing_step(received: String) -> StepResult {
    StepResult {
        requirement: Vec::new(),
        sent: None,
        index: "3".into(),
        action: "exchange".into(),
        name: Some("push config".into()),
        line: 14,
        outcome: Outcome::Failed,
        failures: vec![
            CheckFailure {
                check: CheckKind::Match,
                expected: r#"/response == "success""#.into(),
                detail: r#"got "failed""#.into(),
                path: Some("/response".into()),
                received: Some(received),
            },
            CheckFailure {
                check: CheckKind::Schema,
                expected: "schema proxy-config.response 6.0".into(),
                detail: "\"version\" is a required property".into(),
                path: Some("/version".into()),
                received: None,
            },
        ],
        duration: Duration::from_millis(20),
    }
}

fn passing_step() -> StepResult {
    StepResult {
        requirement: Vec::new(),
        sent: None,
        index: "1".into(),
        action: "exchange".into(),
        name: None,
        line: 8,
        outcome: Outcome::Passed,
        failures: vec![],
        duration: Duration::from_millis(5),
    }
}

fn run() -> RunResult {
    RunResult {
        scenarios: vec![
            scenario("ok one", Outcome::Passed, vec![passing_step()]),
            scenario("ok two", Outcome::Passed, vec![]),
            scenario(
                "config rejected",
                Outcome::Failed,
                vec![
                    passing_step(),
                    failing_step(
                        r#"{"response":"failed","info":"x","tls_psk":"hunter2hunter2"}"#.into(),
                    ),
                ],
            ),
            scenario(
                "bad fixture",
                Outcome::Error("fixture not found: x.json".into()),
                vec![],
            ),
            scenario(
                "no peer",
                Outcome::Unreachable("connection refused".into()),
                vec![],
            ),
            scenario(
                "only 7.0",
                Outcome::Skipped("when: version >= 7.0".into()),
                vec![],
            ),
        ],
        duration: Duration::from_millis(2500),
        started_at: None,
        memory: None,
    }
}

#[test]
fn scenario_lines() {
    let r = run();
    let line = scenario_line(&r.scenarios[0]);
    assert!(line.starts_with("PASS "), "{line}");
    assert!(line.contains("ok one [6.0]"), "{line}");
    assert!(line.contains("1.23s"), "{line}");
    assert!(
        line.contains("scenarios/server-proxy/passive.yaml"),
        "{line}"
    );
    assert!(scenario_line(&r.scenarios[2]).starts_with("FAIL "));
    let err = scenario_line(&r.scenarios[3]);
    assert!(
        err.starts_with("ERROR ") && err.contains("fixture not found"),
        "{err}"
    );
    assert!(scenario_line(&r.scenarios[4]).starts_with("UNREACH "));
    assert!(scenario_line(&r.scenarios[5]).starts_with("SKIP "));
    assert!(!line.contains('\x1b'), "plain output has no escape codes");
    let colored = scenario_line_styled(&r.scenarios[2], Style::Color);
    assert!(colored.contains("\x1b[31m"), "{colored:?}");
}

#[test]
fn summary_lists_failures_with_context() {
    let s = summary(&run());
    assert!(s.contains("FAIL config rejected [6.0]"), "{s}");
    assert!(
        s.contains(r#"step 3 (exchange "push config") at scenarios/server-proxy/passive.yaml:14"#),
        "{s}"
    );
    assert!(
        s.contains(r#"match: expected /response == "success""#),
        "{s}"
    );
    assert!(s.contains("\n      got \"failed\"\n"), "{s}");
    assert!(s.contains("at: /response"), "{s}");
    assert!(
        s.contains("schema: expected schema proxy-config.response 6.0"),
        "{s}"
    );
    assert!(s.contains("at: /version"), "{s}");
    assert!(s.contains(r#"received: {"response":"failed""#), "{s}");
    assert!(
        s.contains("ERROR bad fixture [6.0]") && s.contains("fixture not found"),
        "{s}"
    );
    assert!(
        s.contains("UNREACH no peer [6.0]") && s.contains("connection refused"),
        "{s}"
    );
    // Passing and skipped scenarios have no block; the passing step is not listed.
    assert!(!s.contains("ok one"), "{s}");
    assert!(!s.contains("only 7.0"), "{s}");
    assert!(!s.contains("step 1 "), "{s}");
    // Belt and braces: a secret in a received body is redacted.
    assert!(!s.contains("hunter2"), "{s}");
}

#[test]
fn print_summary_for_review() {
    // Visible with --nocapture; keeps the layout easy to eyeball.
    println!(
        "{}\n{}",
        scenario_line(&run().scenarios[2]),
        summary(&run())
    );
}

#[test]
fn counts_line_is_last_and_exact() {
    let s = summary(&run());
    let last = s.lines().last().expect("a last line");
    assert_eq!(
        last,
        "2 passed, 1 failed, 1 errors, 1 unreachable, 1 skipped in 2.50s"
    );
    assert_eq!(counts_line(&run()), last);
}

#[test]
fn counts_line_omits_zero_extras() {
    let r = RunResult {
        scenarios: vec![scenario("ok", Outcome::Passed, vec![])],
        duration: Duration::from_millis(40),
        started_at: None,
        memory: None,
    };
    assert_eq!(summary(&r), "1 passed, 0 failed in 40ms");
}

#[test]
fn long_received_is_truncated() {
    let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(5000));
    let r = RunResult {
        scenarios: vec![scenario("big", Outcome::Failed, vec![failing_step(big)])],
        duration: Duration::from_secs(1),
        started_at: None,
        memory: None,
    };
    let s = summary(&r);
    let line = s
        .lines()
        .find(|l| l.contains("received:"))
        .expect("received line");
    assert!(line.len() < 1700, "line has {} bytes", line.len());
    assert!(line.contains("more bytes)"), "{line}");
}

#[test]
fn colored_summary_keeps_counts_line_plain() {
    let s = summary_styled(&run(), Style::Color);
    assert!(s.contains('\x1b'));
    assert!(!s.lines().last().unwrap_or("").contains('\x1b'));
}

#[test]
fn truncate_respects_char_boundaries() {
    assert_eq!(truncate("ééé", 2), "éé… (2 more bytes)");
    assert_eq!(truncate("abc", 3), "abc");
}

/// The failure details come by file, then version (10.0 after 7.0), whatever order the
/// scenarios finished in; and `InOrder` releases live lines in that order as soon as
/// the ones before them are in.
#[test]
fn results_are_shown_by_file_then_version() {
    use zbx_conform::report::ordered::InOrder;
    let at = |file: &str, version: &str| {
        let mut s = scenario("s", Outcome::Failed, vec![]);
        s.file = PathBuf::from(file);
        s.version = version.into();
        s
    };
    let finished = vec![
        at("b.yaml", "6.0"),
        at("a.yaml", "10.0"),
        at("a.yaml", "7.0"),
        at("a.yaml", "6.0"),
    ];
    let r = RunResult {
        scenarios: finished.clone(),
        started_at: None,
        duration: Duration::ZERO,
        memory: None,
    };
    let headings: Vec<String> = summary(&r)
        .lines()
        .filter(|l| l.starts_with("FAIL"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        headings,
        [
            "FAIL s [6.0]  (a.yaml)",
            "FAIL s [7.0]  (a.yaml)",
            "FAIL s [10.0]  (a.yaml)",
            "FAIL s [6.0]  (b.yaml)"
        ]
    );

    let mut order = InOrder::new(finished.iter().map(|s| (s.file.clone(), s.version.clone())));
    let mut released = Vec::new();
    for s in &finished {
        let got = order.push(s, format!("{} {}", s.file.display(), s.version));
        released.push(got);
    }
    assert_eq!(
        released,
        [
            vec![],
            vec![],
            vec![],
            vec!["a.yaml 6.0", "a.yaml 7.0", "a.yaml 10.0", "b.yaml 6.0"]
        ]
    );
    assert!(order.rest().is_empty());
    // A result nobody expected is shown at once, not lost.
    assert_eq!(order.push(&at("c.yaml", "6.0"), "c".into()), ["c"]);
}

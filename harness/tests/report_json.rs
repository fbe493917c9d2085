//! JSON report: round-trips as JSON and never carries a secret.

use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use zbx_conform::report::json::{to_string, write};
use zbx_conform::runner::result::*;

const SECRET: &str = "tls-psk-SECRET-0042";

fn run() -> RunResult {
    RunResult {
        scenarios: vec![ScenarioResult {
            name: "psk".into(),
            file: PathBuf::from("scenarios/x.yaml"),
            family: "server-proxy".into(),
            version: "6.0".into(),
            plays: "server".into(),
            tags: vec!["smoke".into()],
            peer: "127.0.0.1:10051".into(),
            outcome: Outcome::Failed,
            steps: vec![StepResult {
                requirement: Vec::new(),
                sent: None,
                index: "1".into(),
                action: "exchange".into(),
                name: None,
                line: 3,
                outcome: Outcome::Failed,
                failures: vec![CheckFailure {
                    check: CheckKind::Match,
                    expected: "/response == \"success\"".into(),
                    detail: "got \"failed\"".into(),
                    path: None,
                    received: Some(format!(
                        r#"{{"hosts":{{"fields":["hostid","tls_psk"],"data":[[1,"{SECRET}"]]}}}}"#
                    )),
                }],
                duration: Duration::from_millis(3),
            }],
            transcript: vec![TranscriptEntry {
                at: Duration::from_millis(1),
                direction: Direction::Sent,
                kind: None,
                flags: Some(1),
                body: format!(r#"{{"tls_psk":"{SECRET}"}}"#),
                step: None,
            }],
            peer_log: Some(format!("password={SECRET}")),
            properties: Default::default(),
            started: Duration::ZERO,
            duration: Duration::from_millis(10),
        }],
        duration: Duration::from_millis(10),
        started_at: None,
        memory: None,
    }
}

#[test]
fn json_report_is_json_and_redacted() {
    let text = to_string(&run()).expect("serialize");
    let v: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(v["scenarios"][0]["outcome"]["status"], "failed");
    assert_eq!(
        v["scenarios"][0]["steps"][0]["failures"][0]["check"],
        "match"
    );
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("[redacted]"));
}

#[test]
fn a_transcript_entry_names_its_step_only_when_it_has_one() {
    let mut r = run();
    let entry = |r: &RunResult| {
        let v: Value = serde_json::from_str(&to_string(r).expect("serialize")).expect("JSON");
        v["scenarios"][0]["transcript"][0].clone()
    };
    // Reports of older harness versions had no `step`: an entry outside steps has none.
    assert!(entry(&r).get("step").is_none(), "{}", entry(&r));
    r.scenarios[0].transcript[0].step = Some("4.2#1".into());
    assert_eq!(entry(&r)["step"], "4.2#1");
}

#[test]
fn write_creates_parent_dirs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out/report.json");
    write(&run(), &path).expect("write");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.ends_with("}\n"));
    assert!(!text.contains(SECRET));
}

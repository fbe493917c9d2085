//! Coverage matrix: which kinds a run exchanged, with a real or a reference peer, and
//! which are vouched for by fixtures only.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use zbx_conform::report::matrix::{self, Coverage, Exercised};
use zbx_conform::runner::result::*;

fn scenario(family: &str, version: &str, peer: &str, kinds: &[&str]) -> ScenarioResult {
    ScenarioResult {
        name: "s".into(),
        file: PathBuf::from("scenarios/s.yaml"),
        family: family.into(),
        version: version.into(),
        plays: "server".into(),
        tags: vec![],
        peer: peer.into(),
        outcome: Outcome::Passed,
        steps: vec![],
        transcript: kinds
            .iter()
            .map(|k| TranscriptEntry {
                at: Duration::ZERO,
                direction: Direction::Received,
                kind: Some(k.to_string()),
                flags: Some(1),
                body: "{}".into(),
                step: None,
            })
            .chain([TranscriptEntry {
                at: Duration::ZERO,
                direction: Direction::Note,
                kind: Some("passive.proxy-tasks.request".into()),
                flags: None,
                body: "a note is not a message".into(),
                step: None,
            }])
            .collect(),
        peer_log: None,
        properties: Default::default(),
        started: Duration::ZERO,
        duration: Duration::ZERO,
    }
}

fn cell(m: &[matrix::FamilyMatrix], family: &str, kind: &str, version: &str) -> Coverage {
    let fam = m.iter().find(|f| f.family == family).expect("family");
    let col = fam
        .versions
        .iter()
        .position(|v| v == version)
        .expect("version");
    fam.rows
        .iter()
        .find(|r| r.kind == kind)
        .expect("kind")
        .cells[col]
}

#[test]
fn real_beats_reference_and_untouched_kinds_fall_back_to_fixtures() {
    let run = RunResult {
        scenarios: vec![
            scenario(
                "server-proxy",
                "6.0",
                "reference:passive-proxy",
                &[
                    "passive.proxy-data.response",
                    "passive.proxy-config.response",
                ],
            ),
            scenario(
                "server-proxy",
                "6.0",
                "127.0.0.1:10051",
                &["passive.proxy-data.response"],
            ),
            scenario(
                "server-proxy",
                "7.0",
                "127.0.0.1:10051",
                &["passive.proxy-config.revision"],
            ),
        ],
        duration: Duration::ZERO,
        started_at: None,
        memory: None,
    };
    let exercised = matrix::exercised_in_run(&run);
    assert!(
        !exercised
            .iter()
            .any(|e| e.kind == "passive.proxy-tasks.request"),
        "notes are not exchanged messages: {exercised:?}"
    );
    let families = matrix::families_in(support::catalog(), &exercised);
    assert_eq!(families, ["server-proxy"]);
    let m = matrix::build(support::catalog(), &exercised, &families);
    let c = |k, v| cell(&m, "server-proxy", k, v);
    assert_eq!(c("passive.proxy-data.response", "6.0"), Coverage::Real);
    assert_eq!(
        c("passive.proxy-config.response", "6.0"),
        Coverage::Reference
    );
    assert_eq!(c("passive.proxy-config.revision", "7.0"), Coverage::Real);
    assert_eq!(c("passive.proxy-data.response", "7.0"), Coverage::Fixture);
    // proxy config revisions exist from 6.4 on only.
    assert_eq!(c("passive.proxy-config.revision", "6.0"), Coverage::Absent);

    let text = matrix::render(&m);
    let row = |kind: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(kind))
            .unwrap_or_else(|| panic!("no row {kind} in\n{text}"))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("[server-proxy]"),
        ["5.4", "6.0", "6.4", "7.0", "7.2", "7.4"]
    );
    // 6.4, 7.2 and 7.4 were never run against a real peer: `?` (documented, not
    // measured).
    assert_eq!(
        row("passive.proxy-config.revision"),
        ["-", "-", "fixture?", "REAL", "fixture?", "fixture?"]
    );
    // 5.4 and 6.4 are marked unverified in the catalog: `?`, explained in the legend.
    assert_eq!(
        row("passive.proxy-data.response"),
        ["fixture?", "REAL", "fixture?", "fixture", "fixture?", "fixture?"]
    );
    assert!(
        text.contains("  ?        after a cell: the catalog marks"),
        "{text}"
    );
    // Section rows follow their kind; these bodies (`{}`) carried none, so the sections
    // fall back to what the stored fixture holds.
    let sections: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("passive.proxy-data.response"))
        .skip(1)
        .take_while(|l| l.starts_with("  › "))
        .collect();
    assert_eq!(sections.len(), 8, "{text}");
    assert!(sections[0].starts_with("  › interface availability"));
    let host_data = sections
        .iter()
        .find(|l| l.contains("host data"))
        .expect("host data row");
    assert_eq!(
        host_data.split_whitespace().skip(3).collect::<Vec<_>>(),
        ["-", "-", "fixture?", "fixture", "fixture?", "fixture?"]
    );
    let kinds_60 = support::catalog()
        .rows(Some("server-proxy"), Some("6.0"))
        .len();
    let kinds_70 = support::catalog()
        .rows(Some("server-proxy"), Some("7.0"))
        .len();
    assert_eq!(
        row("real/kinds"),
        [
            "0/15".to_string(),
            format!("1/{kinds_60}"),
            "0/17".to_string(),
            format!("1/{kinds_70}"),
            "0/17".to_string(),
            "0/17".to_string(),
        ]
    );
    assert!(
        text.lines().all(|l| l == l.trim_end()),
        "no trailing spaces:\n{text}"
    );
}

#[test]
fn json_reports_give_the_same_cells_as_the_run_they_describe() {
    let run = support::run(&["scenarios/sender"], None, Duration::from_secs(5));
    assert!(run.scenarios.iter().all(|s| s.outcome.is_pass()));
    let from_run = matrix::exercised_in_run(&run);
    assert!(
        from_run
            .iter()
            .any(|e| e.kind == "sender.data.request" && !e.real),
        "{from_run:?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&zbx_conform::report::json::to_string(&run).unwrap()).unwrap();
    let mut from_json = matrix::exercised_in_json_report(&json).unwrap();
    from_json.sort();
    assert_eq!(from_json, from_run);
    assert!(
        matrix::exercised_in_json_report(&serde_json::json!({"x": 1}))
            .unwrap_err()
            .contains("no `scenarios` array")
    );
    assert!(
        matrix::exercised_in_json_report(&serde_json::json!({"scenarios": [{"family": 1}]}))
            .unwrap_err()
            .contains("scenarios[0]: no `family` string")
    );
}

#[test]
fn an_unknown_kind_or_family_in_a_report_does_not_invent_rows() {
    let exercised = vec![Exercised {
        family: "nope".into(),
        version: "6.0".into(),
        kind: "made.up".into(),
        real: true,
        section: None,
    }];
    assert!(matrix::families_in(support::catalog(), &exercised).is_empty());
    let m = matrix::build(support::catalog(), &exercised, &["sender".into()]);
    assert!(m[0].rows.iter().all(|r| r.kind != "made.up"));
    assert!(m[0]
        .rows
        .iter()
        .flat_map(|r| &r.cells)
        .all(|c| *c != Coverage::Real));
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zbx-conform"));
    c.current_dir(support::root());
    c
}

#[test]
fn run_prints_the_matrix_before_the_counts_line_and_matrix_merges_reports() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("sender.json");
    let out = bin()
        .args(["run", "scenarios/sender", "--version", "6.0", "--json"])
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    let counts = lines.last().unwrap();
    assert!(counts.contains(" passed, 0 failed"), "{stdout}");
    let header = lines
        .iter()
        .position(|l| l.starts_with("[sender]"))
        .unwrap_or_else(|| panic!("no matrix in\n{stdout}"));
    // Only the version the run selected: the others could not have been exercised.
    assert_eq!(
        lines[header].split_whitespace().collect::<Vec<_>>(),
        ["[sender]", "6.0"]
    );
    assert!(
        !stdout.contains("[server-proxy]"),
        "only families the run touched"
    );

    let quiet = bin()
        .args(["run", "scenarios/sender", "--version", "6.0", "--no-matrix"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&quiet.stdout).contains("[sender]"));

    let merged = bin().arg("matrix").arg(&report).output().unwrap();
    let text = String::from_utf8_lossy(&merged.stdout);
    assert_eq!(merged.status.code(), Some(0));
    let data_row = text
        .lines()
        .find(|l| l.starts_with("sender.data.request"))
        .unwrap();
    assert_eq!(
        data_row.split_whitespace().collect::<Vec<_>>(),
        [
            "sender.data.request",
            "fixture?",
            "ref",
            "fixture?",
            "fixture",
            "fixture?",
            "fixture?"
        ]
    );

    let json = bin()
        .args(["matrix", "--format", "json", "--family", "agent"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["family"], "agent");
    assert!(v[0]["rows"][0]["cells"].is_array());
}

#[test]
fn matrix_rejects_bad_reports_and_unknown_families_with_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let out = bin().arg("matrix").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json"), "{err}");

    let missing = bin()
        .args(["matrix", "/nonexistent/report.json"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));

    let fam = bin().args(["matrix", "--family", "nope"]).output().unwrap();
    assert_eq!(fam.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&fam.stderr).contains("--family nope"));
}

#[test]
fn mock_plugin_records_count_as_real_agent_messages() {
    let record = r#"{"version":"7.0","initial":true,"kind":"register.request","problems":[],"message":{}}
{"version":"7.0","initial":false,"kind":null,"problems":["unknown"],"message":{}}

{"version":"7.0","initial":false,"kind":"export.request","problems":[],"message":{}}
"#;
    let e = matrix::exercised_in_plugin_record(record).unwrap();
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e
        .iter()
        .all(|x| x.real && x.family == "plugin" && x.version == "7.0"));
    let m = matrix::build(support::catalog(), &e, &["plugin".into()]);
    assert_eq!(cell(&m, "plugin", "export.request", "7.0"), Coverage::Real);
    assert_eq!(
        cell(&m, "plugin", "export.request", "6.0"),
        Coverage::Fixture
    );

    let bad = matrix::exercised_in_plugin_record("{\"kind\":\"x\"}\nnot json\n").unwrap_err();
    assert!(bad.contains("line 1: no `version`"), "{bad}");
    let bad = matrix::exercised_in_plugin_record("\nnot json\n").unwrap_err();
    assert!(bad.starts_with("line 2:"), "{bad}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent2.jsonl");
    std::fs::write(&path, record).unwrap();
    let out = bin().arg("matrix").arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("register.request"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        [
            "register.request",
            "fixture",
            "fixture?",
            "REAL",
            "fixture?",
            "fixture?"
        ]
    );
}

/// A section counts where a message carried it: a real peer's `discovery data` makes
/// that row REAL, an empty array does not, and a body cut in the report still counts by
/// the members it names.
#[test]
fn sections_are_counted_from_message_bodies() {
    let mut s = scenario("server-proxy", "7.0", "127.0.0.1:10051", &[]);
    let body = |text: &str| TranscriptEntry {
        at: Duration::ZERO,
        direction: Direction::Received,
        kind: Some("passive.proxy-data.response".into()),
        flags: Some(3),
        body: text.into(),
        step: None,
    };
    s.transcript = vec![
        body(
            r#"{"session":"s","discovery data":[{"drule":1}],"auto registration":[],"version":"7.0.22"}"#,
        ),
        body(
            r#"{"session":"s","history data":[{"id":1 … (truncated, 700000 bytes in all; members: session, history data, more, version)"#,
        ),
    ];
    let run = RunResult {
        scenarios: vec![s],
        duration: Duration::ZERO,
        started_at: None,
        memory: None,
    };
    let m = matrix::build(
        support::catalog(),
        &matrix::exercised_in_run(&run),
        &["server-proxy".into()],
    );
    let fam = &m[0];
    let col = fam.versions.iter().position(|v| v == "7.0").expect("7.0");
    let section = |name: &str| {
        fam.rows
            .iter()
            .find(|r| r.kind == "passive.proxy-data.response" && r.section.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}"))
            .cells[col]
    };
    assert_eq!(section("discovery data"), Coverage::Real);
    assert_eq!(section("more"), Coverage::Real);
    assert_eq!(section("history data"), Coverage::Real);
    assert_ne!(section("auto registration"), Coverage::Real);
    assert_ne!(section("proxy_delay"), Coverage::Real);
}

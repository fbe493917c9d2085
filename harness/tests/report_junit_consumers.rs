//! The JUnit report as CI tools read it: valid against the JUnit schema Jenkins' xUnit
//! plugin publishes (tests/data/junit/junit-10.xsd, checked with `xmllint --schema`),
//! and read back by a real consumer (Python's `junitparser`). Without those tools the
//! tests skip with a message — except under CI=true, where a missing tool is a failure
//! (`ci/install-report-tools.sh` installs them).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};
use support::{root, zbx};
use zbx_conform::runner::result::*;

fn xsd() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/junit/junit-10.xsd")
}

/// The Python that has `junitparser`: `$ZBXC_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("ZBXC_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether `cmd` runs and exits 0; if not, SKIPPED (or a panic under CI=true).
fn have(cmd: &[&str], what: &str) -> bool {
    let ok = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "{what} is missing and CI=true: run `bash ci/install-report-tools.sh` first"
        );
        eprintln!("SKIPPED: {what} is missing (run `bash ci/install-report-tools.sh`)");
    }
    ok
}

fn have_xmllint() -> bool {
    have(
        &["xmllint", "--version"],
        "xmllint (Debian package libxml2-utils)",
    )
}

fn have_junitparser() -> bool {
    have(
        &[&python(), "-c", "import junitparser"],
        "Python's junitparser (set ZBXC_PYTHON to a Python that has it)",
    )
}

/// `xmllint --schema junit-10.xsd FILE`: Ok, or what it said.
fn validate(file: &Path) -> Result<(), String> {
    let o = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(xsd())
        .arg(file)
        .output()
        .map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// What junitparser reads from FILE, one line per suite and per case, as JSON.
const READ_BACK: &str = r#"
import json, sys
from junitparser import JUnitXml, Failure, Error, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
out = []
for suite in xml:
    cases = []
    for case in suite:
        kinds = [type(r).__name__ for r in case.result]
        cases.append({"name": case.name, "classname": case.classname, "time": case.time,
                      "result": kinds, "message": [r.message for r in case.result],
                      "system_out": case.system_out, "system_err": case.system_err})
    out.append({"name": suite.name, "tests": suite.tests, "failures": suite.failures,
                "errors": suite.errors, "skipped": suite.skipped, "time": suite.time,
                "timestamp": suite.timestamp, "hostname": suite.hostname,
                "properties": {p.name: p.value for p in suite.properties()},
                "cases": cases})
print(json.dumps(out))
"#;

fn read_back(file: &Path) -> serde_json::Value {
    let o = Command::new(python())
        .arg("-c")
        .arg(READ_BACK)
        .arg(file)
        .output()
        .expect("python runs");
    assert!(
        o.status.success(),
        "junitparser could not read the report: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("junitparser's reading as JSON")
}

fn case(name: &str, family: &str, outcome: Outcome, started_ms: u64) -> ScenarioResult {
    let mut s = support::scenario_result(name, family, outcome);
    s.properties = [
        ("peer.version", "6.0.14"),
        ("peer.protocol", "6.0"),
        ("description", "what it checks\nover two lines"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    s.started = Duration::from_millis(started_ms);
    s
}

/// Every outcome, overlapping cases, a duplicate name, hostile text.
fn sample() -> RunResult {
    let mut failed = case("config rejected", "server-proxy", Outcome::Failed, 500);
    failed.steps = vec![StepResult {
        requirement: vec![],
        sent: None,
        index: "1".into(),
        action: "exchange".into(),
        name: Some("x]]>y <&>".into()),
        line: 3,
        outcome: Outcome::Failed,
        failures: vec![CheckFailure {
            check: CheckKind::Match,
            expected: "/response == \"success\"".into(),
            detail: "got \"failed\" \u{0}".into(),
            path: Some("/response".into()),
            received: Some("{\"response\":\"failed\"}".into()),
        }],
        duration: Duration::from_millis(7),
    }];
    failed.transcript = vec![TranscriptEntry {
        at: Duration::from_millis(3),
        direction: Direction::Received,
        kind: Some("proxy-config.response".into()),
        flags: Some(1),
        body: "ZBX_NOTSUPPORTED\0nope".into(),
        step: None,
    }];
    failed.peer_log = Some("started\n".into());
    let mut duplicate = case("config ok", "server-proxy", Outcome::Passed, 1000);
    duplicate.file = PathBuf::from("elsewhere/config-ok-copy.yaml");
    let mut other_peer = case(
        "agent down",
        "agent",
        Outcome::Unreachable("refused".into()),
        0,
    );
    other_peer.peer = "127.0.0.1:10050".into();
    RunResult {
        scenarios: vec![
            case("config ok", "server-proxy", Outcome::Passed, 0),
            failed,
            case(
                "bad fixture",
                "server-proxy",
                Outcome::Error("no such fixture".into()),
                0,
            ),
            duplicate,
            other_peer,
            case(
                "only 7.0",
                "agent",
                Outcome::Skipped("not at 6.0".into()),
                0,
            ),
        ],
        started_at: Some(UNIX_EPOCH + Duration::from_secs(1_735_689_600)),
        duration: Duration::from_secs(3),
        memory: None,
    }
}

fn written(run: &RunResult) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("junit.xml");
    zbx_conform::report::junit::write(run, &file).expect("write");
    (dir, file)
}

#[test]
fn the_report_is_valid_against_the_jenkins_junit_schema() {
    if !have_xmllint() {
        return;
    }
    let (_dir, file) = written(&sample());
    let text = std::fs::read_to_string(&file).expect("read");
    validate(&file).unwrap_or_else(|e| panic!("not valid: {e}\n{text}"));
}

#[test]
fn the_schema_check_can_fail() {
    // A testcase-level <properties> and a `file` attribute are outside the schema: the
    // check must say so, or the test above proves nothing.
    if !have_xmllint() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.xml");
    std::fs::write(
        &file,
        r#"<testsuites><testsuite name="s" tests="1" failures="0" errors="0"><testcase name="c" file="x"><properties/></testcase></testsuite></testsuites>"#,
    )
    .expect("write");
    assert!(validate(&file).is_err());
}

#[test]
fn a_real_consumer_reads_counts_times_names_and_properties() {
    if !have_junitparser() {
        return;
    }
    let (_dir, file) = written(&sample());
    let suites = read_back(&file);
    let suites = suites.as_array().expect("suites");
    assert_eq!(suites.len(), 2, "{suites:?}");
    let sp = &suites[0];
    assert_eq!(sp["name"], "server-proxy");
    assert_eq!(
        (&sp["tests"], &sp["failures"], &sp["errors"], &sp["skipped"]),
        (&4.into(), &1.into(), &1.into(), &0.into())
    );
    // Wall time: the cases run from 0 ms to 1000 + 1500 ms, not 4 × 1.5 s.
    assert_eq!(sp["time"], 2.5, "{sp}");
    assert_eq!(sp["timestamp"], "2025-01-01T00:00:00Z");
    assert!(
        sp["hostname"].as_str().is_some_and(|h| !h.is_empty()),
        "{sp}"
    );
    let props = &sp["properties"];
    assert_eq!(props["peer.address"], "127.0.0.1:10051", "{props}");
    assert_eq!(props["peer.version"], "6.0.14");
    assert_eq!(props["peer.protocol"], "6.0");
    assert_eq!(props["description"], "what it checks\nover two lines");
    assert_eq!(
        props["config rejected [6.0]: file"], "scenarios/server-proxy/config rejected.yaml",
        "a fact that differs is named per case: {props}"
    );
    let names: Vec<&str> = sp["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "config ok [6.0]",
            "config rejected [6.0]",
            "bad fixture [6.0]",
            "config ok [6.0]"
        ]
    );
    let rejected = &sp["cases"][1];
    assert_eq!(rejected["result"], serde_json::json!(["Failure"]));
    assert_eq!(rejected["classname"], "server-proxy.server");
    assert_eq!(rejected["time"], 1.5);
    assert!(
        rejected["system_out"]
            .as_str()
            .is_some_and(|o| o.contains(r"ZBX_NOTSUPPORTED\x00nope")),
        "{rejected}"
    );
    assert_eq!(rejected["system_err"], "started\n");

    let agent = &suites[1];
    assert_eq!(
        (&agent["tests"], &agent["errors"], &agent["skipped"]),
        (&2.into(), &1.into(), &1.into())
    );
    assert_eq!(agent["cases"][1]["result"], serde_json::json!(["Skipped"]));
    assert_eq!(
        agent["cases"][1]["message"],
        serde_json::json!(["not at 6.0"])
    );
    assert_eq!(
        agent["properties"]["agent down [6.0]: peer.address"],
        "127.0.0.1:10050"
    );
}

#[test]
fn duplicate_names_are_named_in_the_report() {
    let dups = zbx_conform::report::junit::duplicate_names(&sample());
    assert_eq!(dups.len(), 1, "{dups:?}");
    assert_eq!(dups[0].name, "config ok [6.0]");
    assert_eq!(
        dups[0].files,
        [
            "scenarios/server-proxy/config ok.yaml",
            "elsewhere/config-ok-copy.yaml"
        ]
    );
    let (_dir, file) = written(&sample());
    let xml = std::fs::read_to_string(&file).expect("read");
    let warning =
        "warning: 2 test cases are named \"config ok [6.0]\" (classname server-proxy.server)";
    assert!(xml.contains(warning), "{xml}");
    assert_eq!(
        xml.matches(warning).count(),
        1,
        "only in its own suite: {xml}"
    );
}

/// The standard way in: `run --junit` on a real scenario against its reference peer,
/// plus the same scenario under a second file: a valid report, and a warning on
/// stderr for the name both files give their test cases.
#[test]
fn run_writes_a_valid_report_and_warns_about_duplicate_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = root().join("scenarios/server-proxy/passive/unknown-request.yaml");
    let copy = dir.path().join("copy.yaml");
    std::fs::copy(&source, &copy).expect("copy the scenario");
    let junit = dir.path().join("junit.xml");
    let o = zbx([
        "run".as_ref(),
        source.as_os_str(),
        copy.as_os_str(),
        "--version".as_ref(),
        "6.0".as_ref(),
        "--no-matrix".as_ref(),
        "--junit".as_ref(),
        junit.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{}", support::output_text(&o));
    assert!(
        stderr.contains("warning: 2 test cases are named \"passive proxy closes silently on unknown or missing requests [6.0]\""),
        "{stderr}"
    );
    let xml = std::fs::read_to_string(&junit).expect("report written");
    assert!(
        xml.contains("skipped=\"0\"") && xml.contains("timestamp=\""),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<property name="protocol.version" value="6.0"/>"#)
            && xml.contains(r#"<property name="peer.address" value="reference:passive-proxy"#),
        "{xml}"
    );
    if have_xmllint() {
        validate(&junit).unwrap_or_else(|e| panic!("not valid: {e}\n{xml}"));
    }
}

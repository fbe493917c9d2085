//! The scenario-format features at run time, against the built-in reference peers:
//! kinds of another family (`sender:sender.data.response`) are recognised and validated
//! in that family, a fixture named after a kind is checked as that kind, `volatile:
//! { keep: [...] }` makes a snapshot compare what the family redacts, and `requirement`
//! ids reach the JUnit and JSON reports. Each test also shows the check failing.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;
use zbx_conform::runner::{CheckKind, Outcome, RunOptions, RunResult};

/// Write `text` as a scenario file in a fresh folder and run it.
fn run_text(text: &str) -> RunResult {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, text).expect("write scenario");
    support::run_opts(&RunOptions {
        paths: vec![path],
        jobs: 1,
        timeout: Duration::from_secs(10),
        ..RunOptions::default()
    })
}

/// A passive-proxy scenario at 6.0 with these steps.
fn passive_proxy(steps: &str) -> String {
    format!(
        "name: feature\nfamily: server-proxy\nversions: [\"6.0\"]\nplays: server\n\
         peer: {{ address: \"${{PROXY_ADDR:-}}\", reference: passive-proxy }}\nsteps:\n{steps}"
    )
}

fn only(r: &RunResult) -> &zbx_conform::runner::ScenarioResult {
    assert_eq!(r.scenarios.len(), 1, "{}", support::describe(r));
    &r.scenarios[0]
}

/// The proxy's trapper answer to `sender data` is a sender kind: named with its family it
/// is recognised and validated there; a wrong kind of that family fails the kind check.
#[test]
fn a_kind_of_another_family_is_checked_in_that_family() {
    let step = |kind: &str| {
        passive_proxy(&format!(
            "  - exchange:\n      send:\n        json: {{ request: sender data, data: [{{ host: h, key: k, value: \"1\" }}] }}\n        kind: sender:sender.data.request\n      expect: {{ kind: \"{kind}\" }}\n"
        ))
    };
    let r = run_text(&step("sender:sender.data.response"));
    assert_eq!(
        only(&r).outcome,
        Outcome::Passed,
        "{}",
        support::describe(&r)
    );
    let transcript: Vec<_> = only(&r)
        .transcript
        .iter()
        .filter_map(|e| e.kind.clone())
        .collect();
    assert!(
        transcript
            .iter()
            .any(|k| k == "sender:sender.data.response"),
        "the transcript names the family: {transcript:?}"
    );

    let r = run_text(&step("sender:failed.response"));
    let s = only(&r);
    assert_eq!(s.outcome, Outcome::Failed, "{}", support::describe(&r));
    let (_, f) = s.failures().next().expect("a failure");
    assert_eq!(f.check, CheckKind::Kind, "{f:?}");
    assert!(f.detail.contains("`sender.data.response`"), "{f:?}");
}

/// What we send under another family's kind is validated against that family's schema.
#[test]
fn our_own_message_of_another_family_is_validated_there() {
    let r = run_text(&passive_proxy(
        "  - exchange:\n      send:\n        json: { request: sender data, data: [] }\n        kind: sender:sender.data.request\n",
    ));
    let s = only(&r);
    let Outcome::Error(reason) = &s.outcome else {
        panic!("a scenario error: {}", support::describe(&r))
    };
    assert!(
        reason.contains("does not conform to `sender:sender.data.request`"),
        "{reason}"
    );
}

/// `fixture: passive.proxy-config.request` declares its kind: a body broken with `set`
/// is refused before it is sent, without `kind:`; `check: false` still sends it.
#[test]
fn a_fixture_named_after_a_kind_is_checked_as_that_kind() {
    let steps = |extra: &str| {
        passive_proxy(&format!(
            "  - exchange:\n      send: {{ fixture: passive.proxy-config.request, set: {{ /data: 5 }}{extra} }}\n"
        ))
    };
    let r = run_text(&steps(""));
    let Outcome::Error(reason) = &only(&r).outcome else {
        panic!("a scenario error: {}", support::describe(&r))
    };
    assert!(
        reason.contains("does not conform to `passive.proxy-config.request`"),
        "{reason}"
    );
    let r = run_text(&steps(", check: false"));
    assert!(
        !matches!(only(&r).outcome, Outcome::Error(_)),
        "{}",
        support::describe(&r)
    );
}

/// A stored snapshot file in the repository's snapshot folder, removed again when the
/// test ends (also when it fails), with the review candidate a mismatch writes.
struct TempSnapshot {
    path: PathBuf,
}

impl TempSnapshot {
    fn new(name: &str, body: &serde_json::Value) -> TempSnapshot {
        let catalog = support::catalog();
        let path = catalog.snapshot_path("server-proxy", "6.0", name);
        std::fs::create_dir_all(path.parent().expect("folder")).expect("mkdir");
        let text = serde_json::to_string_pretty(body).expect("JSON") + "\n";
        std::fs::write(&path, text).expect("write snapshot");
        TempSnapshot { path }
    }
}

impl Drop for TempSnapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let mut pending = self.path.clone().into_os_string();
        pending.push(".new");
        let _ = std::fs::remove_file(Path::new(&pending));
    }
}

/// `version` is volatile in server-proxy, so a plain snapshot can never catch a wrong
/// one; `volatile: { keep: [version] }` compares it: the stored right version passes, a
/// wrong one fails the snapshot.
#[test]
fn a_snapshot_keeping_version_catches_a_wrong_version() {
    let announce = support::catalog()
        .version_info("6.0")
        .expect("6.0")
        .announce
        .clone();
    let name = format!("zbx-conform-test-keep-version-{}", std::process::id());
    let scenario = |volatile: &str| {
        passive_proxy(&format!(
            "  - exchange:\n      send: {{ fixture: proxy-config.trapper, kind: passive.proxy-config.request }}\n      expect: {{ kind: passive.proxy-config.response, snapshot: {name}{volatile} }}\n"
        ))
    };
    let keep = ", volatile: { keep: [version] }";

    let right = serde_json::json!({ "response": "success", "version": announce });
    let _stored = TempSnapshot::new(&name, &right);
    let r = run_text(&scenario(keep));
    assert_eq!(
        only(&r).outcome,
        Outcome::Passed,
        "{}",
        support::describe(&r)
    );

    let wrong = serde_json::json!({ "response": "success", "version": "6.0.99" });
    let _stored = TempSnapshot::new(&name, &wrong);
    let r = run_text(&scenario(keep));
    let s = only(&r);
    assert_eq!(s.outcome, Outcome::Failed, "{}", support::describe(&r));
    let (_, f) = s.failures().next().expect("a failure");
    assert_eq!(f.check, CheckKind::Snapshot, "{f:?}");
    assert!(
        f.detail.contains("6.0.99"),
        "the diff shows the version: {f:?}"
    );

    // Without `keep` the family's list redacts the version: the snapshot stored as
    // "[version]" matches whatever the proxy says.
    let redacted = serde_json::json!({ "response": "success", "version": "[version]" });
    let _stored = TempSnapshot::new(&name, &redacted);
    let r = run_text(&scenario(""));
    assert_eq!(
        only(&r).outcome,
        Outcome::Passed,
        "{}",
        support::describe(&r)
    );
}

/// `requirement:` ids of the steps that run at a version become the test case's
/// `requirement` property (JUnit) and each step result's `requirement` (JSON); a step
/// that `when` leaves out adds none.
#[test]
fn requirement_ids_reach_junit_and_json() {
    let r = run_text(&passive_proxy(
        "  - requirement: [PROXY-TASKS, PROXY-ANSWERS]\n    exchange:\n      send: { json: { request: proxy tasks } }\n  - requirement: PROXY-LATER\n    when: { version: \">=6.4\" }\n    sleep: 1ms\n  - requirement: PROXY-TASKS\n    sleep: 1ms\n",
    ));
    let s = only(&r);
    assert_eq!(s.outcome, Outcome::Passed, "{}", support::describe(&r));
    assert_eq!(
        s.properties.get("requirement").map(String::as_str),
        Some("PROXY-ANSWERS, PROXY-TASKS")
    );
    assert_eq!(s.steps[0].requirement, ["PROXY-TASKS", "PROXY-ANSWERS"]);

    let mut xml = Vec::new();
    zbx_conform::report::junit::write_to(&r, &mut xml).expect("junit");
    let xml = String::from_utf8(xml).expect("UTF-8");
    assert!(
        xml.contains(r#"<property name="requirement" value="PROXY-ANSWERS, PROXY-TASKS"/>"#),
        "{xml}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&zbx_conform::report::json::to_string(&r).expect("json"))
            .expect("JSON");
    let steps = &json["scenarios"][0]["steps"];
    assert_eq!(
        steps[0]["requirement"],
        serde_json::json!(["PROXY-TASKS", "PROXY-ANSWERS"])
    );
    assert!(
        steps[1].get("requirement").is_some(),
        "a skipped step still names its requirement"
    );
    assert_eq!(
        json["scenarios"][0]["properties"]["requirement"],
        "PROXY-ANSWERS, PROXY-TASKS"
    );
}

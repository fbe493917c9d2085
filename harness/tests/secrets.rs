//! Secrets (PSKs, passwords, private keys, vault values) never appear unredacted in the
//! terminal report, the JUnit XML, the JSON report or the HTML report — including the transcripts of what
//! the harness itself sent and the details of failures.

use std::path::Path;
use std::sync::Arc;
use zbx_conform::catalog::Catalog;
use zbx_conform::report;
use zbx_conform::runner::{self, Outcome, RunOptions};

const SECRETS: &[&str] = &[
    "7a3f9c2e1b8d4f6a0c5e9b2d7f1a3c8e",
    "ipmi-MARKER-B",
    "vault-MARKER-C",
    "pw-MARKER-E",
    "priv-MARKER-G",
    "pub-MARKER-F",
    "user-MARKER-D",
    "psk-identity-MARKER-A",
];

#[test]
fn secrets_are_redacted_in_every_report() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let catalog = Arc::new(Catalog::load(root).unwrap());
    let opts = RunOptions {
        paths: vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/secrets")],
        ..RunOptions::default()
    };
    let jobs = runner::plan(&catalog, &opts).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut lines = String::new();
    let run = rt.block_on(runner::run_jobs(catalog, jobs, &opts, |r| {
        lines.push_str(&report::terminal::scenario_line(r));
    }));
    // The scenario fails on purpose in its last step, after sending the secrets.
    assert_eq!(run.scenarios.len(), 1);
    assert_eq!(run.scenarios[0].outcome, Outcome::Failed);
    assert!(run.scenarios[0].steps.len() >= 3, "all steps ran");

    let dir = tempfile::tempdir().unwrap();
    report::junit::write(&run, &dir.path().join("junit.xml")).unwrap();
    report::json::write(&run, &dir.path().join("report.json")).unwrap();
    report::html::write(&run, &[], &dir.path().join("report.html")).unwrap();
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    let json = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let terminal = format!("{lines}\n{}", report::terminal::summary(&run));

    // The messages really were in the reports (redacted), so the test can fail.
    assert!(
        junit.contains("[redacted]"),
        "transcript with redactions in JUnit"
    );
    assert!(
        json.contains("[redacted]"),
        "transcript with redactions in JSON"
    );
    assert!(
        html.contains("[redacted]"),
        "transcript with redactions in HTML"
    );
    assert!(
        junit.contains("uptime"),
        "non-secret neighbours stay visible"
    );
    for (name, text) in [
        ("junit", &junit),
        ("json", &json),
        ("html", &html),
        ("terminal", &terminal),
    ] {
        for s in SECRETS {
            assert!(!text.contains(s), "{name} report contains the secret {s}");
        }
    }
}

//! Snapshots: volatile-field placeholders, and the missing / mismatch / update workflow.

use serde_json::{json, Value};
use std::path::PathBuf;
use zbx_conform::check::snapshot::{
    compare_snapshot, pending_path, redact_volatile, SnapshotOutcome,
};

fn keys(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| s.to_string()).collect()
}

#[test]
fn volatile_keys_anywhere_and_in_table_columns() {
    let v = json!({
        "clock": 1700000000, "ns": 12, "session": null, "host": "p1",
        "history data": [{"itemid": 1, "clock": 5, "ns": 6, "value": "1"}],
        "hosts": {"fields": ["hostid", "host", "clock"], "data": [[1, "a", 7], [2, "b", 8]]}
    });
    let out = redact_volatile(&v, &keys(&["clock", "ns", "session"]));
    assert_eq!(
        out,
        json!({
            "clock": "[clock]", "ns": "[ns]", "session": "[session]", "host": "p1",
            "history data": [{"itemid": 1, "clock": "[clock]", "ns": "[ns]", "value": "1"}],
            "hosts": {"fields": ["hostid", "host", "clock"],
                      "data": [[1, "a", "[clock]"], [2, "b", "[clock]"]]}
        })
    );
}

#[test]
fn volatile_pointer_replaces_only_that_value() {
    let v = json!({"data": [{"value": "12345"}, {"value": "1"}]});
    let out = redact_volatile(&v, &keys(&["/data/0/value"]));
    assert_eq!(out, json!({"data": [{"value": "[value]"}, {"value": "1"}]}));
}

#[test]
fn no_keys_no_change() {
    let v = json!({"clock": 1});
    assert_eq!(redact_volatile(&v, &[]), v);
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("snapshots/server-proxy/config-ok.json");
    (dir, path)
}

fn read(p: &PathBuf) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

#[test]
fn missing_writes_pending_candidate() {
    let (_dir, path) = setup();
    let body = json!({"response": "success", "version": "[version]"});
    let out = compare_snapshot(&path, &body, false).expect("compare");
    let pending = pending_path(&path);
    assert_eq!(
        out,
        SnapshotOutcome::Missing {
            pending: pending.clone()
        }
    );
    assert!(
        !path.exists(),
        "stored snapshot must not be created without update"
    );
    assert_eq!(
        read(&pending),
        "{\n  \"response\": \"success\",\n  \"version\": \"[version]\"\n}\n"
    );
}

#[test]
fn update_writes_then_matches_and_cleans_pending() {
    let (_dir, path) = setup();
    let body = json!({"response": "success"});
    // A pending candidate from an earlier failing run...
    compare_snapshot(&path, &body, false).expect("compare");
    assert!(pending_path(&path).exists());
    // ...is replaced by the accepted snapshot.
    let out = compare_snapshot(&path, &body, true).expect("update");
    assert_eq!(out, SnapshotOutcome::Updated(path.clone()));
    assert!(!pending_path(&path).exists(), "stale .new must be removed");
    assert_eq!(read(&path), "{\n  \"response\": \"success\"\n}\n");
    // Identical now: Matched, with or without update.
    assert_eq!(
        compare_snapshot(&path, &body, false),
        Ok(SnapshotOutcome::Matched)
    );
    assert_eq!(
        compare_snapshot(&path, &body, true),
        Ok(SnapshotOutcome::Matched)
    );
}

#[test]
fn mismatch_gives_unified_diff_and_pending() {
    let (_dir, path) = setup();
    let stored = json!({"response": "success", "a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6});
    compare_snapshot(&path, &stored, true).expect("seed");
    let received = json!({"response": "failed", "a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6});
    let out = compare_snapshot(&path, &received, false).expect("compare");
    let SnapshotOutcome::Mismatch { diff, pending } = out else {
        panic!("expected a mismatch, got {out:?}");
    };
    assert_eq!(pending, pending_path(&path));
    assert!(diff.starts_with("--- stored "), "{diff}");
    assert!(diff.contains("\n+++ received "), "{diff}");
    assert!(diff.contains("\n-  \"response\": \"success\",\n"), "{diff}");
    assert!(diff.contains("\n+  \"response\": \"failed\",\n"), "{diff}");
    // Context radius 3: "c" is 3 lines after the change, "d" is not shown.
    assert!(diff.contains("\"c\": 3"), "{diff}");
    assert!(!diff.contains("\"d\": 4"), "{diff}");
    // The stored snapshot is untouched, the candidate is pending.
    assert!(read(&path).contains("\"success\""));
    let cand: Value = serde_json::from_str(&read(&pending)).expect("pending is JSON");
    assert_eq!(cand, received);
}

#[test]
fn semantic_comparison_ignores_formatting_and_key_order() {
    let (_dir, path) = setup();
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, r#"{"b":2,   "a":1.0}"#).expect("write");
    let out = compare_snapshot(&path, &json!({"a": 1, "b": 2}), false);
    assert_eq!(out, Ok(SnapshotOutcome::Matched));
}

#[test]
fn unparsable_stored_snapshot_is_a_mismatch() {
    let (_dir, path) = setup();
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, "not json\n").expect("write");
    let out = compare_snapshot(&path, &json!({"a": 1}), false).expect("compare");
    match out {
        SnapshotOutcome::Mismatch { diff, .. } => assert!(diff.contains("-not json"), "{diff}"),
        other => panic!("expected mismatch, got {other:?}"),
    }
}

#[test]
fn io_error_names_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A file where a directory is needed.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "x").expect("write");
    let path = blocker.join("snap.json");
    let err = compare_snapshot(&path, &json!({}), true).expect_err("must fail");
    assert!(err.contains("blocker"), "{err}");
}

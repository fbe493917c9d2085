//! A protocol version is data: a copy of the data root that adds 7.2 as "7.0 with 7.2
//! version strings" — an entry in schemas/versions.yaml, `*/7.2/` folders copied from
//! `*/7.0/`, and "7.2" added to the scenarios' version lists — makes every reference
//! peer speak 7.2 and the standard suites pass against them, with no Rust change.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zbx_conform::catalog::Catalog;
use zbx_conform::reference;
use zbx_conform::runner::{self, Outcome, RunOptions};

/// What a maintainer adding 7.2 writes into versions.yaml.
const ENTRY_7_2: &str = r#"
  - version: "7.2"
    like: "7.0"
    announce: "7.2.0"
    measured: false
    evidence: "7.0 copied as data (tests/version_as_data.rs)"
"#;

/// The suites run at 7.2: every reference peer appears in them.
const SUITES: &[&str] = &[
    "scenarios/server-proxy",
    "scenarios/agent",
    "scenarios/sender",
];

fn copy_tree(from: &Path, to: &Path, edit: &dyn Fn(&Path, String) -> String) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst, edit);
        } else {
            match std::fs::read_to_string(&src) {
                Ok(text) => std::fs::write(&dst, edit(&src, text)).unwrap(),
                Err(_) => {
                    std::fs::copy(&src, &dst).unwrap();
                }
            }
        }
    }
}

/// Copy every `<kind>/<family>/7.0/` folder to `7.2/`: schemas get 7.2 in their version
/// patterns, fixtures name 7.2 releases.
fn add_7_2_folders(root: &Path, kind: &str) {
    for family in std::fs::read_dir(root.join(kind)).unwrap() {
        let family = family.unwrap().path();
        let from = family.join("7.0");
        if !from.is_dir() {
            continue;
        }
        copy_tree(&from, &family.join("7.2"), &|_, text| match kind {
            "schemas" => text.replace("^7\\\\.0\\\\.", "^7\\\\.2\\\\."),
            _ => text.replace("\"7.0.", "\"7.2."),
        });
    }
}

/// Add "7.2" to a scenario's `versions` list when it lists 7.0 (a range that covers 7.2
/// needs nothing).
fn with_7_2(text: String) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("versions:") && l.contains("\"7.0\"") && !l.contains("\"7.2\"") {
                l.replacen("\"7.0\"", "\"7.0\", \"7.2\"", 1)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The temporary data root with 7.2.
fn root_with_7_2(dir: &Path) {
    let project = support::root();
    copy_tree(
        &project.join("schemas"),
        &dir.join("schemas"),
        &|p, text| {
            if p.file_name().is_some_and(|n| n == "versions.yaml") {
                text + ENTRY_7_2
            } else {
                text
            }
        },
    );
    copy_tree(&project.join("fixtures"), &dir.join("fixtures"), &|_, t| t);
    add_7_2_folders(dir, "schemas");
    add_7_2_folders(dir, "fixtures");
    for suite in SUITES {
        copy_tree(&project.join(suite), &dir.join(suite), &|p, text| {
            if p.extension().is_some_and(|x| x == "yaml") {
                with_7_2(text)
            } else {
                text
            }
        });
    }
}

#[test]
fn a_version_added_as_data_is_spoken_by_every_reference_peer() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temporary directory");
    root_with_7_2(dir.path());
    let catalog = Arc::new(Catalog::load(dir.path()).expect("the 7.2 root loads"));
    let v72 = catalog.version_info("7.2").expect("7.2 is known");
    assert_eq!(v72.announce, "7.2.0");
    assert!(v72.has("incremental-config"), "like 7.0: {v72:?}");
    // No real 7.2 anywhere: the project's own catalog does not know it.
    assert!(support::catalog().version_info("7.2").is_none());

    let opts = RunOptions {
        paths: SUITES.iter().map(|s| dir.path().join(s)).collect(),
        versions: vec!["7.2".into()],
        jobs: 8,
        timeout: Duration::from_secs(10),
        ..RunOptions::default()
    };
    let jobs = runner::plan(&catalog, &opts).expect("the 7.2 scenarios load and lint");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let r = rt.block_on(runner::run_jobs(catalog.clone(), jobs, &opts, |_| {}));

    let all = support::describe(&r);
    assert!(
        r.scenarios.iter().all(|s| s.version == "7.2"),
        "only 7.2 ran:\n{all}"
    );
    assert!(
        r.scenarios
            .iter()
            .all(|s| matches!(s.outcome, Outcome::Passed | Outcome::Skipped(_))),
        "every scenario passes at 7.2:\n{all}"
    );
    // Every reference peer, listening or connecting, was started at 7.2.
    let spoke: BTreeSet<&str> = r
        .scenarios
        .iter()
        .filter(|s| s.outcome == Outcome::Passed)
        .filter_map(|s| s.peer.strip_prefix("reference:"))
        .filter_map(|p| p.strip_suffix(" 7.2.0"))
        .collect();
    let every: BTreeSet<&str> = reference::names().into_iter().collect();
    assert_eq!(spoke, every, "peers that passed at 7.2:\n{all}");

    // The servers' configuration is that data too: without it they refuse to start,
    // naming the file.
    let sync = dir
        .path()
        .join("fixtures/server-proxy/7.2/proxy-config.trapper.sync.json");
    std::fs::write(&sync, "{\"data\": ").unwrap();
    let cfg = reference::ReferenceConfig {
        name: "server-trapper".into(),
        version: "7.2".into(),
        fault: None,
        connect_to: None,
        listen: None,
    };
    match rt.block_on(reference::start(&cfg, &catalog)) {
        Ok(p) => {
            rt.block_on(p.stop());
            panic!("a server with a broken configuration fixture started");
        }
        Err(e) => assert!(e.contains(&sync.display().to_string()), "{e}"),
    }
    eprintln!(
        "{} scenarios at 7.2 against {} reference peers in {:.1?}",
        r.scenarios.len(),
        spoke.len(),
        started.elapsed()
    );
}

//! A protocol version is data: a copy of the data root that adds a version after the
//! newest one the catalog lists (7.6 after 7.4) — an entry in schemas/versions.yaml
//! `like` the newest, its `*/<newest>/` folders copied with the new release strings, one
//! schema changed, and the version added to scenario version lists that are not ranges —
//! makes every reference peer speak it and the standard suites pass against them, with
//! no Rust change.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zbx_conform::catalog::{Body, Catalog};
use zbx_conform::check::message::{validate_message, KindAt};
use zbx_conform::check::SchemaCache;
use zbx_conform::reference;
use zbx_conform::runner::{self, Outcome, RunOptions};

/// The version added and the one it is like (the newest the project's catalog lists).
struct Added {
    new: String,
    like: String,
}

impl Added {
    /// Two minor versions after the newest (Zabbix numbers its releases x.0, x.2, x.4).
    fn after_newest() -> Added {
        let like = support::catalog()
            .all_versions()
            .last()
            .expect("versions")
            .version
            .clone();
        let (major, minor) = like.split_once('.').expect("major.minor");
        let minor: u32 = minor.parse().expect("numeric minor");
        Added {
            new: format!("{major}.{}", minor + 2),
            like,
        }
    }

    /// What a maintainer adding the version writes into versions.yaml.
    fn entry(&self) -> String {
        format!(
            "\n  - version: \"{new}\"\n    like: \"{like}\"\n    announce: \"{new}.0\"\n    measured: false\n    evidence: \"{like} copied as data (tests/version_as_data.rs)\"\n",
            new = self.new,
            like = self.like
        )
    }
}

/// The one schema the new version changes: its sender.data.response may carry a
/// `warnings` list (the newest version's schema refuses any other member).
const CHANGED: &str = "schemas/sender/{v}/sender.data.response.json";

/// The suites run at the new version: every reference peer appears in them.
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

/// Copy every `<kind>/<family>/<like>/` folder to `<new>/`: schemas get the new version
/// in their version patterns, fixtures name its releases. (A version `like` another
/// inherits the fixtures it does not hold; the folders hold the version-bearing ones.)
fn add_folders(root: &Path, kind: &str, a: &Added) {
    let pattern = |v: &str| format!("^{}\\\\.", v.replace('.', "\\\\."));
    for family in std::fs::read_dir(root.join(kind)).unwrap() {
        let family = family.unwrap().path();
        let from = family.join(&a.like);
        if !from.is_dir() {
            continue;
        }
        copy_tree(&from, &family.join(&a.new), &|_, text| match kind {
            "schemas" => text
                .replace(&pattern(&a.like), &pattern(&a.new))
                .replace(&format!(" {} ", a.like), &format!(" {} ", a.new)),
            _ => text.replace(&format!("\"{}.", a.like), &format!("\"{}.", a.new)),
        });
    }
}

/// The changed schema: `warnings` allowed next to `response` and `info`.
fn change_one_schema(root: &Path, a: &Added) {
    let path = root.join(CHANGED.replace("{v}", &a.new));
    let mut schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    schema["properties"]["warnings"] =
        serde_json::json!({"type": "array", "items": {"type": "string"}});
    std::fs::write(&path, serde_json::to_string_pretty(&schema).unwrap()).unwrap();
}

/// The temporary data root with the new version.
fn root_with_new_version(dir: &Path, a: &Added) {
    let project = support::root();
    let entry = a.entry();
    copy_tree(
        &project.join("schemas"),
        &dir.join("schemas"),
        &|p, text| {
            if p.file_name().is_some_and(|n| n == "versions.yaml") {
                text + &entry
            } else {
                text
            }
        },
    );
    copy_tree(&project.join("fixtures"), &dir.join("fixtures"), &|_, t| t);
    add_folders(dir, "schemas", a);
    add_folders(dir, "fixtures", a);
    change_one_schema(dir, a);
    for suite in SUITES {
        // Unchanged: a scenario's `versions: ">=5.4"` takes the new version by itself.
        copy_tree(&project.join(suite), &dir.join(suite), &|_, t| t);
    }
}

#[test]
fn a_version_added_as_data_is_spoken_by_every_reference_peer() {
    let started = Instant::now();
    let a = Added::after_newest();
    let new = a.new.as_str();
    let dir = tempfile::tempdir().expect("temporary directory");
    root_with_new_version(dir.path(), &a);
    let catalog = Arc::new(Catalog::load(dir.path()).expect("the root with the new version loads"));
    let info = catalog.version_info(new).expect("the new version is known");
    assert_eq!(info.announce, format!("{new}.0"));
    assert!(info.has("incremental-config"), "like {}: {info:?}", a.like);
    // The project's own catalog does not know it.
    assert!(support::catalog().version_info(new).is_none());

    // The changed schema: the new version takes what the one before refuses.
    let schemas = SchemaCache::new();
    let body = Body::Json(serde_json::json!({
        "response": "success",
        "info": "processed: 1; failed: 0; total: 1; seconds spent: 0.000042",
        "warnings": ["a later Zabbix may say more"],
    }));
    let violations = |version: &str| {
        let at = KindAt {
            family: "sender",
            version,
            kind: "sender.data.response",
        };
        validate_message(&catalog, &schemas, at, &body).expect("kind known")
    };
    assert!(violations(new).is_empty(), "{:?}", violations(new));
    assert!(
        !violations(&a.like).is_empty(),
        "{} refuses `warnings`",
        a.like
    );

    let opts = RunOptions {
        paths: SUITES.iter().map(|s| dir.path().join(s)).collect(),
        versions: vec![new.into()],
        jobs: 8,
        timeout: Duration::from_secs(10),
        ..RunOptions::default()
    };
    let jobs = runner::plan(&catalog, &opts).expect("the scenarios load and lint");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let r = rt.block_on(runner::run_jobs(catalog.clone(), jobs, &opts, |_| {}));

    let all = support::describe(&r);
    assert!(
        r.scenarios.iter().all(|s| s.version == new),
        "only {new} ran:\n{all}"
    );
    assert!(
        r.scenarios
            .iter()
            .all(|s| matches!(s.outcome, Outcome::Passed | Outcome::Skipped(_))),
        "every scenario passes at {new}:\n{all}"
    );
    // Every reference peer, listening or connecting, was started at the new version.
    let announced = format!(" {new}.0");
    let spoke: BTreeSet<&str> = r
        .scenarios
        .iter()
        .filter(|s| s.outcome == Outcome::Passed)
        .filter_map(|s| s.peer.strip_prefix("reference:"))
        .filter_map(|p| p.strip_suffix(announced.as_str()))
        .collect();
    let every: BTreeSet<&str> = reference::names().into_iter().collect();
    assert_eq!(spoke, every, "peers that passed at {new}:\n{all}");

    // The servers' configuration is that data too: without it they refuse to start,
    // naming the file. (A broken copy in the new version's folder overrides the one it
    // inherits.)
    let sync = dir.path().join(format!(
        "fixtures/server-proxy/{new}/proxy-config.trapper.sync.json"
    ));
    std::fs::write(&sync, "{\"data\": ").unwrap();
    let cfg = reference::ReferenceConfig {
        name: "server-trapper".into(),
        version: new.into(),
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
        "{} scenarios at {new} against {} reference peers in {:.1?}",
        r.scenarios.len(),
        spoke.len(),
        started.elapsed()
    );
}

//! No secret in any line the harness writes. A distinct marker is planted in every
//! secret field (protocol.md §5) of every message kind of the catalog — empty secret
//! tables get a row, every secret key the harness knows gets a message of its own —
//! and each planted message travels the whole way: sent by the harness (transcript),
//! echoed back by a peer started from a profile (received, and written to the peer's
//! log, which a failed scenario attaches to JUnit), captured and sent again, checked by
//! failing matches on every secret pointer (`got "..."`), and compared with a stale
//! snapshot (diff and `.new` file). Then every output is searched for every marker:
//! the terminal, JUnit, JSON, HTML, and the `.new` files.

mod support;

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use zbx_conform::check::redact::{secret_pointers, SECRET_KEYS};

/// One planted message and where it goes.
struct Planted {
    family: String,
    version: String,
    name: String,
    value: Value,
    pointers: Vec<String>,
}

/// Every `{"fields":[...],"data":[...]}` table with a secret column and no row gets one
/// row, so its secret columns are planted too.
fn fill_empty_tables(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let fields: Option<Vec<String>> = m.get("fields").and_then(Value::as_array).map(|f| {
                f.iter()
                    .map(|x| x.as_str().unwrap_or("").to_string())
                    .collect()
            });
            let empty = m
                .get("data")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty);
            if let (Some(fields), true) = (fields, empty) {
                let secret = fields
                    .iter()
                    .any(|f| SECRET_KEYS.iter().any(|k| k.eq_ignore_ascii_case(f)) || f == "macro");
                if secret {
                    let row: Vec<Value> = fields
                        .iter()
                        .map(|f| if f == "type" { json!(1) } else { json!("x") })
                        .collect();
                    m.insert("data".into(), json!([row]));
                }
            }
            m.values_mut().for_each(fill_empty_tables);
        }
        Value::Array(items) => items.iter_mut().for_each(fill_empty_tables),
        _ => {}
    }
}

/// A remote-command task (type 2) with every credential, in every `tasks` array.
fn add_credential_tasks(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(tasks)) = m.get_mut("tasks") {
                tasks.push(json!({"type": 2, "clock": 1, "ttl": 600, "commandtype": 2,
                    "command": "uptime", "execute_on": 2, "port": 22, "authtype": 1,
                    "username": "u", "password": "p", "publickey": "k", "privatekey": "k",
                    "alertid": 0, "parent_taskid": 1, "hostid": 10001}));
            }
            m.values_mut().for_each(add_credential_tasks);
        }
        Value::Array(items) => items.iter_mut().for_each(add_credential_tasks),
        _ => {}
    }
}

/// Put a distinct marker in every secret leaf; returns the secret pointers.
fn plant(v: &mut Value, counter: &mut usize) -> Vec<String> {
    let pointers = secret_pointers(v);
    for p in &pointers {
        if let Some(leaf) = v.pointer_mut(p) {
            *counter += 1;
            *leaf = json!(format!("ZSEC{counter:05}Q"));
        }
    }
    pointers
}

/// A message with every secret key the harness knows, in each shape it knows.
fn every_secret_key() -> Value {
    let mut plain = serde_json::Map::new();
    for k in SECRET_KEYS {
        plain.insert((*k).to_string(), json!("x"));
    }
    json!({
        "request": "every secret key",
        "plain": plain,
        "table": {"fields": SECRET_KEYS, "data": [SECRET_KEYS.iter().map(|_| "x").collect::<Vec<_>>()]},
        "credentials": {"username": "x", "password": "x"},
        "macro": {"macro": "{$M}", "value": "x", "type": 1},
        "vault": {"macro": "{$V}", "value": "x", "type": 2},
        "macro.secrets": {"secret/zabbix": {"password": "x"}},
        "private_options": {"Name": "P", "Nodes": [{"Name": "Uri", "Nodes": [{"Value": "eA==", "Line": 3}]}]}
    })
}

fn planted_messages() -> Vec<Planted> {
    let catalog = support::catalog();
    let mut out = Vec::new();
    let mut counter = 0usize;
    for fam in catalog.families() {
        // Plugin messages travel in ZBXD frames here too: the secrets are what matter.
        let family = if fam.family == "plugin" {
            "agent"
        } else {
            fam.family.as_str()
        };
        for k in &fam.kinds {
            for v in &k.versions {
                let path = catalog.fixture_path(&fam.family, v, &k.kind);
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let Ok(mut value) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if !value.is_object() {
                    continue; // text kinds carry no secret field
                }
                if !catalog.versions(family).contains(v) {
                    continue;
                }
                fill_empty_tables(&mut value);
                add_credential_tasks(&mut value);
                let pointers = plant(&mut value, &mut counter);
                if pointers.is_empty() {
                    continue;
                }
                out.push(Planted {
                    family: family.to_string(),
                    version: v.clone(),
                    name: format!("{}-{}-{}", fam.family, v, k.kind),
                    value,
                    pointers,
                });
            }
        }
    }
    let mut all = every_secret_key();
    let pointers = plant(&mut all, &mut counter);
    out.push(Planted {
        family: "server-proxy".into(),
        version: "6.0".into(),
        name: "every-secret-key".into(),
        value: all,
        pointers,
    });
    out
}

/// The scenario for one planted message (YAML, with the message as JSON flow style).
fn scenario(p: &Planted, n: usize) -> String {
    let msg = p.value.to_string();
    let mut matches = String::new();
    for ptr in &p.pointers {
        matches.push_str(&format!("          {}: \"not it\"\n", json!(ptr)));
    }
    let first = json!(p.pointers[0]);
    format!(
        "name: planted {name}\nfamily: {family}\nversions: [\"{version}\"]\nplays: server\n\
         peer: {{ address: \"${{ECHO_ADDR:-}}\" }}\nsteps:\n\
         \x20 - name: sent and echoed, a secret captured\n    exchange:\n      send: {{ json: {msg} }}\n      \
         expect: {{ schema: false, capture: {{ cap: {first} }} }}\n\
         \x20 - name: the captured secret sent again\n    exchange:\n      \
         send: {{ json: {{ request: echo, echo: \"${{cap}}\" }} }}\n      expect: {{ schema: false }}\n\
         \x20 - name: failing matches and a stale snapshot\n    exchange:\n      send: {{ json: {msg} }}\n      \
         expect:\n        schema: false\n        snapshot: planted-{n}\n        match:\n{matches}",
        name = p.name,
        family = p.family,
        version = p.version,
    )
}

fn files_below(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_below(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn no_planted_secret_reaches_any_output() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "python3 is needed"
        );
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let planted = planted_messages();
    // Every secret key was planted somewhere, so a new key cannot go untested.
    let all_pointers: Vec<&String> = planted.iter().flat_map(|p| &p.pointers).collect();
    for k in SECRET_KEYS {
        assert!(
            all_pointers
                .iter()
                .any(|p| p.to_lowercase().contains(&k.to_lowercase())),
            "no planted {k}"
        );
    }
    assert!(
        planted.len() > 20,
        "secret-bearing kinds found: {}",
        planted.len()
    );

    // A data root of our own: the real schemas, and stale snapshots to be compared with.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(support::root().join("schemas"), root.join("schemas")).unwrap();
    let scenarios = tmp.path().join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    let mut versions = std::collections::BTreeSet::new();
    for (n, p) in planted.iter().enumerate() {
        let snaps = root
            .join("fixtures")
            .join(&p.family)
            .join(&p.version)
            .join("snapshots");
        std::fs::create_dir_all(&snaps).unwrap();
        std::fs::write(
            snaps.join(format!("planted-{n}.json")),
            "{\"stale\": true}\n",
        )
        .unwrap();
        std::fs::write(scenarios.join(format!("p{n:03}.yaml")), scenario(p, n)).unwrap();
        versions.insert(p.version.clone());
    }
    let junit = tmp.path().join("junit.xml");
    let json = tmp.path().join("report.json");
    let html = tmp.path().join("report.html");
    let profile = support::root().join("harness/tests/data/echo-peer/echo-peer.yaml");
    let o = Command::new(env!("CARGO_BIN_EXE_zbx-conform"))
        .arg("--root")
        .arg(&root)
        .args([
            "run",
            "--no-matrix",
            "--jobs",
            "4",
            "--timeout",
            "5s",
            "--version",
        ])
        .arg(versions.into_iter().collect::<Vec<_>>().join(","))
        .arg("--start-peer")
        .arg(&profile)
        .arg("--run-dir")
        .arg(tmp.path().join("run"))
        .arg("--junit")
        .arg(&junit)
        .arg("--json")
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .arg(&scenarios)
        .output()
        .expect("binary runs");
    let terminal = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "every scenario fails its last step:\n{terminal}"
    );
    let junit = std::fs::read_to_string(&junit).expect("junit written");
    let json = std::fs::read_to_string(&json).expect("json written");
    let html = std::fs::read_to_string(&html).expect("html written");

    // The paths the secrets took are really in the outputs (the test can fail).
    assert!(
        terminal.contains("got \"[redacted]\""),
        "failing matches shown"
    );
    assert!(
        junit.contains("snapshot `planted-"),
        "snapshot failures in JUnit"
    );
    assert!(
        junit.contains("received: "),
        "the peer's log is in JUnit system-err"
    );
    assert!(
        html.contains("snapshot `planted-") && html.contains("[redacted]"),
        "snapshot failures and redacted bodies in HTML"
    );
    assert!(
        junit.contains("\"echo\":\"[redacted]\""),
        "the captured secret, sent again"
    );
    let mut new_files = Vec::new();
    files_below(&root.join("fixtures"), &mut new_files);
    new_files.retain(|p| p.extension().is_some_and(|e| e == "new"));
    assert_eq!(
        new_files.len(),
        planted.len(),
        "a .new candidate per stale snapshot"
    );

    let mut outputs = vec![
        ("terminal".to_string(), terminal),
        ("junit".to_string(), junit),
        ("json".to_string(), json),
        ("html".to_string(), html),
    ];
    for f in new_files {
        outputs.push((
            f.display().to_string(),
            std::fs::read_to_string(&f).unwrap(),
        ));
    }
    let mut leaks = Vec::new();
    for (name, text) in &outputs {
        let mut at = 0;
        while let Some(i) = text[at..].find("ZSEC") {
            let start = at + i;
            let marker: String = text[start..].chars().take(10).collect();
            leaks.push(format!("{name}: {marker}"));
            at = start + 4;
        }
    }
    leaks.sort();
    leaks.dedup();
    assert!(
        leaks.is_empty(),
        "planted secrets in outputs:\n{}",
        leaks.join("\n")
    );
}

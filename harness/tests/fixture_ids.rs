//! One id scheme across every configuration fixture of every family and version: an id
//! names the same object everywhere, and an object has the same id everywhere. A peer
//! with history (configured by an earlier scenario or run) takes a 6.4+ full sync as a
//! replacement of what it holds; when two fixtures give `zbx-conform-h1` different
//! hostids, a 7.0 proxy refuses the second with "cannot remove old objects from table
//! hosts", a false failure that only shows on a long-lived peer.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `{"fields": [...], "data": [[...]]}` table in a document, with its name.
fn tables<'a>(v: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
    if let Value::Object(m) = v {
        for (k, t) in m {
            if t.get("fields").is_some_and(Value::is_array)
                && t.get("data").is_some_and(Value::is_array)
            {
                out.push((k.as_str(), t));
            } else {
                tables(t, out);
            }
        }
    }
}

/// Rows of a table as column → value maps.
fn rows(t: &Value) -> Vec<BTreeMap<String, Value>> {
    let fields: Vec<String> = t["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    t["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .map(|r| fields.iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

/// `what` → the set of (value, file) it was seen with; more than one value is a clash.
type Seen = BTreeMap<String, BTreeSet<(String, String)>>;

fn note(seen: &mut Seen, what: String, value: String, file: &Path) {
    seen.entry(what)
        .or_default()
        .insert((value, file.display().to_string()));
}

fn clashes(seen: &Seen) -> Vec<String> {
    seen.iter()
        .filter(|(_, vals)| vals.iter().map(|(v, _)| v).collect::<BTreeSet<_>>().len() > 1)
        .map(|(what, vals)| format!("{what}: {vals:?}"))
        .collect()
}

#[test]
fn every_configuration_id_names_one_object_in_every_fixture() {
    let mut files = Vec::new();
    json_files(&support::root().join("fixtures"), &mut files);
    let mut by_id = Seen::new();
    let mut by_name = Seen::new();
    let mut hosts_seen = 0;
    for f in &files {
        let Ok(doc) = serde_json::from_str::<Value>(&std::fs::read_to_string(f).unwrap()) else {
            continue;
        };
        let mut ts = Vec::new();
        tables(&doc, &mut ts);
        for (name, t) in ts {
            for r in rows(t) {
                let s = |k: &str| r.get(k).map(Value::to_string).unwrap_or_default();
                match name {
                    "hosts" => {
                        hosts_seen += 1;
                        note(&mut by_id, format!("hostid {}", s("hostid")), s("host"), f);
                        note(&mut by_name, format!("host {}", s("host")), s("hostid"), f);
                    }
                    "items" => {
                        let what = format!("{}/{}", s("hostid"), s("key_"));
                        note(
                            &mut by_id,
                            format!("itemid {}", s("itemid")),
                            what.clone(),
                            f,
                        );
                        note(&mut by_name, format!("item {what}"), s("itemid"), f);
                    }
                    "interface" => {
                        let what = format!("host {} port {}", s("hostid"), s("port"));
                        note(
                            &mut by_id,
                            format!("interfaceid {}", s("interfaceid")),
                            what,
                            f,
                        );
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(
        hosts_seen > 1500,
        "the configuration fixtures were found ({hosts_seen} hosts)"
    );
    let mut problems = clashes(&by_id);
    problems.extend(clashes(&by_name));
    assert!(
        problems.is_empty(),
        "ids that name different objects:\n{}",
        problems.join("\n")
    );
}

//! Every server<->proxy message kind and version: its fixture is valid against its
//! schema, the catalog recognises the fixture as exactly that kind, and broken variants
//! of the fixture (what a broken peer would send) are rejected by the schema.

mod support;

use rstest::rstest;
use serde_json::{json, Value};
use zbx_conform::catalog::{Body, Catalog, KindEntry, ANY_SIDE};
use zbx_conform::check::SchemaCache;

const FAMILY: &str = "server-proxy";

fn catalog() -> &'static Catalog {
    support::catalog()
}

fn cache() -> &'static SchemaCache {
    support::schema_cache()
}

fn entry(version: &str, kind: &str) -> &'static KindEntry {
    catalog()
        .kind(FAMILY, version, kind)
        .unwrap_or_else(|| panic!("{kind} {version} is in the catalog"))
}

fn fixture(version: &str, kind: &str) -> Value {
    let p = catalog().fixture_path(FAMILY, version, kind);
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("fixture {} readable: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {} is JSON: {e}", p.display()))
}

fn schema(version: &str, kind: &str) -> Value {
    let p = catalog().schema_path(FAMILY, version, kind);
    let text = std::fs::read_to_string(&p).expect("schema readable");
    serde_json::from_str(&text).expect("schema is JSON")
}

/// Violations of `instance` against the kind's schema.
fn violations(version: &str, kind: &str, instance: &Value) -> Vec<String> {
    let p = catalog().schema_path(FAMILY, version, kind);
    cache()
        .validate(&p, instance)
        .unwrap_or_else(|e| panic!("schema compiles: {e}"))
        .into_iter()
        .map(|v| format!("{} ({}): {}", v.instance_path, v.schema_path, v.message))
        .collect()
}

/// The concrete sides that send messages in this family (for kinds sent by `any`).
fn senders(e: &KindEntry) -> Vec<String> {
    if e.from != ANY_SIDE {
        return vec![e.from.clone()];
    }
    let mut sides: Vec<String> = catalog()
        .family(FAMILY)
        .expect("family")
        .kinds
        .iter()
        .filter(|k| k.from != ANY_SIDE)
        .map(|k| k.from.clone())
        .collect();
    sides.sort();
    sides.dedup();
    sides
}

// ---------------------------------------------------------------- JSON pointer helpers

fn tokens(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Set (or add) the value at `pointer`; the parent must exist.
fn set(v: &Value, pointer: &str, new: Value) -> Value {
    let mut out = v.clone();
    let toks = tokens(pointer);
    let (last, parents) = toks.split_last().expect("non-empty pointer");
    let mut cur = &mut out;
    for t in parents {
        cur = match cur {
            Value::Object(m) => m.get_mut(t).expect("parent exists"),
            Value::Array(a) => a
                .get_mut(t.parse::<usize>().expect("index"))
                .expect("parent exists"),
            _ => panic!("{pointer}: parent is a scalar"),
        };
    }
    match cur {
        Value::Object(m) => {
            m.insert(last.clone(), new);
        }
        Value::Array(a) => a[last.parse::<usize>().expect("index")] = new,
        _ => panic!("{pointer}: parent is a scalar"),
    }
    out
}

fn remove(v: &Value, pointer: &str) -> Value {
    let mut out = v.clone();
    let toks = tokens(pointer);
    let (last, parents) = toks.split_last().expect("non-empty pointer");
    let parent = if parents.is_empty() {
        &mut out
    } else {
        let pp = format!(
            "/{}",
            parents
                .iter()
                .map(|t| escape(t))
                .collect::<Vec<_>>()
                .join("/")
        );
        out.pointer_mut(&pp).expect("parent exists")
    };
    let removed = parent.as_object_mut().and_then(|m| m.shift_remove(last));
    assert!(removed.is_some(), "{pointer} existed");
    out
}

/// A value of a different JSON type than `v`.
fn wrong_type(v: &Value) -> Value {
    match v {
        Value::String(_) => json!(7),
        Value::Number(_) => json!("7"),
        Value::Bool(_) => json!("true"),
        Value::Null => json!([]),
        Value::Object(_) | Value::Array(_) => json!("x"),
    }
}

/// Pointers of every object member anywhere in `v` (not array elements themselves).
fn member_pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{}", escape(k));
                out.push(p.clone());
                member_pointers(child, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                member_pointers(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Top-level required members of a schema (following a root `$ref` into `$defs`).
/// The members the schema requires of this fixture: its `required` list (behind a root
/// `$ref`) plus `dependentRequired` members of those the fixture has.
fn required_members(s: &Value, fx: &Value) -> Vec<String> {
    let target = match s.get("$ref").and_then(Value::as_str) {
        Some(r) => s
            .pointer(r.trim_start_matches('#'))
            .expect("root $ref resolves"),
        None => s,
    };
    let names = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = names(target.get("required"));
    if let (Some(deps), Some(members)) = (
        target.get("dependentRequired").and_then(Value::as_object),
        fx.as_object(),
    ) {
        for (k, targets) in deps {
            if members.contains_key(k) {
                out.extend(names(Some(targets)));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

// ---------------------------------------------------------------- per-kind checks

fn check_fixture_valid(version: &str, kind: &str) {
    let e = entry(version, kind);
    assert_eq!(e.kind, kind);
    let v = violations(version, kind, &fixture(version, kind));
    assert!(v.is_empty(), "{kind} {version} fixture invalid: {v:#?}");
}

fn check_classified_as_itself(version: &str, kind: &str) {
    let e = entry(version, kind);
    let body = Body::Json(fixture(version, kind));
    let want = e.recognise.same_as.as_deref().unwrap_or(kind);
    for from in senders(e) {
        let got = catalog()
            .classify(FAMILY, version, &from, &body)
            .map(|k| k.kind.as_str());
        assert_eq!(got, Some(want), "{kind} {version} sent by {from}");
    }
    if let Some(other) = &e.recognise.same_as {
        // Classification hands this body to `other`: its schema must accept it too.
        let v = violations(version, other, &fixture(version, kind));
        assert!(
            v.is_empty(),
            "{other} schema rejects {kind} fixture: {v:#?}"
        );
    }
}

fn check_recognisers_exclusive(version: &str, kind: &str) {
    let e = entry(version, kind);
    let body = Body::Json(fixture(version, kind));
    for from in senders(e) {
        let accepting: Vec<&str> = catalog()
            .family(FAMILY)
            .expect("family")
            .kinds
            .iter()
            .filter(|k| k.from == from || k.from == ANY_SIDE)
            .filter(|k| k.versions.iter().any(|v| v == version))
            .filter(|k| k.recognise.accepts(&body))
            .map(|k| k.kind.as_str())
            .collect();
        assert_eq!(
            accepting.len(),
            1,
            "{kind} {version} from {from} is accepted by {accepting:?}"
        );
    }
}

fn check_missing_required_rejected(version: &str, kind: &str) {
    let fx = fixture(version, kind);
    let required = required_members(&schema(version, kind), &fx);
    assert!(!required.is_empty(), "{kind} {version} requires something");
    for name in required {
        let mutated = remove(&fx, &format!("/{}", escape(&name)));
        assert!(
            !violations(version, kind, &mutated).is_empty(),
            "{kind} {version}: fixture without {name:?} accepted"
        );
    }
}

fn check_wrong_types_rejected(version: &str, kind: &str) {
    let fx = fixture(version, kind);
    let mut pointers = Vec::new();
    member_pointers(&fx, "", &mut pointers);
    assert!(!pointers.is_empty());
    for p in pointers {
        let old = fx.pointer(&p).expect("pointer from walk");
        let mutated = set(&fx, &p, wrong_type(old));
        assert!(
            !violations(version, kind, &mutated).is_empty(),
            "{kind} {version}: {p} = {} accepted",
            mutated.pointer(&p).expect("set")
        );
    }
}

/// Every row of the family at every version the catalog lists (a version added as data
/// is checked too) passes `check`.
#[rstest]
#[case::fixture_is_valid(check_fixture_valid)]
#[case::fixture_is_classified_as_its_kind(check_classified_as_itself)]
#[case::fixture_is_accepted_by_one_recogniser(check_recognisers_exclusive)]
#[case::missing_required_member_is_rejected(check_missing_required_rejected)]
#[case::wrong_member_type_is_rejected(check_wrong_types_rejected)]
fn every_row(#[case] check: fn(&str, &str)) {
    let rows = catalog().rows(Some(FAMILY), None);
    for r in &rows {
        check(&r.version, &r.kind);
    }
    // At least the 15 kinds every version has, at every version.
    assert!(rows.len() >= 15 * catalog().all_versions().len());
}

#[test]
fn every_catalog_row_has_its_files() {
    let rows = catalog().rows(Some(FAMILY), None);
    for v in catalog().all_versions() {
        assert!(
            rows.iter().filter(|r| r.version == v.version).count() >= 15,
            "{} has the family's kinds",
            v.version
        );
    }
    for r in rows {
        assert!(
            catalog().root().join(&r.schema).is_file(),
            "{}",
            r.schema.display()
        );
        assert!(
            catalog().root().join(&r.fixture).is_file(),
            "{}",
            r.fixture.display()
        );
        cache()
            .compile(&catalog().root().join(&r.schema))
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

// ---------------------------------------------------------------- targeted mutations

enum Mutation {
    Set(&'static str, Value),
    Remove(&'static str),
}
use Mutation::{Remove, Set};

/// Mistakes a broken peer makes, per kind (both versions), each of which must be
/// rejected by the kind's schema.
#[rstest]
#[case("passive.proxy-data.response", Set("/history data/0/value", json!(86400)))]
#[case("passive.proxy-data.response", Set("/history data/1/state", json!(2)))]
#[case("passive.proxy-data.response", Set("/history data/0/ns", json!(1_000_000_000)))]
#[case("passive.proxy-data.response", Remove("/history data/0/id"))]
#[case("passive.proxy-data.response", Remove("/session"))]
#[case("passive.proxy-data.response", Remove("/version"))]
#[case("passive.proxy-data.response", Set("/session", json!("d7e4f1a29c0b83e56a1f4b7c2d9e0a1")))]
#[case("passive.proxy-data.response", Set("/session", json!("d7e4f1a29c0b83e56a1f4b7c2d9e0a133")))]
#[case("passive.proxy-data.response", Set("/session", json!("D7E4F1A29C0B83E56A1F4B7C2D9E0A13")))]
#[case("passive.proxy-data.response", Set("/version", json!("4.0.44")))]
#[case("passive.proxy-data.response", Set("/request", json!("proxy data")))]
#[case("passive.proxy-data.response", Set("/host", json!("proxy-01")))]
#[case("passive.proxy-data.response", Set("/auto registration/0/port", json!(10050)))]
#[case("passive.proxy-data.response", Set("/interface availability/0/available", json!(3)))]
#[case("passive.proxy-data.response", Set("/tasks/0/type", json!(0)))]
#[case("active.proxy-data.request", Set("/history data/0/value", json!(86400)))]
#[case("active.proxy-data.request", Set("/auto registration/0/port", json!(10050)))]
#[case("active.proxy-data.request", Set("/session", json!("12345")))]
#[case("active.proxy-data.request", Set("/request", json!("proxy date")))]
#[case("active.proxy-data.request", Remove("/host"))]
#[case("active.proxy-data.request", Remove("/session"))]
#[case("active.proxy-data.request", Remove("/version"))]
#[case("active.proxy-data.request", Set("/discovery data/0/port", json!(70000)))]
#[case("passive.proxy-config.request", Remove("/data"))]
#[case("passive.proxy-config.request", Remove("/data/hosts"))]
#[case("passive.proxy-config.request", Set("/data/hosts/fields", json!([])))]
#[case("passive.proxy-config.request", Set("/data/hosts/data/0/0", json!("10001")))]
#[case("passive.proxy-config.request", Set("/data/hosts/extra", json!([])))]
#[case("passive.proxy-config.request", Set("/data/macro.secrets/secret~1zabbix/password", json!(1)))]
#[case("passive.proxy-config.request", Set("/response", json!("success")))]
#[case("active.proxy-config.response", Set("/response", json!("success")))]
#[case("active.proxy-config.response", Set("/request", json!("proxy config")))]
#[case("active.proxy-config.response", Remove("/items"))]
#[case("active.proxy-config.response", Set("/items/data/0/0", json!(null)))]
#[case("passive.proxy-config.response", Set("/response", json!("ok")))]
#[case("passive.proxy-config.response", Remove("/version"))]
#[case("passive.proxy-config.response", Set("/version", json!("7.0.0")))]
#[case("passive.proxy-data.ack", Set("/response", json!("ok")))]
#[case("passive.proxy-data.ack", Set("/upload", json!("enabled")))]
#[case("passive.proxy-data.ack", Remove("/tasks/0/itemid"))]
#[case("passive.proxy-data.ack", Set("/tasks/0/type", json!(9)))]
#[case("passive.proxy-tasks.ack", Set("/response", json!("ok")))]
#[case("passive.proxy-tasks.response", Set("/session", json!("d7e4f1a29c0b83e56a1f4b7c2d9e0a13")))]
#[case("passive.proxy-tasks.response", Remove("/tasks/0/parent_taskid"))]
#[case("active.proxy-data.response", Set("/upload", json!("yes")))]
#[case("active.proxy-data.response", Set("/response", json!("ok")))]
#[case("active.proxy-data.response", Remove("/upload"))]
#[case("active.proxy-data.response", Remove("/tasks/0/command"))]
#[case("active.proxy-heartbeat.request", Remove("/host"))]
#[case("active.proxy-heartbeat.request", Set("/host", json!("")))]
#[case("active.proxy-heartbeat.request", Set("/version", json!("6.0")))]
#[case("active.proxy-heartbeat.response", Set("/response", json!("ok")))]
#[case("active.proxy-heartbeat.response", Set("/tasks", json!([])))]
#[case("active.proxy-config.request", Set("/session", json!("d7e4f1a29c0b83e56a1f4b7c2d9e0a13")))]
#[case("passive.proxy-data.request", Set("/host", json!("proxy-01")))]
#[case("passive.proxy-tasks.request", Set("/request", json!("proxy task")))]
#[case("failed.response", Set("/response", json!("success")))]
fn broken_peer_message_is_rejected(
    #[values("5.4", "6.0")] version: &str,
    #[case] kind: &str,
    #[case] mutation: Mutation,
) {
    let fx = fixture(version, kind);
    let (what, mutated) = match &mutation {
        Set(p, v) => (format!("{p} = {v}"), set(&fx, p, v.clone())),
        Remove(p) => (format!("without {p}"), remove(&fx, p)),
    };
    assert_ne!(mutated, fx, "mutation changes the fixture");
    assert!(
        !violations(version, kind, &mutated).is_empty(),
        "{kind} {version}: {what} accepted"
    );
}

/// The manual's passive `proxy config` example puts the tables next to `request`; the
/// real server wraps them in `data`. The manual's shape must be recognised (so the report
/// names the kind) and rejected.
#[rstest]
fn manual_style_passive_config_is_recognised_and_rejected(#[values("5.4", "6.0")] version: &str) {
    let mut body = fixture(version, "active.proxy-config.response");
    body.as_object_mut()
        .expect("object")
        .insert("request".into(), json!("proxy config"));
    let kind = catalog()
        .classify(FAMILY, version, "server", &Body::Json(body.clone()))
        .map(|k| k.kind.as_str());
    assert_eq!(kind, Some("passive.proxy-config.request"));
    assert!(!violations(version, "passive.proxy-config.request", &body).is_empty());
}

/// Version patterns follow the catalog version: a 6.0 proxy's version is not a 5.4 one.
#[rstest]
#[case("5.4", "6.0.14")]
#[case("6.0", "5.4.12")]
#[case("6.0", "6.4.0")]
fn version_of_another_release_is_rejected(#[case] version: &str, #[case] other: &str) {
    for kind in [
        "passive.proxy-config.response",
        "passive.proxy-data.response",
        "active.proxy-data.request",
        "active.proxy-heartbeat.request",
    ] {
        let mutated = set(&fixture(version, kind), "/version", json!(other));
        assert!(
            !violations(version, kind, &mutated).is_empty(),
            "{kind} {version} accepted version {other}"
        );
    }
}

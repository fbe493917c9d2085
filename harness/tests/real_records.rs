//! Messages the real 6.0.14 and 7.0.22 proxies sent (harness/tests/data/real-records/:
//! one per kind and data section, kept from the runs against them) back the schemas:
//! each is valid against its kind's schema, each turns invalid when one field of its
//! section gets the wrong JSON type, the version-specific rules tell the versions apart
//! (7.0's numeric auto-registration port is not 6.0's string), and no section a real
//! message backs is marked `unverified` in the catalog.

mod support;

use rstest::rstest;
use serde_json::{json, Value};

/// `(kind, section, body)` of every record of `version`.
fn records(version: &str) -> Vec<(String, String, Value)> {
    let path = support::root().join(format!("harness/tests/data/real-records/{version}.json"));
    let text = std::fs::read_to_string(&path).expect("records readable");
    let doc: Value = serde_json::from_str(&text).expect("records are JSON");
    doc["records"]
        .as_array()
        .expect("records array")
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().expect("kind").to_string(),
                r["section"].as_str().expect("section").to_string(),
                r["body"].clone(),
            )
        })
        .collect()
}

fn violations(version: &str, kind: &str, body: &Value) -> Vec<String> {
    let c = support::catalog();
    support::schema_cache()
        .validate(&c.schema_path("server-proxy", version, kind), body)
        .expect("schema compiles")
        .into_iter()
        .map(|v| v.message)
        .collect()
}

/// The same JSON value with the other type: a number becomes its text, a string a
/// number, anything else a string.
fn other_type(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.to_string()),
        Value::String(_) => json!(12345),
        other => json!(other.to_string()),
    }
}

/// `body` with the first member of the section's first row (or the section itself, for
/// a scalar such as `more`) of the other JSON type.
fn mutate(body: &Value, section: &str) -> Value {
    let mut b = body.clone();
    let slot = &mut b[section];
    match slot {
        Value::Array(rows) => {
            let row = rows[0].as_object_mut().expect("rows are objects");
            let key = row.keys().next().expect("a row has members").clone();
            let changed = other_type(&row[&key]);
            row.insert(key, changed);
        }
        other => *other = other_type(other),
    }
    b
}

#[rstest]
fn every_real_record_is_valid_and_a_wrong_type_in_its_section_is_not(
    #[values("6.0", "7.0")] version: &str,
) {
    let recs = records(version);
    assert!(recs.len() >= 10, "{version}: only {} records", recs.len());
    for (kind, section, body) in &recs {
        assert!(
            body.get(section).is_some(),
            "{version} {kind}: the record has no {section}"
        );
        let v = violations(version, kind, body);
        assert!(v.is_empty(), "{version} {kind} {section}: {v:?}\n{body}");
        let broken = mutate(body, section);
        assert_ne!(&broken, body);
        assert!(
            !violations(version, kind, &broken).is_empty(),
            "{version} {kind}: a wrong type in {section} was accepted: {}",
            broken[section]
        );
    }
}

/// Every data section of the proxy data kinds has a real record at 6.0 and 7.0 (host
/// data: 7.0 only), in passive and active mode, and the tasks answer too.
#[rstest]
fn every_section_has_a_real_record(#[values("6.0", "7.0")] version: &str) {
    let recs = records(version);
    let c = support::catalog();
    for kind in ["passive.proxy-data.response", "active.proxy-data.request"] {
        let entry = c.kind("server-proxy", version, kind).expect("kind");
        for s in &entry.sections {
            if !entry.has_section(&s.name, version) {
                continue;
            }
            // Bodies of 10000 history rows are cut in the active run's report.
            if kind == "active.proxy-data.request"
                && ["more", "proxy_delay"].contains(&s.name.as_str())
            {
                continue;
            }
            assert!(
                recs.iter().any(|(k, sec, _)| k == kind && sec == &s.name),
                "{version} {kind}: no real record of {}",
                s.name
            );
        }
    }
    assert!(recs
        .iter()
        .any(|(k, s, _)| k == "passive.proxy-tasks.response" && s == "tasks"));
}

/// What a real message backs is not marked unverified.
#[rstest]
fn sections_with_real_records_are_not_marked_unverified(#[values("6.0", "7.0")] version: &str) {
    let c = support::catalog();
    for (kind, section, _) in records(version) {
        let entry = c.kind("server-proxy", version, &kind).expect("kind");
        let marks: Vec<_> = entry.unverified_at(version, Some(&section)).collect();
        assert!(marks.is_empty(), "{version} {kind} {section}: {marks:?}");
    }
}

/// The auto-registration `port` and `flags` changed type between the real proxies: a
/// 6.0.14 row is refused by 7.0's schema and a 7.0.22 row by 6.0's.
#[test]
fn auto_registration_types_tell_6_0_from_7_0() {
    let row = |version: &str| {
        records(version)
            .into_iter()
            .find(|(k, s, _)| k == "passive.proxy-data.response" && s == "auto registration")
            .expect("auto registration record")
            .2
    };
    let (r60, r70) = (row("6.0"), row("7.0"));
    assert!(r60["auto registration"][0]["port"].is_string());
    assert!(r70["auto registration"][0]["port"].is_number());
    let mut swapped = r70.clone();
    swapped["auto registration"] = r60["auto registration"].clone();
    assert!(!violations("7.0", "passive.proxy-data.response", &swapped).is_empty());
    let mut swapped = r60.clone();
    swapped["auto registration"] = r70["auto registration"].clone();
    assert!(!violations("6.0", "passive.proxy-data.response", &swapped).is_empty());
}

//! The `plugin` family of the catalog: every kind × version has a schema that compiles
//! and a fixture that is valid and recognised as its own kind; mutated fixtures are
//! rejected; version-specific rules (the Register version string, Terminate id, the 7.0
//! export timeout member) hold.

mod plugin_support;

use plugin_support::*;
use rstest::rstest;
use serde_json::{json, Value};
use zbx_conform::catalog::{Body, Catalog};
use zbx_conform::check::SchemaCache;

const KINDS: &[&str] = &[
    "log.request",
    "register.request",
    "register.response",
    "start.request",
    "terminate.request",
    "export.request",
    "export.response",
    "configure.request",
    "validate.request",
    "validate.response",
];

fn catalog() -> Catalog {
    Catalog::load(&root()).expect("catalog loads")
}

fn fixture(c: &Catalog, version: &str, kind: &str) -> Value {
    let p = c.fixture_path("plugin", version, kind);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn violations(c: &Catalog, cache: &SchemaCache, version: &str, kind: &str, v: &Value) -> usize {
    cache
        .validate(&c.schema_path("plugin", version, kind), v)
        .expect("schema compiles")
        .len()
}

#[test]
fn catalog_lists_every_kind_in_every_version() {
    let c = catalog();
    // Every version with a plugin protocol in schemas/versions.yaml, and only those.
    let with_protocol: Vec<String> = zbx_conform::plugin::PluginVersion::all(&c)
        .iter()
        .map(|v| v.catalog_version().to_string())
        .collect();
    assert_eq!(c.versions("plugin"), with_protocol);
    assert!(with_protocol.iter().any(|v| v == "6.0"));
    let fam = c.family("plugin").expect("plugin family");
    assert_eq!(fam.kinds.len(), KINDS.len());
    for k in KINDS {
        for v in &with_protocol {
            assert!(c.kind("plugin", v, k).is_some(), "{k} missing in {v}");
        }
    }
}

#[rstest]
fn fixtures_are_valid_and_recognised(
    #[values("6.0", "6.4", "7.0")] version: &str,
    #[values(
        "log.request",
        "register.request",
        "register.response",
        "start.request",
        "terminate.request",
        "export.request",
        "export.response",
        "configure.request",
        "validate.request",
        "validate.response"
    )]
    kind: &str,
) {
    let c = catalog();
    let cache = SchemaCache::new();
    let f = fixture(&c, version, kind);
    assert_eq!(
        violations(&c, &cache, version, kind, &f),
        0,
        "{kind} {version}"
    );
    let entry = c.kind("plugin", version, kind).expect("kind");
    let got = c
        .classify("plugin", version, &entry.from, &Body::Json(f.clone()))
        .map(|k| k.kind.clone());
    assert_eq!(got.as_deref(), Some(kind));
    // Mutations every schema must reject: a wrong type code, a missing id, an unknown member
    // (the 7.0 Export request was open until its `timeout` member was measured on the real
    // agent2 7.0.22; now every schema is closed).
    let mut wrong_type = f.clone();
    wrong_type["type"] = json!(99);
    assert!(
        violations(&c, &cache, version, kind, &wrong_type) > 0,
        "type 99 accepted"
    );
    let mut no_id = f.clone();
    no_id.as_object_mut().expect("object").remove("id");
    assert!(
        violations(&c, &cache, version, kind, &no_id) > 0,
        "missing id accepted"
    );
    let mut extra = f.clone();
    extra["zbxconform_extra"] = json!(1);
    assert!(
        violations(&c, &cache, version, kind, &extra) > 0,
        "{kind} {version}: unknown member accepted"
    );
}

#[test]
fn register_version_string_follows_the_agent_generation() {
    let c = catalog();
    let cache = SchemaCache::new();
    for (version, wire, other) in [
        ("6.0", "6.0.13", "6.4.0"),
        ("6.4", "6.4.0", "6.0.13"),
        ("7.0", "6.4.0", "1.0"),
    ] {
        let ok = json!({"id": 1, "type": 2, "version": wire});
        let bad = json!({"id": 1, "type": 2, "version": other});
        assert_eq!(violations(&c, &cache, version, "register.request", &ok), 0);
        assert!(
            violations(&c, &cache, version, "register.request", &bad) > 0,
            "{version} took {other}"
        );
        assert_eq!(
            zbx_conform::plugin::PluginVersion::parse(&c, version)
                .map(|v| v.wire_version().to_string()),
            Ok(wire.to_string())
        );
    }
}

#[rstest]
#[case(json!({"id":1,"type":3,"name":"","error":"plugin cannot be loaded"}), true)]
#[case(json!({"id":1,"type":3,"name":"X","metrics":["k","D."],"interfaces":1}), true)]
#[case(json!({"id":1,"type":3,"name":"X","metrics":["k","D."],"interfaces":8}), false)]
#[case(json!({"id":1,"type":3,"name":"X","metrics":["k","D."],"interfaces":0}), false)]
#[case(json!({"id":1,"type":3,"name":"X","metrics":["k",1],"interfaces":1}), false)]
#[case(json!({"id":1,"type":3,"name":"","metrics":["k","D."],"interfaces":1}), false)]
#[case(json!({"id":1,"type":3,"name":"X","interfaces":1}), false)]
#[case(json!({"id":1,"type":3,"error":"e","metrics":["k","D."]}), false)]
#[case(json!({"id":0,"type":3,"name":"X","metrics":["k","D."],"interfaces":1}), false)]
fn register_response_shapes(#[case] body: Value, #[case] valid: bool) {
    let c = catalog();
    let cache = SchemaCache::new();
    for v in ["6.0", "6.4", "7.0"] {
        assert_eq!(
            violations(&c, &cache, v, "register.response", &body) == 0,
            valid,
            "{v}: {body}"
        );
    }
}

#[rstest]
#[case(json!({"id":3,"type":7,"value":1}), true)]
#[case(json!({"id":3,"type":7,"value":{"a":[1]}}), true)]
#[case(json!({"id":3,"type":7}), true)]
#[case(json!({"id":3,"type":7,"error":"Unknown metric."}), true)]
#[case(json!({"id":3,"type":7,"value":1,"error":"both"}), false)]
#[case(json!({"id":3,"type":7,"error":""}), false)]
#[case(json!({"id":0,"type":7,"value":1}), false)]
#[case(json!({"id":-1,"type":7,"value":1}), false)]
#[case(json!({"id":4294967296u64,"type":7,"value":1}), false)]
fn export_response_shapes(#[case] body: Value, #[case] valid: bool) {
    let c = catalog();
    let cache = SchemaCache::new();
    for v in ["6.0", "6.4", "7.0"] {
        assert_eq!(
            violations(&c, &cache, v, "export.response", &body) == 0,
            valid,
            "{v}: {body}"
        );
    }
}

#[test]
fn log_request_needs_id_zero_and_a_known_severity() {
    let c = catalog();
    let cache = SchemaCache::new();
    let ok = json!({"id":0,"type":1,"severity":5,"message":"m"});
    assert_eq!(violations(&c, &cache, "6.0", "log.request", &ok), 0);
    for bad in [
        json!({"id":1,"type":1,"severity":5,"message":"m"}),
        json!({"id":0,"type":1,"severity":6,"message":"m"}),
        json!({"id":0,"type":1,"severity":5}),
        json!({"id":0,"type":1,"severity":"5","message":"m"}),
    ] {
        assert!(
            violations(&c, &cache, "6.0", "log.request", &bad) > 0,
            "{bad}"
        );
    }
}

#[test]
fn terminate_id_is_zero_in_6_0_and_open_later() {
    let c = catalog();
    let cache = SchemaCache::new();
    let seq = json!({"id": 5, "type": 5});
    assert!(violations(&c, &cache, "6.0", "terminate.request", &seq) > 0);
    assert_eq!(violations(&c, &cache, "7.0", "terminate.request", &seq), 0);
}

#[test]
fn private_options_built_by_the_host_match_the_schema() {
    let c = catalog();
    let cache = SchemaCache::new();
    use zbx_conform::plugin::options::{global_options, private_options, unknown_option};
    let tree = private_options("Good", "/usr/lib/p", &[unknown_option()]);
    for v in ["6.0", "6.4", "7.0"] {
        let validate = json!({"id": 2, "type": 9, "private_options": tree});
        let configure = json!({"id": 1, "type": 8, "global_options": global_options(3), "private_options": tree});
        assert_eq!(violations(&c, &cache, v, "validate.request", &validate), 0);
        assert_eq!(
            violations(&c, &cache, v, "configure.request", &configure),
            0
        );
    }
    let broken = json!({"id": 2, "type": 9, "private_options": {"Name": "x", "Nodes": [{"Value": 5, "Line": 1}], "Line": 1}});
    assert!(violations(&c, &cache, "6.0", "validate.request", &broken) > 0);
}

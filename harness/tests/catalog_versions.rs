//! Server<->proxy 6.4 and 7.0: every catalog row has a schema that compiles and a fixture
//! that is valid and classified as its kind, broken variants are rejected, and the
//! differences between versions (incremental configuration sync, proxy groups, host data)
//! are enforced by the per-version schemas (protocol.md §2.4-2.6).

mod support;

use rstest::rstest;
use serde_json::{json, Value};
use std::path::Path;
use zbx_conform::catalog::{Body, Catalog};
use zbx_conform::check::SchemaCache;

const FAMILY: &str = "server-proxy";

/// The versions with incremental configuration sync (6.4 on): the catalog's, not a
/// hand-kept list, so a version added as data is checked too.
fn incremental_versions() -> Vec<String> {
    versions_where(|v| v.has("incremental-config"))
}

/// The versions that push the whole configuration (5.4, 6.0).
fn full_config_versions() -> Vec<String> {
    versions_where(|v| !v.has("incremental-config"))
}

fn versions_where(pred: impl Fn(&zbx_conform::catalog::VersionInfo) -> bool) -> Vec<String> {
    let v: Vec<String> = catalog()
        .all_versions()
        .iter()
        .filter(|v| pred(v))
        .map(|v| v.version.clone())
        .collect();
    assert!(!v.is_empty());
    v
}

fn catalog() -> &'static Catalog {
    support::catalog()
}

fn cache() -> &'static SchemaCache {
    support::schema_cache()
}

fn read_json(p: &Path) -> Value {
    let text =
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{} readable: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is JSON: {e}", p.display()))
}

fn fixture(version: &str, kind: &str) -> Value {
    read_json(&catalog().fixture_path(FAMILY, version, kind))
}

/// Violations of `instance` against the kind's schema in `version`.
fn violations(version: &str, kind: &str, instance: &Value) -> Vec<String> {
    let p = catalog().schema_path(FAMILY, version, kind);
    cache()
        .validate(&p, instance)
        .unwrap_or_else(|e| panic!("schema compiles: {e}"))
        .into_iter()
        .map(|v| format!("{} ({}): {}", v.instance_path, v.schema_path, v.message))
        .collect()
}

fn assert_valid(version: &str, kind: &str, instance: &Value) {
    let v = violations(version, kind, instance);
    assert!(v.is_empty(), "{kind} {version} rejects {instance}: {v:#?}");
}

fn assert_rejected(version: &str, kind: &str, instance: &Value) {
    assert!(
        !violations(version, kind, instance).is_empty(),
        "{kind} {version} accepts {instance}"
    );
}

fn classify(version: &str, from: &str, body: &Value) -> Option<&'static str> {
    catalog()
        .classify(FAMILY, version, from, &Body::Json(body.clone()))
        .map(|k| k.kind.as_str())
}

// ---------------------------------------------------------------- JSON helpers

fn obj(v: &mut Value) -> &mut serde_json::Map<String, Value> {
    v.as_object_mut().expect("object")
}

/// `base` with top-level member `key` set to `value`.
fn with(base: &Value, key: &str, value: Value) -> Value {
    let mut out = base.clone();
    obj(&mut out).insert(key.to_string(), value);
    out
}

/// `base` without top-level member `key` (which must exist).
fn without(base: &Value, key: &str) -> Value {
    let mut out = base.clone();
    assert!(obj(&mut out).shift_remove(key).is_some(), "{key} existed");
    out
}

// ---------------------------------------------------------------- every row

/// The kinds of every version, in catalog order, as a snapshot: a kind that appears in
/// or vanishes from a version shows in review. (Each row's fixture, recognisers and
/// schema are checked in catalog_fixtures.rs.)
#[test]
fn kinds_by_version() {
    let by_version: std::collections::BTreeMap<String, Vec<String>> = catalog()
        .versions(FAMILY)
        .into_iter()
        .map(|v| {
            let kinds = catalog()
                .rows(Some(FAMILY), Some(&v))
                .into_iter()
                .map(|r| r.kind)
                .collect();
            (v, kinds)
        })
        .collect();
    // Versions with the incremental dialogue share one list.
    let lists: std::collections::BTreeSet<&Vec<String>> = incremental_versions()
        .iter()
        .map(|v| &by_version[v])
        .collect();
    assert_eq!(lists.len(), 1, "{by_version:#?}");
    insta::assert_json_snapshot!("server_proxy_kinds_by_version", by_version);
}

// ---------------------------------------------------------------- passive config dialogue

/// A 5.4/6.0 configuration push (tables in "data") is still recognised as the passive
/// config request in 6.4/7.0, so the report names the kind, but its schema rejects it.
#[test]
fn old_style_passive_config_push_is_recognised_and_rejected() {
    for version in incremental_versions() {
        let version = version.as_str();
        let push = fixture("6.0", "passive.proxy-config.request");
        assert_eq!(
            classify(version, "server", &push),
            Some("passive.proxy-config.request")
        );
        assert_rejected(version, "passive.proxy-config.request", &push);
        assert_valid("6.0", "passive.proxy-config.request", &push);
    }
}

/// The reverse: the empty 6.4+ request is what a 6.0 proxy answers with "cannot find
/// pair with name data" — not a valid 5.4/6.0 request.
#[test]
fn empty_passive_config_request_is_invalid_before_6_4() {
    let empty = fixture("7.0", "passive.proxy-config.request");
    assert_eq!(empty, json!({"request": "proxy config"}));
    for version in full_config_versions() {
        assert_rejected(&version, "passive.proxy-config.request", &empty);
    }
}

/// The config answer is `{}` when the proxy's revision is current, for both modes.
#[rstest]
fn no_change_config_answer_is_empty_object(
    #[values("passive.proxy-config.data", "active.proxy-config.response")] kind: &str,
) {
    for version in incremental_versions() {
        let version = version.as_str();
        let empty = json!({});
        assert_valid(version, kind, &empty);
        assert_eq!(
            classify(version, "server", &empty),
            Some("active.proxy-config.response")
        );
        // Before 6.4 the answer is always the full table set.
        assert_rejected("6.0", "active.proxy-config.response", &empty);
    }
}

/// Broken config answers, in both modes and versions.
#[rstest]
fn broken_config_answer_is_rejected(
    #[values("passive.proxy-config.data", "active.proxy-config.response")] kind: &str,
) {
    for version in incremental_versions() {
        let version = version.as_str();
        let fx = fixture(version, kind);
        let cases = [
            // full_sync is 1 when present, nothing else.
            with(&fx, "full_sync", json!(0)),
            with(&fx, "full_sync", json!(2)),
            with(&fx, "full_sync", json!(true)),
            with(&fx, "full_sync", json!("1")),
            // Data without the server's revision, a revision without data.
            without(&fx, "config_revision"),
            without(&fx, "data"),
            json!({"del_hostids": [10090]}),
            json!({"config_revision": 1530}),
            with(&fx, "config_revision", json!(-1)),
            with(&fx, "del_hostids", json!([])),
            with(&fx, "del_macro_hostids", json!(["10085"])),
            // 6.0 put macro.secrets among the tables; since 6.4 it is a top-level member.
            with(
                &fx,
                "data",
                json!({"macro.secrets": {"secret/zabbix": {"password": "x"}}}),
            ),
            with(&fx, "response", json!("success")),
            with(&fx, "request", json!("proxy config")),
        ];
        for c in cases {
            assert_ne!(c, fx, "mutation changes the fixture");
            assert_rejected(version, kind, &c);
        }
    }
}

/// The 6.0 answer (the bare table object) is not a 6.4+ answer.
#[test]
fn old_style_config_answer_is_rejected() {
    for version in incremental_versions() {
        let version = version.as_str();
        let old = fixture("6.0", "active.proxy-config.response");
        assert_rejected(version, "active.proxy-config.response", &old);
        assert_rejected(version, "passive.proxy-config.data", &old);
    }
}

#[test]
fn revision_reply_needs_session_and_revision() {
    for version in incremental_versions() {
        let version = version.as_str();
        let kind = "passive.proxy-config.revision";
        let fx = fixture(version, kind);
        for c in [
            without(&fx, "session"),
            without(&fx, "config_revision"),
            without(&fx, "version"),
            with(&fx, "config_revision", json!("1523")),
            with(&fx, "session", json!("d7e4f1a29c0b83e56a1f4b7c2d9e0a1")),
            with(&fx, "response", json!("success")),
        ] {
            assert_rejected(version, kind, &c);
        }
        // A reply that lost its session is still recognised as a revision reply, so the
        // report says what is missing instead of naming another kind.
        assert_eq!(
            classify(version, "proxy", &without(&fx, "session")),
            Some(kind)
        );
    }
}

// ---------------------------------------------------------------- active config request

#[test]
fn active_config_request_needs_session_and_revision() {
    for version in incremental_versions() {
        let version = version.as_str();
        let kind = "active.proxy-config.request";
        let fx = fixture(version, kind);
        for c in [
            without(&fx, "session"),
            without(&fx, "config_revision"),
            with(&fx, "config_revision", json!("1523")),
            with(&fx, "config_revision", json!(-1)),
            with(&fx, "session", json!("D7E4F1A29C0B83E56A1F4B7C2D9E0A13")),
        ] {
            assert_rejected(version, kind, &c);
        }
        // The 6.0 request (no session, no revision) is what a 6.4 server refuses.
        let old = with(&fixture("6.0", kind), "version", fx["version"].clone());
        assert_rejected(version, kind, &old);
        // And a 6.4+ request (session, config_revision) is not a valid 6.0 one.
        let new_in_60 = obj_without(&with(&fx, "version", json!("6.0.14")), "hostmap_revision");
        assert_rejected("6.0", kind, &new_in_60);
    }
}

fn obj_without(v: &Value, key: &str) -> Value {
    let mut out = v.clone();
    obj(&mut out).shift_remove(key);
    out
}

// ---------------------------------------------------------------- 7.0 proxy groups

/// hostmap_revision exists only in 7.0 and only when non-zero.
#[rstest]
#[case("active.proxy-config.request")]
#[case("passive.proxy-config.revision")]
fn hostmap_revision_only_in_7_0(#[case] kind: &str) {
    let f70 = fixture("7.0", kind);
    assert!(f70.get("hostmap_revision").is_some(), "7.0 fixture has it");
    assert_valid("7.0", kind, &obj_without(&f70, "hostmap_revision"));
    assert_rejected("7.0", kind, &with(&f70, "hostmap_revision", json!(0)));
    assert_rejected("7.0", kind, &with(&f70, "hostmap_revision", json!("12")));

    let f64 = fixture("6.4", kind);
    assert!(f64.get("hostmap_revision").is_none());
    assert_rejected("6.4", kind, &with(&f64, "hostmap_revision", json!(12)));
}

/// proxy_group exists only in 7.0 config answers.
#[rstest]
fn proxy_group_only_in_7_0(
    #[values("passive.proxy-config.data", "active.proxy-config.response")] kind: &str,
) {
    let f70 = fixture("7.0", kind);
    let group = f70["proxy_group"].clone();
    assert!(group.is_object(), "7.0 fixture has proxy_group");
    assert_valid("7.0", kind, &obj_without(&f70, "proxy_group"));
    assert_rejected(
        "6.4",
        kind,
        &with(&fixture("6.4", kind), "proxy_group", group.clone()),
    );

    for broken in [
        obj_without(&group, "failover_delay"),
        obj_without(&group, "hostmap_revision"),
        with(&group, "failover_delay", json!(60)),
        with(&group, "full_sync", json!(0)),
        with(&group, "del_hostproxyids", json!([])),
        with(&group, "hostmap", json!([])),
    ] {
        assert_rejected("7.0", kind, &with(&f70, "proxy_group", broken));
    }
    // proxy_group alone is not an answer: the server always sends data and its revision.
    assert_rejected("7.0", kind, &json!({"proxy_group": group}));
}

// ---------------------------------------------------------------- proxy data

#[rstest]
fn host_data_is_new_in_6_4(
    #[values("passive.proxy-data.response", "active.proxy-data.request")] kind: &str,
) {
    for version in incremental_versions() {
        let version = version.as_str();
        let fx = fixture(version, kind);
        let rows = fx["host data"].clone();
        assert!(rows.is_array(), "{version} fixture has host data");
        for broken in [
            json!([]),
            json!([{"hostid": 10084}]),
            json!([{"active_status": 1}]),
            json!([{"hostid": 10084, "active_status": "1"}]),
            json!([{"hostid": 10084, "active_status": -1}]),
            json!([{"hostid": 10084, "active_status": 1, "available": 1}]),
        ] {
            assert_rejected(version, kind, &with(&fx, "host data", broken));
        }
        // 6.0 proxies do not send it (6.0 top-level keys are closed).
        let f60 = with(&fixture("6.0", kind), "host data", rows);
        assert_rejected("6.0", kind, &f60);
    }
}

/// The revision reply and the data response both carry a session and no request; the
/// recognisers keep them apart by config_revision.
#[test]
fn revision_reply_is_not_proxy_data() {
    for version in incremental_versions() {
        let version = version.as_str();
        let data = fixture(version, "passive.proxy-data.response");
        let rev = fixture(version, "passive.proxy-config.revision");
        assert_eq!(
            classify(version, "proxy", &data),
            Some("passive.proxy-data.response")
        );
        assert_eq!(
            classify(version, "proxy", &rev),
            Some("passive.proxy-config.revision")
        );
        assert_rejected(version, "passive.proxy-data.response", &rev);
        assert_rejected(version, "passive.proxy-config.revision", &data);
    }
}

// ---------------------------------------------------------------- versions

/// Version strings follow the catalog version: "6.4.x" in 6.4, "7.0.x" in 7.0.
#[rstest]
#[case("6.4", "6.0.14")]
#[case("6.4", "7.0.6")]
#[case("6.4", "6.4")]
#[case("7.0", "6.4.20")]
#[case("7.0", "7.2.0")]
#[case("7.0", "70.0.1")]
fn version_of_another_release_is_rejected(#[case] version: &str, #[case] other: &str) {
    for kind in [
        "passive.proxy-config.revision",
        "passive.proxy-config.response",
        "passive.proxy-data.response",
        "passive.proxy-tasks.response",
        "active.proxy-config.request",
        "active.proxy-data.request",
        "active.proxy-heartbeat.request",
    ] {
        let fx = fixture(version, kind);
        assert_valid(version, kind, &fx);
        assert_rejected(version, kind, &with(&fx, "version", json!(other)));
    }
}

#[rstest]
#[case("6.4", "6.4.0")]
#[case("6.4", "6.4.21rc1")]
#[case("7.0", "7.0.0")]
#[case("7.0", "7.0.13")]
fn version_of_the_release_is_accepted(#[case] version: &str, #[case] full: &str) {
    let kind = "active.proxy-config.request";
    assert_valid(
        version,
        kind,
        &with(&fixture(version, kind), "version", json!(full)),
    );
}

/// Task types beyond the 6.0 list are unverified for 6.4/7.0 and accepted there, while a
/// known type still needs its fields.
#[test]
fn task_types_are_permissive_from_6_4() {
    for version in incremental_versions() {
        let version = version.as_str();
        let kind = "passive.proxy-data.ack";
        let fx = fixture(version, kind);
        let task9 = with(
            &fx,
            "tasks",
            json!([{"type": 9, "clock": 1700000003, "ttl": 600}]),
        );
        assert_valid(version, kind, &task9);
        assert_rejected(
            "6.0",
            kind,
            &with(&fixture("6.0", kind), "tasks", task9["tasks"].clone()),
        );
        assert_rejected(
            version,
            kind,
            &with(
                &fx,
                "tasks",
                json!([{"type": 6, "clock": 1700000003, "ttl": 600}]),
            ),
        );
        assert_rejected(
            version,
            kind,
            &with(
                &fx,
                "tasks",
                json!([{"type": 0, "clock": 1700000003, "ttl": 600}]),
            ),
        );
    }
}

/// The deprecated heartbeat keeps its 6.0 shape.
#[test]
fn heartbeat_keeps_its_shape() {
    for version in incremental_versions() {
        let version = version.as_str();
        let kind = "active.proxy-heartbeat.request";
        let fx = fixture(version, kind);
        assert_eq!(
            obj_without(&fx, "version"),
            obj_without(&fixture("6.0", kind), "version")
        );
        assert_rejected(
            version,
            kind,
            &with(&fx, "session", json!("d7e4f1a29c0b83e56a1f4b7c2d9e0a13")),
        );
    }
}

/// 7.0 configuration: `hosts` without `host_inventory` is what a 6.x server sends and what
/// the real 7.0.22 proxy refuses ("cannot find host_inventory data"); the 7.0 schemas of
/// both configuration kinds say so, 6.4's do not.
#[rstest]
#[case("passive.proxy-config.data")]
#[case("active.proxy-config.response")]
fn seven_zero_configuration_needs_host_inventory_with_hosts(#[case] kind: &str) {
    let c = catalog();
    let old_tables = read_json(&c.fixture_path("server-proxy", "6.4", "passive.proxy-config.data"));
    assert!(old_tables["data"].get("hosts").is_some());
    assert!(old_tables["data"].get("host_inventory").is_none());
    let v70 = cache()
        .validate(&c.schema_path("server-proxy", "7.0", kind), &old_tables)
        .expect("schema compiles");
    assert!(
        v70.iter().any(|v| v.message.contains("host_inventory")),
        "{kind} 7.0 accepted hosts without host_inventory: {v70:?}"
    );
    let v64 = cache()
        .validate(&c.schema_path("server-proxy", "6.4", kind), &old_tables)
        .expect("schema compiles");
    assert!(v64.is_empty(), "{kind} 6.4: {v64:?}");
    let synced = read_json(&c.fixture_path("server-proxy", "7.0", "proxy-config.trapper.sync"));
    let ok = cache()
        .validate(&c.schema_path("server-proxy", "7.0", kind), &synced)
        .expect("schema compiles");
    assert!(
        ok.is_empty(),
        "{kind} 7.0 refuses the measured full sync: {ok:?}"
    );
}

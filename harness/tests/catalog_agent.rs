//! The agent and sender families: every catalog row has a compiling schema and a valid
//! fixture that the catalog recognises as exactly that kind; the data files on disk match
//! the catalog; and what a broken agent, server or sender would send is rejected by the
//! schema or not recognised as the kind it pretends to be (protocol.md §1.7, §3, §5).

mod support;

use rstest::rstest;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::PathBuf;
use zbx_conform::catalog::{Body, BodyType, Catalog, KindEntry, ANY_SIDE};
use zbx_conform::check::SchemaCache;

const FAMILIES: [&str; 2] = ["agent", "sender"];
/// Every version the catalog lists (schemas/versions.yaml): the newer ones are `like`
/// 7.0 and inherit its fixtures.
const VERSIONS: [&str; 6] = ["5.4", "6.0", "6.4", "7.0", "7.2", "7.4"];

fn catalog() -> &'static Catalog {
    support::catalog()
}

fn cache() -> &'static SchemaCache {
    support::schema_cache()
}

fn entry(family: &str, version: &str, kind: &str) -> &'static KindEntry {
    catalog()
        .kind(family, version, kind)
        .unwrap_or_else(|| panic!("{family} {kind} {version} is in the catalog"))
}

/// The fixture as stored: a JSON value, or a JSON string holding a text payload.
fn fixture(family: &str, version: &str, kind: &str) -> Value {
    let p = catalog().fixture_path(family, version, kind);
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("fixture {} readable: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {} is JSON: {e}", p.display()))
}

/// The payload bytes a peer would put in the frame for this fixture.
fn payload(family: &str, version: &str, kind: &str) -> Vec<u8> {
    match (
        entry(family, version, kind).body,
        fixture(family, version, kind),
    ) {
        (BodyType::Text, Value::String(s)) => s.into_bytes(),
        (BodyType::Text, other) => panic!("{family} {kind} {version}: text fixture is {other}"),
        (BodyType::Json, v) => serde_json::to_vec(&v).expect("serialise"),
    }
}

fn violations(family: &str, version: &str, kind: &str, instance: &Value) -> Vec<String> {
    let p = catalog().schema_path(family, version, kind);
    cache()
        .validate(&p, instance)
        .unwrap_or_else(|e| panic!("schema compiles: {e}"))
        .into_iter()
        .map(|v| format!("{} ({}): {}", v.instance_path, v.schema_path, v.message))
        .collect()
}

fn valid(family: &str, version: &str, kind: &str, instance: &Value) -> bool {
    violations(family, version, kind, instance).is_empty()
}

/// Kinds of `family`/`version` sent by `from` whose recogniser accepts `body`.
fn accepting(family: &str, version: &str, from: &str, body: &Body) -> Vec<String> {
    catalog()
        .family(family)
        .expect("family")
        .kinds
        .iter()
        .filter(|k| k.from == from || k.from == ANY_SIDE)
        .filter(|k| k.versions.iter().any(|v| v == version))
        .filter(|k| k.recognise.accepts(body))
        .map(|k| k.kind.clone())
        .collect()
}

fn classify(family: &str, version: &str, from: &str, payload: &[u8]) -> Option<String> {
    catalog()
        .classify(family, version, from, &Body::from_payload(payload))
        .map(|k| k.kind.clone())
}

// ---------------------------------------------------------------- every row

#[test]
fn catalog_rows_have_the_expected_kinds_per_version() {
    let kinds = |family: &str, version: &str| -> Vec<String> {
        let mut k: Vec<String> = catalog()
            .rows(Some(family), Some(version))
            .into_iter()
            .map(|r| r.kind)
            .collect();
        k.sort();
        k
    };
    let base_agent = [
        "active.checks.request",
        "active.checks.response",
        "agent.data.request",
        "agent.data.response",
        "failed.response",
        "passive.check.error",
        "passive.check.notsupported",
        "passive.check.request",
        "passive.check.value",
    ];
    for v in ["5.4", "6.0"] {
        assert_eq!(kinds("agent", v), base_agent, "agent {v}");
    }
    let mut a64: Vec<&str> = base_agent.to_vec();
    a64.push("active.heartbeat.request");
    a64.sort();
    assert_eq!(kinds("agent", "6.4"), a64);
    let mut a70 = a64.clone();
    a70.extend([
        "passive.checks.error",
        "passive.checks.request",
        "passive.checks.response",
        "redirect.response",
    ]);
    a70.sort();
    assert_eq!(kinds("agent", "7.0"), a70);

    let base_sender = [
        "failed.response",
        "sender.data.request",
        "sender.data.response",
        "sender.legacy.request",
        "sender.legacy.response",
    ];
    for v in ["5.4", "6.0", "6.4"] {
        assert_eq!(kinds("sender", v), base_sender, "sender {v}");
    }
    let mut s70 = base_sender.to_vec();
    s70.push("redirect.response");
    s70.sort();
    assert_eq!(kinds("sender", "7.0"), s70);
}

#[test]
fn every_row_has_a_valid_fixture_recognised_as_exactly_its_kind() {
    let mut checked = 0;
    for family in FAMILIES {
        let rows = catalog().rows(Some(family), None);
        assert!(!rows.is_empty(), "{family} has rows");
        for r in rows {
            let (v, kind) = (r.version.as_str(), r.kind.as_str());
            let e = entry(family, v, kind);
            assert_ne!(e.from, ANY_SIDE, "{family} {kind}: a concrete sender");
            cache()
                .compile(&catalog().root().join(&r.schema))
                .unwrap_or_else(|e| panic!("{e}"));
            let fx = fixture(family, v, kind);
            let bad = violations(family, v, kind, &fx);
            assert!(
                bad.is_empty(),
                "{family} {kind} {v} fixture invalid: {bad:#?}"
            );

            // What arrives on the wire is classified from the payload bytes.
            let bytes = payload(family, v, kind);
            let body = Body::from_payload(&bytes);
            match e.body {
                BodyType::Text => assert!(matches!(body, Body::Text(_)), "{kind} {v}: text body"),
                BodyType::Json => assert_eq!(body, Body::Json(fx.clone()), "{kind} {v}"),
            }
            assert_eq!(
                accepting(family, v, &e.from, &body),
                vec![kind.to_string()],
                "{family} {kind} {v}: exactly one recogniser"
            );
            assert_eq!(
                classify(family, v, &e.from, &bytes).as_deref(),
                Some(kind),
                "{family} {kind} {v}"
            );
            checked += 1;
        }
    }
    // agent: 9 + 9 + 10 + 14 (+ 14 + 14 for 7.2, 7.4) rows,
    // sender: 5 + 5 + 5 + 6 (+ 6 + 6) rows.
    assert_eq!(checked, 70 + 33);
}

/// Every file under schemas/<family>/<v>/ and fixtures/<family>/<v>/ belongs to a row,
/// or (fixtures) is used by a scenario.
#[test]
fn no_orphan_schema_or_fixture_files() {
    let c = catalog();
    for family in FAMILIES {
        let mut known: HashSet<PathBuf> = c
            .rows(Some(family), None)
            .iter()
            .flat_map(|r| [c.root().join(&r.schema), c.root().join(&r.fixture)])
            .collect();
        // Scenario-specific fixtures (e.g. a proxy configuration pushed before the
        // sender's data) are not catalog rows but are used by a scenario.
        for v in VERSIONS {
            for name in support::fixture_names_used_by_scenarios() {
                let p = c.fixture_path(family, v, &name);
                // `other-family:name` resolves outside this family's folders.
                if p.is_file() && p.starts_with(c.root().join("fixtures").join(family)) {
                    known.insert(p);
                }
            }
        }
        let mut seen = 0;
        for top in ["schemas", "fixtures"] {
            for v in VERSIONS {
                let dir = c.root().join(top).join(family).join(v);
                // A version like another may hold no fixture of its own.
                if top == "fixtures" && !dir.exists() {
                    continue;
                }
                for e in std::fs::read_dir(&dir).expect("version dir") {
                    let p = e.expect("entry").path();
                    if p.is_file() {
                        assert!(known.contains(&p), "orphan file {}", p.display());
                        seen += 1;
                    }
                }
            }
        }
        assert_eq!(seen, known.len(), "{family}");
    }
    assert_eq!(c.versions("agent"), VERSIONS);
    assert_eq!(c.versions("sender"), VERSIONS);
}

#[test]
fn schemas_are_self_contained_2020_12_documents() {
    let c = catalog();
    for family in FAMILIES {
        for r in c.rows(Some(family), None) {
            let p = c.root().join(&r.schema);
            let s: Value = serde_json::from_str(&std::fs::read_to_string(&p).expect("read"))
                .expect("schema JSON");
            let name = p.display();
            assert_eq!(
                s["$schema"], "https://json-schema.org/draft/2020-12/schema",
                "{name}"
            );
            assert!(s.get("$id").is_none(), "{name} has $id");
            let title = s["title"].as_str().unwrap_or_default();
            assert!(
                title.contains(&r.kind) && title.contains(&r.version),
                "{name}"
            );
            let desc = s["description"].as_str().unwrap_or_default();
            assert!(desc.contains(&r.kind), "{name} description names the kind");
            let text = s.to_string();
            for (i, _) in text.match_indices("\"$ref\":\"") {
                assert!(
                    text[i + 8..].starts_with("#/$defs/"),
                    "{name}: non-local $ref"
                );
            }
        }
    }
}

#[test]
fn volatile_keys_cover_protocol_md_section_5() {
    let agent = &catalog().family("agent").expect("agent").volatile;
    for key in [
        "clock",
        "ns",
        "session",
        "id",
        "lastlogsize",
        "mtime",
        "itemid",
        "config_revision",
        "version",
    ] {
        assert!(agent.iter().any(|k| k == key), "agent: {key} volatile");
    }
    // info is compared by pattern, not blanked: its counts matter.
    assert!(!agent.iter().any(|k| k == "info"));
    let sender = &catalog().family("sender").expect("sender").volatile;
    for key in ["clock", "ns"] {
        assert!(sender.iter().any(|k| k == key), "sender: {key} volatile");
    }
    assert!(!sender.iter().any(|k| k == "info" || k == "value"));
}

// ---------------------------------------------------------------- JSON mutation helpers

fn set(v: &Value, pointer: &str, new: Value) -> Value {
    let mut out = v.clone();
    let (parent, last) = pointer.rsplit_once('/').expect("pointer");
    let slot = if parent.is_empty() {
        &mut out
    } else {
        out.pointer_mut(parent).expect("parent exists")
    };
    match slot {
        Value::Object(m) => {
            m.insert(last.to_string(), new);
        }
        Value::Array(a) => a[last.parse::<usize>().expect("index")] = new,
        _ => panic!("{pointer}: parent is a scalar"),
    }
    out
}

fn remove(v: &Value, pointer: &str) -> Value {
    let mut out = v.clone();
    let (parent, last) = pointer.rsplit_once('/').expect("pointer");
    let slot = if parent.is_empty() {
        &mut out
    } else {
        out.pointer_mut(parent).expect("parent exists")
    };
    let removed = slot.as_object_mut().and_then(|m| m.shift_remove(last));
    assert!(removed.is_some(), "{pointer} existed");
    out
}

fn wrong_type(v: &Value) -> Value {
    match v {
        Value::String(_) => json!(7),
        Value::Number(_) => json!("7"),
        Value::Bool(_) => json!("true"),
        Value::Null => json!([]),
        Value::Object(_) | Value::Array(_) => json!("x"),
    }
}

fn member_pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{k}");
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

fn json_rows() -> Vec<(&'static str, String, String)> {
    FAMILIES
        .iter()
        .flat_map(|f| {
            catalog()
                .rows(Some(f), None)
                .into_iter()
                .filter(|r| entry(f, &r.version, &r.kind).body == BodyType::Json)
                .map(move |r| (*f, r.version, r.kind))
        })
        .collect()
}

#[test]
fn every_member_with_a_wrong_type_is_rejected() {
    let mut mutations = 0;
    for (family, v, kind) in json_rows() {
        let fx = fixture(family, &v, &kind);
        let mut pointers = Vec::new();
        member_pointers(&fx, "", &mut pointers);
        assert!(!pointers.is_empty(), "{family} {kind} {v}");
        for p in pointers {
            let old = fx.pointer(&p).expect("pointer from walk");
            let mutated = set(&fx, &p, wrong_type(old));
            assert!(
                !valid(family, &v, &kind, &mutated),
                "{family} {kind} {v}: {p} = {} accepted",
                mutated.pointer(&p).expect("set")
            );
            mutations += 1;
        }
    }
    assert!(mutations > 300, "{mutations}");
}

#[test]
fn every_missing_required_member_is_rejected() {
    for (family, v, kind) in json_rows() {
        let fx = fixture(family, &v, &kind);
        let p = catalog().schema_path(family, &v, &kind);
        let s: Value =
            serde_json::from_str(&std::fs::read_to_string(p).expect("schema")).expect("JSON");
        let required: Vec<String> = s["required"]
            .as_array()
            .expect("top-level required")
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        assert!(!required.is_empty(), "{family} {kind} {v}");
        for name in required {
            assert!(
                !valid(family, &v, &kind, &remove(&fx, &format!("/{name}"))),
                "{family} {kind} {v}: without {name} accepted"
            );
        }
    }
}

#[test]
fn unknown_members_are_rejected() {
    for (family, v, kind) in json_rows() {
        let fx = fixture(family, &v, &kind);
        let mutated = set(&fx, "/unexpected", json!(1));
        assert!(
            !valid(family, &v, &kind, &mutated),
            "{family} {kind} {v}: extra member accepted"
        );
    }
}

// ---------------------------------------------------------------- passive plain text

/// What a plain-text passive reply is recognised as, from the raw payload.
#[rstest]
#[case(b"1".as_slice(), Some("passive.check.value"))]
#[case(b"0.250000\n", Some("passive.check.value"))]
#[case(b"Linux host 6.1.0 #1 SMP x86_64", Some("passive.check.value"))]
#[case(
    b"ZBX_NOTSUPPORTED\0Unsupported item key.",
    Some("passive.check.notsupported")
)]
#[case(
    b"ZBX_NOTSUPPORTED\0Unknown metric foo",
    Some("passive.check.notsupported")
)]
#[case(b"ZBX_NOTSUPPORTED", Some("passive.check.notsupported"))]
// Without the NUL the server's C-string comparison sees an ordinary value.
#[case(b"ZBX_NOTSUPPORTED Unsupported item key.", Some("passive.check.value"))]
#[case(b"ZBX_NOTSUPPORTEDUnsupported item key.", Some("passive.check.value"))]
#[case(b"ZBX_NOTSUPPORTE", Some("passive.check.value"))]
#[case(b"ZBX_ERROR", Some("passive.check.error"))]
#[case(b"ZBX_ERROR\0Timeout while executing", Some("passive.check.error"))]
#[case(b"ZBX_ERRORS", Some("passive.check.value"))]
#[case(b"", None)]
#[case(b"1\0garbage", None)]
fn passive_text_reply_classification(
    #[values("5.4", "6.0", "6.4", "7.0")] version: &str,
    #[case] reply: &[u8],
    #[case] want: Option<&str>,
) {
    let body = Body::from_payload(reply);
    assert!(matches!(body, Body::Text(_)), "{reply:?} is text");
    let got = accepting("agent", version, "agent", &body);
    assert_eq!(
        got,
        want.map(|k| vec![k.to_string()]).unwrap_or_default(),
        "{reply:?}"
    );
    assert_eq!(
        classify("agent", version, "agent", reply).as_deref(),
        want,
        "{reply:?}"
    );
}

#[rstest]
#[case(
    "passive.check.notsupported",
    "ZBX_NOTSUPPORTED\u{0}Unsupported item key.",
    true
)]
#[case("passive.check.notsupported", "ZBX_NOTSUPPORTED", true)]
#[case("passive.check.notsupported", "ZBX_NOTSUPPORTED\u{0}", false)]
#[case(
    "passive.check.notsupported",
    "ZBX_NOTSUPPORTED Unsupported item key.",
    false
)]
#[case("passive.check.notsupported", "ZBX_NOTSUPPORTED\u{0}a\u{0}b", false)]
#[case("passive.check.value", "1", true)]
#[case("passive.check.value", "", false)]
#[case("passive.check.value", "ZBX_NOTSUPPORTED", false)]
#[case("passive.check.value", "ZBX_ERROR", false)]
#[case("passive.check.value", "1\u{0}2", false)]
#[case("passive.check.error", "ZBX_ERROR", true)]
#[case("passive.check.error", "ZBX_ERROR\u{0}", false)]
#[case("passive.check.request", "agent.ping", true)]
#[case("passive.check.request", "vfs.fs.size[/,free]", true)]
#[case("passive.check.request", "agent.ping\n", false)]
#[case("passive.check.request", "", false)]
#[case("passive.check.request", "bad key", false)]
fn passive_text_schemas(
    #[values("5.4", "6.0", "6.4", "7.0")] version: &str,
    #[case] kind: &str,
    #[case] text: &str,
    #[case] ok: bool,
) {
    assert_eq!(
        valid("agent", version, kind, &json!(text)),
        ok,
        "{kind} {version} {text:?}: {:?}",
        violations("agent", version, kind, &json!(text))
    );
}

#[test]
fn a_json_value_is_not_a_text_passive_kind() {
    // A passive key whose value is JSON text (e.g. vfs.fs.get) is parsed as JSON by
    // Body::from_payload; no text kind claims it (see the catalog header).
    for v in VERSIONS {
        let body = Body::from_payload(br#"[{"fsname":"/"}]"#);
        assert!(matches!(body, Body::Json(_)));
        assert!(accepting("agent", v, "agent", &body).is_empty(), "{v}");
    }
}

// ---------------------------------------------------------------- versions

#[test]
fn version_specific_kinds_are_absent_from_older_versions() {
    for v in ["5.4", "6.0", "6.4"] {
        for kind in [
            "passive.checks.request",
            "passive.checks.response",
            "passive.checks.error",
            "redirect.response",
        ] {
            assert!(
                catalog().kind("agent", v, kind).is_none(),
                "agent {kind} {v}"
            );
            assert!(catalog().kind_any_version("agent", kind).is_some());
        }
        assert!(catalog().kind("sender", v, "redirect.response").is_none());
    }
    for v in ["5.4", "6.0"] {
        assert!(catalog()
            .kind("agent", v, "active.heartbeat.request")
            .is_none());
    }
    // 7.0 messages sent to older peers are not recognised as anything.
    let p = payload("agent", "7.0", "passive.checks.request");
    let r = payload("agent", "7.0", "passive.checks.response");
    let h = payload("agent", "7.0", "active.heartbeat.request");
    let rd = payload("agent", "7.0", "redirect.response");
    for v in ["5.4", "6.0", "6.4"] {
        assert_eq!(classify("agent", v, "server", &p), None, "{v}");
        assert_eq!(classify("agent", v, "agent", &r), None, "{v}");
        // Before proxy groups there is no redirect; it is not passed off as a failure.
        assert_eq!(classify("agent", v, "server", &rd), None, "{v}");
        let redirect: Value = serde_json::from_slice(&rd).expect("JSON");
        assert!(!valid("agent", v, "failed.response", &redirect));
    }
    for v in ["5.4", "6.0"] {
        assert_eq!(classify("agent", v, "agent", &h), None, "{v}");
    }
}

/// Fields that arrived in a later version are rejected by the earlier version's schema.
#[rstest]
#[case("active.checks.request", "/config_revision", json!(0))]
#[case("active.checks.request", "/session", json!("6f1d2c3b4a5968778695a4b3c2d1e0f9"))]
#[case("active.checks.request", "/variant", json!(1))]
#[case("active.checks.response", "/config_revision", json!(3))]
#[case("active.checks.response", "/commands", json!([]))]
#[case("active.checks.response", "/data/0/timeout", json!("3s"))]
#[case("agent.data.response", "/history_upload", json!("disabled"))]
fn later_fields_are_rejected_by_earlier_versions(
    #[values("5.4", "6.0")] version: &str,
    #[case] kind: &str,
    #[case] pointer: &str,
    #[case] value: Value,
) {
    let mutated = set(&fixture("agent", version, kind), pointer, value);
    assert!(
        !valid("agent", version, kind, &mutated),
        "{kind} {version} {pointer}"
    );
}

#[rstest]
#[case("5.4", "active.checks.request", "6.0")]
#[case("6.0", "active.checks.request", "5.4")]
#[case("6.0", "active.checks.request", "6.0.14")]
#[case("6.4", "active.checks.request", "7.0.0")]
#[case("7.0", "active.checks.request", "6.4")]
#[case("7.0", "agent.data.request", "6.0")]
#[case("7.0", "passive.checks.response", "6.4.0")]
#[case("7.0", "passive.checks.response", "7.0")]
#[case("7.0", "active.heartbeat.request", "7.2.0")]
fn versions_of_other_releases_are_rejected(
    #[case] version: &str,
    #[case] kind: &str,
    #[case] other: &str,
) {
    let mutated = set(&fixture("agent", version, kind), "/version", json!(other));
    assert!(
        !valid("agent", version, kind, &mutated),
        "{kind} {version} {other}"
    );
}

// ---------------------------------------------------------------- active checks

fn legacy_item() -> Value {
    json!({"key": "agent.ping", "key_orig": "agent.ping[{$X}]", "delay": 60, "lastlogsize": 0, "mtime": 0})
}

#[rstest]
fn active_checks_response_accepts_both_item_shapes(#[values("5.4", "6.0", "6.4", "7.0")] v: &str) {
    let fx = fixture("agent", v, "active.checks.response");
    // Legacy shape, for agentd that sends no version.
    let legacy = set(&fx, "/data", json!([legacy_item()]));
    assert!(valid("agent", v, "active.checks.response", &legacy), "{v}");
    // Mixed-up shapes are rejected.
    for (p, val) in [
        ("/data/0/delay", json!(60)),
        ("/data/0/key_orig", json!("x")),
        ("/data/0/itemid", json!("44301")),
        ("/data/0/lastlogsize", json!(-1)),
    ] {
        assert!(
            !valid(
                "agent",
                v,
                "active.checks.response",
                &set(&fx, p, val.clone())
            ),
            "{v} {p}={val}"
        );
    }
    for (p, val) in [
        ("/data/0/delay", json!("60")),
        ("/data/0/itemid", json!(1)),
        ("/data/0/delay", json!(-1)),
    ] {
        assert!(
            !valid(
                "agent",
                v,
                "active.checks.response",
                &set(&legacy, p, val.clone())
            ),
            "legacy {v} {p}={val}"
        );
    }
    // refresh_unsupported is always 600.
    let r = set(&fx, "/refresh_unsupported", json!(600));
    assert!(valid("agent", v, "active.checks.response", &r));
    let r = set(&fx, "/refresh_unsupported", json!(60));
    assert!(!valid("agent", v, "active.checks.response", &r));
}

#[rstest]
fn active_checks_response_data_rules(#[values("5.4", "6.0", "6.4", "7.0")] v: &str) {
    let fx = fixture("agent", v, "active.checks.response");
    let no_data = remove(&fx, "/data");
    let bare = json!({"response": "success"});
    match v {
        // 5.4/6.0 always send the item list.
        "5.4" | "6.0" => {
            assert!(!valid("agent", v, "active.checks.response", &no_data));
            assert!(!valid("agent", v, "active.checks.response", &bare));
        }
        // 6.4+: nothing when the agent's revision is current.
        _ => assert!(valid("agent", v, "active.checks.response", &bare), "{v}"),
    }
    if v == "7.0" {
        // data always comes with the revision it belongs to.
        let no_rev = remove(&fx, "/config_revision");
        assert!(!valid("agent", v, "active.checks.response", &no_rev));
    }
}

#[rstest]
fn active_checks_request_rules(#[values("5.4", "6.0", "6.4", "7.0")] v: &str) {
    let fx = fixture("agent", v, "active.checks.request");
    let k = "active.checks.request";
    // The manual's "hostinterface" is not the tag the agent sends.
    let manual = set(
        &remove(&fx, "/interface"),
        "/hostinterface",
        json!("agent-01"),
    );
    assert!(!valid("agent", v, k, &manual), "{v}");
    assert!(!valid("agent", v, k, &set(&fx, "/port", json!("20050"))));
    assert!(!valid("agent", v, k, &set(&fx, "/port", json!(70000))));
    assert!(!valid("agent", v, k, &set(&fx, "/host", json!(""))));
    let minimal = json!({"request": "active checks", "host": "agent-01"});
    // agentd up to 6.2 sends no version; 6.4+ agents always send version, revision and
    // session (7.0: measured; 6.4: documented), which is how `run --listen` tells a
    // pre-6.4 zabbix_agentd that names no version.
    let modern = v == "6.4" || v == "7.0";
    assert_eq!(valid("agent", v, k, &minimal), !modern, "{v}");
    if modern {
        for field in ["/version", "/config_revision", "/session"] {
            assert!(!valid("agent", v, k, &remove(&fx, field)), "{v} {field}");
        }
    }
    if v == "7.0" {
        assert!(!valid("agent", v, k, &remove(&fx, "/variant")), "/variant");
        assert!(!valid("agent", v, k, &set(&fx, "/variant", json!(3))));
        assert!(!valid("agent", v, k, &set(&fx, "/session", json!("abc"))));
    }
}

// ---------------------------------------------------------------- agent data

fn agent2_data(version: &str) -> Value {
    json!({
        "request": "agent data",
        "data": [
            {"id": 1, "itemid": 44302, "value": "1", "clock": 1763890000, "ns": 5},
            {"id": 2, "itemid": 44303, "value": "x", "clock": 1763890001}
        ],
        "session": "6f1d2c3b4a5968778695a4b3c2d1e0f9",
        "host": "agent-01",
        "version": version
    })
}

#[rstest]
fn agent_data_accepts_agent2_shape_where_it_exists(#[values("5.4", "6.0", "6.4")] v: &str) {
    let k = "agent.data.request";
    let a2 = agent2_data(v);
    assert!(
        valid("agent", v, k, &a2),
        "{:?}",
        violations("agent", v, k, &a2)
    );
    // agent2 rows without ns are fine (omitempty), agentd rows need it.
    let agentd = fixture("agent", v, k);
    assert!(!valid("agent", v, k, &remove(&agentd, "/data/0/ns")));
    // No mixing: an agentd row in an agent2 message and the other way round.
    let mixed = set(&a2, "/data/0", agentd["data"][0].clone());
    assert!(!valid("agent", v, k, &mixed));
    let mixed = set(&agentd, "/data/0", a2["data"][0].clone());
    assert!(!valid("agent", v, k, &mixed));
    if v != "6.4" {
        // agent2 6.0 sends no top-level clock/ns.
        assert!(!valid(
            "agent",
            v,
            k,
            &set(&a2, "/clock", json!(1763890002))
        ));
    }
}

#[test]
fn agent_data_7_0_needs_host_and_version() {
    let fx = fixture("agent", "7.0", "agent.data.request");
    let k = "agent.data.request";
    for p in ["/host", "/version", "/session"] {
        assert!(!valid("agent", "7.0", k, &remove(&fx, p)), "{p}");
    }
    // Only command results, no values: fine; neither: not.
    let commands_only = remove(&fx, "/data");
    assert!(valid("agent", "7.0", k, &commands_only));
    assert!(!valid(
        "agent",
        "7.0",
        k,
        &remove(&commands_only, "/commands")
    ));
    // A command result has a value or an error, not both.
    let both = set(&fx, "/commands/0/error", json!("boom"));
    assert!(!valid("agent", "7.0", k, &both));
    // host + key rows are the old agentd shape.
    let old = set(
        &fx,
        "/data/0",
        json!({"host": "agent-01", "key": "agent.ping", "value": "1", "id": 1, "clock": 1, "ns": 1}),
    );
    assert!(!valid("agent", "7.0", k, &old));
}

/// History values are strings for both agents (protocol.md §3.3, fact 4: only plugin
/// Export values may be numbers).
#[rstest]
fn agent_data_value_as_number_is_rejected(
    #[values("5.4", "6.0", "6.4", "7.0")] v: &str,
    #[values(json!(1), json!(0.25), json!(null), json!(true))] value: Value,
) {
    let k = "agent.data.request";
    let agentd = fixture("agent", v, k);
    assert!(!valid(
        "agent",
        v,
        k,
        &set(&agentd, "/data/0/value", value.clone())
    ));
    if v != "7.0" {
        let a2 = agent2_data(v);
        assert!(!valid("agent", v, k, &set(&a2, "/data/0/value", value)));
    }
}

#[rstest]
fn agent_data_row_rules(#[values("5.4", "6.0", "6.4", "7.0")] v: &str) {
    let k = "agent.data.request";
    let fx = fixture("agent", v, k);
    assert!(!valid(
        "agent",
        v,
        k,
        &set(&fx, "/data/0/ns", json!(1_000_000_000))
    ));
    assert!(!valid("agent", v, k, &set(&fx, "/data/0/state", json!(0))));
    assert!(!valid("agent", v, k, &set(&fx, "/data", json!([]))));
    assert!(!valid(
        "agent",
        v,
        k,
        &set(&fx, "/session", json!("6F1D2C3B4A5968778695A4B3C2D1E0F9"))
    ));
    assert!(!valid(
        "agent",
        v,
        k,
        &set(&fx, "/request", json!("agent date"))
    ));
}

// ---------------------------------------------------------------- info strings

#[rstest]
#[case("processed: 3; failed: 0; total: 3; seconds spent: 0.000512", true)]
#[case("processed: 0; failed: 12; total: 12; seconds spent: 12.100000", true)]
#[case("processed: 3; failed: 0; total: 3", false)]
#[case("processed: 3; seconds spent: 0.000512", false)]
#[case("seconds spent: 0.000512", false)]
#[case("processed: 3; failed: 0; total: 3; seconds spent: 0.5", false)]
#[case("processed: -1; failed: 0; total: 3; seconds spent: 0.000512", false)]
#[case("processed:3; failed:0; total:3; seconds spent:0.000512", false)]
#[case("", false)]
#[case("ok", false)]
fn info_must_carry_the_counts(
    #[values("5.4", "6.0", "6.4", "7.0")] v: &str,
    #[values(("agent", "agent.data.response"), ("sender", "sender.data.response"))] which: (
        &str,
        &str,
    ),
    #[case] info: &str,
    #[case] ok: bool,
) {
    let (family, kind) = which;
    let msg = set(&fixture(family, v, kind), "/info", json!(info));
    assert_eq!(
        valid(family, v, kind, &msg),
        ok,
        "{family} {kind} {v} {info:?}"
    );
}

#[rstest]
fn unknown_host_info_is_an_agent_data_answer(#[values("5.4", "6.0", "6.4", "7.0")] v: &str) {
    let msg = json!({"response": "success", "info": "unknown host 'agent-02'"});
    assert!(valid("agent", v, "agent.data.response", &msg));
    assert!(!valid("sender", v, "sender.data.response", &msg));
    // A success without info is an active-checks answer, never a data answer.
    let bare = serde_json::to_vec(&json!({"response": "success"})).expect("json");
    assert_eq!(
        classify("agent", v, "server", &bare).as_deref(),
        Some("active.checks.response")
    );
}

// ---------------------------------------------------------------- 7.0 JSON passive checks

#[test]
fn passive_checks_json_rules() {
    let v = "7.0";
    let req = fixture("agent", v, "passive.checks.request");
    let k = "passive.checks.request";
    assert!(!valid("agent", v, k, &set(&req, "/data", json!([]))));
    assert!(!valid(
        "agent",
        v,
        k,
        &set(&req, "/data/0/timeout", json!("3s"))
    ));
    assert!(!valid(
        "agent",
        v,
        k,
        &set(&req, "/data/0/timeout", json!(0))
    ));
    assert!(!valid("agent", v, k, &remove(&req, "/data/0/timeout")));
    assert!(!valid("agent", v, k, &set(&req, "/data/0/key", json!(""))));

    let resp = fixture("agent", v, "passive.checks.response");
    let k = "passive.checks.response";
    assert!(valid(
        "agent",
        v,
        k,
        &set(&resp, "/data/0", json!({"value": null}))
    ));
    assert!(valid(
        "agent",
        v,
        k,
        &set(&resp, "/data/0", json!({"error": "Unknown metric foo"}))
    ));
    assert!(!valid(
        "agent",
        v,
        k,
        &set(&resp, "/data/0", json!({"value": "1", "error": "x"}))
    ));
    assert!(!valid(
        "agent",
        v,
        k,
        &set(&resp, "/data/0", json!({"value": 1}))
    ));
    assert!(!valid("agent", v, k, &set(&resp, "/data/0", json!({}))));
    assert!(!valid("agent", v, k, &set(&resp, "/variant", json!(3))));

    // A reply with data and error is recognised as a reply (and rejected), not as an error.
    let both = serde_json::to_vec(&set(&resp, "/error", json!("x"))).expect("json");
    assert_eq!(
        classify("agent", v, "agent", &both).as_deref(),
        Some("passive.checks.response")
    );
}

// ---------------------------------------------------------------- redirects and failures

#[rstest]
fn redirect_rules(#[values("agent", "sender")] family: &str) {
    let v = "7.0";
    let fx = fixture(family, v, "redirect.response");
    let k = "redirect.response";
    assert!(valid(
        family,
        v,
        k,
        &set(&fx, "/redirect", json!({"reset": true}))
    ));
    assert!(!valid(
        family,
        v,
        k,
        &set(&fx, "/redirect", json!({"reset": false}))
    ));
    assert!(!valid(family, v, k, &set(&fx, "/redirect", json!({}))));
    assert!(!valid(family, v, k, &remove(&fx, "/redirect/address")));
    assert!(!valid(
        family,
        v,
        k,
        &set(&fx, "/response", json!("success"))
    ));
    // A plain failure is not a redirect.
    let failed = serde_json::to_vec(&json!({"response": "failed", "info": "host [x] not found"}))
        .expect("json");
    assert_eq!(
        classify(family, v, "server", &failed).as_deref(),
        Some("failed.response")
    );
}

#[rstest]
fn failed_response_needs_info(
    #[values("agent", "sender")] family: &str,
    #[values("5.4", "6.0", "6.4", "7.0")] v: &str,
) {
    let fx = fixture(family, v, "failed.response");
    assert!(!valid(family, v, "failed.response", &remove(&fx, "/info")));
    assert!(!valid(
        family,
        v,
        "failed.response",
        &set(&fx, "/response", json!("success"))
    ));
}

// ---------------------------------------------------------------- sender

#[rstest]
fn sender_data_rules(#[values("5.4", "6.0", "6.4", "7.0")] v: &str) {
    let k = "sender.data.request";
    let fx = fixture("sender", v, k);
    for value in [json!(42), json!(4.2), json!(null), json!(true)] {
        assert!(!valid("sender", v, k, &set(&fx, "/data/0/value", value)));
    }
    // Without timestamps: no clock/ns anywhere.
    let plain =
        json!({"request": "sender data", "data": [{"host": "h", "key": "k", "value": "v"}]});
    assert!(
        valid("sender", v, k, &plain),
        "{:?}",
        violations("sender", v, k, &plain)
    );
    // ns only with clock; top-level clock and ns together.
    assert!(!valid("sender", v, k, &remove(&fx, "/data/0/clock")));
    assert!(!valid("sender", v, k, &remove(&fx, "/ns")));
    assert!(!valid("sender", v, k, &set(&fx, "/data", json!({}))));
    assert!(!valid("sender", v, k, &set(&fx, "/data", json!([]))));
    let row = json!({"host": "h", "key": "k", "value": "v"});
    let many = set(&plain, "/data", Value::Array(vec![row; 251]));
    assert!(
        !valid("sender", v, k, &many),
        "more than 250 values per connection"
    );
    assert!(!valid("sender", v, k, &set(&fx, "/data/0/host", json!(""))));
}

#[rstest]
#[case(b"agent-01:trap.text:hello".as_slice(), Some("sender.legacy.request"))]
#[case(b"agent-01:trap[a:b]:hello", Some("sender.legacy.request"))]
#[case(b"no colons here", None)]
#[case(b"one:colon", None)]
#[case(b"<req><host>x</host></req>", None)]
#[case(b"{\"request\":\"sender data\",", None)]
fn sender_text_classification(
    #[values("5.4", "6.0", "6.4", "7.0")] v: &str,
    #[case] payload: &[u8],
    #[case] want: Option<&str>,
) {
    assert_eq!(
        classify("sender", v, "sender", payload).as_deref(),
        want,
        "{payload:?}"
    );
}

#[rstest]
fn sender_legacy_reply_is_exactly_ok(#[values("5.4", "6.0", "6.4", "7.0")] v: &str) {
    assert_eq!(
        classify("sender", v, "server", b"OK").as_deref(),
        Some("sender.legacy.response")
    );
    assert_eq!(classify("sender", v, "server", b"OK\0"), None);
    assert!(!valid("sender", v, "sender.legacy.response", &json!("ok")));
    assert!(!valid("sender", v, "sender.legacy.request", &json!(":k:v")));
}

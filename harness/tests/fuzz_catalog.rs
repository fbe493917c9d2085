//! Fuzz-style robustness of what the runner does with every received payload:
//! `Body::from_payload` on arbitrary bytes, `Catalog::classify` on arbitrary JSON (biased
//! towards the catalog's own vocabulary so recognisers actually match), and schema
//! validation of whatever kind was recognised. No panic, results consistent with the
//! recognisers, memory bounded.
//!
//! Default: 256 cases per property; more with
//! `PROPTEST_CASES=20000 cargo test --release --test fuzz_catalog`.

mod frame_support;
mod support;

use frame_support::{measure, Tracking};
use proptest::prelude::*;
use serde_json::{Map, Value};

use std::sync::OnceLock;
use zbx_conform::catalog::{Body, ANY_SIDE};
use zbx_conform::check::SchemaCache;

#[global_allocator]
static ALLOC: Tracking = Tracking;

const MEMORY_BOUND: usize = 32 << 20;

fn config() -> proptest::test_runner::Config {
    frame_support::proptest_config()
}

use support::catalog;

fn schemas() -> &'static SchemaCache {
    static S: OnceLock<SchemaCache> = OnceLock::new();
    S.get_or_init(SchemaCache::new)
}

/// Keys and string values the recognisers look at (`request`, `response`, ...), taken
/// from the catalog itself so new kinds are covered without editing this test.
fn vocabulary() -> &'static (Vec<String>, Vec<Value>) {
    static V: OnceLock<(Vec<String>, Vec<Value>)> = OnceLock::new();
    V.get_or_init(|| {
        let mut keys = vec!["data".to_string(), "session".into(), "version".into()];
        let mut values = vec![Value::from("success"), Value::from("failed")];
        for fam in catalog().families() {
            for k in &fam.kinds {
                let r = &k.recognise;
                for (p, v) in &r.equals {
                    keys.extend(p.trim_start_matches('/').split('/').map(str::to_string));
                    values.push(v.clone());
                }
                for p in r.present.iter().chain(&r.absent) {
                    keys.extend(p.trim_start_matches('/').split('/').map(str::to_string));
                }
            }
        }
        keys.sort();
        keys.dedup();
        (keys, values)
    })
}

fn key() -> impl Strategy<Value = String> {
    let keys = vocabulary().0.clone();
    prop_oneof![
        4 => prop::sample::select(keys),
        1 => "[a-z ~/]{0,8}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    let values = vocabulary().1.clone();
    prop_oneof![
        3 => prop::sample::select(values),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        1 => ".{0,20}".prop_map(Value::String),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 128, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every (family, version, side) the catalog knows, plus a side nobody uses.
fn targets() -> &'static Vec<(String, String, String)> {
    static T: OnceLock<Vec<(String, String, String)>> = OnceLock::new();
    T.get_or_init(|| {
        let mut out = Vec::new();
        for fam in catalog().families() {
            let mut sides: Vec<String> = fam.kinds.iter().map(|k| k.from.clone()).collect();
            sides.push("nobody".into());
            sides.sort();
            sides.dedup();
            for v in catalog().versions(&fam.family) {
                for s in &sides {
                    out.push((fam.family.clone(), v.clone(), s.clone()));
                }
            }
        }
        assert!(!out.is_empty());
        out
    })
}

/// Classify `body` everywhere and validate it against whatever kind is recognised.
/// Returns how many targets recognised it (so the caller can assert the generator
/// reaches the recognisers at all).
fn exercise(body: &Body) -> usize {
    let mut hits = 0;
    for (family, version, side) in targets() {
        let (kind, usage) = measure(|| catalog().classify(family, version, side, body));
        assert!(usage.peak_extra < MEMORY_BOUND);
        let Some(k) = kind else { continue };
        hits += 1;
        // What classify returns must be consistent with the catalog entry.
        assert!(
            k.from == *side || k.from == ANY_SIDE,
            "{} from {}",
            k.kind,
            k.from
        );
        assert!(k.versions.contains(version), "{} not in {version}", k.kind);
        assert!(k.recognise.same_as.is_none(), "{} is same_as", k.kind);
        assert!(
            k.recognise.accepts(body),
            "{} does not accept its body",
            k.kind
        );
        // The runner validates every recognised message against its schema.
        let instance = match body {
            Body::Json(v) => v.clone(),
            Body::Text(t) => Value::String(t.clone()),
        };
        let path = catalog().schema_path(family, version, &k.kind);
        let (res, usage) = measure(|| schemas().validate(&path, &instance));
        assert!(usage.peak_extra < MEMORY_BOUND);
        let violations =
            res.unwrap_or_else(|e| panic!("schema {} does not load: {e}", path.display()));
        for v in violations {
            assert!(!v.message.is_empty());
        }
    }
    hits
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_json_classifies_consistently(v in json()) {
        exercise(&Body::Json(v));
    }

    #[test]
    fn arbitrary_payload_bytes_become_a_body(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let (body, usage) = measure(|| Body::from_payload(&bytes));
        prop_assert!(usage.peak_extra < MEMORY_BOUND);
        if let Body::Text(t) = &body {
            prop_assert!(t.len() >= bytes.len().min(1) || bytes.is_empty());
        }
        exercise(&body);
    }

    /// Real fixtures with one member replaced by arbitrary JSON: close to every kind, so
    /// both recognition and schema validation see near-misses.
    #[test]
    fn mutated_fixtures_classify_consistently(
        which in any::<prop::sample::Index>(),
        key in key(),
        value in json(),
        drop_it in any::<bool>(),
    ) {
        let fixtures = fixtures();
        let mut v = fixtures[which.index(fixtures.len())].clone();
        if let Value::Object(m) = &mut v {
            if drop_it {
                m.remove(&key);
            } else {
                m.insert(key, value);
            }
        }
        exercise(&Body::Json(v));
    }
}

/// Every JSON fixture of every family and version.
fn fixtures() -> &'static Vec<Value> {
    static F: OnceLock<Vec<Value>> = OnceLock::new();
    F.get_or_init(|| {
        let mut out = Vec::new();
        for fam in catalog().families() {
            for v in catalog().versions(&fam.family) {
                for k in &fam.kinds {
                    let p = catalog().fixture_path(&fam.family, &v, &k.kind);
                    if let Ok(text) = std::fs::read_to_string(&p) {
                        if let Ok(val @ Value::Object(_)) = serde_json::from_str::<Value>(&text) {
                            out.push(val);
                        }
                    }
                }
            }
        }
        assert!(out.len() >= 20, "only {} fixtures", out.len());
        out
    })
}

/// The generators must reach the recognisers, or the properties above prove little:
/// every fixture is recognised somewhere.
#[test]
fn fixtures_are_recognised() {
    let hits: usize = fixtures()
        .iter()
        .map(|f| exercise(&Body::Json(f.clone())))
        .sum();
    assert!(
        hits >= fixtures().len() / 2,
        "{hits} recognitions for {} fixtures",
        fixtures().len()
    );
}

/// Hostile payload sizes: a 16 MiB text and deeply nested JSON do not blow up.
#[test]
fn large_and_deep_payloads_are_handled() {
    let big = vec![b'x'; 16 << 20];
    let body = Body::from_payload(&big);
    assert!(matches!(body, Body::Text(ref t) if t.len() == big.len()));
    // Text recognisers run a regex over the whole body for every target; 1 MiB keeps
    // this quick in debug builds.
    exercise(&Body::from_payload(&big[..1 << 20]));
    // serde_json refuses nesting beyond 128 levels: this must become text, not a crash.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(Body::from_payload(deep.as_bytes()), Body::Text(_)));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    assert!(matches!(
        Body::from_payload(deep_obj.as_bytes()),
        Body::Text(_)
    ));
}

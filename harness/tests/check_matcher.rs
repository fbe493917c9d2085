//! `match` expectations: every operator passes and fails, with readable messages.

use rstest::rstest;
use serde_json::{json, Map, Value};
use zbx_conform::check::matcher::{check_matches, validate_spec, MatchFailure};

fn spec(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("test spec must be an object, got {other}"),
    }
}

fn body() -> Value {
    json!({
        "response": "success",
        "version": "6.0.14",
        "session": "0123456789abcdef0123456789abcdef",
        "clock": 1700000000,
        "ratio": 0.5,
        "flag": true,
        "nothing": null,
        "info": "processed: 2; failed: 0; total: 2; seconds spent: 0.000123",
        "data": [
            {"itemid": 1, "key": "agent.ping", "value": "1"},
            {"itemid": 2, "key": "system.uptime", "value": "12345"}
        ],
        "tags": ["a", "b", "c"],
        "upload": "enabled"
    })
}

fn run(s: Value) -> Vec<MatchFailure> {
    check_matches(&spec(s), &body())
}

/// Each case holds for `body()`; its twin below must not.
#[rstest]
#[case::literal_string(json!({"response": "success"}))]
#[case::pointer(json!({"/data/0/value": "1"}))]
#[case::literal_number(json!({"clock": 1700000000}))]
#[case::number_by_value(json!({"clock": 1700000000.0}))]
#[case::literal_bool(json!({"flag": true}))]
#[case::literal_null(json!({"nothing": null}))]
#[case::object_subset(json!({"/data/1": {"key": "system.uptime"}}))]
#[case::array_elementwise(json!({"tags": ["a", "b", {"$regex": "^c$"}]}))]
#[case::nested_operator_in_literal(json!({"/data/0": {"itemid": {"$type": "integer"}}}))]
#[case::regex(json!({"session": {"$regex": "^[0-9a-f]{32}$"}}))]
#[case::regex_unanchored(json!({"info": {"$regex": "failed: 0"}}))]
#[case::type_string(json!({"version": {"$type": "string"}}))]
#[case::type_number(json!({"ratio": {"$type": "number"}}))]
#[case::type_integer(json!({"clock": {"$type": "integer"}}))]
#[case::type_boolean(json!({"flag": {"$type": "boolean"}}))]
#[case::type_null(json!({"nothing": {"$type": "null"}}))]
#[case::type_object(json!({"/data/0": {"$type": "object"}}))]
#[case::type_array(json!({"data": {"$type": "array"}}))]
#[case::present_true(json!({"nothing": {"$present": true}}))]
#[case::present_false(json!({"redirect": {"$present": false}}))]
#[case::len_exact(json!({"tags": {"$len": 3}}))]
#[case::len_string(json!({"session": {"$len": 32}}))]
#[case::len_object(json!({"/data/0": {"$len": 3}}))]
#[case::len_operator(json!({"data": {"$len": {"$ge": 1}}}))]
#[case::gt(json!({"clock": {"$gt": 1}}))]
#[case::ge(json!({"clock": {"$ge": 1700000000}}))]
#[case::lt(json!({"ratio": {"$lt": 1}}))]
#[case::le(json!({"ratio": {"$le": 0.5}}))]
#[case::ne(json!({"response": {"$ne": "failed"}}))]
#[case::any(json!({"response": {"$any": ["failed", "success"]}}))]
#[case::any_operator(json!({"response": {"$any": [{"$regex": "^succ"}, {"$type": "null"}]}}))]
#[case::any_missing(json!({"redirect": {"$any": [{"$present": false}, "x"]}}))]
#[case::contains_element(json!({"tags": {"$contains": "b"}}))]
#[case::contains_element_subset(json!({"data": {"$contains": {"key": "agent.ping"}}}))]
#[case::contains_substring(json!({"info": {"$contains": "total: 2"}}))]
#[case::not(json!({"response": {"$not": "failed"}}))]
#[case::not_present(json!({"redirect": {"$not": {"$present": true}}}))]
#[case::several(json!({"session": {"$type": "string", "$len": 32, "$regex": "^[0-9a-f]+$"}}))]
#[case::root(json!({"": {"response": "success"}}))]
fn holds(#[case] s: Value) {
    assert_eq!(
        validate_spec(&spec(s.clone())),
        Ok(()),
        "spec {s} should be valid"
    );
    assert_eq!(run(s.clone()), vec![], "spec {s} should hold");
}

#[rstest]
#[case::literal_string(json!({"response": "failed"}), "/response", r#"== "failed""#, r#"got "success""#)]
#[case::literal_type_differs(json!({"clock": "1700000000"}), "/clock", r#"== "1700000000""#, "got 1700000000 (integer)")]
#[case::missing(json!({"redirect": "x"}), "/redirect", r#"== "x""#, "missing")]
#[case::nested_pointer(json!({"/data/1": {"key": "system.uptime", "value": "1"}}), "/data/1/value", r#"== "1""#, r#"got "12345""#)]
#[case::not_object(json!({"response": {"a": 1}}), "/response", "is an object", r#"got "success""#)]
#[case::array_length(json!({"tags": ["a", "b"]}), "/tags", r#"has length 2 (== ["a","b"])"#, r#"got length 3: ["a","b","c"] (array)"#)]
#[case::array_element(json!({"tags": ["a", "x", "c"]}), "/tags/1", r#"== "x""#, r#"got "b""#)]
#[case::regex(json!({"version": {"$regex": "^7\\."}}), "/version", r"matches /^7\./", r#"got "6.0.14""#)]
#[case::regex_not_string(json!({"clock": {"$regex": "^1"}}), "/clock", "matches /^1/", "got 1700000000 (integer), not a string")]
#[case::type_string(json!({"clock": {"$type": "string"}}), "/clock", "is a string", "got 1700000000 (integer)")]
#[case::type_integer(json!({"ratio": {"$type": "integer"}}), "/ratio", "is an integer", "got 0.5 (number)")]
#[case::type_null(json!({"flag": {"$type": "null"}}), "/flag", "is null", "got true (boolean)")]
#[case::type_missing(json!({"redirect": {"$type": "string"}}), "/redirect", "is a string", "missing")]
#[case::present_true(json!({"redirect": {"$present": true}}), "/redirect", "is present", "missing")]
#[case::present_false(json!({"upload": {"$present": false}}), "/upload", "is absent", r#"got "enabled""#)]
#[case::len_exact(json!({"tags": {"$len": 2}}), "/tags", "has length 2", r#"got length 3: ["a","b","c"] (array)"#)]
#[case::len_operator(json!({"tags": {"$len": {"$gt": 5}}}), "/tags", "has length > 5", r#"got length 3: ["a","b","c"] (array)"#)]
#[case::len_no_length(json!({"clock": {"$len": 1}}), "/clock", "has length 1", "got 1700000000 (integer), which has no length")]
#[case::gt(json!({"clock": {"$gt": 1700000000}}), "/clock", "> 1700000000", "got 1700000000 (integer)")]
#[case::ge(json!({"ratio": {"$ge": 0.6}}), "/ratio", ">= 0.6", "got 0.5 (number)")]
#[case::lt(json!({"ratio": {"$lt": 0.5}}), "/ratio", "< 0.5", "got 0.5 (number)")]
#[case::le(json!({"clock": {"$le": 0}}), "/clock", "<= 0", "got 1700000000 (integer)")]
#[case::compare_string(json!({"/data/1/value": {"$gt": 0}}), "/data/1/value", "> 0", r#"got "12345", not a number"#)]
#[case::ne(json!({"response": {"$ne": "success"}}), "/response", r#"!= "success""#, r#"got "success""#)]
#[case::any(json!({"response": {"$any": ["failed", {"$type": "null"}]}}), "/response", r#"any of (== "failed" | is null)"#, r#"got "success""#)]
#[case::contains_element(json!({"tags": {"$contains": "z"}}), "/tags", r#"contains "z""#, r#"no element matches: ["a","b","c"] (array)"#)]
#[case::contains_subset(json!({"data": {"$contains": {"key": "vfs.fs"}}}), "/data", r#"contains an element that matches {"key":"vfs.fs"}"#, "no element matches: [{\"itemid\":1,\"key\":\"agent.ping\",\"value\":\"1\"},{\"itemid\":2,\"key\":\"system.uptime\",\"value\":\"12345\"}] (array)")]
#[case::contains_substring(json!({"info": {"$contains": "failed: 1"}}), "/info", r#"contains "failed: 1""#, r#"got "processed: 2; failed: 0; total: 2; seconds spent: 0.000123""#)]
#[case::contains_wrong_type(json!({"clock": {"$contains": "1"}}), "/clock", r#"contains "1""#, "got 1700000000 (integer), not an array or string")]
#[case::not(json!({"response": {"$not": {"$regex": "^succ"}}}), "/response", "not (matches /^succ/)", r#"got "success""#)]
fn fails(#[case] s: Value, #[case] pointer: &str, #[case] expected: &str, #[case] detail: &str) {
    assert_eq!(
        validate_spec(&spec(s.clone())),
        Ok(()),
        "spec {s} should be valid"
    );
    let f = run(s.clone());
    assert_eq!(
        f,
        vec![MatchFailure {
            pointer: pointer.into(),
            expected: expected.into(),
            detail: detail.into()
        }],
        "spec {s}"
    );
}

#[test]
fn several_operators_report_each_failure() {
    let f = run(json!({"session": {"$type": "string", "$len": 16, "$regex": "^x"}}));
    let expected: Vec<&str> = f.iter().map(|f| f.expected.as_str()).collect();
    assert_eq!(expected, vec!["has length 16", "matches /^x/"]);
    assert!(f.iter().all(|f| f.pointer == "/session"));
}

#[test]
fn every_entry_is_checked() {
    let f = run(json!({"response": "failed", "upload": "disabled", "clock": {"$gt": 0}}));
    let pointers: Vec<&str> = f.iter().map(|f| f.pointer.as_str()).collect();
    assert_eq!(pointers, vec!["/response", "/upload"]);
}

#[test]
fn long_values_are_shortened_in_messages() {
    let big = json!({"blob": "x".repeat(5000)});
    let f = check_matches(&spec(json!({"blob": "y"})), &big);
    assert_eq!(f.len(), 1);
    assert!(
        f[0].detail.len() < 400,
        "detail too long: {}",
        f[0].detail.len()
    );
    assert!(f[0].detail.contains("5000 bytes in all"), "{}", f[0].detail);
}

#[test]
fn invalid_operator_at_runtime_is_a_failure_not_a_pass() {
    let f = run(json!({"response": {"$regexp": "x"}}));
    assert_eq!(f.len(), 1);
    assert!(f[0].detail.contains("unknown operator"), "{}", f[0].detail);
    let f = run(json!({"response": {"$regex": "("}}));
    assert_eq!(f.len(), 1);
    assert!(f[0].detail.contains("bad regex"), "{}", f[0].detail);
}

#[rstest]
#[case::unknown_op(json!({"response": {"$regexp": "x"}}), "unknown operator")]
#[case::bad_regex(json!({"response": {"$regex": "[0-9"}}), "bad regex")]
#[case::regex_not_string(json!({"response": {"$regex": 5}}), "needs a string")]
#[case::bad_type(json!({"response": {"$type": "text"}}), "needs one of")]
#[case::present_not_bool(json!({"response": {"$present": "yes"}}), "true or false")]
#[case::len_negative(json!({"tags": {"$len": -1}}), "non-negative integer")]
#[case::len_literal_object(json!({"tags": {"$len": {"a": 1}}}), "non-negative integer")]
#[case::gt_string(json!({"clock": {"$gt": "5"}}), "needs a number")]
#[case::any_empty(json!({"clock": {"$any": []}}), "non-empty array")]
#[case::any_not_array(json!({"clock": {"$any": "x"}}), "non-empty array")]
#[case::nested_in_any(json!({"clock": {"$any": [{"$bogus": 1}]}}), "unknown operator")]
#[case::nested_in_not(json!({"clock": {"$not": {"$regex": "("}}}), "bad regex")]
#[case::nested_in_literal(json!({"/data/0": {"key": {"$type": 3}}}), "\"/data/0/key\"")]
#[case::nested_in_len(json!({"tags": {"$len": {"$ge": "1"}}}), "needs a number")]
#[case::mixed(json!({"response": {"$type": "string", "x": 1}}), "mixes operators")]
#[case::bad_pointer(json!({"/a~2b": 1}), "invalid JSON pointer")]
fn invalid_specs(#[case] s: Value, #[case] needle: &str) {
    match validate_spec(&spec(s.clone())) {
        Ok(()) => panic!("spec {s} should be rejected"),
        Err(e) => assert!(
            e.contains(needle),
            "error for {s} should mention {needle:?}: {e}"
        ),
    }
}

#[test]
fn validate_reports_all_problems() {
    let e = validate_spec(&spec(json!({"a": {"$x": 1}, "b": {"$regex": "("}})))
        .expect_err("two problems");
    assert_eq!(e.lines().count(), 2, "{e}");
    assert!(e.contains("\"/a\"") && e.contains("\"/b\""), "{e}");
}

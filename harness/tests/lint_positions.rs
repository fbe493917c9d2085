//! `lint` and `run` point at the key or value at fault, as `file:line:column:` on every
//! line of output, with a "did you mean" for near names: editors and CI annotations
//! jump to what has to change, not to the step around it.

mod support;

use support::{output_text as text, zbx};

/// A scenario of the real catalog with one step written by the test: the step starts
/// at line 6, column 5.
fn scenario(step: &str) -> String {
    format!(
        "name: positions\nfamily: server-proxy\nversions: [\"6.0\"]\nplays: server\nsteps:\n{step}"
    )
}

/// Lint `body` written to a fresh file; the file's path as printed, the exit code and
/// the output.
fn lint(body: &str) -> (String, Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, body).expect("write scenario");
    let o = zbx(["lint", path.to_str().expect("utf-8 path")]);
    (path.display().to_string(), o.status.code(), text(&o))
}

/// The output has a line starting with `file:line:col: error: ` and holding `what`.
fn assert_error_at(out: &str, file: &str, at: &str, what: &str) {
    let prefix = format!("{file}:{at}: error: ");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&prefix) && l.contains(what)),
        "no line starting {prefix:?} with {what:?}:\n{out}"
    );
}

#[test]
fn a_wrong_kind_is_reported_at_its_value() {
    let (file, code, out) = lint(&scenario(
        "  - exchange:\n      send:\n        json: { request: proxy data }\n        kind: passive.proxy-data.requets\n",
    ));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(
        &out,
        &file,
        "9:15",
        "unknown kind `passive.proxy-data.requets` in server-proxy (did you mean \"passive.proxy-data.request\"?)",
    );
    // Flow style on one line: the column of the value within that line.
    let (file, code, out) = lint(&scenario(
        "  - exchange:\n      send: { json: {}, kind: passive.proxy-data.request }\n      expect: { kind: passive.proxy-data.respons }\n",
    ));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(
        &out,
        &file,
        "8:23",
        "unknown kind `passive.proxy-data.respons`",
    );
}

#[test]
fn a_missing_fixture_is_reported_at_its_name_with_the_closest_one() {
    let (file, code, out) = lint(&scenario(
        "  - name: push\n    exchange:\n      send:\n        fixture: proxy-config.trapr\n        kind: passive.proxy-config.request\n",
    ));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(
        &out,
        &file,
        "9:18",
        "fixture `proxy-config.trapr` not found for server-proxy 6.0 (did you mean \"proxy-config.trapper\"?)",
    );
}

#[test]
fn a_misspelt_operator_is_reported_at_its_key() {
    let (file, code, out) = lint(&scenario(
        "  - exchange:\n      send: { json: { request: proxy data }, kind: passive.proxy-data.request }\n      expect:\n        match:\n          /response: { $presnt: true }\n          version: { $regex: \"^6\" }\n",
    ));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(
        &out,
        &file,
        "10:24",
        "unknown operator \"$presnt\" (did you mean \"$present\"?)",
    );
    // Only the misspelt operator is at fault.
    assert_eq!(out.matches(": error: ").count(), 1, "{out}");
}

#[test]
fn a_wrong_pointer_is_reported_at_its_key() {
    let (file, code, out) = lint(&scenario(
        "  - exchange:\n      send:\n        json: { request: proxy data }\n        kind: passive.proxy-data.request\n        set:\n          /session: x\n          data/0: 2\n",
    ));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(
        &out,
        &file,
        "12:11",
        "`exchange.send.set` key \"data/0\": a JSON pointer must start with \"/\"",
    );
    let (file, _, out) = lint(&scenario(
        "  - exchange:\n      send: { json: { request: proxy data }, kind: passive.proxy-data.request }\n      expect:\n        capture: { s: /a~2b }\n",
    ));
    assert_error_at(&out, &file, "9:23", "invalid escape in JSON pointer");
}

#[test]
fn an_unknown_step_key_gets_a_hint() {
    let (file, code, out) = lint(&scenario(
        "  - name: n\n    exchnge:\n      send: { json: {} }\n",
    ));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(
        &out,
        &file,
        "7:5",
        "unknown field `exchnge` (did you mean \"exchange\"?)",
    );
}

/// A message of several lines (here a name holding a line break) repeats the prefix on
/// each line, in `lint` and in `run`'s refusal alike.
#[test]
fn every_line_of_a_multi_line_error_carries_the_location() {
    let body = scenario(
        "  - exchange:\n      send: { fixture: \"no\\nsuch\", kind: passive.proxy-data.request }\n",
    );
    let (file, code, out) = lint(&body);
    assert_eq!(code, Some(2), "{out}");
    let prefix = format!("{file}:7:24: error: ");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with(&file)).collect();
    assert!(lines.len() >= 2, "a message of two lines:\n{out}");
    for line in &lines {
        assert!(line.starts_with(&prefix), "{line:?} in:\n{out}");
    }
    // Every other line is the summary.
    assert!(
        out.lines()
            .all(|l| l.starts_with(&file) || l == "1 files, 1 with errors"),
        "{out}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, &body).expect("write scenario");
    let o = zbx(["run", path.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let file = path.display().to_string();
    let prefix = format!("{file}:7:24: error: ");
    assert!(err.lines().count() >= 2, "{err}");
    for line in err.lines() {
        assert!(line.starts_with(&prefix), "{line:?} in:\n{err}");
    }
}

/// The alternatives of `$any` are a list: a problem in one is reported at its own key,
/// not at `$any`, whether the item is a flow mapping or a block mapping.
#[test]
fn a_misspelt_operator_in_a_block_list_item_is_reported_at_its_key() {
    let (file, code, out) = lint(&scenario(
        "  - exchange:\n      send: { json: { request: proxy data }, kind: passive.proxy-data.request }\n      expect:\n        match:\n          data:\n            $any:\n              - { host: { $presnt: true } }\n              - host: { $regex: \"[\" }\n",
    ));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(
        &out,
        &file,
        "12:27",
        "unknown operator \"$presnt\" (did you mean \"$present\"?)",
    );
    assert_error_at(&out, &file, "13:25", "$regex: bad regex /[/");
    assert_eq!(out.matches(": error: ").count(), 2, "{out}");
}

/// A flow list written across lines: the second alternative is on the next line.
#[test]
fn a_misspelt_operator_in_a_flow_list_across_lines_is_reported_at_its_key() {
    let (file, code, out) = lint(&scenario(
        "  - exchange:\n      send: { json: { request: proxy data }, kind: passive.proxy-data.request }\n      expect:\n        match:\n          data: { $any: [ { host: { $type: string } },\n            { host: { $presnt: true } } ] }\n",
    ));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(
        &out,
        &file,
        "11:23",
        "unknown operator \"$presnt\" (did you mean \"$present\"?)",
    );
    assert_eq!(out.matches(": error: ").count(), 1, "{out}");
}

/// A literal array of objects, in flow and in block style, nested in another array.
#[test]
fn a_misspelt_operator_in_a_literal_array_is_reported_at_its_key() {
    let (file, code, out) = lint(&scenario(
        "  - exchange:\n      send: { json: { request: proxy data }, kind: passive.proxy-data.request }\n      expect:\n        match:\n          history data: [ { itemid: 1 }, { itemid: { $regx: x } } ]\n          data:\n            - host: h1\n              items:\n                - { itemid: 1 }\n                - itemid: { $presnt: true }\n",
    ));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(&out, &file, "10:54", "unknown operator \"$regx\"");
    assert_error_at(
        &out,
        &file,
        "15:29",
        "unknown operator \"$presnt\" (did you mean \"$present\"?)",
    );
    assert_eq!(out.matches(": error: ").count(), 2, "{out}");
}

/// A step whose `send` has `remove: <list>` (the list from line 10, column 17).
fn remove_step(list: &str) -> String {
    scenario(&format!(
        "  - exchange:\n      send:\n        json: {{ request: proxy data }}\n        kind: passive.proxy-data.request\n        remove: {list}\n"
    ))
}

/// `remove` entries are reported by their place in the list, not by searching their
/// text: `a` is also the second character of `/a/b`, and `""` has no text to search.
/// (The loader stops at the first structural problem: one per file.)
#[test]
fn a_bad_remove_entry_is_reported_at_that_entry() {
    let (file, code, out) = lint(&remove_step("[/a/b, a]"));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(
        &out,
        &file,
        "10:24",
        "`exchange.send.remove` entry \"a\": a JSON pointer must start with \"/\"",
    );
    let (file, _, out) = lint(&remove_step("[/a/b, \"\"]"));
    assert_error_at(
        &out,
        &file,
        "10:24",
        "`exchange.send.remove` entry \"\" would remove the whole body",
    );
    // A block list: `session` is also written in the item before it.
    let (file, code, out) = lint(&remove_step("\n          - /session\n          - session"));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(
        &out,
        &file,
        "12:13",
        "`exchange.send.remove` entry \"session\": a JSON pointer must start with \"/\"",
    );
}

/// A `volatile.keep` entry that is not a volatile key of the family is reported at the
/// entry, in a block list and in a flow list.
#[test]
fn a_volatile_keep_entry_that_is_not_volatile_is_reported_at_that_entry() {
    let (file, code, out) = lint(&scenario(
        "  - exchange:\n      send: { json: { request: proxy data }, kind: passive.proxy-data.request }\n      expect:\n        snapshot: s\n        volatile:\n          keep:\n            - clock\n            - clokc\n",
    ));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(
        &out,
        &file,
        "13:15",
        "`volatile.keep` entry `clokc` is not a volatile key of server-proxy",
    );
    assert_eq!(out.matches(": error: ").count(), 1, "{out}");
    let (file, code, out) = lint(&scenario(
        "  - exchange:\n      send: { json: { request: proxy data }, kind: passive.proxy-data.request }\n      expect: { snapshot: s, volatile: { keep: [clock, sesion] } }\n",
    ));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(
        &out,
        &file,
        "8:56",
        "`volatile.keep` entry `sesion` is not a volatile key of server-proxy",
    );
    assert_eq!(out.matches(": error: ").count(), 1, "{out}");
}

/// A `volatile` entry that is neither a key name nor a JSON pointer is reported at the
/// entry, not at `volatile`: the second of a flow list, the second of a block list.
#[test]
fn a_malformed_volatile_entry_is_reported_at_that_entry() {
    let expect = |volatile: &str| {
        scenario(&format!(
            "  - exchange:\n      send: {{ json: {{ request: proxy data }}, kind: passive.proxy-data.request }}\n      expect:\n        snapshot: s\n        volatile:\n{volatile}"
        ))
    };
    let (file, code, out) = lint(&expect("          keep: [clock, /a~2]\n"));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(
        &out,
        &file,
        "11:25",
        "`exchange.expect.volatile.keep` entry \"/a~2\": invalid escape in JSON pointer",
    );
    let (file, code, out) = lint(&expect(
        "          add:\n            - /data/0/clock\n            - \" \"\n",
    ));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(
        &out,
        &file,
        "13:15",
        "`exchange.expect.volatile.add` entry \" \": an empty key",
    );
}

/// The conditions of `when` given as a list: a bad one is reported at itself.
#[test]
fn a_bad_when_condition_in_a_list_is_reported_at_that_condition() {
    let (file, code, out) = lint(&scenario(
        "  - sleep: 1s\n    when: { version: [\">=6.0\", \"=>6.4\"] }\n",
    ));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(
        &out,
        &file,
        "7:32",
        "in `when`: invalid version condition \"=>6.4\"",
    );
    let (file, code, out) = lint(&scenario(
        "  - sleep: 1s\n    when:\n      tls:\n        - psk\n        - certificate\n",
    ));
    assert_eq!(code, Some(2), "{out}");
    assert_error_at(&out, &file, "10:11", "in `when.tls`:");
}

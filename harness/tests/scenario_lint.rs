//! Lint against a tiny catalog written into a temporary directory: every check must
//! report at the right line with the right severity, and a correct scenario must lint
//! clean.

use std::path::{Path, PathBuf};
use zbx_conform::catalog::Catalog;
use zbx_conform::scenario::{lint, load_file, Finding, Severity};

const CATALOG: &str = r#"
family: server-proxy
summary: tiny test catalog
sides: [server, proxy]
kinds:
  - kind: config.request
    summary: server pushes configuration
    from: server
    to: proxy
    since: "6.0"
    recognise: { equals: { /request: proxy config } }
  - kind: config.response
    summary: proxy answers configuration
    from: proxy
    to: server
    since: "6.0"
    recognise: { present: [/response] }
  - kind: redirect.response
    summary: proxy group redirect (7.0 only)
    from: server
    to: proxy
    since: "7.0"
    recognise: { present: [/redirect] }
  - kind: data.request
    summary: server asks for data
    from: server
    to: proxy
    since: "5.4"
    recognise: { equals: { /request: proxy data } }
"#;

/// The versions of the tiny catalog.
const VERSIONS: &str = r#"
versions:
  - { version: "5.4", announce: "5.4.0", measured: true, evidence: test, accepts_proxies_from: "4.2" }
  - { version: "6.0", announce: "6.0.0", measured: true, evidence: test, accepts_proxies_from: "4.2" }
  - { version: "6.4", announce: "6.4.0", measured: true, evidence: test, accepts_proxies_from: "6.0" }
  - { version: "7.0", announce: "7.0.0", measured: true, evidence: test, accepts_proxies_from: "6.0" }
"#;

/// A second family, for kinds named `sender:...` from a server-proxy scenario.
const SENDER_CATALOG: &str = r#"
family: sender
summary: tiny second family
sides: [server, sender]
volatile: [clock]
kinds:
  - kind: sender.data.response
    summary: trapper answers sender data
    from: server
    to: sender
    since: "6.0"
    until: "6.4"
    recognise: { equals: { /response: success } }
"#;

/// The reference peers the tests pass to lint, as the runner and the CLI do.
const REFERENCES: &[&str] = &["passive-proxy", "active-proxy"];

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    catalog: Catalog,
}

fn setup() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let cat = root.join("schemas/server-proxy");
    std::fs::create_dir_all(&cat).expect("mkdir");
    std::fs::write(cat.join("catalog.yaml"), CATALOG).expect("write catalog");
    std::fs::write(root.join("schemas/versions.yaml"), VERSIONS).expect("write versions");
    let sender = root.join("schemas/sender");
    std::fs::create_dir_all(&sender).expect("mkdir");
    std::fs::write(sender.join("catalog.yaml"), SENDER_CATALOG).expect("write catalog");
    // Fixture `config.request` exists for 6.0 and 6.4 but not for 7.0.
    for v in ["6.0", "6.4"] {
        let d = root.join("fixtures/server-proxy").join(v);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(
            d.join("config.request.json"),
            r#"{"request":"proxy config"}"#,
        )
        .expect("write fixture");
    }
    let catalog = Catalog::load(&root).expect("load tiny catalog");
    Fixture {
        _dir: dir,
        root,
        catalog,
    }
}

fn write(root: &Path, name: &str, text: &str) -> PathBuf {
    let p = root.join(name);
    std::fs::write(&p, text).expect("write scenario");
    p
}

/// The findings of `text`, split into errors and warnings.
fn lint_text(text: &str) -> (Vec<Finding>, Vec<Finding>) {
    let f = setup();
    let path = write(&f.root, "s.yaml", text);
    let loaded = load_file(&path).unwrap_or_else(|e| panic!("must load: {e}"));
    lint(&loaded, &f.catalog, REFERENCES)
        .into_iter()
        .partition(|x| x.severity == Severity::Error)
}

fn assert_one(errors: &[Finding], line: u64, substring: &str) {
    assert!(
        errors
            .iter()
            .any(|e| e.location.line == line && e.message.contains(substring)),
        "no error at line {line} containing {substring:?}; got:\n{}",
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// [`assert_one`] at an exact column too: the key or value the finding is about.
fn assert_at(errors: &[Finding], (line, column): (u64, u64), substring: &str) {
    assert!(
        errors.iter().any(|e| e.location.line == line
            && e.location.column == column
            && e.message.contains(substring)),
        "no error at {line}:{column} containing {substring:?}; got:\n{}",
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

const GOOD: &str = r#"name: good
family: server-proxy
versions: ["6.0", "6.4"]
plays: server
vars: { host: h1 }
steps:
  - exchange:
      send: { fixture: config.request, kind: config.request, set: { /host: "${host}" } }
      expect:
        kind: config.response
        capture: { session: /session }
  - exchange:
      send: { json: { request: proxy data, session: "${session}-${run_id}" }, kind: data.request }
  - when: { version: "7.0" }
    exchange:
      send: { json: { redirect: x }, kind: redirect.response }
"#;

#[test]
fn correct_scenario_lints_clean() {
    let (errors, warnings) = lint_text(GOOD);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn unknown_family() {
    let (errors, _) = lint_text(&GOOD.replace("family: server-proxy", "family: server-proxi"));
    assert_at(
        &errors,
        (2, 1),
        "unknown family `server-proxi` (did you mean \"server-proxy\"?) (known: sender, server-proxy)",
    );
}

#[test]
fn unknown_version() {
    let (errors, _) = lint_text(&GOOD.replace(r#"["6.0", "6.4"]"#, r#"["6.0", "9.9"]"#));
    assert_one(&errors, 3, "version 9.9 does not exist for server-proxy");
}

#[test]
fn kind_missing_in_a_version_names_where_it_exists() {
    let text = GOOD.replace("  - when: { version: \"7.0\" }\n", "  - name: no when\n");
    let (errors, _) = lint_text(&text);
    // At the `kind:` value, not at the step (line 14).
    assert_at(
        &errors,
        (16, 44),
        "kind `redirect.response` does not exist in server-proxy 6.0, 6.4 (it exists in: 7.0)",
    );
}

#[test]
fn when_restricts_the_versions_checked() {
    // Version 5.4 exists only for data.request; a step limited to 5.4 that sends
    // config.request must be reported for 5.4 and nothing else.
    let text = r#"name: x
family: server-proxy
versions: ["5.4", "6.0"]
plays: server
steps:
  - when: { version: "<6.0" }
    exchange:
      send: { json: {}, kind: config.request }
"#;
    let (errors, _) = lint_text(text);
    assert_at(
        &errors,
        (8, 31),
        "does not exist in server-proxy 5.4 (it exists in: 6.0, 6.4, 7.0)",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[test]
fn unknown_kind_suggests_a_close_name() {
    let (errors, _) = lint_text(&GOOD.replace("kind: config.response", "kind: config.respons"));
    // Line 10 holds `kind: config.respons` (the step starts at line 7).
    assert_at(
        &errors,
        (10, 15),
        "unknown kind `config.respons` in server-proxy (did you mean \"config.response\"?)",
    );
}

#[test]
fn direction_of_kinds() {
    let text = GOOD
        .replace("kind: config.response", "kind: config.request")
        .replace("kind: data.request }", "kind: config.response }");
    let (errors, _) = lint_text(&text);
    // Reported at the `kind:` values.
    assert_at(&errors, (10, 15), "cannot be expected from the peer");
    assert_at(
        &errors,
        (13, 85),
        "is sent by the proxy to the server, but this scenario plays server",
    );
}

#[test]
fn missing_fixture_for_a_version() {
    let text = GOOD.replace(r#"["6.0", "6.4"]"#, r#"["6.0", "7.0"]"#);
    let (errors, _) = lint_text(&text);
    assert_at(
        &errors,
        (8, 24),
        "fixture `config.request` not found for server-proxy 7.0 (expected fixtures/server-proxy/7.0/config.request.json)",
    );
}

#[test]
fn plays_a_side_outside_the_family() {
    let (errors, _) = lint_text(&GOOD.replace("plays: server", "plays: plugin"));
    assert_one(
        &errors,
        4,
        "`plays: plugin` is not a side of server-proxy (sides: proxy, server)",
    );
}

#[test]
fn unset_variables_are_warnings() {
    let text = GOOD
        .replace("\"${host}\"", "\"${hots}\"")
        .replace("${session}-", "${sesion}-${PROXY_ADDR:-x}-");
    let (errors, warnings) = lint_text(&text);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    // At the references themselves.
    assert_at(&warnings, (8, 77), "variable ${hots} has no default");
    assert_at(&warnings, (13, 54), "variable ${sesion} has no default");
    assert!(
        warnings[0]
            .to_string()
            .contains("s.yaml:8:77: warning: variable"),
        "{}",
        warnings[0]
    );
}

#[test]
fn capture_after_use_is_still_unset() {
    // A capture only counts for later steps.
    let text = r#"name: x
family: server-proxy
versions: ["6.0"]
plays: server
steps:
  - exchange:
      send: { json: { s: "${session}" }, kind: data.request }
  - exchange:
      send: { json: {}, kind: data.request }
      expect: { capture: { session: /session } }
"#;
    let (_, warnings) = lint_text(text);
    assert_at(&warnings, (7, 27), "variable ${session}");
}

#[test]
fn an_unknown_reference_peer_names_the_known_ones() {
    let text = GOOD.replace(
        "vars: { host: h1 }",
        "vars: { host: h1 }\npeer: { reference: pasive-proxy }",
    );
    let (errors, _) = lint_text(&text);
    assert_one(
        &errors,
        6,
        "unknown reference peer `pasive-proxy` (did you mean \"passive-proxy\"?) (known: passive-proxy, active-proxy)",
    );
    let known = text.replace("pasive-proxy", "passive-proxy");
    assert!(lint_text(&known).0.is_empty());
}

/// `family:kind` names a kind of another family: checked there, in every version of
/// the step, with a hint that keeps the family.
#[test]
fn kinds_of_another_family_are_checked_in_that_family() {
    let step = |kind: &str| {
        format!(
            "name: x\nfamily: server-proxy\nversions: [\"6.0\", \"6.4\"]\nplays: server\nsteps:\n  - exchange:\n      send: {{ json: {{ request: sender data }} }}\n      expect: {{ kind: \"{kind}\" }}\n"
        )
    };
    let (errors, _) = lint_text(&step("sender:sender.data.response"));
    assert!(errors.is_empty(), "{errors:?}");
    let (errors, _) = lint_text(&step("sender:sender.data.respons"));
    assert_at(
        &errors,
        (8, 23),
        "unknown kind `sender.data.respons` in sender (did you mean \"sender:sender.data.response\"?)",
    );
    let (errors, _) = lint_text(&step("sendr:sender.data.response"));
    assert_one(
        &errors,
        8,
        "unknown family `sendr` in kind `sendr:sender.data.response`",
    );
    let seven = step("sender:sender.data.response").replace("\"6.4\"]", "\"7.0\"]");
    let (errors, _) = lint_text(&seven);
    assert_one(
        &errors,
        8,
        "kind `sender.data.response` does not exist in sender 7.0 (it exists in: 6.0, 6.4)",
    );
}

/// A fixture named after a kind declares that kind: the direction check applies
/// without `kind:`, and an explicit `kind:` still wins.
#[test]
fn a_fixture_named_after_a_kind_declares_it() {
    let text = r#"name: x
family: server-proxy
versions: ["6.0"]
plays: proxy
steps:
  - exchange:
      send: { fixture: config.request }
"#;
    let (errors, _) = lint_text(text);
    // At the fixture's name, which is the kind.
    assert_at(
        &errors,
        (7, 24),
        "kind `config.request` is sent by the server to the proxy, but this scenario plays proxy",
    );
    let (errors, _) = lint_text(&text.replace("plays: proxy", "plays: server"));
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn a_versions_condition_is_checked_against_the_catalog() {
    // 5.4 has only data.request: a condition that takes it in finds config.request missing.
    let (errors, _) = lint_text(&GOOD.replace(r#"["6.0", "6.4"]"#, r#"">=5.4""#));
    assert_one(
        &errors,
        8,
        "fixture `config.request` not found for server-proxy 5.4, 7.0",
    );
    let (errors, _) = lint_text(&GOOD.replace(r#"["6.0", "6.4"]"#, r#"">=8.0""#));
    assert_one(
        &errors,
        3,
        "`versions: \">=8.0\"` matches no version of server-proxy (known: 5.4, 6.0, 6.4, 7.0)",
    );
    let (errors, _) = lint_text(
        &GOOD
            .replace(r#"["6.0", "6.4"]"#, r#"">=6.0""#)
            .replace("fixture: config.request", "json: {}"),
    );
    assert!(
        errors.iter().all(|e| !e.message.contains("does not exist")),
        "7.0 is in range and redirect.response exists there: {errors:?}"
    );
}

#[test]
fn volatile_keep_must_name_a_volatile_key() {
    let text = |keep: &str| {
        format!(
            "name: x\nfamily: sender\nversions: [\"6.0\"]\nplays: sender\nsteps:\n  - exchange:\n      send: {{ json: {{ request: sender data }} }}\n      expect: {{ snapshot: s, volatile: {{ keep: [{keep}] }} }}\n"
        )
    };
    assert!(lint_text(&text("clock")).0.is_empty());
    let (errors, _) = lint_text(&text("clokc"));
    // At the entry itself: line 8 is `      expect: { snapshot: s, volatile: { keep: [clokc] } }`.
    assert_at(
        &errors,
        (8, 49),
        "`volatile.keep` entry `clokc` is not a volatile key of sender, so there is nothing to keep (volatile: clock)",
    );
}

//! Lint against a tiny catalog written into a temporary directory: every check must
//! report at the right line, and a correct scenario must lint clean.

use std::path::{Path, PathBuf};
use zbx_conform::catalog::Catalog;
use zbx_conform::scenario::{lint, lint_warnings, load_file, ScenarioError};

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

fn lint_text(text: &str) -> (Vec<ScenarioError>, Vec<ScenarioError>) {
    let f = setup();
    let path = write(&f.root, "s.yaml", text);
    let loaded = load_file(&path).unwrap_or_else(|e| panic!("must load: {e}"));
    (
        lint(&loaded, &f.catalog),
        lint_warnings(&loaded, &f.catalog),
    )
}

fn assert_one(errors: &[ScenarioError], line: u64, substring: &str) {
    assert!(
        errors
            .iter()
            .any(|e| e.line == line && e.message.contains(substring)),
        "no error at line {line} containing {substring:?}; got:\n{}",
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
    assert_one(
        &errors,
        2,
        "unknown family `server-proxi` (known: server-proxy)",
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
    assert_one(
        &errors,
        14,
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
    assert_one(
        &errors,
        6,
        "does not exist in server-proxy 5.4 (it exists in: 6.0, 6.4, 7.0)",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[test]
fn unknown_kind_suggests_a_close_name() {
    let (errors, _) = lint_text(&GOOD.replace("kind: config.response", "kind: config.respons"));
    assert_one(
        &errors,
        7,
        "unknown kind `config.respons` in server-proxy (did you mean `config.response`?)",
    );
}

#[test]
fn direction_of_kinds() {
    let text = GOOD
        .replace("kind: config.response", "kind: config.request")
        .replace("kind: data.request }", "kind: config.response }");
    let (errors, _) = lint_text(&text);
    // Reported at the step (the innermost span kept).
    assert_one(&errors, 7, "cannot be expected from the peer");
    assert_one(
        &errors,
        12,
        "is sent by the proxy to the server, but this scenario plays server",
    );
}

#[test]
fn missing_fixture_for_a_version() {
    let text = GOOD.replace(r#"["6.0", "6.4"]"#, r#"["6.0", "7.0"]"#);
    let (errors, _) = lint_text(&text);
    assert_one(
        &errors,
        7,
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
    assert_one(&warnings, 7, "warning: variable ${hots} has no default");
    assert_one(&warnings, 12, "warning: variable ${sesion} has no default");
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
    assert_one(&warnings, 6, "variable ${session}");
}

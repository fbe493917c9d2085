//! Data-driven loader tests: every file under `data/scenarios/valid/` loads and validates
//! against the published `schemas/scenario.schema.json`; every file under
//! `data/scenarios/invalid/` fails to load at the line, column and message its first
//! line announces (`# expect: LINE:COL: SUBSTRING`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zbx_conform::scenario::{discover, load_file};

fn data(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/scenarios")
        .join(sub)
}

fn files(sub: &str) -> Vec<PathBuf> {
    let found = discover(&[data(sub)]).expect("discover test data");
    assert!(found.len() >= 3, "too few test files in {sub}: {found:?}");
    found
}

fn schema_validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/scenario.schema.json");
    let text = std::fs::read_to_string(&path).expect("read scenario schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::draft202012::meta::validate(&schema).expect("schema is valid draft 2020-12");
    jsonschema::draft202012::new(&schema).expect("compile scenario schema")
}

fn yaml_as_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("read");
    serde_saphyr::from_str(&text).expect("YAML as JSON value")
}

#[test]
fn valid_files_load_and_match_the_schema() {
    let validator = schema_validator();
    for path in files("valid") {
        if let Err(e) = load_file(&path) {
            panic!("{e}");
        }
        let value = yaml_as_json(&path);
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} does not match the schema:\n{}",
            path.display(),
            errors.join("\n")
        );
    }
}

/// `# expect: 7:5: unknown field` → (7, 5, "unknown field")
fn expectation(path: &Path) -> (u64, u64, String) {
    let text = std::fs::read_to_string(path).expect("read");
    let first = text.lines().next().unwrap_or_default();
    let rest = first.strip_prefix("# expect: ").unwrap_or_else(|| {
        panic!(
            "{}: first line must be `# expect: L:C: text`",
            path.display()
        )
    });
    let mut parts = rest.splitn(3, ':');
    let line = parts.next().and_then(|s| s.trim().parse().ok());
    let col = parts.next().and_then(|s| s.trim().parse().ok());
    let msg = parts.next().map(|s| s.trim().to_string());
    match (line, col, msg) {
        (Some(l), Some(c), Some(m)) if !m.is_empty() => (l, c, m),
        _ => panic!("{}: malformed expectation {first:?}", path.display()),
    }
}

#[test]
fn invalid_files_fail_at_the_announced_place() {
    let mut failures = Vec::new();
    for path in files("invalid") {
        let (line, col, substring) = expectation(&path);
        let started = Instant::now();
        match load_file(&path) {
            Ok(_) => failures.push(format!("{}: loaded, expected an error", path.display())),
            Err(e) => {
                if e.path != path
                    || e.line != line
                    || e.column != col
                    || !e.message.contains(&substring)
                {
                    failures.push(format!(
                        "{}: got {}:{}: {}\n  want {line}:{col}: ...{substring}...",
                        path.display(),
                        e.line,
                        e.column,
                        e.message
                    ));
                }
            }
        }
        // Hostile inputs (alias bombs, deep nesting) must fail fast, not grind.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{} took {:?}",
            path.display(),
            started.elapsed()
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn invalid_files_are_also_rejected_by_the_schema_where_it_can_tell() {
    // Files whose problem is structural in a way JSON Schema expresses (unknown fields,
    // wrong types, two actions, two bodies) must fail the schema too, so editors flag them.
    let validator = schema_validator();
    for name in [
        "unknown-top-field.yaml",
        "unknown-nested-field.yaml",
        "unknown-step-field.yaml",
        "wrong-type.yaml",
        "wrong-type-versions.yaml",
        "two-actions.yaml",
        "no-action.yaml",
        "two-bodies.yaml",
        "empty-versions.yaml",
        "bad-version.yaml",
        "bad-duration.yaml",
        "then-both.yaml",
        "repeat-zero.yaml",
        "bad-capture-name.yaml",
        "raw-with-set.yaml",
        "closes-with-kind.yaml",
        "refused-with-text.yaml",
        "refused-and-closes.yaml",
        "refused-unknown-level.yaml",
        "operator-as-match-key.yaml",
        "frame-compress.yaml",
        "volatile-without-snapshot.yaml",
        "bad-requirement.yaml",
        "bad-versions-condition.yaml",
    ] {
        let value = yaml_as_json(&data("invalid").join(name));
        assert!(
            !validator.is_valid(&value),
            "{name} passes the schema but the loader rejects it"
        );
    }
}

/// Every scenario of the standard suites matches the published schema too, so what
/// editors accept and what the harness runs cannot drift apart.
#[test]
fn the_standard_scenarios_match_the_schema() {
    let validator = schema_validator();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let found = discover(&[root]).expect("discover scenarios");
    assert!(found.len() >= 50, "too few scenarios: {}", found.len());
    let mut bad = Vec::new();
    for path in found {
        let value = yaml_as_json(&path);
        for e in validator.iter_errors(&value) {
            bad.push(format!(
                "{}: {} at {}",
                path.display(),
                e,
                e.instance_path()
            ));
        }
    }
    assert!(bad.is_empty(), "\n{}", bad.join("\n"));
}

/// The schema describes exactly the operators the matcher knows, each with a
/// description and an example, so editors show every one and no stale one.
#[test]
fn the_schema_describes_every_match_operator() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/scenario.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("JSON");
    let ops = schema
        .pointer("/$defs/matchValue/properties")
        .and_then(|v| v.as_object())
        .expect("$defs/matchValue/properties");
    let mut described: Vec<&str> = ops.keys().map(String::as_str).collect();
    let mut known: Vec<&str> = zbx_conform::check::matcher::OPERATORS.to_vec();
    described.sort_unstable();
    known.sort_unstable();
    assert_eq!(described, known);
    for (op, def) in ops {
        let text = def["description"].as_str().unwrap_or_default();
        assert!(text.contains("Example:"), "{op}: {text:?}");
        assert!(
            def["examples"].as_array().is_some_and(|e| !e.is_empty()),
            "{op} has no examples"
        );
    }
    // `match` points every value at these definitions and refuses `$` keys.
    let m = &schema["$defs"]["expect"]["properties"]["match"];
    assert_eq!(m["additionalProperties"]["$ref"], "#/$defs/matchValue");
    let keys = jsonschema::draft202012::new(&m["propertyNames"]).expect("compiles");
    assert!(!keys.is_valid(&serde_json::json!("$any")));
    assert!(keys.is_valid(&serde_json::json!("/$any")));
    assert!(keys.is_valid(&serde_json::json!("response")));
}

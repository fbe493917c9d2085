//! Loader behaviour beyond the data files: what a valid file turns into, hostile sizes
//! and encodings, and how errors print.

use std::time::Duration;
use zbx_conform::scenario::{load_file, version_matches, Side, Versions};

fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).expect("write");
    (dir, p)
}

#[test]
fn valid_file_keeps_values_and_step_lines() {
    let text = "name: n\nfamily: agent\nversions: [\"6.0\", 7.0]\nplays: server\ntimeout: 1.5s\nsteps:\n  - sleep: 250ms\n  - name: r\n    repeat:\n      times: 2\n      steps:\n        - sleep: 1\n";
    let (_d, p) = temp_file("s.yaml", text.as_bytes());
    let l = load_file(&p).expect("loads");
    let s = &l.scenario;
    assert_eq!(s.plays, Side::Server);
    let Versions::List(list) = &s.versions.value else {
        panic!("a list: {:?}", s.versions.value)
    };
    assert_eq!(
        list.iter().map(|v| v.value.as_str()).collect::<Vec<_>>(),
        ["6.0", "7.0"]
    );
    assert_eq!(list[1].referenced.column(), 19, "entries keep their spans");
    assert_eq!(s.timeout.map(|d| d.0), Some(Duration::from_millis(1500)));
    assert_eq!(s.steps.len(), 2);
    assert_eq!(s.steps[0].referenced.line(), 7);
    assert_eq!(s.steps[1].referenced.line(), 8);
    let inner = &s.steps[1].value.repeat.as_ref().expect("repeat").steps[0];
    assert_eq!(inner.referenced.line(), 12);
    assert_eq!(inner.value.sleep.map(|d| d.0), Some(Duration::from_secs(1)));
}

#[test]
fn error_display_is_file_line_column_message() {
    let (_d, p) = temp_file("e.yaml", b"name: n\nbogus: 1\n");
    let e = load_file(&p).expect_err("must fail");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{}:2:1: unknown field `bogus`", p.display())),
        "{shown}"
    );
}

#[test]
fn oversized_file_is_refused_without_parsing() {
    let mut big = b"name: n\ndescription: \"".to_vec();
    big.extend(vec![b'x'; 5 * 1024 * 1024]);
    big.extend(b"\"\n");
    let (_d, p) = temp_file("big.yaml", &big);
    let e = load_file(&p).expect_err("must fail");
    assert!(e.message.contains("larger than 4 MiB"), "{e}");
}

#[test]
fn non_utf8_is_refused_with_offset() {
    let (_d, p) = temp_file("bin.yaml", b"name: \xff\xfe\n");
    let e = load_file(&p).expect_err("must fail");
    assert!(
        e.message.contains("not UTF-8") && e.message.contains("offset 6"),
        "{e}"
    );
}

#[test]
fn missing_file_names_the_path() {
    let p = std::path::PathBuf::from("/nonexistent/zbx/s.yaml");
    let e = load_file(&p).expect_err("must fail");
    assert_eq!(e.path, p);
    assert_eq!((e.line, e.column), (0, 0));
    assert!(e.message.starts_with("cannot read"), "{e}");
}

#[test]
fn many_documents_are_refused() {
    let doc =
        "name: n\nfamily: agent\nversions: [\"6.0\"]\nplays: server\nsteps: [ { sleep: 1 } ]\n";
    let (_d, p) = temp_file("multi.yaml", format!("{doc}---\n{doc}").as_bytes());
    let e = load_file(&p).expect_err("must fail");
    assert!(e.line >= 6 && e.message.contains("document"), "{e}");
}

#[test]
fn version_matches_is_exported_for_the_runner() {
    assert_eq!(version_matches(">=6.4", "7.0"), Ok(true));
    assert_eq!(version_matches("<6.4", "7.0"), Ok(false));
    assert!(version_matches("about 6", "7.0").is_err());
}

/// A condition under `versions` selects every catalog version it matches, in catalog
/// order, so a new protocol version joins such scenarios without an edit.
#[test]
fn a_versions_condition_resolves_against_the_catalog_versions() {
    let text =
        "name: n\nfamily: agent\nversions: \">=6.0\"\nplays: server\nsteps: [ { sleep: 1 } ]\n";
    let (_d, p) = temp_file("range.yaml", text.as_bytes());
    let l = load_file(&p).expect("loads");
    assert_eq!(l.scenario.versions.value, Versions::Range(">=6.0".into()));
    let known: Vec<String> = ["5.4", "6.0", "6.4", "7.0", "7.2"]
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(
        l.scenario.versions.value.resolve(&known),
        ["6.0", "6.4", "7.0", "7.2"]
    );
}

/// A condition that does not parse is refused at load time, at the value.
#[test]
fn a_bad_versions_condition_is_refused_where_it_is_written() {
    let text =
        "name: n\nfamily: agent\nversions: \"=>6.0\"\nplays: server\nsteps: [ { sleep: 1 } ]\n";
    let (_d, p) = temp_file("range.yaml", text.as_bytes());
    let e = load_file(&p).expect_err("must fail");
    assert_eq!((e.line, e.column), (3, 11), "{e}");
    assert!(
        e.message
            .contains("in `versions`: invalid version condition"),
        "{e}"
    );
}

/// `scenario/` sits below the runner, the reference peers and the plugin host: what it
/// needs from them (the reference peers' names) comes in as parameters. A `use` of one
/// of them would bring back the loader ↔ plugin cycle. (Below it are the catalog, the
/// checks, the frame codecs and the transport, whose TLS settings a `tls:` block turns
/// into.)
#[test]
fn the_scenario_module_imports_nothing_above_it() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/scenario");
    let above = [
        "roles",
        "reference",
        "plugin",
        "runner",
        "report",
        "cli",
        "discover",
    ];
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read src/scenario") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        for module in above {
            for needle in [format!("crate::{module}::"), format!("crate::{module};")] {
                if text.contains(&needle) {
                    found.push(format!("{}: {needle}", path.display()));
                }
            }
        }
    }
    assert!(found.is_empty(), "{found:?}");
}

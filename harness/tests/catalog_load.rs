//! Loading the catalog: errors name the file, consistency checks, the data files on disk
//! match the catalog, and the printed catalog.

mod support;

use rstest::rstest;
use serde_json::Value;
use std::path::{Path, PathBuf};
use zbx_conform::catalog::{print, Catalog, CatalogError};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn real() -> Catalog {
    Catalog::load(&root()).expect("catalog loads")
}

/// A data root holding one family catalog with the given text.
fn temp_catalog(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let fam = dir.path().join("schemas").join("fam");
    std::fs::create_dir_all(&fam).expect("mkdir");
    let path = fam.join("catalog.yaml");
    std::fs::write(&path, yaml).expect("write");
    std::fs::write(dir.path().join("schemas").join("versions.yaml"), VERSIONS).expect("write");
    (dir, path)
}

/// Two protocol versions for the temporary catalogs.
const VERSIONS: &str = "versions:
  - { version: '1.0', announce: '1.0.0', measured: true, evidence: e, accepts_proxies_from: '1.0' }
  - { version: '2.0', announce: '2.0.0', measured: true, evidence: e, accepts_proxies_from: '1.0' }
";

const GOOD: &str = "family: fam
sides: [x, y]
kinds:
  - kind: a
    summary: s
    from: x
    to: y
    since: '1.0'
    recognise: { equals: { /request: a } }
";

#[test]
fn a_minimal_catalog_loads() {
    let (dir, _) = temp_catalog(GOOD);
    let c = Catalog::load(dir.path()).expect("loads");
    assert_eq!(
        c.versions("fam"),
        vec!["1.0".to_string(), "2.0".to_string()]
    );
    assert_eq!(
        c.family("fam").map(|f| f.kinds[0].mode.as_str()),
        Some("any")
    );
}

#[rstest]
#[case::bad_yaml("family: [unclosed\n", "")]
#[case::unknown_field("family: fam\nsides: [x, y]\nkinds: []\ncolour: red\n", "colour")]
#[case::missing_sides("family: fam\nkinds: []\n", "sides")]
#[case::one_side("family: fam\nsides: [x, x]\nkinds: []\n", "two sides")]
#[case::unknown_side(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, from: x, to: z, since: '1.0', recognise: {}}\n",
    "to \"z\" is not a side of this family (x, y or any)"
)]
#[case::to_itself(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, from: y, to: y, since: '1.0', recognise: {}}\n",
    "both \"y\""
)]
#[case::missing_from(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, to: y, since: '1.0', recognise: {}}\n",
    "from"
)]
#[case::duplicate_kind(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, from: x, to: y, since: '1.0', recognise: {}}\n  - {kind: a, summary: s, from: x, to: y, since: '1.0', recognise: {}}\n",
    "listed twice"
)]
#[case::bad_mode(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, mode: sideways, from: x, to: y, since: '1.0', recognise: {}}\n",
    "sideways"
)]
#[case::unknown_since(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, from: x, to: y, since: '9.9', recognise: {}}\n",
    "does not list"
)]
#[case::until_before_since(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, from: x, to: y, since: '2.0', until: '1.0', recognise: {}}\n",
    "until comes before since"
)]
#[case::same_as_unknown(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, from: x, to: y, since: '1.0', recognise: {same_as: b}}\n",
    "no such kind"
)]
#[case::same_as_other_side(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, from: x, to: y, since: '1.0', recognise: {same_as: b}}\n  - {kind: b, summary: s, from: y, to: x, since: '1.0', recognise: {}}\n",
    "another side"
)]
#[case::same_as_missing_version(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, from: x, to: y, since: '1.0', recognise: {same_as: b}}\n  - {kind: b, summary: s, from: x, to: y, since: '2.0', recognise: {}}\n",
    "version 1.0"
)]
#[case::bad_regex(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, from: x, to: y, since: '1.0', body: text, recognise: {text: '('}}\n",
    "regex"
)]
#[case::section_twice(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, from: x, to: y, since: '1.0', recognise: {}, sections: [{name: d}, {name: d}]}\n",
    "listed twice"
)]
#[case::section_unknown_version(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, from: x, to: y, since: '1.0', recognise: {}, sections: [{name: d, since: '3.0'}]}\n",
    "since 3.0"
)]
#[case::unverified_unknown_version(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, from: x, to: y, since: '1.0', until: '1.0', recognise: {}, unverified: [{versions: ['2.0'], reason: r}]}\n",
    "version 2.0"
)]
#[case::unverified_unknown_section(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, from: x, to: y, since: '1.0', recognise: {}, unverified: [{versions: ['1.0'], sections: [d], reason: r}]}\n",
    "does not declare"
)]
#[case::unverified_without_reason(
    "family: fam\nsides: [x, y]\nkinds:\n  - {kind: a, summary: s, from: x, to: y, since: '1.0', recognise: {}, unverified: [{versions: ['1.0'], reason: ' '}]}\n",
    "a reason"
)]
fn load_errors_name_the_file(#[case] yaml: &str, #[case] reason: &str) {
    let (dir, path) = temp_catalog(yaml);
    let err = Catalog::load(dir.path()).expect_err("must not load");
    assert!(matches!(err, CatalogError::Parse { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(reason), "{msg}");
}

#[test]
fn missing_schemas_dir_and_empty_dir_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        Catalog::load(dir.path()),
        Err(CatalogError::Read { .. })
    ));
    std::fs::create_dir(dir.path().join("schemas")).expect("mkdir");
    assert!(matches!(
        Catalog::load(dir.path()),
        Err(CatalogError::Empty(_))
    ));
}

/// Every file under schemas/server-proxy/<v>/ and fixtures/server-proxy/<v>/ belongs to
/// a catalog row (or, for fixtures, is used by a scenario), and the reverse (checked by
/// catalog_fixtures).
#[test]
fn no_orphan_schema_or_fixture_files() {
    let c = real();
    let rows = c.rows(Some("server-proxy"), None);
    let mut known: std::collections::HashSet<PathBuf> = rows
        .iter()
        .flat_map(|r| [c.root().join(&r.schema), c.root().join(&r.fixture)])
        .collect();
    for v in c.versions("server-proxy") {
        for name in support::fixture_names_used_by_scenarios() {
            let p = c.fixture_path("server-proxy", &v, &name);
            // `other-family:name` resolves outside this family's folders.
            if p.is_file() && p.starts_with(c.root().join("fixtures").join("server-proxy")) {
                known.insert(p);
            }
        }
    }
    let mut seen = 0;
    for top in ["schemas", "fixtures"] {
        for v in c.versions("server-proxy") {
            let dir = c.root().join(top).join("server-proxy").join(&v);
            for e in std::fs::read_dir(&dir).expect("version dir") {
                let p = e.expect("entry").path();
                if p.is_file() {
                    assert!(known.contains(&p), "orphan file {}", p.display());
                    seen += 1;
                }
            }
        }
    }
    assert_eq!(seen, known.len());
}

#[test]
fn schemas_are_self_contained_2020_12_documents() {
    let c = real();
    for r in c.rows(Some("server-proxy"), None) {
        let p = c.root().join(&r.schema);
        let s: Value =
            serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("schema JSON");
        let name = p.display();
        assert_eq!(
            s["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert!(s.get("$id").is_none(), "{name} has $id");
        let title = s["title"].as_str().unwrap_or_default();
        assert!(title.contains(&r.kind), "{name} title names the kind");
        let desc = s["description"].as_str().unwrap_or_default();
        assert!(desc.contains(&r.kind), "{name} description names the kind");
        let text = s.to_string();
        for (i, _) in text.match_indices("\"$ref\":\"") {
            let rest = &text[i + 8..];
            assert!(rest.starts_with("#/$defs/"), "{name}: non-local $ref");
        }
    }
}

#[test]
fn volatile_keys_cover_protocol_md_section_5() {
    let c = real();
    let fam = c.family("server-proxy").expect("family");
    for key in [
        "clock",
        "ns",
        "session",
        "proxy_delay",
        "id",
        "lastlogsize",
        "mtime",
        "version",
        "config_revision",
    ] {
        assert!(fam.volatile.iter().any(|k| k == key), "{key} volatile");
    }
}

#[test]
fn rows_filter_and_keep_file_order() {
    let c = real();
    let all = c.rows(None, None);
    let sp60 = c.rows(Some("server-proxy"), Some("6.0"));
    assert_eq!(sp60.len(), 15);
    assert!(all.len() >= 30);
    assert!(sp60.iter().all(|r| r.version == "6.0"));
    assert!(c.rows(Some("no-such-family"), None).is_empty());
    assert!(c.rows(Some("server-proxy"), Some("9.9")).is_empty());
    let file_order: Vec<&str> = c
        .family("server-proxy")
        .expect("family")
        .kinds
        .iter()
        .filter(|k| k.versions.iter().any(|v| v == "6.0"))
        .map(|k| k.kind.as_str())
        .collect();
    let row_order: Vec<&str> = sp60.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(row_order, file_order);
    // 5.4 rows come before 6.0 rows.
    let sp = c.rows(Some("server-proxy"), None);
    assert_eq!(sp[0].version, "5.4");
    assert_eq!(sp[29].version, "6.0");
}

#[test]
fn printed_catalog_lists_every_kind() {
    let c = real();
    let rows = c.rows(Some("server-proxy"), Some("5.4"));
    let table = print::table(&rows, true);
    // Header, one line per row (details under it, indented), then the reasons of the
    // `unverified` marks (a blank line, a heading, one note each; long ones wrap).
    // A version's "documented, not measured" mark is one note for every kind.
    let notes = rows
        .iter()
        .flat_map(|r| {
            r.unverified.iter().map(move |u| {
                let documented = u
                    .reason
                    .starts_with(zbx_conform::catalog::DOCUMENTED_NOT_MEASURED);
                (if documented { "" } else { r.kind.as_str() }, &u.reason)
            })
        })
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert!(notes >= 2, "5.4 proxy data kinds are unverified");
    let unindented = |l: &&str| !l.starts_with("    ") && !l.is_empty();
    let (top, below) = table
        .split_once("\nunverified:")
        .expect("notes below the table");
    assert_eq!(top.lines().filter(unindented).count(), rows.len() + 1);
    assert_eq!(
        below
            .lines()
            .filter(|l| l.starts_with("  ") && unindented(l))
            .count(),
        notes
    );
    assert!(table.lines().all(|l| l.chars().count() <= print::WIDTH));
    assert!(table.contains("whole kind"));
    for r in &rows {
        assert!(table.contains(&r.kind), "{}", r.kind);
    }
    assert!(table.contains("server→proxy") && table.contains("proxy→server"));
    assert!(table.contains("by context only (same body as passive.proxy-data.ack)"));
    assert!(table.contains("schemas/server-proxy/5.4/active.proxy-data.request.json"));
    let json: Value = serde_json::from_str(&print::json(&rows)).expect("JSON");
    assert_eq!(json.as_array().map(Vec::len), Some(rows.len()));
    assert_eq!(json[0]["kind"], "failed.response");
    assert_eq!(json[0]["recognised_by"], "/response=\"failed\"");
}

/// `other-family:name` names another family's fixture (same version); a plain name stays
/// in the scenario's family.
#[test]
fn fixture_names_can_point_into_another_family() {
    let c = real();
    assert_eq!(
        c.fixture_path("sender", "7.0", "server-proxy:proxy-config.trapper.sync"),
        c.root()
            .join("fixtures/server-proxy/7.0/proxy-config.trapper.sync.json")
    );
    assert!(c
        .fixture_path("sender", "7.0", "server-proxy:proxy-config.trapper.sync")
        .is_file());
    assert_eq!(
        c.fixture_path("sender", "6.0", "sender.data.request"),
        c.root()
            .join("fixtures/sender/6.0/sender.data.request.json")
    );
}

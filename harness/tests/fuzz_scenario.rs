//! Fuzz-style robustness of the scenario loader and linter: arbitrary bytes, YAML-ish
//! token soup, and mutations of every real scenario file must give `Ok` or an error that
//! names the file and a position inside it — never a panic, and never much memory.
//!
//! Default: 256 cases per property (a few seconds); more with
//! `PROPTEST_CASES=20000 cargo test --release --test fuzz_scenario`.

mod frame_support;
mod support;

use frame_support::{measure, Tracking};
use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;
use zbx_conform::scenario::loader::parse_str;
use zbx_conform::scenario::{lint, load_file, LoadedScenario, ScenarioError};

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// Inputs here are at most ~64 KiB; parsing one may cost a multiple of that, but
/// anything near this means a budget is not applied.
const MEMORY_BOUND: usize = 64 << 20;

fn config() -> proptest::test_runner::Config {
    frame_support::proptest_config()
}

use support::root;

use support::catalog;

/// Every scenario file in the repository (standard suites and test data), as seeds.
fn seeds() -> &'static Vec<String> {
    static S: OnceLock<Vec<String>> = OnceLock::new();
    S.get_or_init(|| {
        let r = root();
        let files = zbx_conform::scenario::discover(&[
            r.join("scenarios"),
            r.join("harness/tests/data/scenarios"),
        ])
        .expect("scenario folders exist");
        let texts: Vec<String> = files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .collect();
        assert!(texts.len() >= 20, "too few seed scenarios: {}", texts.len());
        texts
    })
}

/// An error must point into the input: a line within the text (0 = whole file only for
/// errors that are not about a place) and a non-empty message, displayed with the path.
fn assert_located(e: &ScenarioError, path: &Path, text: &str) {
    let lines = text.lines().count() as u64 + 1;
    assert_eq!(e.path, path);
    assert!(!e.message.trim().is_empty(), "empty message: {e:?}");
    assert!(
        e.line <= lines,
        "line {} beyond the {lines} lines of the input: {e}",
        e.line
    );
    assert!(
        e.to_string().starts_with(&path.display().to_string()),
        "{e}"
    );
}

/// Parse `text` through `parse_str` and, when it is valid UTF-8 on disk, `load_file` +
/// `lint`; assert located errors and bounded memory.
fn exercise(text: &str) {
    let path = Path::new("fuzz.yaml");
    let (res, usage) = measure(|| parse_str(path, text));
    assert!(
        usage.peak_extra < MEMORY_BOUND,
        "parse_str used {} bytes for {} bytes of input",
        usage.peak_extra,
        text.len()
    );
    match &res {
        Ok(_) => {}
        Err(e) => {
            assert_located(e, path, text);
            // A parse error is always about a place in a non-empty file.
            assert!(e.line >= 1, "parse error without a line: {e}");
        }
    }
    if let Ok(scenario) = res {
        // Valid enough to parse: the linter (which re-reads the file for positions)
        // must cope with whatever values it got.
        let dir = tempfile::tempdir().expect("tempdir");
        let on_disk = dir.path().join("fuzz.yaml");
        std::fs::write(&on_disk, text).expect("write");
        let loaded = LoadedScenario {
            path: on_disk,
            scenario,
        };
        let (findings, usage) = measure(|| lint(&loaded, catalog(), &["passive-proxy"]));
        assert!(usage.peak_extra < MEMORY_BOUND);
        for f in &findings {
            assert!(!f.message.trim().is_empty(), "{f:?}");
        }
    }
}

/// `load_file` on raw bytes (non-UTF-8, NUL, BOMs...).
fn exercise_bytes(bytes: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fuzz.yaml");
    std::fs::write(&path, bytes).expect("write");
    let (res, usage) = measure(|| load_file(&path));
    assert!(usage.peak_extra < MEMORY_BOUND);
    if let Err(e) = res {
        let text = String::from_utf8_lossy(bytes);
        assert_located(&e, &path, &text);
    }
}

/// Pieces of YAML and of our scenario vocabulary, so generated text gets past the
/// tokenizer and into the model and structure rules.
fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "name",
        "family",
        "versions",
        "plays",
        "steps",
        "exchange",
        "accept",
        "send",
        "expect",
        "then",
        "repeat",
        "times",
        "sleep",
        "when",
        "version",
        "json",
        "text",
        "raw",
        "fixture",
        "frame",
        "datalen",
        "flags",
        "match",
        "capture",
        "closes",
        "silent",
        "within",
        "kind",
        "others",
        "skip",
        "peer",
        "address",
        "reference",
        "listen",
        "timeout",
        "vars",
        "set",
        "remove",
        "$regex",
        "$len",
        "$gt",
        "${x}",
        "${version:-6.0}",
        "server-proxy",
        "agent",
        "server",
        "proxy",
        "\"6.0\"",
        "5.4",
        ">=6.4",
        "2s",
        "500ms",
        "1h",
        "-1",
        "0",
        "1e309",
        "0x1F",
        "true",
        "null",
        "~",
        ": ",
        ":",
        "- ",
        "-",
        "[",
        "]",
        "{",
        "}",
        ",",
        "? ",
        "&a ",
        "*a",
        "!!str ",
        "!!binary ",
        "!tag ",
        "|",
        ">",
        "'",
        "\"",
        "#",
        "%YAML 1.2",
        "---",
        "...",
        "\\",
        "\n",
        "\n  ",
        "\n    ",
        "\n      ",
        "\t",
        " ",
        "/",
        "~1",
        "ZBXD",
        "5a 42 58 44",
        "\u{feff}",
        "\u{0}",
        "é",
        "<<: *a",
    ])
}

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 0..300).prop_map(|t| t.concat())
}

/// A mutation applied to a seed file.
#[derive(Debug, Clone)]
enum Mutation {
    /// Drop bytes [at, at+len).
    Delete(usize, usize),
    /// Copy bytes [from, from+len) to `at`.
    Duplicate(usize, usize, usize),
    /// Insert a token at `at`.
    Insert(usize, &'static str),
    /// Truncate at `at`.
    Truncate(usize),
    /// Replace the byte at `at`.
    Byte(usize, u8),
    /// Swap two lines.
    SwapLines(usize, usize),
    /// Re-indent a line by `delta` spaces.
    Indent(usize, i8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(a, l)| Mutation::Delete(a, l)),
        (any::<usize>(), 1usize..400, any::<usize>())
            .prop_map(|(f, l, a)| Mutation::Duplicate(f, l, a)),
        (any::<usize>(), token()).prop_map(|(a, t)| Mutation::Insert(a, t)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::Byte(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), -4i8..5).prop_map(|(a, d)| Mutation::Indent(a, d)),
    ]
}

fn apply(text: &str, m: &Mutation) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    let n = b.len().max(1);
    match *m {
        Mutation::Delete(at, len) => {
            let at = at % n;
            let end = (at + len).min(b.len());
            if at < end {
                b.drain(at..end);
            }
        }
        Mutation::Duplicate(from, len, at) => {
            let from = from % n;
            let end = (from + len).min(b.len());
            let piece: Vec<u8> = b.get(from..end).unwrap_or_default().to_vec();
            let at = at % (b.len() + 1);
            b.splice(at..at, piece);
        }
        Mutation::Insert(at, tok) => {
            let at = at % (b.len() + 1);
            b.splice(at..at, tok.bytes());
        }
        Mutation::Truncate(at) => b.truncate(at % n),
        Mutation::Byte(at, v) => {
            if let Some(x) = b.get_mut(at % n) {
                *x = v;
            }
        }
        Mutation::SwapLines(x, y) => {
            let mut lines: Vec<&str> = text.split('\n').collect();
            let len = lines.len();
            lines.swap(x % len, y % len);
            b = lines.join("\n").into_bytes();
        }
        Mutation::Indent(line, delta) => {
            let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
            let len = lines.len();
            let l = &mut lines[line % len];
            if delta >= 0 {
                l.insert_str(0, &" ".repeat(delta as usize));
            } else {
                let strip = l
                    .chars()
                    .take((-delta) as usize)
                    .take_while(|c| *c == ' ')
                    .count();
                l.drain(..strip);
            }
            b = lines.join("\n").into_bytes();
        }
    }
    b
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_load_or_fail_located(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        exercise_bytes(&bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            exercise(text);
        }
    }

    #[test]
    fn yamlish_text_parses_or_fails_located(text in yamlish()) {
        exercise(&text);
    }

    #[test]
    fn mutated_scenarios_parse_or_fail_located(
        seed in any::<prop::sample::Index>(),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        let seeds = seeds();
        let mut text = seeds[seed.index(seeds.len())].clone();
        for m in &muts {
            let bytes = apply(&text, m);
            text = match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    // Non-UTF-8 goes through load_file, which must refuse it cleanly.
                    exercise_bytes(e.as_bytes());
                    String::from_utf8_lossy(e.as_bytes()).into_owned()
                }
            };
        }
        exercise(&text);
    }
}

/// The seeds themselves: every repository scenario goes through the same path, so the
/// properties above start from inputs that reach the model and the linter.
#[test]
fn seeds_reach_the_linter() {
    let mut parsed = 0;
    for text in seeds() {
        if parse_str(Path::new("seed.yaml"), text).is_ok() {
            parsed += 1;
        }
        exercise(text);
    }
    assert!(parsed >= 15, "only {parsed} seeds parse");
}

/// Deep nesting and alias expansion built by the generator's own pieces, scaled up:
/// refused by budgets, quickly and with a location.
#[test]
fn nesting_and_alias_bombs_fail_within_budget() {
    let deep = format!("name: {}x{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..12 {
        let prev = if i == 0 {
            "a".to_string()
        } else {
            format!("l{}", i - 1)
        };
        laughs.push_str(&format!(
            "l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
    }
    for text in [deep, laughs] {
        let start = std::time::Instant::now();
        let (res, usage) = measure(|| parse_str(Path::new("bomb.yaml"), &text));
        let e = res.expect_err("a bomb is not a scenario");
        assert!(e.line >= 1, "{e}");
        assert!(
            usage.peak_extra < MEMORY_BOUND,
            "{} bytes",
            usage.peak_extra
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}

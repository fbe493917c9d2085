//! Loading scenario files: YAML parsing with locations and input budgets, the
//! structural rules serde cannot express (see [`super::structure`]), and discovery of
//! scenario files in folders. Semantic checks against the catalog live in
//! [`super::lint`].

use super::model::Scenario;
use super::structure;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A parsed scenario with its origin.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub path: PathBuf,
    pub scenario: Scenario,
}

/// An error in a scenario file, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    pub path: PathBuf,
    /// 1-based; 0 when unknown.
    pub line: u64,
    pub column: u64,
    pub message: String,
}

/// `file:line:column: message`, the prefix on every line of a message of several.
impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix = format!("{}:{}:{}", self.path.display(), self.line, self.column);
        write_prefixed(f, &prefix, &self.message)
    }
}

/// `message` with `prefix: ` in front of each of its lines (blank lines dropped, so
/// no line of output is a bare prefix).
pub fn write_prefixed(
    f: &mut std::fmt::Formatter<'_>,
    prefix: &str,
    message: &str,
) -> std::fmt::Result {
    let mut lines = message.lines().filter(|l| !l.trim().is_empty());
    match lines.next() {
        Some(first) => write!(f, "{prefix}: {first}")?,
        None => write!(f, "{prefix}: {}", message.trim())?,
    }
    for line in lines {
        write!(f, "\n{prefix}: {line}")?;
    }
    Ok(())
}

impl ScenarioError {
    /// An error about the file as a whole (no position).
    pub fn whole_file(path: &Path, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
        }
    }
}

/// Largest scenario file we read. Real scenarios are a few KiB; the cap keeps a wrong
/// path (a log file, a dump) or a hostile file from being read into memory whole.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Parser options with budgets sized for scenario files: generous for hand-written
/// conversations with inline JSON bodies, far below what would hurt a CI runner.
/// Alias replay is capped so "billion laughs" files fail within milliseconds.
fn parse_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: 1,
            max_depth: 48,
            max_events: 400_000,
            max_nodes: 200_000,
            max_aliases: 2_000,
            max_anchors: 2_000,
            max_recorded_anchor_events: 100_000,
            max_recorded_anchor_bytes: 4 * 1024 * 1024,
            max_total_scalar_bytes: 8 * 1024 * 1024,
            max_merge_keys: 1_000,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
        },
        with_snippet: false,
    }
}

/// Parse one scenario from text; `path` is only used in errors.
pub fn parse_str(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(ScenarioError {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            message:
                "empty file: a scenario needs `name`, `family`, `versions`, `plays` and `steps`"
                    .into(),
        });
    }
    let scenario: Scenario = serde_saphyr::from_str_with_options(text, parse_options())
        .map_err(|e| yaml_error(path, &e))?;
    let problems = structure::check(&scenario, text);
    match problems.into_iter().next() {
        Some(p) => Err(ScenarioError {
            path: path.to_path_buf(),
            line: p.line,
            column: p.column,
            message: p.message,
        }),
        None => Ok(scenario),
    }
}

/// Every structural problem of a parsed scenario, in file order (the loader reports only
/// the first; `lint` wants them all).
pub fn structure_errors(path: &Path, scenario: &Scenario, text: &str) -> Vec<ScenarioError> {
    structure::check(scenario, text)
        .into_iter()
        .map(|p| ScenarioError {
            path: path.to_path_buf(),
            line: p.line,
            column: p.column,
            message: p.message,
        })
        .collect()
}

/// Turn a serde-saphyr error into ours: the position the parser knows, and its message
/// without the position suffix and snippet (we print `file:line:col:` ourselves). Also
/// used for the mock-plugin scenario files, which are YAML written by hand too.
pub fn yaml_error(path: &Path, e: &serde_saphyr::Error) -> ScenarioError {
    use serde_saphyr::MessageFormatter;
    let inner = e.without_snippet();
    let (line, column) = inner
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let message = serde_saphyr::DefaultMessageFormatter
        .format_message(inner)
        .trim()
        .to_string();
    let message = if message.is_empty() {
        inner.to_string()
    } else {
        message
    };
    let message = readable(inner, message);
    ScenarioError {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

/// Rephrase the few parser messages that name Rust types or internal counters.
fn readable(e: &serde_saphyr::Error, message: String) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let mut e = e;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = e
    {
        e = error;
    }
    if let serde_saphyr::Error::Budget { breach, .. } = e {
        let what = match breach {
            B::Depth { .. } => "nesting is deeper than 48 levels".to_string(),
            B::Documents { .. } => {
                "more than one YAML document (a second `---`); one scenario per file".to_string()
            }
            B::Aliases { .. }
            | B::Anchors { .. }
            | B::AliasAnchorRatio { .. }
            | B::RecordedAnchorEvents { .. }
            | B::RecordedAnchorBytes { .. }
            | B::MergeKeys { .. } => {
                "anchors and aliases expand to too much data (an alias bomb?)".to_string()
            }
            B::Events { .. } | B::Nodes { .. } | B::ScalarBytes { .. } | B::InputBytes { .. } => {
                "the document is too large".to_string()
            }
            other => format!("{other:?}"),
        };
        return format!("input exceeds the scenario file budget: {what}");
    }
    match message.as_str() {
        "invalid u8" => "expected a whole number from 0 to 255".into(),
        "invalid u32" => "expected a whole number from 0 to 4294967295".into(),
        "invalid u64" => "expected a non-negative whole number".into(),
        m if m.starts_with("data did not match any variant of untagged enum OneOrMany") => {
            "expected a string or a list of strings".into()
        }
        _ => unknown_field_hint(message),
    }
}

/// `unknown field `exchnge`, expected one of name, when, exchange, ...` gets the
/// closest expected field as a hint: `unknown field `exchnge` (did you mean
/// "exchange"?), expected one of ...`. Other messages are returned as they are.
fn unknown_field_hint(message: String) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message;
    };
    let Some((field, expected)) = rest.split_once('`') else {
        return message;
    };
    let list = expected
        .trim_start_matches(',')
        .trim_start()
        .trim_start_matches("expected one of ")
        .trim_start_matches("expected ");
    let candidates: Vec<&str> = list
        .split([',', ' '])
        .map(|c| c.trim().trim_matches('`'))
        .filter(|c| !c.is_empty() && *c != "or")
        .collect();
    let hint = crate::suggest::hint(field, candidates);
    if hint.is_empty() {
        return message;
    }
    format!("unknown field `{field}`{hint}{expected}")
}

/// Read a file, refusing non-UTF-8 text and files above [`MAX_FILE_BYTES`].
pub(crate) fn read_text(path: &Path) -> Result<String, ScenarioError> {
    let file = std::fs::File::open(path)
        .map_err(|e| ScenarioError::whole_file(path, format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ScenarioError::whole_file(path, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ScenarioError::whole_file(
            path,
            format!(
                "file is larger than {} MiB; scenario files are small YAML documents",
                MAX_FILE_BYTES / (1024 * 1024)
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        ScenarioError::whole_file(
            path,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Parse one file and apply structural rules.
pub fn load_file(path: &Path) -> Result<LoadedScenario, ScenarioError> {
    let text = read_text(path)?;
    let scenario = parse_str(path, &text)?;
    Ok(LoadedScenario {
        path: path.to_path_buf(),
        scenario,
    })
}

/// Whether `text` is a mock-plugin scenario rather than a `zbx-conform run` scenario: it
/// has a top-level `plugin:` key (run scenarios never do). A cheap text test, so folder
/// discovery for `run`/`lint` can skip these files without parsing them. It lives here,
/// beside discovery, because telling scenario files apart is the loader's business;
/// `plugin::mock_scenario` uses it too.
pub fn is_mock_plugin_text(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.split(" #").next().unwrap_or("").trim_end();
        l == "plugin:" || l.starts_with("plugin: {")
    })
}

/// [`is_mock_plugin_text`] for a file; an unreadable file is not one (the caller's own
/// loading then reports why it cannot be read).
pub fn is_mock_plugin_file(path: &Path) -> bool {
    read_text(path).is_ok_and(|t| is_mock_plugin_text(&t))
}

/// Whether discovery picks this file up.
fn is_scenario_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|x| x.to_str()),
        Some("yaml" | "yml")
    )
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Expand files and folders into the sorted list of scenario files (`*.yaml`, `*.yml`).
///
/// Folders are searched recursively; hidden files and folders (`.git`, editor swap
/// files) are skipped, symlinked folders are followed once (a loop is not an error, it
/// is just not walked twice), and an unreadable folder is an error naming it. Files
/// named explicitly are taken whatever their extension.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut out = Vec::new();
    let mut seen_dirs: HashSet<PathBuf> = HashSet::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| {
            let msg = if e.kind() == std::io::ErrorKind::NotFound {
                "no such file or directory".to_string()
            } else {
                format!("cannot access: {e}")
            };
            ScenarioError::whole_file(p, msg)
        })?;
        if meta.is_file() {
            out.push(p.clone());
            continue;
        }
        if !meta.is_dir() {
            return Err(ScenarioError::whole_file(
                p,
                "not a regular file or directory",
            ));
        }
        let mut stack = vec![p.clone()];
        while let Some(dir) = stack.pop() {
            let canon = std::fs::canonicalize(&dir).map_err(|e| {
                ScenarioError::whole_file(&dir, format!("cannot read directory: {e}"))
            })?;
            if !seen_dirs.insert(canon) {
                continue;
            }
            let rd = std::fs::read_dir(&dir).map_err(|e| {
                ScenarioError::whole_file(&dir, format!("cannot read directory: {e}"))
            })?;
            for entry in rd {
                let entry = entry.map_err(|e| {
                    ScenarioError::whole_file(&dir, format!("cannot read directory: {e}"))
                })?;
                let path = entry.path();
                if is_hidden(&path) {
                    continue;
                }
                // metadata() follows symlinks; a dangling link is skipped rather than
                // failing the whole run, since it cannot be a scenario.
                let Ok(m) = std::fs::metadata(&path) else {
                    continue;
                };
                if m.is_dir() {
                    stack.push(path);
                } else if m.is_file() && is_scenario_file(&path) && !is_mock_plugin_file(&path) {
                    // Mock-plugin files (scenarios/plugin/) are read by `mock-plugin
                    // --scenario`, not by `run`/`lint`.
                    out.push(path);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

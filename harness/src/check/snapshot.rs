//! Snapshots: a received body, with volatile fields replaced by placeholders, stored as
//! pretty JSON next to the scenarios and compared on later runs.
//!
//! Candidates are never written over a stored snapshot without `--update-snapshots`; they
//! go to `<path>.new` for review (the insta-style workflow), and the stale `.new` file is
//! removed once the snapshot matches or is updated.

use serde_json::{Map, Value};
use similar::TextDiff;
use std::path::{Path, PathBuf};

/// Result of comparing a body with its stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotOutcome {
    Matched,
    /// Written because `--update-snapshots` was given (new or changed).
    Updated(PathBuf),
    /// No stored snapshot; the candidate was written to `pending` for review.
    Missing {
        pending: PathBuf,
    },
    /// Differs; `diff` is a readable unified diff, the candidate is in `pending`.
    Mismatch {
        diff: String,
        pending: PathBuf,
    },
}

/// Replace the values of volatile keys (anywhere in the tree) with placeholders.
///
/// An entry is a key name (`clock`), matched in every object and as a column name of
/// every `{"fields":[...],"data":[[...]]}` table, and replaced by `"[clock]"`. An entry
/// starting with `/` is a JSON pointer and replaces only that value, with the pointer's
/// last token as the placeholder name. The value is replaced whatever it is (including
/// `null`), so the snapshot does not depend on it.
pub fn redact_volatile(v: &Value, volatile_keys: &[String]) -> Value {
    let (pointers, keys): (Vec<&String>, Vec<&String>) =
        volatile_keys.iter().partition(|k| k.starts_with('/'));
    let keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
    let mut out = v.clone();
    if !keys.is_empty() {
        redact_keys(&mut out, &keys);
    }
    for p in pointers {
        if let Some(slot) = out.pointer_mut(p) {
            let last = p.rsplit('/').next().unwrap_or("");
            let name = last.replace("~1", "/").replace("~0", "~");
            *slot = placeholder(&name);
        }
    }
    out
}

fn placeholder(key: &str) -> Value {
    Value::String(format!("[{key}]"))
}

fn redact_keys(v: &mut Value, keys: &[&str]) {
    match v {
        Value::Object(m) => {
            redact_table_columns(m, keys);
            for (k, child) in m.iter_mut() {
                if keys.contains(&k.as_str()) {
                    *child = placeholder(k);
                } else {
                    redact_keys(child, keys);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| redact_keys(i, keys)),
        _ => {}
    }
}

fn redact_table_columns(m: &mut Map<String, Value>, keys: &[&str]) {
    let Some(Value::Array(fields)) = m.get("fields") else {
        return;
    };
    let cols: Vec<(usize, String)> = fields
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            f.as_str()
                .filter(|n| keys.contains(n))
                .map(|n| (i, n.to_string()))
        })
        .collect();
    if cols.is_empty() {
        return;
    }
    let Some(Value::Array(rows)) = m.get_mut("data") else {
        return;
    };
    for row in rows.iter_mut() {
        if let Value::Array(cells) = row {
            for (i, name) in &cols {
                if let Some(cell) = cells.get_mut(*i) {
                    *cell = placeholder(name);
                }
            }
        }
    }
}

/// The stored form: pretty JSON, 2-space indent, trailing newline.
pub fn to_snapshot_text(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}

/// Where the candidate for `path` is written for review: `<path>.new`.
pub fn pending_path(path: &Path) -> PathBuf {
    let mut os = path.as_os_str().to_owned();
    os.push(".new");
    PathBuf::from(os)
}

/// Compare `actual` (already redacted) with the snapshot at `path`.
///
/// Comparison is semantic (key order and formatting of the stored file do not matter,
/// numbers compare by value); the diff is between the normalised texts so it shows only
/// real changes.
pub fn compare_snapshot(
    path: &Path,
    actual: &Value,
    update: bool,
) -> Result<SnapshotOutcome, String> {
    let candidate = to_snapshot_text(actual);
    let pending = pending_path(path);
    let stored_text = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read snapshot {}: {e}", path.display())),
    };
    let stored: Option<Result<Value, String>> = stored_text
        .as_deref()
        .map(|t| serde_json::from_str(t).map_err(|e| format!("{e}")));

    let same = matches!(&stored, Some(Ok(v)) if super::matcher::json_eq(v, actual));
    if same {
        remove_if_exists(&pending)?;
        return Ok(SnapshotOutcome::Matched);
    }
    if update {
        write_file(path, &candidate)?;
        remove_if_exists(&pending)?;
        return Ok(SnapshotOutcome::Updated(path.to_path_buf()));
    }
    write_file(&pending, &candidate)?;
    let Some(stored_text) = stored_text else {
        return Ok(SnapshotOutcome::Missing { pending });
    };
    // Diff normalised texts when the stored file parses; otherwise the raw text (the
    // reader then sees why it did not parse).
    let old = match &stored {
        Some(Ok(v)) => to_snapshot_text(v),
        _ => stored_text,
    };
    let diff = TextDiff::from_lines(&old, &candidate)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("stored {}", path.display()),
            &format!("received {}", pending.display()),
        )
        .to_string();
    Ok(SnapshotOutcome::Mismatch { diff, pending })
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write snapshot {}: {e}", path.display()))
}

fn remove_if_exists(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!(
            "cannot remove stale snapshot candidate {}: {e}",
            path.display()
        )),
    }
}

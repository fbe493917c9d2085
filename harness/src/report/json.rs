//! JSON report: the `RunResult` serialized as is, with one safety pass: every free-text
//! field that can carry peer data (bodies, received messages, details, logs, reasons) goes
//! through `redact_text` again, as the JUnit report does, so a secret the runner missed
//! does not reach a CI artifact.

use crate::check::redact::redact_text;
use crate::runner::result::RunResult;
use serde_json::Value;
use std::path::Path;

/// Fields of the serialized `RunResult` that hold text from the peer or derived from it.
const TEXT_FIELDS: &[&str] = &[
    "body", "received", "detail", "expected", "peer_log", "reason",
];

/// Write the report to `path` (parent directories are created).
pub fn write(run: &RunResult, path: &Path) -> std::io::Result<()> {
    write_value(
        serde_json::to_value(run).map_err(std::io::Error::other)?,
        path,
    )
}

/// Write a report already turned into JSON, so a producer can add members first
/// (certify-plugin adds each requirement's properties); redacted like `write`.
pub fn write_value(v: Value, path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, value_to_string(v)? + "\n")
}

/// The report as pretty JSON text.
pub fn to_string(run: &RunResult) -> std::io::Result<String> {
    value_to_string(serde_json::to_value(run).map_err(std::io::Error::other)?)
}

/// A report already turned into JSON, redacted, as pretty text.
pub fn value_to_string(mut v: Value) -> std::io::Result<String> {
    redact_fields(&mut v);
    serde_json::to_string_pretty(&v).map_err(std::io::Error::other)
}

fn redact_fields(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                match child {
                    Value::String(s) if TEXT_FIELDS.contains(&k.as_str()) => {
                        *s = redact_text(s);
                    }
                    other => redact_fields(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_fields),
        _ => {}
    }
}

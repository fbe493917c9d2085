//! JSON Schema validation of message bodies.
//!
//! Schemas are local files (`schemas/<family>/<version>/<kind>.json`, draft 2020-12),
//! each self-contained: `jsonschema` is built without its file/HTTP resolvers, so only
//! references inside one file (`#/$defs/...`) resolve. A schema is compiled the first
//! time it is used and shared by every scenario of the run, because compiling is far
//! more expensive than validating and a suite validates the same kinds many times.

use jsonschema::Validator;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Most violations listed for one message.
pub const MAX_VIOLATIONS: usize = 20;
/// Longest rendering of the offending value in a violation message.
const MAX_SHOWN_VALUE: usize = 200;

/// One schema violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// JSON pointer into the instance.
    pub instance_path: String,
    /// JSON pointer into the schema (the keyword that failed).
    pub schema_path: String,
    pub message: String,
}

/// Compiled validators keyed by schema file, compiled on first use and shared by all
/// scenarios of a run (thread-safe).
#[derive(Default)]
pub struct SchemaCache {
    compiled: Mutex<HashMap<PathBuf, Arc<Validator>>>,
}

impl std::fmt::Debug for SchemaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaCache")
            .field("compiled", &self.len())
            .finish()
    }
}

impl SchemaCache {
    pub fn new() -> Self {
        SchemaCache::default()
    }

    /// Validate `instance` against the schema file at `path`. `Err` means the schema
    /// itself could not be read or compiled (a scenario/catalog error, not a peer error).
    /// An empty vector means the instance is valid; otherwise every violation is listed.
    ///
    /// At most [`MAX_VIOLATIONS`] violations are listed (a million-element array of the
    /// wrong items has a million), and each message shows the offending value as a
    /// bounded, redacted excerpt rather than all of it.
    pub fn validate(&self, path: &Path, instance: &Value) -> Result<Vec<SchemaViolation>, String> {
        let validator = self.compile(path)?;
        Ok(validator
            .iter_errors(instance)
            .take(MAX_VIOLATIONS)
            .map(|e| {
                let shown = super::excerpt::show(e.instance(), MAX_SHOWN_VALUE);
                SchemaViolation {
                    instance_path: e.instance_path().as_str().to_string(),
                    schema_path: e.schema_path().as_str().to_string(),
                    message: e.masked_with(shown).to_string(),
                }
            })
            .collect())
    }

    /// The compiled validator for the schema file at `path`, compiling it on first use.
    /// Useful to check up front that every schema a suite needs compiles.
    pub fn compile(&self, path: &Path) -> Result<Arc<Validator>, String> {
        if let Some(v) = self.lock().get(path) {
            return Ok(Arc::clone(v));
        }
        // Compile outside the lock: other tasks keep validating against schemas already
        // compiled. Two tasks may compile the same file at once; the first insert wins
        // and both results are equivalent.
        let compiled = Arc::new(compile_file(path)?);
        let mut map = self.lock();
        let entry = map.entry(path.to_path_buf()).or_insert(compiled);
        Ok(Arc::clone(entry))
    }

    /// Number of schema files compiled so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Arc<Validator>>> {
        // A panic while holding the lock cannot leave the map half-updated (inserts are
        // single calls), so a poisoned lock is still safe to use.
        self.compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn compile_file(path: &Path) -> Result<Validator, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read schema {}: {e}", path.display()))?;
    let schema: Value = serde_json::from_str(&text)
        .map_err(|e| format!("schema {} is not valid JSON: {e}", path.display()))?;
    jsonschema::draft202012::new(&schema)
        .map_err(|e| format!("schema {} does not compile: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write temp schema");
        p
    }

    #[test]
    fn reports_every_violation_with_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(
            dir.path(),
            "s.json",
            r##"{"$schema":"https://json-schema.org/draft/2020-12/schema",
                "type":"object","required":["response"],
                "properties":{"response":{"enum":["success","failed"]},
                              "rows":{"type":"array","items":{"$ref":"#/$defs/row"}}},
                "$defs":{"row":{"type":"object","properties":{"value":{"type":"string"}}}}}"##,
        );
        let cache = SchemaCache::new();
        assert!(cache
            .validate(&p, &json!({"response":"success","rows":[{"value":"1"}]}))
            .expect("compiles")
            .is_empty());
        let v = cache
            .validate(&p, &json!({"rows":[{"value":1}]}))
            .expect("compiles");
        assert_eq!(v.len(), 2, "{v:?}");
        let paths: Vec<&str> = v.iter().map(|x| x.instance_path.as_str()).collect();
        assert!(paths.contains(&""), "{paths:?}");
        assert!(paths.contains(&"/rows/0/value"), "{paths:?}");
        assert!(v.iter().any(|x| x.schema_path.ends_with("/required")));
        assert!(v.iter().all(|x| !x.message.is_empty()));
        assert_eq!(cache.len(), 1, "compiled once");
        let _ = cache.validate(&p, &json!({})).expect("compiles");
        assert_eq!(cache.len(), 1, "still compiled once");
    }

    #[test]
    fn unreadable_or_invalid_schema_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = SchemaCache::new();
        let missing = dir.path().join("missing.json");
        let e = cache.validate(&missing, &json!({})).unwrap_err();
        assert!(e.contains("missing.json"), "{e}");
        let bad_json = write(dir.path(), "bad.json", "{ not json");
        let e = cache.validate(&bad_json, &json!({})).unwrap_err();
        assert!(
            e.contains("bad.json") && e.contains("not valid JSON"),
            "{e}"
        );
        let bad_schema = write(dir.path(), "invalid.json", r#"{"type": 12}"#);
        let e = cache.validate(&bad_schema, &json!({})).unwrap_err();
        assert!(
            e.contains("invalid.json") && e.contains("does not compile"),
            "{e}"
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn remote_references_are_not_fetched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(
            dir.path(),
            "remote.json",
            r#"{"$ref":"https://example.invalid/other.json"}"#,
        );
        let cache = SchemaCache::new();
        assert!(cache.validate(&p, &json!({})).is_err());
    }

    #[test]
    fn shared_across_threads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "s.json", r#"{"type":"string"}"#);
        let cache = Arc::new(SchemaCache::new());
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let cache = Arc::clone(&cache);
                let p = p.clone();
                std::thread::spawn(move || {
                    let ok = cache.validate(&p, &json!("x")).map(|v| v.is_empty());
                    let bad = cache.validate(&p, &json!(i)).map(|v| v.len());
                    (ok, bad)
                })
            })
            .collect();
        for h in handles {
            let (ok, bad) = h.join().expect("thread");
            assert_eq!(ok, Ok(true));
            assert_eq!(bad, Ok(1));
        }
        assert_eq!(cache.len(), 1);
    }
}

//! The checks of one received message, each a function of plain inputs returning the
//! failures it found: the runner lists them for an `expect`, the plugin host and
//! `validate` use the same kind and schema check. Nothing here reads a socket or a
//! scenario; variables are expanded by the caller.

use super::excerpt::{render_body, render_bytes};
use super::failure::{CheckFailure, CheckKind};
use super::schema::{SchemaCache, SchemaViolation};
use super::snapshot::{compare_snapshot, redact_volatile, SnapshotOutcome};
use crate::catalog::{BodyType, Catalog};
use crate::message::Body;
use serde_json::Value;
use std::borrow::Cow;
use std::path::Path;

/// Which kind of which family and version a message is checked against.
#[derive(Debug, Clone, Copy)]
pub struct KindAt<'a> {
    pub family: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
}

/// Why a message could not be checked against a kind (the scenario's or the catalog's
/// fault, not the peer's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    #[error("kind `{kind}` does not exist in {family} {version}")]
    Unknown {
        family: String,
        version: String,
        kind: String,
    },
    /// The schema file could not be read or compiled.
    #[error("{0}")]
    Schema(String),
}

/// Validate `body` against the schema of `at`: a JSON body as it is, a text body of a
/// text kind as a JSON string (text schemas describe a string). A text body for a JSON
/// kind is one violation. The one place every part of the harness validates a message
/// against its kind.
pub fn validate_message(
    catalog: &Catalog,
    schemas: &SchemaCache,
    at: KindAt<'_>,
    body: &Body,
) -> Result<Vec<SchemaViolation>, KindError> {
    let entry = catalog
        .kind(at.family, at.version, at.kind)
        .ok_or_else(|| KindError::Unknown {
            family: at.family.to_string(),
            version: at.version.to_string(),
            kind: at.kind.to_string(),
        })?;
    // Borrowed: a copy of a large message would double what checking it costs.
    let instance: Cow<'_, Value> = match (body, entry.body) {
        (Body::Json(v), _) => Cow::Borrowed(v),
        (Body::Text(t), BodyType::Text) => Cow::Owned(Value::String(t.clone())),
        (Body::Text(_), BodyType::Json) => {
            return Ok(vec![SchemaViolation {
                instance_path: String::new(),
                schema_path: String::new(),
                message: "the payload is not valid JSON".into(),
            }])
        }
    };
    let path = catalog.schema_path(at.family, at.version, &entry.kind);
    schemas
        .validate(&path, &instance)
        .map_err(KindError::Schema)
}

/// Bytes that followed the frame on the connection.
pub fn trailing_bytes(leftover: &[u8]) -> Option<CheckFailure> {
    (!leftover.is_empty()).then(|| {
        CheckFailure::new(
            CheckKind::Frame,
            "exactly one frame",
            format!(
                "{} unexpected bytes after the frame ({})",
                leftover.len(),
                render_bytes(leftover)
            ),
        )
    })
}

/// What an expectation wants of the frame header.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameWant {
    pub compressed: Option<bool>,
    pub large: Option<bool>,
    pub flags: Option<u8>,
}

/// The frame's flags against what the expectation wants.
pub fn frame_flags(flags: u8, want: FrameWant) -> Vec<CheckFailure> {
    let got = || format!("got flags 0x{flags:02x}");
    let mut out = Vec::new();
    if let Some(w) = want.compressed {
        if (flags & crate::frame::zbxd::FLAG_COMPRESSED != 0) != w {
            let what = if w { "compressed (0x02)" } else { "plain" };
            out.push(CheckFailure::new(
                CheckKind::Frame,
                format!("a {what} frame"),
                got(),
            ));
        }
    }
    if let Some(w) = want.large {
        if (flags & crate::frame::zbxd::FLAG_LARGE != 0) != w {
            let what = if w { "set" } else { "clear" };
            out.push(CheckFailure::new(
                CheckKind::Frame,
                format!("large flag (0x04) {what}"),
                got(),
            ));
        }
    }
    if let Some(w) = want.flags {
        if flags != w {
            out.push(CheckFailure::new(
                CheckKind::Frame,
                format!("flags 0x{w:02x}"),
                got(),
            ));
        }
    }
    out
}

/// The expected kind against the recognised one. Returns the kind to validate against
/// (the expected one when given, else the recognised one) and the failure, if any. A
/// kind marked `same_as` has the same body as another kind (every `{"response":"success"}`
/// a server sends): recognising the other kind is a match.
pub fn kind(
    catalog: &Catalog,
    family: &str,
    version: &str,
    want: Option<&str>,
    recognised: Option<&str>,
) -> (Option<String>, Option<CheckFailure>) {
    let Some(want) = want else {
        return (recognised.map(str::to_string), None);
    };
    let entry = catalog.kind(family, version, want);
    let same_as = entry.and_then(|k| k.recognise.same_as.as_deref());
    let failure = match recognised {
        Some(got) if got != want && same_as != Some(got) => Some(CheckFailure::new(
            CheckKind::Kind,
            format!("a `{want}` message"),
            format!("got a `{got}` message"),
        )),
        Some(_) => None,
        None => {
            let how = entry.map(|k| k.recognise.describe()).unwrap_or_default();
            Some(CheckFailure::new(
                CheckKind::Kind,
                format!("a `{want}` message ({how})"),
                "the message is not recognised as any kind the peer may send",
            ))
        }
    };
    (Some(want.to_string()), failure)
}

/// The message against the schema of its kind, one failure per violation (at most
/// [`super::schema::MAX_VIOLATIONS`]), each located at its pointer.
pub fn schema(
    catalog: &Catalog,
    schemas: &SchemaCache,
    at: KindAt<'_>,
    body: &Body,
) -> Vec<CheckFailure> {
    match validate_message(catalog, schemas, at, body) {
        Ok(violations) => violations
            .into_iter()
            .map(|v| {
                let expected = format!("conforms to the `{}` schema ({})", at.kind, at.version);
                if v.schema_path.is_empty() {
                    return CheckFailure::new(
                        CheckKind::Schema,
                        format!("a JSON `{}` message", at.kind),
                        v.message,
                    );
                }
                let path = if v.instance_path.is_empty() {
                    "/".to_string()
                } else {
                    v.instance_path
                };
                CheckFailure::new(
                    CheckKind::Schema,
                    expected,
                    format!("{} (schema keyword at {})", v.message, v.schema_path),
                )
                .at(path)
            })
            .collect(),
        Err(e) => vec![CheckFailure::new(
            CheckKind::Scenario,
            format!("schema for `{}`", at.kind),
            e.to_string(),
        )],
    }
}

/// The exact plain payload `want`; `payload` is the frame's payload (a JSON body is
/// compared as the bytes that arrived).
pub fn text(body: &Body, payload: &[u8], want: &str) -> Option<CheckFailure> {
    let same = match body {
        Body::Text(t) => t == want,
        Body::Json(_) => payload == want.as_bytes(),
    };
    (!same).then(|| {
        let got = match body {
            Body::Text(t) => t
                .chars()
                .take(super::excerpt::MAX_BODY_CHARS)
                .collect::<String>(),
            Body::Json(_) => render_body(body),
        };
        CheckFailure::new(
            CheckKind::Match,
            format!("the text {want:?}"),
            format!("got {got:?}"),
        )
    })
}

/// A `match` spec (already expanded) against the message, one failure per entry that
/// does not hold, each located at its pointer.
pub fn matches(spec: &serde_json::Map<String, Value>, value: &Value) -> Vec<CheckFailure> {
    super::matcher::check_matches(spec, value)
        .into_iter()
        .map(|m| {
            CheckFailure::new(
                CheckKind::Match,
                format!("{} {}", m.pointer, m.expected),
                m.detail,
            )
            .at(m.pointer)
        })
        .collect()
}

/// The value at `pointer` to capture as `name`, or the failure saying it is missing.
pub fn capture(value: &Value, name: &str, pointer: &str) -> Result<Value, CheckFailure> {
    value.pointer(pointer).cloned().ok_or_else(|| {
        CheckFailure::new(
            CheckKind::Capture,
            format!("a value at {pointer} to capture as `{name}`"),
            "missing",
        )
        .at(pointer)
    })
}

/// What comparing with a stored snapshot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotCheck {
    Matched,
    /// `--update-snapshots` wrote the received message as the snapshot.
    Written(std::path::PathBuf),
    Failed(CheckFailure),
}

/// The message, volatile keys replaced and secrets redacted, against the snapshot
/// `name` stored at `path`; a difference writes `<path>.new` for review.
pub fn snapshot(
    name: &str,
    path: &Path,
    value: &Value,
    volatile: &[String],
    update: bool,
) -> SnapshotCheck {
    let redacted = super::redact_secrets(&redact_volatile(value, volatile));
    let fail = |expected: String, detail: String| {
        SnapshotCheck::Failed(CheckFailure::new(CheckKind::Snapshot, expected, detail))
    };
    match compare_snapshot(path, &redacted, update) {
        Ok(SnapshotOutcome::Matched) => SnapshotCheck::Matched,
        Ok(SnapshotOutcome::Updated(p)) => SnapshotCheck::Written(p),
        Ok(SnapshotOutcome::Missing { pending }) => fail(
            format!("snapshot `{name}`"),
            format!(
                "no stored snapshot {}; the received message was written to {} — review it and run with --update-snapshots to accept",
                path.display(),
                pending.display()
            ),
        ),
        Ok(SnapshotOutcome::Mismatch { diff, pending }) => fail(
            format!("snapshot `{name}` ({})", path.display()),
            format!("differs (stored -, received +; candidate in {}):\n{diff}", pending.display()),
        ),
        Err(e) => SnapshotCheck::Failed(CheckFailure::new(CheckKind::Scenario, format!("snapshot `{name}`"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog() -> Catalog {
        Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).expect("catalog")
    }

    #[test]
    fn trailing_bytes_are_a_frame_failure_and_none_is_fine() {
        assert!(trailing_bytes(b"").is_none());
        let f = trailing_bytes(b"\x00\x01").unwrap();
        assert_eq!(f.check, CheckKind::Frame);
        assert!(f.detail.starts_with("2 unexpected bytes"), "{}", f.detail);
    }

    #[test]
    fn frame_flags_are_checked_only_where_the_expectation_says() {
        assert!(frame_flags(0x03, FrameWant::default()).is_empty());
        let want = FrameWant {
            compressed: Some(true),
            large: Some(false),
            flags: None,
        };
        assert!(frame_flags(0x03, want).is_empty());
        let f = frame_flags(0x01, want);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].expected, "a compressed (0x02) frame");
        assert_eq!(f[0].detail, "got flags 0x01");
        assert_eq!(
            frame_flags(
                0x05,
                FrameWant {
                    flags: Some(0x01),
                    ..want
                }
            )
            .len(),
            3
        );
    }

    #[test]
    fn the_expected_kind_decides_and_same_as_kinds_match_their_twin() {
        let c = catalog();
        let fam = "server-proxy";
        // Nothing expected: the recognised kind is validated.
        assert_eq!(
            kind(&c, fam, "6.0", None, Some("failed.response")),
            (Some("failed.response".into()), None)
        );
        // The tasks ack has the same body as the data ack, which is what classify returns.
        let (k, f) = kind(
            &c,
            fam,
            "6.0",
            Some("passive.proxy-tasks.ack"),
            Some("passive.proxy-data.ack"),
        );
        assert_eq!(k.as_deref(), Some("passive.proxy-tasks.ack"));
        assert!(f.is_none(), "{f:?}");
        let (_, f) = kind(
            &c,
            fam,
            "6.0",
            Some("passive.proxy-data.response"),
            Some("failed.response"),
        );
        assert_eq!(f.unwrap().detail, "got a `failed.response` message");
        let (_, f) = kind(&c, fam, "6.0", Some("passive.proxy-data.response"), None);
        assert!(f.unwrap().detail.contains("not recognised"));
    }

    #[test]
    fn validation_borrows_json_checks_text_kinds_as_strings_and_names_unknown_kinds() {
        let c = catalog();
        let s = SchemaCache::new();
        let at = KindAt {
            family: "server-proxy",
            version: "6.0",
            kind: "failed.response",
        };
        assert!(validate_message(
            &c,
            &s,
            at,
            &Body::Json(json!({"response": "failed", "info": "x"}))
        )
        .unwrap()
        .is_empty());
        assert!(
            !validate_message(&c, &s, at, &Body::Json(json!({"response": 1})))
                .unwrap()
                .is_empty()
        );
        let text = validate_message(&c, &s, at, &Body::Text("not json".into())).unwrap();
        assert_eq!(text[0].message, "the payload is not valid JSON");
        let value = KindAt {
            family: "agent",
            version: "6.0",
            kind: "passive.check.value",
        };
        assert!(validate_message(&c, &s, value, &Body::Text("1".into()))
            .unwrap()
            .is_empty());
        let unknown = KindAt {
            kind: "no.such.kind",
            ..at
        };
        assert!(matches!(
            validate_message(&c, &s, unknown, &Body::Json(json!({}))),
            Err(KindError::Unknown { .. })
        ));
        // As failures: located at the pointer.
        let f = schema(&c, &s, at, &Body::Json(json!({"response": 1})));
        assert!(
            f.iter()
                .all(|x| x.check == CheckKind::Schema && x.path.is_some()),
            "{f:?}"
        );
    }

    #[test]
    fn text_matches_and_captures_report_where_they_fail() {
        assert!(text(&Body::Text("1".into()), b"1", "1").is_none());
        assert!(text(&Body::Text("0".into()), b"0", "1")
            .unwrap()
            .detail
            .contains("\"0\""));
        let v = json!({"response": "failed", "n": 2});
        let spec = json!({"response": "success", "/n": {"$gt": 1}});
        let f = matches(spec.as_object().unwrap(), &v);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path.as_deref(), Some("/response"));
        assert_eq!(capture(&v, "n", "/n").unwrap(), json!(2));
        assert_eq!(
            capture(&v, "x", "/x").unwrap_err().check,
            CheckKind::Capture
        );
    }

    #[test]
    fn a_snapshot_is_written_for_review_and_compared_without_volatile_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let v = json!({"clock": 1, "tls_psk": "0123456789abcdef", "response": "success"});
        let volatile = vec!["clock".to_string()];
        assert!(matches!(
            snapshot("s", &path, &v, &volatile, false),
            SnapshotCheck::Failed(_)
        ));
        let pending = std::fs::read_to_string(dir.path().join("s.json.new")).unwrap();
        assert!(!pending.contains("0123456789abcdef"), "{pending}");
        assert!(matches!(
            snapshot("s", &path, &v, &volatile, true),
            SnapshotCheck::Written(_)
        ));
        let later = json!({"clock": 2, "tls_psk": "0123456789abcdef", "response": "success"});
        assert_eq!(
            snapshot("s", &path, &later, &volatile, false),
            SnapshotCheck::Matched
        );
    }
}

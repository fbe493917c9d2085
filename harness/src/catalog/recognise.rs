//! Recognisers: declarative predicates that say whether a message body is of a kind.

use super::Body;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A predicate over a message body. All given conditions must hold.
///
/// ```yaml
/// recognise:
///   equals: { /request: proxy data }   # JSON pointer -> exact value
///   present: [/session]                # pointers that must exist
///   absent: [/host]                    # pointers that must not exist
/// ```
/// For text bodies, `text` is a regular expression the whole body must match.
///
/// Some kinds cannot be told apart by their body at all (the server's bare
/// `{"response":"success"}` acknowledges several different requests). Such a kind says
/// `same_as: <other kind>`: it is never recognised on its own (classification returns the
/// other kind), and a scenario that expects it must name it explicitly.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Recognise {
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub equals: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub present: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The kind this one cannot be distinguished from by its body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_as: Option<String>,
}

impl Recognise {
    /// Whether `body` is recognised.
    pub fn accepts(&self, body: &Body) -> bool {
        if self.same_as.is_some() {
            return false;
        }
        match body {
            Body::Json(v) => {
                self.text.is_none()
                    && self
                        .equals
                        .iter()
                        .all(|(p, want)| v.pointer(p) == Some(want))
                    && self.present.iter().all(|p| v.pointer(p).is_some())
                    && self.absent.iter().all(|p| v.pointer(p).is_none())
            }
            Body::Text(t) => match &self.text {
                Some(re) => regex::Regex::new(&format!("^(?s:{re})$"))
                    .map(|r| r.is_match(t))
                    .unwrap_or(false),
                None => false,
            },
        }
    }

    /// One-line description for `zbx-conform catalog`.
    pub fn describe(&self) -> String {
        if let Some(other) = &self.same_as {
            return format!("by context only (same body as {other})");
        }
        let mut parts = Vec::new();
        for (p, v) in &self.equals {
            parts.push(format!("{p}={v}"));
        }
        for p in &self.present {
            parts.push(format!("has {p}"));
        }
        for p in &self.absent {
            parts.push(format!("no {p}"));
        }
        if let Some(t) = &self.text {
            parts.push(format!("text ~ /{t}/"));
        }
        if parts.is_empty() {
            "anything".to_string()
        } else {
            parts.join(", ")
        }
    }
}

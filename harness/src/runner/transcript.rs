//! The conversation log of one scenario run. Bodies are redacted of secrets and
//! truncated here, once, so no reporter can leak what the runner saw.

use super::result::{Direction, TranscriptEntry};
use crate::catalog::Body;
use std::time::Instant;

/// Longest body kept in a transcript entry or a failure message.
pub const MAX_BODY_CHARS: usize = 4000;

/// Records entries with their time offset from the start of the scenario.
#[derive(Debug)]
pub struct Transcript {
    start: Instant,
    entries: Vec<TranscriptEntry>,
}

impl Default for Transcript {
    fn default() -> Self {
        Transcript::new()
    }
}

impl Transcript {
    pub fn new() -> Self {
        Transcript {
            start: Instant::now(),
            entries: Vec::new(),
        }
    }

    pub fn sent(&mut self, kind: Option<&str>, flags: Option<u8>, body: String) {
        self.push(Direction::Sent, kind, flags, body);
    }

    pub fn received(&mut self, kind: Option<&str>, flags: Option<u8>, body: String) {
        self.push(Direction::Received, kind, flags, body);
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.push(Direction::Note, None, None, text.into());
    }

    fn push(&mut self, direction: Direction, kind: Option<&str>, flags: Option<u8>, body: String) {
        self.entries.push(TranscriptEntry {
            at: self.start.elapsed(),
            direction,
            kind: kind.map(str::to_string),
            flags,
            body,
        });
    }

    pub fn into_entries(self) -> Vec<TranscriptEntry> {
        self.entries
    }
}

/// Render a body for reports: JSON compacted with secrets redacted, text with control
/// characters escaped (a passive-check `ZBX_NOTSUPPORTED\0...` shows as `\0`), both
/// truncated to [`MAX_BODY_CHARS`]. Built from a bounded excerpt: rendering a gigabyte
/// message costs what rendering its first few thousand values costs. A cut JSON object
/// names its top-level members with content (`; members: a, b`), so the coverage matrix
/// still sees the sections behind a long `history data`.
pub fn render_body(body: &Body) -> String {
    match body {
        Body::Json(v) => {
            let shown = crate::check::excerpt::show_parts(v, MAX_BODY_CHARS);
            if !shown.cut {
                return shown.text;
            }
            let members: Vec<&str> = v
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(_, x)| !is_empty_value(x))
                        .map(|(k, _)| k.as_str())
                        .collect()
                })
                .unwrap_or_default();
            let text = shown.text;
            if members.is_empty() || !text.contains(" … (truncated, ") {
                return if members.is_empty() {
                    text
                } else {
                    format!(
                        "{text} … (truncated, an excerpt; members: {})",
                        members.join(", ")
                    )
                };
            }
            // "… (truncated, N bytes in all)" → "… (truncated, N bytes in all; members: …)"
            let open = text.trim_end_matches(')');
            format!("{open}; members: {})", members.join(", "))
        }
        Body::Text(t) => {
            // At most 4 output chars per input char, so this much input is enough.
            let head = match t.char_indices().nth(MAX_BODY_CHARS + 1) {
                Some((at, _)) => &t[..at],
                None => t.as_str(),
            };
            let mut shown = truncate(escape_text(head));
            if head.len() < t.len() && !shown.contains("(truncated") {
                shown.push_str(&format!(" … (truncated, {} bytes in all)", t.len()));
            }
            shown
        }
    }
}

/// An empty array, object or string, or null: a member that carries nothing.
fn is_empty_value(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(o) => o.is_empty(),
        serde_json::Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Render raw bytes that are not a frame (malformed sends, garbage received).
pub fn render_bytes(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(64).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 64 {
        format!(" … ({} bytes)", bytes.len())
    } else {
        String::new()
    };
    format!("hex {}{more}", shown.join(" "))
}

fn escape_text(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn truncate(mut s: String) -> String {
    if s.chars().count() > MAX_BODY_CHARS {
        let cut: String = s.chars().take(MAX_BODY_CHARS).collect();
        let total = s.len();
        s = format!("{cut} … (truncated, {total} bytes in all)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cut_json_body_names_its_members_and_hides_no_secret() {
        let rows: Vec<_> = (0..2000).map(|i| json!({"id": i, "value": "x"})).collect();
        let body = Body::Json(json!({
            "session": "s", "history data": rows, "discovery data": [], "more": 1,
            "tasks": [{"type": 2, "password": "pw-SECRET"}], "proxy_delay": 3
        }));
        let text = render_body(&body);
        assert!(
            text.chars().count() < MAX_BODY_CHARS + 200,
            "{}",
            text.len()
        );
        assert!(
            text.ends_with("; members: session, history data, more, tasks, proxy_delay)"),
            "{}",
            &text[text.len() - 120..]
        );
        assert!(!text.contains("pw-SECRET"));
        let short = render_body(&Body::Json(json!({"more": 1})));
        assert_eq!(short, r#"{"more":1}"#);
    }
}

//! Bounded views of received messages for reports and failure texts.
//!
//! A peer may send a gigabyte of JSON (a 65 KB zlib frame inflates to a 64 MiB array
//! of a million nodes). Parsing it is unavoidable; copying it again to redact secrets,
//! or serializing all of it to show the first 200 characters, doubles or triples the
//! memory a check needs. Everything shown is therefore built from an *excerpt*: a copy
//! of at most a few thousand nodes of the message, with long strings cut, which is then
//! redacted and serialized. Cost: proportional to the excerpt, not to the message.

use crate::message::Body;
use serde_json::{Map, Value};

/// Nodes (values of any type) an excerpt copies before it stops.
pub const MAX_NODES: usize = 4096;
/// Characters of one string an excerpt keeps.
pub const MAX_STRING_CHARS: usize = 2048;

/// A copy of at most `max_nodes` nodes of `v`, depth first, in document order. Arrays
/// and objects cut short end with a string element/member saying how much was left out;
/// strings longer than [`MAX_STRING_CHARS`] are cut with a note. Object keys are kept
/// as they are, so secret redaction (which works by key and table column) still applies
/// to what is kept.
pub fn excerpt(v: &Value, max_nodes: usize) -> Value {
    Copy::new(max_nodes).copy(v)
}

/// A bounded copy in progress: the nodes it may still copy, and whether anything was
/// left out so far.
struct Copy {
    left: usize,
    cut: bool,
}

impl Copy {
    fn new(max_nodes: usize) -> Copy {
        Copy {
            left: max_nodes.max(1),
            cut: false,
        }
    }

    fn copy(&mut self, v: &Value) -> Value {
        self.left = self.left.saturating_sub(1);
        match v {
            Value::String(s) => Value::String(self.cut_string(s)),
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if self.left == 0 {
                        self.cut = true;
                        out.push(Value::String(format!(
                            "… ({} more elements)",
                            items.len() - i
                        )));
                        break;
                    }
                    out.push(self.copy(item));
                }
                Value::Array(out)
            }
            Value::Object(m) => {
                let mut out = Map::new();
                for (i, (k, item)) in m.iter().enumerate() {
                    if self.left == 0 {
                        self.cut = true;
                        out.insert(
                            "…".to_string(),
                            Value::String(format!("{} more members", m.len() - i)),
                        );
                        break;
                    }
                    out.insert(k.clone(), self.copy(item));
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }

    fn cut_string(&mut self, s: &str) -> String {
        match s.char_indices().nth(MAX_STRING_CHARS) {
            None => s.to_string(),
            Some((at, _)) => {
                self.cut = true;
                format!("{}… ({} bytes in all)", &s[..at], s.len())
            }
        }
    }
}

/// What [`show_parts`] renders: the text, and whether part of the value was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub text: String,
    pub cut: bool,
}

/// Compact JSON text of `v`, secrets redacted, at most `max_chars` characters (plus a
/// note of how it was cut), built from an excerpt: never a full copy of `v`.
pub fn show(v: &Value, max_chars: usize) -> String {
    show_parts(v, max_chars).text
}

/// [`show`], also saying whether anything was left out (nodes, long strings, or
/// characters past `max_chars`; the text then says so too).
pub fn show_parts(v: &Value, max_chars: usize) -> Shown {
    // A long string on its own: its head, and how long it really was.
    if let Value::String(s) = v {
        if let Some((at, _)) = s.char_indices().nth(max_chars) {
            let head = Value::String(s[..at].to_string());
            return Shown {
                text: format!("{head} … (truncated, {} bytes in all)", s.len()),
                cut: true,
            };
        }
    }
    let mut copy = Copy::new(MAX_NODES.min(max_chars.max(16)));
    let mut small = copy.copy(v);
    super::redact::redact_in_place(&mut small);
    let text = small.to_string();
    let chars_cut = text.char_indices().nth(max_chars).is_some();
    Shown {
        text: truncate_chars(text, max_chars),
        cut: copy.cut || chars_cut,
    }
}

/// `text` cut to `max_chars` characters, with a note of the length it had.
pub fn truncate_chars(text: String, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text,
        Some((at, _)) => format!("{} … (truncated, {} bytes in all)", &text[..at], text.len()),
    }
}

/// Number of nodes in `v`, counting no further than `limit` (for "is this small
/// enough to copy" without walking a huge message to the end).
pub fn nodes_up_to(v: &Value, limit: usize) -> usize {
    let mut seen = 0usize;
    let mut stack = vec![v];
    while let Some(x) = stack.pop() {
        seen += 1;
        if seen >= limit {
            return limit;
        }
        match x {
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(m) => stack.extend(m.values()),
            _ => {}
        }
    }
    seen
}

/// Longest body kept in a transcript entry or a failure message.
pub const MAX_BODY_CHARS: usize = 4000;

/// Render a body for reports: JSON compacted with secrets redacted, text with control
/// characters escaped (a passive-check `ZBX_NOTSUPPORTED\0...` shows as `\0`), both
/// truncated to [`MAX_BODY_CHARS`]. Built from a bounded excerpt: rendering a gigabyte
/// message costs what rendering its first few thousand values costs. A cut JSON object
/// names its top-level members with content (`; members: a, b`), so the coverage matrix
/// still sees the sections behind a long `history data`.
pub fn render_body(body: &Body) -> String {
    match body {
        Body::Json(v) => {
            let shown = show_parts(v, MAX_BODY_CHARS);
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
    fn an_excerpt_of_a_huge_array_is_small_and_says_what_was_left_out() {
        let big = Value::Array(vec![json!(0); 1_000_000]);
        let e = excerpt(&big, 100);
        let items = e.as_array().unwrap();
        assert_eq!(items.len(), 100);
        assert_eq!(items[99], json!("… (999901 more elements)"));
        let text = show(&big, 200);
        assert!(text.chars().count() < 260, "{text}");
        assert!(text.starts_with("[0,0,0"), "{text}");
    }

    #[test]
    fn small_values_are_copied_whole() {
        let v = json!({"a": [1, 2, {"b": "c"}], "d": null});
        assert_eq!(excerpt(&v, MAX_NODES), v);
        assert_eq!(show(&v, 1000), v.to_string());
    }

    #[test]
    fn long_strings_are_cut_and_secrets_are_redacted_in_what_is_kept() {
        let v = json!({"tls_psk": "0123456789abcdef0123456789abcdef", "s": "x".repeat(10_000)});
        let text = show(&v, 100_000);
        assert!(!text.contains("0123456789abcdef"), "{text}");
        assert!(text.contains("(10000 bytes in all)"), "{text}");
    }

    #[test]
    fn objects_cut_short_say_how_many_members_were_left_out() {
        let mut m = Map::new();
        for i in 0..50 {
            m.insert(format!("k{i}"), json!(i));
        }
        let e = excerpt(&Value::Object(m), 10);
        assert_eq!(e["…"], json!("41 more members"));
    }

    #[test]
    fn node_counting_stops_at_the_limit() {
        let big = Value::Array(vec![json!([1, 2]); 1000]);
        assert_eq!(nodes_up_to(&big, 50), 50);
        assert_eq!(nodes_up_to(&json!([1, [2, 3]]), 50), 5);
    }

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

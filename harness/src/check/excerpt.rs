//! Bounded views of received messages for reports and failure texts.
//!
//! A peer may send a gigabyte of JSON (a 65 KB zlib frame inflates to a 64 MiB array
//! of a million nodes). Parsing it is unavoidable; copying it again to redact secrets,
//! or serializing all of it to show the first 200 characters, doubles or triples the
//! memory a check needs. Everything shown is therefore built from an *excerpt*: a copy
//! of at most a few thousand nodes of the message, with long strings cut, which is then
//! redacted and serialized. Cost: proportional to the excerpt, not to the message.

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
}

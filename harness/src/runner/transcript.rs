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
/// message costs what rendering its first few thousand values costs.
pub fn render_body(body: &Body) -> String {
    match body {
        Body::Json(v) => crate::check::excerpt::show(v, MAX_BODY_CHARS),
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

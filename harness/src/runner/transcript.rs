//! The conversation log of one scenario run. Bodies are redacted of secrets and
//! truncated here, once, so no reporter can leak what the runner saw.

use super::result::{Direction, TranscriptEntry};
use std::time::Instant;

pub use crate::check::excerpt::{render_body, render_bytes, MAX_BODY_CHARS};

/// Records entries with their time offset from the start of the scenario.
#[derive(Debug)]
pub struct Transcript {
    start: Instant,
    entries: Vec<TranscriptEntry>,
    /// The step being run, stamped on every entry (see [`TranscriptEntry::step`]).
    step: Option<String>,
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
            step: None,
        }
    }

    /// Set the step whose entries follow (`None` once it is over).
    pub fn set_step(&mut self, index: Option<&str>) {
        self.step = index.map(str::to_string);
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
            step: self.step.clone(),
        });
    }

    pub fn into_entries(self) -> Vec<TranscriptEntry> {
        self.entries
    }
}

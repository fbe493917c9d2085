//! Terminal report: one line per scenario as results come in, then a failure summary.
//!
//! The plain functions (`scenario_line`, `summary`) never emit escape codes, so their
//! output is safe for logs and pipes; the `_styled` variants add ANSI colour when the
//! caller knows it writes to a terminal.

use crate::check::redact::redact_text;
use crate::runner::result::{CheckFailure, Outcome, RunResult, ScenarioResult, StepResult};
use std::fmt::Write as _;
use std::time::Duration;

/// How much of a received message the summary shows.
pub const RECEIVED_LIMIT: usize = 1500;

/// Output styling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    #[default]
    Plain,
    /// ANSI colours for the status words and headings.
    Color,
}

/// One line for a finished scenario (printed as results come in).
pub fn scenario_line(r: &ScenarioResult) -> String {
    scenario_line_styled(r, Style::Plain)
}

/// The failure details and the summary printed at the end.
pub fn summary(run: &RunResult) -> String {
    summary_styled(run, Style::Plain)
}

/// `PASS    name [6.0]  (12ms)  scenarios/x.yaml`, with the reason for ERROR, UNREACH
/// and SKIP appended after ` — `.
pub fn scenario_line_styled(r: &ScenarioResult, style: Style) -> String {
    let mut line = format!(
        "{} {}  ({})  {}",
        paint(
            style,
            status_color(&r.outcome),
            &format!("{:<7}", status_word(&r.outcome))
        ),
        r.test_name(),
        fmt_duration(r.duration),
        r.file.display()
    );
    if let Some(reason) = reason(&r.outcome) {
        let _ = write!(line, " — {}", one_line(reason));
    }
    line
}

/// `--verbose`: below a scenario's line, one line per step (its outcome, name and time)
/// and one per message of the conversation (time, direction, kind, frame flags).
pub fn step_lines(r: &ScenarioResult) -> Vec<String> {
    let mut out = Vec::new();
    for st in &r.steps {
        let name = st
            .name
            .as_deref()
            .map_or(String::new(), |n| format!(" \"{n}\""));
        let mut line = format!(
            "    {:<4} step {} {}{name}  ({})  line {}",
            status_word(&st.outcome),
            st.index,
            st.action,
            fmt_duration(st.duration),
            st.line
        );
        if let Some(why) = reason(&st.outcome) {
            let _ = write!(line, " — {}", one_line(why));
        }
        out.push(line);
    }
    for e in &r.transcript {
        let arrow = match e.direction {
            crate::runner::result::Direction::Sent => "→",
            crate::runner::result::Direction::Received => "←",
            crate::runner::result::Direction::Note => "·",
        };
        let what = match (&e.kind, e.direction) {
            (Some(k), _) => k.clone(),
            (None, crate::runner::result::Direction::Note) => one_line(&e.body),
            (None, _) => "(unrecognised)".to_string(),
        };
        let flags = e
            .flags
            .map_or(String::new(), |f| format!("  flags 0x{f:02x}"));
        out.push(format!(
            "      {:>8} {arrow} {what}{flags}",
            fmt_duration(e.at)
        ));
    }
    out
}

/// Details of every non-passing scenario, then the counts line:
/// `N passed, N failed[, N errors][, N unreachable][, N skipped] in 1.23s`.
pub fn summary_styled(run: &RunResult, style: Style) -> String {
    summary_with(run, style, "")
}

/// As [`summary_styled`], with `extra` (e.g. the coverage matrix) printed between the
/// failure details and the counts line, which stays last for scripts that read it.
pub fn summary_with(run: &RunResult, style: Style, extra: &str) -> String {
    let mut out = String::new();
    // By file and version, whatever order the scenarios finished in.
    let sorted = crate::report::ordered::sorted(&run.scenarios);
    for s in sorted.into_iter().filter(|s| !s.outcome.is_pass()) {
        scenario_block(&mut out, s, style);
        out.push('\n');
    }
    if !extra.is_empty() {
        out.push_str(extra);
        if !extra.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
    }
    if let Some(line) = memory_line(run) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&counts_line(run));
    out
}

/// A line when the run's memory budget refused messages (they failed their steps).
pub fn memory_line(run: &RunResult) -> Option<String> {
    let m = run.memory.filter(|m| m.refused > 0)?;
    Some(format!(
        "memory budget: {} message(s) refused (the largest wanted {} bytes); at most {} of {} bytes were held; raise it with --memory-budget",
        m.refused, m.largest_refused, m.peak, m.limit
    ))
}

/// The final counts line (no colour, so scripts can grep it).
pub fn counts_line(run: &RunResult) -> String {
    let passed = run.count(|o| matches!(o, Outcome::Passed));
    let failed = run.count(|o| matches!(o, Outcome::Failed));
    let errors = run.count(|o| matches!(o, Outcome::Error(_)));
    let unreachable = run.count(|o| matches!(o, Outcome::Unreachable(_)));
    let skipped = run.count(|o| matches!(o, Outcome::Skipped(_)));
    let mut line = format!("{passed} passed, {failed} failed");
    for (n, word) in [
        (errors, "errors"),
        (unreachable, "unreachable"),
        (skipped, "skipped"),
    ] {
        if n > 0 {
            let _ = write!(line, ", {n} {word}");
        }
    }
    let _ = write!(line, " in {}", fmt_duration(run.duration));
    line
}

fn scenario_block(out: &mut String, s: &ScenarioResult, style: Style) {
    let _ = writeln!(
        out,
        "{} {}  ({})",
        paint(style, status_color(&s.outcome), status_word(&s.outcome)),
        paint(style, BOLD, &s.test_name()),
        s.file.display()
    );
    let _ = writeln!(out, "  peer: {}", s.peer);
    if let Some(reason) = reason(&s.outcome) {
        let _ = writeln!(out, "  reason: {}", redact_text(reason));
    }
    for step in &s.steps {
        if step.failures.is_empty() && step.outcome.is_pass() {
            continue;
        }
        let _ = writeln!(out, "  {}", step_heading(step, s));
        if let Some(reason) = reason(&step.outcome) {
            let _ = writeln!(out, "    reason: {}", redact_text(reason));
        }
        if let Some(sent) = &step.sent {
            let _ = writeln!(
                out,
                "    in reply to: {}",
                truncate(&redact_text(sent), RECEIVED_LIMIT)
            );
        }
        for f in &step.failures {
            failure_block(out, f, style);
        }
    }
}

/// `step 3 (exchange "push config") at scenarios/x.yaml:14`.
pub fn step_heading(step: &StepResult, s: &ScenarioResult) -> String {
    let what = match &step.name {
        Some(n) => format!("{} {n:?}", step.action),
        None => step.action.clone(),
    };
    format!(
        "step {} ({what}) at {}:{}",
        step.index,
        s.file.display(),
        step.line
    )
}

fn failure_block(out: &mut String, f: &CheckFailure, style: Style) {
    let _ = writeln!(
        out,
        "    {}: expected {}",
        paint(style, RED, f.check.as_str()),
        redact_text(&f.expected)
    );
    if !f.detail.is_empty() {
        // The detail already reads as a finding (`got "failed"`, `missing`, a schema
        // message), so it is printed without a label.
        for line in redact_text(&f.detail).lines() {
            let _ = writeln!(out, "      {line}");
        }
    }
    if let Some(p) = &f.path {
        let _ = writeln!(out, "      at: {p}");
    }
    if let Some(r) = &f.received {
        let _ = writeln!(
            out,
            "      received: {}",
            truncate(&redact_text(r), RECEIVED_LIMIT)
        );
    }
}

/// Cut `s` to at most `limit` characters, saying how much was left out.
pub fn truncate(s: &str, limit: usize) -> String {
    match s.char_indices().nth(limit) {
        None => s.to_string(),
        Some((cut, _)) => format!("{}… ({} more bytes)", &s[..cut], s.len() - cut),
    }
}

fn status_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Passed => "PASS",
        Outcome::Failed => "FAIL",
        Outcome::Error(_) => "ERROR",
        Outcome::Unreachable(_) => "UNREACH",
        Outcome::Skipped(_) => "SKIP",
    }
}

fn reason(o: &Outcome) -> Option<&str> {
    match o {
        Outcome::Error(r) | Outcome::Unreachable(r) | Outcome::Skipped(r) => Some(r),
        Outcome::Passed | Outcome::Failed => None,
    }
}

fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// `850ms`, `1.23s`, `2m05s`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        let secs = d.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const MAGENTA: &str = "\x1b[35m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

fn status_color(o: &Outcome) -> &'static str {
    match o {
        Outcome::Passed => GREEN,
        Outcome::Failed => RED,
        Outcome::Error(_) => MAGENTA,
        Outcome::Unreachable(_) => YELLOW,
        Outcome::Skipped(_) => DIM,
    }
}

fn paint(style: Style, color: &str, text: &str) -> String {
    match style {
        Style::Plain => text.to_string(),
        Style::Color => format!("{color}{text}{RESET}"),
    }
}

//! HTML report (`--html FILE`): one self-contained page a person opens after a run, to
//! see what was said on the wire and where it went wrong.
//!
//! The JUnit and JSON reports are for machines; a reviewer wants the conversation. Each
//! test case is drawn as a sequence diagram: the harness (in the role it plays) on the
//! left, the peer on the right, one arrow per message with its time offset, kind and
//! frame flags; each message opens (`<details>`) to its JSON body. A step's failures
//! (schema errors, match diffs) are shown on the message of that step they concern, so
//! nobody has to match step numbers against a transcript by hand.
//!
//! The file needs nothing else: CSS is inline, there is no script (`<details>` opens
//! without one), no font or image is fetched, so it can be kept as a CI artifact and
//! opened offline. All text is escaped, and every text that may carry peer data goes
//! through `redact_text` once more, as in the other reports: a secret the runner
//! missed does not reach the page.

use crate::check::redact::redact_text;
use crate::report::matrix::{Coverage, FamilyMatrix};
use crate::report::terminal::{fmt_duration, step_heading};
use crate::runner::result::{
    CheckFailure, Direction, Outcome, RunResult, ScenarioResult, StepResult, TranscriptEntry,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Most characters of a started peer's log shown (its end: where a peer says why it
/// stopped); the JUnit report keeps the whole log.
const PEER_LOG_TAIL: usize = 64 * 1024;

/// Write the report for `run` to `path` (parent directories are created). `matrices`
/// is the coverage matrix of the run (see [`crate::report::matrix::for_run`]).
pub fn write(run: &RunResult, matrices: &[FamilyMatrix], path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, render(run, matrices))
}

/// The whole page as text.
pub fn render(run: &RunResult, matrices: &[FamilyMatrix]) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let counts = Counts::of(run);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        out,
        "<title>zbx-conform report: {}</title>",
        esc(&counts.line())
    );
    let _ = writeln!(out, "<style>{CSS}</style>\n</head>\n<body>");
    summary(&mut out, run, &counts);
    // What failed first; the coverage matrix, long and the same from run to run, last.
    tests_index(&mut out, run);
    out.push_str("<section id=\"tests\">\n<h2>Test cases</h2>\n");
    for (n, s) in run.scenarios.iter().enumerate() {
        test_case(&mut out, n, s);
    }
    out.push_str("</section>\n");
    coverage(&mut out, matrices);
    let _ = writeln!(
        out,
        "<footer>zbx-conform {} · bodies are redacted of secrets and cut at 4000 characters</footer>",
        esc(env!("CARGO_PKG_VERSION"))
    );
    out.push_str("</body>\n</html>\n");
    out
}

/// Scenario outcomes by kind, for the summary and the title.
struct Counts {
    passed: usize,
    failed: usize,
    errors: usize,
    unreachable: usize,
    skipped: usize,
}

impl Counts {
    fn of(run: &RunResult) -> Self {
        Counts {
            passed: run.count(|o| matches!(o, Outcome::Passed)),
            failed: run.count(|o| matches!(o, Outcome::Failed)),
            errors: run.count(|o| matches!(o, Outcome::Error(_))),
            unreachable: run.count(|o| matches!(o, Outcome::Unreachable(_))),
            skipped: run.count(|o| matches!(o, Outcome::Skipped(_))),
        }
    }

    fn line(&self) -> String {
        format!(
            "{} passed, {} failed, {} errors, {} unreachable, {} skipped",
            self.passed, self.failed, self.errors, self.unreachable, self.skipped
        )
    }
}

fn summary(out: &mut String, run: &RunResult, c: &Counts) {
    let verdict = match run.exit_code() {
        0 => ("pass", "PASS"),
        1 => ("fail", "FAIL"),
        3 => ("unreachable", "UNREACHABLE"),
        _ => ("error", "ERROR"),
    };
    let _ = writeln!(
        out,
        "<header>\n<h1><span class=\"verdict {}\">{}</span> zbx-conform report</h1>",
        verdict.0, verdict.1
    );
    out.push_str("<div class=\"counts\" id=\"summary\">\n");
    for (n, word, class) in [
        (c.passed, "passed", "passed"),
        (c.failed, "failed", "failed"),
        (c.errors, "errors", "error"),
        (c.unreachable, "unreachable", "unreachable"),
        (c.skipped, "skipped", "skipped"),
    ] {
        let _ = writeln!(
            out,
            "<div class=\"count {class}\"><b>{n}</b> <span>{word}</span></div>"
        );
    }
    out.push_str("</div>\n<dl class=\"meta\">\n");
    let mut meta = vec![
        ("test cases", run.scenarios.len().to_string()),
        ("wall time", fmt_duration(run.duration)),
    ];
    if let Some(t) = run.started_at {
        meta.push(("started at", crate::report::timestamp::iso8601_utc(t)));
    }
    meta.push(("host", crate::report::junit::hostname()));
    if let Some(m) = crate::report::terminal::memory_line(run) {
        meta.push(("memory", m));
    }
    for (k, v) in meta {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v));
    }
    out.push_str("</dl>\n<nav><a href=\"#index\">results</a> · <a href=\"#tests\">test cases</a> · <a href=\"#coverage\">coverage</a></nav>\n</header>\n");
}

/// The CSS class and the legend of a coverage cell.
fn coverage_class(c: Coverage) -> (&'static str, &'static str) {
    match c {
        Coverage::Real => ("cov-real", "exchanged with a real peer"),
        Coverage::Reference => (
            "cov-ref",
            "exchanged only with the built-in reference peers",
        ),
        Coverage::Fixture => (
            "cov-fixture",
            "not exchanged (its stored fixture is checked)",
        ),
        Coverage::SchemaOnly => (
            "cov-schema",
            "not exchanged, no stored fixture (schema only)",
        ),
        Coverage::Absent => ("cov-absent", "not in that version"),
    }
}

/// The coverage matrix (message kinds × versions) as tables, one per family.
fn coverage(out: &mut String, matrices: &[FamilyMatrix]) {
    if matrices.is_empty() {
        return;
    }
    out.push_str("<section id=\"coverage\">\n<h2>Coverage</h2>\n<ul class=\"legend\">\n");
    for c in [
        Coverage::Real,
        Coverage::Reference,
        Coverage::Fixture,
        Coverage::SchemaOnly,
        Coverage::Absent,
    ] {
        let (class, meaning) = coverage_class(c);
        let _ = writeln!(
            out,
            "<li><span class=\"cell {class}\">{}</span> {}</li>",
            esc(c.cell()),
            esc(meaning)
        );
    }
    out.push_str(
        "<li><span class=\"cell\">?</span> the catalog marks that version's schema rules unverified</li>\n</ul>\n",
    );
    for m in matrices {
        let _ = write!(
            out,
            "<table class=\"matrix\">\n<caption>{}</caption>\n<thead><tr><th>kind</th>",
            esc(&m.family)
        );
        for v in &m.versions {
            let _ = write!(out, "<th>{}</th>", esc(v));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for r in &m.rows {
            match &r.section {
                Some(s) => {
                    let _ = write!(out, "<tr class=\"section\"><th>› {}</th>", esc(s));
                }
                None => {
                    let _ = write!(out, "<tr><th>{}</th>", esc(&r.kind));
                }
            }
            for (i, c) in r.cells.iter().enumerate() {
                let (class, meaning) = coverage_class(*c);
                let unverified = r.unverified.get(i).copied().unwrap_or(false);
                let _ = write!(
                    out,
                    "<td class=\"cell {class}\" title=\"{}{}\">{}{}</td>",
                    esc(meaning),
                    if unverified { "; unverified" } else { "" },
                    esc(c.cell()),
                    if unverified { "?" } else { "" }
                );
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n");
}

/// `passed`, `failed`, ... : the CSS class and the word of an outcome.
fn outcome_word(o: &Outcome) -> (&'static str, &'static str) {
    match o {
        Outcome::Passed => ("passed", "PASS"),
        Outcome::Failed => ("failed", "FAIL"),
        Outcome::Error(_) => ("error", "ERROR"),
        Outcome::Unreachable(_) => ("unreachable", "UNREACHABLE"),
        Outcome::Skipped(_) => ("skipped", "SKIP"),
    }
}

fn reason(o: &Outcome) -> Option<&str> {
    match o {
        Outcome::Error(r) | Outcome::Unreachable(r) | Outcome::Skipped(r) => Some(r),
        Outcome::Passed | Outcome::Failed => None,
    }
}

/// One line per test case with a link to its diagram.
fn tests_index(out: &mut String, run: &RunResult) {
    if run.scenarios.is_empty() {
        return;
    }
    out.push_str(
        "<section id=\"index\">\n<h2>Results</h2>\n<table class=\"index\">\n<thead><tr><th>outcome</th><th>test</th><th>version</th><th>plays</th><th>peer</th><th>time</th></tr></thead>\n<tbody>\n",
    );
    for (n, s) in run.scenarios.iter().enumerate() {
        let (class, word) = outcome_word(&s.outcome);
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td><span class=\"badge {class}\">{word}</span></td><td><a href=\"#t{n}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.name),
            esc(&s.version),
            esc(&s.plays),
            esc(&s.peer),
            esc(&fmt_duration(s.duration))
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// One test case: what it was, its failed steps, and the conversation.
fn test_case(out: &mut String, n: usize, s: &ScenarioResult) {
    let (class, word) = outcome_word(&s.outcome);
    // Failing cases are open: they are what the reader came for.
    let open = if s.outcome.is_pass() { "" } else { " open" };
    let _ = writeln!(
        out,
        "<section class=\"test {class}\" id=\"t{n}\">\n<details{open}>\n<summary><span class=\"badge {class}\">{word}</span> <span class=\"name\">{}</span> <span class=\"version\">[{}]</span></summary>",
        esc(&s.name),
        esc(&s.version)
    );
    out.push_str("<dl class=\"meta\">\n");
    let mut meta: Vec<(String, String)> = vec![
        ("file".into(), s.file.display().to_string()),
        ("family".into(), s.family.clone()),
        ("harness plays".into(), s.plays.clone()),
        ("peer".into(), s.peer.clone()),
        ("duration".into(), fmt_duration(s.duration)),
    ];
    if !s.tags.is_empty() {
        meta.push(("tags".into(), s.tags.join(", ")));
    }
    meta.extend(
        s.properties
            .iter()
            .map(|(k, v)| (k.clone(), redact_text(v))),
    );
    for (k, v) in &meta {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    out.push_str("</dl>\n");
    if let Some(r) = reason(&s.outcome) {
        let _ = writeln!(out, "<p class=\"reason\">{}</p>", esc(&redact_text(r)));
    }
    let anchors = failure_anchors(s);
    failed_steps(out, n, s, &anchors);
    diagram(out, n, s, &anchors);
    if let Some(log) = &s.peer_log {
        let _ = writeln!(
            out,
            "<details class=\"peer-log\"><summary>peer log</summary><pre>{}</pre></details>",
            esc(&tail(&redact_text(log), PEER_LOG_TAIL))
        );
    }
    out.push_str("</details>\n</section>\n");
}

/// The end of `s`, at most `max` characters, saying how much was left out.
fn tail(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        return s.to_string();
    }
    let start = s
        .char_indices()
        .nth(count - max)
        .map_or(s.len(), |(i, _)| i);
    format!("[{} characters left out]\n{}", count - max, &s[start..])
}

/// Which transcript entry each failed step's failures are shown on: the last message
/// received in that step (what the checks looked at), else the last one sent (what
/// went unanswered), else the step's last note (a timeout, a refused connection).
/// Steps without any entry are absent: their failures are shown after the diagram.
fn failure_anchors(s: &ScenarioResult) -> BTreeMap<String, usize> {
    let mut anchors = BTreeMap::new();
    for step in s.steps.iter().filter(|st| !st.failures.is_empty()) {
        let in_step = |e: &&TranscriptEntry| e.step.as_deref() == Some(step.index.as_str());
        let last = |dir: Direction| {
            s.transcript
                .iter()
                .enumerate()
                .rev()
                .find(|(_, e)| in_step(e) && e.direction == dir)
                .map(|(i, _)| i)
        };
        let at = last(Direction::Received)
            .or_else(|| last(Direction::Sent))
            .or_else(|| last(Direction::Note));
        if let Some(i) = at {
            anchors.insert(step.index.clone(), i);
        }
    }
    anchors
}

/// The steps that did not pass, each linked to the message its failures are shown on.
fn failed_steps(out: &mut String, n: usize, s: &ScenarioResult, anchors: &BTreeMap<String, usize>) {
    let bad: Vec<&StepResult> = s
        .steps
        .iter()
        .filter(|st| !st.failures.is_empty() || !st.outcome.is_pass())
        .collect();
    if bad.is_empty() {
        return;
    }
    out.push_str("<ul class=\"steps\">\n");
    for st in bad {
        let (class, word) = outcome_word(&st.outcome);
        let link = match anchors.get(&st.index) {
            Some(i) => format!(" <a href=\"#t{n}-m{i}\">shown on message {}</a>", i + 1),
            None => String::new(),
        };
        let checks: Vec<&str> = st.failures.iter().map(|f| f.check.as_str()).collect();
        let _ = write!(
            out,
            "<li class=\"{class}\"><span class=\"badge {class}\">{word}</span> {}",
            esc(&step_heading(st, s))
        );
        if !checks.is_empty() {
            let _ = write!(out, ": {}", esc(&checks.join(", ")));
        }
        if let Some(r) = reason(&st.outcome) {
            let _ = write!(out, " — {}", esc(&redact_text(r)));
        }
        let _ = writeln!(out, "{link}</li>");
    }
    out.push_str("</ul>\n");
}

/// The conversation as a sequence diagram: the harness's lifeline on the left, the
/// peer's on the right, an arrow per message, notes across both lifelines.
fn diagram(out: &mut String, n: usize, s: &ScenarioResult, anchors: &BTreeMap<String, usize>) {
    if s.transcript.is_empty() {
        out.push_str("<p class=\"empty\">No conversation recorded.</p>\n");
    } else {
        let _ = writeln!(
            out,
            "<div class=\"seq\">\n<div class=\"heads\"><div class=\"head\">harness<small>plays {}</small></div><div class=\"head\">peer<small>{}</small></div></div>",
            esc(&s.plays),
            esc(&s.peer)
        );
        // Failures by the entry they are shown on.
        let mut on_entry: BTreeMap<usize, Vec<(&StepResult, &CheckFailure)>> = BTreeMap::new();
        for (step, f) in s.failures() {
            if let Some(i) = anchors.get(&step.index) {
                on_entry.entry(*i).or_default().push((step, f));
            }
        }
        for (i, e) in s.transcript.iter().enumerate() {
            entry(
                out,
                n,
                i,
                e,
                on_entry.get(&i).map(Vec::as_slice).unwrap_or(&[]),
            );
        }
        out.push_str("</div>\n");
    }
    // Failures of steps that left no entry (e.g. a step that could not start).
    let loose: Vec<(&StepResult, &CheckFailure)> = s
        .failures()
        .filter(|(st, _)| !anchors.contains_key(&st.index))
        .collect();
    if !loose.is_empty() {
        out.push_str("<div class=\"failures loose\">\n");
        for (st, f) in loose {
            failure(out, st, f);
        }
        out.push_str("</div>\n");
    }
}

/// One transcript entry: an arrow (a message) or a note, with the failures shown on it.
fn entry(
    out: &mut String,
    n: usize,
    i: usize,
    e: &TranscriptEntry,
    failures: &[(&StepResult, &CheckFailure)],
) {
    let id = format!("t{n}-m{i}");
    let at = format!("+{:.3} s", e.at.as_secs_f64());
    let step = e
        .step
        .as_deref()
        .map(|s| format!("<span class=\"stepno\">step {}</span>", esc(s)))
        .unwrap_or_default();
    let fail = if failures.is_empty() { "" } else { " fail" };
    if e.direction == Direction::Note {
        let _ = writeln!(
            out,
            "<div class=\"note{fail}\" id=\"{id}\"><span class=\"at\">{at}</span> {}{step}</div>",
            esc(&redact_text(&e.body))
        );
        if !failures.is_empty() {
            failure_list(out, failures);
        }
        return;
    }
    let dir = if e.direction == Direction::Sent {
        "sent"
    } else {
        "received"
    };
    // Without a kind, the JSON `request` the message names says what it is.
    let request = serde_json::from_str::<serde_json::Value>(&e.body)
        .ok()
        .and_then(|v| {
            v.get("request")?
                .as_str()
                .map(|r| format!("\"{r}\" request"))
        });
    let kind = match (e.kind.as_deref(), dir, request.as_deref()) {
        (Some(k), _, _) => k,
        (None, _, Some(r)) => r,
        (None, "sent", None) => "(no declared kind)",
        (None, _, None) => "(unrecognised)",
    };
    let flags = e
        .flags
        .map(|f| {
            format!(
                "<span class=\"flags\" title=\"frame flags 0x{f:02x}\">{}</span>",
                esc(&flag_text(f))
            )
        })
        .unwrap_or_default();
    // One mark per failed check kind (a schema error often comes with several).
    let mut checks: Vec<&str> = Vec::new();
    for (_, f) in failures {
        if !checks.contains(&f.check.as_str()) {
            checks.push(f.check.as_str());
        }
    }
    let marks: String = checks
        .iter()
        .map(|c| format!("<span class=\"mark\">✗ {}</span>", esc(c)))
        .collect();
    // A failing message is open: its body is what the failure is about.
    let open = if failures.is_empty() { "" } else { " open" };
    let _ = writeln!(
        out,
        "<div class=\"msg {dir}{fail}\" id=\"{id}\">\n<details{open}><summary><span class=\"label\"><span class=\"at\">{at}</span> <span class=\"kind\">{}</span> {flags}{step}{marks}</span><span class=\"shaft\"></span></summary>\n<pre class=\"body\">{}</pre>\n</details>",
        esc(kind),
        esc(&pretty(&e.body))
    );
    if !failures.is_empty() {
        failure_list(out, failures);
    }
    out.push_str("</div>\n");
}

fn failure_list(out: &mut String, failures: &[(&StepResult, &CheckFailure)]) {
    out.push_str("<div class=\"failures\">\n");
    for (st, f) in failures {
        failure(out, st, f);
    }
    out.push_str("</div>\n");
}

/// One failed check: what was expected, what was found, where.
fn failure(out: &mut String, st: &StepResult, f: &CheckFailure) {
    let _ = write!(
        out,
        "<div class=\"failure\"><div><span class=\"check\">{}</span> step {}: expected {}</div>",
        esc(f.check.as_str()),
        esc(&st.index),
        esc(&redact_text(&f.expected))
    );
    if !f.detail.is_empty() {
        let _ = write!(
            out,
            "<pre class=\"detail\">{}</pre>",
            esc(&redact_text(&f.detail))
        );
    }
    if let Some(p) = &f.path {
        let _ = write!(out, "<div class=\"path\">at {}</div>", esc(p));
    }
    out.push_str("</div>\n");
}

/// `ZBXD|compressed 0x03`: the named bits of a ZBXD header's flags byte (0x01 the
/// protocol bit, 0x02 compressed, 0x04 large lengths), unknown ones as hex.
pub fn flag_text(f: u8) -> String {
    let mut names: Vec<String> = Vec::new();
    for bit in 0..8u8 {
        let b = 1u8 << bit;
        if f & b == 0 {
            continue;
        }
        names.push(match b {
            0x01 => "ZBXD".to_string(),
            0x02 => "compressed".to_string(),
            0x04 => "large".to_string(),
            other => format!("0x{other:02x}"),
        });
    }
    if names.is_empty() {
        return format!("flags 0x{f:02x}");
    }
    format!("{} 0x{f:02x}", names.join("|"))
}

/// A body for reading: redacted again, pretty-printed when it parses as JSON.
fn pretty(body: &str) -> String {
    let red = redact_text(body);
    match serde_json::from_str::<serde_json::Value>(&red) {
        Ok(v) if v.is_object() || v.is_array() => serde_json::to_string_pretty(&v).unwrap_or(red),
        _ => red,
    }
}

/// Text for HTML element content and attribute values: markup characters as entities,
/// control characters (a `ZBX_NOTSUPPORTED\0reason` body holds a NUL) as their visible
/// Control Pictures, so nothing the peer sent can end an element or an attribute.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            '\r' => out.push('␍'),
            c if (c as u32) < 0x20 => {
                out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'))
            }
            '\u{7f}' => out.push('␡'),
            c if ('\u{80}'..='\u{9f}').contains(&c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The page's style: system fonts only (nothing is fetched), lifelines drawn as the
/// diagram's background, arrows as bordered boxes with a CSS triangle for the head.
const CSS: &str = r#"
:root{--ok:#1b7f3b;--bad:#c62828;--err:#8e24aa;--warn:#b26a00;--dim:#6b7280;--line:#94a3b8;--lane:5.5rem}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1rem 1.5rem;color:#1f2937;background:#fff}
h1{font-size:1.5rem;margin:.2rem 0 .8rem}h2{font-size:1.2rem;border-bottom:1px solid #e5e7eb;padding-bottom:.2rem;margin-top:1.6rem}
pre,code,.kind,.flags,.at{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace}
a{color:#1d4ed8}
.verdict{display:inline-block;padding:.1rem .6rem;border-radius:.3rem;color:#fff;font-size:1.1rem;vertical-align:middle}
.verdict.pass{background:var(--ok)}.verdict.fail{background:var(--bad)}.verdict.error{background:var(--err)}.verdict.unreachable{background:var(--warn)}
.counts{display:flex;gap:.6rem;flex-wrap:wrap;margin-bottom:.6rem}
.count{border:1px solid #e5e7eb;border-left-width:6px;border-radius:.3rem;padding:.3rem .8rem;min-width:7rem}
.count b{font-size:1.4rem;display:block}
.count.passed{border-left-color:var(--ok)}.count.failed{border-left-color:var(--bad)}.count.error{border-left-color:var(--err)}.count.unreachable{border-left-color:var(--warn)}.count.skipped{border-left-color:var(--dim)}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.4rem 0}
dl.meta dt{color:var(--dim)}dl.meta dd{margin:0;overflow-wrap:anywhere}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;font-size:.9em}
table{border-collapse:collapse;margin:.6rem 0}
th,td{border:1px solid #e5e7eb;padding:.15rem .5rem;text-align:left}
thead th{background:#f3f4f6}
table.matrix caption{text-align:left;font-weight:600;padding:.2rem 0}
table.matrix tbody th{font-weight:normal;font-family:ui-monospace,"DejaVu Sans Mono",monospace}
tr.section th{padding-left:1.5rem;color:var(--dim)}
.cell{text-align:center;font-size:.85em;padding:.05rem .4rem;border-radius:.2rem}
.cov-real{background:#bbf7d0;font-weight:600}.cov-ref{background:#dbeafe}.cov-fixture{background:#fef9c3}.cov-schema{background:#fde2e2}.cov-absent{color:var(--dim)}
table.index td{vertical-align:top}
.badge{display:inline-block;min-width:3.5rem;text-align:center;font-size:.75rem;font-weight:700;border-radius:.25rem;padding:0 .3rem;color:#fff;background:var(--dim)}
.badge.passed{background:var(--ok)}.badge.failed{background:var(--bad)}.badge.error{background:var(--err)}.badge.unreachable{background:var(--warn)}
section.test{border:1px solid #e5e7eb;border-radius:.4rem;margin:.6rem 0;padding:.3rem .8rem}
section.test.failed{border-color:#f5b5b5}section.test.error{border-color:#dcb5e6}
section.test>details>summary{cursor:pointer;font-size:1.05rem;padding:.2rem 0}
.version{color:var(--dim)}
.reason{color:var(--err);white-space:pre-wrap}
ul.steps{padding-left:1.2rem}
.seq{position:relative;margin:.8rem 0;padding-bottom:.8rem;background:linear-gradient(var(--line),var(--line)) no-repeat calc(var(--lane) - 1px) 0/2px 100%,linear-gradient(var(--line),var(--line)) no-repeat calc(100% - var(--lane) - 1px) 0/2px 100%}
.heads{display:flex;justify-content:space-between;margin-bottom:.4rem}
.head{width:calc(2*var(--lane));text-align:center;background:#f1f5f9;border:1px solid var(--line);border-radius:.3rem;padding:.2rem;font-weight:600;position:relative}
.head small{display:block;font-weight:normal;color:var(--dim);font-size:.75rem;overflow-wrap:anywhere}
.msg{margin:.15rem var(--lane)}
.msg>details>summary{list-style:none;cursor:pointer;padding:.1rem .4rem 0}
.msg>details>summary::-webkit-details-marker{display:none}
.label{display:block;font-size:.85rem;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.msg.received .label{text-align:right}
.kind{font-weight:600}
.kind::before{content:"▸ ";color:var(--dim)}details[open]>summary .kind::before{content:"▾ "}
.at{color:var(--dim);font-size:.8rem}
.flags{font-size:.75rem;background:#eef2ff;border-radius:.2rem;padding:0 .25rem;margin-left:.3rem}
.stepno{font-size:.75rem;color:var(--dim);margin-left:.4rem}
.shaft{display:block;position:relative;border-top:2px solid #334155;margin:.15rem 0 .25rem}
.msg.sent .shaft{margin-right:2px}.msg.received .shaft{margin-left:2px}
.msg.sent .shaft::after,.msg.received .shaft::after{content:"";position:absolute;top:-7px;border:6px solid transparent}
.msg.sent .shaft::after{right:-4px;border-right:0;border-left:11px solid #334155}
.msg.received .shaft::after{left:-4px;border-left:0;border-right:11px solid #334155}
.msg.fail .shaft{border-top-color:var(--bad)}
.msg.sent.fail .shaft::after{border-left-color:var(--bad)}.msg.received.fail .shaft::after{border-right-color:var(--bad)}
.msg.fail .kind{color:var(--bad)}
.mark{font-size:.75rem;color:#fff;background:var(--bad);border-radius:.2rem;padding:0 .3rem;margin-left:.4rem}
pre.body{margin:.2rem 0 .5rem;background:#f8fafc;border:1px solid #e2e8f0;border-radius:.3rem;padding:.4rem .6rem;max-height:16rem;overflow:auto;font-size:.8rem;white-space:pre-wrap;word-break:break-all}
.note{margin:.3rem calc(var(--lane) - 2.5rem);background:#fffbeb;border:1px dashed #d6b656;border-radius:.25rem;padding:.1rem .5rem;font-size:.8rem;position:relative;overflow-wrap:anywhere}
.note.fail{border-color:var(--bad);background:#fef2f2}
.failures{margin:.2rem 0 .6rem}
.failures.loose{margin:.6rem 0}
.failure{border-left:4px solid var(--bad);background:#fef2f2;padding:.3rem .6rem;margin:.2rem 0;font-size:.85rem}
.check{font-weight:700;color:var(--bad)}
pre.detail{margin:.2rem 0;white-space:pre-wrap;word-break:break-all;font-size:.8rem}
.path{color:var(--dim);font-family:ui-monospace,monospace;font-size:.8rem}
.peer-log pre{max-height:20rem;overflow:auto;background:#f8fafc;font-size:.75rem}
.empty{color:var(--dim)}
nav{margin:.4rem 0;font-size:.9em}
footer{margin-top:2rem;color:var(--dim);font-size:.8rem}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::result::CheckKind;
    use std::time::Duration;

    fn entry(direction: Direction, step: Option<&str>, body: &str) -> TranscriptEntry {
        TranscriptEntry {
            at: Duration::from_millis(5),
            direction,
            kind: Some("k".into()),
            flags: Some(1),
            body: body.into(),
            step: step.map(str::to_string),
        }
    }

    fn step(index: &str, failures: Vec<CheckFailure>) -> StepResult {
        StepResult {
            index: index.into(),
            action: "exchange".into(),
            name: None,
            requirement: vec![],
            line: 3,
            outcome: if failures.is_empty() {
                Outcome::Passed
            } else {
                Outcome::Failed
            },
            failures,
            sent: None,
            duration: Duration::ZERO,
        }
    }

    fn scenario(transcript: Vec<TranscriptEntry>, steps: Vec<StepResult>) -> ScenarioResult {
        ScenarioResult {
            name: "s".into(),
            file: "x.yaml".into(),
            family: "server-proxy".into(),
            version: "7.0".into(),
            plays: "server".into(),
            tags: vec![],
            peer: "reference:p".into(),
            outcome: Outcome::Failed,
            steps,
            transcript,
            peer_log: None,
            properties: Default::default(),
            started: Duration::ZERO,
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn escaping_leaves_no_markup_and_no_control_characters() {
        let e = esc("<b a=\"1\" c='2'>&\0\r\x1b\u{85}</b>\n");
        assert_eq!(
            e,
            "&lt;b a=&quot;1&quot; c=&#39;2&#39;&gt;&amp;␀␍␛\u{fffd}&lt;/b&gt;\n"
        );
    }

    #[test]
    fn flags_are_named() {
        assert_eq!(flag_text(0x01), "ZBXD 0x01");
        assert_eq!(flag_text(0x03), "ZBXD|compressed 0x03");
        assert_eq!(flag_text(0x05), "ZBXD|large 0x05");
        assert_eq!(flag_text(0x09), "ZBXD|0x08 0x09");
        assert_eq!(flag_text(0), "flags 0x00");
    }

    #[test]
    fn a_failure_goes_on_the_last_received_message_of_its_step_else_the_last_sent() {
        let f = || vec![CheckFailure::new(CheckKind::Schema, "x", "y")];
        let s = scenario(
            vec![
                entry(Direction::Note, Some("1"), "step 1"),
                entry(Direction::Sent, Some("1"), "{}"),
                entry(Direction::Received, Some("1"), "{}"),
                entry(Direction::Received, Some("1"), "{}"),
                entry(Direction::Sent, Some("2"), "{}"),
                entry(Direction::Note, Some("2"), "timed out"),
                entry(Direction::Note, Some("3"), "connect refused"),
                entry(Direction::Note, None, "peer stopped"),
            ],
            vec![
                step("1", f()),
                step("2", f()),
                step("3", f()),
                step("4", f()),
            ],
        );
        let a = failure_anchors(&s);
        assert_eq!(a.get("1"), Some(&3));
        assert_eq!(a.get("2"), Some(&4));
        assert_eq!(a.get("3"), Some(&6));
        assert_eq!(a.get("4"), None, "no entry of step 4");
        let html = render(
            &RunResult {
                scenarios: vec![s],
                started_at: None,
                duration: Duration::ZERO,
                memory: None,
            },
            &[],
        );
        assert!(html.contains("<div class=\"msg received fail\" id=\"t0-m3\">"));
        assert!(html.contains("<div class=\"msg sent fail\" id=\"t0-m4\">"));
        assert!(html.contains("<div class=\"note fail\" id=\"t0-m6\">"));
        assert!(
            html.contains("<div class=\"failures loose\">"),
            "step 4's failure still shown"
        );
    }

    #[test]
    fn long_logs_keep_their_end() {
        let t = tail("abcdef", 2);
        assert!(t.ends_with("\nef") && t.contains("4 characters left out"));
        assert_eq!(tail("ab", 2), "ab");
    }
}

//! JUnit XML report, shaped for how CI systems display it (GitLab, Jenkins):
//! - one `<testsuite>` per scenario family, one `<testcase>` per scenario × version with a
//!   unique name (`name [version]`) and `classname` = `family.plays`;
//! - a failure's *body* carries the full details (GitLab shows the body, not the message);
//! - `<error>` for scenario errors, `<error type="unreachable">` for unreachable peers,
//!   `<skipped>` for skipped scenarios;
//! - the transcript in `<system-out>`, the peer's log in `<system-err>`.
//!
//! All text goes through `xml_safe` (XML 1.0 forbids most control characters, and a
//! Zabbix `ZBX_NOTSUPPORTED\0reason` body carries a NUL) and through `redact_text`, so a
//! secret that slipped past the runner still does not reach the file.

use crate::check::redact::redact_text;
use crate::report::terminal::{fmt_duration, step_heading};
use crate::runner::result::{Direction, Outcome, RunResult, ScenarioResult, TranscriptEntry};
use junit_report::{Duration as JDuration, ReportBuilder, TestCase, TestCaseBuilder, TestSuite};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Write the report for `run` to `path` (parent directories are created).
pub fn write(run: &RunResult, path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::File::create(path)?;
    let mut sink = std::io::BufWriter::new(file);
    write_to(run, &mut sink)?;
    std::io::Write::flush(&mut sink)
}

/// Write the report to any sink (used by `write` and by tests).
pub fn write_to<W: std::io::Write>(run: &RunResult, sink: W) -> std::io::Result<()> {
    let mut suites: Vec<TestSuite> = Vec::new();
    // Properties of each test case, in the order the writer emits the cases.
    let mut properties: Vec<Vec<&BTreeMap<String, String>>> = Vec::new();
    for s in &run.scenarios {
        let family = xml_safe(&s.family);
        let idx = match suites.iter().position(|t| t.name == family) {
            Some(i) => i,
            None => {
                suites.push(TestSuite::new(&family));
                properties.push(Vec::new());
                suites.len() - 1
            }
        };
        suites[idx].add_testcase(testcase(s));
        properties[idx].push(&s.properties);
    }
    let report = ReportBuilder::new().add_testsuites(suites).build();
    let mut xml = Vec::new();
    report.write_xml(&mut xml).map_err(std::io::Error::other)?;
    let xml = String::from_utf8(xml).map_err(std::io::Error::other)?;
    let properties: Vec<_> = properties.into_iter().flatten().collect();
    let mut sink = sink;
    sink.write_all(with_properties(&xml, &properties).as_bytes())
}

/// Add `<properties>` to each `<testcase>` (the writer has no API for them): the i-th
/// test case element gets `props[i]`. Text inside CDATA sections (transcripts may hold
/// anything, `<testcase` included) is never touched.
fn with_properties(xml: &str, props: &[&BTreeMap<String, String>]) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    let mut case = 0;
    loop {
        let next_cdata = rest.find("<![CDATA[");
        let next_case = rest.find("<testcase ");
        match (next_cdata, next_case) {
            (Some(c), Some(t)) if c < t => {
                let end = rest[c..].find("]]>").map_or(rest.len(), |e| c + e + 3);
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            }
            (_, Some(t)) => {
                // Attribute values are escaped by the writer: the first `>` ends the tag.
                let Some(close) = rest[t..].find('>').map(|e| t + e) else {
                    break;
                };
                let self_closing = rest[..close].ends_with('/');
                let block = props
                    .get(case)
                    .map(|p| properties_xml(p))
                    .unwrap_or_default();
                case += 1;
                if block.is_empty() {
                    out.push_str(&rest[..=close]);
                } else if self_closing {
                    out.push_str(&rest[..close - 1]);
                    out.push('>');
                    out.push_str(&block);
                    out.push_str("</testcase>");
                } else {
                    out.push_str(&rest[..=close]);
                    out.push_str(&block);
                }
                rest = &rest[close + 1..];
            }
            (_, None) => break,
        }
    }
    out.push_str(rest);
    out
}

/// `<properties><property name=".." value=".."/>…</properties>`, or nothing.
fn properties_xml(props: &BTreeMap<String, String>) -> String {
    if props.is_empty() {
        return String::new();
    }
    let mut out = String::from("<properties>");
    for (k, v) in props {
        let _ = write!(
            out,
            "<property name=\"{}\" value=\"{}\"/>",
            attr_escape(&xml_safe(k)),
            attr_escape(&clean(v))
        );
    }
    out.push_str("</properties>");
    out
}

fn attr_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn testcase(s: &ScenarioResult) -> TestCase {
    let name = xml_safe(&s.test_name());
    let time = JDuration::nanoseconds(i64::try_from(s.duration.as_nanos()).unwrap_or(i64::MAX));
    let mut b = match &s.outcome {
        Outcome::Passed => TestCaseBuilder::success(&name, time),
        Outcome::Failed => {
            let kind = s
                .failures()
                .next()
                .map_or("failed", |(_, f)| f.check.as_str());
            let mut b = TestCaseBuilder::failure(&name, time, kind, &clean(&failure_message(s)));
            b.set_trace(&clean_body(&details(s)));
            b
        }
        Outcome::Error(reason) => {
            let mut b = TestCaseBuilder::error(&name, time, "error", &clean(&first_line(reason)));
            b.set_trace(&clean_body(&details(s)));
            b
        }
        Outcome::Unreachable(reason) => {
            let mut b =
                TestCaseBuilder::error(&name, time, "unreachable", &clean(&first_line(reason)));
            b.set_trace(&clean_body(&details(s)));
            b
        }
        Outcome::Skipped(reason) => {
            let mut b = TestCaseBuilder::skipped_with_cause(&name, "skipped", &clean(reason));
            // skipped_with_cause has no time; keep the attribute meaningful anyway.
            b.testcase.time = time;
            b
        }
    };
    b.set_classname(&xml_safe(&format!("{}.{}", s.family, s.plays)));
    b.set_filepath(&xml_safe(&s.file.display().to_string()));
    if !s.transcript.is_empty() {
        b.set_system_out(&clean_body(&transcript_text(&s.transcript)));
    }
    if let Some(log) = &s.peer_log {
        b.set_system_err(&clean_body(log));
    }
    b.build()
}

/// One line for the `message` attribute: the first failure, and how many more there are.
fn failure_message(s: &ScenarioResult) -> String {
    let all: Vec<_> = s.failures().collect();
    let Some((step, f)) = all.first() else {
        return "failed".into();
    };
    let mut msg = format!(
        "step {}: {}: expected {}",
        step.index,
        f.check.as_str(),
        f.expected
    );
    if !f.detail.is_empty() {
        let _ = write!(msg, ", {}", f.detail);
    }
    let mut msg = first_line(&msg);
    if msg.chars().count() > 300 {
        msg = msg.chars().take(300).collect::<String>() + "…";
    }
    if all.len() > 1 {
        let _ = write!(msg, " (+{} more)", all.len() - 1);
    }
    msg
}

/// The failure body: the scenario, then every failing step with all its checks.
pub fn details(s: &ScenarioResult) -> String {
    let mut out = format!(
        "{}\nfile: {}\npeer: {}\n",
        s.test_name(),
        s.file.display(),
        s.peer
    );
    match &s.outcome {
        Outcome::Error(r) | Outcome::Unreachable(r) | Outcome::Skipped(r) => {
            let _ = writeln!(out, "reason: {r}");
        }
        Outcome::Passed | Outcome::Failed => {}
    }
    for step in &s.steps {
        if step.failures.is_empty() && step.outcome.is_pass() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{} ({})",
            step_heading(step, s),
            fmt_duration(step.duration)
        );
        if let Outcome::Error(r) | Outcome::Unreachable(r) = &step.outcome {
            let _ = writeln!(out, "  reason: {r}");
        }
        if let Some(sent) = &step.sent {
            let _ = writeln!(out, "  in reply to: {}", redact_text(sent));
        }
        for f in &step.failures {
            let _ = writeln!(out, "  {}: expected {}", f.check.as_str(), f.expected);
            if !f.detail.is_empty() {
                let _ = writeln!(out, "    {}", f.detail);
            }
            if let Some(p) = &f.path {
                let _ = writeln!(out, "    at: {p}");
            }
            if let Some(r) = &f.received {
                // Redacted on its own: a whole JSON body parses, so table columns are found.
                let _ = writeln!(out, "    received: {}", redact_text(r));
            }
        }
    }
    out
}

/// `+0.123s >> kind [flags 0x03] body`, one line per entry.
pub fn transcript_text(entries: &[TranscriptEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        let arrow = match e.direction {
            Direction::Sent => ">>",
            Direction::Received => "<<",
            Direction::Note => "--",
        };
        let _ = write!(out, "+{:.3}s {arrow}", e.at.as_secs_f64());
        if let Some(k) = &e.kind {
            let _ = write!(out, " {k}");
        }
        if let Some(f) = e.flags {
            let _ = write!(out, " [flags 0x{f:02x}]");
        }
        // One line per entry: a body with newlines would break the layout.
        // Redact before escaping newlines, while a JSON body still parses.
        let body = redact_text(&e.body)
            .replace('\r', "\\r")
            .replace('\n', "\\n");
        let _ = writeln!(out, " {body}");
    }
    out
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// Redact, then make XML-safe (for attributes).
fn clean(s: &str) -> String {
    xml_safe(&redact_text(s))
}

/// Redact, then make safe for a CDATA body (trace, system-out, system-err).
fn clean_body(s: &str) -> String {
    cdata_safe(&redact_text(s))
}

/// Make text safe for a CDATA section (junit-report writes bodies as one CDATA section
/// without escaping): `xml_safe`, and `]]>` split across two sections so it cannot end
/// the section early. A parser reads the original text back.
pub fn cdata_safe(s: &str) -> String {
    xml_safe(s).replace("]]>", "]]]]><![CDATA[>")
}

/// Make text safe for XML 1.0 (attributes are escaped by the writer; this handles what
/// escaping cannot): control characters other than `\n` and `\t` (and the non-characters
/// U+FFFE/U+FFFF) become visible escapes like `\x00`.
pub fn xml_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

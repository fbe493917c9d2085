//! JUnit XML report, shaped for how CI systems track tests (GitLab, Jenkins) and valid
//! against the JUnit schema Jenkins' xUnit plugin publishes (`junit-10.xsd`). The
//! `junit-report` crate writes the document; one pass adds what it has no API for
//! (a suite's `skipped`, wall `time` and `<properties>`):
//! - one `<testsuite>` per scenario family with `tests`, `failures`, `errors`, `skipped`,
//!   `time` (the suite's wall time: scenarios overlap when run concurrently, so the sum
//!   of their times would overstate it), `timestamp` (ISO 8601, UTC) and `hostname`;
//! - one `<testcase>` per scenario × version, named `name [version]` (a plugin
//!   requirement: `id [version]`): a stable name, since CI tools keep a test's history
//!   by name; `classname` = `family.plays`;
//! - facts about the tests (peer address, peer version, protocol version, file,
//!   description, requirement) as the suite's `<properties>`: the schema allows
//!   properties only there. A fact every case of the suite shares is one property
//!   (`peer.version`); one that differs is named per case (`passive/x [6.0]: file`);
//! - a failure's *body* carries the full details (GitLab shows the body, not the message);
//! - `<error>` for scenario errors, `<error type="unreachable">` for unreachable peers,
//!   `<skipped>` for skipped scenarios;
//! - the transcript in `<system-out>`, the peer's log in `<system-err>`; two cases with
//!   the same name are warned about in the suite's `<system-err>` (see
//!   [`duplicate_names`]).
//!
//! All text goes through `xml_safe` (XML 1.0 forbids most control characters, and a
//! Zabbix `ZBX_NOTSUPPORTED\0reason` body carries a NUL) and through `redact_text`, so a
//! secret that slipped past the runner still does not reach the file.

use crate::check::redact::redact_text;
use crate::report::terminal::{fmt_duration, step_heading};
use crate::runner::result::{Direction, Outcome, RunResult, ScenarioResult, TranscriptEntry};
use junit_report::{
    Duration as JDuration, OffsetDateTime, ReportBuilder, TestCase, TestCaseBuilder, TestSuite,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

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
pub fn write_to<W: std::io::Write>(run: &RunResult, mut sink: W) -> std::io::Result<()> {
    sink.write_all(to_xml(run).as_bytes())
}

/// Test cases of a run that share one name and classname: CI tools would merge them
/// or keep only one. Typically two files that give their scenarios the same `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub classname: String,
    pub name: String,
    /// The scenario file of each case, in run order.
    pub files: Vec<String>,
}

impl std::fmt::Display for Duplicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "warning: {} test cases are named \"{}\" (classname {}): CI tools will merge \
             or drop them; give the scenarios different names ({})",
            self.files.len(),
            self.name,
            self.classname,
            self.files.join(", ")
        )
    }
}

/// Every name more than one case of `run` carries (see [`Duplicate`]).
pub fn duplicate_names(run: &RunResult) -> Vec<Duplicate> {
    let mut seen: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for s in &run.scenarios {
        seen.entry((classname(s), s.test_name()))
            .or_default()
            .push(s.file.display().to_string());
    }
    seen.into_iter()
        .filter(|(_, files)| files.len() > 1)
        .map(|((classname, name), files)| Duplicate {
            classname,
            name,
            files,
        })
        .collect()
}

/// The whole document: `junit-report` writes it (suites, cases, verdicts, outputs), and
/// one pass over its text adds what the crate has no API for (see [`complete_suites`]).
fn to_xml(run: &RunResult) -> String {
    let mut families: Vec<(&str, Vec<&ScenarioResult>)> = Vec::new();
    for s in &run.scenarios {
        match families.iter_mut().find(|(f, _)| *f == s.family) {
            Some((_, cases)) => cases.push(s),
            None => families.push((&s.family, vec![s])),
        }
    }
    let warnings = duplicate_names(run);
    let started_at = run.started_at.unwrap_or_else(SystemTime::now);
    let host = hostname();
    let mut suites = Vec::new();
    let mut extras = Vec::new();
    for (family, cases) in &families {
        let suite = Suite {
            name: family,
            cases,
            started_at,
        };
        suites.push(suite.build(&host, &warnings));
        extras.push(SuiteExtras {
            skipped: cases
                .iter()
                .filter(|s| matches!(s.outcome, Outcome::Skipped(_)))
                .count(),
            time: suite.wall_time(),
            properties: suite.properties(),
        });
    }
    let report = ReportBuilder::new().add_testsuites(suites).build();
    let mut xml = Vec::new();
    if let Err(e) = report.write_xml(&mut xml) {
        // Writing into memory fails only on a bug; say so in the file rather than panic.
        return format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- {} -->\n<testsuites/>\n",
            attr(&e.to_string())
        );
    }
    complete_suites(&String::from_utf8_lossy(&xml), &extras)
}

/// `t` to the second, in UTC (`2024-05-01T12:34:56Z`; reports need no more). A clock
/// before 1970 shows as the epoch rather than failing the report.
fn whole_seconds(t: SystemTime) -> OffsetDateTime {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(0))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// One `<testsuite>`: the cases of one family.
struct Suite<'a> {
    name: &'a str,
    cases: &'a [&'a ScenarioResult],
    /// When the run began; the suite's timestamp is its first case's start after that.
    started_at: SystemTime,
}

/// What `junit-report` 0.9 cannot write on a `<testsuite>`: the `skipped` count, `time`
/// as wall time (it sums the cases' times, which overstates concurrent runs), and
/// `<properties>`.
struct SuiteExtras {
    skipped: usize,
    time: Duration,
    properties: BTreeMap<String, String>,
}

impl Suite<'_> {
    fn build(&self, host: &str, warnings: &[Duplicate]) -> TestSuite {
        let mut suite = TestSuite::new(&xml_safe(self.name));
        suite.hostname = xml_safe(host);
        let first = self
            .cases
            .iter()
            .map(|s| s.started)
            .min()
            .unwrap_or_default();
        suite.set_timestamp(whole_seconds(self.started_at + first));
        suite.add_testcases(self.cases.iter().map(|s| testcase(s)));
        let mine: Vec<String> = warnings
            .iter()
            .filter(|d| {
                self.cases
                    .iter()
                    .any(|s| classname(s) == d.classname && s.test_name() == d.name)
            })
            .map(Duplicate::to_string)
            .collect();
        if !mine.is_empty() {
            suite.set_system_err(&cdata_safe(&mine.join("\n")));
        }
        suite
    }

    /// From the first case's start to the last case's end.
    fn wall_time(&self) -> Duration {
        let first = self.cases.iter().map(|s| s.started).min();
        let last = self.cases.iter().map(|s| s.started + s.duration).max();
        match (first, last) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => Duration::ZERO,
        }
    }

    /// The facts of every case: one property for a fact all cases share, one per case
    /// (prefixed with the test name) for a fact that differs.
    fn properties(&self) -> BTreeMap<String, String> {
        let facts: Vec<BTreeMap<String, String>> = self.cases.iter().map(|s| facts(s)).collect();
        let keys: std::collections::BTreeSet<&String> =
            facts.iter().flat_map(|f| f.keys()).collect();
        let mut out = BTreeMap::new();
        for key in keys {
            let values: Vec<Option<&String>> = facts.iter().map(|f| f.get(key)).collect();
            let shared = values
                .first()
                .copied()
                .flatten()
                .filter(|v| values.iter().all(|x| *x == Some(*v)));
            match shared {
                Some(v) => {
                    out.insert(key.clone(), clean(v));
                }
                None => {
                    for (s, v) in self.cases.iter().zip(&values) {
                        if let Some(v) = v {
                            out.insert(format!("{}: {key}", xml_safe(&s.test_name())), clean(v));
                        }
                    }
                }
            }
        }
        out
    }
}

/// Give the i-th `<testsuite>` of `xml` the i-th extras: `skipped` after `failures`,
/// `time` replaced by the wall time, and `<properties>` as its first child (the schema
/// allows properties only there). Text inside CDATA sections (transcripts may hold
/// anything, `<testsuite ` included) is never touched.
fn complete_suites(xml: &str, extras: &[SuiteExtras]) -> String {
    let mut out = String::with_capacity(xml.len() + 256 * extras.len());
    let mut rest = xml;
    let mut suite = 0;
    loop {
        let next_cdata = rest.find("<![CDATA[");
        let next_suite = rest.find("<testsuite ");
        match (next_cdata, next_suite) {
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
                out.push_str(&rest[..t]);
                let self_closing = rest[..close].ends_with('/');
                let tag = &rest[t..if self_closing { close - 1 } else { close }];
                match extras.get(suite) {
                    Some(x) => {
                        out.push_str(&suite_tag(tag, x));
                        out.push('>');
                        out.push_str(&properties_xml(&x.properties));
                        if self_closing {
                            out.push_str("</testsuite>");
                        }
                    }
                    None => out.push_str(&rest[t..=close]),
                }
                suite += 1;
                rest = &rest[close + 1..];
            }
            (_, None) => break,
        }
    }
    out.push_str(rest);
    out
}

/// A `<testsuite ...` opening tag (without its `>`) with `skipped` and the wall time.
fn suite_tag(tag: &str, x: &SuiteExtras) -> String {
    let time = format!("time=\"{}\"", seconds(x.time));
    let mut tag = match tag.find(" time=\"") {
        Some(i) => {
            let value_end = tag[i + 7..].find('"').map_or(tag.len(), |e| i + 7 + e + 1);
            format!("{} {time}{}", &tag[..i], &tag[value_end..])
        }
        None => format!("{tag} {time}"),
    };
    tag.push_str(&format!(" skipped=\"{}\"", x.skipped));
    tag
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
            attr(k),
            attr(v)
        );
    }
    out.push_str("</properties>");
    out
}

/// What a case's properties say, plus where it came from: the peer's address, the
/// scenario file and the protocol version it ran at.
fn facts(s: &ScenarioResult) -> BTreeMap<String, String> {
    let mut f = s.properties.clone();
    if !s.peer.is_empty() {
        f.entry("peer.address".into())
            .or_insert_with(|| s.peer.clone());
    }
    f.insert("file".into(), s.file.display().to_string());
    f.insert("protocol.version".into(), s.version.clone());
    f
}

fn classname(s: &ScenarioResult) -> String {
    format!("{}.{}", s.family, s.plays)
}

/// One `<testcase>` with its verdict, transcript and peer log. (No `file` attribute:
/// the JUnit schema has none; the file is a property of the suite.)
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
            let mut b = TestCaseBuilder::failure(&name, time, kind, &text(&failure_message(s)));
            b.set_trace(&body(&details(s)));
            b
        }
        Outcome::Error(reason) => {
            let mut b = TestCaseBuilder::error(&name, time, "error", &text(&first_line(reason)));
            b.set_trace(&body(&details(s)));
            b
        }
        Outcome::Unreachable(reason) => {
            let mut b =
                TestCaseBuilder::error(&name, time, "unreachable", &text(&first_line(reason)));
            b.set_trace(&body(&details(s)));
            b
        }
        Outcome::Skipped(reason) => {
            let mut b = TestCaseBuilder::skipped_with_cause(&name, "skipped", &text(reason));
            // skipped_with_cause has no time; keep the attribute meaningful anyway.
            b.testcase.time = time;
            b
        }
    };
    b.set_classname(&xml_safe(&classname(s)));
    if !s.transcript.is_empty() {
        b.set_system_out(&body(&transcript_text(&s.transcript)));
    }
    if let Some(log) = &s.peer_log {
        b.set_system_err(&body(log));
    }
    b.build()
}

/// An attribute's text for the writer (which escapes it): redacted and XML-safe.
fn text(s: &str) -> String {
    xml_safe(&redact_text(s))
}

/// A body for a CDATA section the writer makes: redacted and CDATA-safe.
fn body(s: &str) -> String {
    cdata_safe(&redact_text(s))
}

/// Seconds with millisecond precision, in the plain decimal form the schema's time
/// pattern allows (never an exponent).
fn seconds(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// This machine's name, for the suite's `hostname`: the kernel's, else `$HOSTNAME`,
/// else `localhost` (the attribute is informative; it never fails a report).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// An attribute value: XML-safe and escaped, with newlines and tabs as character
/// references so parsers do not fold them into spaces.
fn attr(s: &str) -> String {
    xml_safe(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\n', "&#10;")
        .replace('\t', "&#9;")
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

/// Redact a property value (attributes are escaped by [`attr`]).
fn clean(s: &str) -> String {
    redact_text(s)
}

/// Make text safe for a CDATA section (bodies are written as one CDATA section
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

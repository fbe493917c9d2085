//! JUnit XML report, shaped for how CI systems track tests (GitLab, Jenkins) and valid
//! against the JUnit schema Jenkins' xUnit plugin publishes (`junit-10.xsd`):
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
use crate::report::timestamp::iso8601_utc;
use crate::runner::result::{Direction, Outcome, RunResult, ScenarioResult, TranscriptEntry};
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

/// The whole document.
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
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"zbx-conform\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{}\">",
        run.scenarios.len(),
        run.count(|o| matches!(o, Outcome::Failed)),
        run.count(|o| matches!(o, Outcome::Error(_) | Outcome::Unreachable(_))),
        seconds(run.duration),
    );
    for (id, (family, cases)) in families.iter().enumerate() {
        let suite = Suite {
            id,
            name: family,
            cases,
            started_at,
            hostname: &host,
        };
        suite.write(&mut out, &warnings);
    }
    out.push_str("</testsuites>\n");
    out
}

/// One `<testsuite>`: the cases of one family.
struct Suite<'a> {
    id: usize,
    name: &'a str,
    cases: &'a [&'a ScenarioResult],
    /// When the run began; the suite's timestamp is its first case's start after that.
    started_at: SystemTime,
    hostname: &'a str,
}

impl Suite<'_> {
    fn write(&self, out: &mut String, warnings: &[Duplicate]) {
        let count = |p: fn(&Outcome) -> bool| self.cases.iter().filter(|s| p(&s.outcome)).count();
        let first = self
            .cases
            .iter()
            .map(|s| s.started)
            .min()
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  <testsuite id=\"{}\" name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" \
             skipped=\"{}\" time=\"{}\" timestamp=\"{}\" hostname=\"{}\">",
            self.id,
            attr(self.name),
            self.cases.len(),
            count(|o| matches!(o, Outcome::Failed)),
            count(|o| matches!(o, Outcome::Error(_) | Outcome::Unreachable(_))),
            count(|o| matches!(o, Outcome::Skipped(_))),
            seconds(self.wall_time()),
            iso8601_utc(self.started_at + first),
            attr(self.hostname),
        );
        let props = self.properties();
        if !props.is_empty() {
            out.push_str("    <properties>\n");
            for (k, v) in &props {
                let _ = writeln!(
                    out,
                    "      <property name=\"{}\" value=\"{}\"/>",
                    attr(k),
                    attr(v)
                );
            }
            out.push_str("    </properties>\n");
        }
        for s in self.cases {
            testcase(out, s);
        }
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
            let _ = writeln!(
                out,
                "    <system-err>{}</system-err>",
                cdata(&mine.join("\n"))
            );
        }
        out.push_str("  </testsuite>\n");
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

/// One `<testcase>` with its verdict, transcript and peer log.
fn testcase(out: &mut String, s: &ScenarioResult) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\">",
        attr(&s.test_name()),
        attr(&classname(s)),
        seconds(s.duration)
    );
    let verdict = |out: &mut String, tag: &str, kind: &str, message: &str, body: Option<String>| {
        let _ = write!(
            out,
            "\n      <{tag} type=\"{}\" message=\"{}\"",
            attr(kind),
            attr(&redact_text(message))
        );
        match body {
            Some(b) => {
                let _ = write!(out, ">{}</{tag}>", cdata(&redact_text(&b)));
            }
            None => out.push_str("/>"),
        }
    };
    match &s.outcome {
        Outcome::Passed => {}
        Outcome::Failed => {
            let kind = s
                .failures()
                .next()
                .map_or("failed", |(_, f)| f.check.as_str());
            verdict(out, "failure", kind, &failure_message(s), Some(details(s)));
        }
        Outcome::Error(reason) => {
            verdict(out, "error", "error", &first_line(reason), Some(details(s)));
        }
        Outcome::Unreachable(reason) => {
            verdict(
                out,
                "error",
                "unreachable",
                &first_line(reason),
                Some(details(s)),
            );
        }
        Outcome::Skipped(reason) => verdict(out, "skipped", "skipped", reason, None),
    }
    if !s.transcript.is_empty() {
        let _ = write!(
            out,
            "\n      <system-out>{}</system-out>",
            cdata(&redact_text(&transcript_text(&s.transcript)))
        );
    }
    if let Some(log) = &s.peer_log {
        let _ = write!(
            out,
            "\n      <system-err>{}</system-err>",
            cdata(&redact_text(log))
        );
    }
    if matches!(s.outcome, Outcome::Passed) && s.transcript.is_empty() && s.peer_log.is_none() {
        out.push_str("</testcase>\n");
    } else {
        out.push_str("\n    </testcase>\n");
    }
}

/// Seconds with millisecond precision, in the plain decimal form the schema's time
/// pattern allows (never an exponent).
fn seconds(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// This machine's name, for the suite's `hostname`: the kernel's, else `$HOSTNAME`,
/// else `localhost` (the attribute is informative; it never fails a report).
fn hostname() -> String {
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

/// A body as one CDATA section (see [`cdata_safe`]).
fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", cdata_safe(s))
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

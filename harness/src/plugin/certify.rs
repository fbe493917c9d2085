//! The plugin certification suite: one named requirement per protocol rule, each with a
//! severity and a source (see [`requirements`](super::requirements)).
//!
//! The suite runs the plugin three times, as Agent 2 would plus one negative case:
//! 1. registration run (`true`): Register with the agent's version string, Validate with
//!    the options the agent would send and with an unknown option (Configurators only),
//!    Terminate;
//! 2. operation run (`false`): Configure and Start when the interfaces say so, Export of
//!    every registered metric (whatever the Exporter bit says, as agent2 6.0.14 does),
//!    Export of every metric with many parameters, of an unknown key, concurrent
//!    exports, Configure with an unknown option, Terminate;
//! 3. registration run with a wrong protocol version, which must be refused.
//!
//! Log requests and wire hygiene are judged over all three runs. A requirement that
//! cannot be checked because an earlier step failed is *skipped* with the reason (the
//! earlier failure already fails the certification), so each failure names its cause.
//! Findings on an advisory requirement are warnings: shown, never a failure.
//!
//! The verdicts do not depend on timing or on the plugin's map order: metrics are
//! checked in sorted order, a plugin that timed out, closed its connection or exited
//! is started again before the next check (so one defect is not blamed on the checks
//! after it), and a reply that comes after its wait timed out is a note, not a problem.

use super::host::{HostConfig, HostError, MessageChecker, PluginHost, Received, SessionLog};
use super::host::{WireProblem, WireProblemKind};
use super::options::{global_options, private_options, unknown_option, PluginOption};
use super::requirements::{Requirement, RequirementId, Severity};
use super::{interfaces, types, PluginVersion, FAMILY};
use crate::runner::progress::Progress;
use crate::runner::result::{
    CheckFailure, CheckKind, Direction, Outcome, RunResult, ScenarioResult, StepResult,
    TranscriptEntry,
};
use regex::Regex;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use RequirementId as R;

/// Requirements checked in the operation run (skipped together when it cannot run).
const OPERATION_REQS: [RequirementId; 8] = [
    R::ConfigureOptions,
    R::ConfigureUnknownOption,
    R::ExportMetrics,
    R::ExportManyParameters,
    R::ExportBadParameters,
    R::ExportUnknownKey,
    R::ExportConcurrent,
    R::TerminateOperation,
];

/// Requirements that need at least one registered metric.
const EXPORT_REQS: [RequirementId; 5] = [
    R::ExportMetrics,
    R::ExportManyParameters,
    R::ExportBadParameters,
    R::ExportUnknownKey,
    R::ExportConcurrent,
];

/// The protocol version string sent in the negative Register test.
pub const WRONG_VERSION: &str = "0.9.99-zbxconform";
/// A key no plugin registers.
pub const UNKNOWN_KEY: &str = "zbxconform.no.such.key";
/// How many parameters the many-parameters Export carries (more than any fixed-arity
/// metric is likely to take).
pub const BAD_PARAM_COUNT: usize = 17;
/// The SDK's key format (plugin/registry.go `registerMetric`).
const KEY_FORMAT: &str = r"^[A-Za-z0-9._-]+$";

/// What to certify and how patiently.
#[derive(Debug, Clone)]
pub struct CertifyOptions {
    pub program: PathBuf,
    pub version: PluginVersion,
    /// Expected plugin name (the `<Name>` of `Plugins.<Name>.System.Path`); any
    /// non-empty name is accepted when `None`.
    pub name: Option<String>,
    /// Per-request time limit (agent2's PluginTimeout; default 3 s like its Timeout).
    pub request_timeout: Duration,
    /// How long a plugin may take to exit after Terminate.
    pub exit_within: Duration,
    /// Number of Export requests in flight in the concurrency check.
    pub concurrency: usize,
    /// Extra private options sent with Validate and Configure (`Name.Sub=value`).
    pub options: Vec<PluginOption>,
    /// Extra environment for the plugin process.
    pub env: Vec<(String, String)>,
    /// Where waits are reported, each named by its requirement (off by default).
    pub progress: Progress,
}

impl CertifyOptions {
    pub fn new(program: impl Into<PathBuf>, version: PluginVersion) -> CertifyOptions {
        CertifyOptions {
            program: program.into(),
            version,
            name: None,
            request_timeout: Duration::from_secs(3),
            exit_within: Duration::from_secs(3),
            concurrency: 8,
            options: Vec::new(),
            env: Vec::new(),
            progress: Progress::default(),
        }
    }

    fn host_config(&self) -> HostConfig {
        let mut cfg = HostConfig::new(&self.program, self.version.clone());
        cfg.env = self.env.clone();
        cfg.progress = self.progress.clone();
        cfg
    }
}

/// The verdict on one requirement, as every report shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Pass,
    /// An advisory requirement was not met: shown, never a failure.
    Warn,
    Fail,
    Skip,
    /// The plugin could not be started (exit code 3).
    Unreachable,
    Error,
}

impl Verdict {
    /// The word of the human report (`PASS`, `WARN`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
            Verdict::Unreachable => "UNREACH",
            Verdict::Error => "ERROR",
        }
    }

    /// The word of the JSON/JUnit property `verdict` (`passed`, `warning`, …).
    pub fn property(self) -> &'static str {
        match self {
            Verdict::Pass => "passed",
            Verdict::Warn => "warning",
            Verdict::Fail => "failed",
            Verdict::Skip => "skipped",
            Verdict::Unreachable => "unreachable",
            Verdict::Error => "error",
        }
    }

    /// Whether this verdict fails the certification.
    pub fn is_failure(self) -> bool {
        matches!(self, Verdict::Fail | Verdict::Unreachable | Verdict::Error)
    }
}

/// The result of one requirement.
#[derive(Debug, Clone, PartialEq)]
pub struct RequirementResult {
    pub id: RequirementId,
    /// Pass/fail gate: `Failed` only for a required requirement with findings.
    pub outcome: Outcome,
    /// Findings on a required requirement.
    pub failures: Vec<CheckFailure>,
    /// Findings on an advisory requirement (they leave `outcome` passed).
    pub warnings: Vec<CheckFailure>,
    /// What was checked, for the report of a passed requirement.
    pub notes: Vec<String>,
    pub transcript: Vec<TranscriptEntry>,
    pub duration: Duration,
}

impl RequirementResult {
    fn new(id: RequirementId) -> RequirementResult {
        RequirementResult {
            id,
            outcome: Outcome::Passed,
            failures: Vec::new(),
            warnings: Vec::new(),
            notes: Vec::new(),
            transcript: Vec::new(),
            duration: Duration::ZERO,
        }
    }

    /// The requirement: title, severity, sources.
    pub fn requirement(&self) -> Requirement {
        self.id.spec()
    }

    pub fn verdict(&self) -> Verdict {
        match &self.outcome {
            Outcome::Passed if self.warnings.is_empty() => Verdict::Pass,
            Outcome::Passed => Verdict::Warn,
            Outcome::Failed => Verdict::Fail,
            Outcome::Skipped(_) => Verdict::Skip,
            Outcome::Unreachable(_) => Verdict::Unreachable,
            Outcome::Error(_) => Verdict::Error,
        }
    }

    /// Whether the requirement does not fail the certification (passed, warned or
    /// skipped).
    pub fn passed(&self) -> bool {
        self.outcome.is_pass()
    }

    /// Record a finding: a failure of a required requirement, a warning of an advisory
    /// one.
    fn fail(
        &mut self,
        check: CheckKind,
        expected: &str,
        detail: impl Into<String>,
        received: Option<String>,
    ) {
        let finding = CheckFailure {
            check,
            expected: expected.to_string(),
            detail: detail.into(),
            path: None,
            received,
        };
        match self.id.severity() {
            Severity::Advisory => {
                self.warnings.push(finding);
                if matches!(self.outcome, Outcome::Skipped(_)) {
                    self.outcome = Outcome::Passed;
                }
            }
            Severity::Required => {
                self.failures.push(finding);
                if !matches!(self.outcome, Outcome::Unreachable(_)) {
                    self.outcome = Outcome::Failed;
                }
            }
        }
    }

    /// Mark as not checked, unless something was already found.
    fn skip(&mut self, reason: impl Into<String>) {
        if self.failures.is_empty() && self.warnings.is_empty() {
            self.outcome = Outcome::Skipped(reason.into());
        }
    }

    fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Record a host error as this requirement's finding.
    fn host_error(&mut self, expected: &str, e: &HostError) {
        let check = match e {
            HostError::Timeout { .. } => CheckKind::Timeout,
            HostError::Closed { .. } => CheckKind::Close,
            HostError::Broken(_) => CheckKind::Frame,
            HostError::Start { .. } => CheckKind::Connect,
        };
        self.fail(check, expected, e.to_string(), None);
    }

    /// Schema violations of a received message are findings of this requirement.
    fn schema(&mut self, r: &Received) -> bool {
        for p in &r.problems {
            self.fail(
                CheckKind::Schema,
                "a message valid for its kind's schema",
                p.clone(),
                Some(r.render()),
            );
        }
        r.problems.is_empty()
    }
}

/// The result of certifying one plugin.
#[derive(Debug, Clone)]
pub struct Certification {
    pub program: PathBuf,
    pub version: PluginVersion,
    /// One result per requirement, in report order.
    pub requirements: Vec<RequirementResult>,
    /// stdout/stderr/exit of each run, labelled (attached to failed JUnit cases).
    pub plugin_output: String,
    /// The plugin could not be started at all (exit code 3).
    pub unreachable: Option<String>,
    pub duration: Duration,
}

impl Certification {
    /// 0 no required requirement failed (warnings do not count), 1 one failed, 3 the
    /// plugin could not be started.
    pub fn exit_code(&self) -> i32 {
        if self.unreachable.is_some() {
            3
        } else if self.requirements.iter().all(RequirementResult::passed) {
            0
        } else {
            1
        }
    }

    pub fn requirement(&self, id: RequirementId) -> Option<&RequirementResult> {
        self.requirements.iter().find(|r| r.id == id)
    }

    /// Ids of the requirements that fail the certification.
    pub fn failed(&self) -> Vec<RequirementId> {
        self.with_verdict(Verdict::is_failure)
    }

    /// Ids of the advisory requirements that were not met.
    pub fn warned(&self) -> Vec<RequirementId> {
        self.with_verdict(|v| v == Verdict::Warn)
    }

    /// The verdict of every requirement, in report order: what must be the same each
    /// time the same plugin is certified.
    pub fn verdicts(&self) -> Vec<(RequirementId, Verdict)> {
        self.requirements
            .iter()
            .map(|r| (r.id, r.verdict()))
            .collect()
    }

    fn with_verdict(&self, pred: impl Fn(Verdict) -> bool) -> Vec<RequirementId> {
        self.requirements
            .iter()
            .filter(|r| pred(r.verdict()))
            .map(|r| r.id)
            .collect()
    }

    /// The result in the runner's shape: one scenario per requirement, family `plugin`,
    /// so the JUnit and JSON reporters apply unchanged. A warned requirement is a
    /// passed scenario; its severity, source, verdict and warnings lead its transcript,
    /// which JUnit shows as system-out (never as a failure element).
    pub fn to_run_result(&self) -> RunResult {
        // Requirements are checked one after another: each starts where the one before
        // ended.
        let mut offset = Duration::ZERO;
        let scenarios = self
            .requirements
            .iter()
            .map(|r| {
                let mut s = self.scenario(r);
                s.started = offset;
                offset += r.duration;
                s
            })
            .collect();
        RunResult {
            scenarios,
            // Made after the certification ended: its start is that long ago.
            started_at: std::time::SystemTime::now().checked_sub(self.duration),
            duration: self.duration,
            memory: None,
        }
    }

    fn scenario(&self, r: &RequirementResult) -> ScenarioResult {
        let spec = r.requirement();
        let note = |body: String| TranscriptEntry {
            at: Duration::ZERO,
            direction: Direction::Note,
            kind: None,
            flags: None,
            body,
            step: None,
        };
        let mut transcript = vec![
            note(format!(
                "requirement {} ({}); source: {}",
                spec.id,
                spec.severity,
                spec.source_text()
            )),
            note(format!("verdict: {}", r.verdict().property())),
        ];
        for w in &r.warnings {
            transcript.push(note(format!("warning: {}", finding_line(w))));
        }
        // The conversation is the one step's (`1`, below): the HTML report shows the
        // requirement's failures on the plugin's last message.
        transcript.extend(r.transcript.iter().cloned().map(|mut e| {
            e.step = Some("1".to_string());
            e
        }));
        transcript.extend(r.notes.iter().map(|n| note(n.clone())));
        ScenarioResult {
            // The id alone: CI tools track tests by name, and a reworded title must not
            // start a new history. The title is the `description` property.
            name: spec.id.to_string(),
            file: self.program.clone(),
            family: FAMILY.to_string(),
            version: self.version.catalog_version().to_string(),
            plays: "agent".to_string(),
            tags: vec!["certify-plugin".to_string(), spec.severity.to_string()],
            peer: self.program.display().to_string(),
            outcome: r.outcome.clone(),
            steps: vec![StepResult {
                sent: None,
                index: "1".to_string(),
                action: "certify".to_string(),
                name: Some(spec.id.to_string()),
                requirement: vec![spec.id.to_string()],
                line: 0,
                outcome: r.outcome.clone(),
                failures: r.failures.clone(),
                duration: r.duration,
            }],
            transcript,
            peer_log: (!r.passed() && !self.plugin_output.is_empty())
                .then(|| self.plugin_output.clone()),
            properties: [
                ("requirement", spec.id.as_str().to_string()),
                ("description", spec.title.to_string()),
                ("severity", spec.severity.as_str().to_string()),
                ("source", spec.source_text()),
                ("verdict", r.verdict().property().to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            started: Duration::ZERO,
            duration: r.duration,
        }
    }

    /// The JSON report: the runner's shape (whose `properties` name the requirement,
    /// its severity, source and verdict) plus, on each scenario, `warnings` (an
    /// advisory requirement's findings).
    pub fn json_report(&self) -> std::io::Result<String> {
        crate::report::json::value_to_string(self.json_value()?)
    }

    /// Write [`json_report`](Self::json_report) to `path`.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        crate::report::json::write_value(self.json_value()?, path)
    }

    fn json_value(&self) -> std::io::Result<Value> {
        let mut v = serde_json::to_value(self.to_run_result()).map_err(std::io::Error::other)?;
        let Some(scenarios) = v.get_mut("scenarios").and_then(Value::as_array_mut) else {
            return Err(std::io::Error::other(
                "the run result has no scenarios array",
            ));
        };
        for (s, r) in scenarios.iter_mut().zip(&self.requirements) {
            let Some(s) = s.as_object_mut() else {
                return Err(std::io::Error::other("a scenario is not a JSON object"));
            };
            let warnings = serde_json::to_value(&r.warnings).map_err(std::io::Error::other)?;
            s.insert("warnings".into(), warnings);
        }
        Ok(v)
    }

    /// The human report: one line per requirement with its severity and source under
    /// it, then the reasons of failures and warnings.
    pub fn human_report(&self) -> String {
        let mut out = format!(
            "certify-plugin {} (agent {}, Register version \"{}\")\n",
            self.program.display(),
            self.version,
            self.version.wire_version()
        );
        if let Some(u) = &self.unreachable {
            let _ = writeln!(out, "  the plugin could not be started: {u}");
        }
        let width = RequirementId::ALL
            .iter()
            .map(|id| id.as_str().len())
            .max()
            .unwrap_or(0);
        let pad = " ".repeat(10 + width + 2);
        let mut hidden = 0;
        for r in &self.requirements {
            let verdict = r.verdict();
            if self.unreachable.is_some() && verdict == Verdict::Skip {
                hidden += 1;
                continue;
            }
            let spec = r.requirement();
            let _ = writeln!(
                out,
                "  {:<7} {:<width$}  {}",
                verdict.as_str(),
                spec.id.as_str(),
                spec.title
            );
            let _ = writeln!(
                out,
                "{pad}{}; source: {}",
                spec.severity,
                spec.source_text()
            );
            if let Outcome::Skipped(why) | Outcome::Unreachable(why) | Outcome::Error(why) =
                &r.outcome
            {
                let _ = writeln!(out, "{pad}- {why}");
            }
            for f in r.failures.iter().chain(&r.warnings) {
                let _ = writeln!(out, "{pad}- [{}] {}", f.check.as_str(), one_line(&f.detail));
                if let Some(rec) = &f.received {
                    let _ = writeln!(out, "{pad}  received: {}", truncate(rec, 300));
                }
            }
        }
        if hidden > 0 {
            let _ = writeln!(
                out,
                "  ({hidden} other requirements not checked: the plugin could not be started)"
            );
        }
        let count =
            |p: fn(Verdict) -> bool| self.requirements.iter().filter(|r| p(r.verdict())).count();
        let _ = writeln!(
            out,
            "{} passed, {} warned, {} failed, {} skipped in {:.2}s",
            count(|v| v == Verdict::Pass),
            count(|v| v == Verdict::Warn),
            count(Verdict::is_failure),
            count(|v| v == Verdict::Skip),
            self.duration.as_secs_f64()
        );
        out
    }
}

/// `[check] expected …: detail` on one line, for transcripts.
fn finding_line(f: &CheckFailure) -> String {
    let mut s = format!(
        "[{}] expected {}: {}",
        f.check.as_str(),
        f.expected,
        one_line(&f.detail)
    );
    if let Some(rec) = &f.received {
        let _ = write!(s, "; received: {}", truncate(rec, 300));
    }
    s
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}

/// What the registration run learned.
#[derive(Debug, Clone)]
struct Registration {
    name: String,
    /// Registered keys, sorted and unique: the checks use them in this order, not in
    /// the plugin's (the SDK builds the list from a Go map, in random order).
    keys: Vec<String>,
    /// The interface bits (0 when missing or undecodable).
    interfaces: u64,
    /// Why the interfaces could not be decoded, if so.
    interfaces_unknown: Option<String>,
}

impl Registration {
    fn is_configurator(&self) -> bool {
        self.interfaces & interfaces::CONFIGURATOR != 0
    }

    /// Why the Configurator checks do not apply, if they do not.
    fn not_configurator(&self) -> Option<String> {
        match &self.interfaces_unknown {
            Some(why) => Some(format!("blocked: {why} (register.interfaces)")),
            None if !self.is_configurator() => {
                Some("the plugin does not implement Configurator (interfaces bit 2)".to_string())
            }
            None => None,
        }
    }
}

/// Run the whole suite. Never panics on plugin behaviour; every problem becomes a
/// requirement finding.
pub async fn certify(opts: &CertifyOptions, checker: Arc<MessageChecker>) -> Certification {
    let started = Instant::now();
    let mut s = Suite::new(opts, checker);
    s.run().await;
    s.finish(started)
}

struct Suite<'a> {
    opts: &'a CertifyOptions,
    cfg: HostConfig,
    checker: Arc<MessageChecker>,
    /// Indexed by `RequirementId as usize` (built from `RequirementId::ALL`, whose
    /// order is the declaration order: a unit test in `requirements` checks it).
    reqs: [RequirementResult; RequirementId::ALL.len()],
    sessions: Vec<(String, SessionLog)>,
    unreachable: Option<String>,
}

impl<'a> Suite<'a> {
    fn new(opts: &'a CertifyOptions, checker: Arc<MessageChecker>) -> Suite<'a> {
        Suite {
            cfg: opts.host_config(),
            opts,
            checker,
            reqs: RequirementId::ALL.map(RequirementResult::new),
            sessions: Vec::new(),
            unreachable: None,
        }
    }

    fn req(&mut self, id: RequirementId) -> &mut RequirementResult {
        &mut self.reqs[id as usize]
    }

    fn name_for_options(&self, reg: Option<&Registration>) -> String {
        self.opts
            .name
            .clone()
            .or_else(|| reg.map(|r| r.name.clone()))
            .unwrap_or_else(|| "Plugin".to_string())
    }

    async fn run(&mut self) {
        let reg = self.registration_run().await;
        if self.unreachable.is_some() {
            return;
        }
        match &reg {
            Some(r) => self.operation_run(r).await,
            None => {
                for id in OPERATION_REQS {
                    self.req(id).skip(
                        "blocked: the registration run did not yield a usable Register response",
                    );
                }
            }
        }
        self.wrong_version_run().await;
        self.judge_logs();
        self.judge_wire();
    }

    /// Close a requirement's time slice: duration and the part of the transcript.
    fn close(&mut self, id: RequirementId, host: &PluginHost, since: (Instant, usize)) {
        let r = self.req(id);
        r.duration += since.0.elapsed();
        r.transcript.extend(host.transcript_since(since.1));
    }

    /// Open a requirement's time slice: its start, and its name in progress lines.
    fn begin(host: &mut PluginHost, id: RequirementId) -> (Instant, usize) {
        host.set_stage(id.as_str());
        (Instant::now(), host.transcript_len())
    }

    async fn launch(&mut self, initial: bool) -> Result<PluginHost, HostError> {
        PluginHost::launch(&self.cfg, Arc::clone(&self.checker), initial).await
    }

    async fn end_session(&mut self, label: &str, host: PluginHost) {
        let log = host.finish().await;
        self.sessions.push((label.to_string(), log));
    }

    fn export_request(&self, key: &str) -> Value {
        self.opts
            .version
            .export_request(key, self.opts.request_timeout)
    }

    // ------------------------------------------------------------------ run 1

    async fn registration_run(&mut self) -> Option<Registration> {
        let mut host = match self.launch(true).await {
            Ok(h) => h,
            Err(e) => {
                let why = e.to_string();
                self.unreachable = Some(why.clone());
                for r in &mut self.reqs {
                    r.outcome = Outcome::Skipped("blocked: the plugin could not be started".into());
                }
                self.req(R::RegisterHandshake).outcome = Outcome::Unreachable(why);
                return None;
            }
        };
        let mark = Self::begin(&mut host, R::RegisterHandshake);
        let version = self.opts.version.wire_version();
        let res = host
            .request(
                json!({"type": types::REGISTER_REQUEST, "version": version}),
                self.opts.request_timeout,
            )
            .await;
        let reg = self.judge_register(res);
        self.close(R::RegisterHandshake, &host, mark);

        let mark = Self::begin(&mut host, R::ValidateOptions);
        match &reg {
            Some(reg) => match reg.not_configurator() {
                None => self.validate_checks(&mut host, reg).await,
                Some(why) => {
                    self.req(R::ValidateOptions).skip(why.clone());
                    self.req(R::ValidateUnknownOption).skip(why);
                }
            },
            None => {
                for id in [R::ValidateOptions, R::ValidateUnknownOption] {
                    self.req(id).skip("blocked: no usable Register response");
                }
            }
        }
        self.close(R::ValidateOptions, &host, mark);
        self.close(R::ValidateUnknownOption, &host, mark);

        let mark = Self::begin(&mut host, R::TerminateRegistration);
        self.terminate_check(&mut host, R::TerminateRegistration)
            .await;
        self.close(R::TerminateRegistration, &host, mark);
        self.end_session("registration run", host).await;
        reg
    }

    /// Judge the Register response; `Some` when later steps can use it.
    fn judge_register(&mut self, res: Result<Received, HostError>) -> Option<Registration> {
        let r = match res {
            Ok(r) => r,
            Err(e) => {
                self.req(R::RegisterHandshake)
                    .host_error("a Register response with the request's id", &e);
                for id in [
                    R::RegisterMetrics,
                    R::RegisterInterfaces,
                    R::RegisterInterfaceBits,
                ] {
                    self.req(id).skip("blocked: no Register response");
                }
                return None;
            }
        };
        let name = self.judge_handshake(&r);
        let keys = self.judge_metrics(&r);
        let (bits, unknown) = self.judge_interfaces(&r);
        self.judge_interface_bits(&r, bits, keys.as_ref().is_some_and(|k| !k.is_empty()));
        if r.error().is_some() || name.is_empty() {
            return None;
        }
        Some(Registration {
            name,
            keys: keys.unwrap_or_default(),
            interfaces: bits.unwrap_or(0),
            interfaces_unknown: unknown,
        })
    }

    /// The handshake proper: schema (minus what metrics and interfaces judge), no
    /// error, the expected name. Returns the registered name.
    fn judge_handshake(&mut self, r: &Received) -> String {
        let expected_name = self.opts.name.clone();
        let h = self.req(R::RegisterHandshake);
        let mut own = r.clone();
        own.problems.retain(|p| !judged_elsewhere(p));
        h.schema(&own);
        if let Some(err) = r.error() {
            h.fail(
                CheckKind::Match,
                "no error: the agent's protocol version is accepted",
                format!("the plugin refused the registration: {err}"),
                Some(r.render()),
            );
        }
        let name = r
            .body
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() && r.error().is_none() {
            h.fail(
                CheckKind::Match,
                "a non-empty name",
                "name is empty or missing",
                Some(r.render()),
            );
        }
        if let Some(want) = &expected_name {
            if &name != want {
                h.fail(
                    CheckKind::Match,
                    &format!("name == {want:?} (agent2: mismatch plugin names)"),
                    format!("got {name:?}"),
                    Some(r.render()),
                );
            }
        }
        if h.failures.is_empty() {
            h.note(format!("registered as {name:?}"));
        }
        name
    }

    /// The metrics list as agent2 hands it to the SDK's `RegisterMetrics`, which
    /// panics on anything but these rules (plugin/registry.go). Returns the keys,
    /// sorted and unique.
    fn judge_metrics(&mut self, r: &Received) -> Option<Vec<String>> {
        let m = self.req(R::RegisterMetrics);
        if r.error().is_some() {
            m.skip("the plugin answered Register with an error");
            return None;
        }
        let Some(list) = r.body.get("metrics").and_then(Value::as_array) else {
            m.fail(
                CheckKind::Schema,
                "a metrics array",
                "metrics is missing or not an array",
                Some(r.render()),
            );
            return None;
        };
        let expected = "[key, description, key, description, ...]";
        let strings: Vec<Option<&str>> = list.iter().map(Value::as_str).collect();
        if strings.iter().any(Option::is_none) {
            m.fail(
                CheckKind::Schema,
                expected,
                "an element is not a string",
                Some(r.render()),
            );
            return None;
        }
        let strings: Vec<&str> = strings.into_iter().flatten().collect();
        if strings.is_empty() {
            m.fail(
                CheckKind::Schema,
                expected,
                "no metric registered",
                Some(r.render()),
            );
            return None;
        }
        if strings.len() % 2 != 0 {
            m.fail(
                CheckKind::Schema,
                expected,
                format!(
                    "odd number of elements ({}): keys and descriptions do not pair up",
                    strings.len()
                ),
                Some(r.render()),
            );
        }
        let key_re = Regex::new(KEY_FORMAT).ok();
        let mut keys = BTreeSet::new();
        for pair in strings.chunks(2) {
            let key = pair[0];
            if !key_re.as_ref().is_some_and(|re| re.is_match(key)) {
                m.fail(
                    CheckKind::Match,
                    "keys made of A-Z a-z 0-9 . _ - (the SDK's key format)",
                    format!("bad key {key:?}"),
                    Some(r.render()),
                );
            }
            if !keys.insert(key.to_string()) {
                m.fail(
                    CheckKind::Match,
                    "unique keys",
                    format!("key {key:?} is listed twice"),
                    Some(r.render()),
                );
            }
            if let Some(d) = pair.get(1) {
                if let Some(problem) = description_problem(d) {
                    m.fail(
                        CheckKind::Match,
                        "a description that is non-empty, does not start lower-case and ends with a dot (SDK registerMetric)",
                        format!("key {key:?}: {problem}"),
                        Some(r.render()),
                    );
                }
            }
        }
        let keys: Vec<String> = keys.into_iter().collect();
        if m.failures.is_empty() {
            m.note(format!("metrics: {}", keys.join(", ")));
        }
        Some(keys)
    }

    /// The interfaces member as agent2 decodes it (a uint32; missing = 0). Returns the
    /// bits, and why they are unknown when the value cannot be decoded.
    fn judge_interfaces(&mut self, r: &Received) -> (Option<u64>, Option<String>) {
        let i = self.req(R::RegisterInterfaces);
        if r.error().is_some() {
            i.skip("the plugin answered Register with an error");
            return (
                None,
                Some("the plugin answered Register with an error".into()),
            );
        }
        let Some(v) = r.body.get("interfaces") else {
            i.note("interfaces is missing: agent2 reads 0 (no Validate, Configure or Start)");
            return (Some(0), None);
        };
        match v.as_u64().filter(|b| u32::try_from(*b).is_ok()) {
            Some(bits) => {
                i.note(format!("interfaces = {bits}"));
                (Some(bits), None)
            }
            None => {
                i.fail(
                    CheckKind::Schema,
                    "an unsigned 32-bit integer (agent2 decodes it into a uint32)",
                    format!("got {v}"),
                    Some(r.render()),
                );
                (None, Some(format!("interfaces {v} cannot be decoded")))
            }
        }
    }

    /// Advisory: only the known bits, and Exporter when there are metrics.
    fn judge_interface_bits(&mut self, r: &Received, bits: Option<u64>, has_metrics: bool) {
        let i = self.req(R::RegisterInterfaceBits);
        let Some(bits) = bits else {
            i.skip(if r.error().is_some() {
                "the plugin answered Register with an error"
            } else {
                "blocked: interfaces cannot be decoded (register.interfaces)"
            });
            return;
        };
        if bits & !interfaces::ALL != 0 {
            i.fail(
                CheckKind::Match,
                "only bits 1 (Exporter), 2 (Configurator), 4 (Runner)",
                format!(
                    "interfaces = {bits} sets unknown bits {:#x} (agent2 ignores them)",
                    bits & !interfaces::ALL
                ),
                Some(r.render()),
            );
        }
        if has_metrics && bits & interfaces::EXPORTER == 0 {
            i.fail(
                CheckKind::Match,
                "the Exporter bit (1) when metrics are registered",
                format!(
                    "interfaces = {bits} (agent2 still sends Export for every registered metric)"
                ),
                Some(r.render()),
            );
        }
        let names: Vec<&str> = [
            (interfaces::EXPORTER, "Exporter"),
            (interfaces::CONFIGURATOR, "Configurator"),
            (interfaces::RUNNER, "Runner"),
        ]
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
        if i.warnings.is_empty() {
            i.note(format!("interfaces = {bits} ({})", names.join(", ")));
        }
    }

    async fn validate_checks(&mut self, host: &mut PluginHost, reg: &Registration) {
        let name = self.name_for_options(Some(reg));
        let path = self.opts.program.display().to_string();
        let good = private_options(&name, &path, &self.opts.options);
        let mut bad_opts = self.opts.options.clone();
        bad_opts.push(unknown_option());
        let bad = private_options(&name, &path, &bad_opts);
        let timeout = self.opts.request_timeout;

        let res = host
            .request(
                json!({"type": types::VALIDATE_REQUEST, "private_options": good}),
                timeout,
            )
            .await;
        let v = self.req(R::ValidateOptions);
        match res {
            Err(e) => v.host_error("a Validate response to the agent's own options", &e),
            Ok(r) => {
                v.schema(&r);
                if let Some(err) = r.error() {
                    v.fail(
                        CheckKind::Match,
                        "no error for the options the agent sends (Plugins.<Name>.System.Path)",
                        format!("the plugin rejected them: {err}"),
                        Some(r.render()),
                    );
                } else {
                    v.note("the agent's own options were accepted");
                }
            }
        }
        if !host.is_usable() {
            self.req(R::ValidateUnknownOption).skip(
                "blocked: the plugin did not answer the agent's own options (validate.options)",
            );
            return;
        }
        host.set_stage(R::ValidateUnknownOption.as_str());
        let res = host
            .request(
                json!({"type": types::VALIDATE_REQUEST, "private_options": bad}),
                timeout,
            )
            .await;
        let v = self.req(R::ValidateUnknownOption);
        match res {
            Err(e) => v.host_error("a Validate response to an unknown option", &e),
            Ok(r) => {
                v.schema(&r);
                match r.error() {
                    Some(err) => v.note(format!("unknown option rejected: {err}")),
                    None => v.fail(
                        CheckKind::Match,
                        "an error reply for the unknown option ZbxConformNoSuchOption",
                        "the plugin accepted it",
                        Some(r.render()),
                    ),
                }
            }
        }
    }

    async fn terminate_check(&mut self, host: &mut PluginHost, id: RequirementId) {
        let within = self.opts.exit_within;
        let res = host.terminate(within).await;
        let t = self.req(id);
        match res {
            Ok(status) => t.note(format!("exited after Terminate: {status}")),
            Err(HostError::Timeout { .. }) => t.fail(
                CheckKind::Close,
                &format!("the process exits within {within:?} of Terminate"),
                "it was still running (killed)",
                None,
            ),
            Err(e) => t.host_error("the process exits after Terminate", &e),
        }
    }

    // ------------------------------------------------------------------ run 2

    async fn operation_run(&mut self, reg: &Registration) {
        let mut host = match self.start_operation(reg).await {
            Ok(h) => Some(h),
            Err(e) => {
                let why = format!("the operation run could not start: {e}");
                for id in OPERATION_REQS {
                    self.req(id).fail(
                        CheckKind::Connect,
                        "the plugin starts a second time (operation run)",
                        why.clone(),
                        None,
                    );
                }
                return;
            }
        };

        // agent2 6.0.14 exports every registered metric whatever the Exporter bit says
        // (cmd/zabbix_agent2/external.go registers them all); so does the suite.
        if reg.keys.is_empty() {
            for id in EXPORT_REQS {
                self.req(id).skip("the plugin registered no metric");
            }
        } else {
            host = self.export_metrics(host, reg).await;
            host = self.export_parameters(host, reg).await;
            host = self.export_unknown_key(host, reg).await;
            host = self.export_concurrent(host, reg).await;
        }

        match reg.not_configurator() {
            None => host = self.configure_checks(host, reg).await,
            Some(why) => {
                self.req(R::ConfigureOptions).skip(why.clone());
                self.req(R::ConfigureUnknownOption).skip(why);
            }
        }

        let Some(mut host) = self.ensure_alive(host, reg, R::TerminateOperation).await else {
            return;
        };
        let mark = Self::begin(&mut host, R::TerminateOperation);
        self.terminate_check(&mut host, R::TerminateOperation).await;
        self.close(R::TerminateOperation, &host, mark);
        self.end_session("operation run", host).await;
    }

    /// Launch the operation run and send Configure/Start as the agent does.
    async fn start_operation(&mut self, reg: &Registration) -> Result<PluginHost, HostError> {
        let mut host = self.launch(false).await?;
        if reg.is_configurator() {
            let name = self.name_for_options(Some(reg));
            let id = host.next_id();
            let msg = json!({
                "id": id,
                "type": types::CONFIGURE_REQUEST,
                "global_options": global_options(self.opts.request_timeout.as_secs().clamp(1, 30)),
                "private_options": private_options(&name, &self.opts.program.display().to_string(), &self.opts.options),
            });
            host.send(&msg).await?;
        }
        if reg.interfaces & interfaces::RUNNER != 0 {
            let id = host.next_id();
            host.send(&json!({"id": id, "type": types::START_REQUEST}))
                .await?;
        }
        Ok(host)
    }

    /// Give the next check a fresh plugin when the last one cannot serve it fairly:
    /// it exited, closed the connection, broke the stream, or still owes a reply that
    /// timed out (a sequential plugin would answer the next request only after it).
    /// Each check then sees the plugin in the same state whatever happened before, so
    /// one defect is not blamed on later checks and timing does not change verdicts.
    /// `None` (and a finding of `id`) when it cannot be started.
    async fn ensure_alive(
        &mut self,
        host: Option<PluginHost>,
        reg: &Registration,
        id: RequirementId,
    ) -> Option<PluginHost> {
        let mut why = "the plugin was not running";
        if let Some(mut h) = host {
            if h.is_usable() {
                return Some(h);
            }
            why = restart_reason(&mut h);
            self.end_session("operation run (ended early)", h).await;
        }
        match self.start_operation(reg).await {
            Ok(h) => {
                self.req(id)
                    .note(format!("{why}; started it again for this check"));
                Some(h)
            }
            Err(e) => {
                self.req(id).fail(
                    CheckKind::Connect,
                    "the plugin can be started again",
                    e.to_string(),
                    None,
                );
                None
            }
        }
    }

    async fn export_metrics(
        &mut self,
        host: Option<PluginHost>,
        reg: &Registration,
    ) -> Option<PluginHost> {
        let id = R::ExportMetrics;
        let mut host = host;
        for key in &reg.keys {
            let mut h = self.ensure_alive(host, reg, id).await?;
            let mark = Self::begin(&mut h, id);
            let res = h
                .request(self.export_request(key), self.opts.request_timeout)
                .await;
            let r = self.req(id);
            match res {
                Err(e) => r.host_error(&format!("an Export response for {key}"), &e),
                Ok(resp) => {
                    if r.schema(&resp) {
                        r.note(format!("{key}: {}", describe_reply(&resp)));
                    }
                }
            }
            self.close(id, &h, mark);
            host = Some(h);
        }
        host
    }

    /// Every metric with [`BAD_PARAM_COUNT`] parameters. Required: an answer with the
    /// request id (agent2 passes any number of parameters through). Advisory: an
    /// error, since a metric may well take any number (a variadic metric answers with
    /// a value, and that is only worth a warning).
    async fn export_parameters(
        &mut self,
        host: Option<PluginHost>,
        reg: &Registration,
    ) -> Option<PluginHost> {
        let params: Vec<String> = (0..BAD_PARAM_COUNT)
            .map(|i| format!("zbxconform-bad-{i}"))
            .collect();
        let mut host = host;
        let mut answered = 0;
        for key in &reg.keys {
            let mut h = self
                .ensure_alive(host, reg, R::ExportManyParameters)
                .await?;
            let mark = Self::begin(&mut h, R::ExportManyParameters);
            let mut msg = self.export_request(key);
            msg["parameters"] = json!(params);
            let res = h.request(msg, self.opts.request_timeout).await;
            let what = format!("an answer for {key} with {BAD_PARAM_COUNT} parameters");
            match res {
                Err(e) => {
                    self.req(R::ExportManyParameters).host_error(&what, &e);
                    self.req(R::ExportBadParameters)
                        .note(format!("{key}: not answered (see export.many-parameters)"));
                }
                Ok(resp) => {
                    answered += 1;
                    let m = self.req(R::ExportManyParameters);
                    if m.schema(&resp) {
                        m.note(format!("{key}: {}", describe_reply(&resp)));
                    }
                    let b = self.req(R::ExportBadParameters);
                    match resp.error() {
                        Some(err) => b.note(format!("{key}: error reply {err:?}")),
                        None => b.fail(
                            CheckKind::Match,
                            &format!("an error reply for {key} with {BAD_PARAM_COUNT} parameters"),
                            format!("{key} answered with a value: fine if it takes any number of parameters"),
                            Some(resp.render()),
                        ),
                    }
                }
            }
            self.close(R::ExportManyParameters, &h, mark);
            self.close(R::ExportBadParameters, &h, mark);
            host = Some(h);
        }
        if answered == 0 {
            self.req(R::ExportBadParameters).skip(
                "blocked: no Export with many parameters was answered (export.many-parameters)",
            );
        }
        host
    }

    async fn export_unknown_key(
        &mut self,
        host: Option<PluginHost>,
        reg: &Registration,
    ) -> Option<PluginHost> {
        let id = R::ExportUnknownKey;
        let mut host = self.ensure_alive(host, reg, id).await?;
        let mark = Self::begin(&mut host, id);
        let res = host
            .request(self.export_request(UNKNOWN_KEY), self.opts.request_timeout)
            .await;
        let what = format!("an error reply for key {UNKNOWN_KEY:?}");
        let r = self.req(id);
        match res {
            Err(e) => r.host_error(&what, &e),
            Ok(resp) => {
                r.schema(&resp);
                match resp.error() {
                    Some(err) => r.note(format!("error reply: {err:?}")),
                    None => r.fail(
                        CheckKind::Match,
                        &what,
                        "got a reply without an error",
                        Some(resp.render()),
                    ),
                }
            }
        }
        self.close(id, &host, mark);
        Some(host)
    }

    async fn export_concurrent(
        &mut self,
        host: Option<PluginHost>,
        reg: &Registration,
    ) -> Option<PluginHost> {
        let id = R::ExportConcurrent;
        let mut host = self.ensure_alive(host, reg, id).await?;
        let mark = Self::begin(&mut host, id);
        let n = self.opts.concurrency.max(2);
        let mut sent: Vec<(u32, String)> = Vec::new();
        let mut send_error = None;
        for i in 0..n {
            let key = reg.keys[i % reg.keys.len()].clone();
            let rid = host.next_id();
            let mut msg = self.export_request(&key);
            msg["id"] = json!(rid);
            if let Err(e) = host.send(&msg).await {
                send_error = Some(e);
                break;
            }
            sent.push((rid, key));
        }
        let mut answered = 0;
        let mut failures: Vec<(u32, HostError)> = Vec::new();
        // One deadline for all: answers may come in any order, and a plugin that
        // answers none must not cost n timeouts.
        let deadline = Instant::now() + self.opts.request_timeout;
        for (rid, key) in &sent {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            match host.wait_response(*rid, left).await {
                Ok(resp) => {
                    answered += 1;
                    let r = self.req(id);
                    r.schema(&resp);
                    if resp.id() != Some(u64::from(*rid)) {
                        r.fail(
                            CheckKind::Match,
                            &format!("id {rid}"),
                            format!("reply for {key} carries another id"),
                            Some(resp.render()),
                        );
                    }
                }
                Err(e) => {
                    let fatal = !matches!(e, HostError::Timeout { .. });
                    failures.push((*rid, e));
                    if fatal {
                        break;
                    }
                }
            }
        }
        let r = self.req(id);
        let fatal_wait = failures
            .iter()
            .any(|(_, e)| !matches!(e, HostError::Timeout { .. }));
        for (rid, e) in &failures {
            r.host_error(&format!("an Export response with id {rid}"), e);
        }
        // A plugin that died mid-way makes a write fail or not depending on when it
        // died: its closed connection is reported once, by the wait that saw it.
        if let Some(e) = send_error.filter(|_| !fatal_wait) {
            r.host_error("all requests could be sent", &e);
        }
        if r.failures.is_empty() {
            r.note(format!(
                "{answered} of {} concurrent exports answered with their ids",
                sent.len()
            ));
        }
        self.close(id, &host, mark);
        Some(host)
    }

    /// Required: the Configure sent at the start of the run (the agent's options) left
    /// the plugin answering. Advisory: so does a Configure with an unknown option.
    async fn configure_checks(
        &mut self,
        host: Option<PluginHost>,
        reg: &Registration,
    ) -> Option<PluginHost> {
        let mut host = self.ensure_alive(host, reg, R::ConfigureOptions).await?;
        let mark = Self::begin(&mut host, R::ConfigureOptions);
        self.configure_probe(
            &mut host,
            reg,
            R::ConfigureOptions,
            "Configure with the agent's options",
        )
        .await;
        self.close(R::ConfigureOptions, &host, mark);

        let id = R::ConfigureUnknownOption;
        let mut host = self.ensure_alive(Some(host), reg, id).await?;
        let mark = Self::begin(&mut host, id);
        let name = self.name_for_options(Some(reg));
        let mut bad = self.opts.options.clone();
        bad.push(unknown_option());
        let cid = host.next_id();
        let msg = json!({
            "id": cid,
            "type": types::CONFIGURE_REQUEST,
            "global_options": global_options(self.opts.request_timeout.as_secs().clamp(1, 30)),
            "private_options": private_options(&name, &self.opts.program.display().to_string(), &bad),
        });
        match host.send(&msg).await {
            Err(e) => self.req(id).host_error("the plugin reads Configure", &e),
            Ok(()) => {
                self.configure_probe(&mut host, reg, id, "Configure with an unknown option")
                    .await
            }
        }
        self.close(id, &host, mark);
        Some(host)
    }

    /// After a Configure the plugin must still answer: a Validate of the agent's own
    /// options is the probe (not an Export, so an export defect is not blamed on
    /// Configure; Configurators implement Validate).
    async fn configure_probe(
        &mut self,
        host: &mut PluginHost,
        reg: &Registration,
        id: RequirementId,
        after: &str,
    ) {
        let name = self.name_for_options(Some(reg));
        let good = private_options(
            &name,
            &self.opts.program.display().to_string(),
            &self.opts.options,
        );
        let res = host
            .request(
                json!({"type": types::VALIDATE_REQUEST, "private_options": good}),
                self.opts.request_timeout,
            )
            .await;
        let r = self.req(id);
        match res {
            Ok(resp) => {
                r.schema(&resp);
                r.note(format!("still answering (Validate) after {after}"));
            }
            Err(e) => r.host_error(&format!("a Validate answered after {after}"), &e),
        }
    }

    // ------------------------------------------------------------------ run 3

    async fn wrong_version_run(&mut self) {
        let id = R::RegisterWrongVersion;
        let mut host = match self.launch(true).await {
            Ok(h) => h,
            Err(e) => {
                self.req(id)
                    .host_error("the plugin starts a third time", &e);
                return;
            }
        };
        let mark = Self::begin(&mut host, id);
        let res = host
            .request(
                json!({"type": types::REGISTER_REQUEST, "version": WRONG_VERSION}),
                self.opts.request_timeout,
            )
            .await;
        let r = self.req(id);
        match res {
            Err(e) => r.host_error("a Register response with an error", &e),
            Ok(resp) => {
                r.schema(&resp);
                match resp.error() {
                    None => r.fail(
                        CheckKind::Match,
                        &format!("an error refusing protocol version {WRONG_VERSION:?}"),
                        "the plugin accepted an unknown protocol version",
                        Some(resp.render()),
                    ),
                    // The agent only checks that there is an error; naming the
                    // version is the SDK's wording, so its absence is just noted.
                    Some(err) if !err.contains(WRONG_VERSION) => r.note(format!(
                        "refused: {err} (the message does not name the version)"
                    )),
                    Some(err) => r.note(format!("refused: {err}")),
                }
            }
        }
        // The 6.0 SDK keeps running, the 7.x SDK exits: either is fine here.
        let _ = host.terminate(self.opts.exit_within).await;
        self.close(id, &host, mark);
        self.end_session("wrong-version run", host).await;
    }

    // ------------------------------------------------------------------ all runs

    /// Required: what agent2 needs to read a log request (id 0, decodable members).
    /// Advisory: a severity it knows (it drops others silently).
    fn judge_logs(&mut self) {
        let logs: Vec<(String, Received)> = self
            .sessions
            .iter()
            .flat_map(|(label, s)| s.logs.iter().map(move |l| (label.clone(), l.clone())))
            .collect();
        if logs.is_empty() {
            for id in [R::LogShape, R::LogSeverity] {
                self.req(id).skip("the plugin sent no log request");
            }
            return;
        }
        for (label, l) in &logs {
            let severity = l.body.get("severity").and_then(Value::as_u64);
            for p in &l.problems {
                // A range violation of an integer severity is judged by log.severity.
                if severity.is_some() && p.contains(": at /severity:") {
                    continue;
                }
                self.req(R::LogShape).fail(
                    CheckKind::Schema,
                    "a valid log request",
                    format!("{label}: {p}"),
                    Some(l.render()),
                );
            }
            if let Some(s) = severity.filter(|s| *s > 5) {
                self.req(R::LogSeverity).fail(
                    CheckKind::Match,
                    "a severity 0-5",
                    format!("{label}: severity {s} (agent2 drops the message)"),
                    Some(l.render()),
                );
            }
        }
        let n = logs.len();
        let shape = self.req(R::LogShape);
        if shape.failures.is_empty() {
            shape.note(format!("{n} log requests, all valid"));
        }
        let sev = self.req(R::LogSeverity);
        if sev.warnings.is_empty() {
            sev.note(format!("{n} log requests, all with severities 0-5"));
        }
    }

    /// Breaking wire problems fail `wire.clean`; what agent2 ignores warns in
    /// `wire.ignored`.
    fn judge_wire(&mut self) {
        let problems: Vec<(String, WireProblem)> = self
            .sessions
            .iter()
            .flat_map(|(label, s)| s.problems.iter().map(move |p| (label.clone(), p.clone())))
            .collect();
        for (label, p) in problems {
            let (id, check, expected) = match p.kind {
                WireProblemKind::Breaking => {
                    (R::WireClean, CheckKind::Frame, "clean protocol traffic")
                }
                WireProblemKind::Ignored => (
                    R::WireIgnored,
                    CheckKind::Frame,
                    "nothing the agent ignores",
                ),
                WireProblemKind::ExtraMember => (
                    R::WireIgnored,
                    CheckKind::Schema,
                    "only the members the protocol defines",
                ),
            };
            self.req(id).fail(
                check,
                expected,
                format!("{label}: {}", p.detail),
                p.received,
            );
        }
        if self.req(R::WireClean).failures.is_empty() {
            self.req(R::WireClean).note("no wire problem in any run");
        }
        if self.req(R::WireIgnored).warnings.is_empty() {
            self.req(R::WireIgnored)
                .note("nothing the agent would ignore in any run");
        }
    }

    fn finish(self, started: Instant) -> Certification {
        let mut plugin_output = String::new();
        for (label, s) in &self.sessions {
            let _ = writeln!(
                plugin_output,
                "=== {label}: exit {}{}",
                s.exit.as_deref().unwrap_or("unknown"),
                if s.killed {
                    " (killed by the harness)"
                } else {
                    ""
                }
            );
            if !s.stdout.trim().is_empty() {
                let _ = writeln!(plugin_output, "--- stdout ---\n{}", s.stdout.trim_end());
            }
            if !s.stderr.trim().is_empty() {
                let _ = writeln!(plugin_output, "--- stderr ---\n{}", s.stderr.trim_end());
            }
        }
        Certification {
            program: self.opts.program.clone(),
            version: self.opts.version.clone(),
            requirements: self.reqs.into(),
            plugin_output,
            unreachable: self.unreachable,
            duration: started.elapsed(),
        }
    }
}

/// Whether a Register schema problem belongs to register.metrics or
/// register.interfaces rather than to the handshake.
fn judged_elsewhere(problem: &str) -> bool {
    ["metrics", "interfaces"].iter().any(|m| {
        problem.contains(&format!(": at /{m}"))
            || problem.contains(&format!("\"{m}\" is a required"))
    })
}

/// What the SDK's `registerMetric` refuses in a description, if anything.
fn description_problem(d: &str) -> Option<&'static str> {
    match d.chars().next() {
        None => Some("the description is empty"),
        Some(c) if c.is_lowercase() => Some("the description starts with a lower-case letter"),
        Some(_) if !d.ends_with('.') => Some("the description does not end with a dot"),
        Some(_) => None,
    }
}

/// A reply as a short note: its error, or its value.
fn describe_reply(resp: &Received) -> String {
    match resp.error() {
        Some(err) => format!("error {err:?}"),
        None => format!(
            "value {}",
            resp.body
                .get("value")
                .map_or("(none)".to_string(), |v| truncate(&v.to_string(), 80))
        ),
    }
}

/// Why a host cannot serve the next check (for the note of a restart).
fn restart_reason(h: &mut PluginHost) -> &'static str {
    if h.is_broken() {
        "its stream was unusable"
    } else if h.is_closed() || !h.is_running() {
        "the plugin had exited or closed its connection"
    } else {
        "a request had timed out and its reply had not come"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_follow_the_sdk_register_metric_rules() {
        assert_eq!(description_problem("Returns 1."), None);
        assert_eq!(
            description_problem("1-minute load."),
            None,
            "only lower case is refused"
        );
        assert!(description_problem("").is_some_and(|p| p.contains("empty")));
        assert!(description_problem("returns 1.").is_some_and(|p| p.contains("lower-case")));
        assert!(description_problem("Returns 1").is_some_and(|p| p.contains("dot")));
    }

    #[test]
    fn metrics_and_interfaces_problems_are_left_to_their_requirements() {
        assert!(judged_elsewhere(
            "schema register.response: at /metrics: [\"k\"] has less than 2 items"
        ));
        assert!(judged_elsewhere(
            "schema register.response: at /: \"interfaces\" is a required property"
        ));
        assert!(!judged_elsewhere(
            "schema register.response: at /name: \"\" is shorter than 1 character"
        ));
    }

    #[test]
    fn an_advisory_finding_is_a_warning_and_a_required_one_a_failure() {
        let mut bad = RequirementResult::new(R::ExportBadParameters);
        bad.fail(CheckKind::Match, "an error", "a value", None);
        assert_eq!(bad.verdict(), Verdict::Warn);
        assert!(bad.passed() && bad.failures.is_empty());
        let mut many = RequirementResult::new(R::ExportManyParameters);
        many.fail(CheckKind::Close, "an answer", "closed", None);
        assert_eq!(many.verdict(), Verdict::Fail);
        assert!(!many.passed() && many.warnings.is_empty());
        many.skip("later");
        assert_eq!(
            many.verdict(),
            Verdict::Fail,
            "a finding is not skipped away"
        );
    }
}

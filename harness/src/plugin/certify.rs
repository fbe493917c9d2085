//! The plugin certification suite: one named requirement per protocol rule.
//!
//! The suite runs the plugin three times, as Agent 2 would plus one negative case:
//! 1. registration run (`true`): Register with the agent's version string, Validate with
//!    the options the agent would send and with an unknown option (Configurators only),
//!    Terminate;
//! 2. operation run (`false`): Configure and Start when the interfaces say so, Export of
//!    every registered metric, an unknown key, bad parameters, concurrent exports,
//!    Configure with a bad option followed by an export, Terminate;
//! 3. registration run with a wrong protocol version, which must be refused by name.
//!
//! Log requests and wire hygiene are judged over all three runs. A requirement that
//! cannot be checked because an earlier step failed is *skipped* with the reason (the
//! earlier failure already fails the certification), so each failure names its cause.

use super::host::{HostConfig, HostError, MessageChecker, PluginHost, Received, SessionLog};
use super::options::{global_options, private_options, unknown_option, PluginOption};
use super::{interfaces, types, PluginVersion, FAMILY};
use crate::runner::result::{
    CheckFailure, CheckKind, Direction, Outcome, RunResult, ScenarioResult, StepResult,
    TranscriptEntry,
};
use regex::Regex;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requirement ids, in report order, with the rule each one checks.
pub const REQUIREMENTS: &[(&str, &str)] = &[
    ("register.handshake", "Register is answered with the same id, a valid response, the plugin's name, and the agent's protocol version accepted"),
    ("register.metrics", "metrics is a flat [key, description, ...] array: even length, valid unique keys, non-empty descriptions"),
    ("register.interfaces", "interfaces uses only the Exporter (1), Configurator (2) and Runner (4) bits, and at least one"),
    ("validate.options", "Validate accepts the options the agent sends and rejects an unknown option with an error reply"),
    ("terminate.registration", "after Terminate the registration run exits within the deadline"),
    ("configure.options", "Configure (no reply) with good and with bad options leaves the plugin running and answering"),
    ("export.metrics", "Export of each registered metric is answered with the request id and a value or an error"),
    ("export.unknown-key", "Export of an unknown key is answered with an error"),
    ("export.bad-parameters", "Export with too many parameters is answered with an error"),
    ("export.concurrent", "concurrent Exports with distinct ids are all answered, each with its own id"),
    ("terminate.operation", "after Terminate the operation run exits within the deadline"),
    ("register.wrong-version", "Register with a wrong protocol version is answered with an error naming that version"),
    ("log.shape", "every log request has id 0, a severity 0-5 and a message"),
    ("wire.clean", "only type-1 JSON frames, every message recognised, no reply without a request, no stray bytes"),
];

/// Requirements checked in the operation run.
const OPERATION_REQS: [&str; 6] = [
    "configure.options",
    "export.metrics",
    "export.unknown-key",
    "export.bad-parameters",
    "export.concurrent",
    "terminate.operation",
];

/// The protocol version string sent in the negative Register test.
pub const WRONG_VERSION: &str = "0.9.99-zbxconform";
/// A key no plugin registers.
pub const UNKNOWN_KEY: &str = "zbxconform.no.such.key";
/// How many parameters make a "bad parameters" request.
pub const BAD_PARAM_COUNT: usize = 17;

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
        }
    }

    fn host_config(&self) -> HostConfig {
        let mut cfg = HostConfig::new(&self.program, self.version);
        cfg.env = self.env.clone();
        cfg
    }
}

/// The verdict on one requirement.
#[derive(Debug, Clone, PartialEq)]
pub struct RequirementResult {
    pub id: &'static str,
    pub title: &'static str,
    pub outcome: Outcome,
    pub failures: Vec<CheckFailure>,
    /// What was checked, for the report of a passed requirement.
    pub notes: Vec<String>,
    pub transcript: Vec<TranscriptEntry>,
    pub duration: Duration,
}

impl RequirementResult {
    fn new(id: &'static str, title: &'static str) -> RequirementResult {
        RequirementResult {
            id,
            title,
            outcome: Outcome::Passed,
            failures: Vec::new(),
            notes: Vec::new(),
            transcript: Vec::new(),
            duration: Duration::ZERO,
        }
    }

    pub fn passed(&self) -> bool {
        self.outcome.is_pass()
    }

    fn fail(
        &mut self,
        check: CheckKind,
        expected: &str,
        detail: impl Into<String>,
        received: Option<String>,
    ) {
        self.failures.push(CheckFailure {
            check,
            expected: expected.to_string(),
            detail: detail.into(),
            path: None,
            received,
        });
        if !matches!(self.outcome, Outcome::Unreachable(_)) {
            self.outcome = Outcome::Failed;
        }
    }

    fn skip(&mut self, reason: impl Into<String>) {
        if self.failures.is_empty() {
            self.outcome = Outcome::Skipped(reason.into());
        }
    }

    fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Record a host error as this requirement's failure.
    fn host_error(&mut self, expected: &str, e: &HostError) {
        let check = match e {
            HostError::Timeout { .. } => CheckKind::Timeout,
            HostError::Closed { .. } => CheckKind::Close,
            HostError::Broken(_) => CheckKind::Frame,
            HostError::Start { .. } => CheckKind::Connect,
        };
        self.fail(check, expected, e.to_string(), None);
    }

    /// Schema violations of a received message are failures of this requirement.
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
    pub requirements: Vec<RequirementResult>,
    /// stdout/stderr/exit of each run, labelled (attached to failed JUnit cases).
    pub plugin_output: String,
    /// The plugin could not be started at all (exit code 3).
    pub unreachable: Option<String>,
    pub duration: Duration,
}

impl Certification {
    /// 0 all passed, 1 a requirement failed, 3 the plugin could not be started.
    pub fn exit_code(&self) -> i32 {
        if self.unreachable.is_some() {
            3
        } else if self.requirements.iter().all(RequirementResult::passed) {
            0
        } else {
            1
        }
    }

    pub fn requirement(&self, id: &str) -> Option<&RequirementResult> {
        self.requirements.iter().find(|r| r.id == id)
    }

    /// Ids of the requirements that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.requirements
            .iter()
            .filter(|r| !r.passed())
            .map(|r| r.id)
            .collect()
    }

    /// The result in the runner's shape: one scenario per requirement, family `plugin`,
    /// so the JUnit and JSON reporters apply unchanged.
    pub fn to_run_result(&self) -> RunResult {
        let scenarios = self
            .requirements
            .iter()
            .map(|r| {
                let mut transcript = r.transcript.clone();
                for n in &r.notes {
                    transcript.push(TranscriptEntry {
                        at: Duration::ZERO,
                        direction: Direction::Note,
                        kind: None,
                        flags: None,
                        body: n.clone(),
                    });
                }
                ScenarioResult {
                    name: format!("{}: {}", r.id, r.title),
                    file: self.program.clone(),
                    family: FAMILY.to_string(),
                    version: self.version.catalog_version().to_string(),
                    plays: "agent".to_string(),
                    tags: vec!["certify-plugin".to_string()],
                    peer: self.program.display().to_string(),
                    outcome: r.outcome.clone(),
                    steps: vec![StepResult {
                        sent: None,
                        index: "1".to_string(),
                        action: "certify".to_string(),
                        name: Some(r.id.to_string()),
                        line: 0,
                        outcome: r.outcome.clone(),
                        failures: r.failures.clone(),
                        duration: r.duration,
                    }],
                    transcript,
                    peer_log: (!r.passed() && !self.plugin_output.is_empty())
                        .then(|| self.plugin_output.clone()),
                    properties: Default::default(),
                    duration: r.duration,
                }
            })
            .collect();
        RunResult {
            scenarios,
            duration: self.duration,
        }
    }

    /// The human report: one line per requirement, reasons under failures.
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
        let width = REQUIREMENTS
            .iter()
            .map(|(id, _)| id.len())
            .max()
            .unwrap_or(0);
        let mut hidden = 0;
        for r in &self.requirements {
            if self.unreachable.is_some() && matches!(r.outcome, Outcome::Skipped(_)) {
                hidden += 1;
                continue;
            }
            let word = match &r.outcome {
                Outcome::Passed => "PASS",
                Outcome::Failed => "FAIL",
                Outcome::Skipped(_) => "SKIP",
                Outcome::Unreachable(_) => "UNREACH",
                Outcome::Error(_) => "ERROR",
            };
            let _ = writeln!(out, "  {word:<7} {:<width$}  {}", r.id, r.title);
            match &r.outcome {
                Outcome::Skipped(why) | Outcome::Unreachable(why) | Outcome::Error(why) => {
                    let _ = writeln!(out, "          {:width$}  - {why}", "");
                }
                _ => {}
            }
            for f in &r.failures {
                let _ = writeln!(
                    out,
                    "          {:width$}  - [{}] {}",
                    "",
                    f.check.as_str(),
                    one_line(&f.detail)
                );
                if let Some(rec) = &f.received {
                    let _ = writeln!(
                        out,
                        "          {:width$}    received: {}",
                        "",
                        truncate(rec, 300)
                    );
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
            |p: fn(&Outcome) -> bool| self.requirements.iter().filter(|r| p(&r.outcome)).count();
        let _ = writeln!(
            out,
            "{} passed, {} failed, {} skipped in {:.2}s",
            count(|o| matches!(o, Outcome::Passed)),
            count(|o| matches!(
                o,
                Outcome::Failed | Outcome::Unreachable(_) | Outcome::Error(_)
            )),
            count(|o| matches!(o, Outcome::Skipped(_))),
            self.duration.as_secs_f64()
        );
        out
    }
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
    keys: Vec<String>,
    interfaces: u64,
}

/// Run the whole suite. Never panics on plugin behaviour; every problem becomes a
/// requirement failure.
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
    reqs: Vec<RequirementResult>,
    sessions: Vec<(String, SessionLog)>,
    unreachable: Option<String>,
}

impl<'a> Suite<'a> {
    fn new(opts: &'a CertifyOptions, checker: Arc<MessageChecker>) -> Suite<'a> {
        Suite {
            cfg: opts.host_config(),
            opts,
            checker,
            reqs: REQUIREMENTS
                .iter()
                .map(|(id, title)| RequirementResult::new(id, title))
                .collect(),
            sessions: Vec::new(),
            unreachable: None,
        }
    }

    fn req(&mut self, id: &str) -> &mut RequirementResult {
        let idx = self.reqs.iter().position(|r| r.id == id).unwrap_or(0);
        &mut self.reqs[idx]
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
    fn close(&mut self, id: &str, host: &PluginHost, since: (Instant, usize)) {
        let r = self.req(id);
        r.duration += since.0.elapsed();
        r.transcript.extend(host.transcript_since(since.1));
    }

    fn mark(host: &PluginHost) -> (Instant, usize) {
        (Instant::now(), host.transcript_len())
    }

    async fn launch(&mut self, initial: bool) -> Result<PluginHost, HostError> {
        PluginHost::launch(&self.cfg, Arc::clone(&self.checker), initial).await
    }

    async fn end_session(&mut self, label: &str, host: PluginHost) {
        let log = host.finish().await;
        self.sessions.push((label.to_string(), log));
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
                self.req("register.handshake").outcome = Outcome::Unreachable(why);
                return None;
            }
        };
        let mark = Self::mark(&host);
        let version = self.opts.version.wire_version();
        let res = host
            .request(
                json!({"type": types::REGISTER_REQUEST, "version": version}),
                self.opts.request_timeout,
            )
            .await;
        let reg = self.judge_register(res);
        self.close("register.handshake", &host, mark);

        if let Some(reg) = &reg {
            let mark = Self::mark(&host);
            if reg.interfaces & interfaces::CONFIGURATOR != 0 {
                self.validate_checks(&mut host, reg).await;
            } else {
                self.req("validate.options")
                    .skip("the plugin does not implement Configurator (interfaces bit 2)");
            }
            self.close("validate.options", &host, mark);
        } else {
            self.req("validate.options")
                .skip("blocked: no usable Register response");
        }

        let mark = Self::mark(&host);
        self.terminate_check(&mut host, "terminate.registration")
            .await;
        self.close("terminate.registration", &host, mark);
        self.end_session("registration run", host).await;
        reg
    }

    /// Judge the Register response; `Some` when later steps can use it.
    fn judge_register(&mut self, res: Result<Received, HostError>) -> Option<Registration> {
        let expected_name = self.opts.name.clone();
        let r = match res {
            Ok(r) => r,
            Err(e) => {
                self.req("register.handshake")
                    .host_error("a Register response with the request's id", &e);
                self.req("register.metrics")
                    .skip("blocked: no Register response");
                self.req("register.interfaces")
                    .skip("blocked: no Register response");
                return None;
            }
        };
        let h = self.req("register.handshake");
        // Problems inside metrics and interfaces are judged by their own requirements.
        let mut own = r.clone();
        own.problems
            .retain(|p| !p.contains("at /metrics") && !p.contains("at /interfaces"));
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

        let keys = self.judge_metrics(&r);
        let ifaces = self.judge_interfaces(&r);
        if r.error().is_some() || name.is_empty() {
            return None;
        }
        Some(Registration {
            name,
            keys: keys.unwrap_or_default(),
            interfaces: ifaces.unwrap_or(0),
        })
    }

    fn judge_metrics(&mut self, r: &Received) -> Option<Vec<String>> {
        let m = self.req("register.metrics");
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
        let key_re = Regex::new(r"^[A-Za-z0-9._-]+$").ok();
        let mut keys = Vec::new();
        let mut seen = BTreeSet::new();
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
            if !seen.insert(key) {
                m.fail(
                    CheckKind::Match,
                    "unique keys",
                    format!("key {key:?} is listed twice"),
                    Some(r.render()),
                );
            }
            match pair.get(1) {
                Some(d) if !d.trim().is_empty() => {}
                Some(_) => m.fail(
                    CheckKind::Match,
                    "a non-empty description after each key",
                    format!("key {key:?} has an empty description"),
                    Some(r.render()),
                ),
                None => {}
            }
            keys.push(key.to_string());
        }
        if m.failures.is_empty() {
            m.note(format!("metrics: {}", keys.join(", ")));
        }
        Some(keys)
    }

    fn judge_interfaces(&mut self, r: &Received) -> Option<u64> {
        let i = self.req("register.interfaces");
        if r.error().is_some() {
            i.skip("the plugin answered Register with an error");
            return None;
        }
        let Some(v) = r.body.get("interfaces") else {
            i.fail(
                CheckKind::Schema,
                "an interfaces bitmask",
                "interfaces is missing (0: no interface)",
                Some(r.render()),
            );
            return None;
        };
        let Some(bits) = v.as_u64() else {
            i.fail(
                CheckKind::Schema,
                "an unsigned integer bitmask",
                format!("got {v}"),
                Some(r.render()),
            );
            return None;
        };
        if bits & !interfaces::ALL != 0 {
            i.fail(
                CheckKind::Match,
                "only bits 1 (Exporter), 2 (Configurator), 4 (Runner)",
                format!(
                    "interfaces = {bits} sets unknown bits {:#x}",
                    bits & !interfaces::ALL
                ),
                Some(r.render()),
            );
        }
        if bits == 0 {
            i.fail(
                CheckKind::Match,
                "at least one interface bit",
                "interfaces = 0",
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
        if i.failures.is_empty() {
            i.note(format!("interfaces = {bits} ({})", names.join(", ")));
        }
        Some(bits & interfaces::ALL)
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
        let v = self.req("validate.options");
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
        let res = host
            .request(
                json!({"type": types::VALIDATE_REQUEST, "private_options": bad}),
                timeout,
            )
            .await;
        let v = self.req("validate.options");
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

    async fn terminate_check(&mut self, host: &mut PluginHost, id: &str) {
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
        let exporter = reg.interfaces & interfaces::EXPORTER != 0;
        let configurator = reg.interfaces & interfaces::CONFIGURATOR != 0;
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

        if exporter && !reg.keys.is_empty() {
            host = self.export_metrics(host, reg).await;
            host = self
                .export_expect_error(host, reg, "export.unknown-key", UNKNOWN_KEY, vec![])
                .await;
            let bad_params: Vec<String> = (0..BAD_PARAM_COUNT)
                .map(|i| format!("zbxconform-bad-{i}"))
                .collect();
            let key = reg.keys[0].clone();
            host = self
                .export_expect_error(host, reg, "export.bad-parameters", &key, bad_params)
                .await;
            host = self.export_concurrent(host, reg).await;
        } else {
            let why = if exporter {
                "the plugin registered no metric"
            } else {
                "the plugin does not implement Exporter (interfaces bit 1)"
            };
            for id in [
                "export.metrics",
                "export.unknown-key",
                "export.bad-parameters",
                "export.concurrent",
            ] {
                self.req(id).skip(why);
            }
        }

        if configurator {
            host = self.configure_checks(host, reg).await;
        } else {
            self.req("configure.options")
                .skip("the plugin does not implement Configurator (interfaces bit 2)");
        }

        let Some(mut host) = self.ensure_alive(host, reg, "terminate.operation").await else {
            return;
        };
        let mark = Self::mark(&host);
        self.terminate_check(&mut host, "terminate.operation").await;
        self.close("terminate.operation", &host, mark);
        self.end_session("operation run", host).await;
    }

    /// Launch the operation run and send Configure/Start as the agent does.
    async fn start_operation(&mut self, reg: &Registration) -> Result<PluginHost, HostError> {
        let mut host = self.launch(false).await?;
        if reg.interfaces & interfaces::CONFIGURATOR != 0 {
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

    /// If the plugin died, start it again (noting it) so the next check is independent;
    /// `None` (and a failure of `id`) when it cannot be started.
    async fn ensure_alive(
        &mut self,
        host: Option<PluginHost>,
        reg: &Registration,
        id: &str,
    ) -> Option<PluginHost> {
        if let Some(mut h) = host {
            if h.is_running() && !h.is_broken() {
                return Some(h);
            }
            self.end_session("operation run (ended early)", h).await;
        }
        match self.start_operation(reg).await {
            Ok(h) => {
                self.req(id)
                    .note("the plugin had exited or its stream was unusable; started it again for this check");
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
        let id = "export.metrics";
        let mut host = host;
        for key in &reg.keys {
            let mut h = self.ensure_alive(host, reg, id).await?;
            let mark = Self::mark(&h);
            let res = h
                .request(
                    self.opts
                        .version
                        .export_request(key, self.opts.request_timeout),
                    self.opts.request_timeout,
                )
                .await;
            let r = self.req(id);
            match res {
                Err(e) => r.host_error(&format!("an Export response for {key}"), &e),
                Ok(resp) => {
                    if r.schema(&resp) {
                        match resp.error() {
                            Some(err) => r.note(format!("{key}: error {err:?}")),
                            None => r.note(format!(
                                "{key}: value {}",
                                resp.body
                                    .get("value")
                                    .map_or("(none)".to_string(), |v| truncate(&v.to_string(), 80))
                            )),
                        }
                    }
                }
            }
            self.close(id, &h, mark);
            host = Some(h);
        }
        host
    }

    async fn export_expect_error(
        &mut self,
        host: Option<PluginHost>,
        reg: &Registration,
        id: &'static str,
        key: &str,
        params: Vec<String>,
    ) -> Option<PluginHost> {
        let mut host = self.ensure_alive(host, reg, id).await?;
        let mark = Self::mark(&host);
        let mut msg = self
            .opts
            .version
            .export_request(key, self.opts.request_timeout);
        if !params.is_empty() {
            msg["parameters"] = json!(params);
        }
        let res = host.request(msg, self.opts.request_timeout).await;
        let what = if params.is_empty() {
            format!("an error reply for key {key:?}")
        } else {
            format!("an error reply for {key} with {} parameters", params.len())
        };
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
        let id = "export.concurrent";
        let mut host = self.ensure_alive(host, reg, id).await?;
        let mark = Self::mark(&host);
        let n = self.opts.concurrency.max(2);
        let mut sent: Vec<(u32, String)> = Vec::new();
        for i in 0..n {
            let key = reg.keys[i % reg.keys.len()].clone();
            let rid = host.next_id();
            let mut msg = self
                .opts
                .version
                .export_request(&key, self.opts.request_timeout);
            msg["id"] = json!(rid);
            if let Err(e) = host.send(&msg).await {
                self.req(id).host_error("all requests could be sent", &e);
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
        for (rid, e) in &failures {
            r.host_error(&format!("an Export response with id {rid}"), e);
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

    async fn configure_checks(
        &mut self,
        host: Option<PluginHost>,
        reg: &Registration,
    ) -> Option<PluginHost> {
        let id = "configure.options";
        let mut host = self.ensure_alive(host, reg, id).await?;
        let mark = Self::mark(&host);
        // The good Configure was sent at the start of the run; a probe shows the plugin
        // took it. Then a bad one, and another probe.
        let name = self.name_for_options(Some(reg));
        let mut bad = self.opts.options.clone();
        bad.push(unknown_option());
        self.configure_probe(&mut host, reg, "Configure with the agent's options")
            .await;
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
                self.configure_probe(&mut host, reg, "Configure with an unknown option")
                    .await
            }
        }
        self.close(id, &host, mark);
        Some(host)
    }

    /// After a Configure the plugin must still answer: a Validate of the agent's own
    /// options is the probe (not an Export, so an export defect is not blamed on
    /// Configure; Configurators implement Validate).
    async fn configure_probe(&mut self, host: &mut PluginHost, reg: &Registration, after: &str) {
        let id = "configure.options";
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
        let id = "register.wrong-version";
        let mut host = match self.launch(true).await {
            Ok(h) => h,
            Err(e) => {
                self.req(id)
                    .host_error("the plugin starts a third time", &e);
                return;
            }
        };
        let mark = Self::mark(&host);
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
                    Some(err) if !err.contains(WRONG_VERSION) => r.fail(
                        CheckKind::Match,
                        &format!("the error names the agent's version {WRONG_VERSION:?}"),
                        format!("error {err:?} does not name it"),
                        Some(resp.render()),
                    ),
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

    fn judge_logs(&mut self) {
        let logs: Vec<(String, Received)> = self
            .sessions
            .iter()
            .flat_map(|(label, s)| s.logs.iter().map(move |l| (label.clone(), l.clone())))
            .collect();
        let r = self.req("log.shape");
        if logs.is_empty() {
            r.skip("the plugin sent no log request");
            return;
        }
        for (label, l) in &logs {
            for p in &l.problems {
                r.fail(
                    CheckKind::Schema,
                    "a valid log request",
                    format!("{label}: {p}"),
                    Some(l.render()),
                );
            }
        }
        if r.failures.is_empty() {
            r.note(format!("{} log requests, all valid", logs.len()));
        }
    }

    fn judge_wire(&mut self) {
        let problems: Vec<(String, super::host::WireProblem)> = self
            .sessions
            .iter()
            .flat_map(|(label, s)| s.problems.iter().map(move |p| (label.clone(), p.clone())))
            .collect();
        let r = self.req("wire.clean");
        for (label, p) in problems {
            r.fail(
                CheckKind::Frame,
                "clean protocol traffic",
                format!("{label}: {}", p.detail),
                p.received,
            );
        }
        if r.failures.is_empty() {
            r.note("no wire problem in any run");
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
            version: self.opts.version,
            requirements: self.reqs,
            plugin_output,
            unreachable: self.unreachable,
            duration: started.elapsed(),
        }
    }
}

//! Executing steps: `exchange` (we connect), `accept` (the peer connects), `repeat`,
//! `sleep`. Each leaf step yields one `StepResult`; the first failing step ends the
//! scenario (later steps usually depend on what earlier ones captured).

use super::context::ScenarioContext;
use super::expect::{
    check_received, describe_expect, evaluate, evaluate_with_payload, within, ZbxdConnection,
};
use super::result::{CheckFailure, CheckKind, Outcome, StepResult};
use super::send::{build, Outgoing};
use super::transcript::{render_body, render_bytes};
use crate::catalog::Body;
use crate::frame::ZbxdFrame;
use crate::scenario::model::{Accept, Action, Exchange, Others, Spanned, Step};
use crate::scenario::version_matches;
use crate::transport::tls::{self, TlsConfig, TlsInfo};
use crate::transport::TransportError;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// The failure of an `accept` that saw nothing matching in time.
fn accept_timeout(acc: &Accept, wait: Duration, skipped: u32) -> StepError {
    let also = if skipped > 0 {
        format!(" ({skipped} other connections were skipped)")
    } else {
        String::new()
    };
    StepError::Failed(vec![CheckFailure {
        check: CheckKind::Timeout,
        expected: format!(
            "the peer connects and sends {}",
            describe_expect(&acc.expect)
        ),
        detail: format!("nothing matching arrived within {wait:?}{also}"),
        path: None,
        received: None,
    }])
}

/// Whether every failure is a `match` failure, or a `capture` of something the message
/// does not carry yet (what `retry` tries again).
fn only_match(failures: &[CheckFailure]) -> bool {
    !failures.is_empty()
        && failures
            .iter()
            .all(|f| matches!(f.check, CheckKind::Match | CheckKind::Capture))
}

/// ` (attempt N)` from the second attempt of a retried step on.
fn attempt_label(attempt: u32) -> String {
    if attempt > 1 {
        format!(" (attempt {attempt})")
    } else {
        String::new()
    }
}

/// A failure detail cut to one short line for a transcript note.
fn shorten(detail: &str) -> String {
    const MAX: usize = 160;
    let line = detail.lines().next().unwrap_or("");
    if line.chars().count() > MAX {
        format!("{}…", line.chars().take(MAX).collect::<String>())
    } else {
        line.to_string()
    }
}

/// A connection that could not be set up as the step's TLS settings say: a TLS
/// failure (handshake, certificate, a type not accepted) fails the `tls` check; a peer
/// that sent nothing in time fails `timeout`; anything else fails `connect`.
fn tls_failure(e: TransportError, expected: &str) -> StepError {
    let check = match e {
        TransportError::Tls { .. } | TransportError::NotAllowed { .. } => CheckKind::Tls,
        TransportError::Timeout { .. } => CheckKind::Timeout,
        _ => CheckKind::Connect,
    };
    StepError::Failed(vec![CheckFailure::new(check, expected, e.to_string())])
}

/// "a connection of an accepted type (psk, cert)", for an accept step's TLS failure.
fn accepted_types(tls: &TlsConfig) -> String {
    let list: Vec<&str> = tls.accept.iter().map(|m| m.as_str()).collect();
    format!("a connection of an accepted type ({})", list.join(", "))
}

/// How long to wait for a TCP connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a write may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a step did not pass: checks failed, or the scenario/environment is at fault.
enum StepError {
    Failed(Vec<CheckFailure>),
    Scenario(String),
    Unreachable(String),
}

impl From<Vec<CheckFailure>> for StepError {
    fn from(f: Vec<CheckFailure>) -> Self {
        StepError::Failed(f)
    }
}

/// Runs the steps of one scenario.
pub struct StepRunner<'a> {
    pub ctx: &'a mut ScenarioContext,
    pub listener: Option<&'a TcpListener>,
    pub results: Vec<StepResult>,
    /// The last message written in the current step (rendered, redacted): reported with
    /// a failure as what the peer's answer answers.
    pub last_sent: Option<String>,
}

impl StepRunner<'_> {
    /// Run `steps`; returns false when a step did not pass (stop the scenario).
    pub async fn run_steps(&mut self, steps: &[Spanned<Step>], prefix: &str) -> bool {
        for (i, spanned) in steps.iter().enumerate() {
            let index = format!("{prefix}{}", i + 1);
            if !Box::pin(self.run_step(spanned, &index)).await {
                return false;
            }
        }
        true
    }

    /// Run one step (or its `repeat` block) and record its result; `false` stops the
    /// scenario.
    async fn run_step(&mut self, spanned: &Spanned<Step>, index: &str) -> bool {
        let step = &spanned.value;
        let line = spanned.referenced.line();
        let start = Instant::now();
        self.last_sent = None;
        let mut result = StepResult {
            sent: None,
            index: index.to_string(),
            action: step.action_name().to_string(),
            name: step.name.clone(),
            requirement: step.requirements(),
            line,
            outcome: Outcome::Passed,
            failures: Vec::new(),
            duration: Duration::ZERO,
        };
        match self.skipped_by_when(step, line) {
            Ok(None) => {}
            Ok(Some(reason)) => {
                result.outcome = Outcome::Skipped(reason);
                self.results.push(result);
                return true;
            }
            Err(e) => {
                result.outcome = Outcome::Error(e);
                self.results.push(result);
                return false;
            }
        }
        if let Some(rep) = &step.repeat {
            for n in 1..=rep.times {
                let prefix = format!("{index}#{n}.");
                if !Box::pin(self.run_steps(&rep.steps, &prefix)).await {
                    return false;
                }
            }
            return true;
        }
        // Entries made while this step runs carry its index, so a report can show the
        // step's failures on the message they concern.
        self.ctx.transcript.set_step(Some(index));
        let outcome = if step.exchange.is_some() || step.accept.is_some() {
            let (what, limit) = self.awaited(step, index);
            let progress = self.ctx.progress.clone();
            progress
                .watch(&what, limit, self.attempts(step, index, line))
                .await
        } else if let Some(d) = &step.sleep {
            tokio::time::sleep(d.0).await;
            Ok(())
        } else {
            Err(StepError::Scenario(format!(
                "line {line}: step has no action"
            )))
        };
        self.ctx.transcript.set_step(None);
        result.duration = start.elapsed();
        let passed = outcome.is_ok();
        if let Err(e) = outcome {
            self.record_error(&mut result, e, line);
        }
        self.results.push(result);
        passed
    }

    /// What an `exchange` or `accept` step waits for, and for how long at most (its
    /// retry window, else its expectation's `within`, else the scenario's timeout), for
    /// the "still waiting" lines.
    fn awaited(&self, step: &Step, index: &str) -> (String, Option<Duration>) {
        let expect = match (&step.exchange, &step.accept) {
            (Some(e), _) => e.expect.as_ref(),
            (None, Some(a)) => Some(&a.expect),
            (None, None) => None,
        };
        let what = match (expect, step.accept.is_some()) {
            (Some(e), true) => format!("the peer to connect with {}", describe_expect(e)),
            (Some(e), false) => describe_expect(e),
            (None, _) => "the exchange".to_string(),
        };
        let name = step
            .name
            .as_deref()
            .map_or(String::new(), |n| format!(" {n:?}"));
        let limit = step
            .retry
            .as_ref()
            .map(|r| r.within.0)
            .or_else(|| expect.map(|e| within(self.ctx, e)));
        (
            format!("{what} (step {index}, {}{name})", step.action_name()),
            limit,
        )
    }

    /// Why the step's `when` skips it at this version (`Ok(None)`: it runs), or the
    /// error in a condition that cannot be evaluated.
    fn skipped_by_when(&self, step: &Step, line: u64) -> Result<Option<String>, String> {
        let Some(when) = &step.when else {
            return Ok(None);
        };
        let conds = when.versions();
        let mut any = conds.is_empty();
        for c in &conds {
            any |= version_matches(c, &self.ctx.version)
                .map_err(|e| format!("line {line}: when: {e}"))?;
        }
        if !any {
            return Ok(Some(format!(
                "when {} does not match version {}",
                conds.join(" | "),
                self.ctx.version
            )));
        }
        let types = when.tls.as_ref().map(|t| t.to_vec()).unwrap_or_default();
        let connect = self.ctx.connect_mode.as_str();
        Ok(
            (!types.is_empty() && !types.iter().any(|t| t == connect)).then(|| {
                format!(
                    "when tls {} does not match this run's connection type {connect}",
                    types.join(" | ")
                )
            }),
        )
    }

    /// Put what went wrong into the step's result: failed checks, a scenario that cannot
    /// run as written (exit code 2), or a peer that cannot be reached.
    fn record_error(&self, result: &mut StepResult, error: StepError, line: u64) {
        match error {
            StepError::Failed(f) => {
                // A scenario that cannot be checked as written (a bad snapshot name, a
                // variable that does not expand) is the scenario's fault: exit code 2.
                result.outcome = match f.iter().find(|x| x.check == CheckKind::Scenario) {
                    Some(x) => Outcome::Error(format!("line {line}: {}: {}", x.expected, x.detail)),
                    None => Outcome::Failed,
                };
                result.failures = f;
                result.sent = self.last_sent.clone();
            }
            StepError::Scenario(e) => {
                result.outcome = Outcome::Error(e.clone());
                result.failures =
                    vec![CheckFailure::new(CheckKind::Scenario, "a runnable step", e)];
            }
            StepError::Unreachable(e) => {
                result.outcome = Outcome::Unreachable(e.clone());
                result.failures =
                    vec![CheckFailure::new(CheckKind::Connect, "a reachable peer", e)];
            }
        }
    }

    /// Run an `exchange` or `accept` step, again and again under `retry` while only its
    /// `match` (and `capture`) checks fail (see [`crate::scenario::model::Retry`]).
    async fn attempts(&mut self, step: &Step, index: &str, line: u64) -> Result<(), StepError> {
        let tls = self.tls_config(step, line)?;
        let started = Instant::now();
        let retry = step.retry;
        let mut attempt = 1u32;
        loop {
            let out = if let Some(ex) = &step.exchange {
                self.ctx.transcript.note(format!(
                    "step {index} (exchange) line {line}{}",
                    attempt_label(attempt)
                ));
                self.exchange(ex, &tls, index).await
            } else if let Some(acc) = &step.accept {
                self.ctx.transcript.note(format!(
                    "step {index} (accept) line {line}{}",
                    attempt_label(attempt)
                ));
                self.accept(acc, retry.is_some(), &tls, index).await
            } else {
                return Err(StepError::Scenario(format!(
                    "line {line}: step has no action"
                )));
            };
            let Some(r) = retry else { return out };
            let Err(StepError::Failed(mut failures)) = out else {
                return out;
            };
            let matched_only = only_match(&failures);
            let spent = started.elapsed();
            if matched_only && spent + r.every() < r.within.0 {
                let first = &failures[0];
                self.ctx.transcript.note(format!(
                    "attempt {attempt}: {} {} — {}; retrying in {:?} (retry.within {:?})",
                    first.check.as_str(),
                    first.expected,
                    shorten(&first.detail),
                    r.every(),
                    r.within.0
                ));
                tokio::time::sleep(r.every()).await;
                attempt += 1;
                continue;
            }
            if matched_only {
                if let Some(f) = failures.first_mut() {
                    f.detail = format!(
                        "{} (last of {attempt} attempts in {:.1} s, retry.within {:?})",
                        f.detail,
                        spent.as_secs_f64(),
                        r.within.0
                    );
                }
            }
            return Err(StepError::Failed(failures));
        }
    }

    /// The step's TLS configuration: the scenario's settings and the run's, the step's
    /// own over them, variables expanded, files read. Plaintext when nothing is set. A
    /// setting that cannot be used is the scenario's fault (exit code 2). The PSK joins
    /// the values scrubbed from every report.
    fn tls_config(&mut self, step: &Step, line: u64) -> Result<TlsConfig, StepError> {
        let mut settings = match &step.tls {
            Some(t) => self.ctx.tls.overlaid(&t.settings()),
            None => self.ctx.tls.clone(),
        };
        if settings.is_empty() {
            return Ok(TlsConfig::plaintext());
        }
        for (field, value) in settings.fields_mut() {
            *value = self
                .ctx
                .vars
                .expand_str(value)
                .map_err(|e| StepError::Scenario(format!("line {line}: tls {field}: {e}")))?;
        }
        let cfg = TlsConfig::load(&settings, self.ctx.scenario_dir.as_deref())
            .map_err(|e| StepError::Scenario(format!("line {line}: {e}")))?;
        if let Some(psk) = &cfg.psk {
            self.ctx
                .secrets
                .add_value(&serde_json::Value::String(psk.hex().to_string()));
        }
        Ok(cfg)
    }

    /// Note what TLS a connection speaks, for the transcript and the report.
    fn note_tls(&mut self, index: &str, tls: Option<TlsInfo>) {
        if let Some(info) = tls {
            self.ctx.transcript.note(format!("TLS: {info}"));
            self.ctx.tls_seen.push((index.to_string(), info));
        }
    }

    async fn exchange(
        &mut self,
        ex: &Exchange,
        tls: &TlsConfig,
        index: &str,
    ) -> Result<(), StepError> {
        let addr = match &ex.connect {
            Some(a) => self.ctx.vars.expand_str(a).map_err(|e| StepError::Scenario(e.to_string()))?,
            None => self.ctx.peer_addr.clone().ok_or_else(|| {
                StepError::Scenario(
                    "no peer address: give --peer ADDR, set the scenario's peer.address variable, or name a peer.reference".into(),
                )
            })?,
        };
        let out = build(self.ctx, &ex.send).map_err(StepError::Scenario)?;
        let refusal = ex.expect.as_ref().and_then(|e| e.refused);
        if refusal.is_some() && tls.connect == tls::TlsMode::Unencrypted {
            return Err(StepError::Scenario(
                "`expect: { refused: tls }` needs an encrypted connection: set the step's tls.connect (psk or cert), the scenario's, or --tls-connect".into(),
            ));
        }
        let stream = crate::transport::connect_tcp(&addr, CONNECT_TIMEOUT)
            .await
            .map_err(|e| StepError::Unreachable(e.to_string()))?;
        self.ctx.transcript.note(format!("connected to {addr}"));
        if refusal.is_some() {
            let wait = ex
                .expect
                .as_ref()
                .map(|e| within(self.ctx, e))
                .unwrap_or(CONNECT_TIMEOUT);
            return self
                .expect_tls_refusal(stream, tls, &addr, &out, wait, index)
                .await;
        }
        let secured = tls::connect(stream, tls, &addr, CONNECT_TIMEOUT)
            .await
            .map_err(|e| tls_failure(e, &format!("a TLS connection ({})", tls.connect)))?;
        self.note_tls(index, secured.tls);
        let mut conn = ZbxdConnection::new(secured.stream, self.ctx.codec(), addr.clone());
        self.write(&mut conn, &out).await?;
        if let Some(exp) = &ex.expect {
            let f = evaluate(self.ctx, &mut conn, exp).await;
            if !f.is_empty() {
                return Err(f.into());
            }
        }
        self.then(&mut conn, &ex.then).await?;
        conn.shutdown().await;
        Ok(())
    }

    /// `expect: { refused: tls }`: the step passes when the TLS handshake fails, or when
    /// the peer ends the connection right after it without answering: with a TLS alert
    /// (TLS 1.3 refuses a client certificate only after the client's side of the
    /// handshake is done) or without one (Zabbix verifies the certificate chain, issuer
    /// and subject after the handshake and then just closes). A peer that answers, or
    /// stays silent, has not refused.
    async fn expect_tls_refusal(
        &mut self,
        stream: tokio::net::TcpStream,
        tls: &TlsConfig,
        addr: &str,
        out: &Outgoing,
        wait: Duration,
        index: &str,
    ) -> Result<(), StepError> {
        let expected = format!(
            "the peer refuses the TLS handshake ({} connection)",
            tls.connect
        );
        let fail = |detail: String| {
            StepError::Failed(vec![CheckFailure::new(
                CheckKind::Tls,
                expected.clone(),
                detail,
            )])
        };
        let secured = match tls::connect(stream, tls, addr, wait).await {
            Err(TransportError::Tls { reason, .. }) => {
                self.ctx
                    .transcript
                    .note(format!("TLS refused (as expected): {reason}"));
                return Ok(());
            }
            Err(e) => return Err(fail(e.to_string())),
            Ok(s) => s,
        };
        let info = secured.tls.clone();
        self.note_tls(index, secured.tls);
        let shown = info.map(|i| format!(" ({i})")).unwrap_or_default();
        let mut conn = ZbxdConnection::new(secured.stream, self.ctx.codec(), addr.to_string());
        let read = match self.write(&mut conn, out).await {
            Ok(()) => conn.read_frame(wait).await.map(|f| f.is_some()),
            Err(StepError::Failed(f)) => Err(TransportError::Io(
                f.first().map(|x| x.detail.clone()).unwrap_or_default(),
            )),
            Err(e) => return Err(e),
        };
        conn.shutdown().await;
        match read {
            // An alert from the peer (see `tls_io_error` of the transport).
            Err(TransportError::Io(e)) if e.contains("TLS:") => {
                self.ctx.transcript.note(format!(
                    "TLS refused after the handshake (as expected): {e}"
                ));
                Ok(())
            }
            Ok(true) => Err(fail(format!(
                "the TLS handshake succeeded{shown} and the peer answered"
            ))),
            // Zabbix checks a certificate's chain, issuer and subject after the
            // handshake and closes without a word when they do not fit.
            Ok(false) => {
                self.ctx.transcript.note(format!(
                    "TLS refused after the handshake{shown} (as expected): the peer closed without answering"
                ));
                Ok(())
            }
            Err(e) => Err(fail(format!(
                "the TLS handshake succeeded{shown}; then: {e}"
            ))),
        }
    }

    /// Wait for the peer to connect and check its message. With `retrying`, a message
    /// whose only failures are `match` failures still gets the step's reply before the
    /// step fails (the caller tries again).
    async fn accept(
        &mut self,
        acc: &Accept,
        retrying: bool,
        tls: &TlsConfig,
        index: &str,
    ) -> Result<(), StepError> {
        // A step-specific listener, or the scenario's.
        let own;
        let listener = match &acc.listen {
            Some(a) => {
                let a = self
                    .ctx
                    .vars
                    .expand_str(a)
                    .map_err(|e| StepError::Scenario(e.to_string()))?;
                own = crate::transport::bind_listener(&a)
                    .await
                    .map_err(|e| StepError::Unreachable(e.to_string()))?;
                &own
            }
            None => self.listener.ok_or_else(|| {
                StepError::Scenario("accept step without a listener (set `listen:`)".into())
            })?,
        };
        let wait = within(self.ctx, &acc.expect);
        let deadline = tokio::time::Instant::now() + wait;
        let expects_message = acc.expect.closes != Some(true) && acc.expect.silent.is_none();

        let (mut conn, received_text, failures) = if acc.others.skips() && expects_message {
            let (mut conn, frame, body) = self
                .accept_skipping(listener, acc, deadline, tls, index)
                .await?;
            let f = check_received(self.ctx, conn.leftover(), &frame, &body, &acc.expect);
            let answer_anyway = retrying && only_match(&f);
            if !f.is_empty() && !answer_anyway {
                conn.shutdown().await;
                return Err(f.into());
            }
            (conn, super::expect::payload_key(&frame), f)
        } else {
            let (stream, from) = match tokio::time::timeout_at(deadline, listener.accept()).await {
                Err(_) => return Err(accept_timeout(acc, wait, 0)),
                Ok(Err(e)) => return Err(StepError::Unreachable(format!("accept failed: {e}"))),
                Ok(Ok(x)) => x,
            };
            self.ctx
                .transcript
                .note(format!("accepted a connection from {from}"));
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let secured = tls::accept(
                stream,
                tls,
                &from.to_string(),
                left.max(Duration::from_millis(1)),
            )
            .await
            .map_err(|e| tls_failure(e, &accepted_types(tls)))?;
            self.note_tls(index, secured.tls);
            let mut conn = ZbxdConnection::new(secured.stream, self.ctx.codec(), from.to_string());
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let mut exp = acc.expect.clone();
            exp.within = Some(crate::scenario::model::DurationSpec(
                remaining.max(Duration::from_millis(1)),
            ));
            let (f, payload) = evaluate_with_payload(self.ctx, &mut conn, &exp).await;
            let answer_anyway = retrying && only_match(&f) && payload.is_some();
            if !f.is_empty() && !answer_anyway {
                return Err(f.into());
            }
            (conn, payload, f)
        };
        let reply = match &received_text {
            Some(text) if !acc.reply_by.is_empty() => {
                let key = text.trim_end_matches([' ', '\r', '\n']);
                match acc.reply_by.get(key).or(acc.reply.as_ref()) {
                    Some(r) => Some(r),
                    None => {
                        return Err(vec![CheckFailure {
                            check: CheckKind::Match,
                            expected: format!(
                                "one of the payloads listed in reply_by ({})",
                                acc.reply_by.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                            detail: format!("got {key:?}, which has no reply"),
                            path: None,
                            received: None,
                        }]
                        .into())
                    }
                }
            }
            _ => acc.reply.as_ref(),
        };
        if let Some(reply) = reply {
            let out = build(self.ctx, reply).map_err(StepError::Scenario)?;
            self.write(&mut conn, &out).await?;
        }
        if !failures.is_empty() {
            // A retried attempt: answered, but the step did not pass.
            conn.shutdown().await;
            return Err(failures.into());
        }
        self.then(&mut conn, &acc.then).await?;
        conn.shutdown().await;
        Ok(())
    }

    /// `others: skip`: accept every connection and read each one's first frame in
    /// parallel, so a silent or slow connection (a port scanner, a half-open peer) does
    /// not hold up the peer's real request. Returns the first connection whose message
    /// is of the expected kind; the others are noted, answered when `answer_others` has a
    /// reply for their kind, and closed.
    async fn accept_skipping(
        &mut self,
        listener: &TcpListener,
        acc: &Accept,
        deadline: tokio::time::Instant,
        tls: &TlsConfig,
        index: &str,
    ) -> Result<(ZbxdConnection<tls::Stream>, ZbxdFrame, Body), StepError> {
        type Read = (
            ZbxdConnection<tls::Stream>,
            Option<TlsInfo>,
            Result<Option<ZbxdFrame>, crate::transport::TransportError>,
        );
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Read>(64);
        let (refused_tx, mut refused_rx) =
            tokio::sync::mpsc::channel::<(String, crate::transport::TransportError)>(64);
        let mut skipped = 0u32;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(accept_timeout(acc, wait, skipped));
                }
                accepted = listener.accept() => {
                    let (stream, from) = accepted
                        .map_err(|e| StepError::Unreachable(format!("accept failed: {e}")))?;
                    self.ctx.transcript.note(format!("accepted a connection from {from}"));
                    let tx = tx.clone();
                    let refused = refused_tx.clone();
                    let codec = self.ctx.codec();
                    let tls = tls.clone();
                    // The handshake runs in the connection's own task too: a slow or
                    // silent connection must not hold up the others.
                    tokio::spawn(async move {
                        let left = || {
                            deadline
                                .saturating_duration_since(tokio::time::Instant::now())
                                .max(Duration::from_millis(1))
                        };
                        let from = from.to_string();
                        match tls::accept(stream, &tls, &from, left()).await {
                            Ok(secured) => {
                                let mut conn = ZbxdConnection::new(secured.stream, codec, from);
                                let read = conn.read_frame(left()).await;
                                let _ = tx.send((conn, secured.tls, read)).await;
                            }
                            Err(e) => {
                                let _ = refused.send((from, e)).await;
                            }
                        }
                    });
                }
                Some((from, e)) = refused_rx.recv() => {
                    self.ctx.transcript.note(format!(
                        "skipped a connection from {from} (others: skip): {e}"
                    ));
                    skipped += 1;
                }
                Some((mut conn, info, read)) = rx.recv() => {
                    self.note_tls(index, info);
                    let why = match read {
                        Ok(Some(frame)) => 'frame: {
                            let body = match super::expect::parse_within_budget(&mut conn, &frame) {
                                Ok(b) => b,
                                Err(f) => break 'frame format!("refused: {}", f.detail),
                            };
                            let recognised = self
                                .ctx
                                .catalog
                                .classify(&self.ctx.family, &self.ctx.version, &self.ctx.peer_side, &body)
                                .map(|k| k.kind.clone());
                            // Without `expect.kind`, the family's own kinds are the side
                            // traffic and the first message the catalog does not know (an
                            // agent poll while an active proxy keeps talking) is the one.
                            let expected = match &acc.expect.kind {
                                Some(_) => self.is_expected_kind(&acc.expect.kind, &body),
                                None => recognised.is_none(),
                            };
                            if expected
                                && (acc.others != Others::SkipUnmatched || self.matches(&acc.expect, &body))
                            {
                                return Ok((conn, frame, body));
                            }
                            let kind = recognised.unwrap_or_else(|| "unrecognised".into());
                            self.ctx
                                .transcript
                                .received(Some(&kind), Some(frame.flags), render_body(&body));
                            if let Some(answer) = acc.answer_others.get(&kind) {
                                let out = build(self.ctx, answer).map_err(StepError::Scenario)?;
                                // Side traffic: a peer gone meanwhile is noted, not a failure.
                                match self.write(&mut conn, &out).await {
                                    Ok(()) => format!("a `{kind}` message, answered (answer_others)"),
                                    Err(_) => format!("a `{kind}` message; the peer left before the answer"),
                                }
                            } else {
                                format!("a `{kind}` message")
                            }
                        }
                        Ok(None) => "closed without sending anything".to_string(),
                        Err(e) => e.to_string(),
                    };
                    self.ctx.transcript.note(format!(
                        "skipped a connection from {} (others: skip): {why}",
                        conn.peer()
                    ));
                    skipped += 1;
                }
            }
        }
    }

    /// Whether `body` passes the step's `match` (for `others: skip-unmatched`); a spec
    /// that cannot be expanded yet matches, so the step's own checks report it.
    fn matches(&self, exp: &crate::scenario::model::Expect, body: &Body) -> bool {
        if exp.matches.is_empty() {
            return true;
        }
        let Some(value) = body.as_json() else {
            return false;
        };
        match self
            .ctx
            .vars
            .expand_value(&serde_json::Value::Object(exp.matches.map().clone()))
        {
            Ok(serde_json::Value::Object(spec)) => {
                crate::check::check_matches(&spec, value).is_empty()
            }
            _ => true,
        }
    }

    /// Whether `body` is of the kind the step waits for (`kind` or `family:kind`),
    /// decided as the expectation's own kind check decides it.
    fn is_expected_kind(&self, want: &Option<String>, body: &crate::catalog::Body) -> bool {
        let Some(want) = want else { return true };
        let r = super::expect::recognise(self.ctx, Some(want), body);
        r.recognised.is_some()
            && crate::check::message::kind(
                &self.ctx.catalog,
                &r.family,
                &self.ctx.version,
                r.want.as_deref(),
                r.recognised.as_deref(),
            )
            .1
            .is_none()
    }

    async fn then<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut ZbxdConnection<S>,
        actions: &[Spanned<Action>],
    ) -> Result<(), StepError> {
        for a in actions {
            let line = a.referenced.line();
            match (&a.value.send, &a.value.expect) {
                (Some(msg), None) => {
                    let out = build(self.ctx, msg)
                        .map_err(|e| StepError::Scenario(format!("line {line}: {e}")))?;
                    self.write(conn, &out).await?;
                }
                (None, Some(exp)) => {
                    let f = evaluate(self.ctx, conn, exp).await;
                    if !f.is_empty() {
                        return Err(f.into());
                    }
                }
                _ => {
                    return Err(StepError::Scenario(format!(
                        "line {line}: a `then` action needs exactly one of send or expect"
                    )))
                }
            }
        }
        Ok(())
    }

    async fn write<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut ZbxdConnection<S>,
        out: &Outgoing,
    ) -> Result<(), StepError> {
        if let Some(Body::Json(v)) = &out.body {
            self.ctx.secrets.collect(v);
        }
        let shown = match &out.body {
            Some(b) => render_body(b),
            None => render_bytes(&out.bytes),
        };
        self.ctx
            .transcript
            .sent(out.kind.as_deref(), out.flags, shown.clone());
        self.last_sent = Some(shown);
        conn.write_all(&out.bytes, WRITE_TIMEOUT)
            .await
            .map_err(|e| {
                StepError::Failed(vec![CheckFailure {
                    check: CheckKind::Connect,
                    expected: "the peer accepts what we send".into(),
                    detail: e.to_string(),
                    path: None,
                    received: None,
                }])
            })
    }
}

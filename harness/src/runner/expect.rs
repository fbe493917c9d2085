//! Evaluating an `expect`: read what the peer does on a connection and run every check
//! the expectation asks for. All outcomes are values (`CheckFailure`s), never panics.

use super::context::ScenarioContext;
use super::result::{CheckFailure, CheckKind};
use super::send::normalise_pointer;
use super::transcript::{render_body, render_bytes};
use crate::catalog::{Body, BodyType};
use crate::check::{check_matches, compare_snapshot, redact_volatile, SnapshotOutcome};
use crate::frame::{ZbxdCodec, ZbxdFrame};
use crate::scenario::model::Expect;
use crate::transport::{Connection, Silence, TransportError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// The connection type every ZBXD step uses.
pub type ZbxdConnection<S> = Connection<S, ZbxdCodec>;

/// What the peer produced for an expectation that reads a message.
pub enum Received {
    Frame(ZbxdFrame, Body),
    /// The peer closed cleanly before sending anything.
    Closed,
}

fn failure(
    check: CheckKind,
    expected: impl Into<String>,
    detail: impl Into<String>,
) -> CheckFailure {
    CheckFailure {
        check,
        expected: expected.into(),
        detail: detail.into(),
        path: None,
        received: None,
    }
}

/// How long to wait for `exp`.
pub fn within(ctx: &ScenarioContext, exp: &Expect) -> Duration {
    exp.within.map(|d| d.0).unwrap_or(ctx.timeout)
}

/// Read one frame for an expectation, turning transport trouble into failures.
pub async fn read_message<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &mut ScenarioContext,
    conn: &mut ZbxdConnection<S>,
    wait: Duration,
) -> Result<Received, CheckFailure> {
    match conn.read_frame(wait).await {
        Ok(Some(frame)) => {
            let body = parse_within_budget(conn, &frame)?;
            Ok(Received::Frame(frame, body))
        }
        Ok(None) => {
            ctx.transcript.note("peer closed the connection");
            Ok(Received::Closed)
        }
        Err(TransportError::Timeout { what, after }) => {
            ctx.transcript.note(format!("timed out after {after:?}"));
            Err(failure(
                CheckKind::Timeout,
                format!("a message within {after:?}"),
                format!("timed out waiting for {what}"),
            ))
        }
        Err(TransportError::Budget(e)) => {
            ctx.transcript.note(format!("frame refused: {e}"));
            Err(failure(
                CheckKind::Budget,
                "a message that fits the memory budget",
                e,
            ))
        }
        Err(TransportError::Frame(e)) => {
            ctx.transcript.note(format!("bad frame: {e}"));
            let mut f = failure(CheckKind::Frame, "a valid ZBXD frame", e);
            if !conn.leftover().is_empty() {
                f.received = Some(render_bytes(conn.leftover()));
            }
            Err(f)
        }
        Err(e) => Err(failure(
            CheckKind::Connect,
            "a readable connection",
            e.to_string(),
        )),
    }
}

/// The body of a received frame, once the frame's share of the run's memory budget has
/// grown by what parsing it costs; a message too large to parse within the budget
/// fails instead of being parsed.
pub fn parse_within_budget<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut ZbxdConnection<S>,
    frame: &ZbxdFrame,
) -> Result<Body, CheckFailure> {
    let cost = crate::frame::budget::parse_cost(&frame.payload, crate::catalog::MAX_TEXT_BODY);
    match conn.codec_mut().charge(cost) {
        Ok(()) => Ok(Body::from_payload(&frame.payload)),
        Err(e) => Err(failure(
            CheckKind::Budget,
            "a message that fits the memory budget",
            format!(
                "a {}-byte payload would take about {cost} bytes parsed, more than the budget leaves: {e}",
                frame.payload.len()
            ),
        )),
    }
}

/// Evaluate `exp` on `conn`. Returns the failures (empty = passed) and, when a message
/// was received, its body (so `accept` can decide what to do with it).
pub async fn evaluate<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &mut ScenarioContext,
    conn: &mut ZbxdConnection<S>,
    exp: &Expect,
) -> Vec<CheckFailure> {
    evaluate_with_payload(ctx, conn, exp).await.0
}

/// [`evaluate`], also returning the received payload as text when a message arrived
/// (an `accept` with `reply_by` chooses its reply by it).
pub async fn evaluate_with_payload<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &mut ScenarioContext,
    conn: &mut ZbxdConnection<S>,
    exp: &Expect,
) -> (Vec<CheckFailure>, Option<String>) {
    let wait = within(ctx, exp);
    if exp.closes == Some(true) {
        return (expect_close(ctx, conn, wait).await, None);
    }
    if let Some(period) = exp.silent {
        return (expect_silent(ctx, conn, period.0).await, None);
    }
    match read_message(ctx, conn, wait).await {
        Err(f) => (vec![f], None),
        Ok(Received::Closed) => (
            vec![failure(
                CheckKind::Close,
                describe_expect(exp),
                "the peer closed the connection without replying",
            )],
            None,
        ),
        Ok(Received::Frame(frame, body)) => (
            check_received(ctx, conn.leftover(), &frame, &body, exp),
            payload_key(&frame),
        ),
    }
}

/// A `match` entry whose pointer ends in a secret key (`/tls_psk`, `/items/0/password`)
/// expects a secret: its literal is remembered so a failure does not print it either.
fn remember_expected_secrets(
    secrets: &mut crate::check::redact::SecretValues,
    spec: &serde_json::Map<String, serde_json::Value>,
) {
    for (key, expected) in spec {
        let last = key.rsplit('/').next().unwrap_or(key);
        if crate::check::redact::SECRET_KEYS
            .iter()
            .any(|k| k.eq_ignore_ascii_case(last))
        {
            match expected {
                serde_json::Value::Object(ops) => ops.values().for_each(|v| secrets.add_value(v)),
                v => secrets.add_value(v),
            }
        }
    }
}

/// Longest payload `reply_by` looks up (its keys are item keys).
const MAX_KEY_PAYLOAD: usize = 64 << 10;

/// The payload as text for a `reply_by` lookup, or `None` when it is too long to be an
/// item key (no copy of a large payload is made).
pub fn payload_key(frame: &ZbxdFrame) -> Option<String> {
    (frame.payload.len() <= MAX_KEY_PAYLOAD)
        .then(|| String::from_utf8_lossy(&frame.payload).into_owned())
}

/// A short description of what an expectation wants, for failure messages.
pub fn describe_expect(exp: &Expect) -> String {
    match (&exp.kind, &exp.text) {
        (Some(k), _) => format!("a `{k}` message"),
        (None, Some(t)) => format!("the text {t:?}"),
        _ => "a message".to_string(),
    }
}

async fn expect_close<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &mut ScenarioContext,
    conn: &mut ZbxdConnection<S>,
    wait: Duration,
) -> Vec<CheckFailure> {
    let expected = "the peer closes the connection without replying";
    match conn.wait_close(wait).await {
        Ok(bytes) if bytes.is_empty() => {
            ctx.transcript
                .note("peer closed the connection (as expected)");
            Vec::new()
        }
        Ok(bytes) => {
            let shown = match ZbxdCodec::default().decode_exact(&bytes) {
                Ok(frame) => render_body(&Body::from_payload(&frame.payload)),
                Err(_) => render_bytes(&bytes),
            };
            ctx.transcript
                .received(None, bytes.get(4).copied(), shown.clone());
            let mut f = failure(
                CheckKind::Close,
                expected,
                format!("the peer sent {} bytes before closing", bytes.len()),
            );
            f.received = Some(shown);
            vec![f]
        }
        Err(TransportError::Timeout { after, .. }) => vec![failure(
            CheckKind::Close,
            expected,
            format!("the connection was still open after {after:?}"),
        )],
        Err(e) => vec![failure(CheckKind::Close, expected, e.to_string())],
    }
}

async fn expect_silent<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &mut ScenarioContext,
    conn: &mut ZbxdConnection<S>,
    period: Duration,
) -> Vec<CheckFailure> {
    match conn.expect_silence(period).await {
        Ok(Silence::Quiet) => {
            ctx.transcript
                .note(format!("peer stayed silent for {period:?}"));
            Vec::new()
        }
        Ok(Silence::Closed) => {
            ctx.transcript.note("peer closed without sending anything");
            Vec::new()
        }
        Err(e) => {
            let mut f = failure(
                CheckKind::Silence,
                format!("no bytes from the peer for {period:?}"),
                e.to_string(),
            );
            if !conn.leftover().is_empty() {
                f.received = Some(render_bytes(conn.leftover()));
            }
            vec![f]
        }
    }
}

/// Run the message checks on a received frame: trailing bytes, frame header, kind,
/// schema, text, match, capture, snapshot. Records the message in the transcript.
pub fn check_received(
    ctx: &mut ScenarioContext,
    leftover: &[u8],
    frame: &ZbxdFrame,
    body: &Body,
    exp: &Expect,
) -> Vec<CheckFailure> {
    if let Body::Json(v) = body {
        ctx.secrets.collect(v);
    }
    let shown = render_body(body);
    let recognised = ctx
        .catalog
        .classify(&ctx.family, &ctx.version, &ctx.peer_side, body)
        .map(|k| k.kind.clone());
    ctx.transcript
        .received(recognised.as_deref(), Some(frame.flags), shown.clone());
    let mut fails = Vec::new();
    let mut push = |mut f: CheckFailure| {
        if f.received.is_none() {
            f.received = Some(shown.clone());
        }
        fails.push(f);
    };

    if !leftover.is_empty() {
        push(failure(
            CheckKind::Frame,
            "exactly one frame",
            format!(
                "{} unexpected bytes after the frame ({})",
                leftover.len(),
                render_bytes(leftover)
            ),
        ));
    }
    if let Some(fe) = &exp.frame {
        if let Some(want) = fe.compressed {
            if frame.is_compressed() != want {
                push(failure(
                    CheckKind::Frame,
                    format!(
                        "a {} frame",
                        if want { "compressed (0x02)" } else { "plain" }
                    ),
                    format!("got flags 0x{:02x}", frame.flags),
                ));
            }
        }
        if let Some(want) = fe.large {
            if frame.is_large() != want {
                push(failure(
                    CheckKind::Frame,
                    format!("large flag (0x04) {}", if want { "set" } else { "clear" }),
                    format!("got flags 0x{:02x}", frame.flags),
                ));
            }
        }
        if let Some(want) = fe.flags {
            if frame.flags != want {
                push(failure(
                    CheckKind::Frame,
                    format!("flags 0x{want:02x}"),
                    format!("got flags 0x{:02x}", frame.flags),
                ));
            }
        }
    }

    // Kind: what we expected versus what the catalog recognises.
    // A kind marked `same_as` has the same body as another kind (e.g. every
    // {"response":"success"} the server sends); recognising the other kind is a match.
    let same_as = exp.kind.as_ref().and_then(|want| {
        ctx.catalog
            .kind(&ctx.family, &ctx.version, want)
            .and_then(|k| k.recognise.same_as.clone())
    });
    let kind_to_validate = match (&exp.kind, &recognised) {
        (Some(want), Some(got)) if want != got && same_as.as_ref() != Some(got) => {
            push(failure(
                CheckKind::Kind,
                format!("a `{want}` message"),
                format!("got a `{got}` message"),
            ));
            Some(want.clone())
        }
        (Some(want), None) => {
            let how = ctx
                .catalog
                .kind(&ctx.family, &ctx.version, want)
                .map(|k| k.recognise.describe())
                .unwrap_or_default();
            push(failure(
                CheckKind::Kind,
                format!("a `{want}` message ({how})"),
                "the message is not recognised as any kind the peer may send".to_string(),
            ));
            Some(want.clone())
        }
        (Some(want), Some(_)) => Some(want.clone()),
        (None, got) => got.clone(),
    };

    if exp.schema != Some(false) {
        if let Some(kind) = &kind_to_validate {
            let body_type = ctx
                .catalog
                .kind(&ctx.family, &ctx.version, kind)
                .map(|k| k.body);
            // The instance a schema sees: the JSON body, or for text kinds the payload
            // as a JSON string (text schemas describe a string).
            // Borrowed: a copy of a large message would double what checking it costs.
            let instance: Option<std::borrow::Cow<'_, serde_json::Value>> = match (body, body_type)
            {
                (Body::Json(v), _) => Some(std::borrow::Cow::Borrowed(v)),
                (Body::Text(t), Some(BodyType::Text)) => Some(std::borrow::Cow::Owned(
                    serde_json::Value::String(t.clone()),
                )),
                (Body::Text(_), Some(BodyType::Json)) => {
                    push(failure(
                        CheckKind::Schema,
                        format!("a JSON `{kind}` message"),
                        "the payload is not valid JSON".to_string(),
                    ));
                    None
                }
                (Body::Text(_), None) => None,
            };
            if let Some(instance) = instance {
                let path = ctx.catalog.schema_path(&ctx.family, &ctx.version, kind);
                match ctx.schemas.validate(&path, &instance) {
                    Ok(violations) => {
                        for v in violations {
                            let mut f = failure(
                                CheckKind::Schema,
                                format!("conforms to the `{kind}` schema ({})", ctx.version),
                                format!("{} (schema keyword at {})", v.message, v.schema_path),
                            );
                            f.path = Some(if v.instance_path.is_empty() {
                                "/".to_string()
                            } else {
                                v.instance_path
                            });
                            push(f);
                        }
                    }
                    Err(e) => push(failure(
                        CheckKind::Scenario,
                        format!("schema for `{kind}`"),
                        e,
                    )),
                }
            }
        }
    }

    if let Some(want) = &exp.text {
        match ctx.vars.expand_str(want) {
            Ok(want) => {
                let same = match body {
                    Body::Text(t) => *t == want,
                    Body::Json(_) => frame.payload == want.as_bytes(),
                };
                if !same {
                    let got = match body {
                        Body::Text(t) => t
                            .chars()
                            .take(super::transcript::MAX_BODY_CHARS)
                            .collect::<String>(),
                        Body::Json(_) => render_body(body),
                    };
                    push(failure(
                        CheckKind::Match,
                        format!("the text {want:?}"),
                        format!("got {got:?}"),
                    ));
                }
            }
            Err(e) => push(failure(CheckKind::Scenario, "expect.text", e.to_string())),
        }
    }

    if !exp.matches.is_empty() || !exp.capture.is_empty() || exp.snapshot.is_some() {
        match body {
            Body::Json(value) => {
                match ctx
                    .vars
                    .expand_value(&serde_json::Value::Object(exp.matches.clone()))
                {
                    Ok(serde_json::Value::Object(spec)) => {
                        remember_expected_secrets(&mut ctx.secrets, &spec);
                        for m in check_matches(&spec, value) {
                            let mut f = failure(
                                CheckKind::Match,
                                format!("{} {}", m.pointer, m.expected),
                                m.detail,
                            );
                            f.path = Some(m.pointer);
                            push(f);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => push(failure(CheckKind::Scenario, "expect.match", e.to_string())),
                }
                for (name, pointer) in &exp.capture {
                    let p = normalise_pointer(pointer);
                    match value.pointer(&p) {
                        Some(v) => ctx.vars.set(name, v.clone()),
                        None => {
                            let mut f = failure(
                                CheckKind::Capture,
                                format!("a value at {p} to capture as `{name}`"),
                                "missing".to_string(),
                            );
                            f.path = Some(p);
                            push(f);
                        }
                    }
                }
                if let Some(template) = &exp.snapshot {
                    let name = match ctx
                        .vars
                        .expand_str(template)
                        .map_err(|e| e.to_string())
                        .and_then(|n| crate::scenario::names::snapshot_name(&n).map(|()| n))
                    {
                        Ok(n) => n,
                        Err(e) => {
                            push(failure(
                                CheckKind::Scenario,
                                format!("snapshot `{template}`"),
                                e,
                            ));
                            return fails;
                        }
                    };
                    let name = &name;
                    let volatile = ctx
                        .catalog
                        .family(&ctx.family)
                        .map(|f| f.volatile.clone())
                        .unwrap_or_default();
                    let redacted = crate::check::redact_secrets(&redact_volatile(value, &volatile));
                    let path = ctx.catalog.snapshot_path(&ctx.family, &ctx.version, name);
                    match compare_snapshot(&path, &redacted, ctx.update_snapshots) {
                        Ok(SnapshotOutcome::Matched) => {}
                        Ok(SnapshotOutcome::Updated(p)) => {
                            ctx.transcript.note(format!("snapshot written: {}", p.display()))
                        }
                        Ok(SnapshotOutcome::Missing { pending }) => push(failure(
                            CheckKind::Snapshot,
                            format!("snapshot `{name}`"),
                            format!(
                                "no stored snapshot {}; the received message was written to {} — review it and run with --update-snapshots to accept",
                                path.display(),
                                pending.display()
                            ),
                        )),
                        Ok(SnapshotOutcome::Mismatch { diff, pending }) => push(failure(
                            CheckKind::Snapshot,
                            format!("snapshot `{name}` ({})", path.display()),
                            format!(
                                "differs (stored -, received +; candidate in {}):\n{diff}",
                                pending.display()
                            ),
                        )),
                        Err(e) => push(failure(CheckKind::Scenario, format!("snapshot `{name}`"), e)),
                    }
                }
            }
            Body::Text(_) => push(failure(
                CheckKind::Match,
                "a JSON body (match/capture/snapshot need JSON)",
                "the payload is not JSON".to_string(),
            )),
        }
    }
    fails
}

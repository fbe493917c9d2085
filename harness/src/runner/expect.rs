//! Evaluating an `expect`: read what the peer does on a connection and run every check
//! the expectation asks for. All outcomes are values (`CheckFailure`s), never panics.

use super::context::ScenarioContext;
use super::result::{CheckFailure, CheckKind};
use super::send::normalise_pointer;
use super::transcript::{render_body, render_bytes};
use crate::catalog::Body;
use crate::check::message::KindAt;
use crate::frame::{ZbxdCodec, ZbxdFrame};
use crate::scenario::model::{Expect, VolatileSpec};
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
            Err(CheckFailure::new(
                CheckKind::Timeout,
                format!("a message within {after:?}"),
                format!("timed out waiting for {what}"),
            ))
        }
        Err(e @ TransportError::Budget(_)) => {
            ctx.transcript.note(e.to_string());
            Err(CheckFailure::new(
                CheckKind::Budget,
                "a message that fits the memory budget",
                e.to_string(),
            ))
        }
        Err(TransportError::Frame(e)) => {
            ctx.transcript.note(format!("bad frame: {e}"));
            let expected = if e.is_truncated() {
                "a complete ZBXD frame before the peer closes"
            } else {
                "a valid ZBXD frame"
            };
            let mut f = CheckFailure::new(CheckKind::Frame, expected, e.to_string());
            if !conn.leftover().is_empty() {
                f.received = Some(render_bytes(conn.leftover()));
            }
            Err(f)
        }
        Err(e) => Err(CheckFailure::new(
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
        Err(e) => Err(CheckFailure::new(
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
            vec![CheckFailure::new(
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
            let mut f = CheckFailure::new(
                CheckKind::Close,
                expected,
                format!("the peer sent {} bytes before closing", bytes.len()),
            );
            f.received = Some(shown);
            vec![f]
        }
        Err(TransportError::Timeout { after, .. }) => vec![CheckFailure::new(
            CheckKind::Close,
            expected,
            format!("the connection was still open after {after:?}"),
        )],
        Err(e) => vec![CheckFailure::new(CheckKind::Close, expected, e.to_string())],
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
            let mut f = CheckFailure::new(
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

/// Run the message checks an expectation asks for on a received frame — trailing bytes,
/// frame header, kind, schema, text, match, capture, snapshot — and record the message
/// in the transcript. Each check is a function of `check::message`; this only expands
/// the scenario's variables for them and keeps what they find.
pub fn check_received(
    ctx: &mut ScenarioContext,
    leftover: &[u8],
    frame: &ZbxdFrame,
    body: &Body,
    exp: &Expect,
) -> Vec<CheckFailure> {
    use crate::check::message as check;
    if let Body::Json(v) = body {
        ctx.secrets.collect(v);
    }
    let shown = render_body(body);
    let Recognition {
        family,
        want,
        recognised,
    } = recognise(ctx, exp.kind.as_deref(), body);
    let shown_kind = recognised.as_ref().map(|k| match family == ctx.family {
        true => k.clone(),
        false => format!("{family}:{k}"),
    });
    ctx.transcript
        .received(shown_kind.as_deref(), Some(frame.flags), shown.clone());

    let mut fails: Vec<CheckFailure> = Vec::new();
    fails.extend(check::trailing_bytes(leftover));
    if let Some(fe) = &exp.frame {
        let want = check::FrameWant {
            compressed: fe.compressed,
            large: fe.large,
            flags: fe.flags,
        };
        fails.extend(check::frame_flags(frame.flags, want));
    }
    let (kind, wrong_kind) = check::kind(
        &ctx.catalog,
        &family,
        &ctx.version,
        want.as_deref(),
        recognised.as_deref(),
    );
    fails.extend(wrong_kind);
    if let (Some(kind), true) = (&kind, exp.schema != Some(false)) {
        let at = KindAt {
            family: &family,
            version: &ctx.version,
            kind,
        };
        fails.extend(check::schema(&ctx.catalog, &ctx.schemas, at, body));
    }
    if let Some(want) = &exp.text {
        match ctx.vars.expand_str(want) {
            Ok(want) => fails.extend(check::text(body, &frame.payload, &want)),
            Err(e) => fails.push(CheckFailure::new(
                CheckKind::Scenario,
                "expect.text",
                e.to_string(),
            )),
        }
    }
    if !exp.matches.is_empty() || !exp.capture.is_empty() || exp.snapshot.is_some() {
        match body {
            Body::Json(value) => fails.extend(check_json(ctx, value, exp)),
            Body::Text(_) => fails.push(CheckFailure::new(
                CheckKind::Match,
                "a JSON body (match/capture/snapshot need JSON)",
                "the payload is not JSON".to_string(),
            )),
        }
    }
    for f in &mut fails {
        if f.received.is_none() {
            f.received = Some(shown.clone());
        }
    }
    fails
}

/// Where a received message is checked and what it was recognised as.
pub struct Recognition {
    /// The family whose catalog and schemas apply.
    pub family: String,
    /// The expected kind's name in that family, if the expectation names one.
    pub want: Option<String>,
    /// The kind the catalog recognised, if any.
    pub recognised: Option<String>,
}

/// Recognise a received message for an expectation of kind `want` (`kind` or
/// `family:kind`). An expected kind of another family (`sender:sender.data.response`) is
/// looked for among that family's kinds sent by the side that sends it there; otherwise
/// the scenario's family and the peer's side decide.
pub fn recognise(ctx: &ScenarioContext, want: Option<&str>, body: &Body) -> Recognition {
    let at = ctx.kind_at(want.unwrap_or(""));
    let from = if at.family == ctx.family {
        ctx.peer_side.as_str()
    } else {
        ctx.catalog
            .kind(at.family, at.version, at.kind)
            .map(|k| k.from.as_str())
            .filter(|f| *f != crate::catalog::ANY_SIDE)
            .unwrap_or(ctx.peer_side.as_str())
    };
    let recognised = ctx
        .catalog
        .classify(at.family, at.version, from, body)
        .map(|k| k.kind.clone());
    Recognition {
        family: at.family.to_string(),
        want: want.map(|_| at.kind.to_string()),
        recognised,
    }
}

/// `match`, `capture` and `snapshot` of a JSON message, with the scenario's variables
/// expanded (captures go into them).
fn check_json(
    ctx: &mut ScenarioContext,
    value: &serde_json::Value,
    exp: &Expect,
) -> Vec<CheckFailure> {
    use crate::check::message::{self as check, SnapshotCheck};
    let mut fails = Vec::new();
    match ctx
        .vars
        .expand_value(&serde_json::Value::Object(exp.matches.map().clone()))
    {
        Ok(serde_json::Value::Object(spec)) => {
            remember_expected_secrets(&mut ctx.secrets, &spec);
            fails.extend(check::matches(&spec, value));
        }
        Ok(_) => {}
        Err(e) => fails.push(CheckFailure::new(
            CheckKind::Scenario,
            "expect.match",
            e.to_string(),
        )),
    }
    for (name, pointer) in &exp.capture {
        match check::capture(value, name, &normalise_pointer(pointer)) {
            Ok(v) => ctx.vars.set(name, v),
            Err(f) => fails.push(f),
        }
    }
    if let Some(template) = &exp.snapshot {
        let name = ctx
            .vars
            .expand_str(template)
            .map_err(|e| e.to_string())
            .and_then(|n| crate::scenario::names::snapshot_name(&n).map(|()| n));
        let name = match name {
            Ok(n) => n,
            Err(e) => {
                fails.push(CheckFailure::new(
                    CheckKind::Scenario,
                    format!("snapshot `{template}`"),
                    e,
                ));
                return fails;
            }
        };
        let family_volatile = ctx
            .catalog
            .family(&ctx.family)
            .map(|f| f.volatile.clone())
            .unwrap_or_default();
        let volatile = VolatileSpec::apply(exp.volatile.as_ref(), &family_volatile);
        let path = ctx.catalog.snapshot_path(&ctx.family, &ctx.version, &name);
        match check::snapshot(&name, &path, value, &volatile, ctx.update_snapshots) {
            SnapshotCheck::Matched => {}
            SnapshotCheck::Written(p) => ctx
                .transcript
                .note(format!("snapshot written: {}", p.display())),
            SnapshotCheck::Failed(f) => fails.push(f),
        }
    }
    fails
}

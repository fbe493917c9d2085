//! The reference active proxy (6.0.14 behaviour, protocol.md §2.3, §2.5, §2.6): it
//! connects to the server (the harness) in a fixed cycle — `proxy heartbeat`,
//! `proxy config`, `proxy data` — one request per connection, every frame compressed.
//! Refused connections and timeouts are tolerated quietly so the harness can accept in
//! any order; data rows are committed only after `"response":"success"`.
//!
//! 6.4+ (protocol.md §2.4): no heartbeats (deprecated); the config request carries the
//! session and the `config_revision` of the last configuration applied (0 at first),
//! 7.0 also `hostmap_revision` when non-zero; a `{}` answer changes nothing.

use super::data::{self, PROXY_HOST};
use super::fault::{is, Fault};
use super::wire::{self, BadFrame, Sent};
use super::PeerContext;
use crate::transport::connect_tcp;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::time::Duration;

/// Pause between two requests of the cycle.
pub const INTERVAL: Duration = Duration::from_millis(200);
/// How long to wait for the server's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Run the proxy's cycle forever (the caller stops it by dropping the future).
pub(crate) async fn run(ctx: PeerContext, server: SocketAddr) {
    let mut acked: u64 = 0;
    let mut revisions = Revisions::default();
    loop {
        if ctx.profile.sends_heartbeat() {
            exchange(&ctx, server, &heartbeat(&ctx), BadFrame::Magic).await;
            tokio::time::sleep(INTERVAL).await;
        }
        let request = config_request(&ctx, &revisions);
        if let Some(answer) = exchange(&ctx, server, &request, BadFrame::ShortLength).await {
            if ctx.profile.incremental_config() && !is(ctx.fault, Fault::StaleRevision) {
                if answer.is_empty() && is(ctx.fault, Fault::ResetOnUnchanged) {
                    revisions = Revisions::default();
                }
                revisions.apply(&answer);
            }
        }
        tokio::time::sleep(INTERVAL).await;
        let body = data_request(&ctx, acked);
        if is(ctx.fault, Fault::NoAckWait) {
            // Marks the rows sent whatever the server says.
            if send_only(&ctx, server, &body).await {
                acked += data::BATCH_ROWS;
            }
        } else if let Some(answer) = exchange(&ctx, server, &body, BadFrame::Truncated).await {
            if wire::str_of(&answer, "response") == Some("success") {
                acked += data::BATCH_ROWS;
            }
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

fn header(request: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("request".into(), json!(request));
    m.insert("host".into(), json!(PROXY_HOST));
    m
}

fn heartbeat(ctx: &PeerContext) -> Value {
    let mut m = header("proxy heartbeat");
    if !is(ctx.fault, Fault::MissingFields) {
        m.insert(
            "version".into(),
            json!(data::version_of(ctx.profile, ctx.fault)),
        );
    }
    Value::Object(m)
}

/// 6.4+: the revisions of the last configuration applied.
#[derive(Debug, Default)]
struct Revisions {
    config: u64,
    hostmap: u64,
}

impl Revisions {
    /// Keep the revisions of a configuration answer; `{}` (or anything without a
    /// numeric `config_revision` and `data`) changes nothing.
    fn apply(&mut self, answer: &Map<String, Value>) {
        if !answer.get("data").is_some_and(Value::is_object) {
            return;
        }
        if let Some(r) = data::u64_of(answer, "config_revision") {
            self.config = r;
        }
        if let Some(h) = answer
            .get("proxy_group")
            .and_then(Value::as_object)
            .and_then(|g| data::u64_of(g, "hostmap_revision"))
        {
            self.hostmap = h;
        }
    }
}

fn config_request(ctx: &PeerContext, revisions: &Revisions) -> Value {
    let mut m = header("proxy config");
    if is(ctx.fault, Fault::MissingFields) {
        return Value::Object(m);
    }
    m.insert(
        "version".into(),
        json!(data::version_of(ctx.profile, ctx.fault)),
    );
    if ctx.profile.incremental_config() {
        m.insert("session".into(), json!(ctx.session));
        let revision = if is(ctx.fault, Fault::WrongTypes) {
            json!(revisions.config.to_string())
        } else {
            json!(revisions.config)
        };
        m.insert("config_revision".into(), revision);
        if ctx.profile.proxy_groups() && revisions.hostmap != 0 {
            m.insert("hostmap_revision".into(), json!(revisions.hostmap));
        }
    }
    Value::Object(m)
}

fn data_request(ctx: &PeerContext, acked: u64) -> Value {
    let mut m = header("proxy data");
    m.extend(data::proxy_data(
        ctx.profile,
        ctx.fault,
        &ctx.session,
        acked,
        ctx.started,
    ));
    Value::Object(m)
}

async fn connect(server: SocketAddr) -> Option<wire::Conn> {
    match connect_tcp(&server.to_string(), CONNECT_TIMEOUT).await {
        Ok(stream) => Some(wire::conn(stream, server.to_string())),
        Err(_) => {
            // Nobody listening yet: try again on the next turn of the cycle.
            tokio::time::sleep(INTERVAL).await;
            None
        }
    }
}

/// One request on a new connection; returns the answer when it is a JSON object.
async fn exchange(
    ctx: &PeerContext,
    server: SocketAddr,
    request: &Value,
    bad: BadFrame,
) -> Option<Map<String, Value>> {
    let mut conn = connect(server).await?;
    if is(ctx.fault, Fault::NoReply) {
        // Connects and says nothing until the server gives up.
        wire::hold(&mut conn).await;
        return None;
    }
    if wire::send(&mut conn, request, true, ctx.fault, bad).await == Sent::Close {
        return None;
    }
    let frame = wire::read_one(&mut conn, ANSWER_TIMEOUT).await;
    conn.shutdown().await;
    match wire::classify(&frame?.payload) {
        wire::Payload::Object(m) => Some(m),
        _ => None,
    }
}

/// Send without reading the answer (`no-ack-wait`). True when the bytes went out.
async fn send_only(ctx: &PeerContext, server: SocketAddr, request: &Value) -> bool {
    let Some(mut conn) = connect(server).await else {
        return false;
    };
    let sent = wire::send(&mut conn, request, true, ctx.fault, BadFrame::Truncated).await;
    conn.shutdown().await;
    sent == Sent::Continue
}

//! The reference server polling a passive proxy (6.0.14 behaviour, protocol.md §1.2,
//! §2.3, §2.5): it connects to the proxy (the harness) in a fixed cycle —
//! `proxy config` with the tables wrapped in `data`, `proxy data` then the
//! acknowledgement, `proxy tasks` then the acknowledgement — one exchange per connection.
//! Its frames are plain (0x01) until the proxy has sent a compressed frame, then
//! compressed, as 6.0's `auto_compress` does.
//!
//! 6.4+ (protocol.md §1.2, §2.4): `proxy config` is a dialogue — `{"request":"proxy
//! config"}` (0x01), the proxy's revision, the configuration answer (0x03: full sync for
//! a new session or revision 0, `{}` when the proxy is at the server's revision), the
//! proxy's response.
//!
//! The configuration it pushes is the version's fixture ([`super::server_config`]).

use super::context::{PeerContext, Setup};
use super::data;
use super::fault::{is, Fault};
use super::server_config::{self, ServerConfig};
use super::task::{self, RunningPeer};
use super::wire::{self, BadFrame, Sent};
use crate::catalog::versions::feature;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

/// Pause between two exchanges of the cycle.
pub const INTERVAL: Duration = Duration::from_millis(200);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Start the poller: it reads its configuration, then connects to the proxy.
pub(crate) async fn start(setup: Setup) -> Result<RunningPeer, String> {
    let config = ServerConfig::load(&setup.data_root, &setup.version, &setup.lineage)?;
    let proxy = setup.target()?;
    let ctx = setup.context();
    Ok(task::spawn(setup.describe, None, move |stop| {
        task::until_stopped(stop, run(ctx, config, proxy))
    }))
}

/// Run the poller's cycle forever (the caller stops it by dropping the future).
async fn run(ctx: PeerContext, config: ServerConfig, proxy: SocketAddr) {
    let mut compress = false;
    let mut session: Option<String> = None;
    loop {
        if ctx.has(feature::INCREMENTAL_CONFIG) {
            config_dialogue(&ctx, &config, proxy, &mut session).await;
        } else {
            exchange(
                &ctx,
                proxy,
                &config_request(&ctx, &config),
                false,
                BadFrame::Magic,
                &mut compress,
            )
            .await;
        }
        tokio::time::sleep(INTERVAL).await;
        let data = json!({"request": "proxy data"});
        exchange(&ctx, proxy, &data, true, BadFrame::Truncated, &mut compress).await;
        tokio::time::sleep(INTERVAL).await;
        let tasks = json!({"request": "proxy tasks"});
        exchange(
            &ctx,
            proxy,
            &tasks,
            true,
            BadFrame::ShortLength,
            &mut compress,
        )
        .await;
        tokio::time::sleep(INTERVAL).await;
    }
}

fn config_request(ctx: &PeerContext, config: &ServerConfig) -> Value {
    // Only `wrong-types` reaches the tables; `missing-fields` drops the wrapper instead.
    let tables = config.tables(ctx.fault.filter(|f| *f == Fault::WrongTypes));
    if is(ctx.fault, Fault::MissingFields) {
        // The manual's (wrong) shape: tables next to "request", no "data" wrapper.
        let mut m = serde_json::Map::new();
        m.insert("request".into(), json!("proxy config"));
        m.extend(tables);
        Value::Object(m)
    } else {
        json!({"request": "proxy config", "data": tables})
    }
}

/// One 6.4+ configuration dialogue; `session` is the proxy session seen last.
async fn config_dialogue(
    ctx: &PeerContext,
    config: &ServerConfig,
    proxy: SocketAddr,
    session: &mut Option<String>,
) {
    let Some(mut conn) = wire::connect(proxy, &ctx.tls, CONNECT_TIMEOUT).await else {
        return;
    };
    let request = json!({"request": "proxy config"});
    if wire::send(&mut conn, &request, false, ctx.fault, BadFrame::Magic).await == Sent::Close {
        return;
    }
    let Some(frame) = wire::read_one(&mut conn, ANSWER_TIMEOUT).await else {
        return;
    };
    let wire::Payload::Object(info) = wire::classify(&frame.payload) else {
        return;
    };
    let (Some(proxy_session), Some(revision)) = (
        wire::str_of(&info, "session"),
        data::u64_of(&info, "config_revision"),
    ) else {
        // The real server gives up on a revision reply it cannot parse.
        return;
    };
    let sync = server_config::sync_for(ctx.fault, session.as_deref(), proxy_session, revision);
    *session = Some(proxy_session.to_string());
    if is(ctx.fault, Fault::NoReply) {
        wire::hold(&mut conn).await;
        return;
    }
    let answer = Value::Object(config.answer(ctx.fault, sync));
    if wire::send(&mut conn, &answer, true, ctx.fault, BadFrame::Truncated).await == Sent::Close {
        return;
    }
    let _ = wire::read_one(&mut conn, ANSWER_TIMEOUT).await;
    wire::finish(conn, ctx.fault).await
}

fn ack(ctx: &PeerContext) -> Value {
    if is(ctx.fault, Fault::WrongResponse) {
        json!({"response": "failed"})
    } else if is(ctx.fault, Fault::MissingFields) {
        json!({})
    } else if is(ctx.fault, Fault::WrongTypes) {
        json!({"response": true})
    } else {
        json!({"response": "success"})
    }
}

/// One exchange on a new connection: request, answer, and the acknowledgement when
/// `acknowledge` is set. `compress` follows the proxy's last frame.
async fn exchange(
    ctx: &PeerContext,
    proxy: SocketAddr,
    request: &Value,
    acknowledge: bool,
    bad: BadFrame,
    compress: &mut bool,
) {
    let Some(mut conn) = wire::connect(proxy, &ctx.tls, CONNECT_TIMEOUT).await else {
        return;
    };
    if wire::send(&mut conn, request, *compress, ctx.fault, bad).await == Sent::Close {
        return;
    }
    let Some(answer) = wire::read_one(&mut conn, ANSWER_TIMEOUT).await else {
        return;
    };
    *compress = answer.is_compressed();
    if acknowledge {
        if is(ctx.fault, Fault::NoReply) {
            // Never acknowledges; the proxy waits in vain.
            wire::hold(&mut conn).await;
            return;
        }
        // The real server acknowledges whatever arrived, before processing it.
        if wire::send(&mut conn, &ack(ctx), *compress, ctx.fault, BadFrame::Magic).await
            == Sent::Close
        {
            return;
        }
    }
    wire::finish(conn, ctx.fault).await
}

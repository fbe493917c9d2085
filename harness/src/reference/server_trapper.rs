//! The reference server trapper serving active proxies (6.0.14 behaviour, protocol.md
//! §1.7, §2.3, §2.5, §2.6): one request per connection; replies mirror the request's
//! compression flag. Every proxy name is known except those starting with "unknown",
//! so scenarios can exercise the not-found branches without configuration.
//!
//! 6.4+ (protocol.md §2.4): `proxy config` needs `session` and `config_revision`; a new
//! session or revision 0 gets a full sync, the server's own revision gets `{}`, any
//! other revision the changes (here: every table, without `full_sync`). Heartbeats are
//! still answered. Proxy data is accepted from the proxies the version's
//! `accepts_proxies_from` allows (6.4+: current and outdated, ≥ 6.0).
//!
//! The configuration it hands out is the version's fixture ([`super::server_config`]).

use super::context::{PeerContext, Setup};
use super::data;
use super::fault::{is, Fault};
use super::server_config::{self, ServerConfig};
use super::task::{self, RunningPeer, Serve};
use super::version::accepts_proxy_version;
use super::wire::{self, BadFrame, Conn, Payload, Sent};
use crate::catalog::versions::feature;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// Start the server trapper: it reads its configuration, then listens.
pub(crate) async fn start(setup: Setup) -> Result<RunningPeer, String> {
    let config = ServerConfig::load(&setup.data_root, &setup.version, &setup.lineage)?;
    let listener = setup.bind().await?;
    let peer: Arc<dyn Serve> = Arc::new(ServerTrapper::new(setup.context(), config));
    Ok(task::listening(setup.describe, listener, peer, setup.tls))
}

pub(crate) struct ServerTrapper {
    ctx: PeerContext,
    config: ServerConfig,
    /// 6.4+: the session each proxy (by name) last asked for configuration with.
    sessions: Mutex<HashMap<String, String>>,
}

/// Whether the server knows an active proxy of this name.
fn known_proxy(host: &str) -> bool {
    !host.is_empty() && !host.starts_with("unknown")
}

fn not_found(host: &str) -> Value {
    json!({"response": "failed", "info": format!("proxy \"{host}\" not found")})
}

impl ServerTrapper {
    fn new(ctx: PeerContext, config: ServerConfig) -> Self {
        ServerTrapper {
            ctx,
            config,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    async fn handle(self: Arc<Self>, mut conn: Conn) {
        let fault = self.ctx.fault;
        let Some(frame) = wire::read_request(&mut conn, wire::REQUEST_TIMEOUT, fault).await else {
            return;
        };
        if is(fault, Fault::NoReply) {
            wire::hold(&mut conn).await;
            return;
        }
        let compress = frame.is_compressed();
        let map = match wire::classify(&frame.payload) {
            Payload::Object(map) => map,
            Payload::InvalidJson(reason) => {
                let reply = wire::invalid_json_reply(&reason);
                return self.reply(conn, &reply, false, BadFrame::Magic).await;
            }
            Payload::Other => return self.silence(conn, compress).await,
        };
        let host = wire::str_of(&map, "host").unwrap_or("");
        match wire::request_of(&map) {
            Some("proxy heartbeat") => {
                let reply = self.heartbeat(host);
                self.reply(conn, &reply, compress, BadFrame::ShortLength)
                    .await
            }
            Some("proxy config") => {
                if !known_proxy(host) {
                    // The real server closes without a reply (protocol.md §2.3).
                    return self.silence(conn, compress).await;
                }
                let reply = if self.ctx.has(feature::INCREMENTAL_CONFIG) {
                    self.incremental_config(host, &map)
                } else {
                    Value::Object(self.config.tables(fault))
                };
                self.reply(conn, &reply, compress, BadFrame::Magic).await
            }
            Some("proxy data") => {
                let reply = self.proxy_data(host, &map);
                self.reply(conn, &reply, compress, BadFrame::Truncated)
                    .await
            }
            _ => self.silence(conn, compress).await,
        }
    }

    async fn reply(&self, mut conn: Conn, reply: &Value, compress: bool, bad: BadFrame) {
        if wire::send(&mut conn, reply, compress, self.ctx.fault, bad).await == Sent::Close {
            return;
        }
        wire::finish(conn, self.ctx.fault).await
    }

    /// Where the real server closes without replying.
    async fn silence(&self, conn: Conn, compress: bool) {
        if is(self.ctx.fault, Fault::RepliesUnknown) {
            let reply = json!({"response": "failed", "info": "unknown request"});
            return self.reply(conn, &reply, compress, BadFrame::Magic).await;
        }
        wire::finish(conn, self.ctx.fault).await
    }

    /// The 6.4+ answer to an active proxy's config request.
    fn incremental_config(&self, host: &str, request: &Map<String, Value>) -> Value {
        let Some(session) = wire::str_of(request, "session") else {
            return json!({"response": "failed",
                "info": "cannot get session from proxy configuration request"});
        };
        let Some(revision) = data::u64_of(request, "config_revision") else {
            return json!({"response": "failed",
                "info": "cannot get revision from proxy configuration request"});
        };
        let known = self
            .sessions
            .lock()
            .ok()
            .and_then(|mut g| g.insert(host.to_string(), session.to_string()));
        let sync = server_config::sync_for(self.ctx.fault, known.as_deref(), session, revision);
        Value::Object(self.config.answer(self.ctx.fault, sync))
    }

    fn heartbeat(&self, host: &str) -> Value {
        let fault = self.ctx.fault;
        if !known_proxy(host) {
            return not_found(host);
        }
        if is(fault, Fault::WrongResponse) {
            json!({"response": "failed", "info": "heartbeat refused"})
        } else if is(fault, Fault::MissingFields) && self.ctx.has(feature::PROXY_HEARTBEAT) {
            // Where proxies no longer send heartbeats (6.4+) the fault breaks the
            // configuration answer instead: a broken heartbeat would hide those checks.
            json!({})
        } else if is(fault, Fault::WrongTypes) {
            json!({"response": true})
        } else {
            json!({"response": "success"})
        }
    }

    fn proxy_data(&self, host: &str, request: &Map<String, Value>) -> Value {
        let fault = self.ctx.fault;
        if !known_proxy(host) {
            return not_found(host);
        }
        let version = wire::str_of(request, "version");
        if !is(fault, Fault::NoVersionCheck) && !accepts_proxy_version(&self.ctx.version, version) {
            // A refused version gets a bare failure, without info (protocol.md §2.5).
            return json!({"response": "failed"});
        }
        let mut reply = Map::new();
        let upload = if is(fault, Fault::WrongResponse) {
            json!("disabled")
        } else if is(fault, Fault::WrongTypes) {
            json!(true)
        } else {
            json!("enabled")
        };
        if !is(fault, Fault::MissingFields) {
            reply.insert("upload".into(), upload);
        }
        match request.get("session") {
            Some(Value::String(s)) if s.len() != 32 => {
                reply.insert("response".into(), json!("failed"));
                reply.insert(
                    "info".into(),
                    json!(format!("invalid session token length {}", s.len())),
                );
            }
            _ if is(fault, Fault::WrongResponse) => {
                reply.insert("response".into(), json!("failed"));
            }
            _ => {
                reply.insert("response".into(), json!("success"));
            }
        }
        Value::Object(reply)
    }
}

impl Serve for ServerTrapper {
    fn serve(self: Arc<Self>, conn: Conn) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.handle(conn))
    }
}

//! The reference passive proxy (6.0.14 behaviour, protocol.md §2.3, §2.5): the server
//! connects and sends one request per connection; `proxy data` and `proxy tasks` are
//! followed by the server's acknowledgement on the same connection, and data rows are
//! committed only after a successful one. Replies are compressed (0x03) like the real
//! proxy's; the generic invalid-JSON answer is a plain 0x01 frame.
//!
//! 6.4+ (protocol.md §2.4): `proxy config` opens a four-message dialogue on the same
//! connection — the proxy answers with its session and `config_revision` (frame flags
//! mirroring the request's), the server sends the configuration answer (`{}` when the
//! proxy is current), the proxy replies `{"response":...,"version":...}` (compressed).
//! The revision the answer carries is kept and reported next time.
//!
//! Like the real proxy's trapper it also takes `sender data` (NOTES-real-proxy.md §2.4):
//! values for trapper items of the last configuration pushed are accepted and reported
//! in the next `proxy data` history (after the canned rows) until acknowledged; values
//! for anything else fail. The reply is the trapper's plain 0x01
//! `processed: N; failed: N; total: N; seconds spent: S` answer. More than 10000 values
//! waiting come in batches with `"more":1` and `proxy_delay`, as the real proxies send.
//!
//! Next to its canned rows it reports what it collects from its configuration
//! ([`super::sections`]: agent interface availability, discovery, auto-registration from
//! `active checks`, 6.4+ host data from `active check heartbeat`, results of the tasks an
//! acknowledgement carries); `proxy tasks` answers with the task results.

use super::context::{PeerContext, Setup};
use super::data;
use super::fault::{is, Fault};
use super::sections::Sections;
use super::task::{self, RunningPeer, Serve};
use super::wire::{self, BadFrame, Conn, Payload, Sent};
use crate::catalog::versions::feature;
use serde_json::{json, Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// Start the passive proxy: it listens, and its worker polls and discovers what its
/// configuration names.
pub(crate) async fn start(setup: Setup) -> Result<RunningPeer, String> {
    let listener = setup.bind().await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let ctx = setup.context();
    let sections = Arc::new(Sections::new(ctx.version.clone(), ctx.fault));
    let peer: Arc<dyn Serve> = Arc::new(PassiveProxy::new(ctx, sections.clone()));
    let tls = setup.tls.clone();
    Ok(task::spawn(
        setup.describe,
        Some(addr),
        move |stop| async move {
            tokio::select! {
                _ = task::serve(listener, peer, stop, tls) => {}
                _ = sections.run() => {}
            }
        },
    ))
}

/// Passive proxy state shared by all its connections.
pub(crate) struct PassiveProxy {
    ctx: PeerContext,
    state: Mutex<State>,
    sections: Arc<Sections>,
}

#[derive(Default)]
struct State {
    /// Trapper items of the last configuration, their values not yet acknowledged and
    /// the last history id the server acknowledged.
    history: data::History,
    /// 6.4+: configuration revision of the last configuration applied (0: none yet).
    config_revision: u64,
    /// 7.0+: host-map revision of the proxy group (0: not in a group).
    hostmap_revision: u64,
}

impl PassiveProxy {
    pub fn new(ctx: PeerContext, sections: Arc<Sections>) -> Self {
        PassiveProxy {
            ctx,
            state: Mutex::new(State::default()),
            sections,
        }
    }

    fn fault(&self) -> Option<Fault> {
        self.ctx.fault
    }

    /// The next history batch.
    fn snapshot(&self) -> Option<data::HistoryBatch> {
        self.state.lock().ok().map(|g| g.history.batch())
    }

    /// Commit a delivered history batch.
    fn commit(&self, batch: &data::HistoryBatch) {
        if let Ok(mut g) = self.state.lock() {
            g.history.commit(batch);
        }
    }

    async fn handle(self: Arc<Self>, mut conn: Conn) {
        let fault = self.fault();
        let Some(frame) = wire::read_request(&mut conn, wire::REQUEST_TIMEOUT, fault).await else {
            // Framing error, timeout, or empty connection: close without a word.
            return;
        };
        if is(fault, Fault::NoReply) {
            wire::hold(&mut conn).await;
            return;
        }
        let map = match wire::classify(&frame.payload) {
            Payload::Object(map) => map,
            Payload::InvalidJson(reason) => {
                let reply = wire::invalid_json_reply(&reason);
                if wire::send(&mut conn, &reply, false, fault, BadFrame::Magic).await == Sent::Close
                {
                    return;
                }
                return wire::finish(conn, fault).await;
            }
            Payload::Other => return self.silence(conn).await,
        };
        match wire::request_of(&map) {
            Some("proxy config") if self.ctx.has(feature::INCREMENTAL_CONFIG) => {
                self.config_dialogue(conn, frame.is_compressed()).await
            }
            Some("proxy config") => self.proxy_config(conn, &map).await,
            Some("proxy data") => self.proxy_data(conn).await,
            Some("proxy tasks") => self.proxy_tasks(conn).await,
            Some("sender data") => self.sender_data(conn, &map).await,
            Some("active checks") | Some("active check heartbeat") => {
                self.agent_request(conn, &map, frame.is_compressed()).await
            }
            // No request, an unknown one, or one a passive proxy ignores (heartbeat).
            _ => self.silence(conn).await,
        }
    }

    /// Where the real proxy closes without replying.
    async fn silence(&self, mut conn: Conn) {
        let fault = self.fault();
        if is(fault, Fault::RepliesUnknown) {
            let reply = json!({"response": "failed", "info": "unknown request"});
            if wire::send(&mut conn, &reply, true, fault, BadFrame::Magic).await == Sent::Close {
                return;
            }
        }
        wire::finish(conn, fault).await
    }

    async fn proxy_config(&self, mut conn: Conn, request: &Map<String, Value>) {
        let fault = self.fault();
        let has_data = request.get("data").is_some_and(Value::is_object);
        // wrong-response swaps the verdicts.
        let success = has_data != is(fault, Fault::WrongResponse);
        let mut reply = Map::new();
        if success {
            reply.insert("response".into(), json!("success"));
        } else {
            reply.insert("response".into(), json!("failed"));
            reply.insert("info".into(), json!("cannot find pair with name \"data\""));
        }
        if !is(fault, Fault::MissingFields) {
            reply.insert("version".into(), json!(self.ctx.announced()));
        }
        if has_data {
            // Like the real proxy, a configuration with data is applied whatever the
            // verdict says; tables it leaves out are kept.
            if let Some(tables) = request.get("data").and_then(Value::as_object) {
                if let Some(items) = data::trapper_items(tables) {
                    if let Ok(mut g) = self.state.lock() {
                        g.history.items = items;
                    }
                }
                self.sections.configure(tables, false);
            }
        }
        let reply = Value::Object(reply);
        if wire::send(&mut conn, &reply, true, fault, BadFrame::Magic).await == Sent::Close {
            return;
        }
        wire::finish(conn, fault).await
    }

    /// 6.4+ configuration dialogue: revision, configuration answer, response.
    async fn config_dialogue(&self, mut conn: Conn, request_compressed: bool) {
        let fault = self.fault();
        let (revision, hostmap) = self
            .state
            .lock()
            .map(|g| (g.config_revision, g.hostmap_revision))
            .unwrap_or_default();
        let mut info = Map::new();
        info.insert("version".into(), json!(self.ctx.announced()));
        if !is(fault, Fault::MissingFields) {
            let session = if is(fault, Fault::WrongTypes) {
                self.ctx.session.chars().take(31).collect()
            } else {
                self.ctx.session.clone()
            };
            info.insert("session".into(), json!(session));
            let revision = if is(fault, Fault::StaleRevision) {
                0
            } else {
                revision
            };
            info.insert("config_revision".into(), json!(revision));
        }
        if self.ctx.has(feature::PROXY_GROUPS) && hostmap != 0 {
            info.insert("hostmap_revision".into(), json!(hostmap));
        }
        // The revision reply echoes the request's frame flags (protocol.md §1.2).
        let sent = wire::send(
            &mut conn,
            &Value::Object(info),
            request_compressed,
            fault,
            BadFrame::Magic,
        )
        .await;
        if sent == Sent::Close {
            return;
        }
        let Some(frame) = wire::read_one(&mut conn, wire::REQUEST_TIMEOUT).await else {
            return;
        };
        let applied = match wire::classify(&frame.payload) {
            Payload::Object(answer) => self.apply_answer(&answer),
            _ => Err("cannot parse configuration data".to_string()),
        };
        let mut reply = Map::new();
        match applied {
            Ok(()) if !is(fault, Fault::WrongResponse) => {
                reply.insert("response".into(), json!("success"));
            }
            Ok(()) => {
                reply.insert("response".into(), json!("failed"));
                reply.insert("info".into(), json!("configuration refused"));
            }
            Err(e) => {
                reply.insert("response".into(), json!("failed"));
                reply.insert("info".into(), json!(e));
            }
        }
        if !is(fault, Fault::MissingFields) {
            reply.insert("version".into(), json!(self.ctx.announced()));
        }
        if wire::send(
            &mut conn,
            &Value::Object(reply),
            true,
            fault,
            BadFrame::Magic,
        )
        .await
            == Sent::Close
        {
            return;
        }
        wire::finish(conn, fault).await
    }

    /// Apply a 6.4+ configuration answer: `{}` changes nothing; otherwise `data` and
    /// `config_revision` are required, the trapper items are replaced on a full sync and
    /// updated otherwise, and the revisions are kept.
    fn apply_answer(&self, answer: &Map<String, Value>) -> Result<(), String> {
        if answer.is_empty() {
            if is(self.fault(), Fault::ResetOnUnchanged) {
                if let Ok(mut g) = self.state.lock() {
                    g.history.items.clear();
                    g.config_revision = 0;
                }
            }
            return Ok(());
        }
        let tables = answer
            .get("data")
            .and_then(Value::as_object)
            .ok_or("cannot find pair with name \"data\"")?;
        let revision = data::u64_of(answer, "config_revision")
            .ok_or("cannot find pair with name \"config_revision\"")?;
        let full = answer.get("full_sync").and_then(Value::as_u64) == Some(1);
        let hostmap = answer
            .get("proxy_group")
            .and_then(Value::as_object)
            .and_then(|g| data::u64_of(g, "hostmap_revision"));
        let items = data::trapper_items(tables);
        self.sections.configure(tables, full);
        let mut g = self
            .state
            .lock()
            .map_err(|_| "state poisoned".to_string())?;
        match items {
            Some(items) if full => g.history.items = items,
            Some(items) => g.history.items.extend(items),
            None if full => g.history.items.clear(),
            None => {}
        }
        g.config_revision = revision;
        if let Some(h) = hostmap {
            g.hostmap_revision = h;
        }
        Ok(())
    }

    /// `sender data`: accept values for configured trapper items, refuse the rest.
    async fn sender_data(&self, mut conn: Conn, request: &Map<String, Value>) {
        let fault = self.fault();
        let started = std::time::Instant::now();
        let values = request
            .get("data")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let (processed, failed) = self
            .state
            .lock()
            .map(|mut g| g.history.trap(values))
            .unwrap_or((0, values.len()));
        let reply = json!({
            "response": "success",
            "info": format!(
                "processed: {processed}; failed: {failed}; total: {}; seconds spent: {:.6}",
                values.len(),
                started.elapsed().as_secs_f64()
            ),
        });
        if wire::send(&mut conn, &reply, false, fault, BadFrame::Magic).await == Sent::Close {
            return;
        }
        wire::finish(conn, fault).await
    }

    /// `active checks` (auto-registration) and `active check heartbeat` (6.4+ host
    /// data): answered in the request's compression, or closed without a word.
    async fn agent_request(&self, mut conn: Conn, request: &Map<String, Value>, compressed: bool) {
        let fault = self.fault();
        let peer_ip = conn
            .peer()
            .rsplit_once(':')
            .map_or("127.0.0.1", |(ip, _)| ip)
            .to_string();
        let connection = conn.stream().mode();
        if let Some(Some(reply)) = self.sections.trapper_over(request, &peer_ip, connection) {
            if wire::send(&mut conn, &reply, compressed, fault, BadFrame::Magic).await
                == Sent::Close
            {
                return;
            }
        }
        wire::finish(conn, fault).await
    }

    async fn proxy_data(&self, mut conn: Conn) {
        let fault = self.fault();
        let Some(batch) = self.snapshot() else { return };
        let mut body = data::proxy_data(
            &self.ctx.version,
            fault,
            &self.ctx.session,
            batch.base,
            self.ctx.started,
        );
        data::History::add_to(&batch, &mut body, fault);
        let taken = self.sections.take(&mut body);
        let body = data::in_proxy_data_order(body);
        let sent = wire::send(
            &mut conn,
            &Value::Object(body),
            true,
            fault,
            BadFrame::Truncated,
        )
        .await;
        if sent == Sent::Close {
            return;
        }
        if is(fault, Fault::NoAckWait) {
            self.commit(&batch);
            self.sections.commit(&taken);
            return wire::finish(conn, fault).await;
        }
        if let Some(ack) = wire::read_one(&mut conn, wire::ANSWER_TIMEOUT).await {
            if wire::is_success(&ack) {
                self.commit(&batch);
                self.sections.commit(&taken);
                self.sections.accept_tasks(&data::tasks_of(&ack.payload));
            }
        }
        wire::finish(conn, fault).await
    }

    async fn proxy_tasks(&self, mut conn: Conn) {
        let fault = self.fault();
        let mut reply = Map::new();
        let taken = self.sections.take_results(&mut reply);
        if let Value::Object(rest) = data::proxy_tasks(&self.ctx.version, fault) {
            reply.extend(rest);
        }
        let reply = Value::Object(reply);
        if wire::send(&mut conn, &reply, true, fault, BadFrame::ShortLength).await == Sent::Close {
            return;
        }
        if is(fault, Fault::NoAckWait) {
            self.sections.commit(&taken);
        } else if let Some(ack) = wire::read_one(&mut conn, wire::ANSWER_TIMEOUT).await {
            if wire::is_success(&ack) {
                self.sections.commit(&taken);
                self.sections.accept_tasks(&data::tasks_of(&ack.payload));
            }
        }
        wire::finish(conn, fault).await
    }
}

impl Serve for PassiveProxy {
    fn serve(self: Arc<Self>, conn: Conn) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.handle(conn))
    }
}

//! The reference active proxy (6.0.14 behaviour, protocol.md §2.3, §2.5, §2.6): it
//! connects to the server (the harness) in a fixed cycle — `proxy heartbeat`,
//! `proxy config`, `proxy data` — one request per connection, every frame compressed.
//! Refused connections and timeouts are tolerated quietly so the harness can accept in
//! any order; data rows are committed only after `"response":"success"`.
//!
//! 6.4+ (protocol.md §2.4): no heartbeats (deprecated); the config request carries the
//! session and the `config_revision` of the last configuration applied (0 at first),
//! 7.0 also `hostmap_revision` when non-zero; a `{}` answer changes nothing.
//!
//! Like the real one it also listens as a trapper: `sender data` for the trapper items
//! of its configuration (delivered in the next `proxy data`, in batches of 10000 with
//! `"more":1`), `active checks` and 6.4+ `active check heartbeat`. It reports what it
//! collects from its configuration ([`super::sections`]) and runs the tasks a data
//! response carries; `"upload":"disabled"` holds its history back until `enabled`.

use super::context::{PeerContext, Setup};
use super::data::{self, PROXY_HOST};
use super::fault::{is, Fault};
use super::sections::Sections;
use super::task::{self, RunningPeer, Serve};
use super::wire::{self, BadFrame, Conn, Payload, Sent};
use crate::catalog::versions::feature;
use crate::transport::tls::TlsConfig;
use serde_json::{json, Map, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Pause between two requests of the cycle.
pub const INTERVAL: Duration = Duration::from_millis(200);
/// How long to wait for the server's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Start the active proxy: it connects to the server and listens as a trapper for
/// agents and senders.
pub(crate) async fn start(setup: Setup) -> Result<RunningPeer, String> {
    let server = setup.target()?;
    let listener = setup.bind().await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let ctx = setup.context();
    let sections = Arc::new(Sections::new(ctx.version.clone(), ctx.fault));
    let proxy = Arc::new(ActiveProxy::new(ctx, sections.clone()));
    let trapper: Arc<dyn Serve> = proxy.clone();
    let tls = setup.tls.clone();
    Ok(task::spawn(
        setup.describe,
        Some(addr),
        move |stop| async move {
            tokio::select! {
                _ = task::serve(listener, trapper, stop, tls) => {}
                _ = proxy.run(server) => {}
                _ = sections.run() => {}
            }
        },
    ))
}

/// The reference active proxy: its cycle ([`ActiveProxy::run`]) and its trapper.
pub(crate) struct ActiveProxy {
    ctx: PeerContext,
    history: Mutex<data::History>,
    sections: Arc<Sections>,
}

impl ActiveProxy {
    fn new(ctx: PeerContext, sections: Arc<Sections>) -> Self {
        ActiveProxy {
            ctx,
            history: Mutex::new(data::History::default()),
            sections,
        }
    }

    /// Take a configuration answer. With incremental-config (6.4+): its `data` (`{}`:
    /// none), replacing everything on `full_sync`. Without (5.4/6.0): the bare tables,
    /// each replacing its rows; tables the answer leaves out are kept, as the real
    /// proxies keep them, so an answer of `{}` changes nothing.
    fn configure(&self, answer: &Map<String, Value>) {
        let incremental = self.ctx.has(feature::INCREMENTAL_CONFIG);
        let (tables, full) = if incremental {
            match answer.get("data").and_then(Value::as_object) {
                Some(t) => (
                    t,
                    answer.get("full_sync").and_then(Value::as_u64) == Some(1),
                ),
                None => return,
            }
        } else {
            (answer, false)
        };
        if let Some(items) = data::trapper_items(tables) {
            if let Ok(mut h) = self.history.lock() {
                if full || !incremental {
                    h.items = items;
                } else {
                    h.items.extend(items);
                }
            }
        }
        self.sections.configure(tables, full);
    }

    /// Run the proxy's cycle forever (the caller stops it by dropping the future).
    async fn run(self: Arc<Self>, server: SocketAddr) {
        let ctx = &self.ctx;
        let mut revisions = Revisions::default();
        let mut upload = true;
        loop {
            if ctx.has(feature::PROXY_HEARTBEAT) {
                exchange(ctx, server, &heartbeat(ctx), BadFrame::Magic).await;
                tokio::time::sleep(INTERVAL).await;
            }
            let request = config_request(ctx, &revisions);
            if let Some(answer) = exchange(ctx, server, &request, BadFrame::ShortLength).await {
                self.configure(&answer);
                if ctx.has(feature::INCREMENTAL_CONFIG) && !is(ctx.fault, Fault::StaleRevision) {
                    if answer.is_empty() && is(ctx.fault, Fault::ResetOnUnchanged) {
                        revisions = Revisions::default();
                    }
                    revisions.apply(&answer);
                }
            }
            tokio::time::sleep(INTERVAL).await;
            let Some(mut batch) = self.history.lock().ok().map(|h| h.batch()) else {
                return;
            };
            if !upload {
                // The server's history cache is full: history waits.
                batch.values.clear();
                batch.more = false;
                batch.proxy_delay = None;
            }
            let mut body = data_request(ctx, batch.base);
            data::History::add_to(&batch, &mut body, ctx.fault);
            let taken = self.sections.take(&mut body);
            let body = Value::Object(data::in_proxy_data_order(body));
            let committed = if is(ctx.fault, Fault::NoAckWait) {
                // Marks the rows sent whatever the server says.
                send_only(ctx, server, &body).await
            } else if let Some(answer) = exchange(ctx, server, &body, BadFrame::Truncated).await {
                if let Some(u) = wire::str_of(&answer, "upload") {
                    upload = u != "disabled";
                }
                let ok = wire::str_of(&answer, "response") == Some("success");
                if ok {
                    let tasks = answer.get("tasks").and_then(Value::as_array).cloned();
                    self.sections.accept_tasks(&tasks.unwrap_or_default());
                }
                ok
            } else {
                false
            };
            if committed {
                if let Ok(mut h) = self.history.lock() {
                    h.commit(&batch);
                }
                self.sections.commit(&taken);
            }
            // A batch with more behind it is followed at once, as the real proxy does.
            if !(committed && batch.more) {
                tokio::time::sleep(INTERVAL).await;
            }
        }
    }

    /// One trapper connection: `sender data`, `active checks`, `active check heartbeat`;
    /// anything else is closed without a word.
    async fn trapper(self: Arc<Self>, mut conn: Conn) {
        let fault = self.ctx.fault;
        let Some(frame) = wire::read_one(&mut conn, wire::REQUEST_TIMEOUT).await else {
            return;
        };
        let Payload::Object(map) = wire::classify(&frame.payload) else {
            return conn.shutdown().await;
        };
        let started = std::time::Instant::now();
        let reply = match wire::request_of(&map) {
            Some("sender data") => {
                let values = map
                    .get("data")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let (processed, failed) = self
                    .history
                    .lock()
                    .map(|mut h| h.trap(values))
                    .unwrap_or((0, values.len()));
                Some(json!({
                    "response": "success",
                    "info": format!(
                        "processed: {processed}; failed: {failed}; total: {}; seconds spent: {:.6}",
                        values.len(),
                        started.elapsed().as_secs_f64()
                    ),
                }))
            }
            Some(_) => {
                let peer_ip = conn
                    .peer()
                    .rsplit_once(':')
                    .map_or("127.0.0.1", |(ip, _)| ip)
                    .to_string();
                let connection = conn.stream().mode();
                self.sections
                    .trapper_over(&map, &peer_ip, connection)
                    .flatten()
            }
            None => None,
        };
        if let Some(reply) = reply {
            if wire::send(
                &mut conn,
                &reply,
                frame.is_compressed(),
                fault,
                BadFrame::Magic,
            )
            .await
                == Sent::Close
            {
                return;
            }
        }
        conn.shutdown().await
    }
}

impl Serve for ActiveProxy {
    fn serve(self: Arc<Self>, conn: Conn) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.trapper(conn))
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
        m.insert("version".into(), json!(ctx.announced()));
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
    m.insert("version".into(), json!(ctx.announced()));
    if ctx.has(feature::INCREMENTAL_CONFIG) {
        m.insert("session".into(), json!(ctx.session));
        let revision = if is(ctx.fault, Fault::WrongTypes) {
            json!(revisions.config.to_string())
        } else {
            json!(revisions.config)
        };
        m.insert("config_revision".into(), revision);
        if ctx.has(feature::PROXY_GROUPS) && revisions.hostmap != 0 {
            m.insert("hostmap_revision".into(), json!(revisions.hostmap));
        }
    }
    Value::Object(m)
}

fn data_request(ctx: &PeerContext, acked: u64) -> Map<String, Value> {
    let mut m = header("proxy data");
    m.extend(data::proxy_data(
        &ctx.version,
        ctx.fault,
        &ctx.session,
        acked,
        ctx.started,
    ));
    m
}

async fn connect(server: SocketAddr, tls: &TlsConfig) -> Option<wire::Conn> {
    match wire::connect(server, tls, CONNECT_TIMEOUT).await {
        Some(conn) => Some(conn),
        None => {
            // Nobody listening yet (or the handshake failed): try again on the next
            // turn of the cycle.
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
    let mut conn = connect(server, &ctx.tls).await?;
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
    let Some(mut conn) = connect(server, &ctx.tls).await else {
        return false;
    };
    let sent = wire::send(&mut conn, request, true, ctx.fault, BadFrame::Truncated).await;
    conn.shutdown().await;
    sent == Sent::Continue
}

//! The reference server trapper for agents and senders (6.0.14 behaviour, protocol.md
//! §1.7, §3.2, §3.3, §3.5): one request per connection, replies mirror the request's
//! compression flag, then the server closes.
//!
//! - `active checks`: agent.ping and agent.version; the item shape follows the agent's
//!   `version` (absent or < 4.4: `delay` in seconds and no `itemid`; >= 4.4: `itemid` and
//!   the interval string).
//! - `agent data` / `sender data`: every value of a known host and key is processed, the
//!   rest failed; `info` carries the counts. Hosts and keys starting with "unknown" (or
//!   empty) are not known, so scenarios reach the failure branches without configuration.
//! - invalid JSON gets the generic failure, JSON without a known request is closed
//!   silently, a `host:key:value` text payload gets the raw bytes `OK`.
//!
//! 6.4+ (incremental item configuration, protocol.md §3.2; ci/NOTES-trixie.md §4 for what
//! 7.0.22 agents send and accept): an `active checks` answer with items carries the
//! server's `config_revision` ([`REVISION`]); an agent that reports that revision gets a
//! bare `{"response":"success"}` — no `data`, no revision — as the real 7.0.22 proxy
//! answers (scenarios/agent-real-proxy); any other revision the full item list. 7.0 items also carry
//! a `timeout`. `agent data` rows may be itemid rows (7.0 agents): such a row counts as
//! processed when the message's top-level host is known.

use super::agent_common::info;
use super::context::{PeerContext, Setup};
use super::fault::{is, Fault};
use super::task::{self, RunningPeer, Serve};
use super::version::{parse_major_minor, AGENT_ITEMIDS_FROM, AGENT_WITHOUT_VERSION};
use super::wire::{self, BadFrame, Conn, Payload, Sent};
use crate::catalog::versions::feature;
use serde_json::{json, Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

/// The active items every known host has: key, itemid, interval.
const ITEMS: &[(&str, u64, u64)] = &[("agent.ping", 10001, 1), ("agent.version", 10002, 1)];

/// The item configuration revision a 6.4+ reference server announces.
pub(crate) const REVISION: u64 = 7001;

/// Start the server trapper for agents and senders: it listens.
pub(crate) async fn start(setup: Setup) -> Result<RunningPeer, String> {
    let listener = setup.bind().await?;
    let peer: Arc<dyn Serve> = Arc::new(TrapperForAgents::new(setup.context()));
    Ok(task::listening(setup.describe, listener, peer, setup.tls))
}

pub(crate) struct TrapperForAgents {
    ctx: PeerContext,
}

fn known(name: &str) -> bool {
    !name.is_empty() && !name.starts_with("unknown")
}

impl TrapperForAgents {
    pub fn new(ctx: PeerContext) -> Self {
        TrapperForAgents { ctx }
    }

    async fn handle(self: Arc<Self>, mut conn: Conn) {
        let fault = self.ctx.fault;
        let Some(frame) = wire::read_one(&mut conn, wire::REQUEST_TIMEOUT).await else {
            return;
        };
        if is(fault, Fault::NoReply) {
            wire::hold(&mut conn).await;
            return;
        }
        let started = Instant::now();
        let compress = frame.is_compressed();
        let map = match wire::classify(&frame.payload) {
            Payload::Object(map) => map,
            Payload::InvalidJson(reason) => {
                let reply = wire::invalid_json_reply(&reason);
                return self.reply(conn, &reply, false).await;
            }
            Payload::Other => {
                if is_legacy_sender(&frame.payload) {
                    // Written raw, without a ZBXD header (protocol.md §1.7).
                    let _ = conn.write_all(b"OK", wire::WRITE_TIMEOUT).await;
                }
                return wire::finish(conn, self.ctx.fault).await;
            }
        };
        let reply = match wire::request_of(&map) {
            Some("active checks") => self.active_checks(&map),
            Some("agent data") | Some("sender data") => self.values(&map, started),
            _ => return wire::finish(conn, self.ctx.fault).await,
        };
        self.reply(conn, &reply, compress).await
    }

    async fn reply(&self, mut conn: Conn, reply: &Value, compress: bool) {
        let payload = reply.to_string().into_bytes();
        let sent = wire::send_bytes(
            &mut conn,
            &payload,
            compress,
            self.ctx.fault,
            BadFrame::Magic,
        );
        if sent.await == Sent::Close {
            return;
        }
        wire::finish(conn, self.ctx.fault).await
    }

    fn active_checks(&self, request: &Map<String, Value>) -> Value {
        let fault = self.ctx.fault;
        let host = wire::str_of(request, "host").unwrap_or("");
        if !known(host) || is(fault, Fault::WrongResponse) {
            return json!({"response": "failed", "info": format!("host [{host}] not found")});
        }
        let version = match request.get("version").and_then(Value::as_str) {
            Some(v) => parse_major_minor(Some(v)),
            None => AGENT_WITHOUT_VERSION,
        };
        let modern = version >= AGENT_ITEMIDS_FROM;
        let wrong_types = is(fault, Fault::WrongTypes);
        let missing = is(fault, Fault::MissingFields);
        let revisions = self.ctx.has(feature::AGENT_ITEM_REVISIONS);
        if revisions
            && !is(fault, Fault::StaleRevision)
            && request.get("config_revision").and_then(Value::as_u64) == Some(REVISION)
        {
            // The agent's items are current: a bare success, no data and no revision
            // (measured on the real 7.0.22 proxy).
            return json!({"response": "success"});
        }
        let items: Vec<Value> = ITEMS
            .iter()
            .map(|(key, itemid, delay)| {
                let mut item = if modern {
                    json!({
                        "key": key,
                        "itemid": if wrong_types { json!(itemid.to_string()) } else { json!(itemid) },
                        "delay": if wrong_types { json!(delay) } else { json!(format!("{delay}s")) },
                        "lastlogsize": 0,
                        "mtime": 0,
                    })
                } else {
                    json!({
                        "key": key,
                        "delay": if wrong_types { json!(format!("{delay}s")) } else { json!(delay) },
                        "lastlogsize": 0,
                        "mtime": 0,
                    })
                };
                if modern && self.ctx.has(feature::ITEM_TIMEOUTS) {
                    item["timeout"] = json!("3s");
                }
                if missing {
                    // 6.4+ answers may lack `data`, so the fault drops a required item member.
                    if let Some(m) = item.as_object_mut() {
                        m.remove("mtime");
                    }
                }
                item
            })
            .collect();
        match (missing, revisions) {
            (true, false) => json!({"response": "success"}),
            (_, true) => {
                json!({"response": "success", "config_revision": REVISION, "data": items})
            }
            (false, false) => json!({"response": "success", "data": items}),
        }
    }

    /// `agent data` and `sender data`: count what is processed and what failed.
    fn values(&self, request: &Map<String, Value>, started: Instant) -> Value {
        let fault = self.ctx.fault;
        let rows: &[Value] = match request.get("data") {
            Some(Value::Array(rows)) => rows,
            // Observed tolerance: an object counts as an empty batch.
            Some(Value::Object(_)) => &[],
            _ => {
                return json!({
                    "response": "failed",
                    "info": "cannot find the \"data\" array in the received JSON object"
                })
            }
        };
        if let Some(Value::String(s)) = request.get("session") {
            if s.len() != 32 {
                return json!({
                    "response": "failed",
                    "info": format!("invalid session token length {}", s.len())
                });
            }
        }
        let top_host = wire::str_of(request, "host").unwrap_or("");
        let ok = |row: &Value| {
            if row.get("itemid").and_then(Value::as_u64).is_some() && row.get("key").is_none() {
                // itemid row (agent2; 7.0 agentd): the host is the message's.
                return known(top_host);
            }
            let host = row.get("host").and_then(Value::as_str).unwrap_or("");
            let key = row.get("key").and_then(Value::as_str).unwrap_or("");
            known(host) && known(key)
        };
        let mut processed = rows.iter().filter(|r| ok(r)).count();
        let mut failed = rows.len() - processed;
        if is(fault, Fault::WrongResponse) {
            failed += processed;
            processed = 0;
        }
        let text = info(processed, failed, started.elapsed().as_secs_f64());
        if is(fault, Fault::MissingFields) {
            json!({"response": "success"})
        } else if is(fault, Fault::WrongTypes) {
            json!({"response": "success", "info": processed})
        } else {
            json!({"response": "success", "info": text})
        }
    }
}

/// `host:key:value`: not JSON, not XML, at least two colons.
fn is_legacy_sender(payload: &[u8]) -> bool {
    !payload.is_empty()
        && payload[0] != b'<'
        && payload[0] != b'{'
        && payload.iter().filter(|b| **b == b':').count() >= 2
}

impl Serve for TrapperForAgents {
    fn serve(self: Arc<Self>, conn: Conn) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.handle(conn))
    }
}

#[cfg(test)]
mod tests {
    use super::super::context::test_context;
    use super::*;

    fn peer(fault: Option<Fault>) -> TrapperForAgents {
        TrapperForAgents::new(test_context("6.0", fault))
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn item_shape_follows_the_agent_version() {
        let p = peer(None);
        let legacy = p.active_checks(&obj(json!({"request": "active checks", "host": "h"})));
        assert_eq!(legacy["data"][0]["delay"], 1);
        assert!(legacy["data"][0].get("itemid").is_none());
        let modern = p.active_checks(&obj(
            json!({"request": "active checks", "host": "h", "version": "6.0"}),
        ));
        assert_eq!(modern["data"][0]["delay"], "1s");
        assert_eq!(modern["data"][0]["itemid"], 10001);
        let unknown = p.active_checks(&obj(json!({"request": "active checks", "host": "unknown"})));
        assert_eq!(unknown["response"], "failed");
    }

    #[test]
    fn revisions_at_7_0() {
        let p = TrapperForAgents::new(test_context("7.0", None));
        let first = p.active_checks(&obj(json!({"request": "active checks", "host": "h",
            "version": "7.0.22", "variant": 2, "session": "a".repeat(32), "config_revision": 0})));
        assert_eq!(first["config_revision"], REVISION);
        assert_eq!(first["data"][0]["itemid"], 10001);
        assert_eq!(first["data"][0]["timeout"], "3s");
        let again = p.active_checks(&obj(json!({"request": "active checks", "host": "h",
            "version": "7.0.22", "variant": 2, "session": "a".repeat(32), "config_revision": REVISION})));
        assert_eq!(again, json!({"response": "success"}));
        let rows = p.values(
            &obj(json!({"request": "agent data", "host": "h", "data": [
                {"itemid": 1, "value": "1", "id": 1, "clock": 1},
                {"itemid": 2, "value": "1", "id": 2, "clock": 1}]})),
            Instant::now(),
        );
        assert!(rows["info"]
            .as_str()
            .unwrap_or_default()
            .starts_with("processed: 2; failed: 0;"));
    }

    #[test]
    fn unknown_hosts_and_keys_count_as_failed() {
        let p = peer(None);
        let r = p.values(
            &obj(json!({"request": "sender data", "data": [
                {"host": "h", "key": "k", "value": "1"},
                {"host": "unknown-h", "key": "k", "value": "2"},
                {"host": "h", "key": "unknown.k", "value": "3"},
            ]})),
            Instant::now(),
        );
        let info = r["info"].as_str().unwrap_or_default();
        assert!(
            info.starts_with("processed: 1; failed: 2; total: 3; seconds spent: "),
            "{info}"
        );
        let wrong = peer(Some(Fault::WrongResponse)).values(
            &obj(json!({"request": "sender data", "data": [{"host": "h", "key": "k", "value": "1"}]})),
            Instant::now(),
        );
        assert!(wrong["info"]
            .as_str()
            .unwrap_or_default()
            .starts_with("processed: 0; failed: 1;"));
    }

    #[test]
    fn legacy_sender_payloads() {
        assert!(is_legacy_sender(b"h:k:v"));
        assert!(!is_legacy_sender(b"h:k"));
        assert!(!is_legacy_sender(b"<req>a:b:c"));
    }
}

//! The reference active agent (zabbix_agentd 6.0.14 style, protocol.md §3.2, §3.3): it
//! connects to the server (the harness) and asks for `active checks` without a version
//! field; once it has items it sends `agent data` with one row per item (host + key
//! rows, a 32-hex session fixed for its lifetime, increasing ids, clock/ns), one request
//! per connection, and starts over. Items it was given stay in force when a later
//! refresh fails, as with the real agent.
//!
//! 6.4+ (as zabbix_agentd 7.0.22, measured, ci/NOTES-trixie.md §4): `active checks`
//! carries the agent's version, `session` and the `config_revision` it last received;
//! only itemid-shaped items are taken (an answer with a legacy item is ignored, as the
//! real agent logs `cannot retrieve value of tag "itemid"`); `agent data` has itemid rows
//! and a top-level host and version; an `active check heartbeat` goes out at start and
//! every [`HEARTBEAT_EVERY`] cycles. 7.0 adds `variant` 1 to all three and the version to
//! the heartbeat.

use super::agent_common::{value_of, AGENT_HOST};
use super::context::{PeerContext, Setup};
use super::data;
use super::fault::{is, Fault};
use super::task::{self, RunningPeer};
use super::wire::{self, BadFrame, Payload, Sent};
use crate::catalog::versions::feature;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::time::Duration;

/// Pause between two cycles.
pub const INTERVAL: Duration = Duration::from_millis(200);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Cycles between two heartbeats (6.4+): 5 × 200 ms, i.e. HeartbeatFrequency=1.
pub const HEARTBEAT_EVERY: u32 = 5;
/// The `heartbeat_freq` the reference agent announces (seconds).
const HEARTBEAT_FREQ: u64 = 1;

/// One active item: its key and (6.4+, or agents >= 4.4) its itemid.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    key: String,
    itemid: Option<u64>,
}

/// Start the active agent: it connects to the server.
pub(crate) async fn start(setup: Setup) -> Result<RunningPeer, String> {
    let server = setup.target()?;
    let ctx = setup.context();
    Ok(task::spawn(setup.describe, None, move |stop| {
        task::until_stopped(stop, run(ctx, server))
    }))
}

/// Run the agent's cycle forever (the caller stops it by dropping the future).
async fn run(ctx: PeerContext, server: SocketAddr) {
    let session = data::new_session();
    let mut next_id = 1u64;
    let mut items: Vec<Item> = Vec::new();
    let mut revision = 0u64;
    let mut cycle = 0u32;
    loop {
        if is(ctx.fault, Fault::NoReply) {
            // Connects and says nothing; the harness times out waiting.
            if let Some(mut conn) = wire::connect(server, &ctx.tls, CONNECT_TIMEOUT).await {
                wire::hold(&mut conn).await;
            }
            tokio::time::sleep(INTERVAL).await;
            continue;
        }
        if ctx.has(feature::AGENT_HEARTBEAT) && cycle % HEARTBEAT_EVERY == 0 {
            exchange(&ctx, server, &heartbeat(&ctx)).await;
        }
        cycle = cycle.wrapping_add(1);
        let request = checks_request(&ctx, &session, revision);
        if let Some(Payload::Object(answer)) = exchange(&ctx, server, &request).await {
            if let Some(given) = items_of(&ctx, &answer) {
                items = given;
                if let Some(r) = data::u64_of(&answer, "config_revision") {
                    revision = r;
                }
            }
        }
        if !items.is_empty() {
            let request = data_request(&ctx, &session, &items, &mut next_id);
            exchange(&ctx, server, &request).await;
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// `version` (the full release) and, from 7.0, `variant` 1 — what 7.0.22 agentd adds to
/// every active message (6.4 assumed to send the version only).
fn add_version(ctx: &PeerContext, m: &mut Map<String, Value>) {
    m.insert("version".into(), json!(ctx.version.announce));
    if ctx.has(feature::AGENT_VARIANT) {
        m.insert("variant".into(), json!(1));
    }
}

fn checks_request(ctx: &PeerContext, session: &str, revision: u64) -> Value {
    let mut m = Map::new();
    m.insert("request".into(), json!("active checks"));
    if !is(ctx.fault, Fault::MissingFields) {
        m.insert("host".into(), json!(AGENT_HOST));
    }
    if ctx.has(feature::AGENT_ITEM_REVISIONS) {
        let revision = if is(ctx.fault, Fault::StaleRevision) {
            0
        } else {
            revision
        };
        m.insert("config_revision".into(), json!(revision));
        m.insert("session".into(), json!(session));
        add_version(ctx, &mut m);
    }
    Value::Object(m)
}

/// `active check heartbeat` (6.4+; 7.0 with version and variant).
fn heartbeat(ctx: &PeerContext) -> Value {
    let mut m = Map::new();
    m.insert("request".into(), json!("active check heartbeat"));
    m.insert("host".into(), json!(AGENT_HOST));
    if is(ctx.fault, Fault::WrongTypes) {
        m.insert("heartbeat_freq".into(), json!(HEARTBEAT_FREQ.to_string()));
    } else if !is(ctx.fault, Fault::MissingFields) {
        m.insert("heartbeat_freq".into(), json!(HEARTBEAT_FREQ));
    }
    if ctx.has(feature::AGENT_VARIANT) {
        add_version(ctx, &mut m);
    }
    Value::Object(m)
}

/// The items of a successful `active checks` answer; `None` when it is not one, or
/// (6.4+) when an item lacks its itemid.
fn items_of(ctx: &PeerContext, answer: &Map<String, Value>) -> Option<Vec<Item>> {
    if wire::str_of(answer, "response") != Some("success") {
        return None;
    }
    let need_itemid = ctx.has(feature::AGENT_ITEM_REVISIONS);
    let mut out = Vec::new();
    for i in answer.get("data")?.as_array()? {
        let Some(key) = i.get("key").and_then(Value::as_str) else {
            continue;
        };
        let itemid = i.get("itemid").and_then(Value::as_u64);
        if need_itemid && itemid.is_none() {
            return None;
        }
        out.push(Item {
            key: key.to_string(),
            itemid,
        });
    }
    Some(out)
}

/// One `agent data` message with a row per item: host + key rows up to 6.0, itemid rows
/// with a top-level host and version from 6.4.
fn data_request(ctx: &PeerContext, session: &str, items: &[Item], next_id: &mut u64) -> Value {
    let wrong_types = is(ctx.fault, Fault::WrongTypes);
    let by_itemid = ctx.has(feature::AGENT_ITEM_REVISIONS);
    let (clock, ns) = data::now();
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let key = item.key.as_str();
            let id = *next_id;
            *next_id += 1;
            let mut row = Map::new();
            match (by_itemid, item.itemid) {
                (true, Some(itemid)) => {
                    row.insert("itemid".into(), json!(itemid));
                }
                _ => {
                    row.insert("host".into(), json!(AGENT_HOST));
                    row.insert("key".into(), json!(key));
                }
            }
            match value_of(ctx, key) {
                Some(v) if wrong_types => {
                    row.insert(
                        "value".into(),
                        v.parse::<i64>().map_or(json!(v), |n| json!(n)),
                    );
                }
                Some(v) => {
                    row.insert("value".into(), json!(v));
                }
                None => {
                    row.insert("state".into(), json!(1));
                    row.insert("value".into(), json!("Unsupported item key."));
                }
            }
            row.insert(
                "id".into(),
                if wrong_types {
                    json!(id.to_string())
                } else {
                    json!(id)
                },
            );
            row.insert("clock".into(), json!(clock));
            row.insert("ns".into(), json!(ns));
            Value::Object(row)
        })
        .collect();
    let mut m = Map::new();
    m.insert("request".into(), json!("agent data"));
    if !is(ctx.fault, Fault::MissingFields) {
        m.insert("session".into(), json!(session));
    }
    if by_itemid {
        add_version(ctx, &mut m);
        m.insert("host".into(), json!(AGENT_HOST));
    }
    m.insert("data".into(), Value::Array(rows));
    m.insert("clock".into(), json!(clock));
    m.insert("ns".into(), json!(ns));
    Value::Object(m)
}

/// One request and its answer on a fresh connection (agentd sends plain frames).
async fn exchange(ctx: &PeerContext, server: SocketAddr, request: &Value) -> Option<Payload> {
    let mut conn = wire::connect(server, &ctx.tls, CONNECT_TIMEOUT).await?;
    let payload = request.to_string().into_bytes();
    let bad = if wire::request_of(request.as_object()?) == Some("agent data") {
        BadFrame::Truncated
    } else {
        BadFrame::Magic
    };
    if wire::send_bytes(&mut conn, &payload, false, ctx.fault, bad).await == Sent::Close {
        return None;
    }
    let answer = wire::read_one(&mut conn, ANSWER_TIMEOUT).await;
    conn.shutdown().await;
    answer.map(|f| wire::classify(&f.payload))
}

#[cfg(test)]
mod tests {
    use super::super::context::test_context;
    use super::*;

    fn ctx(fault: Option<Fault>) -> PeerContext {
        test_context("6.0", fault)
    }

    fn items(keys: &[&str]) -> Vec<Item> {
        keys.iter()
            .map(|k| Item {
                key: k.to_string(),
                itemid: None,
            })
            .collect()
    }

    fn ctx70(fault: Option<Fault>) -> PeerContext {
        test_context("7.0", fault)
    }

    #[test]
    fn agent_data_rows_follow_the_items() {
        let mut id = 1;
        let keys = items(&["agent.ping", "nope"]);
        let v = data_request(&ctx(None), &"a".repeat(32), &keys, &mut id);
        assert_eq!(v["data"][0]["value"], "1");
        assert_eq!(v["data"][0]["id"], 1);
        assert_eq!(v["data"][1]["state"], 1);
        assert_eq!(id, 3);
        let broken = data_request(&ctx(Some(Fault::WrongTypes)), "s", &keys, &mut id);
        assert_eq!(broken["data"][0]["value"], 1);
        assert!(broken["data"][0]["id"].is_string());
    }

    #[test]
    fn only_successful_answers_give_items() {
        let ok = json!({"response": "success", "data": [{"key": "agent.ping"}]});
        let failed = json!({"response": "failed", "info": "host [x] not found"});
        assert_eq!(
            items_of(&ctx(None), ok.as_object().expect("object")),
            Some(items(&["agent.ping"]))
        );
        assert_eq!(
            items_of(&ctx(None), failed.as_object().expect("object")),
            None
        );
        // 7.0 takes only itemid items.
        assert_eq!(
            items_of(&ctx70(None), ok.as_object().expect("object")),
            None
        );
    }

    #[test]
    fn messages_at_7_0_look_like_agentd_7_0_22() {
        let c = ctx70(None);
        let s = "b".repeat(32);
        let req = checks_request(&c, &s, 5);
        assert_eq!(
            req,
            json!({"request": "active checks", "host": AGENT_HOST, "config_revision": 5,
                   "session": s, "version": "7.0.0", "variant": 1})
        );
        let answer = json!({"response": "success", "config_revision": 9,
            "data": [{"key": "agent.ping", "itemid": 44302, "delay": "1s", "lastlogsize": 0, "mtime": 0}]});
        let given = items_of(&c, answer.as_object().expect("object")).expect("items");
        let mut id = 1;
        let data = data_request(&c, &s, &given, &mut id);
        assert_eq!(data["data"][0]["itemid"], 44302);
        assert_eq!(data["data"][0]["value"], "1");
        assert!(data["data"][0].get("host").is_none());
        assert_eq!(
            (data["host"].clone(), data["variant"].clone()),
            (json!(AGENT_HOST), json!(1))
        );
        let hb = heartbeat(&c);
        assert_eq!(
            hb,
            json!({"request": "active check heartbeat", "host": AGENT_HOST, "heartbeat_freq": 1,
                   "version": "7.0.0", "variant": 1})
        );
        assert!(heartbeat(&ctx70(Some(Fault::MissingFields)))
            .get("heartbeat_freq")
            .is_none());
        assert_eq!(
            heartbeat(&ctx70(Some(Fault::WrongTypes)))["heartbeat_freq"],
            "1"
        );
        // 6.4: no variant, no version in the heartbeat.
        let c64 = test_context("6.4", None);
        assert!(heartbeat(&c64).get("version").is_none());
        assert!(checks_request(&c64, &s, 0).get("variant").is_none());
    }
}

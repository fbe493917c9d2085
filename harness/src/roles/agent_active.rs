//! The reference active agent (zabbix_agentd 6.0.14 style, protocol.md §3.2, §3.3): it
//! connects to the server (the harness) and asks for `active checks` without a version
//! field; once it has items it sends `agent data` with one row per item (host + key
//! rows, a 32-hex session fixed for its lifetime, increasing ids, clock/ns), one request
//! per connection, and starts over. Items it was given stay in force when a later
//! refresh fails, as with the real agent.

use super::agent_passive::{value_of, AGENT_HOST};
use super::agent_registry::{is, send_payload, AgentContext, AgentFault};
use super::data;
use super::wire::{self, BadFrame, Payload, Sent};
use crate::transport::connect_tcp;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::time::Duration;

/// Pause between two cycles.
pub const INTERVAL: Duration = Duration::from_millis(200);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Run the agent's cycle forever (the caller stops it by dropping the future).
pub(crate) async fn run(ctx: AgentContext, server: SocketAddr) {
    let session = data::new_session();
    let mut next_id = 1u64;
    let mut keys: Vec<String> = Vec::new();
    loop {
        if is(ctx.fault, AgentFault::NoReply) {
            // Connects and says nothing; the harness times out waiting.
            if let Ok(stream) = connect_tcp(&server.to_string(), CONNECT_TIMEOUT).await {
                let mut conn = wire::conn(stream, server.to_string());
                wire::hold(&mut conn).await;
            }
            tokio::time::sleep(INTERVAL).await;
            continue;
        }
        if let Some(Payload::Object(answer)) = exchange(&ctx, server, &checks_request(&ctx)).await {
            if let Some(given) = item_keys(&answer) {
                keys = given;
            }
        }
        if !keys.is_empty() {
            let request = data_request(&ctx, &session, &keys, &mut next_id);
            exchange(&ctx, server, &request).await;
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

fn checks_request(ctx: &AgentContext) -> Value {
    if is(ctx.fault, AgentFault::MissingFields) {
        json!({"request": "active checks"})
    } else {
        json!({"request": "active checks", "host": AGENT_HOST})
    }
}

/// The keys of a successful `active checks` answer; `None` when it is not one.
fn item_keys(answer: &Map<String, Value>) -> Option<Vec<String>> {
    if wire::str_of(answer, "response") != Some("success") {
        return None;
    }
    let items = answer.get("data")?.as_array()?;
    Some(
        items
            .iter()
            .filter_map(|i| i.get("key").and_then(Value::as_str))
            .map(str::to_string)
            .collect(),
    )
}

/// One `agent data` message with a row per key.
fn data_request(ctx: &AgentContext, session: &str, keys: &[String], next_id: &mut u64) -> Value {
    let wrong_types = is(ctx.fault, AgentFault::WrongTypes);
    let (clock, ns) = data::now();
    let rows: Vec<Value> = keys
        .iter()
        .map(|key| {
            let id = *next_id;
            *next_id += 1;
            let mut row = Map::new();
            row.insert("host".into(), json!(AGENT_HOST));
            row.insert("key".into(), json!(key));
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
    if !is(ctx.fault, AgentFault::MissingFields) {
        m.insert("session".into(), json!(session));
    }
    m.insert("data".into(), Value::Array(rows));
    m.insert("clock".into(), json!(clock));
    m.insert("ns".into(), json!(ns));
    Value::Object(m)
}

/// One request and its answer on a fresh connection (agentd sends plain frames).
async fn exchange(ctx: &AgentContext, server: SocketAddr, request: &Value) -> Option<Payload> {
    let stream = connect_tcp(&server.to_string(), CONNECT_TIMEOUT)
        .await
        .ok()?;
    let mut conn = wire::conn(stream, server.to_string());
    let payload = request.to_string().into_bytes();
    let bad = if wire::request_of(request.as_object()?) == Some("agent data") {
        BadFrame::Truncated
    } else {
        BadFrame::Magic
    };
    if send_payload(&mut conn, &payload, false, ctx.fault, bad).await == Sent::Close {
        return None;
    }
    let answer = wire::read_one(&mut conn, ANSWER_TIMEOUT).await;
    conn.shutdown().await;
    answer.map(|f| wire::classify(&f.payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(fault: Option<AgentFault>) -> AgentContext {
        AgentContext {
            profile: super::super::version::lookup("6.0").expect("6.0 profile"),
            fault,
        }
    }

    #[test]
    fn agent_data_rows_follow_the_items() {
        let mut id = 1;
        let keys = vec!["agent.ping".to_string(), "nope".to_string()];
        let v = data_request(&ctx(None), &"a".repeat(32), &keys, &mut id);
        assert_eq!(v["data"][0]["value"], "1");
        assert_eq!(v["data"][0]["id"], 1);
        assert_eq!(v["data"][1]["state"], 1);
        assert_eq!(id, 3);
        let broken = data_request(&ctx(Some(AgentFault::WrongTypes)), "s", &keys, &mut id);
        assert_eq!(broken["data"][0]["value"], 1);
        assert!(broken["data"][0]["id"].is_string());
    }

    #[test]
    fn only_successful_answers_give_items() {
        let ok = json!({"response": "success", "data": [{"key": "agent.ping"}]});
        let failed = json!({"response": "failed", "info": "host [x] not found"});
        assert_eq!(
            item_keys(ok.as_object().expect("object")),
            Some(vec!["agent.ping".to_string()])
        );
        assert_eq!(item_keys(failed.as_object().expect("object")), None);
    }
}

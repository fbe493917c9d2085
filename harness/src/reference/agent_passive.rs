//! The reference passive agent (zabbix_agentd 6.0.14 behaviour, protocol.md §3.1): one
//! plain-text check per connection. The request payload is the item key (a trailing
//! `\r\n` is ignored); the reply is the value, or `ZBX_NOTSUPPORTED`, a NUL byte and the
//! error message; plain 0x01 frames; then the agent closes.
//!
//! At 7.0 a payload that is a JSON object is a JSON passive check request, answered as
//! zabbix_agentd 7.0.22 does (measured, ci/NOTES-trixie.md §4): `{"version","variant":1,
//! "data":[{"value"}|{"error"}]}` for the first item only, or `{"version","variant",
//! "error"}` when the request itself is malformed. Plain keys are still answered the
//! old way; a payload that is not valid JSON is taken for a key, as the real agents do.

use super::agent_common::value_of;
use super::context::{PeerContext, Setup};
use super::fault::{is, Fault};
use super::task::{self, RunningPeer, Serve};
use super::wire::{self, BadFrame, Conn, Sent};
use crate::catalog::versions::feature;
use serde_json::{json, Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The message of agentd for a key it does not know.
const UNSUPPORTED: &str = "Unsupported item key.";

/// Start the passive agent: it listens.
pub(crate) async fn start(setup: Setup) -> Result<RunningPeer, String> {
    let listener = setup.bind().await?;
    let peer: Arc<dyn Serve> = Arc::new(AgentPassive {
        ctx: setup.context(),
    });
    Ok(task::listening(setup.describe, listener, peer, setup.tls))
}

pub(crate) struct AgentPassive {
    ctx: PeerContext,
}

/// What the agent answers to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Value(String),
    NotSupported(String),
}

/// The agent's answer to `key`.
pub(crate) fn answer(ctx: &PeerContext, key: &str) -> Answer {
    match value_of(ctx, key) {
        Some(v) => Answer::Value(v),
        // wrong-response: a value where the key is unsupported.
        None if is(ctx.fault, Fault::WrongResponse) => Answer::Value("0".into()),
        None => Answer::NotSupported(UNSUPPORTED.into()),
    }
}

/// The reply payload for an answer, with the text-level faults applied.
pub(crate) fn payload(fault: Option<Fault>, answer: &Answer) -> Vec<u8> {
    match answer {
        Answer::Value(v) => v.as_bytes().to_vec(),
        Answer::NotSupported(_) if is(fault, Fault::MissingFields) => {
            b"ZBX_NOTSUPPORTED\0".to_vec()
        }
        Answer::NotSupported(m) if is(fault, Fault::NoNul) => {
            format!("ZBX_NOTSUPPORTED {m}").into_bytes()
        }
        Answer::NotSupported(m) => {
            let mut p = b"ZBX_NOTSUPPORTED\0".to_vec();
            p.extend_from_slice(m.as_bytes());
            p
        }
    }
}

/// The 7.0 JSON request in `payload`, if it is a JSON object and the peer speaks 7.0.
fn json_request(ctx: &PeerContext, payload: &[u8]) -> Option<Map<String, Value>> {
    if !ctx.has(feature::JSON_PASSIVE_CHECKS) || is(ctx.fault, Fault::NoJson) {
        return None;
    }
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// `timeout` of a JSON passive check: seconds as a number or a string with an optional
/// `s` suffix ("3", "3s"; both accepted by 7.0.22 agents); valid from 1 to 600.
fn timeout_ok(v: &Value) -> bool {
    let secs = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.strip_suffix('s').unwrap_or(s).parse::<u64>().ok(),
        _ => None,
    };
    secs.is_some_and(|t| (1..=600).contains(&t))
}

/// The error text agentd 7.0 gives for a missing member.
fn missing(what: &str, name: &str) -> String {
    format!(
        "cannot find the \"{name}\" {what} in the received JSON object: \
         cannot find pair with name \"{name}\""
    )
}

/// The reply to a JSON passive check request: `Ok(item)` for the first item's value or
/// error, `Err(message)` for a malformed request.
fn json_answer(ctx: &PeerContext, request: &Map<String, Value>) -> Result<Value, String> {
    let wrong = is(ctx.fault, Fault::WrongResponse);
    let req = match request.get("request") {
        Some(Value::String(r)) => r.as_str(),
        _ => return Err(missing("object", "request")),
    };
    if req != "passive checks" {
        // wrong-response: answers an unknown request as if it were a check.
        return if wrong {
            Ok(json!({"value": "1"}))
        } else {
            Err(format!("unknown request \"{req}\""))
        };
    }
    let Some(Value::Array(items)) = request.get("data") else {
        return Err(missing("array", "data"));
    };
    // Only the first item is answered (measured: two keys → one value).
    let Some(first) = items.first() else {
        return if wrong {
            Ok(json!({"value": "1"}))
        } else {
            Err("received empty \"data\" tag".into())
        };
    };
    let Some(key) = first.get("key").and_then(Value::as_str) else {
        return Err(missing("object", "key"));
    };
    let Some(timeout) = first.get("timeout") else {
        return Err(missing("object", "timeout"));
    };
    if !timeout_ok(timeout) {
        return Ok(json!({"error": "Unsupported timeout value."}));
    }
    Ok(match answer(ctx, key) {
        Answer::Value(v) if is(ctx.fault, Fault::WrongTypes) => {
            json!({"value": v.parse::<i64>().map_or(json!(v), |n| json!(n))})
        }
        Answer::Value(v) => json!({"value": v}),
        Answer::NotSupported(m) => json!({"error": m}),
    })
}

/// The whole JSON reply, with the JSON-level faults applied.
pub(crate) fn json_reply(ctx: &PeerContext, request: &Map<String, Value>) -> Value {
    let mut reply = Map::new();
    reply.insert("version".into(), json!(ctx.version.announce));
    if !is(ctx.fault, Fault::MissingFields) {
        let variant = if is(ctx.fault, Fault::WrongTypes) {
            json!("1")
        } else {
            json!(1)
        };
        reply.insert("variant".into(), variant);
    }
    match json_answer(ctx, request) {
        Ok(item) => reply.insert("data".into(), json!([item])),
        Err(e) => reply.insert("error".into(), json!(e)),
    };
    Value::Object(reply)
}

/// The key of a passive check request: the payload without a trailing `\r\n`/`\n`.
fn key_of(payload: &[u8]) -> String {
    let mut end = payload.len();
    while end > 0 && matches!(payload[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    String::from_utf8_lossy(&payload[..end]).into_owned()
}

impl AgentPassive {
    async fn handle(self: Arc<Self>, mut conn: Conn) {
        let fault = self.ctx.fault;
        let Some(frame) = wire::read_one(&mut conn, wire::REQUEST_TIMEOUT).await else {
            return;
        };
        if is(fault, Fault::NoReply) {
            wire::hold(&mut conn).await;
            return;
        }
        let reply = match json_request(&self.ctx, &frame.payload) {
            Some(request) => json_reply(&self.ctx, &request).to_string().into_bytes(),
            None => payload(fault, &answer(&self.ctx, &key_of(&frame.payload))),
        };
        // agentd answers plain frames whatever the request was.
        if wire::send_bytes(&mut conn, &reply, false, fault, BadFrame::Magic).await == Sent::Close {
            return;
        }
        wire::finish(conn, fault).await
    }
}

impl Serve for AgentPassive {
    fn serve(self: Arc<Self>, conn: Conn) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.handle(conn))
    }
}

#[cfg(test)]
mod tests {
    use super::super::context::test_context;
    use super::*;

    fn ctx(fault: Option<Fault>) -> PeerContext {
        test_context("6.0", fault)
    }

    #[test]
    fn answers_like_agentd() {
        let c = ctx(None);
        assert_eq!(payload(None, &answer(&c, "agent.ping")), b"1");
        assert_eq!(payload(None, &answer(&c, "agent.version")), b"6.0.14");
        assert_eq!(
            payload(None, &answer(&c, "no.such.key")),
            b"ZBX_NOTSUPPORTED\0Unsupported item key."
        );
        assert_eq!(key_of(b"agent.ping\r\n"), "agent.ping");
    }

    fn ctx70(fault: Option<Fault>) -> PeerContext {
        test_context("7.0", fault)
    }

    fn reply70(fault: Option<Fault>, request: Value) -> Value {
        let c = ctx70(fault);
        let req = json_request(&c, request.to_string().as_bytes());
        match req {
            Some(r) => json_reply(&c, &r),
            None => json!(String::from_utf8_lossy(&payload(
                fault,
                &answer(&c, &request.to_string())
            ))),
        }
    }

    #[test]
    fn json_passive_checks_like_agentd_7_0() {
        let check = |key: &str, timeout: Value| json!({"request": "passive checks", "data": [{"key": key, "timeout": timeout}]});
        assert_eq!(
            reply70(None, check("agent.version", json!(3))),
            json!({"version": "7.0.0", "variant": 1, "data": [{"value": "7.0.0"}]})
        );
        assert_eq!(
            reply70(None, check("bogus", json!("3s")))["data"][0]["error"],
            "Unsupported item key."
        );
        assert_eq!(
            reply70(None, check("agent.ping", json!(0)))["data"][0]["error"],
            "Unsupported timeout value."
        );
        let two = json!({"request": "passive checks", "data": [
            {"key": "agent.ping", "timeout": 3}, {"key": "agent.version", "timeout": 3}]});
        assert_eq!(reply70(None, two)["data"], json!([{"value": "1"}]));
        let empty = json!({"request": "passive checks", "data": []});
        assert_eq!(
            reply70(None, empty.clone())["error"],
            "received empty \"data\" tag"
        );
        let nope = json!({"request": "nope", "data": []});
        assert_eq!(
            reply70(None, nope.clone())["error"],
            "unknown request \"nope\""
        );
        let no_timeout = json!({"request": "passive checks", "data": [{"key": "agent.ping"}]});
        assert!(reply70(None, no_timeout)["error"]
            .as_str()
            .is_some_and(|e| e.contains("\"timeout\"")));
        // 6.0 has no JSON passive checks: the payload is an (unsupported) key.
        let c60 = ctx(None);
        assert!(json_request(&c60, check("agent.ping", json!(3)).to_string().as_bytes()).is_none());
        // Faults.
        assert!(
            reply70(Some(Fault::MissingFields), check("agent.ping", json!(3)))
                .get("variant")
                .is_none()
        );
        let wt = reply70(Some(Fault::WrongTypes), check("agent.ping", json!(3)));
        assert_eq!(
            (wt["variant"].clone(), wt["data"][0]["value"].clone()),
            (json!("1"), json!(1))
        );
        assert_eq!(
            reply70(Some(Fault::WrongResponse), nope)["data"][0]["value"],
            "1"
        );
        assert_eq!(
            reply70(Some(Fault::NoJson), check("agent.ping", json!(3))),
            json!("ZBX_NOTSUPPORTED\u{0}Unsupported item key.")
        );
    }

    #[test]
    fn faults_change_the_text() {
        let nul = Some(Fault::NoNul);
        assert_eq!(
            payload(nul, &answer(&ctx(nul), "x")),
            b"ZBX_NOTSUPPORTED Unsupported item key."
        );
        let missing = Some(Fault::MissingFields);
        assert_eq!(
            payload(missing, &answer(&ctx(missing), "x")),
            b"ZBX_NOTSUPPORTED\0"
        );
        let wrong = Some(Fault::WrongResponse);
        assert_eq!(payload(wrong, &answer(&ctx(wrong), "agent.ping")), b"0");
        assert_eq!(payload(wrong, &answer(&ctx(wrong), "x")), b"0");
    }
}

//! The reference passive agent (zabbix_agentd 6.0.14 behaviour, protocol.md §3.1): one
//! plain-text check per connection. The request payload is the item key (a trailing
//! `\r\n` is ignored); the reply is the value, or `ZBX_NOTSUPPORTED`, a NUL byte and the
//! error message; plain 0x01 frames; then the agent closes.

use super::agent_registry::{is, send_payload, AgentContext, AgentFault};
use super::wire::{self, BadFrame, Conn, Sent};
use super::Serve;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The host name the reference agents report (`agent.hostname`, active `host`).
pub(crate) const AGENT_HOST: &str = "zbx-conform-agent";
/// The message of agentd for a key it does not know.
const UNSUPPORTED: &str = "Unsupported item key.";

pub(crate) struct AgentPassive {
    ctx: AgentContext,
}

/// What the agent answers to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Value(String),
    NotSupported(String),
}

/// The value of one of the reference agents' keys, or `None` for an unknown key.
/// Shared with the active agent, which reports the same values.
pub(crate) fn value_of(ctx: &AgentContext, key: &str) -> Option<String> {
    let wrong = is(ctx.fault, AgentFault::WrongResponse);
    match key {
        "agent.ping" => Some(if wrong { "0" } else { "1" }.to_string()),
        "agent.version" => Some(
            if wrong {
                super::version::WRONG_VERSION
            } else {
                ctx.profile.full
            }
            .to_string(),
        ),
        "agent.hostname" => Some(AGENT_HOST.to_string()),
        _ => None,
    }
}

/// The agent's answer to `key`.
pub(crate) fn answer(ctx: &AgentContext, key: &str) -> Answer {
    match value_of(ctx, key) {
        Some(v) => Answer::Value(v),
        // wrong-response: a value where the key is unsupported.
        None if is(ctx.fault, AgentFault::WrongResponse) => Answer::Value("0".into()),
        None => Answer::NotSupported(UNSUPPORTED.into()),
    }
}

/// The reply payload for an answer, with the text-level faults applied.
pub(crate) fn payload(fault: Option<AgentFault>, answer: &Answer) -> Vec<u8> {
    match answer {
        Answer::Value(v) => v.as_bytes().to_vec(),
        Answer::NotSupported(_) if is(fault, AgentFault::MissingFields) => {
            b"ZBX_NOTSUPPORTED\0".to_vec()
        }
        Answer::NotSupported(m) if is(fault, AgentFault::NoNul) => {
            format!("ZBX_NOTSUPPORTED {m}").into_bytes()
        }
        Answer::NotSupported(m) => {
            let mut p = b"ZBX_NOTSUPPORTED\0".to_vec();
            p.extend_from_slice(m.as_bytes());
            p
        }
    }
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
    pub fn new(ctx: AgentContext) -> Self {
        AgentPassive { ctx }
    }

    async fn handle(self: Arc<Self>, mut conn: Conn) {
        let fault = self.ctx.fault;
        let Some(frame) = wire::read_one(&mut conn, wire::REQUEST_TIMEOUT).await else {
            return;
        };
        if is(fault, AgentFault::NoReply) {
            wire::hold(&mut conn).await;
            return;
        }
        let key = key_of(&frame.payload);
        let reply = payload(fault, &answer(&self.ctx, &key));
        // agentd answers plain frames whatever the request was.
        if send_payload(&mut conn, &reply, false, fault, BadFrame::Magic).await == Sent::Close {
            return;
        }
        wire::finish(conn, self.ctx.wire_fault()).await
    }
}

impl Serve for AgentPassive {
    fn serve(self: Arc<Self>, conn: Conn) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.handle(conn))
    }
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

    #[test]
    fn faults_change_the_text() {
        let nul = Some(AgentFault::NoNul);
        assert_eq!(
            payload(nul, &answer(&ctx(nul), "x")),
            b"ZBX_NOTSUPPORTED Unsupported item key."
        );
        let missing = Some(AgentFault::MissingFields);
        assert_eq!(
            payload(missing, &answer(&ctx(missing), "x")),
            b"ZBX_NOTSUPPORTED\0"
        );
        let wrong = Some(AgentFault::WrongResponse);
        assert_eq!(payload(wrong, &answer(&ctx(wrong), "agent.ping")), b"0");
        assert_eq!(payload(wrong, &answer(&ctx(wrong), "x")), b"0");
    }
}

//! What the agent-protocol reference peers share: the agents' host name and their key
//! → value table (the passive agent answers it, the active agent reports it), and the
//! `info` text of a trapper's answer to values. A leaf: it imports none of the peers,
//! so they can all use it without importing each other.

use super::context::PeerContext;
use super::fault::Fault;
use super::version::WRONG_VERSION;

/// The host name the reference agents report (`agent.hostname`, active `host`).
pub(crate) const AGENT_HOST: &str = "zbx-conform-agent";

/// The value of one of the reference agents' keys, or `None` for an unknown key.
/// `wrong-response` gives wrong values (`agent.ping` 0, an old `agent.version`).
pub(crate) fn value_of(ctx: &PeerContext, key: &str) -> Option<String> {
    let wrong = ctx.is(Fault::WrongResponse);
    match key {
        "agent.ping" => Some(if wrong { "0" } else { "1" }.to_string()),
        "agent.version" => Some(if wrong {
            WRONG_VERSION.to_string()
        } else {
            ctx.version.announce.clone()
        }),
        "agent.hostname" => Some(AGENT_HOST.to_string()),
        // zabbix_agentd (6.0+): what `run --peer` asks to name the program.
        "agent.variant" => Some("1".to_string()),
        _ => None,
    }
}

/// The `info` string of `agent data` / `sender data` replies (protocol.md §3.3).
pub(crate) fn info(processed: usize, failed: usize, seconds: f64) -> String {
    format!(
        "processed: {processed}; failed: {failed}; total: {}; seconds spent: {seconds:.6}",
        processed + failed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_has_the_server_format() {
        assert_eq!(
            info(2, 1, 0.000081),
            "processed: 2; failed: 1; total: 3; seconds spent: 0.000081"
        );
    }
}

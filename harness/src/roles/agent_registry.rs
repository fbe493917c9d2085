//! The agent-protocol reference peers (passive agent, active agent, server trapper for
//! agents and senders): their names, their faults, and how they start. Kept apart from
//! the server<->proxy peers so that either family can grow without touching the other;
//! `roles::start` hands every name listed here to [`start`].
//!
//! The faults reuse the server<->proxy names where the misbehaviour is the same idea
//! (`wrong-response`, `missing-fields`, ...) and add `no-nul`, which only exists in the
//! plain-text passive protocol.

use super::version::{self, VersionProfile};
use super::wire::{self, BadFrame, Conn, Sent};
use super::{agent_active, agent_passive, trapper_agents, RunningPeer, Serve};
use super::{fault::Fault, ReferenceConfig};
use crate::frame::{encode_frame, FrameOptions};
use std::sync::Arc;

/// Name, description, and whether the peer listens (true) or connects (false).
pub(crate) const REFERENCES: &[(&str, &str, bool)] = &[
    (
        "agent-passive",
        "a passive agent (zabbix_agentd style): listens; answers one plain-text passive check \
         per connection from a fixed table (agent.ping → 1, agent.version → the full version, \
         agent.hostname → zbx-conform-agent, agent.variant → 1), anything else ZBX_NOTSUPPORTED + NUL + \
         \"Unsupported item key.\", then closes; at 7.0 also JSON passive checks \
         (`{\"request\":\"passive checks\",...}` → version, variant 1, the first item's value \
         or error, or a request error, as zabbix_agentd 7.0.22 answers)",
        true,
    ),
    (
        "agent-active",
        "an active agent named \"zbx-conform-agent\" (zabbix_agentd style, no version field): \
         connects to the harness (connect_to), which plays the server trapper; asks for \
         `active checks`, then sends `agent data` rows for the items it was given, one \
         request per connection, every 200 ms; 6.4+ as zabbix_agentd 7.0.22: version, \
         session and config_revision in `active checks`, itemid items only, itemid rows, \
         an `active check heartbeat` at start and every second (7.0: variant 1 everywhere)",
        false,
    ),
    (
        "server-for-agents",
        "a server trapper for agents and senders: listens; answers `active checks` with \
         agent.ping and agent.version (legacy item shape without version, itemid shape for \
         version >= 4.4; 6.4+ with config_revision 7001 and no items for an agent reporting \
         it; 7.0 items with a timeout), `agent data` and `sender data` with \
         processed/failed/total counts (hosts or keys starting with \"unknown\" count as \
         failed; itemid rows count with the message's host)",
        true,
    ),
];

/// One deliberate misbehaviour of the agent-protocol peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgentFault {
    WrongResponse,
    MissingFields,
    WrongTypes,
    BadFrame,
    NoReply,
    ExtraBytes,
    NoClose,
    NoNul,
    NoJson,
    StaleRevision,
}

/// Every fault: what it is, its name, what it does and breaks, and which peers have it.
pub(crate) const FAULTS: &[(AgentFault, &str, &str, &[&str])] = &[
    (
        AgentFault::WrongResponse,
        "wrong-response",
        "agent-passive: agent.ping answers 0, agent.version 4.0.0, unknown keys get a value, \
         7.0 JSON requests it must refuse get a value; server-for-agents: every value counted as failed, active checks refused as \
         \"host [..] not found\" — breaks `match`/`kind` checks",
        &["agent-passive", "server-for-agents"],
    ),
    (
        AgentFault::MissingFields,
        "missing-fields",
        "agent-passive: ZBX_NOTSUPPORTED + NUL without a message, 7.0 JSON replies without \
         variant; agent-active: no session in agent data, no host in active checks, no \
         heartbeat_freq in heartbeats; server-for-agents: no info / no data (6.4+: items \
         without mtime) — breaks `schema` checks",
        &["agent-passive", "agent-active", "server-for-agents"],
    ),
    (
        AgentFault::WrongTypes,
        "wrong-types",
        "agent-passive: 7.0 JSON replies with numeric values and a string variant; \
         agent-active: numeric values and string ids in agent data, a string heartbeat_freq; \
         server-for-agents: numeric info, string itemid, integer delay for >= 4.4 agents — \
         breaks `schema` checks",
        &["agent-passive", "agent-active", "server-for-agents"],
    ),
    (
        AgentFault::BadFrame,
        "bad-frame",
        "undecodable frames (bad magic; agent data truncated) — breaks `frame` checks",
        &["agent-passive", "agent-active", "server-for-agents"],
    ),
    (
        AgentFault::NoReply,
        "no-reply",
        "never answers (agent-active: connects and sends nothing), keeps the connection open \
         — breaks `timeout` checks",
        &["agent-passive", "agent-active", "server-for-agents"],
    ),
    (
        AgentFault::ExtraBytes,
        "extra-bytes",
        "appends 8 garbage bytes after every frame — breaks `frame` checks",
        &["agent-passive", "agent-active", "server-for-agents"],
    ),
    (
        AgentFault::NoClose,
        "no-close",
        "keeps the connection open after answering — breaks `close` checks",
        &["agent-passive", "server-for-agents"],
    ),
    (
        AgentFault::NoNul,
        "no-nul",
        "agent-passive: \"ZBX_NOTSUPPORTED Unsupported item key.\" with a space instead of \
         the NUL, which a server takes as an ordinary value — breaks `kind` checks",
        &["agent-passive"],
    ),
    (
        AgentFault::NoJson,
        "no-json",
        "agent-passive at 7.0: takes a JSON passive check request for an item key, as a \
         pre-7.0 agent does (ZBX_NOTSUPPORTED + NUL + message) — breaks `kind` checks",
        &["agent-passive"],
    ),
    (
        AgentFault::StaleRevision,
        "stale-revision",
        "6.4+: agent-active always reports config_revision 0 (forgets the revision it was \
         sent); server-for-agents ignores the agent's revision and always sends every item — \
         breaks `match` checks",
        &["agent-active", "server-for-agents"],
    ),
];

impl AgentFault {
    pub(crate) fn parse(name: &str) -> Option<AgentFault> {
        FAULTS
            .iter()
            .find(|(_, n, _, _)| *n == name.trim())
            .map(|(f, _, _, _)| *f)
    }

    pub(crate) fn name(self) -> &'static str {
        FAULTS
            .iter()
            .find(|(f, _, _, _)| *f == self)
            .map(|(_, n, _, _)| *n)
            .unwrap_or("unknown")
    }

    fn applies_to(self, reference: &str) -> bool {
        FAULTS
            .iter()
            .any(|(f, _, _, refs)| *f == self && refs.contains(&reference))
    }

    /// The frame-level part, in the shared wire helpers' terms.
    pub(crate) fn wire(self) -> Option<Fault> {
        match self {
            AgentFault::BadFrame => Some(Fault::BadFrame),
            AgentFault::ExtraBytes => Some(Fault::ExtraBytes),
            AgentFault::NoClose => Some(Fault::NoClose),
            AgentFault::NoReply => Some(Fault::NoReply),
            _ => None,
        }
    }
}

/// Whether `fault` is `Some(f)`.
pub(crate) fn is(fault: Option<AgentFault>, f: AgentFault) -> bool {
    fault == Some(f)
}

/// What every agent-protocol peer is configured with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AgentContext {
    pub profile: &'static VersionProfile,
    pub fault: Option<AgentFault>,
}

impl AgentContext {
    pub(crate) fn wire_fault(&self) -> Option<Fault> {
        self.fault.and_then(AgentFault::wire)
    }
}

/// Names of this module's faults that the general fault table does not already list
/// (so `zbx-conform references` shows each name once).
pub(crate) fn extra_faults() -> impl Iterator<Item = (&'static str, &'static str)> {
    FAULTS
        .iter()
        .filter(|(_, name, _, _)| super::fault::Fault::parse(name).is_none())
        .map(|(_, name, what, _)| (*name, *what))
}

/// Faults implemented by `reference`, if it is one of this module's peers.
pub(crate) fn faults_for(reference: &str) -> Vec<&'static str> {
    FAULTS
        .iter()
        .filter(|(_, _, _, refs)| refs.contains(&reference))
        .map(|(_, name, _, _)| *name)
        .collect()
}

/// Start `cfg.name` if it is one of this module's peers; `None` when it is not.
pub(crate) async fn start(cfg: &ReferenceConfig) -> Option<Result<RunningPeer, String>> {
    let &(name, _, listens) = REFERENCES.iter().find(|(n, _, _)| *n == cfg.name)?;
    Some(start_known(cfg, name, listens).await)
}

async fn start_known(
    cfg: &ReferenceConfig,
    name: &'static str,
    listens: bool,
) -> Result<RunningPeer, String> {
    let profile = version::lookup(&cfg.version).ok_or_else(|| {
        format!(
            "reference peer {name} cannot speak version {:?} (supported: {})",
            cfg.version,
            version::supported().join(", ")
        )
    })?;
    let fault = match cfg.fault.as_deref() {
        None => None,
        Some(f) => {
            let parsed = AgentFault::parse(f).ok_or_else(|| {
                let known: Vec<&str> = FAULTS.iter().map(|(_, n, _, _)| *n).collect();
                format!("unknown fault {f:?} (known: {})", known.join(", "))
            })?;
            if !parsed.applies_to(name) {
                return Err(format!(
                    "fault {f:?} is not implemented by reference peer {name} (it has: {})",
                    faults_for(name).join(", ")
                ));
            }
            Some(parsed)
        }
    };
    let mut describe = format!("reference:{name} {}", profile.full);
    if let Some(f) = fault {
        describe.push_str(&format!(" (fault: {})", f.name()));
    }
    let ctx = AgentContext { profile, fault };
    if listens {
        let listener = crate::transport::bind_listener(cfg.listen_addr())
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let peer: Arc<dyn Serve> = match name {
            "agent-passive" => Arc::new(agent_passive::AgentPassive::new(ctx)),
            _ => Arc::new(trapper_agents::TrapperForAgents::new(ctx)),
        };
        Ok(super::spawn(describe, Some(addr), move |stop| {
            super::serve(listener, peer, stop)
        }))
    } else {
        let target = cfg
            .connect_to
            .ok_or_else(|| format!("reference peer {name} needs an address to connect to"))?;
        Ok(super::spawn(describe, None, move |stop| {
            super::until_stopped(stop, agent_active::run(ctx, target))
        }))
    }
}

/// Encode a payload as a frame, applying the frame-level faults (the text counterpart of
/// `wire::encode`, which only takes JSON).
pub(crate) fn encode_payload(
    payload: &[u8],
    compress: bool,
    fault: Option<AgentFault>,
    bad: BadFrame,
) -> (Vec<u8>, Sent) {
    let mut opts = FrameOptions {
        compress,
        ..FrameOptions::default()
    };
    if is(fault, AgentFault::ExtraBytes) {
        opts.trailing = wire::GARBAGE.to_vec();
    }
    let mut after = Sent::Continue;
    if is(fault, AgentFault::BadFrame) {
        let wire_len = if compress {
            crate::frame::zbxd::zlib_compress(payload).len() as u64
        } else {
            payload.len() as u64
        };
        match bad {
            BadFrame::Magic => opts.magic = Some(*b"ZBXE"),
            BadFrame::Truncated => {
                opts.datalen = Some(wire_len + 16);
                after = Sent::Close;
            }
            BadFrame::ShortLength => opts.datalen = Some(wire_len.saturating_sub(5)),
        }
    }
    (encode_frame(payload, &opts), after)
}

/// Write a payload (see [`encode_payload`]).
pub(crate) async fn send_payload(
    conn: &mut Conn,
    payload: &[u8],
    compress: bool,
    fault: Option<AgentFault>,
    bad: BadFrame,
) -> Sent {
    let (bytes, after) = encode_payload(payload, compress, fault, bad);
    match conn.write_all(&bytes, wire::WRITE_TIMEOUT).await {
        Ok(()) => after,
        Err(_) => Sent::Close,
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
    use crate::frame::ZbxdCodec;

    #[test]
    fn every_fault_round_trips_and_applies_somewhere() {
        for (f, name, _, refs) in FAULTS {
            assert_eq!(AgentFault::parse(name), Some(*f));
            assert_eq!(f.name(), *name);
            assert!(!refs.is_empty());
            for r in *refs {
                assert!(f.applies_to(r));
                assert!(REFERENCES.iter().any(|(n, _, _)| n == r), "{r}");
            }
        }
        assert_eq!(AgentFault::parse("nonsense"), None);
    }

    #[test]
    fn info_has_the_server_format() {
        assert_eq!(
            info(2, 1, 0.000081),
            "processed: 2; failed: 1; total: 3; seconds spent: 0.000081"
        );
    }

    #[test]
    fn text_frames_break_only_under_frame_faults() {
        let codec = ZbxdCodec::new(wire::MAX_FRAME);
        let (ok, _) = encode_payload(b"1", false, None, BadFrame::Magic);
        assert_eq!(
            codec.decode_exact(&ok).map(|f| f.payload.to_vec()),
            Ok(b"1".to_vec())
        );
        for bad in [BadFrame::Magic, BadFrame::Truncated, BadFrame::ShortLength] {
            let (b, _) = encode_payload(b"1", false, Some(AgentFault::BadFrame), bad);
            assert!(codec.decode_exact(&b).is_err(), "{bad:?}");
        }
        let (extra, _) = encode_payload(b"1", false, Some(AgentFault::ExtraBytes), BadFrame::Magic);
        assert!(codec.decode_exact(&extra).is_err());
    }
}

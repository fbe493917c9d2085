//! Version discovery: before a run against a peer the harness did not start, ask the
//! peer what it is, by the means the protocol gives, so only that protocol version's
//! cases run. A 6.0 proxy checked with the 5.4 schemas fails every version pattern; that
//! is a false failure, the worst defect a conformance tool can have.
//!
//! The probes are data (`discover:` in each family's catalog file); this module sends
//! them, reads what the peer says, and maps the version it names (`6.0.14`) to a
//! protocol version of the catalog (`6.0`).

mod protocol;

pub use protocol::{protocol_for, Resolved};

use crate::catalog::discover::{Probe, ProgramRule};
use crate::catalog::{Body, Catalog};
use crate::check::SchemaCache;
use crate::frame::zbxd::{encode_frame, FrameOptions, ZbxdCodec};
use crate::transport::tls::{self, TlsConfig, TlsMode};
use crate::transport::{connect_tcp, Connection, TransportError};
use serde_json::Value;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// What a peer said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The program, as far as the replies tell (`zabbix_proxy (passive)`).
    pub program: String,
    /// The version as the peer wrote it (`6.0.14`, or `6.0` from agent2's requests).
    pub version: String,
    /// How it was learnt, for the report (`reply to proxy tasks`).
    pub how: String,
}

/// A discovered peer: what it said, and the protocol version the run uses for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The address asked, or the listen address the peer connected to.
    pub address: String,
    pub found: Found,
    /// The catalog version whose cases run (`6.0`).
    pub protocol: String,
    /// Set when the peer's version is newer than any the catalog knows.
    pub warning: Option<String>,
}

impl std::fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "peer {}: {} {} → protocol {}",
            self.address, self.found.program, self.found.version, self.protocol
        )
    }
}

/// Why a peer could not tell what it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoverError {
    #[error("the {family} catalog has no probes for a {side} peer")]
    NoProbes { family: String, side: String },
    #[error("{address} did not name its version ({tried})")]
    NoVersion { address: String, tried: String },
    #[error("cannot reach {address}: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("nothing connected to {address} within {after:?}")]
    NobodyCame { address: String, after: Duration },
    /// The run's or the scenario's TLS settings cannot be used to ask the peer.
    #[error("cannot ask {address} over TLS: {reason}")]
    TlsSettings { address: String, reason: String },
    #[error(
        "{address} speaks {version}, a version the catalog does not know (known: {known}); pass --version to run one of those anyway"
    )]
    UnknownVersion {
        address: String,
        version: String,
        known: String,
    },
}

/// Settings of one discovery.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Per probe: connect, write, and read the answer.
    pub probe_timeout: Duration,
    /// Largest answer accepted.
    pub max_frame: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            probe_timeout: Duration::from_secs(5),
            max_frame: 16 << 20,
        }
    }
}

/// Ask the peer at `address` (the harness connects) with the family's probes for the
/// peer's side, and map its version to a catalog version. Each probe connects as `tls`
/// says (its `connect` mode): a peer that accepts only encrypted connections closes a
/// plaintext probe unanswered, so it can only be identified over TLS.
pub async fn ask(
    catalog: &Catalog,
    family: &str,
    side: &str,
    address: &str,
    tls: &TlsConfig,
    limits: Limits,
) -> Result<PeerIdentity, DiscoverError> {
    let probes = catalog
        .family(family)
        .and_then(|f| f.discover.connect.get(side))
        .filter(|p| !p.is_empty())
        .ok_or_else(|| DiscoverError::NoProbes {
            family: family.to_string(),
            side: side.to_string(),
        })?;
    let found = run_probes(probes, address, tls, limits).await?;
    identify(catalog, family, address, found)
}

/// Map what was found to a catalog version of `family`.
pub fn identify(
    catalog: &Catalog,
    family: &str,
    address: &str,
    found: Found,
) -> Result<PeerIdentity, DiscoverError> {
    let known = catalog.versions(family);
    match protocol_for(&known, &found.version) {
        Some(Resolved { protocol, warning }) => Ok(PeerIdentity {
            address: address.to_string(),
            found,
            protocol,
            warning,
        }),
        None => Err(DiscoverError::UnknownVersion {
            address: address.to_string(),
            version: found.version,
            known: known.join(", "),
        }),
    }
}

/// Send the probes in order: the first reply that names a version sets it; probes
/// without a `version` (program names only) run once the version is known.
async fn run_probes(
    probes: &[Probe],
    address: &str,
    tls: &TlsConfig,
    limits: Limits,
) -> Result<Found, DiscoverError> {
    let mut version: Option<(String, String)> = None;
    let mut program = None;
    let mut tried = Vec::new();
    for probe in probes {
        if probe.version.is_some() == version.is_some() {
            continue;
        }
        let (payload, name) = probe.send.payload();
        let reply = match exchange(address, &payload, tls, limits).await {
            Ok(r) => r,
            Err(TransportError::Connect { reason, .. }) => {
                return Err(DiscoverError::Unreachable {
                    address: address.to_string(),
                    reason,
                })
            }
            Err(e) => {
                tried.push(format!("`{name}`: {e}"));
                continue;
            }
        };
        let Some(body) = reply else {
            tried.push(format!(
                "`{name}`: closed without a reply{}",
                closed_hint(tls)
            ));
            continue;
        };
        if let Some(pointer) = &probe.version {
            match version_in(&body, pointer) {
                Some(v) => version = Some((v, format!("reply to `{name}`"))),
                None => {
                    tried.push(format!("`{name}`: the reply names no version"));
                    continue;
                }
            }
        }
        if let Some(name) = program_name(&probe.program, &body) {
            program = Some(name);
        }
    }
    match version {
        Some((version, how)) => Ok(Found {
            program: program.unwrap_or_else(|| "peer".to_string()),
            version,
            how,
        }),
        None => Err(DiscoverError::NoVersion {
            address: address.to_string(),
            tried: tried.join("; "),
        }),
    }
}

/// Why a plaintext probe may go unanswered, for the error a user reads: a peer that
/// accepts only encrypted connections closes a plaintext one without a word.
fn closed_hint(tls: &TlsConfig) -> &'static str {
    if tls.connect == TlsMode::Unencrypted {
        " (a peer that accepts only encrypted connections does that to a plaintext one: give --tls-connect)"
    } else {
        ""
    }
}

/// One probe: connect (inside TLS when `tls` says so), send a plain frame, read one
/// reply, close without acknowledging.
async fn exchange(
    address: &str,
    payload: &[u8],
    tls: &TlsConfig,
    limits: Limits,
) -> Result<Option<Body>, TransportError> {
    let tcp = connect_tcp(address, limits.probe_timeout).await?;
    let secured = tls::connect(tcp, tls, address, limits.probe_timeout).await?;
    let mut conn = Connection::new(secured.stream, ZbxdCodec::new(limits.max_frame), address);
    conn.write_all(
        &encode_frame(payload, &FrameOptions::plain()),
        limits.probe_timeout,
    )
    .await?;
    let frame = conn.read_frame(limits.probe_timeout).await?;
    conn.shutdown().await;
    Ok(frame.map(|f| Body::from_payload(&f.payload)))
}

/// The version at `pointer` (`""`: the whole text reply), when it looks like one.
fn version_in(body: &Body, pointer: &str) -> Option<String> {
    let text = match (body, pointer) {
        (Body::Text(t), "") => t.trim().to_string(),
        (Body::Json(v), p) if !p.is_empty() => v.pointer(p)?.as_str()?.trim().to_string(),
        _ => return None,
    };
    protocol::major_minor(&text).map(|_| text)
}

/// The first program rule that matches the reply.
fn program_name(rules: &[ProgramRule], body: &Body) -> Option<String> {
    rules
        .iter()
        .find(|r| rule_matches(r, body))
        .map(|r| r.name.clone())
}

fn rule_matches(rule: &ProgramRule, body: &Body) -> bool {
    match body {
        Body::Text(t) => rule.when.is_empty() && rule.text.as_deref().is_none_or(|w| t.trim() == w),
        Body::Json(v) => {
            rule.text.is_none() && crate::check::matcher::check_matches(&rule.when, v).is_empty()
        }
    }
}

/// Wait for the first connection on `listener` (a peer that connects to the harness, e.g.
/// an active proxy) and read what its first message says. The connection is closed
/// without a reply: the peer sends again on its next cycle (an active proxy's data
/// every second, its configuration request after ConfigFrequency). Connections are
/// accepted as `tls.accept` says (a peer with TLSConnect=psk is read inside TLS); one
/// that fails its handshake or is of a type not accepted counts as a connection
/// without a message, and the reason is kept for the error.
#[allow(clippy::too_many_arguments)]
pub async fn first_message(
    catalog: &Catalog,
    schemas: &SchemaCache,
    family: &str,
    peer_side: &str,
    listener: &TcpListener,
    tls: &TlsConfig,
    wait: Duration,
    max_frame: u64,
) -> Result<PeerIdentity, DiscoverError> {
    let address = listener
        .local_addr()
        .map(|a| format!("connections to {a}"))
        .unwrap_or_else(|_| "the listener".into());
    let deadline = tokio::time::Instant::now() + wait;
    let spec = catalog
        .family(family)
        .and_then(|f| f.discover.accept.clone());
    let Some(spec) = spec else {
        return Err(DiscoverError::NoProbes {
            family: family.to_string(),
            side: format!("{peer_side} (connecting)"),
        });
    };
    let mut tried = Vec::new();
    loop {
        let accepted = tokio::time::timeout_at(deadline, listener.accept()).await;
        let Ok(Ok((stream, _))) = accepted else {
            return Err(if tried.is_empty() {
                DiscoverError::NobodyCame {
                    address,
                    after: wait,
                }
            } else {
                DiscoverError::NoVersion {
                    address,
                    tried: tried.join("; "),
                }
            });
        };
        let body = match read_first(stream, tls, deadline, max_frame).await {
            Ok(Some(body)) => body,
            Ok(None) => {
                tried.push("a connection without a message".to_string());
                continue;
            }
            Err(e) => {
                tried.push(e.to_string());
                continue;
            }
        };
        let program = program_name(&spec.program, &body).unwrap_or_else(|| "peer".into());
        if let Some(v) = version_in(&body, &spec.version) {
            let found = Found {
                program,
                version: v,
                how: "its first message".into(),
            };
            return identify(catalog, family, &address, found);
        }
        // No version field (zabbix_agentd before 6.4): the newest version whose schemas
        // accept a message whose shape tells the versions apart.
        if let Some(protocol) = by_shape(catalog, schemas, family, peer_side, &spec.by_shape, &body)
        {
            return Ok(PeerIdentity {
                address,
                found: Found {
                    program,
                    version: "(no version named)".into(),
                    how: "the shape of its first message".into(),
                },
                protocol,
                warning: Some(
                    "the peer names no version; the newest protocol version whose schemas accept its first message was chosen".into(),
                ),
            });
        }
        tried.push("a first message without a version that tells no version apart".to_string());
    }
}

/// The first message of an accepted connection: `Ok(None)` when none came in time;
/// `Err` when the connection could not be accepted as `tls` says.
async fn read_first(
    stream: TcpStream,
    tls: &TlsConfig,
    deadline: tokio::time::Instant,
    max_frame: u64,
) -> Result<Option<Body>, TransportError> {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let left = || {
        deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .max(Duration::from_millis(1))
    };
    let secured = tls::accept(stream, tls, &peer, left()).await?;
    let mut conn = Connection::new(secured.stream, ZbxdCodec::new(max_frame), peer);
    let Ok(Some(frame)) = conn.read_frame(left()).await else {
        return Ok(None);
    };
    conn.shutdown().await;
    Ok(Some(Body::from_payload(&frame.payload)))
}

/// The newest catalog version in which `body` is recognised as one of the `kinds` whose
/// shape tells versions apart, and conforms to that kind's schema.
fn by_shape(
    catalog: &Catalog,
    schemas: &SchemaCache,
    family: &str,
    peer_side: &str,
    kinds: &[String],
    body: &Body,
) -> Option<String> {
    let value = match body {
        Body::Json(v) => v.clone(),
        Body::Text(t) => Value::String(t.clone()),
    };
    catalog.versions(family).into_iter().rev().find(|v| {
        catalog
            .classify(family, v, peer_side, body)
            .filter(|k| kinds.contains(&k.kind))
            .and_then(|k| {
                schemas
                    .validate(&catalog.schema_path(family, v, &k.kind), &value)
                    .ok()
            })
            .is_some_and(|violations| violations.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::discover::ProgramRule;
    use serde_json::json;

    fn rule(name: &str, when: Value, text: Option<&str>) -> ProgramRule {
        ProgramRule {
            name: name.into(),
            when: when.as_object().cloned().unwrap_or_default(),
            text: text.map(str::to_string),
        }
    }

    #[test]
    fn versions_are_read_where_the_probe_says_and_must_look_like_one() {
        let j = Body::Json(json!({"version": "6.0.14", "data": {"version": "7.0.22"}}));
        assert_eq!(version_in(&j, "/version").as_deref(), Some("6.0.14"));
        assert_eq!(version_in(&j, "/data/version").as_deref(), Some("7.0.22"));
        assert_eq!(version_in(&j, "/nope"), None);
        assert_eq!(version_in(&j, ""), None);
        let t = Body::Text("7.0.22\n".into());
        assert_eq!(version_in(&t, "").as_deref(), Some("7.0.22"));
        assert_eq!(version_in(&Body::Text("ZBX_NOTSUPPORTED".into()), ""), None);
        assert_eq!(
            version_in(&Body::Json(json!({"version": 6})), "/version"),
            None
        );
    }

    #[test]
    fn the_first_matching_program_rule_names_the_peer() {
        let rules = vec![
            rule("active", json!({"info": {"$regex": "active mode"}}), None),
            rule("any", json!({}), None),
        ];
        let active =
            Body::Json(json!({"response": "failed", "info": "running in the active mode"}));
        let passive = Body::Json(json!({"response": "failed", "info": "cannot find pair"}));
        assert_eq!(program_name(&rules, &active).as_deref(), Some("active"));
        assert_eq!(program_name(&rules, &passive).as_deref(), Some("any"));
        let variants = vec![
            rule("agentd", json!({}), Some("1")),
            rule("agent2", json!({}), Some("2")),
        ];
        assert_eq!(
            program_name(&variants, &Body::Text("2".into())).as_deref(),
            Some("agent2")
        );
        assert_eq!(program_name(&variants, &Body::Text("3".into())), None);
    }
}

//! How to ask a peer the harness did not start what it is, as data: the `discover:`
//! section of a family's catalog file.
//!
//! ```yaml
//! discover:
//!   connect:                 # the harness connects to the peer (per peer side)
//!     proxy:
//!       - send: { json: { request: proxy tasks } }
//!         version: /version  # where the reply names the peer's version ("" = the whole text reply)
//!         program: [{ name: zabbix_proxy (passive) }]
//!   accept:                  # the peer connects to the harness: its first message
//!     version: /version
//!     program:
//!       - { name: zabbix_proxy (active), when: { request: { $regex: "^proxy " } } }
//! ```
//! Probes of one side are tried in order until one reply names a version; a probe
//! without `version` only names the program (e.g. an agent's `agent.variant`) and runs
//! once a version is known. Probes must leave no state behind on the peer: a Zabbix 7.0
//! passive proxy whose configuration dialogue is abandoned after its revision reply keeps
//! its configuration lock until it restarts, so `proxy config` may only probe peers that
//! refuse it at once.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The `discover:` section of one family.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Discovery {
    /// Probes per peer side, for peers the harness connects to.
    #[serde(default)]
    pub connect: BTreeMap<String, Vec<Probe>>,
    /// What the first message of a peer that connects to the harness says.
    #[serde(default)]
    pub accept: Option<FirstMessage>,
}

/// One request sent to learn something about the peer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// What to send, in a plain ZBXD frame.
    pub send: ProbeMessage,
    /// JSON pointer to the version in the reply; `""` takes the whole text reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Program names, the first rule that matches the reply wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub program: Vec<ProgramRule>,
}

/// The body of a probe: JSON or a text payload (an agent's item key).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl ProbeMessage {
    /// The payload bytes and a short name for messages ("`proxy tasks`", "`agent.version`").
    pub fn payload(&self) -> (Vec<u8>, String) {
        match (&self.json, &self.text) {
            (Some(v), _) => {
                let name = v
                    .get("request")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                (v.to_string().into_bytes(), name)
            }
            (None, Some(t)) => (t.clone().into_bytes(), t.clone()),
            (None, None) => (Vec::new(), String::new()),
        }
    }
}

/// A program name and when it applies to a reply.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramRule {
    pub name: String,
    /// A `match` spec on a JSON reply (empty: any reply).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub when: Map<String, Value>,
    /// The exact text of a text reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Where a peer's first message names its version, and which program sent it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FirstMessage {
    pub version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub program: Vec<ProgramRule>,
    /// Kinds whose schemas tell the versions apart when a message names no version (an
    /// active agent's `active checks`: 6.4+ agents add session and config_revision).
    /// Other messages without a version are skipped while waiting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_shape: Vec<String>,
}

impl Discovery {
    /// Load-time checks: a probe sends exactly one body, names a version or a program,
    /// and every pointer and `when` spec is well-formed.
    pub(super) fn check(&self) -> Result<(), String> {
        for (side, probes) in &self.connect {
            if probes.is_empty() {
                return Err(format!("discover.connect.{side}: no probes"));
            }
            for (i, p) in probes.iter().enumerate() {
                let at = format!("discover.connect.{side}[{i}]");
                if p.send.json.is_some() == p.send.text.is_some() {
                    return Err(format!("{at}: send needs exactly one of json or text"));
                }
                if p.version.is_none() && p.program.is_empty() {
                    return Err(format!("{at}: names neither a version nor a program"));
                }
                if let Some(v) = &p.version {
                    check_pointer(v).map_err(|e| format!("{at}.version: {e}"))?;
                }
                check_rules(&p.program).map_err(|e| format!("{at}.program: {e}"))?;
            }
        }
        if let Some(a) = &self.accept {
            check_pointer(&a.version).map_err(|e| format!("discover.accept.version: {e}"))?;
            check_rules(&a.program).map_err(|e| format!("discover.accept.program: {e}"))?;
        }
        Ok(())
    }
}

fn check_pointer(p: &str) -> Result<(), String> {
    if p.is_empty() || p.starts_with('/') {
        Ok(())
    } else {
        Err(format!("{p:?} is not a JSON pointer (start it with /)"))
    }
}

fn check_rules(rules: &[ProgramRule]) -> Result<(), String> {
    for r in rules {
        if r.name.trim().is_empty() {
            return Err("a rule without a name".into());
        }
        crate::check::matcher::validate_spec(&r.when).map_err(|e| format!("{}: {e}", r.name))?;
    }
    Ok(())
}

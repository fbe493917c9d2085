//! Everything one scenario run needs at hand: shared catalog and schema cache, the
//! variables, the version being run, and the transcript.

use super::transcript::Transcript;
use crate::catalog::Catalog;
use crate::check::message::KindAt;
use crate::check::SchemaCache;
use crate::scenario::model::Side;
use crate::scenario::names::split_qualified;
use crate::scenario::vars::Vars;
use std::sync::Arc;
use std::time::Duration;

/// Per-run state of one scenario at one version.
pub struct ScenarioContext {
    pub catalog: Arc<Catalog>,
    pub schemas: Arc<SchemaCache>,
    pub vars: Vars,
    pub family: String,
    pub version: String,
    /// The side the harness plays.
    pub plays: Side,
    /// The side of the peer (who sends what we receive).
    pub peer_side: String,
    /// Default address for `exchange` steps.
    pub peer_addr: Option<String>,
    /// Default timeout for expectations.
    pub timeout: Duration,
    pub update_snapshots: bool,
    /// Largest frame payload accepted from the peer.
    pub max_frame: u64,
    /// The run's memory budget, shared by every connection of every scenario.
    pub budget: crate::frame::Budget,
    /// Secret values seen in what this scenario sent and received: scrubbed from every
    /// line of its result before any reporter sees it.
    pub secrets: crate::check::redact::SecretValues,
    pub transcript: Transcript,
    /// TLS settings of the scenario (`tls:`) with the run's `--tls-*` options over them;
    /// a step's own `tls:` goes over both.
    pub tls: crate::transport::tls::TlsSettings,
    /// How the harness connects to the peer under the scenario-level settings (what a
    /// step's `when: { tls: ... }` compares with).
    pub connect_mode: crate::transport::tls::TlsMode,
    /// The scenario file's folder: relative TLS file names are taken from there.
    pub scenario_dir: Option<std::path::PathBuf>,
    /// What TLS each connection spoke, by step index, for the report.
    pub tls_seen: Vec<(String, crate::transport::tls::TlsInfo)>,
    /// Says "still waiting for …" during long steps (see [`super::progress`]).
    pub progress: super::progress::Progress,
}

impl ScenarioContext {
    /// The ZBXD codec for a connection of this scenario: `--max-frame`, and every frame
    /// takes its share of the run's memory budget.
    pub fn codec(&self) -> crate::frame::ZbxdCodec {
        crate::frame::ZbxdCodec::new(self.max_frame).with_budget(self.budget.clone())
    }

    /// Where a kind as written in the scenario is checked: `kind` in the scenario's
    /// family, `family:kind` in that family, both at this run's version.
    pub fn kind_at<'a>(&'a self, written: &'a str) -> KindAt<'a> {
        let (family, kind) = split_qualified(written);
        KindAt {
            family: family.unwrap_or(&self.family),
            version: &self.version,
            kind,
        }
    }

    /// Whether a (fixture) name names a kind of the catalog in some version, so the
    /// fixture declares that kind (the same rule as lint's).
    pub fn names_kind(&self, name: &str) -> bool {
        let at = self.kind_at(name);
        self.catalog.kind_any_version(at.family, at.kind).is_some()
    }

    /// Validate a message we are about to send against its declared kind (`kind` or
    /// `family:kind`). A failure is the scenario's fault, not the peer's, so it is
    /// reported as a scenario error.
    pub fn check_own_message(&self, kind: &str, value: &serde_json::Value) -> Result<(), String> {
        let at = self.kind_at(kind);
        let body = crate::message::Body::Json(value.clone());
        let violations =
            crate::check::message::validate_message(&self.catalog, &self.schemas, at, &body)
                .map_err(|e| e.to_string())?;
        if let Some(v) = violations.first() {
            return Err(format!(
                "the message to send does not conform to `{kind}` (set `check: false` to send it anyway): at {}: {}",
                if v.instance_path.is_empty() { "/" } else { &v.instance_path },
                v.message
            ));
        }
        Ok(())
    }
}

/// The side opposite to `plays` in a family, from the catalog: the sides that appear in
/// the family's kinds, minus ours. Falls back to the usual pairing.
pub fn peer_side(catalog: &Catalog, family: &str, plays: Side) -> String {
    if let Some(fam) = catalog.family(family) {
        let mut sides: Vec<&str> = fam
            .kinds
            .iter()
            .flat_map(|k| [k.from.as_str(), k.to.as_str()])
            .filter(|s| *s != plays.as_str() && *s != "any")
            .collect();
        sides.sort();
        sides.dedup();
        if sides.len() == 1 {
            return sides[0].to_string();
        }
    }
    match plays {
        Side::Server => "proxy",
        Side::Proxy => "server",
        Side::Agent => "server",
        Side::Sender => "server",
        Side::Plugin => "agent",
    }
    .to_string()
}

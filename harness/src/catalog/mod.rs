//! The message catalog: which message kinds exist per protocol family and version, who
//! sends them to whom, how a received message is recognised, and where its schema and
//! fixture live.
//!
//! The catalog is data: one `schemas/<family>/catalog.yaml` per family. Adding a message
//! kind or a protocol version means adding an entry (or a version to an entry) plus the
//! schema and fixture files — no Rust.

pub mod discover;
pub mod print;
mod recognise;
pub mod versions;

pub use crate::message::{Body, MAX_TEXT_BODY};
pub use discover::Discovery;
pub use recognise::Recognise;
pub use versions::VersionInfo;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How a message body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyType {
    #[default]
    Json,
    Text,
}

/// One message kind in one direction.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KindEntry {
    /// Kind name, unique within the family, e.g. `passive.proxy-data.response`.
    pub kind: String,
    /// One line saying what the message is.
    pub summary: String,
    /// `passive`, `active`, or `any`.
    #[serde(default = "any_mode")]
    pub mode: String,
    /// Sending side (`server`, `proxy`, `agent`, `sender`, `plugin`), or `any` for a
    /// message either side sends (e.g. a generic failure answer).
    pub from: String,
    /// Receiving side, or `any`.
    pub to: String,
    /// The first version this kind exists in.
    pub since: String,
    /// The last version it exists in (default: every newer version too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Versions this kind exists in (each has a schema and a fixture): the catalog's
    /// versions from `since` to `until`, worked out when the catalog is loaded.
    #[serde(skip_deserializing)]
    pub versions: Vec<String>,
    #[serde(default)]
    pub body: BodyType,
    /// How a received message is recognised as this kind.
    pub recognise: Recognise,
    /// Data sections of the message (top-level members that come and go, such as the
    /// `discovery data` of proxy data): the coverage matrix shows one row for each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<Section>,
    /// Versions (optionally only some sections) whose schema rules no message from a
    /// real peer backs: written for one version and carried over to another. Shown by
    /// `zbx-conform catalog` and as `?` cells in the coverage matrix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unverified: Vec<Unverified>,
}

/// One data section of a message kind.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// The top-level member, e.g. `history data`, `more`.
    pub name: String,
    /// The first version that has it (default: every version of the kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Versions that have it, worked out from `since` when the catalog is loaded
    /// (`None`: every version of the kind).
    #[serde(skip_deserializing)]
    pub versions: Option<Vec<String>>,
}

/// Schema rules of some versions that no real message backs, and why.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Unverified {
    pub versions: Vec<String>,
    /// Only these sections (default: the whole kind).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<String>,
    pub reason: String,
}

impl KindEntry {
    /// Whether `section` exists at `version`.
    pub fn has_section(&self, section: &str, version: &str) -> bool {
        self.sections.iter().any(|s| {
            s.name == section
                && s.versions
                    .as_ref()
                    .map_or(self.versions.iter().any(|v| v == version), |vs| {
                        vs.iter().any(|v| v == version)
                    })
        })
    }

    /// The `unverified` entries that apply to `version` (and, with `Some`, to that
    /// section; a whole-kind entry applies to every section).
    pub fn unverified_at<'a>(
        &'a self,
        version: &'a str,
        section: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Unverified> + 'a {
        self.unverified.iter().filter(move |u| {
            u.versions.iter().any(|v| v == version)
                && match section {
                    None => u.sections.is_empty(),
                    Some(s) => u.sections.is_empty() || u.sections.iter().any(|n| n == s),
                }
        })
    }
}

fn any_mode() -> String {
    "any".to_string()
}

/// `path(v)` of the first version in `lineage` (see [`Catalog::lineage`]) whose file
/// exists; the first version's path when none does.
pub fn first_existing(lineage: &[String], path: impl Fn(&str) -> PathBuf) -> PathBuf {
    lineage
        .iter()
        .map(|v| path(v))
        .find(|p| p.exists())
        .unwrap_or_else(|| path(lineage.first().map_or("", |v| v.as_str())))
}

/// Push the names (`prefix` + stem) of the `*.json` files under `dir` into `out`,
/// looking two folders deep at most; `snapshots/` holds snapshots, not fixtures. An
/// unreadable folder has no names.
fn collect_json_names(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.is_dir() {
            if depth < 2 && name != "snapshots" && !name.starts_with('.') {
                collect_json_names(&path, &format!("{prefix}{name}/"), depth + 1, out);
            }
        } else if let Some(stem) = name.strip_suffix(".json") {
            out.push(format!("{prefix}{stem}"));
        }
    }
}

/// How the catalog marks every kind of a version no real peer confirmed.
pub const DOCUMENTED_NOT_MEASURED: &str = "documented, not measured";

/// `from`/`to` value of a kind that either side may send or receive.
pub const ANY_SIDE: &str = "any";

impl FamilyCatalog {
    /// Work out each kind's (and section's) versions from `since`/`until` and the
    /// catalog's versions.
    fn place_in(&mut self, versions: &[VersionInfo]) -> Result<(), String> {
        let known = |v: &str| versions.iter().any(|x| x.version == v);
        let range = |since: &str, until: Option<&str>| -> Vec<String> {
            versions
                .iter()
                .map(|x| x.version.clone())
                .filter(|v| compare_versions(v, since) != std::cmp::Ordering::Less)
                .filter(|v| {
                    until.is_none_or(|u| compare_versions(v, u) != std::cmp::Ordering::Greater)
                })
                .collect()
        };
        for k in &mut self.kinds {
            for (what, v) in [
                ("since", Some(k.since.as_str())),
                ("until", k.until.as_deref()),
            ] {
                if let Some(v) = v.filter(|v| !known(v)) {
                    return Err(format!(
                        "kind {}: {what} {v}, which schemas/versions.yaml does not list",
                        k.kind
                    ));
                }
            }
            k.versions = range(&k.since, k.until.as_deref());
            if k.versions.is_empty() {
                return Err(format!("kind {}: until comes before since", k.kind));
            }
            // A version no real peer confirmed: every kind of it is documented, not
            // measured (unless the kind already says why for that version).
            for v in versions
                .iter()
                .filter(|v| !v.measured && k.versions.contains(&v.version))
            {
                let said = k
                    .unverified
                    .iter()
                    .any(|u| u.sections.is_empty() && u.versions.contains(&v.version));
                if !said {
                    k.unverified.push(Unverified {
                        versions: vec![v.version.clone()],
                        sections: Vec::new(),
                        reason: format!("{DOCUMENTED_NOT_MEASURED}: {}", v.evidence),
                    });
                }
            }
            for s in &mut k.sections {
                if let Some(since) = &s.since {
                    if !known(since) {
                        return Err(format!("kind {}: section {:?} since {since}, which schemas/versions.yaml does not list", k.kind, s.name));
                    }
                    let all = range(since, k.until.as_deref());
                    s.versions = Some(all.into_iter().filter(|v| k.versions.contains(v)).collect());
                }
            }
        }
        Ok(())
    }

    /// Consistency checks that serde cannot express: unique kind names, known modes,
    /// versions given, `same_as` pointing at a kind that exists, is recognisable itself,
    /// has the same sender and covers the same versions.
    fn check(&self) -> Result<(), String> {
        if self.sides.len() != 2 || self.sides[0] == self.sides[1] {
            return Err(format!(
                "sides must name the two sides of the conversation, not {:?}",
                self.sides
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for k in &self.kinds {
            if !seen.insert(k.kind.as_str()) {
                return Err(format!("kind {} is listed twice", k.kind));
            }
            self.check_sides(k)?;
            if !matches!(k.mode.as_str(), "passive" | "active" | "any") {
                return Err(format!(
                    "kind {}: mode must be passive, active or any, not {:?}",
                    k.kind, k.mode
                ));
            }
            if k.versions.is_empty() {
                return Err(format!("kind {}: no versions", k.kind));
            }
            if let Some(re) = &k.recognise.text {
                regex::Regex::new(re)
                    .map_err(|e| format!("kind {}: bad recognise.text regex: {e}", k.kind))?;
            }
            if let Some(other) = &k.recognise.same_as {
                let target = self
                    .kinds
                    .iter()
                    .find(|t| &t.kind == other)
                    .ok_or_else(|| format!("kind {}: same_as {other}: no such kind", k.kind))?;
                if target.recognise.same_as.is_some() {
                    return Err(format!(
                        "kind {}: same_as {other}, which is itself same_as another kind",
                        k.kind
                    ));
                }
                if target.from != k.from && target.from != ANY_SIDE {
                    return Err(format!(
                        "kind {}: same_as {other}, which another side sends",
                        k.kind
                    ));
                }
                if let Some(v) = k.versions.iter().find(|v| !target.versions.contains(v)) {
                    return Err(format!(
                        "kind {}: same_as {other}, which does not exist in version {v}",
                        k.kind
                    ));
                }
            }
            k.check_sections()?;
        }
        self.discover.check()?;
        for kind in self.discover.accept.iter().flat_map(|a| &a.by_shape) {
            if !self.kinds.iter().any(|k| &k.kind == kind) {
                return Err(format!("discover.accept.by_shape: no kind {kind}"));
            }
        }
        Ok(())
    }
}

impl FamilyCatalog {
    /// A kind goes from one side to the other (or `any` to `any`): a misspelt side
    /// would otherwise make the kind unrecognisable from every peer.
    fn check_sides(&self, k: &KindEntry) -> Result<(), String> {
        let known = |s: &str| self.sides.iter().any(|x| x == s);
        for (field, side) in [("from", &k.from), ("to", &k.to)] {
            if side != ANY_SIDE && !known(side) {
                return Err(format!(
                    "kind {}: {field} {side:?} is not a side of this family ({} or {ANY_SIDE})",
                    k.kind,
                    self.sides.join(", ")
                ));
            }
        }
        if k.from == k.to && k.from != ANY_SIDE {
            return Err(format!(
                "kind {}: from and to are both {:?}; a message goes to the other side",
                k.kind, k.from
            ));
        }
        Ok(())
    }
}

impl KindEntry {
    /// `sections` and `unverified` name versions of the kind and sections it declares,
    /// each once, and every `unverified` entry says why.
    fn check_sections(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for s in &self.sections {
            if !names.insert(s.name.as_str()) {
                return Err(format!(
                    "kind {}: section {:?} is listed twice",
                    self.kind, s.name
                ));
            }
            for v in s.versions.iter().flatten() {
                if !self.versions.contains(v) {
                    return Err(format!(
                        "kind {}: section {:?} names version {v}, which the kind does not have",
                        self.kind, s.name
                    ));
                }
            }
        }
        for u in &self.unverified {
            if u.versions.is_empty() || u.reason.trim().is_empty() {
                return Err(format!(
                    "kind {}: every `unverified` entry needs versions and a reason",
                    self.kind
                ));
            }
            if let Some(v) = u.versions.iter().find(|v| !self.versions.contains(v)) {
                return Err(format!(
                    "kind {}: unverified names version {v}, which the kind does not have",
                    self.kind
                ));
            }
            if let Some(s) = u.sections.iter().find(|s| !names.contains(s.as_str())) {
                return Err(format!(
                    "kind {}: unverified names section {s:?}, which the kind does not declare",
                    self.kind
                ));
            }
        }
        Ok(())
    }
}

/// The catalog file of one family.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyCatalog {
    pub family: String,
    /// One line about the family.
    #[serde(default)]
    pub summary: String,
    /// The two sides of the conversation (e.g. server and proxy); every kind's `from`
    /// and `to` names one of them, or `any`.
    pub sides: Vec<String>,
    /// Object keys whose values change on every run; replaced by placeholders before
    /// snapshot comparison.
    #[serde(default)]
    pub volatile: Vec<String>,
    /// How to ask a peer of this family what it is (`run --peer`).
    #[serde(default)]
    pub discover: Discovery,
    pub kinds: Vec<KindEntry>,
}

/// One row of the flattened catalog (what `zbx-conform catalog` prints).
#[derive(Debug, Clone, Serialize)]
pub struct CatalogRow {
    pub family: String,
    pub version: String,
    pub kind: String,
    pub mode: String,
    pub from: String,
    pub to: String,
    pub recognised_by: String,
    pub schema: PathBuf,
    pub fixture: PathBuf,
    pub summary: String,
    /// `unverified` entries of the kind that apply to this version.
    pub unverified: Vec<Unverified>,
}

/// Errors while loading the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("no catalog found under {0} (expected schemas/<family>/catalog.yaml)")]
    Empty(PathBuf),
}

/// The loaded catalog of all families, rooted at the project data directory (the one
/// holding `schemas/` and `fixtures/`).
#[derive(Debug, Clone)]
pub struct Catalog {
    root: PathBuf,
    /// The protocol versions, oldest first (`schemas/versions.yaml`).
    versions: Vec<VersionInfo>,
    families: Vec<FamilyCatalog>,
}

impl Catalog {
    /// Load every `schemas/<family>/catalog.yaml` under `root`.
    pub fn load(root: &Path) -> Result<Catalog, CatalogError> {
        let schemas = root.join("schemas");
        let entries = std::fs::read_dir(&schemas).map_err(|e| CatalogError::Read {
            path: schemas.clone(),
            reason: e.to_string(),
        })?;
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("catalog.yaml").is_file())
            .collect();
        dirs.sort();
        if dirs.is_empty() {
            return Err(CatalogError::Empty(schemas));
        }
        let versions = versions::load(root).map_err(|reason| CatalogError::Parse {
            path: schemas.join("versions.yaml"),
            reason,
        })?;
        let mut families = Vec::new();
        for dir in dirs {
            let path = dir.join("catalog.yaml");
            let text = std::fs::read_to_string(&path).map_err(|e| CatalogError::Read {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let mut fam: FamilyCatalog =
                serde_saphyr::from_str(&text).map_err(|e| CatalogError::Parse {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            fam.place_in(&versions)
                .map_err(|reason| CatalogError::Parse {
                    path: path.clone(),
                    reason,
                })?;
            fam.check().map_err(|reason| CatalogError::Parse {
                path: path.clone(),
                reason,
            })?;
            families.push(fam);
        }
        if families.is_empty() {
            return Err(CatalogError::Empty(schemas));
        }
        Ok(Catalog {
            root: root.to_path_buf(),
            versions,
            families,
        })
    }

    /// Every protocol version the catalog knows, oldest first.
    pub fn all_versions(&self) -> &[VersionInfo] {
        &self.versions
    }

    /// What the catalog knows about one protocol version.
    pub fn version_info(&self, version: &str) -> Option<&VersionInfo> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// The data root (holds `schemas/`, `fixtures/`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn families(&self) -> &[FamilyCatalog] {
        &self.families
    }

    pub fn family(&self, family: &str) -> Option<&FamilyCatalog> {
        self.families.iter().find(|f| f.family == family)
    }

    /// All versions any kind of `family` exists in, sorted.
    pub fn versions(&self, family: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .family(family)
            .into_iter()
            .flat_map(|f| f.kinds.iter().flat_map(|k| k.versions.iter().cloned()))
            .collect();
        v.sort_by(|a, b| compare_versions(a, b));
        v.dedup();
        v
    }

    /// Look up a kind that exists in `version`.
    pub fn kind(&self, family: &str, version: &str, kind: &str) -> Option<&KindEntry> {
        self.family(family)?
            .kinds
            .iter()
            .find(|k| k.kind == kind && k.versions.iter().any(|v| v == version))
    }

    /// Look up a kind by name in any version (for "exists, but not in this version").
    pub fn kind_any_version(&self, family: &str, kind: &str) -> Option<&KindEntry> {
        self.family(family)?.kinds.iter().find(|k| k.kind == kind)
    }

    /// `schemas/<family>/<version>/<kind>.json`
    pub fn schema_path(&self, family: &str, version: &str, kind: &str) -> PathBuf {
        self.root
            .join("schemas")
            .join(family)
            .join(version)
            .join(format!("{kind}.json"))
    }

    /// `fixtures/<family>/<version>/<name>.json`
    ///
    /// `name` may name another family's fixture as `<family>:<name>`: a sender or agent
    /// scenario that first plays the server to configure a real proxy pushes the
    /// server-proxy configuration fixture itself instead of a copy that would drift.
    ///
    /// A version that is `like` another holds only the fixtures that differ: a fixture
    /// missing from its folder is the one of the version it is like.
    pub fn fixture_path(&self, family: &str, version: &str, name: &str) -> PathBuf {
        let (family, name) = match name.split_once(':') {
            Some((other, rest)) if !other.is_empty() && !other.contains('/') => (other, rest),
            _ => (family, name),
        };
        self.inherited(version, |v| {
            self.root
                .join("fixtures")
                .join(family)
                .join(v)
                .join(format!("{name}.json"))
        })
    }

    /// The names of the fixtures `fixture_path` finds for `family` at `version` (its own
    /// folder and those of the versions it is like), sorted: what a misspelt fixture
    /// name is compared with. Fixtures in subfolders are named `sub/name`.
    pub fn fixture_names(&self, family: &str, version: &str) -> Vec<String> {
        let mut names = Vec::new();
        for v in self.lineage(version) {
            let dir = self.root.join("fixtures").join(family).join(&v);
            collect_json_names(&dir, "", 0, &mut names);
        }
        names.sort();
        names.dedup();
        names
    }

    /// `path(version)` when that file exists, else the same for the version it is like
    /// (and so on); the version's own path when none exists.
    fn inherited(&self, version: &str, path: impl Fn(&str) -> PathBuf) -> PathBuf {
        first_existing(&self.lineage(version), path)
    }

    /// `version`, the version it is `like`, the one that is like, and so on: where its
    /// fixtures and snapshots are looked up, in order.
    pub fn lineage(&self, version: &str) -> Vec<String> {
        let mut chain = vec![version.to_string()];
        while let Some(like) = self
            .version_info(chain.last().map_or(version, |v| v.as_str()))
            .and_then(|i| i.like.clone())
        {
            // versions.yaml only names versions listed before (no cycle); bound anyway.
            if chain.contains(&like) || chain.len() > self.versions.len() {
                break;
            }
            chain.push(like);
        }
        chain
    }

    /// `fixtures/<family>/<version>/snapshots/<name>.json`
    ///
    /// Like fixtures, a version that is `like` another shares its snapshots until it has
    /// its own (volatile keys such as `version` are replaced before comparing).
    pub fn snapshot_path(&self, family: &str, version: &str, name: &str) -> PathBuf {
        self.inherited(version, |v| {
            self.root
                .join("fixtures")
                .join(family)
                .join(v)
                .join("snapshots")
                .join(format!("{name}.json"))
        })
    }

    /// Recognise a received message: the first kind of `family`/`version` sent by
    /// `from` (or by `any` side) whose recogniser accepts the body. JSON bodies are
    /// matched against JSON kinds, text bodies against text kinds. Kinds marked
    /// `same_as` are never returned (their body is indistinguishable from another kind).
    pub fn classify(
        &self,
        family: &str,
        version: &str,
        from: &str,
        body: &Body,
    ) -> Option<&KindEntry> {
        self.family(family)?.kinds.iter().find(|k| {
            (k.from == from || k.from == ANY_SIDE)
                && k.versions.iter().any(|v| v == version)
                && k.recognise.accepts(body)
        })
    }

    /// Every kind a message could be, when who sent it, and in which family and version,
    /// may be unknown: `classify` for each family (or only `family`), each version (or
    /// only `version`) and each sending side (or only `from`). Kinds come back in
    /// catalog order, at most once per family and version.
    pub fn recognise(
        &self,
        body: &Body,
        family: Option<&str>,
        version: Option<&str>,
        from: Option<&str>,
    ) -> Vec<Recognised<'_>> {
        let mut out: Vec<Recognised<'_>> = Vec::new();
        for fam in &self.families {
            if family.is_some_and(|f| f != fam.family) {
                continue;
            }
            let versions: Vec<String> = match version {
                Some(v) => vec![v.to_string()],
                None => self.versions(&fam.family),
            };
            let mut sides: Vec<&str> = fam
                .kinds
                .iter()
                .map(|k| k.from.as_str())
                .filter(|s| *s != ANY_SIDE)
                .collect();
            sides.sort();
            sides.dedup();
            if let Some(f) = from {
                sides.retain(|s| *s == f);
            }
            for v in &versions {
                for side in &sides {
                    if let Some(k) = self.classify(&fam.family, v, side, body) {
                        let seen = out.iter().any(|r| {
                            r.family == fam.family && r.version == *v && r.kind.kind == k.kind
                        });
                        if !seen {
                            out.push(Recognised {
                                family: fam.family.clone(),
                                version: v.clone(),
                                kind: k,
                            });
                        }
                    }
                }
            }
        }
        out
    }

    /// The flattened catalog, optionally filtered.
    pub fn rows(&self, family: Option<&str>, version: Option<&str>) -> Vec<CatalogRow> {
        let mut rows = Vec::new();
        for fam in &self.families {
            if family.is_some_and(|f| f != fam.family) {
                continue;
            }
            for k in &fam.kinds {
                for v in &k.versions {
                    if version.is_some_and(|want| want != v) {
                        continue;
                    }
                    rows.push(CatalogRow {
                        family: fam.family.clone(),
                        version: v.clone(),
                        kind: k.kind.clone(),
                        mode: k.mode.clone(),
                        from: k.from.clone(),
                        to: k.to.clone(),
                        recognised_by: k.recognise.describe(),
                        schema: self.relative(self.schema_path(&fam.family, v, &k.kind)),
                        fixture: self.relative(self.fixture_path(&fam.family, v, &k.kind)),
                        summary: k.summary.clone(),
                        unverified: k
                            .unverified
                            .iter()
                            .filter(|u| u.versions.contains(v))
                            .cloned()
                            .collect(),
                    });
                }
            }
        }
        // Stable sort: within one family and version, kinds keep their file order (which
        // is also the classification order).
        rows.sort_by(|a, b| {
            a.family
                .cmp(&b.family)
                .then(compare_versions(&a.version, &b.version))
        });
        rows
    }

    fn relative(&self, p: PathBuf) -> PathBuf {
        p.strip_prefix(&self.root)
            .map(Path::to_path_buf)
            .unwrap_or(p)
    }
}

/// A kind a message was recognised as, with where it was found.
#[derive(Debug, Clone)]
pub struct Recognised<'a> {
    pub family: String,
    pub version: String,
    pub kind: &'a KindEntry,
}

/// Compare dotted version strings numerically ("6.0" < "6.4" < "7.0" < "10.0").
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a).cmp(&parse(b))
}

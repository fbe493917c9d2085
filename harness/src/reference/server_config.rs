//! The configuration a reference server hands a proxy, read from the version's fixture
//! (the configuration the sender suites push to a proxy: one host, two trapper items),
//! so that column lists live with the schemas they must match and a new version folder
//! gives a new configuration without Rust:
//!
//! - without `incremental-config` (5.4, 6.0): `fixtures/server-proxy/<v>/proxy-config.trapper.tables.json`,
//!   the bare tables followed by `macro.secrets`;
//! - with it (6.4+): `fixtures/server-proxy/<v>/proxy-config.trapper.sync.json`, a full
//!   sync whose `data` and `macro.secrets` are taken (protocol.md §2.4).
//!
//! It also decides what a 6.4+ server sends for a proxy's revision.

use super::fault::{is, Fault};
use crate::catalog::versions::feature;
use crate::catalog::VersionInfo;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// The fixture of a version without incremental configuration.
const TABLES_FIXTURE: &str = "proxy-config.trapper.tables.json";
/// The fixture of a version with incremental configuration.
const SYNC_FIXTURE: &str = "proxy-config.trapper.sync.json";

/// The configuration revision the reference servers (6.4+) are at.
pub const SERVER_REVISION: u64 = 42;

/// A server's configuration: its tables and `macro.secrets`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServerConfig {
    /// `{"fields": [...], "data": [[...]]}` tables in the fixture's order.
    tables: Map<String, Value>,
    /// `macro.secrets`, when the fixture has it.
    secrets: Option<Value>,
}

/// Where the configuration of `version` lives under the data root (the layout of
/// `Catalog::fixture_path`: the version's own file, else that of the version it is
/// `like`, along `lineage`).
pub(crate) fn fixture_path(data_root: &Path, version: &VersionInfo, lineage: &[String]) -> PathBuf {
    let name = if version.has(feature::INCREMENTAL_CONFIG) {
        SYNC_FIXTURE
    } else {
        TABLES_FIXTURE
    };
    crate::catalog::first_existing(lineage, |v| {
        data_root
            .join("fixtures")
            .join("server-proxy")
            .join(v)
            .join(name)
    })
}

impl ServerConfig {
    /// Read the configuration of `version`; a missing or malformed file is an error that
    /// names it.
    pub fn load(
        data_root: &Path,
        version: &VersionInfo,
        lineage: &[String],
    ) -> Result<ServerConfig, String> {
        let path = fixture_path(data_root, version, lineage);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        ServerConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parse either shape: a full sync (`{"data": {tables}, "macro.secrets": ...}`) or
    /// bare tables with `macro.secrets` among them. Every table must be well formed
    /// and `hosts` must be there (the faults change it).
    pub fn parse(text: &str) -> Result<ServerConfig, String> {
        let doc: Map<String, Value> =
            serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
        let (mut tables, secrets) = match doc.get("data") {
            Some(Value::Object(data)) => (data.clone(), doc.get("macro.secrets").cloned()),
            Some(_) => return Err("\"data\" is not an object of tables".into()),
            None => {
                let mut tables = doc;
                let secrets = tables.remove("macro.secrets");
                (tables, secrets)
            }
        };
        // 6.4+ answers carry macro.secrets next to `data`, never inside it.
        if let Some(inner) = tables.remove("macro.secrets") {
            return Err(format!(
                "macro.secrets inside \"data\" ({inner}): it belongs next to it"
            ));
        }
        for (name, table) in &tables {
            check_table(table).map_err(|e| format!("table {name}: {e}"))?;
        }
        if !tables.contains_key("hosts") {
            return Err("no hosts table".into());
        }
        Ok(ServerConfig { tables, secrets })
    }

    /// The tables with `macro.secrets` last: what a 5.4/6.0 server sends (wrapped in
    /// `data` by the poller, bare by the trapper). `missing-fields` leaves out `hosts`
    /// and `macro.secrets`; `wrong-types` makes hostids strings and interface ports
    /// numbers.
    pub fn tables(&self, fault: Option<Fault>) -> Map<String, Value> {
        let mut out = self.tables_only(fault);
        if !is(fault, Fault::MissingFields) {
            out.insert(
                "macro.secrets".into(),
                self.secrets.clone().unwrap_or_else(|| json!({})),
            );
        }
        out
    }

    fn tables_only(&self, fault: Option<Fault>) -> Map<String, Value> {
        let mut out = self.tables.clone();
        if is(fault, Fault::MissingFields) {
            out.remove("hosts");
        }
        if is(fault, Fault::WrongTypes) {
            retype(&mut out, "hosts", "hostid", |v| json!(v.to_string()));
            retype(&mut out, "interface", "port", |v| match v {
                Value::String(s) => s.parse::<u64>().map_or(json!(10050), |n| json!(n)),
                other => other.clone(),
            });
        }
        out
    }

    /// A 6.4+ configuration answer: `{["full_sync":1],"data":{tables},["macro.secrets"],
    /// "config_revision"}`, or `{}` when unchanged. `macro.secrets` is top-level since
    /// 6.4 and sent on a full sync. Faults as in [`ServerConfig::tables`];
    /// `missing-fields` also drops `config_revision`, `wrong-types` sends it as a string.
    pub fn answer(&self, fault: Option<Fault>, sync: Sync) -> Map<String, Value> {
        let mut out = Map::new();
        if sync == Sync::Unchanged {
            return out;
        }
        if sync == Sync::Full {
            out.insert("full_sync".into(), json!(1));
        }
        out.insert("data".into(), Value::Object(self.tables_only(fault)));
        if sync == Sync::Full && !is(fault, Fault::MissingFields) {
            out.insert(
                "macro.secrets".into(),
                self.secrets.clone().unwrap_or_else(|| json!({})),
            );
        }
        if is(fault, Fault::WrongTypes) {
            out.insert("config_revision".into(), json!(SERVER_REVISION.to_string()));
        } else if !is(fault, Fault::MissingFields) {
            out.insert("config_revision".into(), json!(SERVER_REVISION));
        }
        out
    }
}

/// A table is `{"fields": [names], "data": [rows]}` with rows as wide as the fields.
fn check_table(table: &Value) -> Result<(), String> {
    let fields = table
        .get("fields")
        .and_then(Value::as_array)
        .ok_or("no \"fields\" array")?;
    if !fields.iter().all(Value::is_string) {
        return Err("a field name is not a string".into());
    }
    let rows = table
        .get("data")
        .and_then(Value::as_array)
        .ok_or("no \"data\" array")?;
    for (i, row) in rows.iter().enumerate() {
        let width = row.as_array().map(Vec::len);
        if width != Some(fields.len()) {
            return Err(format!("row {i} is not an array of {} cells", fields.len()));
        }
    }
    Ok(())
}

/// Change every cell of `column` in `table` with `f`.
fn retype(tables: &mut Map<String, Value>, table: &str, column: &str, f: impl Fn(&Value) -> Value) {
    let Some(t) = tables.get_mut(table) else {
        return;
    };
    let Some(col) = t
        .get("fields")
        .and_then(Value::as_array)
        .and_then(|fs| fs.iter().position(|c| c == column))
    else {
        return;
    };
    if let Some(Value::Array(rows)) = t.get_mut("data") {
        for cell in rows.iter_mut().filter_map(|r| r.get_mut(col)) {
            *cell = f(cell);
        }
    }
}

/// What a 6.4+ server sends for a proxy's revision (protocol.md §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// New session or revision 0: every table, `"full_sync":1`.
    Full,
    /// An older revision of the same session: the changed tables (here: all of them).
    Changes,
    /// The proxy is current: `{}`.
    Unchanged,
}

/// Decide the sync for a proxy reporting `revision` in `session`, given the session the
/// server saw last from that proxy. `stale-revision` always sends a full sync.
pub fn sync_for(
    fault: Option<Fault>,
    known_session: Option<&str>,
    session: &str,
    revision: u64,
) -> Sync {
    if is(fault, Fault::StaleRevision) || known_session != Some(session) || revision == 0 {
        Sync::Full
    } else if revision == SERVER_REVISION {
        Sync::Unchanged
    } else {
        Sync::Changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLES: &str = r#"{
        "globalmacro": {"fields": ["globalmacroid", "macro"], "data": [[2, "{$A}"]]},
        "hosts": {"fields": ["hostid", "host"], "data": [[10001, "zbx-conform-h1"]]},
        "interface": {"fields": ["interfaceid", "port"], "data": [[1, "10050"]]},
        "macro.secrets": {}
    }"#;

    fn sync_text() -> String {
        let t: Value = serde_json::from_str(TABLES).unwrap();
        let mut data = t.as_object().unwrap().clone();
        data.remove("macro.secrets");
        json!({"full_sync": 1, "data": data, "macro.secrets": {}, "config_revision": 7}).to_string()
    }

    #[test]
    fn both_shapes_give_the_same_configuration() {
        let bare = ServerConfig::parse(TABLES).unwrap();
        let sync = ServerConfig::parse(&sync_text()).unwrap();
        assert_eq!(bare, sync);
        let keys: Vec<String> = bare.tables(None).keys().cloned().collect();
        assert_eq!(keys, ["globalmacro", "hosts", "interface", "macro.secrets"]);
    }

    #[test]
    fn malformed_configurations_are_refused_with_a_reason() {
        for (text, needle) in [
            ("", "not a JSON object"),
            ("[]", "not a JSON object"),
            (r#"{"data": []}"#, "not an object of tables"),
            (
                r#"{"hosts": {"fields": ["a"], "data": [[1, 2]]}}"#,
                "table hosts: row 0",
            ),
            (
                r#"{"items": {"fields": ["a"], "data": []}}"#,
                "no hosts table",
            ),
            (
                r#"{"data": {"hosts": {"fields": [], "data": []}, "macro.secrets": {}}}"#,
                "inside \"data\"",
            ),
        ] {
            let e = ServerConfig::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn faults_change_the_tables() {
        let c = ServerConfig::parse(TABLES).unwrap();
        let missing = c.tables(Some(Fault::MissingFields));
        assert!(!missing.contains_key("hosts") && !missing.contains_key("macro.secrets"));
        let wrong = c.tables(Some(Fault::WrongTypes));
        assert_eq!(wrong["hosts"]["data"][0][0], "10001");
        assert_eq!(wrong["interface"]["data"][0][1], 10050);
        assert_eq!(c.tables(None)["interface"]["data"][0][1], "10050");
    }

    #[test]
    fn sync_follows_session_and_revision() {
        let s = "0123456789abcdef0123456789abcdef";
        assert_eq!(sync_for(None, None, s, SERVER_REVISION), Sync::Full);
        assert_eq!(sync_for(None, Some(s), s, 0), Sync::Full);
        assert_eq!(sync_for(None, Some(s), s, SERVER_REVISION), Sync::Unchanged);
        assert_eq!(sync_for(None, Some(s), s, 7), Sync::Changes);
        assert_eq!(
            sync_for(Some(Fault::StaleRevision), Some(s), s, SERVER_REVISION),
            Sync::Full
        );
        let c = ServerConfig::parse(&sync_text()).unwrap();
        assert!(c.answer(None, Sync::Unchanged).is_empty());
        let full = c.answer(None, Sync::Full);
        assert_eq!(full["full_sync"], json!(1));
        assert_eq!(full["config_revision"], json!(SERVER_REVISION));
        assert!(full["data"].get("macro.secrets").is_none());
        assert!(full.contains_key("macro.secrets"));
        let changes = c.answer(None, Sync::Changes);
        assert!(!changes.contains_key("full_sync") && changes.contains_key("data"));
        let missing = c.answer(Some(Fault::MissingFields), Sync::Full);
        assert!(!missing.contains_key("config_revision"));
        assert!(missing["data"].get("hosts").is_none());
        let wrong = c.answer(Some(Fault::WrongTypes), Sync::Full);
        assert!(wrong["config_revision"].is_string());
        assert!(wrong["data"]["hosts"]["data"][0][0].is_string());
    }

    /// Every version of the project has its configuration, and each parses.
    #[test]
    fn the_project_configurations_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let catalog = crate::catalog::Catalog::load(&root).unwrap();
        let versions = catalog.all_versions();
        for v in versions {
            let lineage = catalog.lineage(&v.version);
            let tables = ServerConfig::load(&root, v, &lineage).unwrap().tables(None);
            assert!(tables.contains_key("hosts"), "{}", v.version);
            // 7.0's configuration carries host_inventory with hosts, 6.4's does not.
            match v.version.as_str() {
                "6.4" => assert!(!tables.contains_key("host_inventory")),
                "7.0" => assert!(tables.contains_key("host_inventory")),
                _ => {}
            }
        }
        let broken =
            std::env::temp_dir().join(format!("zbxc-server-config-{}", std::process::id()));
        let v60 = versions.iter().find(|v| v.version == "6.0").unwrap();
        let own = ["6.0".to_string()];
        let path = fixture_path(&broken, v60, &own);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{").unwrap();
        let e = ServerConfig::load(&broken, v60, &own).unwrap_err();
        assert!(e.contains(&path.display().to_string()), "{e}");
        std::fs::remove_dir_all(&broken).unwrap();
        let e = ServerConfig::load(&broken, v60, &own).unwrap_err();
        assert!(
            e.starts_with("cannot read") && e.contains(TABLES_FIXTURE),
            "{e}"
        );
    }
}

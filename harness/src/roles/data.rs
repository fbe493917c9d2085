//! Canned messages of the reference peers: the configuration tables a server sends, the
//! data a proxy reports, and the small values that go with them (session, clock).
//!
//! Shapes follow protocol.md §2.3 and §2.5 (6.0.14): integer/id columns are JSON
//! numbers, everything else strings; history `value` is a string; auto-registration
//! `port` is a string; data arrays carry realistic rows.

use super::fault::{is, Fault};
use super::version::{VersionProfile, WRONG_VERSION};
use serde_json::{json, Map, Value};
use std::hash::{BuildHasher, Hasher};

/// History rows per `proxy data` batch.
pub const BATCH_ROWS: u64 = 3;
/// The host name the active reference proxy uses (and the scenarios' default).
pub const PROXY_HOST: &str = "zbx-conform-proxy";

/// Current time as Zabbix puts it on the wire: seconds and nanoseconds.
pub fn now() -> (i64, u32) {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(_) => (0, 0),
    }
}

/// A fresh session token: 32 lowercase hex characters, fixed per peer process in Zabbix
/// (here: per reference peer instance). Randomness comes from the std hasher's random
/// keys, which is plenty for a token that only has to differ between runs.
pub fn new_session() -> String {
    let (secs, nanos) = now();
    let mut out = String::with_capacity(32);
    for part in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_i64(secs);
        h.write_u32(nanos);
        h.write_u64(part);
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// The version string a peer announces (wrong on purpose under `wrong-version`).
pub fn version_of(profile: &VersionProfile, fault: Option<Fault>) -> &'static str {
    if is(fault, Fault::WrongVersion) {
        WRONG_VERSION
    } else {
        profile.full
    }
}

/// The data section of a proxy's `proxy data` message, from `session` to `ns`, in
/// 6.0's key order, with canned rows in every section. `acked` is the last history id
/// the other side acknowledged: the batch holds the rows after it, so an unacknowledged
/// batch comes back identical and an acknowledged one is followed by new ids. `more` and
/// `proxy_delay` are the caller's ([`History::batch`]): real proxies send them only while
/// history is left behind the message.
pub fn proxy_data(
    profile: &VersionProfile,
    fault: Option<Fault>,
    session: &str,
    acked: u64,
    started: i64,
) -> Map<String, Value> {
    let wrong_types = is(fault, Fault::WrongTypes);
    let first = acked + 1;
    // Row clocks are derived from the id so that a resent batch is byte-identical.
    let row_clock = |id: u64| started + id as i64;
    let history: Vec<Value> = (first..first + BATCH_ROWS)
        .map(|id| {
            let mut row = Map::new();
            row.insert("id".into(), json!(id));
            row.insert("itemid".into(), json!(10_000 + (id % BATCH_ROWS) + 1));
            row.insert("clock".into(), json!(row_clock(id)));
            row.insert("ns".into(), json!((id * 1_000) % 1_000_000_000));
            match id % BATCH_ROWS {
                0 => {
                    // A not-supported item: state 1, the error text as value.
                    row.insert("state".into(), json!(1));
                    row.insert("value".into(), json!("Unsupported item key."));
                }
                1 if wrong_types => {
                    row.insert("value".into(), json!(id));
                }
                1 => {
                    row.insert("value".into(), json!(id.to_string()));
                }
                _ => {
                    row.insert("value".into(), json!(format!("zbx-conform value {id}")));
                }
            }
            Value::Object(row)
        })
        .collect();
    let batch = acked / BATCH_ROWS;
    let mut out = Map::new();
    if !is(fault, Fault::MissingFields) {
        let session = if wrong_types {
            session.chars().take(31).collect()
        } else {
            session.to_string()
        };
        out.insert("session".into(), json!(session));
    }
    out.insert(
        "interface availability".into(),
        json!([
            {"interfaceid": 1, "available": 1, "error": ""},
            {"interfaceid": 2, "available": 2,
             "error": "Get value from agent failed: cannot connect to [[127.0.0.1]:10049]: [111] Connection refused"}
        ]),
    );
    out.insert("history data".into(), Value::Array(history));
    out.insert(
        "discovery data".into(),
        json!([{
            "clock": row_clock(first), "drule": 2, "dcheck": 3,
            "ip": format!("10.3.0.{}", batch % 250 + 1), "dns": "zbx-conform.example",
            "port": 10050, "value": "zbx-conform", "status": 1
        }]),
    );
    // 6.x sends the port as a string, 7.0 as a number (measured: ci/NOTES-trixie.md §7).
    let port = if wrong_types != profile.numeric_autoreg() {
        json!(10050)
    } else {
        json!("10050")
    };
    out.insert(
        "auto registration".into(),
        json!([{
            "clock": row_clock(first), "host": format!("zbx-conform-agent-{batch}"),
            "ip": "10.3.0.1", "dns": "localhost", "port": port, "host_metadata": "Linux"
        }]),
    );
    if profile.incremental_config() {
        // 6.4+: active-agent availability of the hosts behind the proxy.
        out.insert(
            "host data".into(),
            json!([{"hostid": 10084, "active_status": 1}]),
        );
    }
    if !is(fault, Fault::MissingFields) {
        out.insert("version".into(), json!(version_of(profile, fault)));
    }
    let (clock, ns) = now();
    out.insert("clock".into(), json!(clock));
    out.insert("ns".into(), json!(ns));
    out
}

/// Top-level members of `proxy data` in the order the real proxies write them (6.0.14
/// `proxydata.c`/`datasender.c`; 7.0.22 measured: `host data` before `tasks`).
const PROXY_DATA_ORDER: &[&str] = &[
    "request",
    "host",
    "session",
    "interface availability",
    "history data",
    "discovery data",
    "auto registration",
    "host data",
    "tasks",
    "more",
    "version",
    "clock",
    "ns",
    "proxy_delay",
];

/// `body` with its members in [`PROXY_DATA_ORDER`] (others after them, as they came).
pub fn in_proxy_data_order(mut body: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for key in PROXY_DATA_ORDER {
        if let Some(v) = body.remove(*key) {
            out.insert((*key).to_string(), v);
        }
    }
    out.extend(body);
    out
}

/// Most history rows in one `proxy data` (6.0.14 `ZBX_MAX_HRECORDS_TOTAL`); real proxies
/// then add `"more":1`.
pub const MAX_HISTORY_ROWS: u64 = 10_000;

/// A proxy's history buffer: the trapper items of its configuration, the values they
/// received and not yet delivered, and the last id the server acknowledged.
#[derive(Debug, Default, Clone)]
pub struct History {
    pub acked: u64,
    pub items: std::collections::HashMap<(String, String), u64>,
    pub pending: Vec<TrappedValue>,
}

/// What one `proxy data` carries of the history buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryBatch {
    /// The acknowledged id the batch starts after.
    pub base: u64,
    /// The pending values it carries (after the [`BATCH_ROWS`] canned rows).
    pub values: Vec<TrappedValue>,
    /// Values are left behind it: `"more":1`.
    pub more: bool,
    /// Seconds since the first value left behind arrived, when at least 1 — what the
    /// real proxies send as `proxy_delay` (6.0.14 `proxy_get_delay` reads the row after
    /// the batch; measured with 12000 values: `"more":1,"proxy_delay":3`).
    pub proxy_delay: Option<i64>,
}

impl History {
    /// Take `sender data` elements: values of configured trapper items are kept, the
    /// rest fail. Returns (processed, failed).
    pub fn trap(&mut self, elements: &[Value]) -> (usize, usize) {
        let (mut processed, mut failed) = (0, 0);
        for v in elements {
            match trapped_value(v, &self.items) {
                Some(t) => {
                    self.pending.push(t);
                    processed += 1;
                }
                None => failed += 1,
            }
        }
        (processed, failed)
    }

    /// The next batch: as many pending values as fit next to the canned rows.
    pub fn batch(&self) -> HistoryBatch {
        let room = (MAX_HISTORY_ROWS - BATCH_ROWS) as usize;
        let n = self.pending.len().min(room);
        let proxy_delay = self
            .pending
            .get(n)
            .map(|left| now().0 - left.received)
            .filter(|d| *d >= 1);
        HistoryBatch {
            base: self.acked,
            values: self.pending[..n].to_vec(),
            more: self.pending.len() > n,
            proxy_delay,
        }
    }

    /// Commit a delivered batch, unless another connection already did.
    pub fn commit(&mut self, batch: &HistoryBatch) {
        if self.acked == batch.base {
            self.acked = batch.base + BATCH_ROWS + batch.values.len() as u64;
            let n = batch.values.len().min(self.pending.len());
            self.pending.drain(..n);
        }
    }

    /// Add the batch to a proxy data body: history rows, `more`, `proxy_delay` (as
    /// strings under `broken-sections`).
    pub fn add_to(batch: &HistoryBatch, body: &mut Map<String, Value>, fault: Option<Fault>) {
        append_history(body, &batch.values, batch.base + BATCH_ROWS + 1);
        let broken = is(fault, Fault::BrokenSections);
        if batch.more {
            body.insert("more".into(), if broken { json!("1") } else { json!(1) });
        }
        if let Some(d) = batch.proxy_delay {
            let d = if broken {
                json!(d.to_string())
            } else {
                json!(d)
            };
            body.insert("proxy_delay".into(), d);
        }
    }
}

/// The `tasks` of a server's answer (acknowledgement or data response) payload.
pub fn tasks_of(payload: &[u8]) -> Vec<Value> {
    serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|v| v.get("tasks").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

/// A value a proxy received by `sender data` for one of its trapper items.
#[derive(Debug, Clone, PartialEq)]
pub struct TrappedValue {
    pub itemid: u64,
    pub clock: i64,
    pub ns: u32,
    pub value: String,
    /// When the proxy received it (unix seconds), for `proxy_delay`.
    pub received: i64,
}

/// One `sender data` element (`{"host","key","value",["clock"],["ns"]}`) as a value of
/// a configured trapper item, or `None` when the item is unknown or the element is
/// malformed (the proxy counts it as failed). Values are strings on the wire; numbers
/// are taken as their text.
pub fn trapped_value(
    element: &Value,
    items: &std::collections::HashMap<(String, String), u64>,
) -> Option<TrappedValue> {
    let host = element.get("host")?.as_str()?;
    let key = element.get("key")?.as_str()?;
    let itemid = *items.get(&(host.to_string(), key.to_string()))?;
    let value = match element.get("value")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let (now_s, now_ns) = now();
    Some(TrappedValue {
        itemid,
        clock: element
            .get("clock")
            .and_then(Value::as_i64)
            .unwrap_or(now_s),
        ns: element
            .get("ns")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(now_ns),
        value,
        received: now_s,
    })
}

/// Append trapped values to the `history data` of a proxy data body, with ids from
/// `first_id` on (a resent batch gets the same ids).
pub fn append_history(body: &mut Map<String, Value>, values: &[TrappedValue], first_id: u64) {
    if values.is_empty() {
        return;
    }
    let rows = values.iter().enumerate().map(|(i, v)| {
        json!({"id": first_id + i as u64, "itemid": v.itemid, "clock": v.clock, "ns": v.ns, "value": v.value})
    });
    match body.get_mut("history data") {
        Some(Value::Array(a)) => a.extend(rows),
        _ => {
            body.insert("history data".into(), Value::Array(rows.collect()));
        }
    }
}

/// The trapper items of a pushed configuration (`data` of `proxy config`): enabled
/// items of type 2 (Zabbix trapper) on enabled hosts, by (host name, key). `None` when
/// the `hosts` or `items` table is missing or malformed (the configuration is then not
/// applied, like the real proxy's all-or-nothing update).
pub fn trapper_items(
    tables: &Map<String, Value>,
) -> Option<std::collections::HashMap<(String, String), u64>> {
    let hosts = table_rows(tables.get("hosts")?, &["hostid", "host", "status"])?;
    let items = table_rows(
        tables.get("items")?,
        &["itemid", "hostid", "key_", "type", "status"],
    )?;
    let mut host_names = std::collections::HashMap::new();
    for h in hosts {
        if h[2].as_i64() == Some(0) {
            if let (Some(id), Some(name)) = (h[0].as_u64(), h[1].as_str()) {
                host_names.insert(id, name.to_string());
            }
        }
    }
    let mut out = std::collections::HashMap::new();
    for i in items {
        let (Some(itemid), Some(hostid), Some(key)) = (i[0].as_u64(), i[1].as_u64(), i[2].as_str())
        else {
            continue;
        };
        if i[3].as_i64() != Some(2) || i[4].as_i64() != Some(0) {
            continue;
        }
        if let Some(host) = host_names.get(&hostid) {
            out.insert((host.clone(), key.to_string()), itemid);
        }
    }
    Some(out)
}

/// The cells of `columns` in every row of a `{"fields":[...],"data":[[...]]}` table.
fn table_rows(table: &Value, columns: &[&str]) -> Option<Vec<Vec<Value>>> {
    let fields = table.get("fields")?.as_array()?;
    let idx: Vec<usize> = columns
        .iter()
        .map(|c| fields.iter().position(|f| f.as_str() == Some(c)))
        .collect::<Option<_>>()?;
    let rows = table.get("data")?.as_array()?;
    rows.iter()
        .map(|r| {
            let r = r.as_array()?;
            idx.iter().map(|&i| r.get(i).cloned()).collect()
        })
        .collect()
}

/// The answer to `proxy tasks` (no tasks pending).
pub fn proxy_tasks(profile: &VersionProfile, fault: Option<Fault>) -> Value {
    let (clock, ns) = now();
    let mut out = Map::new();
    if !is(fault, Fault::MissingFields) {
        out.insert("version".into(), json!(version_of(profile, fault)));
    }
    out.insert("clock".into(), json!(clock));
    out.insert("ns".into(), json!(ns));
    Value::Object(out)
}

/// Column kinds: `N` numbers (ids, integers), `S` strings.
const N: bool = true;
const S: bool = false;

/// `(table, [(column, is_number)])` in 6.0.14's table order (protocol.md §2.3), with the
/// column sets the real 6.0.14 proxy accepts (measured: ci/NOTES-real-proxy.md §2.1).
const TABLES: &[(&str, &[(&str, bool)])] = &[
    (
        "globalmacro",
        &[
            ("globalmacroid", N),
            ("macro", S),
            ("value", S),
            ("type", N),
        ],
    ),
    (
        "hosts",
        &[
            ("hostid", N),
            ("host", S),
            ("status", N),
            ("ipmi_authtype", N),
            ("ipmi_privilege", N),
            ("ipmi_username", S),
            ("ipmi_password", S),
            ("name", S),
            ("tls_connect", N),
            ("tls_accept", N),
            ("tls_issuer", S),
            ("tls_subject", S),
            ("tls_psk_identity", S),
            ("tls_psk", S),
        ],
    ),
    (
        "interface",
        &[
            ("interfaceid", N),
            ("hostid", N),
            ("main", N),
            ("type", N),
            ("useip", N),
            ("ip", S),
            ("dns", S),
            ("port", S),
            ("available", N),
        ],
    ),
    (
        "interface_snmp",
        &[
            ("interfaceid", N),
            ("version", N),
            ("bulk", N),
            ("community", S),
            ("securityname", S),
            ("securitylevel", N),
            ("authpassphrase", S),
            ("privpassphrase", S),
            ("authprotocol", N),
            ("privprotocol", N),
            ("contextname", S),
        ],
    ),
    (
        "hosts_templates",
        &[("hosttemplateid", N), ("hostid", N), ("templateid", N)],
    ),
    (
        "hostmacro",
        &[
            ("hostmacroid", N),
            ("hostid", N),
            ("macro", S),
            ("value", S),
            ("type", N),
        ],
    ),
    (
        "items",
        &[
            ("itemid", N),
            ("type", N),
            ("snmp_oid", S),
            ("hostid", N),
            ("key_", S),
            ("delay", S),
            ("history", S),
            ("status", N),
            ("value_type", N),
            ("trapper_hosts", S),
            ("logtimefmt", S),
            ("params", S),
            ("ipmi_sensor", S),
            ("authtype", N),
            ("username", S),
            ("password", S),
            ("publickey", S),
            ("privatekey", S),
            ("flags", N),
            ("interfaceid", N),
            ("inventory_link", N),
            ("jmx_endpoint", S),
            ("master_itemid", N),
            ("timeout", S),
            ("url", S),
            ("query_fields", S),
            ("posts", S),
            ("status_codes", S),
            ("follow_redirects", N),
            ("post_type", N),
            ("http_proxy", S),
            ("headers", S),
            ("retrieve_mode", N),
            ("request_method", N),
            ("output_format", N),
            ("ssl_cert_file", S),
            ("ssl_key_file", S),
            ("ssl_key_password", S),
            ("verify_peer", N),
            ("verify_host", N),
            ("allow_traps", N),
        ],
    ),
    (
        "item_rtdata",
        &[("itemid", N), ("lastlogsize", N), ("mtime", N)],
    ),
    (
        "item_preproc",
        &[
            ("item_preprocid", N),
            ("itemid", N),
            ("step", N),
            ("type", N),
            ("params", S),
            ("error_handler", N),
            ("error_handler_params", S),
        ],
    ),
    (
        "item_parameter",
        &[
            ("item_parameterid", N),
            ("itemid", N),
            ("name", S),
            ("value", S),
        ],
    ),
    (
        "drules",
        &[("druleid", N), ("name", S), ("iprange", S), ("delay", S)],
    ),
    (
        "dchecks",
        &[
            ("dcheckid", N),
            ("druleid", N),
            ("type", N),
            ("key_", S),
            ("snmp_community", S),
            ("ports", S),
            ("snmpv3_securityname", S),
            ("snmpv3_securitylevel", N),
            ("snmpv3_authpassphrase", S),
            ("snmpv3_privpassphrase", S),
            ("uniq", N),
            ("snmpv3_authprotocol", N),
            ("snmpv3_privprotocol", N),
            ("snmpv3_contextname", S),
            ("host_source", N),
            ("name_source", N),
        ],
    ),
    ("regexps", &[("regexpid", N), ("name", S)]),
    (
        "expressions",
        &[
            ("expressionid", N),
            ("regexpid", N),
            ("expression", S),
            ("expression_type", N),
            ("exp_delimiter", S),
            ("case_sensitive", N),
        ],
    ),
    ("hstgrp", &[("groupid", N)]),
    (
        "config",
        &[
            ("configid", N),
            ("discovery_groupid", N),
            ("snmptrap_logging", N),
            ("hk_history_global", N),
            ("hk_history", S),
            ("autoreg_tls_accept", N),
        ],
    ),
    (
        "httptest",
        &[
            ("httptestid", N),
            ("name", S),
            ("delay", S),
            ("agent", S),
            ("authentication", N),
            ("http_user", S),
            ("http_password", S),
            ("hostid", N),
            ("http_proxy", S),
            ("retries", N),
            ("ssl_cert_file", S),
            ("ssl_key_file", S),
            ("ssl_key_password", S),
            ("verify_peer", N),
            ("verify_host", N),
        ],
    ),
    (
        "httptestitem",
        &[
            ("httptestitemid", N),
            ("httptestid", N),
            ("itemid", N),
            ("type", N),
        ],
    ),
    (
        "httptest_field",
        &[
            ("httptest_fieldid", N),
            ("httptestid", N),
            ("type", N),
            ("name", S),
            ("value", S),
        ],
    ),
    (
        "httpstep",
        &[
            ("httpstepid", N),
            ("httptestid", N),
            ("name", S),
            ("no", N),
            ("url", S),
            ("timeout", S),
            ("posts", S),
            ("required", S),
            ("status_codes", S),
            ("follow_redirects", N),
            ("retrieve_mode", N),
            ("post_type", N),
        ],
    ),
    (
        "httpstepitem",
        &[
            ("httpstepitemid", N),
            ("httpstepid", N),
            ("itemid", N),
            ("type", N),
        ],
    ),
    (
        "httpstep_field",
        &[
            ("httpstep_fieldid", N),
            ("httpstepid", N),
            ("type", N),
            ("name", S),
            ("value", S),
        ],
    ),
    (
        "config_autoreg_tls",
        &[
            ("autoreg_tlsid", N),
            ("tls_psk_identity", S),
            ("tls_psk", S),
        ],
    ),
];

/// Rows of the few tables that are not empty: one monitored host behind the proxy with
/// an agent interface and three items, one global macro, the config row.
fn rows_of(table: &str) -> Vec<Vec<Value>> {
    match table {
        "globalmacro" => vec![vec![
            json!(2),
            json!("{$SNMP_COMMUNITY}"),
            json!("public"),
            json!(0),
        ]],
        "hosts" => vec![vec![
            json!(10084),
            json!("zbx-conform-host"),
            json!(0),
            json!(-1),
            json!(2),
            json!(""),
            json!(""),
            json!("zbx-conform host"),
            json!(1),
            json!(1),
            json!(""),
            json!(""),
            json!(""),
            json!(""),
        ]],
        "interface" => vec![vec![
            json!(1),
            json!(10084),
            json!(1),
            json!(1),
            json!(1),
            json!("127.0.0.1"),
            json!(""),
            json!("10050"),
            json!(1),
        ]],
        "items" => (1..=BATCH_ROWS)
            .map(|i| {
                let key = ["agent.ping", "agent.version", "zbx.conform.unsupported"]
                    [(i - 1) as usize % 3];
                item_row(10_000 + i, key)
            })
            .collect(),
        "config" => vec![vec![
            json!(1),
            json!(5),
            json!(1),
            json!(0),
            json!("90d"),
            json!(1),
        ]],
        "hstgrp" => vec![vec![json!(5)]],
        _ => Vec::new(),
    }
}

fn item_row(itemid: u64, key: &str) -> Vec<Value> {
    let cols = TABLES
        .iter()
        .find(|(t, _)| *t == "items")
        .map(|(_, c)| *c)
        .unwrap_or(&[]);
    cols.iter()
        .map(|(name, number)| match *name {
            "itemid" => json!(itemid),
            "type" => json!(0),
            "hostid" => json!(10084),
            "key_" => json!(key),
            "delay" => json!("1m"),
            "history" => json!("90d"),
            "value_type" => json!(if itemid % BATCH_ROWS == 1 { 3 } else { 4 }),
            "interfaceid" => json!(1),
            "master_itemid" => Value::Null,
            "timeout" => json!("3s"),
            "status_codes" => json!("200"),
            "follow_redirects" => json!(1),
            "verify_peer" | "verify_host" | "allow_traps" => json!(0),
            _ if *number => json!(0),
            _ => json!(""),
        })
        .collect()
}

/// The configuration tables a server sends to a proxy, then `macro.secrets`. Under
/// `missing-fields` the `hosts` table and `macro.secrets` are left out; under
/// `wrong-types` `hostid` becomes a string and the interface `port` a number.
pub fn config_tables(fault: Option<Fault>) -> Map<String, Value> {
    let missing = is(fault, Fault::MissingFields);
    let wrong = is(fault, Fault::WrongTypes);
    let mut out = Map::new();
    for (table, cols) in TABLES {
        if missing && *table == "hosts" {
            continue;
        }
        let fields: Vec<Value> = cols.iter().map(|(c, _)| json!(c)).collect();
        let mut rows = rows_of(table);
        if wrong {
            for row in &mut rows {
                for (cell, (col, _)) in row.iter_mut().zip(cols.iter()) {
                    match (*table, *col) {
                        ("hosts", "hostid") => *cell = json!(cell.to_string()),
                        ("interface", "port") => *cell = json!(10050),
                        _ => {}
                    }
                }
            }
        }
        out.insert(
            (*table).to_string(),
            json!({ "fields": fields, "data": rows }),
        );
    }
    if !missing {
        out.insert("macro.secrets".into(), json!({}));
    }
    out
}

/// The configuration revision the reference servers (6.4+) are at.
pub const SERVER_REVISION: u64 = 42;

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

/// A 6.4+ configuration answer: `{["full_sync":1],"data":{tables},["macro.secrets"],
/// "config_revision"}`, or `{}` when unchanged. `macro.secrets` is top-level since 6.4
/// and sent on a full sync. Faults as in [`config_tables`]; `missing-fields` also drops
/// `config_revision`, `wrong-types` sends it as a string.
pub fn config_answer(protocol: &str, fault: Option<Fault>, sync: Sync) -> Map<String, Value> {
    let mut out = Map::new();
    if sync == Sync::Unchanged {
        return out;
    }
    if sync == Sync::Full {
        out.insert("full_sync".into(), json!(1));
    }
    let mut tables = config_tables_for(protocol, fault);
    let secrets = tables.remove("macro.secrets");
    out.insert("data".into(), Value::Object(tables));
    if sync == Sync::Full {
        if let Some(s) = secrets {
            out.insert("macro.secrets".into(), s);
        }
    }
    if is(fault, Fault::WrongTypes) {
        out.insert("config_revision".into(), json!(SERVER_REVISION.to_string()));
    } else if !is(fault, Fault::MissingFields) {
        out.insert("config_revision".into(), json!(SERVER_REVISION));
    }
    out
}

/// The 7.0 configuration a reference server sends: the full sync the real 7.0.22 proxy
/// applied (every table with its exact column list, `host_inventory` with `hosts`), kept
/// as a fixture and embedded here, so data and reference peer cannot drift apart.
const SYNC_7_0: &str =
    include_str!("../../../fixtures/server-proxy/7.0/proxy-config.trapper.sync.json");

/// The tables (and `macro.secrets`) a server of `protocol` sends, faults applied as in
/// [`config_tables`]: 7.0 from [`SYNC_7_0`], older versions from [`TABLES`].
pub fn config_tables_for(protocol: &str, fault: Option<Fault>) -> Map<String, Value> {
    if protocol != "7.0" {
        return config_tables(fault);
    }
    // Parsed once: every configuration request of a 7.0 reference server needs it.
    static SYNC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let sync = SYNC.get_or_init(|| serde_json::from_str(SYNC_7_0).unwrap_or_default());
    let mut out = match sync.get("data") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    if is(fault, Fault::MissingFields) {
        out.remove("hosts");
        return out;
    }
    if let Some(s) = sync.get("macro.secrets") {
        out.insert("macro.secrets".into(), s.clone());
    }
    if is(fault, Fault::WrongTypes) {
        if let Some(Value::Array(rows)) = out.get_mut("hosts").and_then(|t| t.get_mut("data")) {
            for row in rows {
                if let Some(id) = row.get_mut(0) {
                    *id = json!(id.to_string());
                }
            }
        }
    }
    out
}

/// An unsigned integer member (revisions), `None` when absent or not a number.
pub fn u64_of(map: &Map<String, Value>, key: &str) -> Option<u64> {
    map.get(key).and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_is_32_lowercase_hex_and_fresh() {
        let a = new_session();
        assert_eq!(a.len(), 32);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        assert_ne!(a, new_session());
    }

    #[test]
    fn trapper_items_come_from_enabled_trapper_items_of_enabled_hosts() {
        let tables = json!({
            "hosts": {"fields": ["hostid", "host", "status"],
                      "data": [[1, "h1", 0], [2, "off", 1]]},
            "items": {"fields": ["itemid", "type", "hostid", "key_", "status"],
                      "data": [[10, 2, 1, "trap", 0], [11, 0, 1, "agent", 0],
                               [12, 2, 1, "disabled", 1], [13, 2, 2, "trap", 0]]}
        });
        let items = trapper_items(tables.as_object().unwrap()).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(
            items.get(&("h1".to_string(), "trap".to_string())),
            Some(&10)
        );
        let v = trapped_value(
            &json!({"host": "h1", "key": "trap", "value": "x", "clock": 5}),
            &items,
        )
        .unwrap();
        assert_eq!((v.itemid, v.clock, v.value.as_str()), (10, 5, "x"));
        assert!(
            trapped_value(&json!({"host": "off", "key": "trap", "value": "x"}), &items).is_none()
        );
        assert!(trapper_items(
            json!({"hosts": {"fields": ["hostid"], "data": []}})
                .as_object()
                .unwrap()
        )
        .is_none());
        let mut body = Map::new();
        append_history(&mut body, &[v.clone(), v], 7);
        assert_eq!(body["history data"][1]["id"], json!(8));
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
        assert!(config_answer("6.4", None, Sync::Unchanged).is_empty());
        let full = config_answer("6.4", None, Sync::Full);
        assert_eq!(full["full_sync"], json!(1));
        assert_eq!(full["config_revision"], json!(SERVER_REVISION));
        assert!(full["data"].get("macro.secrets").is_none());
        assert!(full.contains_key("macro.secrets"));
        let changes = config_answer("6.4", None, Sync::Changes);
        assert!(!changes.contains_key("full_sync") && changes.contains_key("data"));
        assert!(
            !config_answer("6.4", Some(Fault::MissingFields), Sync::Full)
                .contains_key("config_revision")
        );
    }

    #[test]
    fn the_7_0_answer_is_the_measured_full_sync_with_faults_applied() {
        let full = config_answer("7.0", None, Sync::Full);
        let tables = full["data"].as_object().expect("tables");
        assert!(tables.contains_key("hosts") && tables.contains_key("host_inventory"));
        for (name, t) in tables {
            let width = t["fields"].as_array().expect("fields").len();
            for row in t["data"].as_array().expect("rows") {
                assert_eq!(row.as_array().expect("row").len(), width, "{name}");
            }
        }
        assert!(full.contains_key("macro.secrets"));
        let missing = config_answer("7.0", Some(Fault::MissingFields), Sync::Full);
        assert!(!missing["data"].as_object().unwrap().contains_key("hosts"));
        let wrong = config_answer("7.0", Some(Fault::WrongTypes), Sync::Full);
        assert!(wrong["data"]["hosts"]["data"][0][0].is_string());
        // 6.4 keeps the older tables: no host_inventory.
        let old = config_answer("6.4", None, Sync::Full);
        assert!(!old["data"]
            .as_object()
            .unwrap()
            .contains_key("host_inventory"));
    }

    #[test]
    fn every_table_row_matches_its_columns() {
        for (table, cols) in TABLES {
            for row in rows_of(table) {
                assert_eq!(row.len(), cols.len(), "{table}");
                for (cell, (col, number)) in row.iter().zip(cols.iter()) {
                    if *number {
                        assert!(cell.is_number() || cell.is_null(), "{table}.{col}");
                    } else {
                        assert!(cell.is_string(), "{table}.{col}");
                    }
                }
            }
        }
    }
}

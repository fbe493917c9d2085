//! Canned messages of the reference proxies: the data a proxy reports, its history
//! buffer, what it takes from a configuration, and the small values that go with them
//! (session, clock). What a server sends is in `server_config`.
//!
//! Shapes follow protocol.md §2.5 (6.0.14): history `value` is a string;
//! auto-registration `port` is a string (a number with `numeric-autoreg`); data arrays
//! carry realistic rows.

use super::fault::{is, Fault};
use super::version::announced;
use crate::catalog::versions::feature;
use crate::catalog::VersionInfo;
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

/// The data section of a proxy's `proxy data` message, from `session` to `ns`, in
/// 6.0's key order, with canned rows in every section. `acked` is the last history id
/// the other side acknowledged: the batch holds the rows after it, so an unacknowledged
/// batch comes back identical and an acknowledged one is followed by new ids. `more` and
/// `proxy_delay` are the caller's ([`History::batch`]): real proxies send them only while
/// history is left behind the message.
pub fn proxy_data(
    version: &VersionInfo,
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
    let port = if wrong_types != version.has(feature::NUMERIC_AUTOREG) {
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
    if version.has(feature::PROXY_HOST_DATA) {
        // 6.4+: active-agent availability of the hosts behind the proxy.
        out.insert(
            "host data".into(),
            json!([{"hostid": 10084, "active_status": 1}]),
        );
    }
    if !is(fault, Fault::MissingFields) {
        out.insert("version".into(), json!(announced(version, fault)));
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
pub fn proxy_tasks(version: &VersionInfo, fault: Option<Fault>) -> Value {
    let (clock, ns) = now();
    let mut out = Map::new();
    if !is(fault, Fault::MissingFields) {
        out.insert("version".into(), json!(announced(version, fault)));
    }
    out.insert("clock".into(), json!(clock));
    out.insert("ns".into(), json!(ns));
    Value::Object(out)
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
}

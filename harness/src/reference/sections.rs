//! What a reference proxy gathers by itself from the configuration it was given, and
//! reports in `proxy data` next to its history (protocol.md §2.5; what the real 6.0.14
//! and 7.0.22 proxies sent: ci/NOTES-real-proxy.md §7, ci/NOTES-trixie.md §7):
//!
//! - interface availability: agent interfaces (type 1) with an enabled Zabbix agent item
//!   (type 0) on an enabled host are polled every item interval (6.x: the plain key,
//!   7.0: a JSON passive check). A new interface is reported once with the
//!   configuration's `available`, an answered poll makes it available (reported once
//!   more). An unanswered poll changes nothing: the real proxy needs UnreachablePeriod
//!   (45 s) before it calls an interface unavailable.
//! - discovery data: rules whose range is one IPv4 address, with TCP checks (type 8).
//!   Each run connects to every port of every check and reports one service row per
//!   check and port (`status` 1 when down, left out when up) and one host row (`dcheck`
//!   null); 7.0 adds a row that closes the run (`ip` "", `status` 4); 6.x rows carry
//!   `dns` (the real 6.0.14 proxy resolved 127.0.0.1 to `localhost`, 7.0.22 sent none).
//! - auto registration: every `active checks` request, of an unknown host or a known
//!   one (both real proxies register known hosts too): host, ip, dns, port, metadata,
//!   flags (1 for an IP `interface`, 2 for a DNS name), tls_accepted (the request's
//!   connection type: 1 unencrypted, 2 PSK, 4 certificate); port and flags
//!   are strings up to 6.4 and numbers from 7.0, as measured.
//! - host data (6.4+): the first `active check heartbeat` of a configured host queues
//!   `active_status` 1; hosts a configuration removes queue 0. The queue empties when a
//!   `proxy data` is built, delivered or not (7.0.22's availability manager does the
//!   same).
//! - task results: a remote command to run on the proxy (type 2, execute_on 2) — only
//!   `echo TEXT` runs, answered `TEXT\n`; anything else gets "Remote commands are not
//!   enabled" — and a diagnostic data task (type 7, datatype 1) give type 3 and type 8
//!   results; a task older than its `ttl` is answered "expired", as 6.0.14 does.
//!
//! Rows, results and availability changes stay until the server takes them (a
//! successful acknowledgement); a fresh state per reference peer, like a fresh proxy.

use super::data;
use super::fault::{is, Fault};
use super::wire;
use crate::catalog::versions::feature;
use crate::catalog::VersionInfo;
use crate::frame::{encode_frame, FrameOptions, ZbxdCodec};
use crate::transport::tls::TlsMode;
use crate::transport::{connect_tcp, Connection};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long a poll or a discovery check may wait to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a poll waits for the agent's answer (the proxies' `Timeout`, 3 s).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the worker looks for due polls and discovery runs.
const TICK: Duration = Duration::from_millis(200);
/// Shortest interval the worker honours.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Most rows kept per section; the oldest go first (a proxy nobody polls).
const MAX_ROWS: usize = 10_000;

/// An agent interface to poll.
#[derive(Debug, Clone, PartialEq)]
struct Polled {
    interfaceid: u64,
    addr: String,
    key: String,
    every: Duration,
}

/// A discovery rule the reference can run.
#[derive(Debug, Clone, PartialEq)]
struct Drule {
    druleid: u64,
    ip: String,
    every: Duration,
    /// (dcheckid, ports) of its TCP checks.
    checks: Vec<(u64, Vec<u16>)>,
}

/// One interface's availability and how often it changed (to commit only what was sent).
#[derive(Debug, Clone, Default)]
struct Availability {
    available: i64,
    error: String,
    generation: u64,
    /// Changed since the server last took it.
    dirty: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Host name → (hostid, status).
    hosts: HashMap<String, (u64, i64)>,
    /// Host name → tls_accept (bits: 1 unencrypted, 2 psk, 4 cert; 1 when not sent).
    tls_accept: HashMap<String, u64>,
    polled: Vec<Polled>,
    drules: Vec<Drule>,
    availability: BTreeMap<u64, Availability>,
    discovery: VecDeque<Value>,
    autoreg: VecDeque<Value>,
    results: VecDeque<Value>,
    host_queue: BTreeMap<u64, i64>,
    heartbeats: HashSet<u64>,
    next_poll: HashMap<u64, Instant>,
    next_run: HashMap<u64, Instant>,
    /// Polls and runs under way, so that a slow one is not started twice.
    busy: HashSet<(char, u64)>,
}

/// What one `proxy data` carried, to commit after the acknowledgement.
#[derive(Debug, Clone, Default)]
pub(crate) struct Taken {
    availability: Vec<(u64, u64)>,
    discovery: usize,
    autoreg: usize,
    results: usize,
}

/// The sections a reference proxy collects (see the module documentation).
#[derive(Debug)]
pub(crate) struct Sections {
    version: Arc<VersionInfo>,
    fault: Option<Fault>,
    state: Mutex<State>,
}

/// `1s`, `30s`, `5m`, `1h`, `2d` or plain seconds; anything else (macros, flexible
/// intervals) counts as a minute. Never below [`MIN_INTERVAL`].
fn interval(text: &str) -> Duration {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let secs = match (num.parse::<u64>(), unit) {
        (Ok(n), "" | "s") => n,
        (Ok(n), "m") => n * 60,
        (Ok(n), "h") => n * 3600,
        (Ok(n), "d") => n * 86_400,
        _ => 60,
    };
    Duration::from_secs(secs).max(MIN_INTERVAL)
}

/// The cells of a `{"fields":[...],"data":[[...]]}` table as maps by column name.
fn rows(tables: &Map<String, Value>, table: &str) -> Option<Vec<Map<String, Value>>> {
    let t = tables.get(table)?;
    let fields: Vec<&str> = t
        .get("fields")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let data = t.get("data")?.as_array()?;
    Some(
        data.iter()
            .filter_map(Value::as_array)
            .map(|r| {
                fields
                    .iter()
                    .zip(r.iter())
                    .map(|(f, v)| ((*f).to_string(), v.clone()))
                    .collect()
            })
            .collect(),
    )
}

fn u64_in(m: &Map<String, Value>, k: &str) -> Option<u64> {
    m.get(k).and_then(Value::as_u64)
}

fn i64_in(m: &Map<String, Value>, k: &str) -> i64 {
    m.get(k).and_then(Value::as_i64).unwrap_or(0)
}

fn str_in<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Push onto a bounded queue.
fn push_row(q: &mut VecDeque<Value>, row: Value) {
    if q.len() >= MAX_ROWS {
        q.pop_front();
    }
    q.push_back(row);
}

impl Sections {
    pub fn new(version: Arc<VersionInfo>, fault: Option<Fault>) -> Self {
        Sections {
            version,
            fault,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> Option<std::sync::MutexGuard<'_, State>> {
        self.state.lock().ok()
    }

    /// Take a configuration: the tables of a 5.4/6.0 push or answer, the `data` of a
    /// 6.4+ answer. Tables not sent are kept, as the real proxy keeps them; `full`
    /// (6.4+ `full_sync`) replaces everything.
    pub fn configure(&self, tables: &Map<String, Value>, full: bool) {
        let Some(mut g) = self.lock() else { return };
        let old_hosts: HashMap<u64, String> = g
            .hosts
            .iter()
            .map(|(n, (id, _))| (*id, n.clone()))
            .collect();
        if let Some(hosts) = rows(tables, "hosts") {
            g.tls_accept = hosts
                .iter()
                .map(|h| {
                    let accept = u64_in(h, "tls_accept").unwrap_or(1);
                    (str_in(h, "host").to_string(), accept)
                })
                .collect();
            g.hosts = hosts
                .iter()
                .filter_map(|h| {
                    Some((
                        str_in(h, "host").to_string(),
                        (u64_in(h, "hostid")?, i64_in(h, "status")),
                    ))
                })
                .collect();
        } else if full {
            g.hosts.clear();
            g.tls_accept.clear();
        }
        let hostids: HashSet<u64> = g.hosts.values().map(|(id, _)| *id).collect();
        if self.version.has(feature::PROXY_HOST_DATA) {
            // 7.0.22 reports hosts that left the configuration as unknown (0).
            for id in old_hosts.keys().filter(|id| !hostids.contains(id)) {
                g.host_queue.insert(*id, 0);
                g.heartbeats.remove(id);
            }
        }
        let enabled: HashSet<u64> = g
            .hosts
            .values()
            .filter(|(_, status)| *status == 0)
            .map(|(id, _)| *id)
            .collect();
        if let (Some(ifaces), Some(items)) = (rows(tables, "interface"), rows(tables, "items")) {
            let mut polled = Vec::new();
            let mut seen = HashSet::new();
            for i in &ifaces {
                let (Some(id), Some(hostid)) = (u64_in(i, "interfaceid"), u64_in(i, "hostid"))
                else {
                    continue;
                };
                if i64_in(i, "type") != 1 || !enabled.contains(&hostid) {
                    continue;
                }
                let item = items.iter().find(|it| {
                    u64_in(it, "interfaceid") == Some(id)
                        && i64_in(it, "type") == 0
                        && i64_in(it, "status") == 0
                });
                let Some(item) = item else { continue };
                let host = if i64_in(i, "useip") == 1 {
                    str_in(i, "ip")
                } else {
                    str_in(i, "dns")
                };
                let port = match i.get("port") {
                    Some(Value::String(p)) => p.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => continue,
                };
                seen.insert(id);
                polled.push(Polled {
                    interfaceid: id,
                    addr: format!("{host}:{port}"),
                    key: str_in(item, "key_").to_string(),
                    every: interval(str_in(item, "delay")),
                });
                // A new interface is reported once as configured.
                g.availability.entry(id).or_insert_with(|| Availability {
                    available: i64_in(i, "available"),
                    error: String::new(),
                    generation: 1,
                    dirty: true,
                });
            }
            g.availability.retain(|id, _| seen.contains(id));
            g.next_poll.retain(|id, _| seen.contains(id));
            g.polled = polled;
        } else if full {
            g.polled.clear();
            g.availability.clear();
        }
        if let (Some(drules), Some(dchecks)) = (rows(tables, "drules"), rows(tables, "dchecks")) {
            g.drules = drules
                .iter()
                .filter_map(|r| {
                    let druleid = u64_in(r, "druleid")?;
                    let ip = str_in(r, "iprange");
                    ip.parse::<std::net::Ipv4Addr>().ok()?;
                    let checks = dchecks
                        .iter()
                        .filter(|c| u64_in(c, "druleid") == Some(druleid) && i64_in(c, "type") == 8)
                        .filter_map(|c| {
                            let ports = str_in(c, "ports")
                                .split(',')
                                .filter_map(|p| p.trim().parse::<u16>().ok())
                                .collect::<Vec<_>>();
                            Some((u64_in(c, "dcheckid")?, ports))
                        })
                        .collect();
                    Some(Drule {
                        druleid,
                        ip: ip.to_string(),
                        every: interval(str_in(r, "delay")),
                        checks,
                    })
                })
                .collect();
            let ids: HashSet<u64> = g.drules.iter().map(|d| d.druleid).collect();
            g.next_run.retain(|id, _| ids.contains(id));
        } else if full {
            g.drules.clear();
        }
    }

    /// [`Sections::trapper_over`] an unencrypted connection.
    #[cfg(test)]
    pub fn trapper(&self, request: &Map<String, Value>, peer_ip: &str) -> Option<Option<Value>> {
        self.trapper_over(request, peer_ip, TlsMode::Unencrypted)
    }

    /// Trapper requests a proxy takes from agents: `active checks` (auto-registration),
    /// `active check heartbeat` (6.4+ host data). `Some(reply)` to send, `None` to close
    /// without one; `peer_ip` is where the request came from, `connection` its type: a
    /// known, monitored host whose tls_accept does not include it gets Zabbix's `failed`
    /// reply for the wrong connection type (protocol.md §4b).
    pub fn trapper_over(
        &self,
        request: &Map<String, Value>,
        peer_ip: &str,
        connection: TlsMode,
    ) -> Option<Option<Value>> {
        match request.get("request").and_then(Value::as_str)? {
            "active checks" => Some(Some(self.active_checks(request, peer_ip, connection))),
            "active check heartbeat" if self.version.has(feature::AGENT_HEARTBEAT) => {
                self.heartbeat(request);
                Some(None)
            }
            _ => None,
        }
    }

    fn active_checks(
        &self,
        request: &Map<String, Value>,
        peer_ip: &str,
        connection: TlsMode,
    ) -> Value {
        let host = request.get("host").and_then(Value::as_str).unwrap_or("");
        let Some(mut g) = self.lock() else {
            return json!({"response": "failed", "info": "internal error"});
        };
        if !host.is_empty() {
            let interface = request
                .get("interface")
                .and_then(Value::as_str)
                .unwrap_or("");
            let by_ip = interface.parse::<std::net::IpAddr>().is_ok();
            let flags = match (interface.is_empty(), by_ip) {
                (true, _) => 0,
                (false, true) => 1,
                (false, false) => 2,
            };
            let ip = match request.get("ip").and_then(Value::as_str) {
                Some(ip) if !ip.is_empty() => ip.to_string(),
                _ if flags == 1 => interface.to_string(),
                _ => peer_ip.to_string(),
            };
            let dns = if flags == 2 { interface } else { "localhost" };
            let port = request.get("port").and_then(Value::as_u64).unwrap_or(10050);
            let numbers =
                self.version.has(feature::NUMERIC_AUTOREG) != is(self.fault, Fault::BrokenSections);
            let mut row = Map::new();
            row.insert("clock".into(), json!(data::now().0));
            row.insert("host".into(), json!(host));
            row.insert("ip".into(), json!(ip));
            row.insert("dns".into(), json!(dns));
            row.insert(
                "port".into(),
                if numbers {
                    json!(port)
                } else {
                    json!(port.to_string())
                },
            );
            if let Some(m) = request.get("host_metadata").and_then(Value::as_str) {
                if !m.is_empty() {
                    row.insert("host_metadata".into(), json!(m));
                }
            }
            if flags != 0 {
                row.insert(
                    "flags".into(),
                    if self.version.has(feature::NUMERIC_AUTOREG) {
                        json!(flags)
                    } else {
                        json!(flags.to_string())
                    },
                );
            }
            row.insert("tls_accepted".into(), json!(connection.bit()));
            push_row(&mut g.autoreg, Value::Object(row));
        }
        let accept = g.tls_accept.get(host).copied().unwrap_or(1);
        match g.hosts.get(host) {
            Some((_, 0)) if accept & connection.bit() == 0 => json!({
                "response": "failed",
                "info": format!("connection of type \"{connection}\" is not allowed for host \"{host}\""),
            }),
            Some((_, 0)) => json!({"response": "success", "data": []}),
            Some(_) => {
                json!({"response": "failed", "info": format!("host [{host}] not monitored")})
            }
            None => json!({"response": "failed", "info": format!("host [{host}] not found")}),
        }
    }

    fn heartbeat(&self, request: &Map<String, Value>) {
        let host = request.get("host").and_then(Value::as_str).unwrap_or("");
        let Some(mut g) = self.lock() else { return };
        let Some(&(hostid, 0)) = g.hosts.get(host) else {
            return;
        };
        if g.heartbeats.insert(hostid) {
            g.host_queue.insert(hostid, 1);
        }
    }

    /// Tasks the server sent (an acknowledgement or a data response): remote commands
    /// and diagnostic data tasks leave results for a later `proxy data`.
    pub fn accept_tasks(&self, tasks: &[Value]) {
        let Some(mut g) = self.lock() else { return };
        let clock = data::now().0;
        for t in tasks {
            let parent = t.get("parent_taskid").and_then(Value::as_u64).unwrap_or(0);
            // A task older than its ttl is answered "expired" (6.0.14 task manager).
            let ttl = t.get("ttl").and_then(Value::as_i64).unwrap_or(0);
            let born = t.get("clock").and_then(Value::as_i64).unwrap_or(clock);
            let expired = ttl != 0 && born + ttl < clock;
            let (kind, status, info) = match t.get("type").and_then(Value::as_i64) {
                Some(2) if expired && t.get("execute_on").and_then(Value::as_i64) == Some(2) => {
                    (3, -1, "The remote command has been expired.".to_string())
                }
                Some(7) if expired => (8, -1, "The task has been expired.".to_string()),
                Some(2) if t.get("execute_on").and_then(Value::as_i64) == Some(2) => {
                    let hostid = t.get("hostid").and_then(Value::as_u64).unwrap_or(0);
                    let command = t.get("command").and_then(Value::as_str).unwrap_or("");
                    let known = g.hosts.values().any(|(id, _)| *id == hostid);
                    match (known, command.strip_prefix("echo ")) {
                        (false, _) => (3, -1, "Unknown host.".to_string()),
                        (true, Some(text))
                            if t.get("commandtype").and_then(Value::as_i64) == Some(0) =>
                        {
                            (3, 0, format!("{text}\n"))
                        }
                        _ => (3, -1, "Remote commands are not enabled".to_string()),
                    }
                }
                Some(7) => {
                    let data = t.get("data").and_then(Value::as_str).unwrap_or("");
                    match (t.get("datatype").and_then(Value::as_i64), diaginfo(data)) {
                        (Some(1), Ok(info)) => (8, 0, info),
                        (Some(1), Err(e)) => (8, -1, e),
                        _ => (8, -1, "Unknown task.".to_string()),
                    }
                }
                _ => continue,
            };
            let status = if is(self.fault, Fault::BrokenSections) {
                json!(status.to_string())
            } else {
                json!(status)
            };
            push_row(
                &mut g.results,
                json!({"type": kind, "clock": clock, "ttl": 0, "status": status,
                       "info": info, "parent_taskid": parent}),
            );
        }
    }

    /// Add what was collected to a `proxy data` body (after its canned rows) and say
    /// what was taken; `host data` is emptied here, sent or not.
    pub fn take(&self, body: &mut Map<String, Value>) -> Taken {
        let Some(mut g) = self.lock() else {
            return Taken::default();
        };
        let broken = is(self.fault, Fault::BrokenSections);
        let mut taken = Taken::default();
        let mut availability = Vec::new();
        for (id, a) in g.availability.iter().filter(|(_, a)| a.dirty) {
            taken.availability.push((*id, a.generation));
            let available = if broken {
                json!(a.available.to_string())
            } else {
                json!(a.available)
            };
            availability.push(json!({"interfaceid": id, "available": available, "error": a.error}));
        }
        append(body, "interface availability", availability);
        taken.discovery = g.discovery.len();
        append(
            body,
            "discovery data",
            g.discovery.iter().cloned().collect(),
        );
        taken.autoreg = g.autoreg.len();
        append(
            body,
            "auto registration",
            g.autoreg.iter().cloned().collect(),
        );
        if self.version.has(feature::PROXY_HOST_DATA) {
            let rows: Vec<Value> = std::mem::take(&mut g.host_queue)
                .into_iter()
                .map(|(hostid, status)| {
                    let s = if broken {
                        json!(status.to_string())
                    } else {
                        json!(status)
                    };
                    json!({"hostid": hostid, "active_status": s})
                })
                .collect();
            append(body, "host data", rows);
        }
        taken.results = g.results.len();
        append(body, "tasks", g.results.iter().cloned().collect());
        taken
    }

    /// Only the task results (`proxy tasks`).
    pub fn take_results(&self, body: &mut Map<String, Value>) -> Taken {
        let Some(g) = self.lock() else {
            return Taken::default();
        };
        append(body, "tasks", g.results.iter().cloned().collect());
        Taken {
            results: g.results.len(),
            ..Taken::default()
        }
    }

    /// The server took what [`Sections::take`] put in a message.
    pub fn commit(&self, taken: &Taken) {
        let Some(mut g) = self.lock() else { return };
        for (id, generation) in &taken.availability {
            if let Some(a) = g.availability.get_mut(id) {
                if a.generation == *generation {
                    a.dirty = false;
                }
            }
        }
        let state = &mut *g;
        for (q, n) in [
            (&mut state.discovery, taken.discovery),
            (&mut state.autoreg, taken.autoreg),
            (&mut state.results, taken.results),
        ] {
            let n = n.min(q.len());
            q.drain(..n);
        }
    }

    /// Poll agents and run discovery rules when due, until the peer stops (dropping the
    /// future aborts the polls under way).
    pub async fn run(self: Arc<Self>) {
        let mut work = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                Some(_) = work.join_next(), if !work.is_empty() => continue,
            }
            let now = Instant::now();
            let (polls, runs) = {
                let Some(mut g) = self.lock() else { return };
                let polls: Vec<Polled> = g
                    .polled
                    .clone()
                    .into_iter()
                    .filter(|p| g.next_poll.get(&p.interfaceid).is_none_or(|t| *t <= now))
                    .filter(|p| !g.busy.contains(&('p', p.interfaceid)))
                    .collect();
                let runs: Vec<Drule> = g
                    .drules
                    .clone()
                    .into_iter()
                    .filter(|d| g.next_run.get(&d.druleid).is_none_or(|t| *t <= now))
                    .filter(|d| !g.busy.contains(&('d', d.druleid)))
                    .collect();
                for p in &polls {
                    g.next_poll.insert(p.interfaceid, now + p.every);
                    g.busy.insert(('p', p.interfaceid));
                }
                for d in &runs {
                    g.next_run.insert(d.druleid, now + d.every);
                    g.busy.insert(('d', d.druleid));
                }
                (polls, runs)
            };
            for p in polls {
                let me = self.clone();
                work.spawn(async move {
                    let json_checks = me.version.has(feature::JSON_PASSIVE_CHECKS);
                    let answered = poll(&p, json_checks).await;
                    if let Some(mut g) = me.lock() {
                        g.busy.remove(&('p', p.interfaceid));
                        if answered {
                            if let Some(a) = g.availability.get_mut(&p.interfaceid) {
                                if a.available != 1 || !a.error.is_empty() {
                                    a.available = 1;
                                    a.error.clear();
                                    a.generation += 1;
                                    a.dirty = true;
                                }
                            }
                        }
                    }
                });
            }
            for d in runs {
                let me = self.clone();
                work.spawn(async move {
                    let run_end = me.version.has(feature::DISCOVERY_RUN_END);
                    let rows = discover(&d, run_end, is(me.fault, Fault::BrokenSections)).await;
                    if let Some(mut g) = me.lock() {
                        g.busy.remove(&('d', d.druleid));
                        for r in rows {
                            push_row(&mut g.discovery, r);
                        }
                    }
                });
            }
        }
    }
}

/// Append rows to a body's array member (creating it); nothing for no rows.
fn append(body: &mut Map<String, Value>, key: &str, rows: Vec<Value>) {
    if rows.is_empty() {
        return;
    }
    match body.get_mut(key) {
        Some(Value::Array(a)) => a.extend(rows),
        _ => {
            body.insert(key.to_string(), Value::Array(rows));
        }
    }
}

/// The answer to a diagnostic data task: the sections it asks for, each an empty
/// report (`locks` a list, the others objects), or the error a proxy gives for an
/// unknown section.
fn diaginfo(data: &str) -> Result<String, String> {
    let request: Map<String, Value> = serde_json::from_str(data).map_err(|e| e.to_string())?;
    let mut out = Map::new();
    for section in request.keys() {
        match section.as_str() {
            "locks" => out.insert(section.clone(), json!([])),
            "historycache" | "preprocessing" => out.insert(section.clone(), json!({})),
            other => return Err(format!("Unsupported diagnostics section: {other}")),
        };
    }
    Ok(Value::Object(out).to_string())
}

/// One agent poll: whether the agent answered with a value.
async fn poll(p: &Polled, json_checks: bool) -> bool {
    let Ok(stream) = connect_tcp(&p.addr, CONNECT_TIMEOUT).await else {
        return false;
    };
    let mut conn = Connection::new(stream, ZbxdCodec::new(wire::MAX_FRAME), p.addr.clone());
    let request = if json_checks {
        json!({"request": "passive checks", "data": [{"key": p.key, "timeout": 3}]}).to_string()
    } else {
        p.key.clone()
    };
    let frame = encode_frame(request.as_bytes(), &FrameOptions::default());
    if conn.write_all(&frame, ANSWER_TIMEOUT).await.is_err() {
        return false;
    }
    let answered = match conn.read_frame(ANSWER_TIMEOUT).await {
        Ok(Some(f)) => match serde_json::from_slice::<Value>(&f.payload) {
            // A 7.0 agent's JSON answer: a value, or an error.
            Ok(v @ Value::Object(_)) => v.pointer("/data/0/value").is_some(),
            // A plain value ("1" is JSON too), or ZBX_NOTSUPPORTED.
            _ => !f.payload.is_empty() && !f.payload.starts_with(b"ZBX_NOTSUPPORTED"),
        },
        _ => false,
    };
    conn.shutdown().await;
    answered
}

/// One run of a discovery rule: a TCP connect per check and port, then the rows;
/// `run_end` (`discovery-run-end`): rows without dns and a last row closing the run.
async fn discover(d: &Drule, run_end: bool, broken: bool) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut any_up = false;
    let clock = data::now().0;
    for (dcheckid, ports) in &d.checks {
        for port in ports {
            let up = connect_tcp(&format!("{}:{port}", d.ip), CONNECT_TIMEOUT)
                .await
                .is_ok();
            any_up |= up;
            let mut row = Map::new();
            row.insert("clock".into(), json!(clock));
            row.insert("drule".into(), json!(d.druleid));
            row.insert("dcheck".into(), json!(dcheckid));
            row.insert("ip".into(), json!(d.ip));
            if !run_end {
                row.insert("dns".into(), json!("localhost"));
            }
            row.insert(
                "port".into(),
                if broken {
                    json!(port.to_string())
                } else {
                    json!(port)
                },
            );
            if !up {
                row.insert("status".into(), json!(1));
            }
            rows.push(Value::Object(row));
        }
    }
    let mut host = Map::new();
    host.insert("clock".into(), json!(clock));
    host.insert("drule".into(), json!(d.druleid));
    host.insert("dcheck".into(), Value::Null);
    host.insert("ip".into(), json!(d.ip));
    if !run_end {
        host.insert("dns".into(), json!("localhost"));
    }
    if !any_up {
        host.insert("status".into(), json!(1));
    }
    rows.push(Value::Object(host));
    if run_end {
        rows.push(
            json!({"clock": clock, "drule": d.druleid, "dcheck": null, "ip": "", "status": 4}),
        );
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::context::test_context;

    fn lookup(version: &str) -> Option<Arc<VersionInfo>> {
        Some(test_context(version, None).version)
    }

    fn tables() -> Map<String, Value> {
        json!({
            "hosts": {"fields": ["hostid", "host", "status"],
                      "data": [[11601, "h1601", 0], [11602, "h1602", 0], [11603, "off", 1]]},
            "interface": {"fields": ["interfaceid", "hostid", "main", "type", "useip", "ip", "dns", "port", "available"],
                          "data": [[1601, 11601, 1, 1, 1, "127.0.0.1", "", "1", 0]]},
            "items": {"fields": ["itemid", "type", "hostid", "key_", "delay", "status", "interfaceid"],
                      "data": [[23201, 0, 11601, "agent.ping", "1s", 0, 1601]]},
            "drules": {"fields": ["druleid", "name", "iprange", "delay"], "data": [[1601, "r", "127.0.0.1", "2s"]]},
            "dchecks": {"fields": ["dcheckid", "druleid", "type", "ports"], "data": [[1601, 1601, 8, "1"]]}
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    #[test]
    fn a_new_interface_is_reported_once_and_committed() {
        let s = Sections::new(lookup("6.0").unwrap(), None);
        s.configure(&tables(), true);
        let mut body = Map::new();
        let t = s.take(&mut body);
        assert_eq!(
            body["interface availability"],
            json!([{"interfaceid": 1601, "available": 0, "error": ""}])
        );
        s.commit(&t);
        let mut again = Map::new();
        s.take(&mut again);
        assert!(again.get("interface availability").is_none(), "{again:?}");
    }

    #[test]
    fn auto_registration_follows_the_version_and_the_request() {
        for (v, port, flags) in [
            ("6.0", json!("10055"), json!("1")),
            ("7.0", json!(10055), json!(1)),
        ] {
            let s = Sections::new(lookup(v).unwrap(), None);
            s.configure(&tables(), true);
            let req = json!({"request": "active checks", "host": "new", "host_metadata": "m",
                             "interface": "127.0.0.1", "port": 10055});
            let reply = s
                .trapper(req.as_object().unwrap(), "127.0.0.1")
                .unwrap()
                .unwrap();
            assert_eq!(reply["info"], "host [new] not found");
            let mut body = Map::new();
            let taken = s.take(&mut body);
            let row = &body["auto registration"][0];
            assert_eq!(
                (&row["port"], &row["flags"], &row["host_metadata"]),
                (&port, &flags, &json!("m")),
                "{v}"
            );
            s.commit(&taken);
            let mut after = Map::new();
            s.take(&mut after);
            assert!(after.get("auto registration").is_none());
        }
    }

    #[test]
    fn heartbeats_and_removed_hosts_fill_host_data_once() {
        let s = Sections::new(lookup("7.0").unwrap(), None);
        s.configure(&tables(), true);
        let hb =
            json!({"request": "active check heartbeat", "host": "h1602", "heartbeat_freq": 60});
        assert_eq!(s.trapper(hb.as_object().unwrap(), "127.0.0.1"), Some(None));
        let mut body = Map::new();
        s.take(&mut body);
        assert_eq!(
            body["host data"],
            json!([{"hostid": 11602, "active_status": 1}])
        );
        // Emptied when read; a second heartbeat of a known host adds nothing.
        s.trapper(hb.as_object().unwrap(), "127.0.0.1");
        let mut again = Map::new();
        s.take(&mut again);
        assert!(again.get("host data").is_none());
        // A configuration without the host reports it unknown.
        let mut fewer = tables();
        fewer.insert(
            "hosts".into(),
            json!({"fields": ["hostid", "host", "status"], "data": [[11601, "h1601", 0]]}),
        );
        s.configure(&fewer, true);
        let mut gone = Map::new();
        s.take(&mut gone);
        assert_eq!(
            gone["host data"],
            json!([{"hostid": 11602, "active_status": 0}, {"hostid": 11603, "active_status": 0}])
        );
        // 6.0 knows no heartbeats.
        let old = Sections::new(lookup("6.0").unwrap(), None);
        assert_eq!(old.trapper(hb.as_object().unwrap(), "127.0.0.1"), None);
    }

    #[test]
    fn tasks_give_results_until_committed() {
        let s = Sections::new(lookup("6.0").unwrap(), None);
        s.configure(&tables(), true);
        s.accept_tasks(&[
            json!({"type": 2, "commandtype": 0, "command": "echo hi there", "execute_on": 2, "hostid": 11601, "parent_taskid": 5}),
            json!({"type": 2, "commandtype": 0, "command": "rm -rf /", "execute_on": 2, "hostid": 11601, "parent_taskid": 6}),
            json!({"type": 2, "commandtype": 0, "command": "echo x", "execute_on": 2, "hostid": 1, "parent_taskid": 7}),
            json!({"type": 7, "datatype": 1, "data": "{\"locks\":{}}", "parent_taskid": 8}),
            json!({"type": 7, "datatype": 1, "data": "{\"nope\":{}}", "parent_taskid": 9}),
            json!({"type": 6, "itemid": 1}),
            json!({"type": 2, "clock": 1, "ttl": 600, "commandtype": 0, "command": "echo late", "execute_on": 2, "hostid": 11601, "parent_taskid": 10}),
            json!({"type": 7, "clock": 1, "ttl": 600, "datatype": 1, "data": "{\"locks\":{}}", "parent_taskid": 11}),
        ]);
        let mut body = Map::new();
        let t = s.take(&mut body);
        let tasks = body["tasks"].as_array().unwrap();
        let by = |p: u64| {
            tasks
                .iter()
                .find(|t| t["parent_taskid"] == p)
                .unwrap()
                .clone()
        };
        assert_eq!(
            (
                by(5)["type"].clone(),
                by(5)["status"].clone(),
                by(5)["info"].clone()
            ),
            (json!(3), json!(0), json!("hi there\n"))
        );
        assert_eq!(by(6)["status"], -1);
        assert_eq!(by(7)["info"], "Unknown host.");
        assert_eq!(
            (by(8)["type"].clone(), by(8)["info"].clone()),
            (json!(8), json!("{\"locks\":[]}"))
        );
        assert_eq!(by(9)["info"], "Unsupported diagnostics section: nope");
        assert_eq!(by(10)["info"], "The remote command has been expired.");
        assert_eq!(by(11)["info"], "The task has been expired.");
        assert_eq!(tasks.len(), 7);
        let mut unacked = Map::new();
        s.take_results(&mut unacked);
        assert_eq!(
            unacked["tasks"].as_array().map(Vec::len),
            Some(7),
            "kept until taken"
        );
        s.commit(&t);
        let mut after = Map::new();
        s.take(&mut after);
        assert!(after.get("tasks").is_none());
    }

    #[test]
    fn broken_sections_break_a_type_in_every_section() {
        let s = Sections::new(lookup("7.0").unwrap(), Some(Fault::BrokenSections));
        s.configure(&tables(), true);
        let req = json!({"request": "active checks", "host": "new"});
        s.trapper(req.as_object().unwrap(), "127.0.0.1");
        s.accept_tasks(&[
            json!({"type": 7, "datatype": 1, "data": "{\"locks\":{}}", "parent_taskid": 8}),
        ]);
        let mut body = Map::new();
        s.take(&mut body);
        assert!(body["interface availability"][0]["available"].is_string());
        assert!(
            body["auto registration"][0]["port"].is_string(),
            "7.0 wants a number"
        );
        assert!(body["tasks"][0]["status"].is_string());
    }

    #[tokio::test]
    async fn the_worker_polls_agents_and_runs_discovery() {
        let agent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = agent.local_addr().unwrap().port();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut t = tables();
        t.insert(
            "interface".into(),
            json!({"fields": ["interfaceid", "hostid", "type", "useip", "ip", "port", "available"],
            "data": [[1601, 11601, 1, 1, "127.0.0.1", port.to_string(), 0]]}),
        );
        t.insert(
            "dchecks".into(),
            json!({"fields": ["dcheckid", "druleid", "type", "ports"],
            "data": [[1601, 1601, 8, format!("{port},{closed}")]]}),
        );
        let s = Arc::new(Sections::new(lookup("6.0").unwrap(), None));
        s.configure(&t, true);
        let mut first = Map::new();
        s.commit(&s.take(&mut first));
        let worker = tokio::spawn(s.clone().run());
        let (stream, _) = tokio::time::timeout(Duration::from_secs(5), agent.accept())
            .await
            .unwrap()
            .unwrap();
        let mut c = Connection::new(stream, ZbxdCodec::default(), "proxy");
        let f = c.read_frame(Duration::from_secs(5)).await.unwrap().unwrap();
        assert_eq!(&f.payload[..], b"agent.ping");
        c.write_all(
            &encode_frame(b"1", &FrameOptions::default()),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        let mut body = Map::new();
        for _ in 0..50 {
            body.clear();
            s.take(&mut body);
            if body.contains_key("interface availability") && body.contains_key("discovery data") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        worker.abort();
        assert_eq!(
            body["interface availability"],
            json!([{"interfaceid": 1601, "available": 1, "error": ""}])
        );
        let disc = body["discovery data"].as_array().unwrap();
        assert!(
            disc.iter()
                .any(|r| r["port"] == port && r.get("status").is_none()),
            "{disc:?}"
        );
        assert!(
            disc.iter().any(|r| r["port"] == closed && r["status"] == 1),
            "{disc:?}"
        );
        assert!(
            disc.iter()
                .any(|r| r["dcheck"].is_null() && r.get("status").is_none()),
            "{disc:?}"
        );
    }

    /// A monitored host answers only over a connection type its tls_accept lists, with
    /// the `failed` reply Zabbix gives otherwise.
    #[test]
    fn a_host_answers_only_over_the_connection_types_it_accepts() {
        let s = Sections::new(lookup("6.0").unwrap(), None);
        let tables = json!({
            "hosts": {"fields": ["hostid", "host", "status", "tls_accept"],
                      "data": [[1, "plain", 0, 1], [2, "psk-only", 0, 2]]},
        });
        s.configure(tables.as_object().unwrap(), true);
        let ask = |host: &str, over: TlsMode| {
            let req = json!({"request": "active checks", "host": host});
            s.trapper_over(req.as_object().unwrap(), "127.0.0.1", over)
                .flatten()
                .unwrap()
        };
        assert_eq!(ask("plain", TlsMode::Unencrypted)["response"], "success");
        assert_eq!(ask("psk-only", TlsMode::Psk)["response"], "success");
        let refused = ask("psk-only", TlsMode::Unencrypted);
        assert_eq!(refused["response"], "failed");
        assert_eq!(
            refused["info"],
            "connection of type \"unencrypted\" is not allowed for host \"psk-only\""
        );
        assert_eq!(ask("plain", TlsMode::Psk)["response"], "failed");
    }

    #[test]
    fn intervals_parse_like_item_delays() {
        assert_eq!(interval("1s"), Duration::from_secs(1));
        assert_eq!(interval("5"), Duration::from_secs(5));
        assert_eq!(interval("2m"), Duration::from_secs(120));
        assert_eq!(interval("0"), MIN_INTERVAL);
        assert_eq!(interval("{$DELAY}"), Duration::from_secs(60));
    }
}

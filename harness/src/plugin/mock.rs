//! The mock plugin: what a real Agent 2 launches (through a one-line wrapper script set
//! as `Plugins.<Name>.System.Path`) so the harness can check the *agent's* side of the
//! plugin protocol.
//!
//! It dials the agent's socket (retrying for up to 3 s, as the SDK does), answers like a
//! correct 6.0-SDK-style plugin — sequential handling, a trace log request per request,
//! exit on Terminate — and validates every message the agent sends against the `plugin`
//! schemas of the imitated version. With `--record FILE` each received message is
//! appended to FILE as one JSON line `{"version","initial","kind","problems","message"}`,
//! which a test (or a person) then inspects, and `zbx-conform matrix` counts as plugin
//! kinds exchanged with a real agent.
//!
//! Without `--scenario`, metrics are `mock.ping` (returns 1, no parameters) and
//! `mock.echo[text]` (returns text). With `--scenario FILE` the name, metrics, interfaces
//! and Export replies come from that file (see [`super::mock_scenario`]). Either way
//! Validate rejects an option named `ZbxConformNoSuchOption` and accepts anything else.

use super::host::MessageChecker;
use super::mock_scenario::{MockScenario, Outcome};
use super::{interfaces, types, PluginVersion};
use crate::catalog::Catalog;
use crate::frame::{encode_plugin_frame, PluginCodec};
use crate::transport::Connection;
use clap::Args;
use serde_json::{json, Value};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixStream;

/// Arguments of `mock-plugin` (the order Agent 2 passes them: socket, then initial).
#[derive(Debug, Clone, Args)]
pub struct MockArgs {
    /// The agent's plugin socket (Agent 2's first argument)
    pub socket: PathBuf,
    /// "true" for the registration run, "false" for the operation run (Agent 2's second
    /// argument; parsed like Go's strconv.ParseBool; missing = false)
    pub initial: Option<String>,
    /// Agent generation whose schemas and Register version string apply
    #[arg(long, default_value = "6.0", value_name = "V")]
    pub version: String,
    /// The name to register (must equal the <Name> of Plugins.<Name>.System.Path)
    /// [default: the scenario's plugin.name, or Mock]
    #[arg(long)]
    pub name: Option<String>,
    /// Take the name, metrics, interfaces and Export replies from this YAML file
    /// (family `plugin`, see scenarios/plugin/README.md)
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Append every message received from the agent to FILE (JSON lines)
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
}

/// Go's `strconv.ParseBool`, which the SDK applies to the second argument.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// What the mock needs to run.
#[derive(Debug, Clone)]
pub struct MockConfig {
    pub socket: PathBuf,
    pub initial: bool,
    pub version: PluginVersion,
    pub name: String,
    pub record: Option<PathBuf>,
    /// Metrics and replies from a scenario file; `None`: the built-in ping/echo plugin.
    pub scenario: Option<Arc<MockScenario>>,
}

/// How a mock session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockSummary {
    /// Messages received from the agent.
    pub received: usize,
    /// Received messages that broke their schema (or had no known kind).
    pub invalid: usize,
    /// Whether the agent sent Terminate (otherwise it closed the connection).
    pub terminated: bool,
}

/// Entry point of `mock-plugin`: 0 after Terminate with only valid agent messages, 1
/// when the agent sent an invalid message or closed without Terminate, 2 usage or a bad
/// `--scenario` file (reported as `file:line:column: message`), 3 the
/// socket could not be reached.
pub fn mock_main(args: MockArgs, catalog: &Catalog) -> i32 {
    let initial = match args.initial.as_deref() {
        None => false,
        Some(s) => match parse_go_bool(s) {
            Some(b) => b,
            None => {
                complain!("error: failed to parse third parameter {s:?}");
                return 2;
            }
        },
    };
    let scenario = match &args.scenario {
        None => None,
        Some(path) => match MockScenario::load(path) {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                complain!("error: {e}");
                return 2;
            }
        },
    };
    let name = args
        .name
        .or_else(|| scenario.as_ref().map(|s| s.name.clone()))
        .unwrap_or_else(|| "Mock".to_string());
    let version = match PluginVersion::parse(catalog, &args.version) {
        Ok(v) => v,
        Err(e) => {
            complain!("error: --version: {e}");
            return 2;
        }
    };
    let cfg = MockConfig {
        socket: args.socket,
        initial,
        version,
        name,
        record: args.record,
        scenario,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            complain!("error: cannot start the async runtime: {e}");
            return 2;
        }
    };
    let checker = Arc::new(MessageChecker::new(catalog.clone()));
    match rt.block_on(run_mock(&cfg, checker)) {
        Ok(s) if s.terminated && s.invalid == 0 => 0,
        Ok(s) => {
            complain!(
                "mock-plugin: {} messages, {} invalid, terminated: {}",
                s.received,
                s.invalid,
                s.terminated
            );
            1
        }
        Err(MockError::Connect(e)) => {
            complain!("error: {e}");
            3
        }
        Err(MockError::Io(e)) => {
            complain!("error: {e}");
            1
        }
    }
}

/// Why the mock stopped early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MockError {
    #[error("cannot connect to the agent: {0}")]
    Connect(String),
    #[error("{0}")]
    Io(String),
}

/// Dial the agent, then serve requests until Terminate or the agent closes.
pub async fn run_mock(
    cfg: &MockConfig,
    checker: Arc<MessageChecker>,
) -> Result<MockSummary, MockError> {
    let stream = dial(&cfg.socket, Duration::from_secs(3)).await?;
    let mut conn = Connection::new(stream, PluginCodec::default(), "agent");
    let mut summary = MockSummary {
        received: 0,
        invalid: 0,
        terminated: false,
    };
    // No time limit of our own between requests: the agent decides when to talk.
    let idle = Duration::from_secs(24 * 3600);
    loop {
        let frame = match conn.read_frame(idle).await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(summary),
            Err(e) => return Err(MockError::Io(format!("reading from the agent: {e}"))),
        };
        let body: Value = serde_json::from_slice(&frame.payload).unwrap_or(Value::Null);
        let (kind, problems) = checker.check(&cfg.version, "agent", &body);
        summary.received += 1;
        if !problems.is_empty() {
            summary.invalid += 1;
        }
        record(cfg, kind.as_deref(), &problems, &body);
        let typ = body.get("type").and_then(Value::as_u64).unwrap_or(0);
        let id = body.get("id").and_then(Value::as_u64).unwrap_or(0);
        send(
            &mut conn,
            &json!({"id": 0, "type": types::LOG_REQUEST, "severity": 5,
                    "message": format!("plugin {} executing request type {typ}", cfg.name)}),
        )
        .await?;
        if let Some((reply, delay)) = respond(cfg, typ, id, &body) {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            send(&mut conn, &reply).await?;
        }
        if typ == types::TERMINATE_REQUEST {
            summary.terminated = true;
            return Ok(summary);
        }
    }
}

/// The reply a correct plugin gives to one request (`None`: no reply expected).
pub fn answer(cfg: &MockConfig, typ: u64, id: u64, body: &Value) -> Option<Value> {
    respond(cfg, typ, id, body).map(|(reply, _)| reply)
}

/// The reply to one request and how long to wait before sending it (a scenario's
/// `delay`; zero otherwise).
pub fn respond(cfg: &MockConfig, typ: u64, id: u64, body: &Value) -> Option<(Value, Duration)> {
    if typ == types::EXPORT_REQUEST {
        if let Some(s) = &cfg.scenario {
            return Some(scenario_export(s, id, body));
        }
    }
    answer_builtin(cfg, typ, id, body).map(|r| (r, Duration::ZERO))
}

/// An Export answered from the scenario: value or error, and its delay.
fn scenario_export(s: &MockScenario, id: u64, body: &Value) -> (Value, Duration) {
    let key = body.get("key").and_then(Value::as_str).unwrap_or("");
    let params: Vec<String> = body
        .get("parameters")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let (outcome, delay) = s.export(key, &params);
    let mut reply = json!({"id": id, "type": types::EXPORT_RESPONSE});
    match outcome {
        Outcome::Value(v) => reply["value"] = v,
        Outcome::Error(e) => reply["error"] = json!(e),
    }
    (reply, delay)
}

fn answer_builtin(cfg: &MockConfig, typ: u64, id: u64, body: &Value) -> Option<Value> {
    match typ {
        types::REGISTER_REQUEST => {
            let got = body.get("version").and_then(Value::as_str).unwrap_or("");
            let want = cfg.version.wire_version();
            Some(if got == want {
                let (metrics, ifaces) = match &cfg.scenario {
                    Some(s) => (json!(s.register_metrics()), s.interfaces),
                    None => (
                        json!([
                            "mock.ping",
                            "Returns 1.",
                            "mock.echo",
                            "Returns its first parameter."
                        ]),
                        interfaces::EXPORTER | interfaces::CONFIGURATOR,
                    ),
                };
                json!({"id": id, "type": types::REGISTER_RESPONSE, "name": cfg.name,
                       "metrics": metrics, "interfaces": ifaces})
            } else {
                json!({"id": id, "type": types::REGISTER_RESPONSE, "name": "",
                       "error": format!("plugin cannot be loaded by agent using protocol version {got}, the supported version is {want}")})
            })
        }
        types::VALIDATE_REQUEST => {
            let text = body
                .get("private_options")
                .map(Value::to_string)
                .unwrap_or_default();
            let mut reply = json!({"id": id, "type": types::VALIDATE_RESPONSE});
            if text.contains("\"ZbxConformNoSuchOption\"") {
                reply["error"] = json!("Unknown option ZbxConformNoSuchOption.");
            }
            Some(reply)
        }
        types::EXPORT_REQUEST => {
            let key = body.get("key").and_then(Value::as_str).unwrap_or("");
            let params: Vec<&str> = body
                .get("parameters")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut reply = json!({"id": id, "type": types::EXPORT_RESPONSE});
            match (key, params.as_slice()) {
                ("mock.ping", []) => reply["value"] = json!(1),
                ("mock.echo", []) => reply["value"] = json!(""),
                ("mock.echo", [p]) => reply["value"] = json!(p),
                ("mock.ping" | "mock.echo", _) => reply["error"] = json!("Too many parameters."),
                (k, _) => reply["error"] = json!(format!("Unknown metric {k}.")),
            }
            Some(reply)
        }
        _ => None,
    }
}

async fn dial(socket: &Path, within: Duration) -> Result<UnixStream, MockError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match UnixStream::connect(socket).await {
            Ok(s) => return Ok(s),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(MockError::Connect(format!("{}: {e}", socket.display())))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn send(conn: &mut Connection<UnixStream, PluginCodec>, v: &Value) -> Result<(), MockError> {
    let bytes = serde_json::to_vec(v).map_err(|e| MockError::Io(e.to_string()))?;
    conn.write_all(&encode_plugin_frame(&bytes), Duration::from_secs(10))
        .await
        .map_err(|e| MockError::Io(format!("writing to the agent: {e}")))
}

/// Append one JSON line; a recording failure is reported on stderr, never fatal (the
/// agent must not see a plugin die because a log file is unwritable).
fn record(cfg: &MockConfig, kind: Option<&str>, problems: &[String], message: &Value) {
    let Some(path) = &cfg.record else { return };
    let line = json!({
        "version": cfg.version.catalog_version(),
        "initial": cfg.initial,
        "kind": kind,
        "problems": problems,
        "message": message,
    });
    let res = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = res {
        complain!("mock-plugin: cannot record to {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_bool_parsing_matches_strconv() {
        for t in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(parse_go_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "false", "FALSE", "False"] {
            assert_eq!(parse_go_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_go_bool("yes"), None);
    }
}

//! The mock agent (plugin host): launches one plugin process and talks to it.
//!
//! Like Agent 2 (protocol.md §4.3) the host listens and the plugin dials: the host makes a
//! private temporary directory (mode 0700) holding the socket, listens, starts
//! `<plugin> <socket> true|false`, and accepts one connection within a time limit. Then
//! it sends requests with incrementing ids and routes every frame the plugin sends:
//! log requests (type 1) are collected whenever they arrive, responses are matched to
//! their request by id, anything else is recorded as a wire problem. Every message the
//! plugin sends is recognised with the catalog and validated against the schema of its
//! kind for the imitated version.
//!
//! Cleanup is unconditional: the process group is killed and reaped, and the directory
//! with the socket removed, by [`PluginHost::finish`] or, on any other exit path
//! (error, panic, cancelled future), by `Drop`.

use super::{types, PluginVersion, FAMILY};
use crate::catalog::{Body, Catalog};
use crate::check::SchemaCache;
use crate::frame::{encode_plugin_frame, PluginCodec, PluginFrame};
use crate::runner::progress::Progress;
use crate::runner::result::{Direction, TranscriptEntry};
use crate::runner::transcript::render_body;
use crate::transport::{Connection, TransportError};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::process::{Child, Command};

/// Most bytes of the plugin's stdout and of its stderr kept (the tail).
pub const OUTPUT_LIMIT: usize = 64 * 1024;
/// Longest socket path a Unix socket address holds (Linux `sun_path` minus the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Recognises and validates what a plugin sends. Shared by all sessions of a run so each
/// schema is compiled once.
#[derive(Debug)]
pub struct MessageChecker {
    catalog: Catalog,
    schemas: SchemaCache,
}

impl MessageChecker {
    pub fn new(catalog: Catalog) -> MessageChecker {
        MessageChecker {
            catalog,
            schemas: SchemaCache::new(),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The kind of a message sent by `from` (`plugin` or `agent`) and the schema
    /// violations of its body (or why it could not be checked). `None` kind: no kind of
    /// the plugin family sent by that side has this `type`.
    pub fn check(
        &self,
        version: &PluginVersion,
        from: &str,
        body: &Value,
    ) -> (Option<String>, Vec<String>) {
        let checked = self.check_split(version, from, body);
        let mut problems = checked.problems;
        problems.extend(checked.ignored);
        (checked.kind, problems)
    }

    /// Like [`check`](Self::check), with the violations that only concern members the
    /// protocol does not define (`additionalProperties`) kept apart: agent2 decodes
    /// plugin messages with Go's encoding/json, which skips such members, so they break
    /// nothing (protocol.md §4.5).
    pub fn check_split(&self, version: &PluginVersion, from: &str, body: &Value) -> Checked {
        let v = version.catalog_version();
        let body = Body::Json(body.clone());
        let Some(kind) = self.catalog.classify(FAMILY, v, from, &body) else {
            return Checked {
                kind: None,
                problems: vec![format!("no {from} message kind has this type")],
                ignored: Vec::new(),
            };
        };
        let mut checked = Checked {
            kind: Some(kind.kind.clone()),
            problems: Vec::new(),
            ignored: Vec::new(),
        };
        let at = crate::check::message::KindAt {
            family: FAMILY,
            version: v,
            kind: &kind.kind,
        };
        match crate::check::message::validate_message(&self.catalog, &self.schemas, at, &body) {
            Ok(violations) => {
                for x in violations {
                    let at = if x.instance_path.is_empty() {
                        "/".to_string()
                    } else {
                        x.instance_path
                    };
                    let text = format!("schema {}: at {at}: {}", kind.kind, x.message);
                    if x.schema_path.ends_with("/additionalProperties") {
                        checked.ignored.push(text);
                    } else {
                        checked.problems.push(text);
                    }
                }
            }
            Err(e) => checked
                .problems
                .push(format!("cannot check against the schema: {e}")),
        }
        checked
    }
}

/// What [`MessageChecker::check_split`] found in one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checked {
    /// The recognised kind (`None`: no kind sent by that side has this `type`).
    pub kind: Option<String>,
    /// Schema violations that matter to the receiver.
    pub problems: Vec<String>,
    /// Members the protocol does not define: the agent skips them.
    pub ignored: Vec<String>,
}

/// How to launch and talk to a plugin.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub program: PathBuf,
    pub version: PluginVersion,
    /// Extra environment variables for the plugin process.
    pub env: Vec<(String, String)>,
    /// How long the plugin has to connect after it was started (the SDK dials for up
    /// to 3 s; the agent waits its plugin timeout).
    pub connect_within: Duration,
    /// Time limit for writing one message to the plugin.
    pub write_within: Duration,
    /// Where the private socket directory is made [default: the system temp dir].
    pub temp_base: Option<PathBuf>,
    /// Where the waits are reported (a live status line, "still waiting" lines): a
    /// hanging plugin makes every request wait out its limit, and a user should see
    /// which requirement waits for what. Off by default.
    pub progress: Progress,
}

impl HostConfig {
    pub fn new(program: impl Into<PathBuf>, version: PluginVersion) -> HostConfig {
        HostConfig {
            program: program.into(),
            version,
            env: Vec::new(),
            connect_within: Duration::from_secs(5),
            write_within: Duration::from_secs(3),
            temp_base: None,
            progress: Progress::default(),
        }
    }
}

/// Why a host operation failed. Each carries what a report needs to explain it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The plugin could not be started or did not connect (CLI exit code 3).
    #[error("cannot start plugin {program}: {reason}")]
    Start { program: String, reason: String },
    #[error("no response with id {id} within {after:?}")]
    Timeout { id: u32, after: Duration },
    /// The plugin closed the connection (usually: it exited or crashed).
    #[error("the plugin closed the connection{status} while {waiting}")]
    Closed { waiting: String, status: String },
    /// The byte stream cannot be used any more (bad frame, I/O error).
    #[error("the connection is broken: {0}")]
    Broken(String),
}

/// One message received from the plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Time since the session started.
    pub at: Duration,
    /// The recognised kind (`None`: no plugin message kind has this type).
    pub kind: Option<String>,
    pub body: Value,
    /// Schema violations (empty when the message is valid). Members the protocol does
    /// not define are not among them: agent2 skips those, so they are recorded as
    /// [`WireProblemKind::ExtraMember`] problems of the session instead.
    pub problems: Vec<String>,
}

impl Received {
    pub fn id(&self) -> Option<u64> {
        self.body.get("id").and_then(Value::as_u64)
    }

    pub fn typ(&self) -> Option<u64> {
        self.body.get("type").and_then(Value::as_u64)
    }

    /// The `error` member, if it is a string.
    pub fn error(&self) -> Option<&str> {
        self.body.get("error").and_then(Value::as_str)
    }

    /// The body as report text (secrets redacted, truncated).
    pub fn render(&self) -> String {
        render_body(&Body::Json(self.body.clone()))
    }
}

/// A protocol-level problem that belongs to no request: a bad frame, a payload that is not
/// a JSON object, an unknown type, a response nobody asked for, bytes after the last frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireProblem {
    pub at: Duration,
    pub detail: String,
    /// The offending message or bytes, rendered for a report.
    pub received: Option<String>,
    pub kind: WireProblemKind,
}

/// What a wire problem does to a real agent (protocol.md §4.1, §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireProblemKind {
    /// The agent cannot read the stream any more, or a reply is lost.
    Breaking,
    /// The agent logs or drops the message and carries on.
    Ignored,
    /// A member the protocol does not define: agent2's decoder (Go encoding/json)
    /// skips it.
    ExtraMember,
}

/// Everything one session left behind, returned by [`PluginHost::finish`].
#[derive(Debug, Clone, Default)]
pub struct SessionLog {
    pub logs: Vec<Received>,
    pub problems: Vec<WireProblem>,
    pub transcript: Vec<TranscriptEntry>,
    pub stdout: String,
    pub stderr: String,
    /// How the process ended (`None` if it could not be reaped).
    pub exit: Option<String>,
    /// Whether the host had to kill the process.
    pub killed: bool,
}

/// A running plugin process with its connection.
pub struct PluginHost {
    cfg: HostConfig,
    checker: Arc<MessageChecker>,
    dir: PrivateDir,
    socket: PathBuf,
    child: Option<Child>,
    pid: Option<u32>,
    exit: Option<ExitStatus>,
    conn: Option<Connection<UnixStream, PluginCodec>>,
    broken: bool,
    next_id: u32,
    /// Ids of requests sent that expect a reply and have not got one.
    outstanding: HashSet<u32>,
    /// Outstanding ids whose wait timed out: the plugin may be stuck on them.
    timed_out: HashSet<u32>,
    /// The plugin closed the connection (EOF seen or a write failed).
    closed: bool,
    /// Replies received and not yet claimed by `wait_response`.
    stash: HashMap<u32, Received>,
    logs: Vec<Received>,
    problems: Vec<WireProblem>,
    transcript: Vec<TranscriptEntry>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    started: Instant,
    killed: bool,
    /// What the current requests are for (a requirement id), named in progress lines.
    stage: String,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("program", &self.cfg.program)
            .field("socket", &self.socket)
            .field("pid", &self.pid)
            .finish()
    }
}

impl Drop for PluginHost {
    /// Last resort on error paths, panics and cancelled futures: kill the process group
    /// (the child is also `kill_on_drop`, and tokio reaps it); `dir` removes the socket.
    fn drop(&mut self) {
        self.kill_now();
        if let Some(child) = self.child.as_mut() {
            let _ = child.try_wait();
        }
    }
}

impl PluginHost {
    /// Start the plugin (`initial` = registration run) and accept its connection.
    pub async fn launch(
        cfg: &HostConfig,
        checker: Arc<MessageChecker>,
        initial: bool,
    ) -> Result<PluginHost, HostError> {
        let program = cfg.program.display().to_string();
        let start_err = |reason: String| HostError::Start {
            program: program.clone(),
            reason,
        };
        let base = cfg.temp_base.clone().unwrap_or_else(std::env::temp_dir);
        let dir = PrivateDir::create(&base).map_err(|e| start_err(e.to_string()))?;
        let socket = dir.path().join("agent.plugin.sock");
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(start_err(format!(
                "socket path {} is too long for a Unix socket; set TMPDIR to a shorter directory",
                socket.display()
            )));
        }
        let listener = UnixListener::bind(&socket)
            .map_err(|e| start_err(format!("cannot listen on {}: {e}", socket.display())))?;
        let mut host = PluginHost {
            cfg: cfg.clone(),
            checker,
            dir,
            socket,
            child: None,
            pid: None,
            exit: None,
            conn: None,
            broken: false,
            next_id: 0,
            outstanding: HashSet::new(),
            timed_out: HashSet::new(),
            closed: false,
            stash: HashMap::new(),
            logs: Vec::new(),
            problems: Vec::new(),
            transcript: Vec::new(),
            stdout: Arc::new(Mutex::new(Vec::new())),
            stderr: Arc::new(Mutex::new(Vec::new())),
            started: Instant::now(),
            killed: false,
            stage: String::new(),
        };
        host.spawn(initial).map_err(start_err)?;
        host.note(format!(
            "started {} {} {initial} (pid {})",
            program,
            host.socket.display(),
            host.pid.unwrap_or(0)
        ));
        let progress = cfg.progress.clone();
        let what = format!(
            "the plugin to connect to its socket ({} run)",
            if initial { "registration" } else { "operation" }
        );
        let stream = progress
            .watch(&what, Some(cfg.connect_within), host.accept(&listener))
            .await
            .map_err(start_err)?;
        // One plugin, one connection: stop listening and remove the path so nothing
        // else can connect to it.
        drop(listener);
        let _ = std::fs::remove_file(&host.socket);
        host.conn = Some(Connection::new(
            stream,
            PluginCodec::default(),
            format!("plugin {program}"),
        ));
        host.note("plugin connected");
        Ok(host)
    }

    fn spawn(&mut self, initial: bool) -> Result<(), String> {
        // The plugin runs in the private directory, so a relative path must be made
        // absolute first (Agent 2 itself accepts only absolute plugin paths).
        let program = std::path::absolute(&self.cfg.program).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&program);
        cmd.arg(&self.socket)
            .arg(if initial { "true" } else { "false" })
            .envs(self.cfg.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        self.pid = child.id();
        if let Some(out) = child.stdout.take() {
            tokio::spawn(capture(out, Arc::clone(&self.stdout)));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(capture(err, Arc::clone(&self.stderr)));
        }
        self.child = Some(child);
        Ok(())
    }

    /// Accept the plugin's connection, unless it exits or the time is up first.
    async fn accept(&mut self, listener: &UnixListener) -> Result<UnixStream, String> {
        let within = self.cfg.connect_within;
        let Some(child) = self.child.as_mut() else {
            return Err("not started".into());
        };
        let outcome = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => Ok(stream),
                Err(e) => Err(format!("accept failed: {e}")),
            },
            status = child.wait() => {
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                if let Ok(s) = child.try_wait() { self.exit = s; }
                Err(format!("it exited ({status}) without connecting"))
            }
            _ = tokio::time::sleep(within) => {
                Err(format!("it did not connect to the socket within {within:?}"))
            }
        };
        match outcome {
            Ok(s) => Ok(s),
            Err(reason) => {
                self.kill_and_reap().await;
                // Give the capture tasks a moment to drain the pipes for the report.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let out = self.output_tail();
                Err(if out.is_empty() {
                    reason
                } else {
                    format!("{reason}; output:\n{out}")
                })
            }
        }
    }

    /// The catalog version this host imitates.
    pub fn version(&self) -> &PluginVersion {
        &self.cfg.version
    }

    /// The process id of the plugin.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The socket path the plugin was given (removed once it connected).
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The private directory holding the socket (removed on finish/drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Next request id (ids start at 1 in each session and are shared by all request
    /// types, like agent2's).
    pub fn next_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.next_id
    }

    /// Log requests received so far.
    pub fn logs(&self) -> &[Received] {
        &self.logs
    }

    /// Wire problems recorded so far.
    pub fn problems(&self) -> &[WireProblem] {
        &self.problems
    }

    /// Number of transcript entries so far (to slice a part of the conversation).
    pub fn transcript_len(&self) -> usize {
        self.transcript.len()
    }

    /// Transcript entries from `from` on.
    pub fn transcript_since(&self, from: usize) -> Vec<TranscriptEntry> {
        self.transcript
            .get(from..)
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    /// Add a note to the transcript.
    pub fn note(&mut self, text: impl Into<String>) {
        self.push(Direction::Note, None, text.into());
    }

    fn push(&mut self, direction: Direction, kind: Option<String>, body: String) {
        self.transcript.push(TranscriptEntry {
            at: self.started.elapsed(),
            direction,
            kind,
            flags: None,
            body,
            step: None,
        });
    }

    /// Send a message as is (its `id` must already be set). A message whose `type`
    /// expects a reply marks its id as outstanding.
    pub async fn send(&mut self, body: &Value) -> Result<(), HostError> {
        let (kind, _) = self.checker.check(&self.cfg.version, "agent", body);
        let typ = body.get("type").and_then(Value::as_u64);
        if let (Some(id), true) = (
            body.get("id").and_then(Value::as_u64),
            matches!(
                typ,
                Some(types::REGISTER_REQUEST | types::EXPORT_REQUEST | types::VALIDATE_REQUEST)
            ),
        ) {
            if let Ok(id) = u32::try_from(id) {
                self.outstanding.insert(id);
            }
        }
        let bytes = serde_json::to_vec(body).map_err(|e| HostError::Broken(e.to_string()))?;
        self.push(
            Direction::Sent,
            kind,
            render_body(&Body::Json(body.clone())),
        );
        self.write_raw(&encode_plugin_frame(&bytes)).await
    }

    /// Write raw bytes (an encoded frame, or deliberately malformed bytes).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), HostError> {
        let within = self.cfg.write_within;
        let conn = self.usable_conn()?;
        match conn.write_all(bytes, within).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.closed = true;
                let status = self.exit_note().await;
                Err(HostError::Closed {
                    waiting: format!("writing to it ({e})"),
                    status,
                })
            }
        }
    }

    /// Give `body` the next id, send it, and wait up to `within` for the reply.
    pub async fn request(
        &mut self,
        mut body: Value,
        within: Duration,
    ) -> Result<Received, HostError> {
        let id = self.next_id();
        if let Some(m) = body.as_object_mut() {
            m.insert("id".into(), Value::from(id));
        }
        self.send(&body).await?;
        self.wait_response(id, within).await
    }

    /// Name what the next requests are for (a requirement id) in progress lines.
    pub fn set_stage(&mut self, stage: impl Into<String>) {
        self.stage = stage.into();
    }

    /// `export.metrics: ` before what is awaited, when a stage is set.
    fn stage_prefix(&self) -> String {
        if self.stage.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.stage)
        }
    }

    /// Wait up to `within` for the reply with `id`, handling log requests and stashing
    /// other replies meanwhile.
    pub async fn wait_response(
        &mut self,
        id: u32,
        within: Duration,
    ) -> Result<Received, HostError> {
        let progress = self.cfg.progress.clone();
        let what = format!("{}the reply to request {id}", self.stage_prefix());
        progress
            .watch(
                &what,
                Some(within),
                self.wait_response_unwatched(id, within),
            )
            .await
    }

    async fn wait_response_unwatched(
        &mut self,
        id: u32,
        within: Duration,
    ) -> Result<Received, HostError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(r) = self.stash.remove(&id) {
                return Ok(r);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(self.timed_out(id, within));
            }
            match self.read_one(left).await {
                Ok(()) => {}
                Err(ReadEnd::Timeout) => return Err(self.timed_out(id, within)),
                Err(ReadEnd::Closed) => {
                    let status = self.exit_note().await;
                    return Err(HostError::Closed {
                        waiting: format!("waiting for the response with id {id}"),
                        status,
                    });
                }
                Err(ReadEnd::Broken(e)) => return Err(HostError::Broken(e)),
            }
        }
    }

    /// Remember that the wait for `id` timed out (a late reply is then a note, and the
    /// plugin counts as stalled until it comes).
    fn timed_out(&mut self, id: u32, within: Duration) -> HostError {
        if self.outstanding.contains(&id) {
            self.timed_out.insert(id);
        }
        HostError::Timeout { id, after: within }
    }

    /// Read and handle whatever the plugin sends during `period` (late logs, stray
    /// messages). Returns early when the plugin closes the connection.
    pub async fn drain(&mut self, period: Duration) {
        let deadline = tokio::time::Instant::now() + period;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || self.read_one(left).await.is_err() {
                return;
            }
        }
    }

    /// Send Terminate (id 0, as the 6.0 agent does) and wait up to `within` for the
    /// process to exit, handling what it sends meanwhile. `Ok` carries the exit status.
    pub async fn terminate(&mut self, within: Duration) -> Result<String, HostError> {
        let progress = self.cfg.progress.clone();
        let what = format!("{}the plugin to exit after Terminate", self.stage_prefix());
        progress
            .watch(&what, Some(within), self.terminate_unwatched(within))
            .await
    }

    async fn terminate_unwatched(&mut self, within: Duration) -> Result<String, HostError> {
        let msg = serde_json::json!({"id": 0, "type": types::TERMINATE_REQUEST});
        // A plugin that already exited cannot be told; report how it ended instead.
        if let Err(e) = self.send(&msg).await {
            if let Some(status) = self.wait_exit(Duration::from_millis(200)).await {
                return Ok(status);
            }
            return Err(e);
        }
        let deadline = tokio::time::Instant::now() + within;
        // Read until EOF (the plugin's side closes when it exits), then wait for the exit.
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            match self.read_one(left).await {
                Ok(()) => continue,
                Err(_) => break,
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match self.wait_exit(left.max(Duration::from_millis(10))).await {
            Some(status) => Ok(status),
            None => Err(HostError::Timeout {
                id: 0,
                after: within,
            }),
        }
    }

    /// Wait up to `within` for the process to exit; `Some(status)` if it did.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<String> {
        if let Some(s) = self.exit {
            return Some(s.to_string());
        }
        let child = self.child.as_mut()?;
        match tokio::time::timeout(within, child.wait()).await {
            Ok(Ok(s)) => {
                self.exit = Some(s);
                self.note(format!("plugin exited: {s}"));
                Some(s.to_string())
            }
            Ok(Err(e)) => Some(format!("cannot wait for it: {e}")),
            Err(_) => None,
        }
    }

    /// Whether a framing error made the byte stream unusable.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Whether the plugin closed the connection (seen as EOF or a failed write). Known
    /// at once, unlike the process exit, which is only seen once it has been reaped.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether a request timed out and its reply has not come: a sequential plugin is
    /// then still busy with it (or stuck), so the next request would wait behind it.
    pub fn is_stalled(&self) -> bool {
        !self.timed_out.is_empty()
    }

    /// Whether the next request gets a fair chance: running, stream readable, not
    /// closed, not stalled.
    pub fn is_usable(&mut self) -> bool {
        !self.broken && !self.closed && !self.is_stalled() && self.is_running()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(s))) => {
                self.exit = Some(s);
                false
            }
            Some(Ok(None)) => true,
            _ => false,
        }
    }

    /// End the session: note bytes left after the last frame and unclaimed replies,
    /// kill the process if it still runs, reap it, remove the socket directory.
    pub async fn finish(mut self) -> SessionLog {
        self.drain(Duration::from_millis(20)).await;
        if let Some(conn) = self.conn.as_ref().filter(|_| !self.broken) {
            let left = conn.leftover();
            if !left.is_empty() {
                let rendered = crate::runner::transcript::render_bytes(left);
                self.problem(
                    WireProblemKind::Breaking,
                    format!("{} bytes after the last complete frame", left.len()),
                    Some(rendered),
                );
            }
        }
        let mut stash: Vec<u32> = self.stash.drain().map(|(id, _)| id).collect();
        stash.sort_unstable();
        for id in stash {
            // Replies to requests that were sent but not waited for (a check stopped
            // early): answered, so no problem.
            self.note(format!("response with id {id} was not waited for"));
        }
        self.conn = None;
        if self.is_running() {
            self.kill_and_reap().await;
        }
        // Let the capture tasks read the last bytes before the pipes close.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let exit = self.exit.map(|s| s.to_string());
        SessionLog {
            logs: std::mem::take(&mut self.logs),
            problems: std::mem::take(&mut self.problems),
            transcript: std::mem::take(&mut self.transcript),
            stdout: lossy(&self.stdout),
            stderr: lossy(&self.stderr),
            exit,
            killed: self.killed,
        }
    }

    fn usable_conn(&mut self) -> Result<&mut Connection<UnixStream, PluginCodec>, HostError> {
        if self.broken {
            return Err(HostError::Broken(
                "an earlier framing error desynchronised the stream".into(),
            ));
        }
        self.conn
            .as_mut()
            .ok_or_else(|| HostError::Broken("no connection".into()))
    }

    /// Read one frame and route it.
    async fn read_one(&mut self, within: Duration) -> Result<(), ReadEnd> {
        let conn = self
            .usable_conn()
            .map_err(|e| ReadEnd::Broken(e.to_string()))?;
        match conn.read_frame(within).await {
            Ok(Some(frame)) => {
                self.ingest(frame);
                Ok(())
            }
            Ok(None) => {
                self.closed = true;
                Err(ReadEnd::Closed)
            }
            Err(TransportError::Timeout { .. }) => Err(ReadEnd::Timeout),
            Err(e) => {
                self.broken = true;
                let left = self
                    .conn
                    .as_ref()
                    .map(|c| crate::runner::transcript::render_bytes(c.leftover()));
                self.problem(
                    WireProblemKind::Breaking,
                    format!("unreadable frame: {e}"),
                    left,
                );
                Err(ReadEnd::Broken(e.to_string()))
            }
        }
    }

    /// Classify one received frame: log request, reply, or wire problem.
    fn ingest(&mut self, frame: PluginFrame) {
        let at = self.started.elapsed();
        let body: Value = match serde_json::from_slice(&frame.payload) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) | Err(_) => {
                let text = render_body(&Body::from_payload(&frame.payload));
                self.push(Direction::Received, None, text.clone());
                self.problem(
                    WireProblemKind::Breaking,
                    "payload is not a JSON object".into(),
                    Some(text),
                );
                return;
            }
        };
        let checked = self.checker.check_split(&self.cfg.version, "plugin", &body);
        let kind = checked.kind;
        let r = Received {
            at,
            kind: kind.clone(),
            body,
            problems: checked.problems,
        };
        self.push(Direction::Received, kind.clone(), r.render());
        for extra in checked.ignored {
            self.problem(WireProblemKind::ExtraMember, extra, Some(r.render()));
        }
        let (id, typ) = (r.id(), r.typ());
        let (Some(id), Some(typ)) = (id, typ) else {
            self.problem(
                WireProblemKind::Breaking,
                "message without a numeric id and type".into(),
                Some(r.render()),
            );
            return;
        };
        if typ == types::LOG_REQUEST {
            self.logs.push(r);
            return;
        }
        if kind.is_none() {
            // agent2 6.0.14 logs "unknown request type" and carries on.
            self.problem(
                WireProblemKind::Ignored,
                format!("message of type {typ}, which a plugin never sends"),
                Some(r.render()),
            );
            return;
        }
        if id == 0 {
            self.problem(
                WireProblemKind::Breaking,
                format!("response of type {typ} with id 0 (7.x agents take every id-0 message for a log request)"),
                Some(r.render()),
            );
            return;
        }
        let Ok(id32) = u32::try_from(id) else {
            self.problem(
                WireProblemKind::Breaking,
                format!("id {id} does not fit uint32"),
                Some(r.render()),
            );
            return;
        };
        if !self.outstanding.remove(&id32) {
            // agent2 drops a reply nobody waits for (broker.go).
            self.problem(
                WireProblemKind::Ignored,
                format!("response with id {id} matches no pending request"),
                Some(r.render()),
            );
            return;
        }
        if self.timed_out.remove(&id32) {
            self.note(format!(
                "late response with id {id} (its wait had timed out)"
            ));
        }
        self.stash.insert(id32, r);
    }

    fn problem(&mut self, kind: WireProblemKind, detail: String, received: Option<String>) {
        self.push(Direction::Note, None, format!("wire problem: {detail}"));
        self.problems.push(WireProblem {
            at: self.started.elapsed(),
            detail,
            received,
            kind,
        });
    }

    /// `" (exit status: …)"` if the process has ended within a short grace period.
    async fn exit_note(&mut self) -> String {
        match self.wait_exit(Duration::from_millis(300)).await {
            Some(s) => format!(" (process ended: {s})"),
            None => String::new(),
        }
    }

    fn kill_now(&mut self) {
        if self.exit.is_some() {
            return;
        }
        if let Some(pid) = self.pid.and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) has no memory-safety preconditions. Negative pid: the
            // process group created at spawn, so helpers the plugin forked die too.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            self.killed = true;
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }

    async fn kill_and_reap(&mut self) {
        self.kill_now();
        if let Some(child) = self.child.as_mut() {
            if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                self.exit = Some(s);
            }
        }
    }

    /// Tail of stdout and stderr, labelled, for start-up error messages.
    fn output_tail(&self) -> String {
        let mut out = String::new();
        for (name, buf) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let text = lossy(buf);
            if !text.trim().is_empty() {
                let tail: String = text
                    .chars()
                    .rev()
                    .take(2000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                out.push_str(&format!("--- {name} ---\n{}\n", tail.trim_end()));
            }
        }
        out
    }
}

enum ReadEnd {
    Timeout,
    Closed,
    Broken(String),
}

/// Copy a pipe into a bounded buffer (keeping the tail) until EOF.
async fn capture(mut pipe: impl tokio::io::AsyncRead + Unpin, into: Arc<Mutex<Vec<u8>>>) {
    let mut chunk = [0u8; 4096];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut buf = into
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > OUTPUT_LIMIT {
                    let cut = buf.len() - OUTPUT_LIMIT;
                    buf.drain(..cut);
                }
            }
        }
    }
}

fn lossy(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    let b = buf
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    String::from_utf8_lossy(&b).into_owned()
}

/// A directory only we can enter (the socket inside it is then ours alone), removed
/// with its contents on drop.
#[derive(Debug)]
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create(base: &Path) -> std::io::Result<PrivateDir> {
        use std::os::unix::fs::DirBuilderExt;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        for _ in 0..16 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("zbxc-plugin-{}-{n}-{nanos:x}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(PrivateDir(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("cannot create a directory in {}: {e}", base.display()),
                    ))
                }
            }
        }
        Err(std::io::Error::other(
            "cannot find a free temporary directory name",
        ))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

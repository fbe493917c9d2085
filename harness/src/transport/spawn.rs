//! Starting and stopping a peer under test (a real `zabbix_proxy`, an agent...).
//!
//! The peer runs in its own process group with its output captured to files in its run
//! directory; readiness is a listening port or a log line, bounded in time; it is
//! stopped by PID (SIGTERM to its group, then SIGKILL after a grace period) — and killed
//! on drop as a last resort, so a panicking or cancelled run never leaves it behind.

use regex::Regex;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::{Child, Command};

/// How to tell that the peer is ready to talk.
#[derive(Debug, Clone)]
pub enum Readiness {
    /// A TCP connect to this address succeeds.
    Port(String),
    /// A line matching this pattern appears in this log file.
    LogLine { path: PathBuf, pattern: Regex },
    /// Ready as soon as it is started.
    Immediately,
}

/// Everything needed to start a peer.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Working directory; stdout/stderr go to `stdout.log`/`stderr.log` here.
    pub run_dir: PathBuf,
    pub ready: Readiness,
    /// How long to wait for readiness.
    pub ready_within: Duration,
    /// The peer's own log file, if it writes one (attached to failed test cases).
    pub log: Option<PathBuf>,
    /// Grace period between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// Directories the peer uses outside `run_dir` (short Unix-socket dirs, see
    /// `runner::peer`); removed once the peer has stopped, however it stopped.
    pub scratch: Vec<PathBuf>,
}

/// Errors starting a peer; reported as "peer unreachable" (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot start {program}: {reason}")]
    Start { program: String, reason: String },
    #[error("{program} exited during start-up ({status}); log tail:\n{log}")]
    Exited {
        program: String,
        status: String,
        log: String,
    },
    #[error("{program} was not ready within {after:?} ({what}); log tail:\n{log}")]
    NotReady {
        program: String,
        after: Duration,
        what: String,
        log: String,
    },
}

/// A running peer process.
#[derive(Debug)]
pub struct PeerProcess {
    child: Child,
    pid: u32,
    spec: SpawnSpec,
    stopped: bool,
}

impl Drop for PeerProcess {
    /// Last resort when a run ends without `stop` (an error path, a panic): kill the
    /// whole group, not only the leader `kill_on_drop` would reach.
    fn drop(&mut self) {
        if !self.stopped {
            self.kill_group(libc::SIGKILL);
        }
        remove_scratch(&self.spec.scratch);
    }
}

impl PeerProcess {
    /// Start the peer and wait until it is ready (or fails, or the time is up).
    pub async fn start(spec: SpawnSpec) -> Result<PeerProcess, SpawnError> {
        let scratch = spec.scratch.clone();
        let mut peer = Self::spawn(spec).inspect_err(|_| remove_scratch(&scratch))?;
        // From here on, dropping `peer` (a failed start) kills it and removes `scratch`.
        peer.wait_ready().await?;
        Ok(peer)
    }

    fn spawn(spec: SpawnSpec) -> Result<PeerProcess, SpawnError> {
        let program = spec.program.display().to_string();
        let start_err = |reason: String| SpawnError::Start {
            program: program.clone(),
            reason,
        };
        std::fs::create_dir_all(&spec.run_dir)
            .map_err(|e| start_err(format!("cannot create {}: {e}", spec.run_dir.display())))?;
        let stdout = std::fs::File::create(spec.run_dir.join("stdout.log"))
            .map_err(|e| start_err(e.to_string()))?;
        let stderr = std::fs::File::create(spec.run_dir.join("stderr.log"))
            .map_err(|e| start_err(e.to_string()))?;
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&spec.run_dir)
            .stdin(std::process::Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| start_err(e.to_string()))?;
        let pid = child
            .id()
            .ok_or_else(|| start_err("exited before its PID could be read".into()))?;
        Ok(PeerProcess {
            child,
            pid,
            spec,
            stopped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    async fn wait_ready(&mut self) -> Result<(), SpawnError> {
        let program = self.spec.program.display().to_string();
        let deadline = tokio::time::Instant::now() + self.spec.ready_within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(SpawnError::Exited {
                    program,
                    status: status.to_string(),
                    log: self.log_tail(40),
                });
            }
            let ready = match &self.spec.ready {
                Readiness::Immediately => true,
                Readiness::Port(addr) => {
                    crate::transport::connect_tcp(addr, Duration::from_millis(500))
                        .await
                        .is_ok()
                }
                Readiness::LogLine { path, pattern } => std::fs::read_to_string(path)
                    .map(|t| t.lines().any(|l| pattern.is_match(l)))
                    .unwrap_or(false),
            };
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let what = match &self.spec.ready {
                    Readiness::Port(a) => format!("nothing listening on {a}"),
                    Readiness::LogLine { path, pattern } => {
                        format!("no line matching /{pattern}/ in {}", path.display())
                    }
                    Readiness::Immediately => String::new(),
                };
                let log = self.log_tail(40);
                self.kill_group(libc::SIGKILL);
                // Reap it so nothing is left, not even a zombie.
                let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
                return Err(SpawnError::NotReady {
                    program,
                    after: self.spec.ready_within,
                    what,
                    log,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last `lines` lines of the peer's log, or of its stderr/stdout.
    pub fn log_tail(&self, lines: usize) -> String {
        self.log_files().tail(lines)
    }

    /// The whole log (bounded to the last 256 KiB, whole lines only), for JUnit
    /// `system-err`.
    pub fn log(&self) -> Option<String> {
        self.log_files().whole()
    }

    /// Where the peer writes, apart from the process: read it after [`stop`], when
    /// the peer has flushed and exited, and nothing is half written.
    ///
    /// [`stop`]: PeerProcess::stop
    pub fn log_files(&self) -> LogFiles {
        LogFiles {
            log: self.spec.log.clone(),
            run_dir: self.spec.run_dir.clone(),
        }
    }

    fn kill_group(&self, signal: i32) {
        // Negative PID: the whole process group the peer leads (Zabbix daemons fork
        // worker processes). The group was created by `process_group(0)` at spawn.
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(-(self.pid as i32), signal);
        }
    }

    /// Stop by PID: SIGTERM to the group, wait the grace period, then SIGKILL.
    pub async fn stop(mut self) -> String {
        self.kill_group(libc::SIGTERM);
        let status = match tokio::time::timeout(self.spec.stop_grace, self.child.wait()).await {
            Ok(Ok(s)) => s.to_string(),
            _ => {
                self.kill_group(libc::SIGKILL);
                match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
                    Ok(Ok(s)) => format!("{s} (after SIGKILL)"),
                    _ => "did not exit after SIGKILL".to_string(),
                }
            }
        };
        // Workers may outlive the leader for a moment; make sure none is left.
        self.kill_group(libc::SIGKILL);
        self.stopped = true;
        status
    }
}

/// Best effort: a scratch dir that cannot be removed is left behind, not an error of
/// the scenario.
fn remove_scratch(dirs: &[PathBuf]) {
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A peer's log file, or the captures of its stderr and stdout.
#[derive(Debug, Clone)]
pub struct LogFiles {
    log: Option<PathBuf>,
    run_dir: PathBuf,
}

/// How much of a log is read for a report.
const LOG_CAP: usize = 256 * 1024;
/// How much of a log is read for its last lines.
const TAIL_CAP: usize = 64 * 1024;

impl LogFiles {
    /// The log file's last 256 KiB, whole lines only.
    pub fn whole(&self) -> Option<String> {
        let path = self.log.as_ref()?;
        let bytes = std::fs::read(path).ok()?;
        Some(whole_lines(&bytes, LOG_CAP))
    }

    /// The last `lines` lines of the log file, or of stderr/stdout, each headed by its
    /// path.
    pub fn tail(&self, lines: usize) -> String {
        let mut candidates: Vec<PathBuf> = self.log.iter().cloned().collect();
        candidates.push(self.run_dir.join("stderr.log"));
        candidates.push(self.run_dir.join("stdout.log"));
        let mut out = String::new();
        for p in candidates {
            if let Some(t) = tail(&p, lines) {
                out.push_str(&format!("==> {} <==\n{t}\n", p.display()));
            }
        }
        out
    }
}

/// The last `cap` bytes of `bytes` as whole lines: a line cut by the cap, and a last
/// line still being written (no newline yet), are left out. A secret cut in half would
/// escape redaction, which replaces whole values.
fn whole_lines(bytes: &[u8], cap: usize) -> String {
    let mut start = bytes.len().saturating_sub(cap);
    if start > 0 {
        // Cut inside a line unless the byte before the cut ends one.
        if bytes[start - 1] != b'\n' {
            start = match bytes[start..].iter().position(|b| *b == b'\n') {
                Some(i) => start + i + 1,
                None => bytes.len(),
            };
        }
    }
    let end = match bytes[start..].iter().rposition(|b| *b == b'\n') {
        Some(i) => start + i + 1,
        None => start,
    };
    String::from_utf8_lossy(&bytes[start..end]).into_owned()
}

fn tail(path: &Path, lines: usize) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.is_empty() {
        return None;
    }
    let text = whole_lines(&bytes, TAIL_CAP);
    let all: Vec<&str> = text.lines().collect();
    Some(all[all.len().saturating_sub(lines)..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_lines_leave_out_cut_and_unfinished_lines() {
        assert_eq!(whole_lines(b"a\nb\nSECRET_HALF", 100), "a\nb\n");
        assert_eq!(whole_lines(b"first SECRET\nsecond\n", 10), "second\n");
        assert_eq!(whole_lines(b"one\ntwo\n", 4), "two\n");
        assert_eq!(whole_lines(b"no newline at all", 100), "");
        assert_eq!(whole_lines(b"", 100), "");
    }

    fn spec(dir: &Path, script: &str, ready: Readiness) -> SpawnSpec {
        SpawnSpec {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            env: vec![],
            run_dir: dir.to_path_buf(),
            ready,
            ready_within: Duration::from_secs(3),
            log: Some(dir.join("peer.log")),
            stop_grace: Duration::from_secs(2),
            scratch: vec![],
        }
    }

    #[tokio::test]
    async fn ready_by_log_line_then_stopped_by_pid() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("peer.log");
        let ready = Readiness::LogLine {
            path: log.clone(),
            pattern: Regex::new("started").unwrap(),
        };
        let p = PeerProcess::start(spec(dir.path(), "echo started > peer.log; sleep 60", ready))
            .await
            .unwrap();
        let pid = p.pid();
        assert!(p.log().unwrap().contains("started"));
        p.stop().await;
        // The process is gone: kill(pid, 0) fails.
        let alive = unsafe { libc::kill(pid as i32, 0) } == 0;
        assert!(!alive, "peer {pid} still alive after stop");
    }

    #[tokio::test]
    async fn early_exit_is_reported_with_log() {
        let dir = tempfile::tempdir().unwrap();
        let err = PeerProcess::start(spec(
            dir.path(),
            "echo 'cannot open database' >&2; exit 3",
            Readiness::Port("127.0.0.1:1".into()),
        ))
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("exited during start-up"), "{text}");
        assert!(text.contains("cannot open database"), "{text}");
    }

    #[tokio::test]
    async fn not_ready_in_time_is_an_error_and_the_peer_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(
            dir.path(),
            "echo $$ > pid; sleep 60",
            Readiness::LogLine {
                path: dir.path().join("peer.log"),
                pattern: Regex::new("never").unwrap(),
            },
        );
        s.ready_within = Duration::from_millis(500);
        let err = PeerProcess::start(s).await.unwrap_err();
        assert!(matches!(err, SpawnError::NotReady { .. }), "{err}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let pid: i32 = std::fs::read_to_string(dir.path().join("pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(unsafe { libc::kill(pid, 0) } != 0, "peer still alive");
    }
}

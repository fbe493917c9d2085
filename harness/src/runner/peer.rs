//! Peer profiles: how to start a real peer under test for each scenario, as data.
//!
//! ```yaml
//! name: zabbix_proxy (passive)
//! program: ${ZABBIX_PROXY:-/usr/sbin/zabbix_proxy}
//! args: [-f, -c, "${run_dir}/zabbix_proxy.conf"]
//! ports: [PROXY_PORT]                 # free loopback ports, set as variables
//! files:                              # templates (relative to this file) rendered into run_dir
//!   zabbix_proxy.conf: zabbix_proxy.conf.tmpl
//! ready: { port: "127.0.0.1:${PROXY_PORT}", within: 30s }
//! log: ${run_dir}/zabbix_proxy.log
//! exports: { PROXY_ADDR: "127.0.0.1:${PROXY_PORT}" }
//! ```
//! A fresh peer is started for every scenario (fresh database, fresh log) after the
//! scenario's listener is bound, so templates can use `${listen_port}` (an active proxy
//! connects to the harness there). It is stopped by PID when the scenario ends, however
//! it ends. Templates also see `${run_dir}` and `${profile_dir}` (the profile's folder,
//! absolute), so wrapper scripts next to the profile can be named portably, and
//! `${socket_dir}`: a fresh, short directory under /tmp for the peer's Unix sockets.
//! A socket path may hold at most 107 bytes, and run dirs below a CI checkout
//! (`/builds/group/project/target/...`) are easily longer; the socket dir is removed
//! when the peer stops.

use crate::scenario::model::DurationSpec;
use crate::scenario::vars::Vars;
use crate::transport::spawn::{PeerProcess, Readiness, SpawnSpec};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a started peer may take to be ready when its profile's `ready.within` does
/// not say.
pub const DEFAULT_READY_WITHIN: Duration = Duration::from_secs(30);

/// A peer profile file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerProfile {
    pub name: String,
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub ports: Vec<String>,
    /// Target file name in the run dir → template path relative to the profile.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    pub ready: ReadySpec,
    #[serde(default)]
    pub log: Option<String>,
    /// Variables handed to the scenario (e.g. PROXY_ADDR).
    #[serde(default)]
    pub exports: BTreeMap<String, String>,
    /// Grace period between SIGTERM and SIGKILL (default 10s).
    #[serde(default)]
    pub stop_grace: Option<DurationSpec>,
    /// Pause after readiness before the scenario starts (some daemons accept
    /// connections before their workers are up).
    #[serde(default)]
    pub settle: Option<DurationSpec>,
    /// Regular expressions that must not match any line of the peer's log: a Zabbix
    /// proxy answers `success` to a configuration it then fails to apply, and says so
    /// only in its log. A match fails the scenario.
    #[serde(default)]
    pub fail_on_log: Vec<String>,
}

/// Readiness: a port to connect to, or a log line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadySpec {
    #[serde(default)]
    pub port: Option<String>,
    #[serde(default)]
    pub log: Option<LogReady>,
    #[serde(default)]
    pub within: Option<DurationSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogReady {
    pub file: String,
    pub pattern: String,
}

/// A loaded profile with its location (templates are relative to it).
#[derive(Debug, Clone)]
pub struct LoadedProfile {
    pub path: PathBuf,
    pub profile: PeerProfile,
}

impl LoadedProfile {
    pub fn load(path: &Path) -> Result<LoadedProfile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let profile: PeerProfile = serde_saphyr::from_str(&text).map_err(|e| {
            let loc = e
                .location()
                .map(|l| format!("{}:{}:", l.line(), l.column()))
                .unwrap_or_default();
            format!("{}:{loc} {e}", path.display())
        })?;
        for p in &profile.fail_on_log {
            regex::Regex::new(p)
                .map_err(|e| format!("{}: fail_on_log {p:?}: {e}", path.display()))?;
        }
        for target in profile.files.keys() {
            crate::scenario::names::plain_file_name(target)
                .map_err(|e| format!("{}: files: {target:?}: {e}", path.display()))?;
        }
        if profile.ready.port.is_none() && profile.ready.log.is_none() {
            return Err(format!("{}: ready needs `port` or `log`", path.display()));
        }
        Ok(LoadedProfile {
            path: path.to_path_buf(),
            profile,
        })
    }

    /// Pick ports, render files, start the peer, wait until ready. `vars` gains
    /// `run_dir`, the port variables and the exports.
    pub async fn start(&self, vars: &mut Vars, run_dir: &Path) -> Result<PeerProcess, String> {
        let p = &self.profile;
        vars.set("run_dir", run_dir.display().to_string().into());
        let profile_dir = self
            .path
            .parent()
            .map(|d| d.canonicalize().unwrap_or_else(|_| d.to_path_buf()))
            .unwrap_or_default();
        vars.set("profile_dir", profile_dir.display().to_string().into());
        let socket_dir = ScratchDir::create()?;
        vars.set("socket_dir", socket_dir.0.display().to_string().into());
        for name in &p.ports {
            let port = free_port().map_err(|e| format!("cannot pick a free port: {e}"))?;
            vars.set(name, port.to_string().into());
        }
        let exp = |s: &str, vars: &Vars| {
            vars.expand_str(s)
                .map_err(|e| format!("{}: {e}", self.path.display()))
        };
        std::fs::create_dir_all(run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
        let base = self.path.parent().unwrap_or(Path::new("."));
        for (target, template) in &p.files {
            let tpath = base.join(template);
            let text = std::fs::read_to_string(&tpath)
                .map_err(|e| format!("template {}: {e}", tpath.display()))?;
            let rendered = vars
                .expand_str(&text)
                .map_err(|e| format!("template {}: {e}", tpath.display()))?;
            std::fs::write(run_dir.join(target), rendered)
                .map_err(|e| format!("{}: {e}", run_dir.join(target).display()))?;
        }
        let ready = match (&p.ready.port, &p.ready.log) {
            (Some(port), _) => Readiness::Port(exp(port, vars)?),
            (None, Some(l)) => Readiness::LogLine {
                path: PathBuf::from(exp(&l.file, vars)?),
                pattern: regex::Regex::new(&l.pattern)
                    .map_err(|e| format!("{}: ready.log.pattern: {e}", self.path.display()))?,
            },
            (None, None) => Readiness::Immediately,
        };
        let spec = SpawnSpec {
            program: PathBuf::from(exp(&p.program, vars)?),
            args: p
                .args
                .iter()
                .map(|a| exp(a, vars))
                .collect::<Result<_, _>>()?,
            env: p
                .env
                .iter()
                .map(|(k, v)| Ok((k.clone(), exp(v, vars)?)))
                .collect::<Result<_, String>>()?,
            run_dir: run_dir.to_path_buf(),
            ready,
            ready_within: p.ready.within.map(|d| d.0).unwrap_or(DEFAULT_READY_WITHIN),
            log: p
                .log
                .as_deref()
                .map(|l| exp(l, vars))
                .transpose()?
                .map(PathBuf::from),
            stop_grace: p.stop_grace.map(|d| d.0).unwrap_or(Duration::from_secs(10)),
            scratch: vec![socket_dir.keep()],
        };
        let process = PeerProcess::start(spec).await.map_err(|e| e.to_string())?;
        if let Some(d) = p.settle {
            tokio::time::sleep(d.0).await;
        }
        for (k, v) in &p.exports {
            let value = exp(v, vars)?;
            vars.set(k, value.into());
        }
        Ok(process)
    }
}

/// A short directory below /tmp, removed on drop unless handed over with `keep` (to
/// the peer process, which removes it once the peer has stopped).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn create() -> Result<ScratchDir, String> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = PathBuf::from(format!("/tmp/zbxc-{pid}-{n}"));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(ScratchDir(dir)),
                // Left over by an earlier process with the same PID: take the next name.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
            }
        }
    }

    fn keep(mut self) -> PathBuf {
        std::mem::take(&mut self.0)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl LoadedProfile {
    /// Lines of `log` that match one of the profile's `fail_on_log` patterns.
    pub fn log_problems(&self, log: &str) -> Vec<String> {
        let patterns: Vec<regex::Regex> = self
            .profile
            .fail_on_log
            .iter()
            .filter_map(|p| regex::Regex::new(p).ok())
            .collect();
        log.lines()
            .filter(|l| patterns.iter().any(|p| p.is_match(l)))
            .map(str::to_string)
            .collect()
    }
}

/// Find a free loopback port in 20000–32767. Zabbix daemons refuse ports above 32767
/// ("wrong value of ListenPort"), so the OS's ephemeral range (32768+) is no good. There
/// is a window in which someone else could take the port; acceptable for CI on one
/// machine, and the peer's start-up error says so.
pub fn free_port() -> std::io::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id();
    for _ in 0..200 {
        let n = NEXT.fetch_add(7919, Ordering::Relaxed).wrapping_add(seed);
        let port = 20000 + (n % 12768) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(std::io::Error::other(
        "no free port in 20000-32767 after 200 tries",
    ))
}

#[cfg(test)]
mod port_tests {
    #[test]
    fn free_ports_are_in_the_zabbix_listen_range_and_bindable() {
        for _ in 0..20 {
            let p = super::free_port().expect("a free port");
            assert!((20000..=32767).contains(&p), "{p}");
            std::net::TcpListener::bind(("127.0.0.1", p)).expect("still free");
        }
    }
}

#[cfg(test)]
mod socket_dir_tests {
    use super::*;

    /// `yaml` written as a profile file in `tmp`, loaded.
    fn profile_in(tmp: &tempfile::TempDir, yaml: &str) -> LoadedProfile {
        let path = tmp.path().join("peer.yaml");
        std::fs::write(&path, yaml).unwrap();
        LoadedProfile::load(&path).unwrap()
    }

    /// A profile whose peer writes `${socket_dir}` into its log and listens on a Unix
    /// socket there; the run dir is far too deep for a socket path.
    #[tokio::test]
    async fn socket_dir_is_short_exists_while_running_and_is_removed_after_stop() {
        let tmp = tempfile::tempdir().unwrap();
        let profile = profile_in(
            &tmp,
            r#"
name: socket user
program: /bin/sh
args: ["-c", "echo ${socket_dir} > peer.log; exec sleep 60"]
ready: { log: { file: "${run_dir}/peer.log", pattern: "zbxc" } }
log: ${run_dir}/peer.log
stop_grace: 2s
"#,
        );
        let run_dir = tmp.path().join("d".repeat(120));
        let mut vars = Vars::default();
        let peer = profile.start(&mut vars, &run_dir).await.unwrap();
        let dir = PathBuf::from(peer.log().unwrap().trim());
        assert!(dir.is_dir(), "{} exists while the peer runs", dir.display());
        assert!(dir.as_os_str().len() < 40, "{} is short", dir.display());
        let socket = dir.join("zabbix_proxy_preprocessing.sock");
        std::os::unix::net::UnixListener::bind(&socket).expect("a socket fits");
        peer.stop().await;
        assert!(!dir.exists(), "{} removed after stop", dir.display());
    }

    #[tokio::test]
    async fn socket_dir_is_removed_when_the_peer_fails_to_start() {
        let tmp = tempfile::tempdir().unwrap();
        let profile = profile_in(
            &tmp,
            r#"
name: early exit
program: /bin/sh
args: ["-c", "echo ${socket_dir} > dir.txt; exit 3"]
ready: { port: "127.0.0.1:1" }
"#,
        );
        let run_dir = tmp.path().join("run");
        let err = profile
            .start(&mut Vars::default(), &run_dir)
            .await
            .unwrap_err();
        assert!(err.contains("exited during start-up"), "{err}");
        let dir = std::fs::read_to_string(run_dir.join("dir.txt")).unwrap();
        assert!(!Path::new(dir.trim()).exists(), "{dir} removed");
    }
}

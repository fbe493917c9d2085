//! The README's `--peer` commands against real Zabbix peers that the harness did not
//! start: plain daemons with a config file written here (close to the packaged defaults,
//! not the harness's peer profiles), started once and kept for the whole test, holding
//! what earlier runs left. Each command runs twice in a row with the default `--jobs`;
//! both runs must pass, and each must say which protocol version it found.
//!
//! Zabbix 6.0.14 from Debian 12's packages, 7.0.22 from the Debian 13 root
//! (ci/trixie/build-root.sh, run through ci/trixie/peer.sh). Missing peers skip with a
//! message on a laptop and fail under CI=true.

mod capture_support;
mod support;
mod tls_support;

use capture_support::{Capture, SentFrame};
use tls_support::{Pki, IDENTITY};
use zbx_conform::catalog::Body;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A daemon started by hand: its own run dir (config, database, log, sockets) under
/// /tmp, its own process group, stopped when dropped.
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Daemon {
    /// Write `config` as `name` in a fresh run dir (`{dir}` in it is replaced by the
    /// dir), then run `argv` (`{dir}` replaced too) in its own process group.
    fn start(name: &str, config: &str, argv: &[&str], log: &str) -> Daemon {
        // Short, under /tmp: Unix socket paths hold at most 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("zbxl-")
            .tempdir_in("/tmp")
            .expect("run dir");
        let d = dir.path().display().to_string();
        std::fs::write(dir.path().join(name), config.replace("{dir}", &d)).expect("config");
        let argv: Vec<String> = argv.iter().map(|a| a.replace("{dir}", &d)).collect();
        let out = std::fs::File::create(dir.path().join("daemon.out")).expect("output file");
        let err = out.try_clone().expect("output file");
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", argv[0]));
        let log = dir.path().join(log);
        Daemon { child, dir, log }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Wait until `addr` accepts connections (or the log says `ready`).
    fn wait_ready(&mut self, addr: Option<&str>, ready: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the daemon exited ({status}); log:\n{}", self.log_text());
            }
            let port_up = addr.is_some_and(|a| std::net::TcpStream::connect(a).is_ok());
            let log_up = ready.is_some_and(|r| self.log_text().contains(r));
            if port_up || log_up {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "the daemon did not get ready within 60 s; log:\n{}",
            self.log_text()
        );
    }

    /// The daemon's log, and what it printed (a start-up error goes there).
    fn log_text(&self) -> String {
        let printed =
            std::fs::read_to_string(self.dir.path().join("daemon.out")).unwrap_or_default();
        std::fs::read_to_string(&self.log).unwrap_or_default() + &printed
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pgid = self.child.id() as i32;
        // SAFETY: kill(2) on our own process group; no memory is involved.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: as above; the group may already be gone.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
        // A failed test shows what the daemon said about its connections: a refused or
        // failed connect makes a 6.0 proxy wait minutes before it asks again.
        // (ZBXC_DAEMON_LOG=1 shows them after a passed test too.)
        if std::thread::panicking() || std::env::var_os("ZBXC_DAEMON_LOG").is_some() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| {
                    ["connect", "retry", "cannot", "failed", "restored"]
                        .iter()
                        .any(|w| l.contains(w))
                })
                .collect();
            let from = lines.len().saturating_sub(60);
            eprintln!(
                "--- {}: its lines about connections (last {}):\n{}",
                self.log.display(),
                lines.len() - from,
                lines[from..].join("\n")
            );
        }
    }
}

/// A free port a Zabbix config accepts (ListenPort is at most 32767).
fn free_port() -> u16 {
    zbx_conform::runner::peer::free_port().expect("a free port")
}

use support::zbx;

/// Run a README command twice in a row; both must pass and name the peer's version.
fn twice(what: &str, args: &[&str], expect: &str) {
    for round in 1..=2 {
        let started = Instant::now();
        let o = zbx(args);
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.status.code(), Some(0), "{what}, round {round}:\n{out}");
        assert!(
            out.contains(expect),
            "{what}, round {round}: no `{expect}` in\n{out}"
        );
        let summary = out.lines().rfind(|l| l.contains(" passed, ")).unwrap_or("");
        eprintln!(
            "{what}, round {round}: {summary} ({:.1}s)",
            started.elapsed().as_secs_f64()
        );
    }
}

// ------------------------------------------------------------------- peers, by hand

/// How a peer binary is run: directly (Debian 12's 6.0), or inside the trixie root.
#[derive(Clone, Copy)]
enum Release {
    V60,
    V70,
}

impl Release {
    fn available(self, test: &str) -> bool {
        match self {
            Release::V60 => {
                support::require_binary("ZABBIX_PROXY", "/usr/sbin/zabbix_proxy").is_some()
                    && support::require_binary("ZABBIX_AGENTD", "/usr/sbin/zabbix_agentd").is_some()
                    && support::require_binary("ZABBIX_AGENT2", "/usr/sbin/zabbix_agent2").is_some()
            }
            Release::V70 => support::require_trixie_root(test),
        }
    }

    /// The command line: `argv` as is, or through ci/trixie/peer.sh with the run dir.
    fn argv(self, argv: &[&str]) -> Vec<String> {
        match self {
            Release::V60 => argv.iter().map(|a| a.to_string()).collect(),
            Release::V70 => {
                let peer_sh = support::root().join("ci/trixie/peer.sh");
                let mut v = vec![
                    "bash".to_string(),
                    peer_sh.display().to_string(),
                    support::trixie_root().display().to_string(),
                    "{dir}".to_string(),
                    "--".to_string(),
                ];
                v.extend(argv.iter().map(|a| a.to_string()));
                v
            }
        }
    }

    fn protocol(self) -> &'static str {
        match self {
            Release::V60 => "6.0",
            Release::V70 => "7.0",
        }
    }

    fn version(self) -> &'static str {
        match self {
            Release::V60 => "6.0.14",
            Release::V70 => "7.0.22",
        }
    }
}

/// A proxy as an administrator would start one: the packaged SQLite schema loaded
/// into a new database, a config file with the addresses and paths set, and short
/// frequencies an active proxy under test needs (see the README).
fn proxy(release: Release, active_server: Option<u16>, psk: Option<&Pki>) -> (Daemon, String) {
    let port = free_port();
    let (mode, server) = match active_server {
        Some(p) => ("0", format!("127.0.0.1:{p}")),
        None => ("1", "127.0.0.1".to_string()),
    };
    // With a key, the proxy talks to its server over PSK only: an active proxy connects
    // with it, a passive one accepts nothing else.
    let tls = match (psk, active_server) {
        (None, _) => String::new(),
        (Some(k), active) => format!(
            "{}=psk\nTLSPSKIdentity={}\nTLSPSKFile={}\n",
            if active.is_some() {
                "TLSConnect"
            } else {
                "TLSAccept"
            },
            IDENTITY,
            k.file("good.psk")
        ),
    };
    let frequency = match release {
        Release::V60 => "ConfigFrequency=5",
        Release::V70 => "ProxyConfigFrequency=5",
    };
    let config = format!(
        "ProxyMode={mode}\nServer={server}\nHostname=hand-started-proxy\n\
         ListenIP=127.0.0.1\nListenPort={port}\nLogFile={{dir}}/proxy.log\nLogFileSize=0\n\
         PidFile={{dir}}/proxy.pid\nSocketDir={{dir}}\nDBName={{dir}}/proxy.db\n\
         AllowRoot=1\nTimeout=4\n{frequency}\nHeartbeatFrequency=1\n{tls}"
    );
    let script = "set -e; gzip -dc /usr/share/zabbix-proxy-sqlite3/schema.sql.gz | \
                  sqlite3 {dir}/proxy.db; exec /usr/sbin/zabbix_proxy -f -c {dir}/zabbix_proxy.conf";
    let argv = release.argv(&["/bin/sh", "-c", script]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut d = Daemon::start("zabbix_proxy.conf", &config, &argv, "proxy.log");
    d.wait_ready(None, Some("started [main process]"));
    let addr = format!("127.0.0.1:{port}");
    d.wait_ready(Some(&addr), None);
    (d, addr)
}

fn agentd(release: Release) -> (Daemon, String) {
    let port = free_port();
    let config = format!(
        "Server=127.0.0.1\nServerActive=\nListenIP=127.0.0.1\nListenPort={port}\n\
         Hostname=hand-started-agentd\nLogFile={{dir}}/agentd.log\nPidFile={{dir}}/agentd.pid\n\
         AllowRoot=1\n"
    );
    let argv = release.argv(&[
        "/usr/sbin/zabbix_agentd",
        "-f",
        "-c",
        "{dir}/zabbix_agentd.conf",
    ]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut d = Daemon::start("zabbix_agentd.conf", &config, &argv, "agentd.log");
    let addr = format!("127.0.0.1:{port}");
    d.wait_ready(Some(&addr), None);
    (d, addr)
}

fn agent2(release: Release) -> (Daemon, String) {
    let port = free_port();
    let config = format!(
        "Server=127.0.0.1\nServerActive=\nListenIP=127.0.0.1\nListenPort={port}\n\
         Hostname=hand-started-agent2\nLogFile={{dir}}/agent2.log\nPidFile={{dir}}/agent2.pid\n\
         ControlSocket={{dir}}/agent2.sock\nPluginSocket={{dir}}/plugin.sock\n"
    );
    let argv = release.argv(&["/usr/sbin/zabbix_agent2", "-c", "{dir}/zabbix_agent2.conf"]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut d = Daemon::start("zabbix_agent2.conf", &config, &argv, "agent2.log");
    let addr = format!("127.0.0.1:{port}");
    d.wait_ready(Some(&addr), None);
    (d, addr)
}

/// A listener that accepts connections and closes them at once, until dropped. With a
/// PSK it completes each TLS handshake first: a 6.0 proxy whose TLS handshake fails
/// counts its configuration request as a failed connect and waits 120 s before the
/// next, while a connection closed after the handshake is retried at ConfigFrequency,
/// as a plaintext one is.
struct Placeholder {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Placeholder {
    fn start(addr: &str, psk: Option<&Pki>) -> Placeholder {
        let listener = std::net::TcpListener::bind(addr).expect("placeholder listens");
        listener.set_nonblocking(true).expect("non-blocking");
        let tls = psk.map(|k| {
            let settings = zbx_conform::transport::tls::TlsSettings {
                connect: None,
                accept: Some(vec!["psk".into()]),
                ..k.psk_client()
            };
            zbx_conform::transport::tls::TlsConfig::load(&settings, None).expect("the PSK loads")
        });
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, from)) => {
                        let Some(cfg) = &tls else {
                            drop(conn);
                            continue;
                        };
                        rt.block_on(async {
                            let _ = conn.set_nonblocking(true);
                            if let Ok(tcp) = tokio::net::TcpStream::from_std(conn) {
                                let from = from.to_string();
                                let within = Duration::from_secs(2);
                                let _ =
                                    zbx_conform::transport::tls::accept(tcp, cfg, &from, within)
                                        .await;
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Placeholder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Placeholder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// tcpdump on `ports` while `body` runs, when this machine can capture.
fn recording(test: &str, ports: &[u16], body: impl FnOnce()) -> Option<Vec<SentFrame>> {
    if !capture_support::require_tcpdump(test) {
        body();
        return None;
    }
    let dir = tempfile::tempdir().expect("capture dir");
    let mut capture = Capture::start(ports, &dir.path().join("traffic.pcap"));
    body();
    capture.stop();
    Some(capture_support::frames(&capture.file))
}

/// Every frame the daemon sent (`sent_by_daemon`) in the recorded traffic is recognised
/// as a message kind of `protocol` sent by the daemon's side in one of the families it
/// plays in (`roles`: family, side), the way the runner and `validate` recognise them.
fn assert_recognised(
    what: &str,
    frames: Option<Vec<SentFrame>>,
    protocol: &str,
    roles: &[(&str, &str)],
    sent_by_daemon: impl Fn(&SentFrame) -> bool,
) {
    let Some(frames) = frames else { return };
    let catalog = support::catalog();
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    let mut unrecognised = Vec::new();
    for f in frames.iter().filter(|f| sent_by_daemon(f)) {
        let body = Body::from_payload(&f.payload);
        let found: Vec<String> = roles
            .iter()
            .flat_map(|(family, side)| {
                catalog.recognise(&body, Some(family), Some(protocol), Some(side))
            })
            .map(|r| format!("{}:{}", r.family, r.kind.kind))
            .collect();
        match found.is_empty() {
            false => *kinds.entry(found.join(" or ")).or_default() += 1,
            true => unrecognised.push(
                String::from_utf8_lossy(&f.payload)
                    .chars()
                    .take(300)
                    .collect::<String>(),
            ),
        }
    }
    let total: usize = kinds.values().sum::<usize>() + unrecognised.len();
    assert!(
        total > 0,
        "{what}: the capture holds frames the daemon sent"
    );
    assert!(
        unrecognised.is_empty(),
        "{what}: {} of {total} messages the daemon sent are not recognised:\n{}",
        unrecognised.len(),
        unrecognised.join("\n")
    );
    eprintln!("{what}: recorded {total} daemon messages, all recognised: {kinds:?}");
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

// ------------------------------------------------------------------------- tests

fn passive_proxy_suites(release: Release, test: &str) {
    if !release.available(test) {
        return;
    }
    let (_proxy, addr) = proxy(release, None, None);
    let port = port_of(&addr);
    let found = format!("zabbix_proxy (passive) {}", release.version());
    // Someone used it before: a configuration and values nobody polled yet.
    let o = zbx([
        "run",
        "scenarios/sender-real-proxy",
        "--peer",
        &addr,
        "--no-matrix",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let traffic = recording(test, &[port], || {
        for (what, path) in [
            ("server-proxy passive", "scenarios/server-proxy/passive"),
            ("sender", "scenarios/sender-real-proxy"),
            ("active agent", "scenarios/agent-real-proxy"),
            ("robustness", "scenarios/robustness"),
        ] {
            twice(what, &["run", path, "--peer", &addr, "--no-matrix"], &found);
        }
    });
    // A proxy is a proxy to the server, and a trapper ("server" side) to agents and senders.
    let roles = [
        ("server-proxy", "proxy"),
        ("sender", "server"),
        ("agent", "server"),
    ];
    assert_recognised("passive proxy", traffic, release.protocol(), &roles, |f| {
        f.from_port == port
    });
}

/// The harness's options for `pki`'s PSK (the test identity, `good.psk`):
/// `--tls-accept psk` when the proxy connects to the harness (active), `--tls-connect
/// psk` when the harness connects (passive).
fn psk_args(pki: &Pki, side: &str) -> Vec<String> {
    let file = pki.file("good.psk");
    [
        side,
        "psk",
        "--tls-psk-identity",
        IDENTITY,
        "--tls-psk-file",
        &file,
    ]
    .map(String::from)
    .to_vec()
}

/// The active suite twice against a proxy started by hand. The 6.0 proxy connects
/// over PSK (TLSConnect=psk) and the harness accepts PSK only, so an encrypted proxy
/// that holds data is covered too; the 7.0 proxy talks in clear.
fn active_proxy_suite(release: Release, test: &str) {
    if !release.available(test) {
        return;
    }
    let psk = matches!(release, Release::V60).then(Pki::psk_only);
    let listen_port = free_port();
    let listen = format!("127.0.0.1:{listen_port}");
    // Until the first run listens there, something answers (by closing): a 6.0 proxy
    // whose configuration request finds the port closed waits 120 s before the next,
    // one that gets no answer only its ConfigFrequency.
    let placeholder = Placeholder::start(&listen, psk.as_ref());
    let (_proxy, trapper) = proxy(release, Some(listen_port), psk.as_ref());
    let tls_args = psk
        .as_ref()
        .map_or(Vec::new(), |k| psk_args(k, "--tls-accept"));
    let trapper_port = port_of(&trapper);
    let found = format!("zabbix_proxy (active) {}", release.version());
    let traffic = recording(test, &[trapper_port, listen_port], || {
        drop(placeholder);
        let mut args = vec![
            "run",
            "scenarios/server-proxy/active",
            "--peer",
            &trapper,
            "--listen",
            &listen,
            "--no-matrix",
        ];
        args.extend(tls_args.iter().map(String::as_str));
        twice("server-proxy active", &args, &found)
    });
    let roles = [
        ("server-proxy", "proxy"),
        ("sender", "server"),
        ("agent", "server"),
    ];
    assert_recognised("active proxy", traffic, release.protocol(), &roles, |f| {
        f.from_port == trapper_port || f.to_port == listen_port
    });
}

fn passive_agent_suites(release: Release, test: &str) {
    if !release.available(test) {
        return;
    }
    let (_d, addr) = agentd(release);
    let (_d2, addr2) = agent2(release);
    let ports = [port_of(&addr), port_of(&addr2)];
    let traffic = recording(test, &ports, || {
        for (addr, program) in [(&addr, "zabbix_agentd"), (&addr2, "zabbix_agent2")] {
            twice(
                &format!("agent passive ({program})"),
                &[
                    "run",
                    "scenarios/agent/passive",
                    "--peer",
                    addr,
                    "--no-matrix",
                ],
                &format!("{program} {}", release.version()),
            );
        }
    });
    assert_recognised(
        "passive agents",
        traffic,
        release.protocol(),
        &[("agent", "agent")],
        |f| ports.contains(&f.from_port),
    );
}

#[test]
fn passive_proxy_6_0_started_by_hand() {
    passive_proxy_suites(Release::V60, "passive_proxy_6_0_started_by_hand");
}

#[test]
fn passive_proxy_7_0_started_by_hand() {
    passive_proxy_suites(Release::V70, "passive_proxy_7_0_started_by_hand");
}

#[test]
fn active_proxy_6_0_started_by_hand() {
    active_proxy_suite(Release::V60, "active_proxy_6_0_started_by_hand");
}

#[test]
fn active_proxy_7_0_started_by_hand() {
    active_proxy_suite(Release::V70, "active_proxy_7_0_started_by_hand");
}

#[test]
fn passive_agents_6_0_started_by_hand() {
    passive_agent_suites(Release::V60, "passive_agents_6_0_started_by_hand");
}

#[test]
fn passive_agents_7_0_started_by_hand() {
    passive_agent_suites(Release::V70, "passive_agents_7_0_started_by_hand");
}

/// The run dir of a hand-started daemon is its own, and it goes away with it.
#[test]
fn a_daemon_started_by_hand_leaves_nothing_behind() {
    if !Release::V60.available("a_daemon_started_by_hand_leaves_nothing_behind") {
        return;
    }
    let dir: PathBuf;
    {
        let (d, _addr) = agentd(Release::V60);
        dir = PathBuf::from(d.path(""));
        assert!(Path::new(&d.path("agentd.log")).is_file());
    }
    assert!(!dir.exists(), "{} is removed", dir.display());
}

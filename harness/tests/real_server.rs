//! Interoperability: the scenarios in `scenarios/server-proxy-real-server/` against the
//! real Zabbix 6.0.14 server (zabbix-server-pgsql) with a private PostgreSQL, started
//! fresh for every scenario through the peer profile `ci/peers/zabbix-server-6.0.yaml`.
//!
//! Needs `ci/install-peers.sh --server` (unpacks zabbix_server, installs PostgreSQL).
//! Without those binaries the test prints why and passes — unless `CI=true`, where a
//! missing peer is a failure: CI must never go green by not testing.
//!
//! The first run builds the loaded 6.0 database once (~15 s, cached in
//! `~/.cache/zbx-conform/zabbix-server-pgsql/pgdata-6.0`); later runs copy it (~1 s per
//! scenario) and stopping a server takes ~3-4 s.
//!
//! With encryption: the server of `ci/peers/zabbix-server-6.0-psk.yaml`, whose proxies
//! talk PSK with it (a key made at test time), serves the harness as its active and its
//! passive proxy over PSK, and refuses the active proxy's data in clear with the
//! documented `failed` reply (`scenarios/server-proxy-real-server-tls`).

mod support;
mod tls_support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use zbx_conform::catalog::Catalog;
use zbx_conform::runner::{self, peer::LoadedProfile, Outcome, RunOptions};

/// What the peer needs on this machine; the first missing piece, if any.
fn missing_peer() -> Option<String> {
    let cache = match std::env::var_os("ZBX_SERVER_CACHE") {
        Some(c) => PathBuf::from(c),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/zbx-conform/zabbix-server-pgsql"),
    };
    let server = cache.join("root/usr/sbin/zabbix_server");
    if !server.is_file() {
        return Some(format!("{} is missing", server.display()));
    }
    let pg_bin = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .find(|b| b.join("pg_ctl").is_file() && b.join("postgres").is_file());
    if pg_bin.is_none() {
        return Some("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin".into());
    }
    for tool in ["psql", "runuser", "setsid", "flock"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            return Some(format!("`{tool}` is not on PATH"));
        }
    }
    None
}

/// Skip (or, under CI=true, fail) when the peer cannot run here.
fn peer_available() -> bool {
    let Some(why) = missing_peer() else {
        return true;
    };
    let msg = format!(
        "real zabbix_server peer unavailable: {why} (run `bash ci/install-peers.sh --server`)"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// A run directory PostgreSQL (user postgres, when we are root) can reach.
fn reachable_run_dir() -> tempfile::TempDir {
    let run_dir = tempfile::Builder::new()
        .prefix("zbx-conform-real-server-")
        .tempdir()
        .expect("temp run dir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(run_dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod run dir");
    }
    run_dir
}

#[test]
fn scenarios_pass_against_real_zabbix_server() {
    if !peer_available() {
        return;
    }
    let root = support::root();
    let catalog = Arc::new(Catalog::load(&root).expect("catalog loads"));
    let profile = LoadedProfile::load(&root.join("ci/peers/zabbix-server-6.0.yaml"))
        .expect("peer profile loads");
    let run_dir = reachable_run_dir();
    let opts = RunOptions {
        paths: vec![
            root.join("scenarios/server-proxy-real-server"),
            // Malformed frames and payloads against the real trapper, each followed by a
            // valid heartbeat that must still be answered.
            root.join("scenarios/robustness-server"),
        ],
        // Each scenario gets its own server and PostgreSQL; two at a time keeps the
        // 2-core CI machine responsive.
        jobs: 2,
        timeout: std::time::Duration::from_secs(10),
        start_peer: Some(Arc::new(profile)),
        run_dir: run_dir.path().to_path_buf(),
        ..RunOptions::default()
    };
    let jobs = runner::plan(&catalog, &opts).expect("scenarios load and lint");
    assert!(
        jobs.len() >= 7,
        "expected the real-server scenarios, got {}",
        jobs.len()
    );
    let started = Instant::now();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let r = rt.block_on(runner::run_jobs(catalog, jobs, &opts, |_| {}));
    let report = support::describe(&r);
    let passed = r
        .scenarios
        .iter()
        .filter(|s| s.outcome == Outcome::Passed)
        .count();
    eprintln!(
        "real zabbix_server: {passed}/{} scenarios passed in {:.1} s\n{report}",
        r.scenarios.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(passed, r.scenarios.len(), "not all passed:\n{report}");
    assert_eq!(r.exit_code(), 0);
    // Every server and its PostgreSQL are gone: no data directory is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(run_dir.path())
        .expect("read run dir")
        .filter_map(Result::ok)
        .map(|e| e.path().join("pg/data"))
        .filter(|p| p.exists())
        .collect();
    assert!(
        leftovers.is_empty(),
        "PostgreSQL data left behind: {leftovers:?}"
    );
    // ...and no process of theirs is left: the wrappers, their watchdogs, the
    // zabbix_server main processes and the postmasters name a path in the run dir on
    // their command lines (workers retitle themselves, but die with those).
    let needle = run_dir.path().display().to_string();
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            cmd.contains(&needle)
                .then(|| format!("{}: {cmd}", e.file_name().to_string_lossy()))
        })
        .collect();
    assert!(
        survivors.is_empty(),
        "processes survived their scenario: {survivors:#?}"
    );
}

/// Run `folders` against a fresh PSK server per scenario, the harness connecting and
/// accepting with the test's PSK; `accept` is the proxies' tls_accept in the server's
/// database.
fn run_psk(folders: &[&str], accept: &str) -> runner::RunResult {
    let pki = tls_support::Pki::psk_only();
    let run_dir = reachable_run_dir();
    let vars = vec![
        (
            "PSK_IDENTITY".to_string(),
            tls_support::IDENTITY.to_string(),
        ),
        ("PSK_FILE".into(), pki.file("good.psk")),
        ("SERVER_PROXY_TLS_ACCEPT".into(), accept.into()),
    ];
    let tls = zbx_conform::transport::tls::TlsSettings {
        accept: Some(vec!["psk".into()]),
        ..pki.psk_client()
    };
    let (named, r) = tls_support::run_started(
        "ci/peers/zabbix-server-6.0-psk.yaml",
        folders,
        &[],
        vars,
        tls,
        run_dir.path(),
    );
    assert_eq!(named.as_deref(), Some("6.0"), "the server asked over PSK");
    let all = support::describe(&r);
    assert!(!all.contains(&tls_support::PSK[..16]), "a key shows: {all}");
    r
}

/// The real server whose proxies talk PSK (asked its version over PSK) passes the
/// real-server suite with the harness playing both proxies encrypted (the passive one
/// accepting PSK only), and refuses the active proxy's data in clear; a server that
/// accepts plaintext from the proxy too (tls_accept 3) fails that refusal scenario.
#[test]
fn a_server_whose_proxies_talk_psk_serves_them_encrypted_and_refuses_them_in_clear() {
    if !peer_available() {
        return;
    }
    const REFUSAL: &str = "scenarios/server-proxy-real-server-tls";
    let r = run_psk(&["scenarios/server-proxy-real-server", REFUSAL], "2");
    support::assert_all_passed("zabbix-server-6.0-psk.yaml", &r, 6);
    let polled = r
        .scenarios
        .iter()
        .find(|s| s.file.ends_with("passive-polled.yaml"))
        .expect("passive-polled ran");
    assert_eq!(
        polled.properties.get("tls.version").map(String::as_str),
        Some("TLSv1.2"),
        "the server polled over PSK: {:?}",
        polled.properties
    );

    let r = run_psk(&[REFUSAL], "3");
    assert_eq!(
        *support::outcome_of(&r, "plaintext-proxy-refused.yaml"),
        Outcome::Failed,
        "{}",
        support::describe(&r)
    );
}

//! Shared helpers of the integration tests that run scenarios: where the repository is,
//! how to run scenarios through the library, how to describe a result when an assertion
//! fails, and the rule for real peers (skip with a message on a laptop, fail under CI).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zbx_conform::catalog::Catalog;
use zbx_conform::runner::{self, CheckKind, Outcome, RunOptions, RunResult};

/// The workspace root (holds schemas/, fixtures/, scenarios/, ci/).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The built binary run with `args` in the workspace root, without the peer addresses
/// the environment may hold (a developer's PROXY_ADDR must not redirect a test).
pub fn zbx<I, S>(args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    std::process::Command::new(env!("CARGO_BIN_EXE_zbx-conform"))
        .args(args)
        .current_dir(root())
        .env_remove("PROXY_ADDR")
        .env_remove("SERVER_ADDR")
        .output()
        .expect("the binary runs")
}

/// Everything a run of the binary printed, stdout then stderr.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Plan and run with `opts` (paths relative to the root are resolved by the caller).
pub fn run_opts(opts: &RunOptions) -> RunResult {
    let catalog = Arc::new(Catalog::load(&root()).expect("catalog loads"));
    let jobs = runner::plan(&catalog, opts).expect("scenarios load and lint");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(runner::run_jobs(catalog, jobs, opts, |_| {}))
}

/// Run scenario `paths` (relative to the root) against the built-in reference peers,
/// optionally broken by `fault`.
pub fn run(paths: &[&str], fault: Option<&str>, timeout: Duration) -> RunResult {
    let root = root();
    run_opts(&RunOptions {
        paths: paths.iter().map(|p| root.join(p)).collect(),
        fault: fault.map(str::to_string),
        jobs: 8,
        timeout,
        ..RunOptions::default()
    })
}

/// Every scenario with its outcome and failures (and the peer log when there is one).
pub fn describe(r: &RunResult) -> String {
    let mut out = String::new();
    for s in &r.scenarios {
        out.push_str(&format!(
            "{:?} {} ({}) — {}\n",
            s.outcome,
            s.test_name(),
            s.file.display(),
            s.peer
        ));
        for (step, f) in s.failures() {
            out.push_str(&format!(
                "    step {} line {}: [{}] expected {} — {}\n",
                step.index,
                step.line,
                f.check.as_str(),
                f.expected,
                f.detail
            ));
        }
        if let Some(log) = &s.peer_log {
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            out.push_str("    peer log (last lines):\n");
            for l in tail.into_iter().rev() {
                out.push_str(&format!("    > {l}\n"));
            }
        }
    }
    out
}

/// Require that every scenario of `r` failed, each with a failure of `check`.
pub fn assert_all_failed_with(r: &RunResult, what: &str, check: CheckKind) {
    assert!(!r.scenarios.is_empty(), "{what}: nothing ran");
    for s in &r.scenarios {
        assert_eq!(
            s.outcome,
            Outcome::Failed,
            "{what} should fail:\n{}",
            describe(r)
        );
        assert!(
            s.failures().any(|(_, f)| f.check == check),
            "{what} should fail a `{}` check:\n{}",
            check.as_str(),
            describe(r)
        );
    }
    assert_eq!(r.exit_code(), 1);
}

/// A real peer's binary: `$env` or `default`. Missing: `None` with a printed SKIPPED
/// line — or a panic when CI=true, where a missing peer is a failure, never a skip.
pub fn require_binary(env: &str, default: &str) -> Option<PathBuf> {
    let p = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    if p.is_file() {
        return Some(p);
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{} is missing and CI=true: run `bash ci/install-peers.sh` first (or set {env})",
        p.display()
    );
    eprintln!(
        "SKIPPED: {} is not installed (run `bash ci/install-peers.sh`, or set {env})",
        p.display()
    );
    None
}

/// The real catalog, loaded once per test binary.
pub fn catalog() -> &'static Catalog {
    static CAT: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    CAT.get_or_init(|| Catalog::load(&root()).expect("catalog loads"))
}

/// One schema cache per test binary (each schema compiled once).
pub fn schema_cache() -> &'static zbx_conform::check::SchemaCache {
    static CACHE: std::sync::OnceLock<zbx_conform::check::SchemaCache> = std::sync::OnceLock::new();
    CACHE.get_or_init(zbx_conform::check::SchemaCache::new)
}

/// Names used as `fixture: <name>` by the scenarios (scenario-specific fixtures such as a
/// configuration with trapper items live beside the per-kind ones).
pub fn fixture_names_used_by_scenarios() -> std::collections::HashSet<String> {
    let mut names = std::collections::HashSet::new();
    let mut stack = vec![root().join("scenarios")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("scenario dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(text) = std::fs::read_to_string(&p) {
                // `fixture: name` in block style, or inside a flow mapping
                // (`send: { fixture: "name", kind: ... }`).
                for (_, rest) in text
                    .match_indices("fixture:")
                    .map(|(i, _)| ((), &text[i + 8..]))
                {
                    let name: String = rest
                        .trim_start()
                        .trim_start_matches('"')
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || "._:-".contains(*c))
                        .collect();
                    if !name.is_empty() {
                        names.insert(name);
                    }
                }
            }
        }
    }
    names
}

/// The Debian 13 root with Zabbix 7.0 peers (ci/trixie/build-root.sh): `ZBX_TRIXIE_ROOT`
/// or `$HOME/.cache/zbx-conform/trixie-root`.
pub fn trixie_root() -> PathBuf {
    std::env::var_os("ZBX_TRIXIE_ROOT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".cache/zbx-conform/trixie-root")
        })
}

/// Whether `test` can use the trixie root's 7.0 peers: the root is built (its
/// `.zbx-conform-stamp` exists) and we are root (ci/trixie/peer.sh needs unshare, mount
/// and chroot). Otherwise prints a SKIPPED line naming `test` and returns false — or
/// panics when CI=true, where a missing peer is a failure, never a skip (the same rule
/// as [`require_binary`]).
pub fn require_trixie_root(test: &str) -> bool {
    let root = trixie_root();
    let stamp = root.join(".zbx-conform-stamp");
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let why = if !stamp.is_file() {
        format!(
            "{} is missing (run `bash ci/trixie/build-root.sh`, or set ZBX_TRIXIE_ROOT)",
            stamp.display()
        )
    } else if euid != 0 {
        format!(
            "not running as root (euid {euid}); ci/trixie/peer.sh needs unshare, mount and chroot"
        )
    } else {
        return true;
    };
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{test}: the trixie root is required and CI=true: {why}"
    );
    eprintln!("SKIPPED: {test}: {why}");
    false
}

/// With `ZBXC_KEEP_RECORDS=DIR` set (as `.ci/run` does), copy a `mock-plugin --record`
/// file there as `<name>.jsonl`, so `ci/run-matrix.sh` can count the plugin messages a
/// real Agent 2 sent in the coverage matrix. A failed copy fails the test: CI asked for
/// it.
pub fn keep_record(record: &Path, name: &str) {
    let Some(dir) = std::env::var_os("ZBXC_KEEP_RECORDS") else {
        return;
    };
    // Relative to the workspace root: cargo runs tests in the package folder.
    let dir = root().join(dir);
    std::fs::create_dir_all(&dir).expect("create ZBXC_KEEP_RECORDS");
    std::fs::copy(record, dir.join(format!("{name}.jsonl"))).expect("keep the plugin record");
}

/// A peer profile under the workspace root (e.g. `ci/peers/zabbix-proxy-passive.yaml`).
pub fn load_profile(rel: &str) -> Arc<zbx_conform::runner::peer::LoadedProfile> {
    let path = root().join(rel);
    Arc::new(
        zbx_conform::runner::peer::LoadedProfile::load(&path)
            .unwrap_or_else(|e| panic!("peer profile {}: {e}", path.display())),
    )
}

/// Run `paths` (relative to the root) at `versions` against a fresh real peer per
/// scenario from `profile` (the reference peers when `None`), with run dirs under
/// `run_dir`: two scenarios at a time (a Zabbix daemon is a dozen processes, CI has two
/// cores), 10 s per expectation. Prints a summary line with the wall time; every planned
/// scenario must have a result.
pub fn run_with_peer(
    test: &str,
    profile: Option<Arc<zbx_conform::runner::peer::LoadedProfile>>,
    paths: &[&str],
    versions: &[&str],
    vars: &[(&str, &str)],
    run_dir: &Path,
) -> RunResult {
    let catalog = Arc::new(Catalog::load(&root()).expect("catalog loads"));
    let opts = RunOptions {
        paths: paths.iter().map(|p| root().join(p)).collect(),
        versions: versions.iter().map(|v| v.to_string()).collect(),
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        jobs: 2,
        timeout: Duration::from_secs(10),
        start_peer: profile,
        run_dir: run_dir.to_path_buf(),
        ..RunOptions::default()
    };
    let jobs = runner::plan(&catalog, &opts).expect("scenarios load and lint");
    let planned = jobs.len();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let started = std::time::Instant::now();
    let r = rt.block_on(runner::run_jobs(catalog, jobs, &opts, |_| {}));
    eprintln!(
        "{test}: {} passed, {} failed, {} other of {planned}, wall time {:.1} s",
        r.count(|o| *o == Outcome::Passed),
        r.count(|o| *o == Outcome::Failed),
        r.count(|o| !matches!(o, Outcome::Passed | Outcome::Failed)),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(r.scenarios.len(), planned, "{test}: a scenario is missing");
    r
}

/// Every scenario of `r` passed, and at least `min` ran.
pub fn assert_all_passed(test: &str, r: &RunResult, min: usize) {
    assert!(
        r.scenarios.len() >= min,
        "{test}: only {} scenarios ran (expected at least {min}):\n{}",
        r.scenarios.len(),
        describe(r)
    );
    assert!(
        r.scenarios.iter().all(|s| s.outcome == Outcome::Passed),
        "{test}: not every scenario passed:\n{}",
        describe(r)
    );
    assert_eq!(r.exit_code(), 0, "{test}");
}

/// A temporary directory for run dirs, below /tmp and as deep as run dirs get below a
/// CI checkout, so every real-peer test also proves that Unix sockets do not depend on
/// the run dir's length (they live in each peer's short `${socket_dir}`).
pub fn deep_run_dir(prefix: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("temp dir");
    let deep = tmp
        .path()
        .join("builds/some-group/some-project/target/real-peers");
    (tmp, deep)
}

/// What a real Agent 2 sent to the mock plugin, read from a `mock-plugin --record` file.
pub struct AgentRecord {
    /// The record as written (for assertion messages).
    pub text: String,
    /// `(initial run?, kind, message)` per line.
    pub seen: Vec<(bool, String, serde_json::Value)>,
}

impl AgentRecord {
    /// The kinds of the registration run (`initial`) or of the operation run, in order.
    pub fn kinds(&self, initial: bool) -> Vec<&str> {
        self.seen
            .iter()
            .filter(|(i, _, _)| *i == initial)
            .map(|(_, k, _)| k.as_str())
            .collect()
    }
}

/// Read what a real Agent 2 sent to the mock plugin, each line checked again here against
/// the plugin schemas of `version` (not only by the mock's own recorder). The record is
/// kept for the coverage matrix as `keep_as` (see [`keep_record`]).
pub fn recorded_agent_messages(
    record: &Path,
    version: zbx_conform::plugin::PluginVersion,
    keep_as: &str,
) -> AgentRecord {
    let checker = zbx_conform::plugin::MessageChecker::new(catalog().clone());
    let text = std::fs::read_to_string(record).expect("the mock recorded messages");
    keep_record(record, keep_as);
    let mut seen = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("record line");
        assert_eq!(
            v["problems"],
            serde_json::json!([]),
            "the mock saw a violation: {v}"
        );
        let msg = v["message"].clone();
        let (kind, problems) = checker.check(&version, "agent", &msg);
        assert!(problems.is_empty(), "{msg}: {problems:?}");
        let initial = v["initial"].as_bool().expect("initial is a bool");
        seen.push((initial, kind.unwrap_or_default(), msg));
    }
    AgentRecord { text, seen }
}

/// Stop a real zabbix_agent2 that runs the mock plugin, by its PID: SIGTERM to agent2
/// alone first (the plugin shares its process group, and a group-wide signal would kill
/// the plugin before agent2 sends it Terminate, which agent2 6.0.14 answers with a
/// panic), wait until the mock recorded the operation run's Terminate in `record`, then
/// let [`PeerProcess::stop`](zbx_conform::transport::spawn::PeerProcess::stop) reap it
/// and clear the group.
pub async fn stop_agent2(
    peer: zbx_conform::transport::spawn::PeerProcess,
    record: &Path,
) -> String {
    let pid = libc::pid_t::try_from(peer.pid()).expect("pid fits");
    // SAFETY: kill(2) has no memory-safety preconditions; the PID is our own child,
    // not yet reaped, so it cannot have been reused.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let done = std::fs::read_to_string(record).is_ok_and(|t| {
            t.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .any(|v| v["initial"] == false && v["kind"] == "terminate.request")
        });
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    peer.stop().await
}

/// Every data section the catalog declares for `kind` at `version` was carried by a
/// message `r` exchanged with a real peer (what the coverage matrix shows as REAL).
pub fn assert_sections_from_real_peer(test: &str, r: &RunResult, version: &str, kind: &str) {
    let exercised = zbx_conform::report::matrix::exercised_in_run(r);
    let entry = catalog()
        .kind("server-proxy", version, kind)
        .unwrap_or_else(|| panic!("{test}: no kind {kind} at {version}"));
    let mut missing = Vec::new();
    for s in &entry.sections {
        if !entry.has_section(&s.name, version) {
            continue;
        }
        let seen = exercised.iter().any(|e| {
            e.real
                && e.version == version
                && e.kind == kind
                && e.section.as_deref() == Some(s.name.as_str())
        });
        if !seen {
            missing.push(s.name.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{test}: {kind} {version}: no message from the real peer carried {missing:?}"
    );
}

/// The passwords and private keys the data-tasks scenarios hand the proxy appear in no
/// report (JSON, JUnit), redacted where the transcript shows the tasks.
pub fn assert_task_secrets_redacted(test: &str, r: &RunResult) {
    let json = zbx_conform::report::json::to_string(r).expect("JSON report");
    let dir = tempfile::tempdir().expect("temp dir");
    let junit_path = dir.path().join("junit.xml");
    zbx_conform::report::junit::write(r, &junit_path).expect("JUnit report");
    let junit = std::fs::read_to_string(&junit_path).expect("JUnit readable");
    for (name, text) in [("JSON", &json), ("JUnit", &junit)] {
        for secret in ["zbx-conform-task-password-", "zbx-conform-task-key-"] {
            assert!(
                !text.contains(secret),
                "{test}: the {name} report shows {secret}…"
            );
        }
    }
    assert!(
        // Bodies are JSON strings inside the report: their quotes are escaped.
        json.contains(r#"\"password\":\"[redacted]\""#),
        "{test}: the tasks were not in the report at all"
    );
}

/// The plugin protocol of catalog version `v` (from `schemas/versions.yaml`).
pub fn pv(v: &str) -> zbx_conform::plugin::PluginVersion {
    let catalog = zbx_conform::catalog::Catalog::load(&root()).expect("catalog");
    zbx_conform::plugin::PluginVersion::parse(&catalog, v).expect("a plugin version")
}

/// A finished scenario result for report tests: `name [6.0]` of `family`, played as the
/// server against 127.0.0.1:10051, 1.5 s, no steps.
pub fn scenario_result(
    name: &str,
    family: &str,
    outcome: zbx_conform::runner::Outcome,
) -> zbx_conform::runner::ScenarioResult {
    zbx_conform::runner::ScenarioResult {
        name: name.into(),
        file: PathBuf::from(format!("scenarios/{family}/{name}.yaml")),
        family: family.into(),
        version: "6.0".into(),
        plays: "server".into(),
        tags: vec![],
        peer: "127.0.0.1:10051".into(),
        outcome,
        steps: vec![],
        transcript: vec![],
        peer_log: None,
        properties: Default::default(),
        started: std::time::Duration::ZERO,
        duration: std::time::Duration::from_millis(1500),
    }
}

/// The outcome of the scenario whose file ends in `file` (a panic naming the results
/// when it did not run).
pub fn outcome_of<'a>(r: &'a RunResult, file: &str) -> &'a zbx_conform::runner::Outcome {
    let s = r
        .scenarios
        .iter()
        .find(|s| s.file.ends_with(file))
        .unwrap_or_else(|| panic!("no result for {file}:\n{}", describe(r)));
    &s.outcome
}

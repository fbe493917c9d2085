//! The command-line contract, through the real binary: exit codes 0/1/2/3, reports
//! written, errors that name file and line.

mod support;

use support::{output_text as text, root, zbx};

use std::process::Command;

#[test]
fn all_pass_exit_0_and_reports_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let json = dir.path().join("r.json");
    let o = zbx([
        "run",
        "scenarios/server-proxy/passive",
        "--junit",
        junit.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    // One test per scenario file and version it runs at (its list, or the catalog
    // versions its condition matches).
    let known = support::catalog().versions("server-proxy");
    let expected: usize = std::fs::read_dir(root().join("scenarios/server-proxy/passive"))
        .unwrap()
        .map(|e| {
            let l = zbx_conform::scenario::load_file(&e.unwrap().path()).unwrap();
            l.scenario.versions.value.resolve(&known).len()
        })
        .sum();
    assert!(expected > 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("{expected} passed, 0 failed"))),
        "{out}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase").count(), expected, "{xml}");
    assert!(xml.contains("passive proxy accepts a full configuration push [6.0]"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["scenarios"].as_array().unwrap().len(), expected);
}

#[test]
fn a_failed_check_exits_1_and_names_step_and_check() {
    let o = zbx([
        "run",
        "scenarios/server-proxy/passive/config-push.yaml",
        "--fault",
        "wrong-response",
        "--version",
        "6.0",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("FAIL"), "{out}");
    assert!(out.contains("config-push.yaml:17"), "step location: {out}");
    assert!(out.contains("\"failed\""), "what was received: {out}");
    assert!(
        out.lines().any(|l| l.starts_with("0 passed, 1 failed")),
        "{out}"
    );
}

#[test]
fn scenario_errors_exit_2_with_file_and_line() {
    let o = zbx(["lint", "harness/tests/data/cli/bad.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("bad.yaml:6:"), "{out}");
    assert!(out.contains("exchnge"), "{out}");
    let o = zbx(["run", "harness/tests/data/cli/bad.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// Lint prints each finding with its severity at `file:line:column`; warnings alone
/// exit 0, an error exits 2.
#[test]
fn lint_prints_findings_with_severity_and_exits_by_the_worst() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.yaml");
    let scenario = |extra: &str| {
        format!(
            "name: w\nfamily: server-proxy\nversions: [\"6.0\"]\nplays: server\nsteps:\n  - exchange:\n      connect: \"${{NOT_SET}}\"\n      send: {{ json: {{ request: proxy data }}{extra} }}\n"
        )
    };
    std::fs::write(&path, scenario("")).unwrap();
    let o = zbx(["lint", path.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("w.yaml:7:17: warning: variable ${NOT_SET}"),
        "{out}"
    );

    std::fs::write(&path, scenario(", kind: passive.proxy-data.respons")).unwrap();
    let o = zbx(["lint", path.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("w.yaml:8:52: error: unknown kind `passive.proxy-data.respons`"),
        "{out}"
    );
    assert!(
        out.contains("w.yaml:7:17: warning: variable ${NOT_SET}"),
        "{out}"
    );
}

#[test]
fn selecting_nothing_is_an_error_not_a_pass() {
    let o = zbx(["run", "scenarios/server-proxy", "--tag", "no-such-tag"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no scenario selected"));
    let o = zbx(["run", "no/such/folder"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn an_unreachable_peer_exits_3() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let o = zbx([
        "run",
        "scenarios/server-proxy/passive/tasks.yaml",
        "--peer",
        &addr,
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains(&addr));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(zbx(["run", "--jobs", "many"]).status.code(), Some(2));
    assert_eq!(zbx(["frobnicate"]).status.code(), Some(2));
    let help = zbx(["run", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help).contains("--update-snapshots"));
}

#[test]
fn catalog_and_validate() {
    let o = zbx([
        "catalog",
        "--family",
        "server-proxy",
        "--version",
        "6.0",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(rows.as_array().unwrap().len() >= 15);
    let ok = zbx([
        "validate",
        "--family",
        "server-proxy",
        "--version",
        "6.0",
        "--kind",
        "active.proxy-data.request",
        "fixtures/server-proxy/6.0/active.proxy-data.request.json",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"request":"proxy data","host":"p","session":"short","version":"6.0.14","clock":1,"ns":1}"#).unwrap();
    let o = zbx([
        "validate",
        "--family",
        "server-proxy",
        "--version",
        "6.0",
        "--kind",
        "active.proxy-data.request",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("/session"), "{}", text(&o));
}

/// When the trapper says some values failed, the report shows the batch that was sent
/// next to the answer, so the reader sees WHICH values were in it.
#[test]
fn a_failed_sender_batch_is_reported_with_the_values_sent() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let o = zbx([
        "run",
        "scenarios/sender/unknown-host.yaml",
        "--version",
        "6.0",
        "--fault",
        "wrong-response",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    let reply_line = out
        .lines()
        .find(|l| l.trim_start().starts_with("in reply to:"))
        .unwrap_or_else(|| panic!("no 'in reply to' line: {out}"));
    assert!(reply_line.contains("\"value\":\"hello\""), "{reply_line}");
    assert!(reply_line.contains("unknown-host-"), "{reply_line}");
    assert!(out.contains("failed: 2"), "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("in reply to:"), "{xml}");
}

/// A relative `--run-dir` is made absolute before a peer sees it: peers run in their run
/// dir, so a relative path in their config would point nowhere.
#[test]
fn a_relative_run_dir_reaches_the_peer_as_an_absolute_path() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("peer.yaml");
    std::fs::write(
        &profile,
        r#"
name: checks its run dir
program: /bin/sh
args: ["-c", "case '${run_dir}' in /*) ;; *) exit 9 ;; esac; echo up > up.log; exec sleep 30"]
ready: { log: { file: "${run_dir}/up.log", pattern: up } }
# Nothing listens there: the scenario cannot connect, which proves the peer started
# (a peer that cannot start reports "cannot start peer" instead).
exports: { AGENT_ADDR: "127.0.0.1:1" }
stop_grace: 1s
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zbx-conform"))
        .current_dir(dir.path())
        .args(["--root", root().to_str().unwrap(), "run", "--no-matrix"])
        .arg(root().join("scenarios/agent/passive/ping.yaml"))
        .args([
            "--version",
            "6.0",
            "--run-dir",
            "relative/runs",
            "--start-peer",
        ])
        .arg(&profile)
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(!t.contains("cannot start peer"), "{t}");
    assert!(t.contains("cannot connect to 127.0.0.1:1"), "{t}");
}

/// `--max-frame` bounds what a peer may send: a reply above it fails the frame check
/// with the declared length named; a bad size is a usage error.
#[test]
fn max_frame_fails_larger_replies_and_rejects_bad_sizes() {
    let data_ack = |max: &str| {
        zbx([
            "run",
            "scenarios/server-proxy/passive/data-ack.yaml",
            "--version",
            "6.0",
            "--no-matrix",
            "--max-frame",
            max,
        ])
    };
    let out = data_ack("64");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("frame: expected a valid ZBXD frame"), "{t}");
    assert!(t.contains("exceeds the maximum of 64 bytes"), "{t}");

    let ok = data_ack("1MiB");
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));

    let bad = zbx(["run", "--max-frame", "12TB"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).contains("unknown size unit"), "{}", text(&bad));
}

/// A closed stdout (`zbx-conform run | head -1`) or stderr only silences the output:
/// no panic, the run goes on and exits with its own code.
#[test]
fn a_closed_stdout_or_stderr_ends_quietly_with_the_run_exit_code() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_zbx-conform"))
        .args(["run", "scenarios/server-proxy/passive", "--no-matrix"])
        .current_dir(root())
        .env_remove("PROXY_ADDR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("one line");
    // The reader is gone now, as `head -1` would be.
    let out = child.wait_with_output().expect("exits");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(first.starts_with("PASS"), "{first}");
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );

    // stderr is a pipe nobody reads (its read end is closed), and a usage error: still
    // exit 2, no panic.
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) fills two descriptors we then own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fds[0] is ours and used nowhere else.
    unsafe { libc::close(fds[0]) };
    // SAFETY: fds[1] is an open descriptor we own; the Stdio takes it over.
    let closed: Stdio =
        unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) }.into();
    let out = Command::new(env!("CARGO_BIN_EXE_zbx-conform"))
        .args(["run", "--version", "9.9"])
        .current_dir(root())
        .stderr(closed)
        .output()
        .expect("binary runs");
    assert_eq!(out.status.code(), Some(2));
}

/// Command-line mistakes are answered before anything runs (exit 2, nothing on stdout
/// from a run), naming the valid choices.
#[test]
fn an_unknown_version_names_the_known_ones_before_anything_runs() {
    let o = zbx(["run", "scenarios/server-proxy", "--version", "6.2"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let known: Vec<String> = support::catalog()
        .all_versions()
        .iter()
        .map(|v| v.version.clone())
        .collect();
    assert!(
        err.contains(&format!(
            "error: --version 6.2: unknown protocol version (known: {})",
            known.join(", ")
        )),
        "{err}"
    );
    assert!(o.stdout.is_empty(), "nothing ran: {}", text(&o));
}

#[test]
fn a_report_path_that_cannot_be_written_fails_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let under_file = file.join("junit.xml");
    let cases = [
        ("--junit", dir.path().to_path_buf(), "is a folder"),
        ("--json", dir.path().to_path_buf(), "is a folder"),
        ("--html", dir.path().to_path_buf(), "is a folder"),
        ("--junit", under_file.clone(), "is not a folder"),
        ("--html", under_file, "is not a folder"),
    ];
    for (flag, path, says) in cases {
        let o = zbx([
            "run".as_ref(),
            "scenarios/server-proxy/passive".as_ref(),
            flag.as_ref(),
            path.as_os_str(),
        ]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{flag} {}: {}",
            path.display(),
            text(&o)
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("error: {flag} {}: ", path.display())) && err.contains(says),
            "{err}"
        );
        assert!(o.stdout.is_empty(), "nothing ran: {}", text(&o));
    }
    for flag in ["--junit", "--html"] {
        let o = zbx([
            "certify-plugin".as_ref(),
            "/bin/true".as_ref(),
            flag.as_ref(),
            dir.path().as_os_str(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("is a folder"), "{}", text(&o));
    }
}

/// `catalog` fits 100 columns; `--verbose` adds each kind's recogniser and schema under
/// its row, wrapped to the same width.
#[test]
fn catalog_fits_100_columns_and_verbose_shows_recognisers() {
    for verbose in [false, true] {
        let args: &[&str] = if verbose {
            &["catalog", "--verbose"]
        } else {
            &["catalog"]
        };
        let o = zbx(args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        let widest = out.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        assert!(widest <= 100, "{args:?}: a line of {widest} characters");
        assert_eq!(
            out.contains("    recognised by: /request=\"proxy config\""),
            verbose,
            "{args:?}"
        );
    }
}

/// In a log (stdout not a terminal) the per-scenario lines and the failure details come
/// by file, then version, whatever order the scenarios finished in; the coverage matrix
/// shows only the versions the run selected, its legend one entry per line.
#[test]
fn results_come_in_a_stable_order_and_the_matrix_shows_the_selected_versions() {
    let o = zbx([
        "run",
        "scenarios/server-proxy/passive/unknown-request.yaml",
        "scenarios/server-proxy/passive/config-push.yaml",
        "--version",
        "7.0,6.0",
        "--jobs",
        "4",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let results: Vec<(&str, &str)> = out
        .lines()
        .filter(|l| l.starts_with("PASS "))
        .map(|l| {
            let version = l.split('[').nth(1).and_then(|v| v.split(']').next());
            let file = l.rsplit("  ").next();
            (file.unwrap_or(""), version.unwrap_or(""))
        })
        .collect();
    let p = "scenarios/server-proxy/passive/";
    assert_eq!(
        results,
        [
            (&*format!("{p}config-push.yaml"), "6.0"),
            (&*format!("{p}config-push.yaml"), "7.0"),
            (&*format!("{p}unknown-request.yaml"), "6.0"),
            (&*format!("{p}unknown-request.yaml"), "7.0"),
        ],
        "{out}"
    );
    let header = out
        .lines()
        .find(|l| l.starts_with("[server-proxy]"))
        .unwrap_or_else(|| panic!("no matrix in {out}"));
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["[server-proxy]", "6.0", "7.0"]
    );
    let legend: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != "coverage:")
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(legend.len() >= 6, "{out}");
    assert!(
        legend.contains(&"  REAL     exchanged with a real peer"),
        "{out}"
    );
    assert!(legend.iter().all(|l| l.chars().count() <= 100), "{out}");
}

/// A long wait is not silent: every --progress-every (10 s by default) the run says on
/// stderr what it is still waiting for, against the step's limit.
#[test]
fn a_long_step_says_what_it_is_still_waiting_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = waiting_scenario(dir.path());
    let o = zbx([
        "run".as_ref(),
        path.as_os_str(),
        "--progress-every".as_ref(),
        "300ms".as_ref(),
        "--no-matrix".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let waiting: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("still waiting"))
        .collect();
    assert!(!waiting.is_empty(), "{}", text(&o));
    assert_eq!(
        waiting[0],
        "nobody connects [6.0]: still waiting for the peer to connect with a \
         `active.proxy-heartbeat.request` message (step 1, accept \"heartbeat\") (0.3 s of 1 s)",
        "{err}"
    );
    assert!(waiting.len() <= 3, "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        !out.contains("still waiting"),
        "progress goes to stderr: {out}"
    );
}

/// certify-plugin against a plugin that never connects is not silent either.
#[test]
fn a_hanging_plugin_is_not_a_silent_certification() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("hangs.sh");
    std::fs::write(&plugin, "#!/bin/sh\nsleep 2\n").unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = zbx([
        "certify-plugin".as_ref(),
        plugin.as_os_str(),
        "--version".as_ref(),
        "6.0".as_ref(),
        "--timeout".as_ref(),
        "1s".as_ref(),
        "--progress-every".as_ref(),
        "300ms".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.lines().next(),
        Some(&*format!(
            "plugin {}: still waiting for the plugin to connect to its socket \
             (registration run) (0.3 s of 5 s)",
            plugin.display()
        )),
        "{}",
        text(&o)
    );
}

/// A plugin that connects and then answers nothing: each wait is named by the
/// requirement it is for, with the request and the time against --timeout.
#[test]
fn a_silent_plugin_is_reported_requirement_by_requirement() {
    let python = Command::new("python3").arg("--version").output();
    if !python.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "python3 is missing and CI=true"
        );
        eprintln!("SKIPPED: python3 is not installed: the fake plugin needs it");
        return;
    }
    let plugin = root().join("ci/plugins/fake/fake_plugin.py");
    let o = Command::new(env!("CARGO_BIN_EXE_zbx-conform"))
        .args(["certify-plugin"])
        .arg(&plugin)
        .args(["--version", "6.0", "--timeout", "1s", "--exit-within", "1s"])
        .args(["--progress-every", "400ms"])
        .env("ZBXC_FAKE_MODE", "silent")
        .output()
        .expect("the harness runs");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let waits: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("still waiting"))
        .collect();
    let about = format!("plugin {}: still waiting for ", plugin.display());
    assert_eq!(
        waits.first().copied(),
        Some(&*format!(
            "{about}register.handshake: the reply to request 1 (0.4 s of 1 s)"
        )),
        "{}",
        text(&o)
    );
    assert!(
        waits
            .iter()
            .any(|l| l.starts_with(&format!("{about}register.wrong-version: the reply to"))),
        "the last run's wait names its requirement too: {}",
        text(&o)
    );
}

/// The scenario of [`a_long_step_says_what_it_is_still_waiting_for`]: nobody connects
/// within 1 s.
fn waiting_scenario(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("waits.yaml");
    std::fs::write(
        &path,
        r#"name: nobody connects
family: server-proxy
versions: ["6.0"]
plays: server
listen: 127.0.0.1:0
steps:
  - name: heartbeat
    accept:
      expect: { kind: active.proxy-heartbeat.request, within: 1s }
      reply: { json: { response: success } }
"#,
    )
    .unwrap();
    path
}

/// On a terminal the wait is a live status line on stderr, redrawn in place (erase,
/// carriage return) with the count of tests, the time against the limit and what is
/// awaited; no "still waiting" lines; the result line comes after the status line is
/// erased. The terminal is the one `script` makes.
#[test]
fn on_a_terminal_a_live_status_line_shows_the_wait() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "the script command (util-linux) is missing and CI=true"
        );
        eprintln!("SKIPPED: no `script` command to make a terminal");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = waiting_scenario(dir.path());
    let cmd = format!(
        "'{}' run '{}' --no-matrix --color never",
        env!("CARGO_BIN_EXE_zbx-conform"),
        scenario.display()
    );
    let o = std::process::Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .current_dir(support::root())
        .env("COLUMNS", "200")
        .output()
        .expect("script runs");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let frames: Vec<&str> = out
        .split("\r\x1b[2K")
        .filter(|f| f.contains("waiting for"))
        .collect();
    assert!(!frames.is_empty(), "no status line drawn: {out:?}");
    let frame = frames[0];
    assert!(frame.contains(" 0/1 · "), "{frame:?}");
    assert!(frame.contains(" of 1 s"), "{frame:?}");
    assert!(
        frame.contains("nobody connects [6.0]: waiting for the peer to connect with a"),
        "{frame:?}"
    );
    assert!(!out.contains("still waiting"), "{out:?}");
    let fail = out.find("FAIL ").expect("a result line");
    let last_erase = out[..fail]
        .rfind("\r\x1b[2K")
        .expect("erased before the result");
    assert!(
        out[last_erase..fail]
            .trim_start_matches("\r\x1b[2K")
            .is_empty(),
        "the result line starts on a clean line: {out:?}"
    );
}

/// `--quiet` prints no line per passing test, no matrix and no progress, only the
/// counts; `--verbose` adds each test's steps and messages under its line.
#[test]
fn quiet_and_verbose_runs_print_less_and_more() {
    let quiet = zbx([
        "run",
        "scenarios/server-proxy/passive/data-ack.yaml",
        "--version",
        "6.0",
        "--quiet",
    ]);
    let out = String::from_utf8_lossy(&quiet.stdout);
    assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet));
    assert_eq!(out.trim_end().lines().count(), 1, "{out}");
    assert!(out.starts_with("1 passed, 0 failed"), "{out}");
    assert!(quiet.stderr.is_empty(), "{}", text(&quiet));

    let verbose = zbx([
        "run",
        "scenarios/server-proxy/passive/data-ack.yaml",
        "--version",
        "6.0",
        "--verbose",
        "--no-matrix",
    ]);
    let out = String::from_utf8_lossy(&verbose.stdout);
    assert_eq!(verbose.status.code(), Some(0), "{}", text(&verbose));
    assert!(
        out.contains("    PASS step 1 exchange \"configure a trapper item\""),
        "{out}"
    );
    assert!(out.contains(" → passive.proxy-config.request"), "{out}");
    assert!(
        out.contains(" ← passive.proxy-data.response  flags 0x03"),
        "{out}"
    );

    let both = zbx(["run", "--quiet", "--verbose"]);
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));
}

/// A scenario written for a real peer only, run without one, is skipped with a reason
/// that names the variable to set (here the certificate refusals' AGENT_ADDR).
#[test]
fn a_skip_for_a_missing_peer_names_the_address_variable() {
    let o = zbx([
        "run",
        "scenarios/tls-agent-cert/plaintext-refused.yaml",
        "--version",
        "6.0",
        "--no-matrix",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let skip = out
        .lines()
        .find(|l| l.starts_with("SKIP"))
        .unwrap_or_else(|| panic!("no SKIP line: {out}"));
    assert!(
        skip.ends_with(
            "needs a real peer: give --peer ADDR, --start-peer PROFILE or AGENT_ADDR=HOST:PORT"
        ),
        "{skip}"
    );
}

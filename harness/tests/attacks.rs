//! The attacks of a hostile peer on the harness, replayed against the built binary with
//! the harness listening in an `accept` step: each must fail its step cleanly (a clear
//! message, exit code 1 or 2, never an abort or a panic), stay within the memory budget
//! under a 3 GiB address-space limit, and leave no secret in any output.
//!
//! Peak memory is the child's own `ru_maxrss` (wait4), so the figures are the binary's
//! and not this test process's.

mod support;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The address-space limit the attacks run under.
const ADDRESS_SPACE: u64 = 3 << 30;

/// What a run of the binary left behind.
struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    out: String,
    peak_mib: u64,
}

/// Run the binary with `args` under the address-space limit, feeding `attack` to the
/// listen port once the harness listens; returns exit code, output and peak RSS.
fn run_attacked(args: &[String], port: u16, attack: impl FnOnce(u16) + Send + 'static) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zbx-conform"));
    cmd.args(args)
        .current_dir(support::root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit(2) in the child before exec, with a plain struct; no memory of
    // the parent is touched.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Reaped below with wait4(2), which also returns the child's own peak memory.
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().expect("binary starts");
    let pid = child.id() as libc::pid_t;
    let attacker = std::thread::spawn(move || attack(port));
    // Read the output while the child runs (a full pipe would block it).
    let mut stdout = child.stdout.expect("stdout");
    let mut stderr = child.stderr.expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let mut out = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
    out.push_str(&err_reader.join().unwrap_or_default());
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with valid pointers to locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 reaps the child");
    let _ = attacker.join();
    Outcome {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        out,
        peak_mib: usage.ru_maxrss as u64 / 1024,
    }
}

/// Connect to the harness's listener, retrying while it starts.
fn connect(port: u16) -> std::net::TcpStream {
    for _ in 0..200 {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the harness never listened on {port}");
}

/// A compressed frame whose payload is `chunks` × `chunk`, built without holding the
/// whole payload (a 1 GiB bomb costs this test a megabyte).
fn bomb(chunk: &[u8], chunks: usize) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..chunks {
        z.write_all(chunk).expect("compress");
    }
    let body = z.finish().expect("compress");
    let size = (chunk.len() * chunks) as u32;
    let mut frame = b"ZBXD\x03".to_vec();
    frame.extend((body.len() as u32).to_le_bytes());
    frame.extend(size.to_le_bytes());
    frame.extend(body);
    frame
}

/// A 64 MiB JSON array `[0,0,…,0]` in a ~65 KB frame.
fn json_bomb() -> Vec<u8> {
    let n = 32 << 20;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(b"[").expect("compress");
    let chunk = b"0,".repeat(4096);
    for _ in 0..(n - 1) / 4096 {
        z.write_all(&chunk).expect("compress");
    }
    let rest = (n - 1) % 4096;
    z.write_all(&b"0,".repeat(rest)).expect("compress");
    z.write_all(b"0]").expect("compress");
    let body = z.finish().expect("compress");
    let size = (2 * n + 1) as u32;
    let mut frame = b"ZBXD\x03".to_vec();
    frame.extend((body.len() as u32).to_le_bytes());
    frame.extend(size.to_le_bytes());
    frame.extend(body);
    frame
}

/// A one-step scenario: accept, expect an active `proxy data` request.
fn scenario(dir: &Path, others: &str) -> PathBuf {
    let p = dir.join(format!("accept-{others}.yaml"));
    std::fs::write(
        &p,
        format!(
            "name: hostile peer ({others})\nfamily: server-proxy\nversions: [\"6.0\"]\nplays: server\n\
             listen: 127.0.0.1:${{ATTACK_PORT}}\nsteps:\n  - accept:\n      others: {others}\n      \
             expect: {{ kind: active.proxy-data.request, within: 15s }}\n"
        ),
    )
    .expect("scenario");
    p
}

fn args(scenario: &Path, port: u16, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["run", "--no-matrix", "--var"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.push(format!("ATTACK_PORT={port}"));
    a.push(scenario.display().to_string());
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn port() -> u16 {
    zbx_conform::runner::peer::free_port().expect("a free port")
}

#[test]
fn a_json_bomb_fails_its_step_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path(), "fail");
    let p = port();
    let frame = json_bomb();
    assert!(frame.len() < 200_000, "the bomb is small on the wire");
    let r = run_attacked(&args(&s, p, &[]), p, move |port| {
        let mut c = connect(port);
        let _ = c.write_all(&frame);
        std::thread::sleep(Duration::from_secs(3));
    });
    assert_eq!(r.signal, None, "no abort:\n{}", r.out);
    assert_eq!(r.code, Some(1), "{}", r.out);
    assert!(
        r.out
            .contains("budget: expected a message that fits the memory budget"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("memory budget: 1 message(s) refused"),
        "{}",
        r.out
    );
    assert!(
        r.peak_mib < 512,
        "refused before parsing: peak {} MiB",
        r.peak_mib
    );
}

#[test]
fn a_zero_filled_gigabyte_bomb_costs_about_its_size_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path(), "fail");
    let p = port();
    let frame = bomb(&[0u8; 1 << 20], 1024);
    let r = run_attacked(&args(&s, p, &[]), p, move |port| {
        let mut c = connect(port);
        let _ = c.write_all(&frame);
        std::thread::sleep(Duration::from_secs(3));
    });
    assert_eq!(r.signal, None, "no abort:\n{}", r.out);
    assert_eq!(r.code, Some(1), "{}", r.out);
    assert!(
        r.out
            .contains("kind: expected a `active.proxy-data.request` message"),
        "{}",
        r.out
    );
    // The inflated gigabyte, once; no copy of it as text.
    assert!(r.peak_mib < 1024 + 256, "peak {} MiB", r.peak_mib);
}

#[test]
fn a_flood_of_bombs_while_skipping_is_refused_past_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path(), "skip");
    let p = port();
    let frame = bomb(&[0u8; 1 << 20], 256);
    let r = run_attacked(
        &args(&s, p, &["--memory-budget", "600MiB"]),
        p,
        move |port| {
            let conns: Vec<_> = (0..8)
                .map(|_| {
                    let mut c = connect(port);
                    let _ = c.write_all(&frame);
                    c
                })
                .collect();
            std::thread::sleep(Duration::from_secs(5));
            drop(conns);
        },
    );
    assert_eq!(r.signal, None, "no abort:\n{}", r.out);
    assert_eq!(r.code, Some(1), "{}", r.out);
    assert!(r.out.contains("message(s) refused"), "{}", r.out);
    assert!(
        r.peak_mib < 600 + 128,
        "within the 600 MiB budget plus the process: peak {} MiB",
        r.peak_mib
    );
}

/// A peer that answers every connection with `reply` (one frame), whatever it got.
fn answering(port: u16, reply: &'static str) -> std::thread::JoinHandle<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("listen");
    std::thread::spawn(move || {
        listener.set_nonblocking(false).ok();
        for conn in listener.incoming().take(8) {
            let Ok(mut c) = conn else { continue };
            c.set_read_timeout(Some(Duration::from_millis(300))).ok();
            let mut buf = [0u8; 65536];
            let _ = std::io::Read::read(&mut c, &mut buf);
            let mut frame = b"ZBXD\x01".to_vec();
            frame.extend((reply.len() as u32).to_le_bytes());
            frame.extend(0u32.to_le_bytes());
            frame.extend(reply.as_bytes());
            let _ = c.write_all(&frame);
        }
    })
}

/// A one-exchange scenario against the peer on `port`: the harness sends `send` and
/// expects `expect` (YAML flow mappings).
fn exchange_scenario(dir: &Path, name: &str, port: u16, send: &str, expect: &str) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &p,
        format!(
            "name: {name}\nfamily: server-proxy\nversions: [\"6.0\"]\nplays: server\n\
             peer: {{ address: \"127.0.0.1:{port}\" }}\nsteps:\n  - exchange:\n      \
             send: {send}\n      expect: {expect}\n"
        ),
    )
    .expect("scenario");
    p
}

#[test]
fn failing_matches_on_secret_fields_print_no_secret_anywhere() {
    const REPLY: &str = r#"{"tls_psk":"PSKSECRET0123456789abcdef","password":"PWSECRET-9876","items":[{"key":"k","username":"USERSECRET-55","password":"ITEMPWSECRET-77"}],"version":"6.0.14"}"#;
    let dir = tempfile::tempdir().unwrap();
    let p = port();
    let _peer = answering(p, REPLY);
    let s = exchange_scenario(
        dir.path(),
        "secrets-in-failing-matches",
        p,
        "{ json: { request: proxy tasks } }",
        r#"{ schema: false, match: { /tls_psk: "not it", password: { $regex: "^nope$" }, /items/0/password: "wrong" }, capture: { got_psk: /tls_psk } }"#,
    );
    let junit = dir.path().join("j.xml");
    let json = dir.path().join("r.json");
    let o = support::zbx([
        "run".as_ref(),
        "--no-matrix".as_ref(),
        "--version".as_ref(),
        "6.0".as_ref(),
        "--junit".as_ref(),
        junit.as_os_str(),
        "--json".as_ref(),
        json.as_os_str(),
        s.as_os_str(),
    ] as [&std::ffi::OsStr; 9]);
    let out = support::output_text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    // The failures are there (the test could fail), without the values.
    assert!(
        out.contains("/tls_psk") && out.contains("got \"[redacted]\""),
        "{out}"
    );
    let all = format!(
        "{out}{}{}",
        std::fs::read_to_string(&junit).unwrap(),
        std::fs::read_to_string(&json).unwrap()
    );
    for secret in ["PSKSECRET", "PWSECRET", "USERSECRET", "ITEMPWSECRET"] {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }
}

#[test]
fn names_built_from_variables_cannot_leave_the_data_root() {
    let dir = tempfile::tempdir().unwrap();
    let p = port();
    let _peer = answering(p, r#"{"version":"6.0.14","clock":1,"ns":2}"#);
    let run = |scenario: &Path, var: &str| {
        let o = support::zbx([
            "run".as_ref(),
            "--no-matrix".as_ref(),
            "--version".as_ref(),
            "6.0".as_ref(),
            "--var".as_ref(),
            std::ffi::OsStr::new(var),
            scenario.as_os_str(),
        ] as [&std::ffi::OsStr; 7]);
        (o.status.code(), support::output_text(&o))
    };
    let fixture = exchange_scenario(
        dir.path(),
        "fixture-from-a-variable",
        p,
        r#"{ fixture: "${FIX}" }"#,
        "{}",
    );
    let (code, out) = run(&fixture, "FIX=../../../../etc/hostname");
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("must be a plain fixture name"), "{out}");
    assert!(!out.contains(">>"), "nothing was sent: {out}");

    // A snapshot name from a variable is expanded, and checked.
    let snapshot = exchange_scenario(
        dir.path(),
        "snapshot-from-a-variable",
        p,
        "{ json: { request: proxy tasks } }",
        r#"{ snapshot: "${SNAP}" }"#,
    );
    let (code, out) = run(&snapshot, "SNAP=../../escape");
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("snapshot \"../../escape\""), "{out}");
    assert!(!support::root()
        .join("fixtures/server-proxy/escape.json.new")
        .exists());
}

//! Peak memory of checking one received message, against plain `serde_json` parsing the
//! same bytes, measured in the same run.
//!
//! Each measurement is a child process of this benchmark (so every peak is that child's
//! alone: `ru_maxrss` from `wait4`):
//! - baseline: read the JSON bytes, `serde_json::from_slice::<Value>` them (same crate
//!   features as the harness: `preserve_order`), keep both until exit;
//! - harness: the real receive path end to end — a one-step scenario (`accept`) run by
//!   `runner::run_jobs`, while a thread of the child sends the message compressed over
//!   TCP: frame, inflate, budget, parse, classify, schema, transcript, result;
//! - harness with the default budget, for the `[0,0,…]` array: refused before parsing.
//!
//! The target is a ratio of at most 1.5 (harness peak / baseline peak) wherever the
//! harness parses the message; the benchmark exits 1 when a ratio is above it.
//!
//! Run: `cargo bench --bench memory` (about 15 s once built; children need up to 1.5 GiB
//! each, one at a time).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most a harness peak may be, as a multiple of the baseline's.
const TARGET: f64 = 1.5;
/// History rows of the `proxy data` message (about 64 MiB of JSON).
const ROWS: u64 = 750_000;
/// Elements of the `[0,0,…]` array (32 MiB of JSON).
const ZEROS: usize = 16 << 20;
/// A budget large enough that every message here is accepted, so it is really parsed.
const LARGE_BUDGET: u64 = 8 << 30;

// ---------------------------------------------------------------------------------
// Inputs.

/// An active `proxy data` message in the 6.0 key order (request, host, session, history
/// data, version, clock, ns), like `decode_validate`'s, written directly as bytes.
fn proxy_data(rows: u64) -> Vec<u8> {
    let clock0: u64 = 1_700_000_000;
    let mut out = Vec::with_capacity(rows as usize * 110 + 256);
    out.extend_from_slice(
        br#"{"request":"proxy data","host":"proxy-bench","session":"0123456789abcdef0123456789abcdef","history data":["#,
    );
    for n in 0..rows {
        if n > 0 {
            out.push(b',');
        }
        let value = match n % 4 {
            0 => format!("{}", n * 7 % 1000),
            1 => format!("{}.{:03}", n % 100, n % 997),
            2 => format!("eth0 rx errors: {}", n % 13),
            _ => format!("[{}] service check OK (latency {} ms)", n % 31, n % 250),
        };
        write!(
            out,
            r#"{{"id":{},"itemid":{},"clock":{},"ns":{},"value":"{}"}}"#,
            n + 1,
            10_000 + n % 500,
            clock0 + n / 100,
            (n * 7_919_317) % 1_000_000_000,
            value
        )
        .expect("writing to a Vec");
    }
    write!(
        out,
        r#"],"version":"6.0.14","clock":{},"ns":123456789}}"#,
        clock0 + rows / 100
    )
    .expect("writing to a Vec");
    out
}

/// `[0,0,…,0]` with `n` elements.
fn zero_array(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 * n + 1);
    v.push(b'[');
    for i in 0..n {
        if i > 0 {
            v.push(b',');
        }
        v.push(b'0');
    }
    v.push(b']');
    v
}

// ---------------------------------------------------------------------------------
// Children.

/// Baseline: parse the JSON with plain serde_json, keep bytes and values until exit.
fn child_baseline(json: &Path) -> String {
    let bytes = std::fs::read(json).expect("input");
    let value: serde_json::Value = serde_json::from_slice(&bytes).expect("valid JSON");
    let summary = match &value {
        serde_json::Value::Object(m) => format!("object of {} members", m.len()),
        serde_json::Value::Array(a) => format!("array of {} elements", a.len()),
        _ => "scalar".into(),
    };
    std::hint::black_box((&bytes, &value));
    format!("parsed: {summary}")
}

/// The harness: one `accept` step expecting `kind` at 6.0, with a thread of this
/// process sending `frame` (the compressed message as on the wire).
fn child_harness(frame: &Path, kind: &str, budget: u64) -> String {
    use zbx_conform::catalog::Catalog;
    use zbx_conform::runner::{self, Outcome, RunOptions};

    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let frame = Arc::new(std::fs::read(frame).expect("frame"));
    let dir = std::env::temp_dir().join(format!("zbx-conform-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scenario dir");
    let file = dir.join("memory.yaml");
    let catalog = Arc::new(Catalog::load(&root).expect("catalog"));
    let mut planned = None;
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let yaml = format!(
            r#"
name: memory of one received message
family: server-proxy
versions: ["6.0"]
plays: server
listen: 127.0.0.1:{port}
steps:
  - accept:
      expect: {{ kind: {kind} }}
      reply: {{ json: {{ response: success }} }}
"#
        );
        std::fs::write(&file, yaml).expect("scenario");
        let opts = RunOptions {
            paths: vec![file.clone()],
            jobs: 1,
            timeout: Duration::from_secs(120),
            memory_budget: budget,
            ..RunOptions::default()
        };
        if let Ok(jobs) = runner::plan(&catalog, &opts) {
            planned = Some((port, opts, jobs));
            break;
        }
    }
    let (port, opts, jobs) = planned.expect("a port to listen on");
    let sender = {
        let frame = frame.clone();
        std::thread::spawn(move || {
            let mut s = loop {
                match std::net::TcpStream::connect(("127.0.0.1", port)) {
                    Ok(s) => break s,
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            };
            let _ = s.write_all(&frame);
            // Read the reply (if any) until the harness closes.
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        })
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let result = rt.block_on(runner::run_jobs(catalog, jobs, &opts, |_| {}));
    let _ = sender.join();
    let _ = std::fs::remove_dir_all(&dir);
    let s = &result.scenarios[0];
    let mut checks: Vec<&str> = s.failures().map(|(_, f)| f.check.as_str()).collect();
    checks.dedup();
    let outcome = match &s.outcome {
        Outcome::Passed => "passed".to_string(),
        Outcome::Failed => format!("failed [{}]", checks.join(", ")),
        other => format!("{other:?}"),
    };
    let m = result.memory.expect("budget report");
    format!(
        "{outcome}; budget peak {} MiB, refused {}",
        m.peak >> 20,
        m.refused
    )
}

// ---------------------------------------------------------------------------------
// The parent.

/// Run this benchmark as a child with `args`; its peak RSS in bytes and what it printed.
/// The child is reaped by `wait4` (for its rusage), which `Child` does not know of.
#[allow(clippy::zombie_processes)]
fn measure(args: &[&str]) -> (u64, String) {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .arg("--child")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn a child");
    let mut said = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut said)
        .expect("child output");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for this child alone.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child {args:?} failed (status {status}): {said}"
    );
    // Linux reports ru_maxrss in KiB.
    (usage.ru_maxrss as u64 * 1024, said.trim().to_string())
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

struct Row {
    input: &'static str,
    json_bytes: usize,
    wire_bytes: usize,
    json: PathBuf,
    frame: PathBuf,
    /// (what the harness expects, budget, whether it must parse the message)
    runs: Vec<(&'static str, u64, bool)>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let said = match args.get(1).map(String::as_str) {
            Some("baseline") => child_baseline(Path::new(&args[2])),
            Some("harness") => child_harness(
                Path::new(&args[2]),
                &args[3],
                args[4].parse().expect("budget"),
            ),
            other => panic!("unknown child mode {other:?}"),
        };
        println!("{said}");
        return;
    }

    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rows = Vec::new();
    let default_budget = zbx_conform::frame::budget::DEFAULT_BUDGET;
    for (input, bytes, runs) in [
        (
            "proxy data (active, 6.0)",
            proxy_data(ROWS),
            vec![
                ("active.proxy-data.request", LARGE_BUDGET, true),
                ("active.proxy-heartbeat.request", LARGE_BUDGET, true),
            ],
        ),
        (
            "[0,0,…] array",
            zero_array(ZEROS),
            vec![
                ("active.proxy-heartbeat.request", LARGE_BUDGET, true),
                ("active.proxy-heartbeat.request", default_budget, false),
            ],
        ),
    ] {
        let frame = zbx_conform::frame::encode_frame(
            &bytes,
            &zbx_conform::frame::FrameOptions::compressed(),
        );
        let n = rows.len();
        let json = dir.path().join(format!("input-{n}.json"));
        let frame_file = dir.path().join(format!("input-{n}.zbxd"));
        std::fs::write(&json, &bytes).expect("write input");
        std::fs::write(&frame_file, &frame).expect("write frame");
        rows.push(Row {
            input,
            json_bytes: bytes.len(),
            wire_bytes: frame.len(),
            json,
            frame: frame_file,
            runs,
        });
    }

    println!("memory: peak RSS of one received message checked by the harness vs plain serde_json::from_slice");
    println!(
        "{:<26} {:>9} {:>9} {:<32} {:>9} {:>12} {:>12} {:>7}",
        "input",
        "JSON MiB",
        "wire MiB",
        "harness expects",
        "budget",
        "baseline MiB",
        "harness MiB",
        "ratio"
    );
    let mut over = Vec::new();
    let mut wrong = Vec::new();
    for row in &rows {
        let (baseline, said) = measure(&["baseline", row.json.to_str().expect("utf-8 path")]);
        for (kind, budget, parses) in &row.runs {
            let (peak, outcome) = measure(&[
                "harness",
                row.frame.to_str().expect("utf-8 path"),
                kind,
                &budget.to_string(),
            ]);
            let ratio = peak as f64 / baseline as f64;
            let budget_label = if *budget == default_budget {
                "default".to_string()
            } else {
                format!("{} GiB", budget >> 30)
            };
            println!(
                "{:<26} {:>9.1} {:>9.2} {:<32} {:>9} {:>12.0} {:>12.0} {:>6.2}x",
                row.input,
                mib(row.json_bytes as u64),
                mib(row.wire_bytes as u64),
                kind,
                budget_label,
                mib(baseline),
                mib(peak),
                ratio
            );
            println!("    baseline: {said}; harness: {outcome}");
            let refused = outcome.contains("[budget]");
            if *parses && refused {
                wrong.push(format!(
                    "{}: refused although the budget is {budget_label}",
                    row.input
                ));
            }
            if !*parses && !refused {
                wrong.push(format!(
                    "{}: not refused by the {budget_label} budget",
                    row.input
                ));
            }
            if *parses && ratio > TARGET {
                over.push(format!("{} ({kind}): {ratio:.2}x", row.input));
            }
        }
    }
    println!(
        "interpretation: where the harness parses the message it needs at most {TARGET}x the memory plain serde_json needs for the same bytes (the target);"
    );
    println!(
        "  with the default budget the [0,0,…] array is refused before parsing, so its peak is a fraction of the baseline's. ({:.0?})",
        started.elapsed()
    );
    if !wrong.is_empty() || !over.is_empty() {
        for w in &wrong {
            println!("UNEXPECTED: {w}");
        }
        for o in &over {
            println!("OVER TARGET: {o}");
        }
        std::process::exit(1);
    }
}

//! The runner's receive path against hostile peers. A fake peer (a tokio listener in this
//! test, on 127.0.0.1) answers an `exchange` step with silence, a byte-by-byte dribble,
//! a close mid-frame, a huge declared length, a zlib bomb, garbage, an endless stream...;
//! and hostile clients connect to the harness's own listener during an `accept` step.
//! Each case must end with a result — passed, or failed with the precise check kind —
//! within the step's `within` plus a little slack, without a panic, and with the memory
//! it allocated bounded (measured with a counting global allocator).

mod alloc_support;

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zbx_conform::catalog::Catalog;
use zbx_conform::frame::{encode_frame, zlib_compress, FrameOptions};
use zbx_conform::runner::{self, CheckKind, Outcome, RunOptions, ScenarioResult};

// ---------------------------------------------------------------------------------
// Memory: live and peak bytes over all threads (the runner uses a multi-thread runtime).

#[global_allocator]
static ALLOC: alloc_support::Counting = alloc_support::Counting;

/// Cases run one at a time so that the peak measured belongs to one case.
static SERIAL: Mutex<()> = Mutex::new(());

/// What a single hostile case may allocate at most: the harness's frame limit is 1 GiB,
/// but nothing here declares more than 8 MiB of real data, so the buffers must stay near
/// that (read buffer + frame + leftover + JSON + transcript).
const MEMORY_BOUND: isize = 48 << 20;

/// `within` of every step below, and the slack we allow on top of it.
const WITHIN: Duration = Duration::from_secs(2);
const SLACK: Duration = Duration::from_millis(1500);

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn fixture(name: &str) -> Vec<u8> {
    let p = root().join(format!("fixtures/server-proxy/6.0/{name}.json"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).expect("fixture")).expect("json");
    serde_json::to_vec(&v).expect("encode")
}

/// Run one scenario (YAML text) with `peer` as `--peer`, while `hostile` plays the other
/// side. Returns the result, how long the run took, and the peak extra allocation.
fn run_case<F, Fut>(
    yaml: &str,
    peer: Option<String>,
    hostile: F,
) -> (ScenarioResult, Duration, isize)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hostile.yaml");
    std::fs::write(&file, yaml).expect("write scenario");
    let catalog = Arc::new(Catalog::load(&root()).expect("catalog"));
    let opts = RunOptions {
        paths: vec![file],
        peer,
        jobs: 1,
        timeout: WITHIN,
        ..RunOptions::default()
    };
    let jobs = runner::plan(&catalog, &opts).expect("scenario loads");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let base = alloc_support::start_peak();
    let start = Instant::now();
    let mut result = rt.block_on(async {
        let task = tokio::spawn(hostile());
        let r = runner::run_jobs(catalog, jobs, &opts, |_| {}).await;
        task.abort();
        r
    });
    let took = start.elapsed();
    let peak = alloc_support::peak_since(base);
    rt.shutdown_timeout(Duration::from_secs(1));
    assert_eq!(result.scenarios.len(), 1);
    (result.scenarios.remove(0), took, peak)
}

fn describe(r: &ScenarioResult) -> String {
    let mut s = format!("{:?}\n", r.outcome);
    for (step, f) in r.failures() {
        s.push_str(&format!(
            "  step {}: [{}] expected {} — {}\n",
            step.index,
            f.check.as_str(),
            f.expected,
            f.detail
        ));
    }
    s
}

/// Assert the scenario failed with a failure of `check` whose detail contains `detail`.
fn assert_failed(case: &str, r: &ScenarioResult, check: CheckKind, detail: &str) {
    assert_eq!(r.outcome, Outcome::Failed, "{case}: {}", describe(r));
    assert!(
        r.failures()
            .any(|(_, f)| f.check == check && f.detail.contains(detail)),
        "{case}: no [{}] failure mentioning {detail:?}:\n{}",
        check.as_str(),
        describe(r)
    );
}

fn assert_bounded(case: &str, took: Duration, peak: isize) {
    assert!(took < WITHIN + SLACK, "{case}: took {took:?}");
    assert!(
        peak < MEMORY_BOUND,
        "{case}: allocated up to {} MiB",
        peak >> 20
    );
    eprintln!("{case}: {took:?}, peak extra allocation {} KiB", peak >> 10);
}

// ---------------------------------------------------------------------------------
// exchange: the harness connects to a hostile peer.

const EXCHANGE: &str = r#"
name: hostile peer
family: server-proxy
versions: ["6.0"]
plays: server
steps:
  - exchange:
      send: { json: { request: proxy tasks } }
      expect: { kind: passive.proxy-tasks.response, within: 2s }
"#;

/// A fake peer: accept one connection, read the request, then `act`.
async fn fake_peer<F, Fut>(act: F) -> (String, tokio::task::JoinHandle<()>)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let h = tokio::spawn(async move {
        if let Ok((mut s, _)) = l.accept().await {
            let mut buf = [0u8; 256];
            let _ = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
            act(s).await;
        }
    });
    (addr, h)
}

/// Run the exchange scenario against a fake peer that does `act`.
fn exchange_case<F, Fut>(case: &str, act: F) -> (ScenarioResult, Duration, isize)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Bind first (outside the measured run) so the address is known.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (addr, handle) = rt.block_on(fake_peer(act));
    // Move the listener task's runtime along with the run: keep `rt` alive meanwhile.
    let out = run_case(EXCHANGE, Some(addr), || async {});
    handle.abort();
    rt.shutdown_timeout(Duration::from_secs(1));
    let (r, took, peak) = out;
    assert_bounded(case, took, peak);
    (r, took, peak)
}

fn hold(d: Duration) -> impl Future<Output = ()> {
    tokio::time::sleep(d)
}

async fn dribble(mut s: TcpStream, bytes: Vec<u8>, gap: Duration) {
    for b in bytes {
        if s.write_all(&[b]).await.is_err() {
            return;
        }
        tokio::time::sleep(gap).await;
    }
    hold(Duration::from_secs(5)).await;
}

#[test]
fn exchange_silent_peer_times_out() {
    let (r, took, _) = exchange_case("silence", |s| async move {
        hold(Duration::from_secs(10)).await;
        drop(s);
    });
    assert_failed("silence", &r, CheckKind::Timeout, "waiting for a frame");
    assert!(took >= WITHIN, "gave up early: {took:?}");
}

#[test]
fn exchange_dribbled_valid_frame_passes() {
    let frame = encode_frame(
        &fixture("passive.proxy-tasks.response"),
        &FrameOptions::compressed(),
    );
    let (r, _, _) = exchange_case("dribble", move |s| {
        dribble(s, frame, Duration::from_millis(3))
    });
    assert_eq!(r.outcome, Outcome::Passed, "{}", describe(&r));
}

#[test]
fn exchange_too_slow_dribble_times_out_mid_frame() {
    let frame = encode_frame(
        &fixture("passive.proxy-tasks.response"),
        &FrameOptions::plain(),
    );
    let (r, _, _) = exchange_case("slow dribble", move |s| {
        dribble(s, frame, Duration::from_millis(150))
    });
    assert_failed(
        "slow dribble",
        &r,
        CheckKind::Timeout,
        "the rest of a frame",
    );
}

#[test]
fn exchange_close_mid_frame_is_a_frame_failure() {
    let frame = encode_frame(
        &fixture("passive.proxy-tasks.response"),
        &FrameOptions::plain(),
    );
    let (r, _, _) = exchange_case("close mid-frame", move |mut s| async move {
        let _ = s.write_all(&frame[..frame.len() / 2]).await;
        let _ = s.shutdown().await;
    });
    assert_failed(
        "close mid-frame",
        &r,
        CheckKind::Frame,
        "connection closed after",
    );
}

#[test]
fn exchange_close_inside_header_is_a_frame_failure() {
    let (r, _, _) = exchange_case("close in header", |mut s| async move {
        let _ = s.write_all(b"ZBXD\x01\x10\x00").await;
        let _ = s.shutdown().await;
    });
    assert_failed("close in header", &r, CheckKind::Frame, "length fields");
}

#[test]
fn exchange_close_without_reply_is_a_close_failure() {
    let (r, _, _) = exchange_case("close", |s| async move { drop(s) });
    assert_eq!(r.outcome, Outcome::Failed, "{}", describe(&r));
    assert!(
        r.failures()
            .any(|(_, f)| matches!(f.check, CheckKind::Close | CheckKind::Connect)),
        "{}",
        describe(&r)
    );
}

#[test]
fn exchange_huge_declared_length_is_refused_from_the_header() {
    let (r, took, _) = exchange_case("huge length", |mut s| async move {
        let _ = s
            .write_all(b"ZBXD\x01\xff\xff\xff\xff\x00\x00\x00\x00{\"response\"")
            .await;
        hold(Duration::from_secs(10)).await;
    });
    assert_failed("huge length", &r, CheckKind::Frame, "exceeds the maximum");
    assert!(
        took < WITHIN,
        "waited for a payload it should refuse: {took:?}"
    );
    let (r, _, _) = exchange_case("huge large length", |mut s| async move {
        let mut f = b"ZBXD\x05".to_vec();
        f.extend(u64::MAX.to_le_bytes());
        f.extend(0u64.to_le_bytes());
        let _ = s.write_all(&f).await;
        hold(Duration::from_secs(10)).await;
    });
    assert_failed(
        "huge large length",
        &r,
        CheckKind::Frame,
        "exceeds the maximum",
    );
}

#[test]
fn exchange_zlib_bomb_is_stopped_at_the_declared_size() {
    // 64 MiB of zeros compress to ~64 KiB; the header claims 1000 bytes uncompressed.
    let bomb = zlib_compress(&vec![0u8; 64 << 20]);
    let mut frame = b"ZBXD\x03".to_vec();
    frame.extend((bomb.len() as u32).to_le_bytes());
    frame.extend(1000u32.to_le_bytes());
    frame.extend(&bomb);
    let (r, _, peak) = exchange_case("zlib bomb", move |mut s| async move {
        let _ = s.write_all(&frame).await;
        hold(Duration::from_secs(5)).await;
    });
    assert_failed("zlib bomb", &r, CheckKind::Frame, "longer than");
    assert!(peak < 8 << 20, "zlib bomb cost {} KiB", peak >> 10);
}

#[test]
fn exchange_garbage_is_a_frame_failure() {
    let (r, took, _) = exchange_case("garbage", |mut s| async move {
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        hold(Duration::from_secs(10)).await;
    });
    assert_failed("garbage", &r, CheckKind::Frame, "bad magic");
    assert!(took < WITHIN, "garbage should be refused at once: {took:?}");
}

/// Write `x` forever (until the harness closes).
async fn endless(mut s: TcpStream, prefix: Vec<u8>) {
    if s.write_all(&prefix).await.is_err() {
        return;
    }
    let chunk = vec![b'x'; 64 << 10];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if s.write_all(&chunk).await.is_err() {
            return;
        }
    }
}

#[test]
fn exchange_endless_stream_after_a_header_is_bounded_by_the_declared_length() {
    // A header declaring 8 MiB, then an endless stream: the harness reads 8 MiB (plus
    // what one read returns), reports the frame and the bytes after it, and stops.
    let mut header = b"ZBXD\x01".to_vec();
    header.extend((8u32 << 20).to_le_bytes());
    header.extend(0u32.to_le_bytes());
    let (r, _, peak) = exchange_case("endless stream", move |s| endless(s, header));
    assert_failed(
        "endless stream",
        &r,
        CheckKind::Frame,
        "unexpected bytes after the frame",
    );
    assert!(
        peak > 8 << 20,
        "the 8 MiB payload was not even read ({peak})"
    );
}

#[test]
fn exchange_endless_garbage_is_refused_at_once() {
    let (r, took, _) = exchange_case("endless garbage", |s| endless(s, Vec::new()));
    assert_failed("endless garbage", &r, CheckKind::Frame, "bad magic");
    assert!(took < WITHIN, "{took:?}");
}

#[test]
fn exchange_valid_frame_plus_trailing_garbage_is_a_frame_failure() {
    let opts = FrameOptions {
        trailing: b"\0garbage".to_vec(),
        ..FrameOptions::compressed()
    };
    let frame = encode_frame(&fixture("passive.proxy-tasks.response"), &opts);
    let (r, _, _) = exchange_case("trailing", move |mut s| async move {
        let _ = s.write_all(&frame).await;
        hold(Duration::from_secs(5)).await;
    });
    assert_failed(
        "trailing",
        &r,
        CheckKind::Frame,
        "unexpected bytes after the frame",
    );
}

/// `closes: true` against a peer that streams forever: the wait is bounded in time and
/// in what is kept (64 KiB).
#[test]
fn expect_close_against_an_endless_stream_is_bounded() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (addr, handle) = rt.block_on(fake_peer(|s| endless(s, Vec::new())));
    let yaml = r#"
name: hostile peer does not close
family: server-proxy
versions: ["6.0"]
plays: server
steps:
  - exchange:
      send: { json: { request: no such request } }
      expect: { closes: true, within: 2s }
"#;
    let (r, took, peak) = run_case(yaml, Some(addr), || async {});
    handle.abort();
    rt.shutdown_timeout(Duration::from_secs(1));
    assert_bounded("closes vs endless", took, peak);
    assert_failed(
        "closes vs endless",
        &r,
        CheckKind::Close,
        "bytes before closing",
    );
}

// ---------------------------------------------------------------------------------
// accept: hostile clients connect to the harness's listener.

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn accept_yaml(port: u16, others: &str) -> String {
    format!(
        r#"
name: hostile clients
family: server-proxy
versions: ["6.0"]
plays: server
listen: 127.0.0.1:{port}
steps:
  - accept:
      others: {others}
      expect: {{ kind: active.proxy-heartbeat.request, within: 2s }}
      reply: {{ json: {{ response: success }} }}
"#
    )
}

/// Connect to the harness's listener, retrying until it is bound.
async fn connect(port: u16) -> Option<TcpStream> {
    for _ in 0..200 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)).await {
            return Some(s);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

fn heartbeat() -> Vec<u8> {
    encode_frame(
        &fixture("active.proxy-heartbeat.request"),
        &FrameOptions::compressed(),
    )
}

fn accept_case<F, Fut>(case: &str, others: &str, client: F) -> ScenarioResult
where
    F: FnOnce(u16) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let port = free_port();
    let (r, took, peak) = run_case(&accept_yaml(port, others), None, || client(port));
    assert_bounded(case, took, peak);
    r
}

#[test]
fn accept_silent_client_times_out_within() {
    let r = accept_case("accept silent", "fail", |port| async move {
        let _s = connect(port).await;
        hold(Duration::from_secs(10)).await;
    });
    assert_failed(
        "accept silent",
        &r,
        CheckKind::Timeout,
        "waiting for a frame",
    );
}

#[test]
fn accept_dribbled_heartbeat_passes() {
    let r = accept_case("accept dribble", "fail", |port| async move {
        if let Some(s) = connect(port).await {
            dribble(s, heartbeat(), Duration::from_millis(2)).await;
        }
    });
    assert_eq!(r.outcome, Outcome::Passed, "{}", describe(&r));
}

#[test]
fn accept_close_mid_frame_fails_with_frame() {
    let r = accept_case("accept mid-frame", "fail", |port| async move {
        if let Some(mut s) = connect(port).await {
            let hb = heartbeat();
            let _ = s.write_all(&hb[..hb.len() / 2]).await;
            let _ = s.shutdown().await;
            hold(Duration::from_secs(5)).await;
        }
    });
    assert_failed(
        "accept mid-frame",
        &r,
        CheckKind::Frame,
        "connection closed after",
    );
}

#[test]
fn accept_connect_and_close_fails_with_close() {
    let r = accept_case("accept close", "fail", |port| async move {
        drop(connect(port).await);
        hold(Duration::from_secs(5)).await;
    });
    assert_failed(
        "accept close",
        &r,
        CheckKind::Close,
        "closed the connection without replying",
    );
}

#[test]
fn accept_skip_passes_over_a_broken_client_to_a_good_one() {
    let r = accept_case("accept skip broken", "skip", |port| async move {
        if let Some(mut s) = connect(port).await {
            let _ = s.write_all(b"ZBXD\x01\x40\x00").await;
            drop(s);
        }
        if let Some(mut s) = connect(port).await {
            let _ = s.write_all(&heartbeat()).await;
            hold(Duration::from_secs(5)).await;
        }
    });
    assert_eq!(r.outcome, Outcome::Passed, "{}", describe(&r));
}

#[test]
fn accept_skip_with_only_broken_clients_times_out_and_counts_them() {
    let r = accept_case("accept skip all broken", "skip", |port| async move {
        for _ in 0..20 {
            if let Some(mut s) = connect(port).await {
                let _ = s.write_all(b"garbage").await;
            }
        }
        hold(Duration::from_secs(5)).await;
    });
    assert_failed(
        "accept skip all broken",
        &r,
        CheckKind::Timeout,
        "other connections were skipped",
    );
}

/// With `others: skip` every connection is read in parallel: a client that connects and
/// says nothing must not hold up the peer's real request.
#[test]
fn accept_skip_silent_client_does_not_block_a_good_one() {
    let r = accept_case("accept skip silent", "skip", |port| async move {
        let _silent = connect(port).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(mut s) = connect(port).await {
            let _ = s.write_all(&heartbeat()).await;
            hold(Duration::from_secs(5)).await;
        }
    });
    assert_eq!(r.outcome, Outcome::Passed, "{}", describe(&r));
}

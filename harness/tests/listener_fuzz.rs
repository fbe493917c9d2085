//! A bounded fuzz target for the listener: random and adversarial byte streams sent over
//! real TCP connections to an `accept` step, run through the library (`runner::plan` and
//! `runner::run_jobs`) with a small memory budget.
//!
//! Each generated case is one scenario run: an `accept` step expecting an active
//! `proxy heartbeat` (with `others: fail` or `others: skip`) on a port the test picks,
//! while a client task opens one to four connections and writes a stream to each: fully
//! random bytes, ZBXD headers with random, huge or inconsistent lengths and flags,
//! compressed frames whose zlib stream inflates far beyond the budget (zeros, and JSON
//! `[0,0,…]`), payloads that are not UTF-8, JSON nested past serde_json's limit or made
//! of many small maps, truncated streams, trailing bytes, several frames on one
//! connection, and valid messages of the expected kind and of another kind (so some
//! cases pass). Writes may be split and slow; a connection may be silent, closed early
//! or reset.
//!
//! Per case it asserts:
//! - the run returns within the step timeout plus [`MARGIN`] (no hang);
//! - nothing panicked, in any thread (a panic hook counts them), and the scenario result
//!   exists;
//! - every scenario and step outcome is Passed or Failed: peer input is never an Error;
//! - the budget report shows `peak <= limit`, and what the run allocated (a counting
//!   global allocator) follows what the budget counted ([`case_bound`]);
//! - a case in which no connection the step may take carries a heartbeat fails, and a
//!   case with a clean heartbeat (one whole frame on a connection left open, nothing
//!   else that could crowd the budget) passes — so the target can tell a harness that
//!   refuses everything from one that checks.
//!
//! Over the whole property run the process's peak RSS (VmHWM) may grow by at most
//! [`rss_growth_bound`].
//!
//! Cases: 64 by default (about 15 seconds); `LISTENER_FUZZ_CASES=N` sets another
//! fixed count (CI runs a larger one in its bounded fuzz step).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
mod alloc_support;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;
use zbx_conform::catalog::Catalog;
use zbx_conform::frame::{encode_frame, FrameOptions, ZbxdCodec};
use zbx_conform::runner::{self, Outcome, RunOptions, RunResult, ScenarioResult};

// ---------------------------------------------------------------------------------
// Limits of the run under test.

/// `--memory-budget` of every run: small, so that the budget is what refuses big frames.
const BUDGET: u64 = 8 << 20;
/// `--max-frame`: above the budget, so both the frame limit (declared sizes over 16 MiB)
/// and the budget (8–16 MiB, or a frame that grows past it when parsed) refuse frames.
const MAX_FRAME: u64 = 16 << 20;
/// Step timeout of cases that may fail: many of them wait it out (silence, a truncated
/// frame, `others: skip` with nothing good), so it is short.
const SHORT_TIMEOUT: Duration = Duration::from_millis(500);
/// Step timeout of cases that must pass: generous for a loaded machine, and free, since
/// such a case ends as soon as the heartbeat is checked.
const LONG_TIMEOUT: Duration = Duration::from_secs(4);
/// What a run may take beyond its step timeout: binding, compiling the schema, inflating
/// and refusing up to 8 MiB in a debug build. A run past timeout + margin is a hang.
const MARGIN: Duration = Duration::from_secs(3);
/// Most delay a client may put between writes in a case that must pass (all gaps added).
const MUST_PASS_DELAY: Duration = Duration::from_millis(400);

/// What one case may allocate at most while the run goes on (all threads, peak of live
/// bytes), given the most its budget held at once (`held`, at most the limit) and the
/// number of connections.
///
/// The budget counts what received messages hold (frame bytes, inflated bytes, parsed
/// values), so real allocations must follow it, not just stay under its limit: a
/// message that holds memory the budget does not see shows up here even far below the
/// limit. Twice `held`, because growing vectors (the read buffer, the inflate buffer,
/// JSON arrays and maps) hold up to twice what they use and a reallocation briefly
/// holds the old block and the new one; 64 KiB per connection for a read buffer that
/// has no frame yet and its task; 2 MiB for what does not depend on the input (the
/// compiled schema, the transcript, the result).
fn case_bound(held: u64, connections: usize) -> isize {
    (2 * held + connections as u64 * (64 << 10) + (2 << 20)) as isize
}

/// Growth of the process's peak RSS over the whole property run. Above the per-case
/// bound (at most 2 × budget + 2.25 MiB) come what the allocator keeps after freeing (glibc
/// arenas of the runtimes' worker threads hold freed memory for reuse, so peaks of
/// different threads add up: × 2 more), the client streams the test itself holds (up
/// to 6 MiB of `[0,0,…]` at once, written from memory), the compressed bombs (a few
/// hundred KiB, built once) and thread stacks: budget × 4 + 64 MiB.
fn rss_growth_bound() -> u64 {
    BUDGET * 4 + (64 << 20)
}

// ---------------------------------------------------------------------------------
// Memory and panics, counted over all threads.

#[global_allocator]
static ALLOC: alloc_support::Counting = alloc_support::Counting;

/// Panics seen in any thread since the hook was installed (tokio catches a spawned
/// task's panic, so a reader task of `others: skip` could panic unseen otherwise).
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info)
        }));
    });
}

/// Cases run one at a time (in this binary too), so that a peak belongs to one case.
static SERIAL: Mutex<()> = Mutex::new(());

/// This process's peak resident set (VmHWM), in bytes.
fn vm_hwm() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Reset VmHWM to the current RSS (Linux ≥ 4.0), so that what earlier tests in this
/// process peaked at does not hide this run's growth. Returns whether it worked.
fn reset_hwm() -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/clear_refs")
        .and_then(|mut f| f.write_all(b"5"))
        .is_ok()
}

// ---------------------------------------------------------------------------------
// Inputs.

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

/// The message the step expects.
fn heartbeat() -> &'static [u8] {
    static H: OnceLock<Vec<u8>> = OnceLock::new();
    H.get_or_init(|| fixture("active.proxy-heartbeat.request"))
}

/// A valid message of another kind (skipped by `others: skip`).
fn proxy_data() -> &'static [u8] {
    static D: OnceLock<Vec<u8>> = OnceLock::new();
    D.get_or_init(|| fixture("active.proxy-data.request"))
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

/// Compress `total` bytes made by repeating `unit` after `head` and before `tail`,
/// streaming, so the inflated size is never held in memory here.
fn zlib_stream(head: &[u8], unit: &[u8], total: usize, tail: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(head).expect("to a Vec");
    let chunk: Vec<u8> = unit.iter().copied().cycle().take(64 << 10).collect();
    let mut left = total - head.len() - tail.len();
    while left > 0 {
        let n = left.min(chunk.len());
        enc.write_all(&chunk[..n]).expect("to a Vec");
        left -= n;
    }
    enc.write_all(tail).expect("to a Vec");
    enc.finish().expect("to a Vec")
}

/// A zlib bomb: a small stream that inflates to `inflated` bytes.
#[derive(Debug, Clone, Copy)]
enum Bomb {
    /// 64 MiB of zero bytes (text once inflated).
    Zeros64M,
    /// 32 MiB of `[0,0,…]`: a few KiB on the wire, some 2 GiB of JSON values parsed.
    ZeroArray32M,
    /// 6 MiB of `[0,0,…]`: fits the budget as bytes, not once parsed.
    ZeroArray6M,
}

impl Bomb {
    fn inflated(self) -> u64 {
        match self {
            Bomb::Zeros64M => 64 << 20,
            Bomb::ZeroArray32M => 32 << 20,
            Bomb::ZeroArray6M => 6 << 20,
        }
    }

    /// The compressed stream (built once per process: a debug build compresses slowly).
    fn stream(self) -> &'static [u8] {
        static S: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
        let all = S.get_or_init(|| {
            let array = |n: u64| zlib_stream(b"[0", b",0", n as usize - 1, b"]");
            [
                zlib_stream(b"", b"\0", Bomb::Zeros64M.inflated() as usize, b""),
                array(Bomb::ZeroArray32M.inflated()),
                array(Bomb::ZeroArray6M.inflated()),
            ]
        });
        &all[self as usize]
    }
}

/// What a compressed bomb frame declares as its uncompressed size.
#[derive(Debug, Clone, Copy)]
enum Declared {
    /// The real inflated size.
    Honest,
    /// Far less (the stream is longer than declared).
    Small(u32),
    /// Just fits the budget with the frame's wire bytes.
    FitsBudget,
    /// The frame limit itself.
    MaxFrame,
    /// Any 64-bit value (needs the 0x04 flag to be written whole).
    Any(u64),
}

/// A body placed in a frame.
#[derive(Debug, Clone)]
enum Payload {
    Heartbeat,
    ProxyData,
    Random(Vec<u8>),
    /// `n` zero bytes.
    Zeros(usize),
    /// `[0,0,…]` with `n` elements.
    ZeroArray(usize),
    /// A JSON text cut short.
    CutJson(prop::sample::Index),
    /// `n` bytes that are not UTF-8 (each becomes a 3-byte U+FFFD in a text body).
    NotUtf8(usize),
    /// JSON nested `n` deep (serde_json refuses more than 128 levels).
    Nested(usize),
    /// `[{"a":[0]},…]` with `n` elements: many small maps and vectors per byte.
    SmallMaps(usize),
}

impl Payload {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Payload::Heartbeat => heartbeat().to_vec(),
            Payload::ProxyData => proxy_data().to_vec(),
            Payload::Random(b) => b.clone(),
            Payload::Zeros(n) => vec![0; *n],
            Payload::ZeroArray(n) => zero_array(*n),
            Payload::CutJson(at) => {
                let d = proxy_data();
                d[..at.index(d.len())].to_vec()
            }
            Payload::NotUtf8(n) => vec![0xff; *n],
            Payload::Nested(n) => [b"[".repeat(*n), b"]".repeat(*n)].concat(),
            Payload::SmallMaps(n) => {
                let items = vec![r#"{"a":[0]}"#; *n].join(",");
                format!("[{items}]").into_bytes()
            }
        }
    }
}

/// A header field: the true value, or a lie.
#[derive(Debug, Clone, Copy)]
enum Field {
    True,
    Is(u64),
    Off(i16),
}

impl Field {
    fn apply(self, real: u64) -> Option<u64> {
        match self {
            Field::True => None,
            Field::Is(v) => Some(v),
            Field::Off(d) => Some(real.saturating_add_signed(d as i64)),
        }
    }
}

/// One thing written on a connection.
#[derive(Debug, Clone)]
enum Piece {
    /// A ZBXD frame built by the harness's own encoder, possibly lying.
    Frame {
        payload: Payload,
        compress: bool,
        large: bool,
        flags: Option<u8>,
        datalen: Field,
        reserved: Field,
        trailing: Vec<u8>,
    },
    /// A compressed frame whose stream inflates to far more.
    Bomb {
        bomb: Bomb,
        declared: Declared,
        large: bool,
    },
    /// Bytes as they come.
    Raw(Vec<u8>),
}

impl Piece {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Piece::Frame {
                payload,
                compress,
                large,
                flags,
                datalen,
                reserved,
                trailing,
            } => {
                let body = payload.bytes();
                // The true `datalen`, needed only to lie by an offset.
                let wire = match (datalen, compress) {
                    (Field::Off(_), true) => zbx_conform::frame::zlib_compress(&body).len(),
                    _ => body.len(),
                } as u64;
                let real_reserved = if *compress { body.len() as u64 } else { 0 };
                let opts = FrameOptions {
                    compress: *compress,
                    large: *large,
                    flags: *flags,
                    datalen: datalen.apply(wire),
                    reserved: reserved.apply(real_reserved),
                    magic: None,
                    trailing: trailing.clone(),
                };
                encode_frame(&body, &opts)
            }
            Piece::Bomb {
                bomb,
                declared,
                large,
            } => {
                let stream = bomb.stream();
                let datalen = stream.len() as u64;
                let reserved = match declared {
                    Declared::Honest => bomb.inflated(),
                    Declared::Small(n) => *n as u64,
                    Declared::FitsBudget => BUDGET - datalen,
                    Declared::MaxFrame => MAX_FRAME,
                    Declared::Any(v) => *v,
                };
                let large = *large || reserved > u32::MAX as u64;
                let mut out = b"ZBXD".to_vec();
                if large {
                    out.push(0x07);
                    out.extend(datalen.to_le_bytes());
                    out.extend(reserved.to_le_bytes());
                } else {
                    out.push(0x03);
                    out.extend((datalen as u32).to_le_bytes());
                    out.extend((reserved as u32).to_le_bytes());
                }
                out.extend_from_slice(stream);
                out
            }
            Piece::Raw(b) => b.clone(),
        }
    }
}

/// How a client ends a connection after writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Keep it open and read the reply until the harness closes.
    Hold,
    /// Close the writing half, keep reading.
    Shutdown,
    /// Close at once.
    Drop,
    /// Close with a reset (SO_LINGER 0).
    Reset,
}

/// How writes are split.
#[derive(Debug, Clone)]
enum Writes {
    Whole,
    /// In chunks of these sizes (cycled), with `gap` between them.
    Chunks(Vec<usize>),
    /// The first `n` bytes one at a time, then the rest at once.
    Dribble(usize),
}

#[derive(Debug, Clone)]
struct Conn {
    /// Nothing at all: a silent connection.
    pieces: Vec<Piece>,
    writes: Writes,
    gap: Duration,
    /// Stop writing after this share of the stream (a truncated stream).
    cut: Option<prop::sample::Index>,
    end: End,
}

#[derive(Debug, Clone)]
struct Case {
    skip: bool,
    conns: Vec<Conn>,
    /// Pause between opening one connection and the next.
    stagger: Duration,
}

// ---------------------------------------------------------------------------------
// Strategies.

/// A header length: mostly true; else off by a little, or a value at a limit (the
/// budget, `--max-frame`, the 4-byte maximum) or anywhere. A plain frame's `reserved` is
/// ignored by receivers, so a lie there must change nothing.
fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        6 => Just(Field::True),
        1 => (-64i16..64).prop_map(Field::Off),
        1 => prop_oneof![
            0u64..16,
            Just(BUDGET),
            Just(BUDGET + 1),
            Just(MAX_FRAME),
            Just(MAX_FRAME + 1),
            Just(u32::MAX as u64),
            any::<u64>(),
        ]
        .prop_map(Field::Is),
    ]
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        4 => Just(Payload::Heartbeat),
        2 => Just(Payload::ProxyData),
        2 => proptest::collection::vec(any::<u8>(), 0..256).prop_map(Payload::Random),
        1 => prop_oneof![0usize..4096, Just(2 << 20)].prop_map(Payload::Zeros),
        1 => prop_oneof![0usize..4096, Just(1 << 20), Just(3 << 20)].prop_map(Payload::ZeroArray),
        1 => any::<prop::sample::Index>().prop_map(Payload::CutJson),
        1 => prop_oneof![0usize..4096, Just(1 << 20), Just(3 << 20)].prop_map(Payload::NotUtf8),
        1 => prop_oneof![1usize..200, Just(100_000)].prop_map(Payload::Nested),
        1 => prop_oneof![0usize..1000, Just(10_000), Just(300_000)].prop_map(Payload::SmallMaps),
    ]
}

fn piece() -> impl Strategy<Value = Piece> {
    let frame = (
        payload(),
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop_oneof![
            8 => Just(None),
            1 => prop::sample::select(vec![0x00u8, 0x02, 0x08, 0x11, 0x81, 0xff]).prop_map(Some),
            1 => any::<u8>().prop_map(Some),
        ],
        field(),
        field(),
        prop_oneof![
            6 => Just(Vec::new()),
            1 => proptest::collection::vec(any::<u8>(), 1..32),
            1 => Just(b"ZBXD\x01".to_vec()),
        ],
    )
        .prop_map(
            |(payload, compress, large, flags, datalen, reserved, trailing)| Piece::Frame {
                payload,
                compress,
                large,
                flags,
                datalen,
                reserved,
                trailing,
            },
        );
    let bomb = (
        prop::sample::select(vec![Bomb::Zeros64M, Bomb::ZeroArray32M, Bomb::ZeroArray6M]),
        prop_oneof![
            Just(Declared::Honest),
            (0u32..4096).prop_map(Declared::Small),
            Just(Declared::FitsBudget),
            Just(Declared::MaxFrame),
            any::<u64>().prop_map(Declared::Any),
        ],
        prop::bool::weighted(0.2),
    )
        .prop_map(|(bomb, declared, large)| Piece::Bomb {
            bomb,
            declared,
            large,
        });
    let raw = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        // A header prefix, then anything.
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|t| [b"ZBXD".as_slice(), &t].concat()),
    ]
    .prop_map(Piece::Raw);
    // A valid message, as a conforming peer sends it.
    let good = (
        prop_oneof![3 => Just(Payload::Heartbeat), 1 => Just(Payload::ProxyData)],
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(payload, compress, large)| Piece::Frame {
            payload,
            compress,
            large,
            flags: None,
            datalen: Field::True,
            reserved: Field::True,
            trailing: Vec::new(),
        });
    prop_oneof![4 => good, 4 => frame, 2 => bomb, 2 => raw]
}

fn conn() -> impl Strategy<Value = Conn> {
    (
        prop_oneof![
            1 => Just(Vec::new()),
            6 => proptest::collection::vec(piece(), 1..2),
            2 => proptest::collection::vec(piece(), 2..4),
        ],
        prop_oneof![
            3 => Just(Writes::Whole),
            2 => proptest::collection::vec(1usize..64, 1..4).prop_map(Writes::Chunks),
            1 => (1usize..32).prop_map(Writes::Dribble),
        ],
        (0u64..15).prop_map(Duration::from_millis),
        prop_oneof![4 => Just(None), 1 => any::<prop::sample::Index>().prop_map(Some)],
        prop_oneof![
            4 => Just(End::Hold),
            1 => Just(End::Shutdown),
            1 => Just(End::Drop),
            1 => Just(End::Reset),
        ],
    )
        .prop_map(|(pieces, writes, gap, cut, end)| Conn {
            pieces,
            writes,
            gap,
            cut,
            end,
        })
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        prop_oneof![3 => proptest::collection::vec(conn(), 1..2), 2 => proptest::collection::vec(conn(), 2..5)],
        (0u64..30).prop_map(Duration::from_millis),
    )
        .prop_map(|(skip, conns, stagger)| Case {
            skip,
            conns,
            stagger,
        })
}

// ---------------------------------------------------------------------------------
// The client side.

/// A connection's stream as it will be written (cut short when the case says so).
fn written(c: &Conn) -> Vec<u8> {
    let mut bytes = Vec::new();
    for p in &c.pieces {
        let b = p.bytes();
        if bytes.is_empty() {
            bytes = b;
        } else {
            bytes.extend_from_slice(&b);
        }
    }
    if let Some(cut) = c.cut {
        bytes.truncate(cut.index(bytes.len().max(1)));
    }
    bytes
}

/// The write sizes of a stream of `len` bytes.
fn chunk_sizes(w: &Writes, len: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut left = len;
    match w {
        Writes::Whole => out.push(len),
        Writes::Chunks(sizes) => {
            // Cycle through the sizes for the first 40 writes, then write the rest.
            for s in sizes.iter().cycle().take(40) {
                if left == 0 {
                    break;
                }
                let n = (*s).min(left);
                out.push(n);
                left -= n;
            }
            out.push(left);
        }
        Writes::Dribble(n) => {
            let n = (*n).min(len);
            out.extend(std::iter::repeat_n(1, n));
            out.push(len - n);
        }
    }
    out.retain(|n| *n > 0);
    out
}

async fn connect(port: u16) -> Option<TcpStream> {
    for _ in 0..200 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)).await {
            return Some(s);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Play one connection: write, then end it as the case says.
async fn play(mut s: TcpStream, bytes: Arc<Vec<u8>>, c: Conn, hold: Duration) {
    let mut at = 0;
    for n in chunk_sizes(&c.writes, bytes.len()) {
        if s.write_all(&bytes[at..at + n]).await.is_err() {
            return;
        }
        at += n;
        if at < bytes.len() && !c.gap.is_zero() {
            tokio::time::sleep(c.gap).await;
        }
    }
    match c.end {
        End::Drop => return,
        End::Reset => {
            // Deprecated because a non-zero linger blocks the thread on close; zero
            // resets at once, which is the point here.
            #[allow(deprecated)]
            let _ = s.set_linger(Some(Duration::ZERO));
            return;
        }
        End::Shutdown => {
            let _ = s.shutdown().await;
        }
        End::Hold => {}
    }
    // Read (and drop) the reply until the harness closes or the hold time is over.
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(hold, async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Open the connections in order (the first connected is the first the step accepts)
/// and play each in its own task.
async fn client(port: u16, case: Case, streams: Vec<Arc<Vec<u8>>>, hold: Duration) {
    let mut tasks = Vec::new();
    for (c, bytes) in case.conns.into_iter().zip(streams) {
        let Some(s) = connect(port).await else { return };
        tasks.push(tokio::spawn(play(s, bytes, c, hold)));
        tokio::time::sleep(case.stagger).await;
    }
    for t in tasks {
        let _ = t.await;
    }
}

// ---------------------------------------------------------------------------------
// What a case must do: decided from the bytes, with the harness's own decoder but
// without a budget.

/// Largest payload that can be a heartbeat here (the fixture is under 100 bytes).
const SMALL: u64 = 64 << 10;

/// The first frame on a stream, decoded as a receiver with `--max-frame` would, and the
/// bytes it used; `None` when the stream does not start with a whole valid frame, or
/// with one whose payload is too large to be a heartbeat (not decoded: the test's own
/// memory must stay small beside the harness's). A compressed frame inflates to at most
/// its declared size, whatever its length on the wire; a plain payload over 64 KiB
/// would need that much whitespace around the heartbeat, which nothing here generates.
fn first_small_frame(bytes: &[u8]) -> Option<(zbx_conform::frame::ZbxdFrame, usize)> {
    let (datalen, reserved, compressed, header) = header(bytes)?;
    if (compressed && reserved > SMALL) || (!compressed && datalen > SMALL) {
        return None;
    }
    let end = bytes
        .len()
        .min(header.saturating_add(usize::try_from(datalen).unwrap_or(usize::MAX)));
    let mut buf = bytes::BytesMut::from(&bytes[..end]);
    let frame = ZbxdCodec::new(MAX_FRAME).decode(&mut buf).ok()??;
    Some((frame, end - buf.len()))
}

/// `datalen`, `reserved`, whether 0x02 is set, and the header length of a stream that
/// starts with a whole header (magic and flags not checked beyond the 0x02/0x04 bits).
fn header(bytes: &[u8]) -> Option<(u64, u64, bool, usize)> {
    let flags = *bytes.get(4)?;
    let (width, len) = if flags & 0x04 != 0 { (8, 21) } else { (4, 13) };
    let lengths = bytes.get(5..len)?;
    let read = |b: &[u8]| {
        let mut a = [0u8; 8];
        a[..width].copy_from_slice(b);
        u64::from_le_bytes(a)
    };
    Some((
        read(&lengths[..width]),
        read(&lengths[width..]),
        flags & 0x02 != 0,
        len,
    ))
}

fn is_heartbeat(payload: &[u8]) -> bool {
    let want: serde_json::Value = serde_json::from_slice(heartbeat()).expect("fixture");
    serde_json::from_slice::<serde_json::Value>(payload).is_ok_and(|v| v == want)
}

/// The connection's first frame is a heartbeat: the step may pass on it.
fn carries_heartbeat(bytes: &[u8]) -> bool {
    first_small_frame(bytes).is_some_and(|(f, _)| is_heartbeat(&f.payload))
}

/// Exactly one whole heartbeat frame, on a connection that stays open for the reply and
/// writes with no more than [`MUST_PASS_DELAY`] of pauses.
fn clean_heartbeat(c: &Conn, bytes: &[u8]) -> bool {
    let writes = chunk_sizes(&c.writes, bytes.len()).len() as u32;
    first_small_frame(bytes)
        .is_some_and(|(f, used)| is_heartbeat(&f.payload) && used == bytes.len())
        && matches!(c.end, End::Hold | End::Shutdown)
        && c.gap * writes.saturating_sub(1) <= MUST_PASS_DELAY
}

/// What a stream's first header takes from the budget when it parses (its declared
/// size, plus the inflated size when compressed), or 0.
fn declared_share(bytes: &[u8]) -> u64 {
    if !bytes.starts_with(b"ZBXD") {
        return 0;
    }
    header(bytes).map_or(0, |(datalen, reserved, compressed, _)| {
        datalen.saturating_add(if compressed { reserved } else { 0 })
    })
}

/// Cases seen: must pass, must fail, either, and passed.
static TALLY: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    MustPass,
    MustFail,
    Either,
}

fn verdict(case: &Case, streams: &[Arc<Vec<u8>>]) -> Verdict {
    let conns: Vec<(&Conn, &[u8])> = case
        .conns
        .iter()
        .zip(streams)
        .map(|(c, b)| (c, b.as_slice()))
        .collect();
    if !case.skip {
        // `others: fail`: the first connection decides.
        let (c, b) = conns[0];
        return if clean_heartbeat(c, b) {
            Verdict::MustPass
        } else if carries_heartbeat(b) {
            Verdict::Either
        } else {
            Verdict::MustFail
        };
    }
    // `others: skip`: any connection may carry it, read in parallel; a heartbeat with
    // something wrong may be read first, and others may crowd the budget meanwhile.
    let carrying: Vec<_> = conns.iter().filter(|(_, b)| carries_heartbeat(b)).collect();
    if carrying.is_empty() {
        return Verdict::MustFail;
    }
    let shares = conns
        .iter()
        .fold(0u64, |sum, (_, b)| sum.saturating_add(declared_share(b)));
    if carrying.iter().all(|(c, b)| clean_heartbeat(c, b)) && shares <= BUDGET / 2 {
        Verdict::MustPass
    } else {
        Verdict::Either
    }
}

// ---------------------------------------------------------------------------------
// Running a case.

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn scenario(port: u16, skip: bool) -> String {
    format!(
        r#"
name: listener fuzz
family: server-proxy
versions: ["6.0"]
plays: server
listen: 127.0.0.1:{port}
steps:
  - accept:
      others: {}
      expect: {{ kind: active.proxy-heartbeat.request }}
      reply: {{ json: {{ response: success }} }}
"#,
        if skip { "skip" } else { "fail" }
    )
}

fn catalog() -> Arc<Catalog> {
    static C: OnceLock<Arc<Catalog>> = OnceLock::new();
    C.get_or_init(|| Arc::new(Catalog::load(&root()).expect("catalog")))
        .clone()
}

struct Ran {
    result: Option<RunResult>,
    took: Duration,
    timeout: Duration,
    /// Peak of live allocated bytes above the start, while the run went on.
    peak_alloc: isize,
    panics: usize,
}

fn run(case: &Case, streams: &[Arc<Vec<u8>>], timeout: Duration) -> Ran {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("listener-fuzz.yaml");
    // The port is picked here; another process may take it between the probe and the
    // bind in `plan`, so try a few.
    let mut planned = None;
    for _ in 0..5 {
        let port = free_port();
        std::fs::write(&file, scenario(port, case.skip)).expect("write scenario");
        let opts = RunOptions {
            paths: vec![file.clone()],
            jobs: 1,
            timeout,
            max_frame: MAX_FRAME,
            memory_budget: BUDGET,
            ..RunOptions::default()
        };
        if let Ok(jobs) = runner::plan(&catalog(), &opts) {
            planned = Some((port, opts, jobs));
            break;
        }
    }
    let (port, opts, jobs) = planned.expect("a port to listen on");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let panics = PANICS.load(Ordering::SeqCst);
    let base = alloc_support::start_peak();
    let start = Instant::now();
    let hold = timeout + MARGIN;
    let result = rt.block_on(async {
        let c = tokio::spawn(client(port, case.clone(), streams.to_vec(), hold));
        let r = tokio::time::timeout(
            timeout + MARGIN,
            runner::run_jobs(catalog(), jobs, &opts, |_| {}),
        )
        .await
        .ok();
        c.abort();
        r
    });
    let took = start.elapsed();
    let peak_alloc = alloc_support::peak_since(base);
    rt.shutdown_timeout(Duration::from_secs(1));
    Ran {
        result,
        took,
        timeout,
        peak_alloc,
        panics: PANICS.load(Ordering::SeqCst) - panics,
    }
}

fn describe(s: &ScenarioResult) -> String {
    let mut out = format!("{:?}\n", s.outcome);
    for step in &s.steps {
        out.push_str(&format!("  step {} {:?}\n", step.index, step.outcome));
        for f in &step.failures {
            out.push_str(&format!(
                "    [{}] expected {} — {}\n",
                f.check.as_str(),
                f.expected,
                f.detail
            ));
        }
    }
    for t in s.transcript.iter().take(40) {
        out.push_str(&format!("  | {t:?}\n"));
    }
    out
}

/// Run one case and check everything it must show.
fn check_case(case: &Case) -> Result<(), TestCaseError> {
    let streams: Vec<Arc<Vec<u8>>> = case.conns.iter().map(|c| Arc::new(written(c))).collect();
    let verdict = verdict(case, &streams);
    let timeout = if verdict == Verdict::MustPass {
        LONG_TIMEOUT
    } else {
        SHORT_TIMEOUT
    };
    let ran = run(case, &streams, timeout);
    prop_assert_eq!(ran.panics, 0, "a thread panicked");
    let Some(result) = ran.result else {
        return Err(TestCaseError::fail(format!(
            "the run did not return within {:?} (step timeout {:?})",
            ran.timeout + MARGIN,
            ran.timeout
        )));
    };
    prop_assert!(
        ran.took <= ran.timeout + MARGIN,
        "took {:?} (step timeout {:?})",
        ran.took,
        ran.timeout
    );
    prop_assert_eq!(
        result.scenarios.len(),
        1,
        "the scenario's task did not finish"
    );
    let s = &result.scenarios[0];
    let why = describe(s);
    prop_assert!(
        matches!(s.outcome, Outcome::Passed | Outcome::Failed),
        "peer input made an error: {}",
        why
    );
    for step in &s.steps {
        prop_assert!(
            matches!(step.outcome, Outcome::Passed | Outcome::Failed),
            "step {} {:?}: {}",
            step.index,
            step.outcome,
            why
        );
    }
    TALLY[verdict as usize].fetch_add(1, Ordering::Relaxed);
    if s.outcome == Outcome::Passed {
        TALLY[3].fetch_add(1, Ordering::Relaxed);
    }
    match verdict {
        Verdict::MustPass => prop_assert_eq!(&s.outcome, &Outcome::Passed, "{}", why),
        Verdict::MustFail => prop_assert_eq!(&s.outcome, &Outcome::Failed, "{}", why),
        Verdict::Either => {}
    }
    let memory = result.memory.expect("a run reports its budget");
    prop_assert_eq!(memory.limit, BUDGET);
    prop_assert!(memory.peak <= memory.limit, "budget {:?}", memory);
    let bound = case_bound(memory.peak, case.conns.len());
    prop_assert!(
        ran.peak_alloc <= bound,
        "the run allocated up to {} KiB, more than the budget's peak allows ({} KiB); budget {:?}\n{}",
        ran.peak_alloc >> 10,
        bound >> 10,
        memory,
        why
    );
    Ok(())
}

fn cases() -> u32 {
    std::env::var("LISTENER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

#[test]
fn listener_survives_hostile_streams_within_time_and_memory() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    count_panics();
    // Built before measuring: inputs, not what the harness allocates.
    for b in [Bomb::Zeros64M, Bomb::ZeroArray32M, Bomb::ZeroArray6M] {
        b.stream();
    }
    catalog();
    let reset = reset_hwm();
    let before = vm_hwm().expect("VmHWM in /proc/self/status");
    TALLY.iter().for_each(|t| t.store(0, Ordering::Relaxed));
    let started = Instant::now();
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&case(), |c| check_case(&c));
    let after = vm_hwm().expect("VmHWM in /proc/self/status");
    let growth = after.saturating_sub(before);
    let tally: Vec<usize> = TALLY.iter().map(|t| t.load(Ordering::Relaxed)).collect();
    eprintln!(
        "listener fuzz: {} cases in {:?} ({} must pass, {} must fail, {} either; {} passed); VmHWM {} -> {} MiB (growth {} MiB, bound {} MiB{})",
        cases(),
        started.elapsed(),
        tally[0],
        tally[1],
        tally[2],
        tally[3],
        before >> 20,
        after >> 20,
        growth >> 20,
        rss_growth_bound() >> 20,
        if reset {
            ""
        } else {
            "; VmHWM could not be reset"
        }
    );
    if let Err(e) = outcome {
        panic!("{e}");
    }
    // The generators must keep producing cases the oracle decides, or the target would
    // only show that nothing crashes.
    if cases() >= 32 {
        assert!(
            tally[0] > 0 && tally[1] > 0,
            "no case that must pass, or none that must fail: {tally:?}"
        );
    }
    assert!(
        growth <= rss_growth_bound(),
        "peak RSS grew by {} MiB over the run (bound {} MiB)",
        growth >> 20,
        rss_growth_bound() >> 20
    );
}

/// A case found by this target: a plain frame of 1 MiB of 0xff. Its text body held
/// every stray byte as a 3-byte U+FFFD (up to 4 MiB with the string's growth) while the
/// budget charged the payload's length, so the run allocated far more than its budget
/// counted. Kept as a fixed case.
#[test]
fn text_that_is_not_utf8_is_charged_what_its_body_holds() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    count_panics();
    let case = Case {
        skip: false,
        conns: vec![Conn {
            pieces: vec![Piece::Frame {
                payload: Payload::NotUtf8(1 << 20),
                compress: false,
                large: false,
                flags: None,
                datalen: Field::True,
                reserved: Field::True,
                trailing: Vec::new(),
            }],
            writes: Writes::Whole,
            gap: Duration::ZERO,
            cut: None,
            end: End::Hold,
        }],
        stagger: Duration::ZERO,
    };
    if let Err(e) = check_case(&case) {
        panic!("{e}");
    }
}

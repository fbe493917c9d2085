//! Throughput of the receive pipeline on a large active `proxy data` message
//! (protocol.md §2.5): ZBXD decode (+ inflate) + JSON parse + JSON Schema validation,
//! compared with baselines measured in the same run (plain `serde_json::from_slice`,
//! plain zlib inflate), so the ratio says what our framing and validation cost on top
//! of the unavoidable work, independent of the machine.
//!
//! Run: `cargo bench --bench decode_validate` (plain `Instant`, median of N runs).

use serde_json::{json, Value};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use zbx_conform::frame::zbxd::{encode_frame, FrameOptions, ZbxdCodec};

/// History rows in the message.
const ROWS: u64 = 50_000;
/// Timed runs per measurement (the median is reported).
const ITERATIONS: usize = 15;
/// Stop a measurement early once it has used this much time (keeps the run < ~60 s).
const BUDGET: Duration = Duration::from_secs(8);

/// Build the message in the 6.0 key order: request, host, session, history data,
/// version, clock, ns.
fn proxy_data_message() -> Vec<u8> {
    let clock0: u64 = 1_700_000_000;
    let rows: Vec<Value> = (0..ROWS)
        .map(|n| {
            let value = match n % 4 {
                0 => format!("{}", n * 7 % 1000),
                1 => format!("{}.{:03}", n % 100, n % 997),
                2 => format!("eth0 rx errors: {}", n % 13),
                _ => format!("[{}] service check OK (latency {} ms)", n % 31, n % 250),
            };
            json!({
                "id": n + 1,
                "itemid": 10_000 + n % 500,
                "clock": clock0 + n / 100,
                "ns": (n * 7_919_317) % 1_000_000_000,
                "value": value,
            })
        })
        .collect();
    let msg = json!({
        "request": "proxy data",
        "host": "proxy-bench",
        "session": "0123456789abcdef0123456789abcdef",
        "history data": rows,
        "version": "6.0.14",
        "clock": clock0 + ROWS / 100,
        "ns": 123_456_789,
    });
    serde_json::to_vec(&msg).expect("serialising a Value cannot fail")
}

/// The catalog schema, compiled through the harness's own schema cache (what the runner
/// uses for every received message).
fn load_validator() -> (std::sync::Arc<jsonschema::Validator>, String) {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "schemas",
        "server-proxy",
        "6.0",
        "active.proxy-data.request.json",
    ]
    .iter()
    .collect();
    let validator = zbx_conform::check::SchemaCache::new()
        .compile(&path)
        .unwrap_or_else(|e| panic!("the catalog schema must compile: {e}"));
    (validator, format!("catalog schema {}", path.display()))
}

/// Median wall time of `f` over up to [`ITERATIONS`] runs (after one warm-up run).
fn median<T>(mut f: impl FnMut() -> T) -> Duration {
    black_box(f());
    let started = Instant::now();
    let mut times = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let t = Instant::now();
        black_box(f());
        times.push(t.elapsed());
        if started.elapsed() > BUDGET && times.len() >= 3 {
            break;
        }
    }
    times.sort();
    times[times.len() / 2]
}

fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn inflate(data: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    let mut z = flate2::Decompress::new(true);
    z.decompress_vec(data, &mut out, flate2::FlushDecompress::Finish)
        .expect("our own zlib stream");
    out
}

fn main() {
    let json_bytes = proxy_data_message();
    let plain = encode_frame(&json_bytes, &FrameOptions::plain());
    let compressed = encode_frame(&json_bytes, &FrameOptions::compressed());
    let zlib_body = &compressed[13..];
    let (validator, schema_used) = load_validator();
    let codec = ZbxdCodec::default();

    println!("decode_validate: active `proxy data`, {ROWS} history rows");
    println!(
        "  JSON {} bytes; plain frame {} bytes; compressed frame {} bytes (ratio {:.1}:1)",
        json_bytes.len(),
        plain.len(),
        compressed.len(),
        json_bytes.len() as f64 / zlib_body.len() as f64
    );
    println!("  schema: {schema_used}");

    // Correctness first: the pipeline must accept what it is timed on.
    let check = |frame: &[u8]| -> Result<(), String> {
        let f = codec.decode_exact(frame).map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_slice(&f.payload).map_err(|e| e.to_string())?;
        validator.validate(&v).map_err(|e| e.to_string())
    };
    for (name, frame) in [("plain", &plain), ("compressed", &compressed)] {
        if let Err(e) = check(frame) {
            println!("  WARNING: {name} frame fails the pipeline: {e}");
        }
    }

    let a = median(|| serde_json::from_slice::<Value>(&json_bytes).map(|_| ()));
    let b = median(|| inflate(zlib_body, json_bytes.len()));
    let pipeline = |frame: &[u8]| -> bool {
        let Ok(f) = codec.decode_exact(frame) else {
            return false;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&f.payload) else {
            return false;
        };
        validator.is_valid(&v)
    };
    let c = median(|| pipeline(&plain));
    let d = median(|| pipeline(&compressed));

    let n = json_bytes.len();
    println!("  (MB/s are of uncompressed JSON bytes; median of up to {ITERATIONS} runs)");
    println!(
        "  (a) baseline serde_json::from_slice      {:>9.2?}  {:>8.1} MB/s",
        a,
        mb_per_s(n, a)
    );
    println!(
        "  (b) baseline zlib inflate alone          {:>9.2?}  {:>8.1} MB/s",
        b,
        mb_per_s(n, b)
    );
    println!(
        "  (c) ZBXD plain decode + parse + schema   {:>9.2?}  {:>8.1} MB/s",
        c,
        mb_per_s(n, c)
    );
    println!(
        "  (d) ZBXD zlib decode + parse + schema    {:>9.2?}  {:>8.1} MB/s",
        d,
        mb_per_s(n, d)
    );
    println!(
        "  our pipeline vs baseline measured in the same run: c/a = {:.2}x time, d/(a+b) = {:.2}x time",
        c.as_secs_f64() / a.as_secs_f64(),
        d.as_secs_f64() / (a + b).as_secs_f64()
    );
}

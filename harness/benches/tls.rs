//! What encryption costs: the same exchange (connect, `agent.ping` in a ZBXD frame, the
//! answer, close: one passive check, one connection, as Zabbix does it) against the
//! built-in passive agent, in clear and with PSK over TLS 1.3 and TLS 1.2 (the suites a
//! GnuTLS build of Zabbix 6.0 speaks), measured in the same run and interleaved so that
//! machine noise hits every mode alike. The handshake alone is timed too, so the
//! per-exchange overhead can be told apart from the handshake's.
//!
//! Run: `cargo bench --bench tls` (TLS_ROUNDS exchanges per mode, default 400; medians
//! and 90th percentiles). All traffic stays on 127.0.0.1; the key is made at run time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zbx_conform::catalog::Catalog;
use zbx_conform::frame::zbxd::{encode_frame, FrameOptions, ZbxdCodec};
use zbx_conform::reference::{self, ReferenceConfig};
use zbx_conform::transport::tls::{self, TlsConfig, TlsSettings};
use zbx_conform::transport::{connect_tcp, Connection};

const WAIT: Duration = Duration::from_secs(5);

/// One way of connecting, and what it measured.
struct Mode {
    name: &'static str,
    cfg: TlsConfig,
    addr: String,
    exchange: Vec<Duration>,
    handshake: Vec<Duration>,
}

/// A PSK configuration for connecting with a fresh 256-bit key in `dir`; `tls12` keeps to
/// TLS 1.2 (no TLS 1.3 suites).
fn psk_config(dir: &Path, tls12: bool) -> TlsConfig {
    let mut key = [0u8; 32];
    openssl::rand::rand_bytes(&mut key).expect("random bytes");
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let file = dir.join(if tls12 { "k12.psk" } else { "k13.psk" });
    std::fs::write(&file, hex).expect("write the key");
    let settings = TlsSettings {
        connect: Some("psk".into()),
        psk_identity: Some("zbx-conform bench".into()),
        psk_file: Some(file.display().to_string()),
        cipher13: tls12.then(String::new),
        ..Default::default()
    };
    TlsConfig::load(&settings, None).expect("the bench's own settings load")
}

/// One exchange; returns its duration and the handshake's.
async fn exchange(addr: &str, cfg: &TlsConfig, frame: &[u8]) -> (Duration, Duration) {
    let start = Instant::now();
    let tcp = connect_tcp(addr, WAIT).await.expect("connect");
    let before = Instant::now();
    let secured = tls::connect(tcp, cfg, addr, WAIT).await.expect("handshake");
    let handshake = before.elapsed();
    let mut conn = Connection::new(secured.stream, ZbxdCodec::default(), addr);
    conn.write_all(frame, WAIT).await.expect("write");
    let reply = conn.read_frame(WAIT).await.expect("read").expect("a reply");
    assert_eq!(&reply.payload[..], b"1", "agent.ping answers 1");
    conn.shutdown().await;
    (start.elapsed(), handshake)
}

/// The `q` quantile of `v` (sorted in place).
fn quantile(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let rounds: usize = std::env::var("TLS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let catalog = Catalog::load(&root).expect("catalog loads");
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let configs = [
        ("plaintext", TlsConfig::plaintext()),
        ("PSK, TLS 1.3", psk_config(dir.path(), false)),
        ("PSK, TLS 1.2", psk_config(dir.path(), true)),
    ];
    let frame = encode_frame(b"agent.ping", &FrameOptions::plain());
    rt.block_on(async {
        let mut modes = Vec::new();
        let mut peers = Vec::new();
        for (name, cfg) in configs {
            let peer_cfg = ReferenceConfig {
                name: "agent-passive".into(),
                version: "6.0".into(),
                fault: None,
                connect_to: None,
                listen: None,
            };
            let peer = reference::start_with_tls(&peer_cfg, &catalog, cfg.mirrored())
                .await
                .expect("the reference agent starts");
            let addr = peer.listen.expect("it listens").to_string();
            peers.push(peer);
            modes.push(Mode {
                name,
                cfg,
                addr,
                exchange: Vec::with_capacity(rounds),
                handshake: Vec::with_capacity(rounds),
            });
        }
        // Warm up every mode, then interleave.
        for m in &modes {
            for _ in 0..20 {
                exchange(&m.addr, &m.cfg, &frame).await;
            }
        }
        for _ in 0..rounds {
            for m in modes.iter_mut() {
                let (total, handshake) = exchange(&m.addr, &m.cfg, &frame).await;
                m.exchange.push(total);
                m.handshake.push(handshake);
            }
        }
        println!("tls: {rounds} exchanges per mode (connect, agent.ping, answer, close)");
        let base = quantile(&mut modes[0].exchange.clone(), 0.5);
        for m in modes.iter_mut() {
            let med = quantile(&mut m.exchange, 0.5);
            let p90 = quantile(&mut m.exchange, 0.9);
            let hs = quantile(&mut m.handshake, 0.5);
            println!(
                "{:<13} exchange median {:>7.0} µs, p90 {:>7.0} µs ({:.1}× plaintext); handshake median {:>6.0} µs",
                m.name,
                micros(med),
                micros(p90),
                med.as_secs_f64() / base.as_secs_f64(),
                micros(hs),
            );
        }
        for p in peers {
            p.stop().await;
        }
    });
}

//! Helpers shared by the reference-peer tests: start a peer, talk ZBXD to it with the
//! crate's own Connection and encode_frame.
#![allow(dead_code)]

use serde_json::Value;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use zbx_conform::catalog::Catalog;
use zbx_conform::frame::{encode_frame, FrameOptions, ZbxdCodec, ZbxdFrame};
use zbx_conform::reference::{self, ReferenceConfig, RunningPeer};
use zbx_conform::transport::{connect_tcp, Connection, TransportError};

pub type Conn = Connection<TcpStream, ZbxdCodec>;

/// Generous for replies that must come; every exchange is on loopback.
pub const WAIT: Duration = Duration::from_secs(3);

pub const VERSIONS: [(&str, &str); 2] = [("5.4", "5.4.0"), ("6.0", "6.0.14")];

/// The project's catalog, loaded once per test binary.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        Catalog::load(&root).expect("catalog loads")
    })
}

pub async fn start(
    name: &str,
    version: &str,
    fault: Option<&str>,
    connect_to: Option<SocketAddr>,
) -> RunningPeer {
    let cfg = ReferenceConfig {
        name: name.to_string(),
        version: version.to_string(),
        fault: fault.map(str::to_string),
        connect_to,
        listen: None,
    };
    match reference::start(&cfg, catalog()).await {
        Ok(p) => p,
        Err(e) => panic!("cannot start {name} {version} {fault:?}: {e}"),
    }
}

pub async fn connect(peer: &RunningPeer) -> Conn {
    let addr = peer.listen.expect("listening peer has an address");
    let stream = connect_tcp(&addr.to_string(), WAIT).await.expect("connect");
    Connection::new(stream, ZbxdCodec::default(), addr.to_string())
}

pub async fn listen() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    (l, a)
}

pub async fn accept(l: &TcpListener) -> Conn {
    let (s, a) = tokio::time::timeout(WAIT, l.accept())
        .await
        .expect("peer connected in time")
        .expect("accept");
    Connection::new(s, ZbxdCodec::default(), a.to_string())
}

pub fn opts(compress: bool) -> FrameOptions {
    FrameOptions {
        compress,
        ..FrameOptions::default()
    }
}

pub async fn send(conn: &mut Conn, v: &Value, compress: bool) {
    send_raw(
        conn,
        &encode_frame(v.to_string().as_bytes(), &opts(compress)),
    )
    .await;
}

pub async fn send_raw(conn: &mut Conn, bytes: &[u8]) {
    conn.write_all(bytes, WAIT).await.expect("write");
}

pub async fn try_read(
    conn: &mut Conn,
    within: Duration,
) -> Result<Option<ZbxdFrame>, TransportError> {
    conn.read_frame(within).await
}

/// Read a frame that must come and must be a JSON object.
pub async fn read_json(conn: &mut Conn) -> (ZbxdFrame, Value) {
    let frame = conn
        .read_frame(WAIT)
        .await
        .expect("a frame")
        .expect("a frame, not a close");
    let v: Value = serde_json::from_slice(&frame.payload).expect("JSON payload");
    assert!(v.is_object(), "payload is an object: {v}");
    (frame, v)
}

/// Connect, send one request, read the reply.
pub async fn request(peer: &RunningPeer, v: &Value, compress: bool) -> (Conn, ZbxdFrame, Value) {
    let mut c = connect(peer).await;
    send(&mut c, v, compress).await;
    let (f, r) = read_json(&mut c).await;
    (c, f, r)
}

/// The peer closes without sending anything.
pub async fn assert_silent_close(conn: &mut Conn) {
    let bytes = conn.wait_close(WAIT).await.expect("peer closes");
    assert!(bytes.is_empty(), "no bytes before close, got {bytes:?}");
}

pub fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

pub fn history_ids(v: &Value) -> Vec<u64> {
    v["history data"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["id"].as_u64()).collect())
        .unwrap_or_default()
}

pub fn is_session(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 32
            && s.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// Check the data section a proxy reports (protocol.md §2.5).
pub fn assert_proxy_data(v: &Value, full: &str) {
    assert!(is_session(&v["session"]), "session: {}", v["session"]);
    assert_eq!(v["version"], full);
    assert!(v["clock"].is_i64() && v["ns"].is_u64(), "clock/ns: {v}");
    // Only while history is left behind the message (`more`), as the real proxies do.
    assert!(
        v.get("proxy_delay").is_none() && v.get("more").is_none(),
        "proxy_delay: {v}"
    );
    let hist = v["history data"].as_array().expect("history data");
    assert!(!hist.is_empty());
    assert!(hist
        .iter()
        .all(|r| r["value"].is_string() && r["id"].is_u64() && r["itemid"].is_u64()));
    assert_eq!(
        hist.iter().filter(|r| r["state"] == 1).count(),
        1,
        "one not-supported row"
    );
    let areg = v["auto registration"]
        .as_array()
        .expect("auto registration");
    // 6.x sends the port as a string, 7.0 as a number (measured).
    let numeric = full.starts_with('7');
    assert!(
        areg.iter().all(|r| r["port"].is_string() != numeric),
        "port: {v}"
    );
    assert!(v["interface availability"].is_array());
    assert!(v["discovery data"].is_array());
}

/// For a reference peer that connects to us (active proxy, server poller): with the
/// `bad-frame` fault its first frame does not decode, and with `extra-bytes` garbage
/// follows its first (valid) frame.
pub async fn assert_connecting_frame_faults(role: &str) {
    let (l, addr) = listen().await;
    let peer = start(role, "6.0", Some("bad-frame"), Some(addr)).await;
    let mut c = accept(&l).await;
    assert!(
        matches!(try_read(&mut c, WAIT).await, Err(TransportError::Frame(_))),
        "{role} bad-frame: the first frame decoded"
    );
    peer.stop().await;

    let (l, addr) = listen().await;
    let peer = start(role, "6.0", Some("extra-bytes"), Some(addr)).await;
    let mut c = accept(&l).await;
    let _ = read_json(&mut c).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut extra = c.leftover().len();
    if extra == 0 {
        // The garbage may come in a later read; the peer waits for our answer, so a
        // short silence check picks it up.
        extra = match c.expect_silence(Duration::from_millis(300)).await {
            Err(TransportError::Unexpected { count }) => count,
            _ => 0,
        };
    }
    assert!(extra > 0, "{role} extra-bytes: no garbage after the frame");
    peer.stop().await;
}

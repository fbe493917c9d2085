//! What every reference peer does with the wire: read one request with a timeout,
//! classify its payload like a Zabbix trapper does (protocol.md §1.7), and write JSON
//! frames — deliberately broken ones when a frame-level fault is active.

use super::fault::{is, Fault};
use crate::frame::{encode_frame, FrameOptions, ZbxdCodec, ZbxdFrame};
use crate::transport::tls::{self, TlsConfig};
use crate::transport::{connect_tcp, Connection};
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::time::Duration;

/// Largest frame a reference peer accepts. Far below Zabbix's 1 GiB: reference peers
/// run inside the harness and must not let a scenario make it allocate much.
pub const MAX_FRAME: u64 = 64 << 20;
/// How long a peer waits for a request on a fresh connection.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a peer waits for the answer to something it sent (the acknowledgement of
/// proxy data: the real proxy uses `Timeout`, 3 s by default).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a write may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a `no-reply`/`no-close` peer holds a connection open at most.
pub const HOLD: Duration = Duration::from_secs(600);
/// Garbage appended by the `extra-bytes` fault.
pub const GARBAGE: &[u8] = b"\0garbage";

/// A connection of a reference peer, in clear or inside TLS.
pub type Conn = Connection<tls::Stream, ZbxdCodec>;

/// Wrap a stream in a connection with the reference peers' size limit.
pub fn conn(stream: tls::Stream, peer: impl Into<String>) -> Conn {
    Connection::new(stream, ZbxdCodec::new(MAX_FRAME), peer)
}

/// Connect to `to` as `tls.connect` says (the TLS handshake right after the TCP
/// connect). `None` when either fails: a connecting reference peer, like a Zabbix
/// daemon, tries again on its next cycle.
pub async fn connect(to: SocketAddr, tls: &TlsConfig, within: Duration) -> Option<Conn> {
    let addr = to.to_string();
    let tcp = connect_tcp(&addr, within).await.ok()?;
    let secured = tls::connect(tcp, tls, &addr, within).await.ok()?;
    Some(conn(secured.stream, addr))
}

/// A payload, classified the way a Zabbix trapper classifies it.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A JSON object.
    Object(Map<String, Value>),
    /// Starts with `{` but does not parse; carries the parser's message.
    InvalidJson(String),
    /// Anything else (text protocols the reference peers do not implement).
    Other,
}

/// Classify a payload: trailing `" \r\n"` is trimmed first, as the trapper does.
pub fn classify(payload: &[u8]) -> Payload {
    let end = payload
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\r' | b'\n'))
        .map_or(0, |i| i + 1);
    let body = &payload[..end];
    if body.first() != Some(&b'{') {
        return Payload::Other;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Payload::Object(map),
        Ok(_) => Payload::InvalidJson("not an object".to_string()),
        Err(e) => Payload::InvalidJson(e.to_string()),
    }
}

/// The `request` member of a JSON object, if it is a string.
pub fn request_of(map: &Map<String, Value>) -> Option<&str> {
    map.get("request").and_then(Value::as_str)
}

/// A string member of a JSON object.
pub fn str_of<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

/// The generic answer to a payload that starts with `{` but is not valid JSON.
pub fn invalid_json_reply(reason: &str) -> Value {
    serde_json::json!({
        "response": "failed",
        "info": format!("cannot parse as a valid JSON object: {reason}"),
    })
}

/// Read one frame; `None` on clean close, timeout or framing error (the reference
/// peers, like Zabbix, never answer a framing error: they close).
pub async fn read_one(conn: &mut Conn, within: Duration) -> Option<ZbxdFrame> {
    match conn.read_frame(within).await {
        // Bytes beyond the declared length in the same read: a C receiver ignores the
        // message as "longer than expected" and closes (protocol.md §1.4 step 4).
        Ok(Some(_)) if !conn.leftover().is_empty() => None,
        Ok(Some(frame)) => Some(frame),
        Ok(None) | Err(_) => None,
    }
}

/// Read a request for a peer that may be `lenient-frames`: a correct peer reads one
/// frame strictly ([`read_one`]); the faulty one takes the first `{...}` in whatever
/// arrived, framing or not, as the payload.
pub async fn read_request(
    conn: &mut Conn,
    within: Duration,
    fault: Option<Fault>,
) -> Option<ZbxdFrame> {
    if !is(fault, Fault::LenientFrames) {
        return read_one(conn, within).await;
    }
    // A short wait is enough: the malformed frames of the suites arrive at once, and a
    // declared length longer than the data must be answered, not waited out.
    let within = within.min(Duration::from_millis(500));
    match conn.read_frame(within).await {
        Ok(Some(frame)) => Some(frame),
        Ok(None) => None,
        Err(_) => {
            let bytes = conn.leftover();
            let start = bytes.iter().position(|b| *b == b'{')?;
            let end = bytes.iter().rposition(|b| *b == b'}')?;
            (end >= start).then(|| ZbxdFrame {
                flags: crate::frame::zbxd::FLAG_PROTOCOL,
                datalen: (end + 1 - start) as u64,
                reserved: 0,
                payload: bytes::Bytes::copy_from_slice(&bytes[start..=end]),
            })
        }
    }
}

/// Which way the `bad-frame` fault breaks a frame; peers pick a different one per
/// message so that a suite exercises every kind of framing check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadFrame {
    /// Magic `ZBXE` instead of `ZBXD`.
    Magic,
    /// Declared length longer than the bytes sent; the sender then closes.
    Truncated,
    /// Declared length shorter than the bytes sent.
    ShortLength,
}

/// What the caller must do after sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Carry on with the conversation.
    Continue,
    /// Close now: a truncated frame was sent, or the write failed.
    Close,
}

/// Encode a payload (JSON, or an agent's plain text) as a frame, applying the
/// frame-level faults. `compress` is what the real peer would do; `uncompressed`
/// overrides it.
pub fn encode_bytes(
    payload: &[u8],
    compress: bool,
    fault: Option<Fault>,
    bad: BadFrame,
) -> (Vec<u8>, Sent) {
    let mut opts = FrameOptions {
        compress: compress && !is(fault, Fault::Uncompressed),
        ..FrameOptions::default()
    };
    if is(fault, Fault::ExtraBytes) {
        opts.trailing = GARBAGE.to_vec();
    }
    let mut after = Sent::Continue;
    if is(fault, Fault::BadFrame) {
        let wire_len = if opts.compress {
            crate::frame::zbxd::zlib_compress(payload).len() as u64
        } else {
            payload.len() as u64
        };
        match bad {
            BadFrame::Magic => opts.magic = Some(*b"ZBXE"),
            BadFrame::Truncated => {
                opts.datalen = Some(wire_len + 16);
                after = Sent::Close;
            }
            BadFrame::ShortLength => opts.datalen = Some(wire_len.saturating_sub(5)),
        }
    }
    (encode_frame(payload, &opts), after)
}

/// Send a JSON value (see [`encode_bytes`]).
pub async fn send(
    conn: &mut Conn,
    value: &Value,
    compress: bool,
    fault: Option<Fault>,
    bad: BadFrame,
) -> Sent {
    send_bytes(conn, &value.to_string().into_bytes(), compress, fault, bad).await
}

/// Send any payload (see [`encode_bytes`]).
pub async fn send_bytes(
    conn: &mut Conn,
    payload: &[u8],
    compress: bool,
    fault: Option<Fault>,
    bad: BadFrame,
) -> Sent {
    let (bytes, after) = encode_bytes(payload, compress, fault, bad);
    match conn.write_all(&bytes, WRITE_TIMEOUT).await {
        Ok(()) => after,
        Err(_) => Sent::Close,
    }
}

/// Keep a connection open until the other side closes it (or [`HOLD`] passes); used by
/// `no-reply` and `no-close`. Stopping the peer aborts the wait.
pub async fn hold(conn: &mut Conn) {
    // wait_close returns early once 64 KiB piled up; keep waiting in bounded rounds.
    let deadline = tokio::time::Instant::now() + HOLD;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        match conn.wait_close(left).await {
            Ok(bytes) if bytes.len() > 64 * 1024 => continue,
            _ => return,
        }
    }
}

/// End a conversation: close, or hold the connection open under `no-close`.
pub async fn finish(mut conn: Conn, fault: Option<Fault>) {
    if is(fault, Fault::NoClose) {
        hold(&mut conn).await;
    }
    conn.shutdown().await;
}

/// Whether an acknowledgement frame says `"response":"success"`.
pub fn is_success(frame: &ZbxdFrame) -> bool {
    matches!(classify(&frame.payload), Payload::Object(m) if str_of(&m, "response") == Some("success"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_like_a_trapper() {
        assert!(matches!(
            classify(b"{\"request\":\"x\"} \r\n"),
            Payload::Object(_)
        ));
        assert!(matches!(
            classify(b"{\"request\":"),
            Payload::InvalidJson(_)
        ));
        assert_eq!(classify(b"host:key:value"), Payload::Other);
        assert_eq!(classify(b""), Payload::Other);
        assert_eq!(classify(b" \r\n"), Payload::Other);
    }

    fn encode(v: &Value, compress: bool, fault: Option<Fault>, bad: BadFrame) -> (Vec<u8>, Sent) {
        encode_bytes(v.to_string().as_bytes(), compress, fault, bad)
    }

    #[test]
    fn bad_frames_do_not_decode() {
        let codec = ZbxdCodec::new(MAX_FRAME);
        let v = serde_json::json!({"response": "success"});
        let (ok, _) = encode(&v, true, None, BadFrame::Magic);
        assert_eq!(codec.decode_exact(&ok).map(|f| f.flags), Ok(0x03));
        for bad in [BadFrame::Magic, BadFrame::Truncated, BadFrame::ShortLength] {
            for compress in [false, true] {
                let (bytes, _) = encode(&v, compress, Some(Fault::BadFrame), bad);
                assert!(codec.decode_exact(&bytes).is_err(), "{bad:?} {compress}");
            }
        }
        let (extra, _) = encode(&v, false, Some(Fault::ExtraBytes), BadFrame::Magic);
        assert!(codec.decode_exact(&extra).is_err());
        let (plain, _) = encode(&v, true, Some(Fault::Uncompressed), BadFrame::Magic);
        assert_eq!(codec.decode_exact(&plain).map(|f| f.flags), Ok(0x01));
    }

    #[test]
    fn text_frames_break_only_under_frame_faults() {
        let codec = ZbxdCodec::new(MAX_FRAME);
        let (ok, _) = encode_bytes(b"1", false, None, BadFrame::Magic);
        assert_eq!(
            codec.decode_exact(&ok).map(|f| f.payload.to_vec()),
            Ok(b"1".to_vec())
        );
        for bad in [BadFrame::Magic, BadFrame::Truncated, BadFrame::ShortLength] {
            let (b, _) = encode_bytes(b"1", false, Some(Fault::BadFrame), bad);
            assert!(codec.decode_exact(&b).is_err(), "{bad:?}");
        }
        let (extra, _) = encode_bytes(b"1", false, Some(Fault::ExtraBytes), BadFrame::Magic);
        assert!(codec.decode_exact(&extra).is_err());
    }
}

//! A framed connection in the style of mini-redis' `Connection`: a stream, a read
//! buffer, and a codec that turns buffered bytes into frames.
//!
//! Why not `tokio_util::codec::Framed`: conformance checks need to see what a `Framed`
//! hides — bytes left over after a frame, a clean close versus a close mid-frame, and
//! silence for a given time — so the buffer stays in our hands.

use crate::frame::{FrameError, OverBudget};
use bytes::BytesMut;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::Decoder;

/// Errors from a transport operation, with the context a report needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("bad frame: {0}")]
    Frame(FrameError),
    /// The frame does not fit the run's memory budget (nothing was allocated for it).
    #[error("frame refused, over the memory budget: {0}")]
    Budget(OverBudget),
    /// Bytes arrived while the peer was expected to stay silent.
    #[error("{count} bytes arrived while silence was expected")]
    Unexpected { count: usize },
    #[error("I/O error: {0}")]
    Io(String),
    /// The TLS handshake failed, or the peer's certificate is not the expected one; the
    /// reason is OpenSSL's (or the check's), never the key.
    #[error("TLS handshake with {peer} failed: {reason}")]
    Tls { peer: String, reason: String },
    /// The peer connected in a way the accept list does not allow (Zabbix's wording).
    #[error("connection of type \"{got}\" from {peer} is not allowed (accept: {allowed})")]
    NotAllowed {
        peer: String,
        got: String,
        allowed: String,
    },
}

/// What `expect_silence` observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// No byte arrived during the whole period; the connection is still open.
    Quiet,
    /// The peer closed the connection without sending anything.
    Closed,
}

/// A stream plus a read buffer plus a codec.
#[derive(Debug)]
pub struct Connection<S, C> {
    stream: S,
    buffer: BytesMut,
    codec: C,
    /// Human-readable peer description for error messages.
    peer: String,
}

/// A codec error as a transport error: a refusal by the memory budget stays apart from
/// a malformed frame.
fn frame_error(e: impl Into<FrameError>) -> TransportError {
    let e = e.into();
    match e.over_budget() {
        Some(b) => TransportError::Budget(*b),
        None => TransportError::Frame(e),
    }
}

impl<S, C, F, E> Connection<S, C>
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: Decoder<Item = F, Error = E>,
    E: Into<FrameError>,
{
    pub fn new(stream: S, codec: C, peer: impl Into<String>) -> Self {
        Connection {
            stream,
            buffer: BytesMut::with_capacity(8 * 1024),
            codec,
            peer: peer.into(),
        }
    }

    /// The peer this connection talks to (address or socket path).
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The stream underneath (e.g. to ask what type of connection it is).
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// The codec (e.g. to charge a frame's parse cost to the run's memory budget).
    pub fn codec_mut(&mut self) -> &mut C {
        &mut self.codec
    }

    /// Bytes received but not yet consumed by a frame.
    pub fn leftover(&self) -> &[u8] {
        &self.buffer
    }

    /// Read one frame. `Ok(None)` means the peer closed cleanly before sending any byte
    /// of a new frame; a close in the middle of a frame is a framing error.
    pub async fn read_frame(&mut self, within: Duration) -> Result<Option<F>, TransportError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match self.codec.decode(&mut self.buffer) {
                Ok(Some(frame)) => return Ok(Some(frame)),
                Ok(None) => {}
                Err(e) => return Err(frame_error(e)),
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buffer));
            let n = match read.await {
                Err(_) => {
                    return Err(TransportError::Timeout {
                        what: if self.buffer.is_empty() {
                            format!("a frame from {}", self.peer)
                        } else {
                            format!(
                                "the rest of a frame from {} ({} bytes received)",
                                self.peer,
                                self.buffer.len()
                            )
                        },
                        after: within,
                    })
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
                Ok(Err(e)) => return Err(TransportError::Io(e.to_string())),
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                return match self.codec.decode_eof(&mut self.buffer) {
                    Ok(frame) => Ok(frame),
                    Err(e) => Err(frame_error(e)),
                };
            }
        }
    }

    /// Write raw bytes (an encoded frame, or deliberately malformed bytes).
    pub async fn write_all(
        &mut self,
        bytes: &[u8],
        within: Duration,
    ) -> Result<(), TransportError> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(within, write).await {
            Err(_) => Err(TransportError::Timeout {
                what: format!("{} to accept {} bytes", self.peer, bytes.len()),
                after: within,
            }),
            Ok(Err(e)) => Err(TransportError::Io(e.to_string())),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Wait `period` and report whether the peer stayed silent. Any byte that arrives
    /// is an error carrying how many bytes came.
    pub async fn expect_silence(&mut self, period: Duration) -> Result<Silence, TransportError> {
        if !self.buffer.is_empty() {
            return Err(TransportError::Unexpected {
                count: self.buffer.len(),
            });
        }
        match tokio::time::timeout(period, self.stream.read_buf(&mut self.buffer)).await {
            Err(_) => Ok(Silence::Quiet),
            Ok(Ok(0)) => Ok(Silence::Closed),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(Silence::Closed),
            Ok(Err(e)) => Err(TransportError::Io(e.to_string())),
            Ok(Ok(n)) => Err(TransportError::Unexpected { count: n }),
        }
    }

    /// Wait up to `within` for the peer to close. Returns the bytes that arrived first,
    /// if any (a conforming peer sends none).
    pub async fn wait_close(&mut self, within: Duration) -> Result<Vec<u8>, TransportError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            // Bound what we keep: a hostile peer must not grow our memory while we wait.
            if self.buffer.len() > 64 * 1024 {
                return Ok(self.buffer.split().to_vec());
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buffer)).await {
                Err(_) => {
                    return Err(TransportError::Timeout {
                        what: format!("{} to close the connection", self.peer),
                        after: within,
                    })
                }
                Ok(Ok(0)) => return Ok(self.buffer.split().to_vec()),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Ok(self.buffer.split().to_vec())
                }
                Ok(Err(e)) => return Err(TransportError::Io(e.to_string())),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Close our write side; the peer sees EOF.
    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{encode_frame, Budget, FrameOptions, ZbxdCodec, ZbxdError};
    use tokio::io::{duplex, AsyncWriteExt};

    const WAIT: Duration = Duration::from_secs(2);

    /// A connection reading what `bytes` writes, then EOF.
    async fn reading(
        bytes: &[u8],
        codec: ZbxdCodec,
    ) -> Connection<tokio::io::DuplexStream, ZbxdCodec> {
        let (ours, mut theirs) = duplex(1 << 16);
        theirs.write_all(bytes).await.unwrap();
        drop(theirs);
        Connection::new(ours, codec, "test peer")
    }

    #[tokio::test]
    async fn a_malformed_frame_stays_typed() {
        let mut c = reading(b"HTTP/1.1 200 OK\r\n", ZbxdCodec::default()).await;
        match c.read_frame(WAIT).await {
            Err(TransportError::Frame(FrameError::Zbxd(ZbxdError::BadMagic { found }))) => {
                assert_eq!(found, b"HTTP")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_close_mid_frame_is_a_truncated_frame() {
        let frame = encode_frame(br#"{"request":"x"}"#, &FrameOptions::default());
        let mut c = reading(&frame[..frame.len() - 3], ZbxdCodec::default()).await;
        match c.read_frame(WAIT).await {
            Err(TransportError::Frame(e)) => assert!(e.is_truncated(), "{e}"),
            other => panic!("{other:?}"),
        }
        // A close before any byte is a clean end, not an error.
        let mut c = reading(b"", ZbxdCodec::default()).await;
        assert_eq!(c.read_frame(WAIT).await, Ok(None));
    }

    #[tokio::test]
    async fn a_refusal_by_the_budget_is_not_a_bad_frame() {
        let frame = encode_frame(&[b' '; 4096], &FrameOptions::default());
        let codec = ZbxdCodec::default().with_budget(Budget::new(1024));
        let mut c = reading(&frame, codec).await;
        match c.read_frame(WAIT).await {
            Err(TransportError::Budget(b)) => assert_eq!(b.limit, 1024),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn bytes_during_silence_are_counted() {
        let (ours, mut theirs) = duplex(1024);
        let mut c = Connection::new(ours, ZbxdCodec::default(), "test peer");
        theirs.write_all(b"abc").await.unwrap();
        assert_eq!(
            c.expect_silence(WAIT).await,
            Err(TransportError::Unexpected { count: 3 })
        );
        drop(theirs);
    }
}

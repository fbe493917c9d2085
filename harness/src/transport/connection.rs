//! A framed connection in the style of mini-redis' `Connection`: a stream, a read
//! buffer, and a codec that turns buffered bytes into frames.
//!
//! Why not `tokio_util::codec::Framed`: conformance checks need to see what a `Framed`
//! hides — bytes left over after a frame, a clean close versus a close mid-frame, and
//! silence for a given time — so the buffer stays in our hands.

use bytes::BytesMut;
use std::fmt::Display;
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
    Frame(String),
    /// The frame does not fit the run's memory budget (nothing was allocated for it).
    #[error("{0}")]
    Budget(String),
    #[error("I/O error: {0}")]
    Io(String),
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

/// What a connection needs to know about a codec's errors: whether the frame was
/// refused by the run's memory budget (reported as such, not as a malformed frame).
pub trait CodecError: Display {
    fn over_budget(&self) -> bool {
        false
    }
}

impl CodecError for crate::frame::ZbxdError {
    fn over_budget(&self) -> bool {
        matches!(self, crate::frame::ZbxdError::OverBudget(_))
    }
}

impl CodecError for crate::frame::PluginFrameError {}

impl CodecError for std::io::Error {}

/// A codec error as a transport error.
fn frame_error<E: CodecError>(e: E) -> TransportError {
    if e.over_budget() {
        TransportError::Budget(e.to_string())
    } else {
        TransportError::Frame(e.to_string())
    }
}

impl<S, C, F, E> Connection<S, C>
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: Decoder<Item = F, Error = E>,
    E: CodecError,
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
            return Err(TransportError::Frame(format!(
                "{} bytes arrived while silence was expected",
                self.buffer.len()
            )));
        }
        match tokio::time::timeout(period, self.stream.read_buf(&mut self.buffer)).await {
            Err(_) => Ok(Silence::Quiet),
            Ok(Ok(0)) => Ok(Silence::Closed),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(Silence::Closed),
            Ok(Err(e)) => Err(TransportError::Io(e.to_string())),
            Ok(Ok(n)) => Err(TransportError::Frame(format!(
                "{n} bytes arrived while silence was expected"
            ))),
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

//! Agent 2 loadable-plugin framing (protocol.md §4.1): a 4-byte little-endian type code
//! (only 1 = JSON exists) and a 4-byte little-endian payload size, then the JSON body.
//! Messages flow in both directions on one Unix stream socket.

use super::reserve_ahead;
use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The only payload type defined by the protocol.
pub const TYPE_JSON: u32 = 1;
/// Header size: type + size.
pub const HEADER_LEN: usize = 8;
/// Default maximum payload: Agent 2's own receive limit for TCP (128 MiB) is a sane bound.
pub const DEFAULT_MAX_SIZE: u32 = 128 << 20;

/// One plugin-protocol frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFrame {
    /// The type code as received.
    pub typ: u32,
    /// The JSON body.
    pub payload: Bytes,
}

/// Everything that can be wrong with a plugin frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginFrameError {
    #[error("unsupported payload type {typ} (only 1 = JSON is defined)")]
    BadType { typ: u32 },
    #[error("declared payload size {declared} exceeds the maximum of {max} bytes")]
    TooLarge { declared: u64, max: u64 },
    /// The input ended inside `part` ("header" or "payload").
    #[error("connection closed after {got} of {expected} bytes of the {part}")]
    Truncated {
        part: &'static str,
        expected: u64,
        got: u64,
    },
    /// Bytes followed a complete frame where exactly one frame was expected.
    #[error("{count} unexpected bytes after the end of the frame")]
    TrailingBytes { count: u64 },
    #[error("I/O error: {0}")]
    Io(String),
}

impl From<std::io::Error> for PluginFrameError {
    fn from(e: std::io::Error) -> Self {
        PluginFrameError::Io(e.to_string())
    }
}

/// tokio-util codec for plugin frames.
#[derive(Debug, Clone)]
pub struct PluginCodec {
    max_size: u32,
}

impl Default for PluginCodec {
    fn default() -> Self {
        PluginCodec::new(DEFAULT_MAX_SIZE)
    }
}

impl PluginCodec {
    /// A codec that refuses frames declaring more than `max_size` payload bytes.
    pub fn new(max_size: u32) -> Self {
        PluginCodec { max_size }
    }
}

impl PluginCodec {
    /// The configured maximum payload size.
    pub fn max_size(&self) -> u32 {
        self.max_size
    }

    /// Decode exactly one frame from a complete byte string: truncation and trailing
    /// bytes are both errors (one-shot decoding for tests, `validate` and fuzzing).
    pub fn decode_exact(&self, bytes: &[u8]) -> Result<PluginFrame, PluginFrameError> {
        let mut buf = BytesMut::from(bytes);
        let mut codec = self.clone();
        match codec.decode_eof(&mut buf)? {
            Some(frame) if buf.is_empty() => Ok(frame),
            Some(_) => Err(PluginFrameError::TrailingBytes {
                count: buf.len() as u64,
            }),
            None => Err(PluginFrameError::Truncated {
                part: "header",
                expected: HEADER_LEN as u64,
                got: 0,
            }),
        }
    }
}

impl Decoder for PluginCodec {
    type Item = PluginFrame;
    type Error = PluginFrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<PluginFrame>, PluginFrameError> {
        let Some(typ) = src.get(..4).map(read_u32) else {
            return Ok(None);
        };
        // Refuse as soon as the type is known: the SDK reader would desynchronise here
        // (it does not consume the size bytes), so nothing after this point is usable.
        if typ != TYPE_JSON {
            return Err(PluginFrameError::BadType { typ });
        }
        let Some(size) = src.get(4..HEADER_LEN).map(read_u32) else {
            return Ok(None);
        };
        if size > self.max_size {
            return Err(PluginFrameError::TooLarge {
                declared: u64::from(size),
                max: u64::from(self.max_size),
            });
        }
        let size = usize::try_from(size).map_err(|_| PluginFrameError::TooLarge {
            declared: u64::from(size),
            max: u64::from(self.max_size),
        })?;
        let total = HEADER_LEN.saturating_add(size);
        if src.len() < total {
            reserve_ahead(src, total - src.len());
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        let payload = src.split_to(size).freeze();
        Ok(Some(PluginFrame { typ, payload }))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<PluginFrame>, PluginFrameError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        if src.is_empty() {
            return Ok(None);
        }
        let have = src.len() as u64;
        Err(match src.get(4..HEADER_LEN).map(read_u32) {
            None => PluginFrameError::Truncated {
                part: "header",
                expected: HEADER_LEN as u64,
                got: have,
            },
            Some(size) => PluginFrameError::Truncated {
                part: "payload",
                expected: u64::from(size),
                got: have - HEADER_LEN as u64,
            },
        })
    }
}

/// Read 4 little-endian bytes (callers pass exactly 4).
fn read_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    let n = b.len().min(4);
    a[..n].copy_from_slice(&b[..n]);
    u32::from_le_bytes(a)
}

/// Encode a JSON body as a plugin frame (type 1). Bodies longer than `u32::MAX` cannot
/// be framed; [`PluginCodec`]'s `Encoder` reports that as `TooLarge`, this function
/// writes the low 32 bits of the length (use it only for bodies you built).
pub fn encode_plugin_frame(payload: &[u8]) -> Vec<u8> {
    encode_plugin_frame_raw(TYPE_JSON, payload.len() as u32, payload)
}

/// Encode a frame with an arbitrary type code and declared size, for negative tests
/// (wrong type, size larger or smaller than the body).
pub fn encode_plugin_frame_raw(typ: u32, declared_size: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&typ.to_le_bytes());
    out.extend_from_slice(&declared_size.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

impl Encoder<&[u8]> for PluginCodec {
    type Error = PluginFrameError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), PluginFrameError> {
        if u32::try_from(item.len()).is_err() {
            return Err(PluginFrameError::TooLarge {
                declared: item.len() as u64,
                max: u64::from(u32::MAX),
            });
        }
        dst.reserve(HEADER_LEN + item.len());
        dst.extend_from_slice(&encode_plugin_frame(item));
        Ok(())
    }
}

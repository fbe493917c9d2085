//! The ZBXD frame used by every Zabbix TCP protocol (server, proxy, agent, sender).
//!
//! Layout (protocol.md §1.1): `ZBXD`, one flags byte, then two little-endian lengths
//! (4 bytes each, or 8 with the 0x04 "large" flag): `datalen` (bytes on the wire) and
//! `reserved` (uncompressed size when 0x02 is set, otherwise ignored — Agent 2 fills it
//! on plain frames too, so we must accept any value there).
//!
//! The decoder checks declared sizes against a configurable maximum *before* it reserves
//! any memory, never reserves more than 1 MiB ahead of the bytes actually received, and
//! inflates into a buffer bounded by the declared uncompressed size (itself bounded by the
//! maximum), so a hostile peer cannot make us allocate more than `max_size` (+1 byte).

use super::budget::{Budget, Held, OverBudget};
use super::reserve_ahead;
use bytes::{Buf, Bytes, BytesMut};
use std::io::Write;
use tokio_util::codec::{Decoder, Encoder};

/// The four magic bytes every frame starts with.
pub const MAGIC: &[u8; 4] = b"ZBXD";
/// Flag: Zabbix protocol; must always be set.
pub const FLAG_PROTOCOL: u8 = 0x01;
/// Flag: payload is a zlib stream; `reserved` holds the uncompressed size.
pub const FLAG_COMPRESSED: u8 = 0x02;
/// Flag: lengths are 8 bytes each instead of 4.
pub const FLAG_LARGE: u8 = 0x04;
/// Header size of a normal frame.
pub const HEADER_LEN: usize = 13;
/// Header size of a large (0x04) frame.
pub const LARGE_HEADER_LEN: usize = 21;
/// Default maximum payload size: Zabbix's own `ZBX_MAX_RECV_DATA_SIZE` (1 GiB).
pub const DEFAULT_MAX_SIZE: u64 = 1 << 30;
/// Lengths at or above this value do not fit a 4-byte field; C senders switch to 0x04
/// (protocol.md §1.2).
const SMALL_LENGTH_LIMIT: u64 = 0xFFFF_FFFF;

/// One decoded frame. `payload` is always the uncompressed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZbxdFrame {
    /// The flags byte exactly as received.
    pub flags: u8,
    /// `datalen` as declared in the header (bytes of payload on the wire).
    pub datalen: u64,
    /// `reserved` as declared in the header (uncompressed size if compressed).
    pub reserved: u64,
    /// The payload after decompression.
    pub payload: Bytes,
}

impl ZbxdFrame {
    /// Whether the frame was zlib-compressed on the wire.
    pub fn is_compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }

    /// Whether the frame used 8-byte lengths.
    pub fn is_large(&self) -> bool {
        self.flags & FLAG_LARGE != 0
    }

    /// Total bytes the frame occupied on the wire.
    pub fn wire_len(&self) -> u64 {
        let header = if self.is_large() {
            LARGE_HEADER_LEN
        } else {
            HEADER_LEN
        };
        (header as u64).saturating_add(self.datalen)
    }
}

/// Where in the frame a truncation happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramePart {
    Magic,
    Flags,
    Lengths,
    Payload,
}

impl std::fmt::Display for FramePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FramePart::Magic => "magic",
            FramePart::Flags => "flags byte",
            FramePart::Lengths => "length fields",
            FramePart::Payload => "payload",
        })
    }
}

/// Everything that can be wrong with a ZBXD frame, one variant per cause so that tests
/// and reports can say exactly what a peer did.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZbxdError {
    /// The first bytes are not (a prefix of) `ZBXD`. `found` holds up to 4 bytes.
    #[error("bad magic: expected \"ZBXD\", got {found:02x?}")]
    BadMagic { found: Vec<u8> },
    /// 0x01 clear, or a bit other than 0x02/0x04 set (0x04 only when large frames are
    /// accepted), as a C receiver checks it (protocol.md §1.4 step 2).
    #[error("unsupported flags 0x{flags:02x} (0x01 must be set; only 0x02 and 0x04 may be added)")]
    BadFlags { flags: u8 },
    /// `datalen` above the configured maximum; detected from the header alone.
    #[error("declared payload length {declared} exceeds the maximum of {max} bytes")]
    TooLarge { declared: u64, max: u64 },
    /// `reserved` of a compressed frame above the configured maximum.
    #[error("declared uncompressed length {declared} exceeds the maximum of {max} bytes")]
    UncompressedTooLarge { declared: u64, max: u64 },
    /// The input ended inside `part`: `got` of the `expected` bytes of that part arrived.
    #[error("connection closed after {got} of {expected} bytes of the {part}")]
    Truncated {
        part: FramePart,
        expected: u64,
        got: u64,
    },
    /// The payload of a 0x02 frame is not a complete, valid zlib stream.
    #[error("payload is not a valid zlib stream: {reason}")]
    BadZlib { reason: String },
    /// The zlib stream inflated to a different size than `reserved` declared. When the
    /// stream is longer we stop after one extra byte (zlib-bomb guard), so
    /// `actual == declared + 1` means "more than declared".
    #[error("{}", describe_mismatch(*.declared, *.actual))]
    LengthMismatch { declared: u64, actual: u64 },
    /// Bytes followed a complete frame where exactly one frame was expected.
    #[error("{count} unexpected bytes after the end of the frame")]
    TrailingBytes { count: u64 },
    /// The run's memory budget cannot hold this frame alongside what other connections
    /// hold (nothing was allocated for it).
    #[error("frame refused, over the memory budget: {0}")]
    OverBudget(#[from] super::budget::OverBudget),
    #[error("I/O error: {0}")]
    Io(String),
}

fn describe_mismatch(declared: u64, actual: u64) -> String {
    if actual > declared {
        format!("uncompressed payload is longer than the {declared} bytes the header declared")
    } else {
        format!("uncompressed payload is {actual} bytes but the header declared {declared}")
    }
}

impl From<std::io::Error> for ZbxdError {
    fn from(e: std::io::Error) -> Self {
        ZbxdError::Io(e.to_string())
    }
}

/// A parsed, size-checked header.
#[derive(Debug, Clone, Copy)]
struct Header {
    len: usize,
    flags: u8,
    datalen: u64,
    reserved: u64,
}

impl Header {
    /// The budget share of the frame: its bytes, plus the inflated ones if compressed.
    fn share(&self) -> u64 {
        let inflated = if self.flags & FLAG_COMPRESSED != 0 {
            self.reserved
        } else {
            0
        };
        self.datalen.saturating_add(inflated).max(1)
    }
}

/// A tokio-util codec for ZBXD frames.
///
/// `decode` returns `Ok(None)` until a whole frame is buffered; `decode_eof` turns a
/// partial frame into a precise [`ZbxdError::Truncated`]. Like a C receiver (and unlike
/// the one-shot [`ZbxdCodec::decode_exact`]), the streaming decoder leaves any bytes
/// after a frame in the buffer for the next call.
#[derive(Debug)]
pub struct ZbxdCodec {
    max_size: u64,
    accept_large: bool,
    encode: FrameOptions,
    /// The run's memory budget, when frames must take a share of it.
    budget: Option<Budget>,
    /// The share of the frame being read (or last read), given back with the next
    /// header or when the codec is dropped.
    held: Option<Held>,
    /// A header was charged and its frame is not complete yet.
    reading: bool,
}

/// A clone shares the budget but holds no share of its own.
impl Clone for ZbxdCodec {
    fn clone(&self) -> Self {
        ZbxdCodec {
            max_size: self.max_size,
            accept_large: self.accept_large,
            encode: self.encode.clone(),
            budget: self.budget.clone(),
            held: None,
            reading: false,
        }
    }
}

impl Default for ZbxdCodec {
    fn default() -> Self {
        ZbxdCodec::new(DEFAULT_MAX_SIZE)
    }
}

impl ZbxdCodec {
    /// A codec that refuses any frame declaring more than `max_size` bytes
    /// (on the wire or uncompressed).
    pub fn new(max_size: u64) -> Self {
        ZbxdCodec {
            max_size,
            accept_large: true,
            encode: FrameOptions::default(),
            budget: None,
            held: None,
            reading: false,
        }
    }

    /// Make every frame take its share of `budget` (declared size, plus the inflated
    /// size when compressed) before anything is buffered for it.
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Grow the last frame's share by `bytes` (what parsing it will cost); without a
    /// budget this always succeeds.
    pub fn charge(&mut self, bytes: u64) -> Result<(), OverBudget> {
        match (&self.budget, &mut self.held) {
            (None, _) => Ok(()),
            (Some(_), Some(h)) => h.grow(bytes),
            (Some(b), None) => b.take(bytes).map(|h| self.held = Some(h)),
        }
    }

    /// Refuse 0x04 frames, as Agent 2 and agentd effectively do.
    pub fn without_large(mut self) -> Self {
        self.accept_large = false;
        self
    }

    /// Options the [`Encoder`] impl applies to every payload (default: plain 0x01).
    pub fn with_encode_options(mut self, opts: FrameOptions) -> Self {
        self.encode = opts;
        self
    }

    /// The configured maximum.
    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// Parse and check the header if enough bytes are present. Errors as soon as the
    /// bytes present prove the frame bad (a wrong magic prefix, bad flags), like a C
    /// receiver does, rather than waiting for more input.
    fn parse_header(&self, src: &[u8]) -> Result<Option<Header>, ZbxdError> {
        let magic_have = src.len().min(MAGIC.len());
        if src[..magic_have] != MAGIC[..magic_have] {
            return Err(ZbxdError::BadMagic {
                found: src[..magic_have].to_vec(),
            });
        }
        let Some(&flags) = src.get(4) else {
            return Ok(None);
        };
        let allowed =
            FLAG_PROTOCOL | FLAG_COMPRESSED | if self.accept_large { FLAG_LARGE } else { 0 };
        if flags & FLAG_PROTOCOL == 0 || flags & !allowed != 0 {
            return Err(ZbxdError::BadFlags { flags });
        }
        let (len, width) = if flags & FLAG_LARGE != 0 {
            (LARGE_HEADER_LEN, 8)
        } else {
            (HEADER_LEN, 4)
        };
        let Some(lengths) = src.get(5..len) else {
            return Ok(None);
        };
        let (datalen, reserved) = lengths.split_at(width);
        let datalen = read_le(datalen);
        let reserved = read_le(reserved);
        if datalen > self.max_size {
            return Err(ZbxdError::TooLarge {
                declared: datalen,
                max: self.max_size,
            });
        }
        if flags & FLAG_COMPRESSED != 0 && reserved > self.max_size {
            return Err(ZbxdError::UncompressedTooLarge {
                declared: reserved,
                max: self.max_size,
            });
        }
        Ok(Some(Header {
            len,
            flags,
            datalen,
            reserved,
        }))
    }

    /// Decode exactly one frame from a complete byte string: truncation and trailing
    /// bytes are both errors. Used for one-shot decoding (tests, `validate`, fuzzing).
    pub fn decode_exact(&self, bytes: &[u8]) -> Result<ZbxdFrame, ZbxdError> {
        let mut buf = BytesMut::from(bytes);
        let mut codec = self.clone();
        match codec.decode_eof(&mut buf)? {
            Some(frame) if buf.is_empty() => Ok(frame),
            Some(_) => Err(ZbxdError::TrailingBytes {
                count: buf.len() as u64,
            }),
            None => Err(ZbxdError::Truncated {
                part: FramePart::Magic,
                expected: MAGIC.len() as u64,
                got: 0,
            }),
        }
    }

    /// The error for a non-empty partial frame at end of input: which part was cut and
    /// how many of its bytes arrived.
    fn truncation(&self, src: &[u8]) -> Result<ZbxdError, ZbxdError> {
        let have = src.len() as u64;
        let magic = MAGIC.len() as u64;
        if have < magic {
            return Ok(ZbxdError::Truncated {
                part: FramePart::Magic,
                expected: magic,
                got: have,
            });
        }
        let Some(&flags) = src.get(4) else {
            return Ok(ZbxdError::Truncated {
                part: FramePart::Flags,
                expected: 1,
                got: 0,
            });
        };
        let width: u64 = if flags & FLAG_LARGE != 0 { 16 } else { 8 };
        if have < 5 + width {
            return Ok(ZbxdError::Truncated {
                part: FramePart::Lengths,
                expected: width,
                got: have - 5,
            });
        }
        // The header is complete, so this either errors or parses.
        match self.parse_header(src)? {
            Some(h) => Ok(ZbxdError::Truncated {
                part: FramePart::Payload,
                expected: h.datalen,
                got: have - h.len as u64,
            }),
            None => Ok(ZbxdError::Truncated {
                part: FramePart::Lengths,
                expected: width,
                got: have - 5,
            }),
        }
    }
}

/// Read a 4- or 8-byte little-endian unsigned length.
fn read_le(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(b)
}

/// Inflate a zlib stream that must produce exactly `declared` bytes.
///
/// Output memory never exceeds `declared + 1` bytes whatever the input (zlib-bomb guard):
/// we grow the output buffer geometrically but cap it there, and one extra byte is
/// enough to prove the stream too long. A stream that ends without its end marker is
/// `BadZlib` (like zlib's `uncompress()` in a C receiver), not a length mismatch.
/// Bytes after the end of the zlib stream (but within `datalen`) are ignored, as zlib's
/// `uncompress()` in a C receiver ignores them.
fn inflate_bounded(data: &[u8], declared: u64) -> Result<Vec<u8>, ZbxdError> {
    use flate2::{Decompress, FlushDecompress, Status};

    let limit = usize::try_from(declared.saturating_add(1)).unwrap_or(usize::MAX);
    // Start small: `declared` is untrusted even after the max check.
    let mut out = vec![0u8; limit.min(data.len().saturating_mul(4).max(4096))];
    let mut filled = 0usize;
    let mut z = Decompress::new(true);
    loop {
        if filled == out.len() {
            if out.len() >= limit {
                return Err(ZbxdError::LengthMismatch {
                    declared,
                    actual: filled as u64,
                });
            }
            // reserve_exact: plain `resize` may round capacity up past `limit`.
            let grown = out.len().saturating_mul(2).min(limit);
            out.reserve_exact(grown - out.len());
            out.resize(grown, 0);
        }
        let consumed = usize::try_from(z.total_in()).unwrap_or(usize::MAX);
        let input = data.get(consumed..).unwrap_or_default();
        let before_in = z.total_in();
        let before_out = z.total_out();
        let status = z
            .decompress(input, &mut out[filled..], FlushDecompress::None)
            .map_err(|e| ZbxdError::BadZlib {
                reason: e.to_string(),
            })?;
        let produced = usize::try_from(z.total_out() - before_out).unwrap_or(usize::MAX);
        filled = filled.saturating_add(produced);
        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::BufError => {
                let stalled = z.total_in() == before_in && produced == 0;
                if stalled && filled < out.len() {
                    // Output space left, but zlib can make no progress: input exhausted.
                    return Err(ZbxdError::BadZlib {
                        reason: format!(
                            "stream ends before its end marker after {} of {} input bytes",
                            z.total_in(),
                            data.len()
                        ),
                    });
                }
            }
        }
    }
    if filled as u64 != declared {
        return Err(ZbxdError::LengthMismatch {
            declared,
            actual: filled as u64,
        });
    }
    out.truncate(filled);
    Ok(out)
}

impl Decoder for ZbxdCodec {
    type Item = ZbxdFrame;
    type Error = ZbxdError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ZbxdFrame>, ZbxdError> {
        if src.is_empty() {
            return Ok(None);
        }
        let Some(h) = self.parse_header(src)? else {
            return Ok(None);
        };
        // A new frame: give back the last one's share, take this one's (once).
        if let (Some(budget), false) = (&self.budget, self.reading) {
            self.held = None;
            self.held = Some(budget.take(h.share())?);
            self.reading = true;
        }
        // datalen <= max_size was checked, but max_size itself may be huge.
        let total = (h.len as u64)
            .checked_add(h.datalen)
            .and_then(|t| usize::try_from(t).ok())
            .ok_or(ZbxdError::TooLarge {
                declared: h.datalen,
                max: self.max_size,
            })?;
        if src.len() < total {
            reserve_ahead(src, total - src.len());
            return Ok(None);
        }
        self.reading = false;
        src.advance(h.len);
        let body = src.split_to(total - h.len).freeze();
        let payload = if h.flags & FLAG_COMPRESSED != 0 {
            Bytes::from(inflate_bounded(&body, h.reserved)?)
        } else {
            body
        };
        Ok(Some(ZbxdFrame {
            flags: h.flags,
            datalen: h.datalen,
            reserved: h.reserved,
            payload,
        }))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<ZbxdFrame>, ZbxdError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        if src.is_empty() {
            return Ok(None);
        }
        Err(self.truncation(src)?)
    }
}

/// How to encode a frame. The defaults produce what a C Zabbix sender produces
/// (0x01, reserved 0); the override fields exist to build deliberately wrong frames
/// for negative tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameOptions {
    /// zlib-compress the payload and set 0x02.
    pub compress: bool,
    /// Use 8-byte lengths and set 0x04. Also switched on automatically when a
    /// *computed* length does not fit 4 bytes, as a C sender does.
    pub large: bool,
    /// Write this flags byte instead of the computed one. It does not change the
    /// width of the length fields (that follows `large`), so a frame can lie about it.
    pub flags: Option<u8>,
    /// Write this `datalen` instead of the real one (only its low 32 bits without 0x04).
    pub datalen: Option<u64>,
    /// Write this `reserved` instead of the computed one (low 32 bits without 0x04).
    pub reserved: Option<u64>,
    /// Replace the magic.
    pub magic: Option<[u8; 4]>,
    /// Bytes appended after the frame.
    pub trailing: Vec<u8>,
}

impl FrameOptions {
    /// Plain 0x01 frame (the default).
    pub fn plain() -> Self {
        FrameOptions::default()
    }

    /// 0x03 frame: zlib payload, `reserved` = uncompressed size.
    pub fn compressed() -> Self {
        FrameOptions {
            compress: true,
            ..FrameOptions::default()
        }
    }
}

/// Compress with zlib (RFC 1950), as Zabbix's `compress()` does.
pub fn zlib_compress(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::default(),
    );
    // Writing into a Vec has no failure mode other than allocation failure (which aborts).
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// Encode a payload into a frame according to `opts`.
pub fn encode_frame(payload: &[u8], opts: &FrameOptions) -> Vec<u8> {
    let compressed;
    let body: &[u8] = if opts.compress {
        compressed = zlib_compress(payload);
        &compressed
    } else {
        payload
    };
    let real_reserved = if opts.compress {
        payload.len() as u64
    } else {
        0
    };
    let large = opts.large
        || body.len() as u64 >= SMALL_LENGTH_LIMIT
        || real_reserved >= SMALL_LENGTH_LIMIT;
    let mut flags = FLAG_PROTOCOL;
    if opts.compress {
        flags |= FLAG_COMPRESSED;
    }
    if large {
        flags |= FLAG_LARGE;
    }
    let flags = opts.flags.unwrap_or(flags);
    let datalen = opts.datalen.unwrap_or(body.len() as u64);
    let reserved = opts.reserved.unwrap_or(real_reserved);
    let mut out = Vec::with_capacity(LARGE_HEADER_LEN + body.len() + opts.trailing.len());
    out.extend_from_slice(&opts.magic.unwrap_or(*MAGIC));
    out.push(flags);
    if large {
        out.extend_from_slice(&datalen.to_le_bytes());
        out.extend_from_slice(&reserved.to_le_bytes());
    } else {
        out.extend_from_slice(&(datalen as u32).to_le_bytes());
        out.extend_from_slice(&(reserved as u32).to_le_bytes());
    }
    out.extend_from_slice(body);
    out.extend_from_slice(&opts.trailing);
    out
}

/// Encoder with the codec's fixed options (see [`ZbxdCodec::with_encode_options`]),
/// for `Framed`-style writers.
impl Encoder<&[u8]> for ZbxdCodec {
    type Error = ZbxdError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), ZbxdError> {
        dst.extend_from_slice(&encode_frame(item, &self.encode));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflate_rejects_stream_without_end_marker() {
        let z = zlib_compress(b"hello world, hello world");
        let cut = &z[..z.len() - 4]; // drop the Adler-32 trailer
        assert!(matches!(
            inflate_bounded(cut, 24),
            Err(ZbxdError::BadZlib { .. })
        ));
    }

    #[test]
    fn inflate_stops_one_byte_past_declared() {
        let z = zlib_compress(&[0u8; 100_000]);
        assert_eq!(
            inflate_bounded(&z, 10),
            Err(ZbxdError::LengthMismatch {
                declared: 10,
                actual: 11
            })
        );
    }

    #[test]
    fn inflate_reports_short_stream() {
        let z = zlib_compress(b"abc");
        assert_eq!(
            inflate_bounded(&z, 4),
            Err(ZbxdError::LengthMismatch {
                declared: 4,
                actual: 3
            })
        );
        assert_eq!(inflate_bounded(&z, 3).as_deref(), Ok(&b"abc"[..]));
    }

    #[test]
    fn read_le_widths() {
        assert_eq!(read_le(&[1, 0, 0, 0]), 1);
        assert_eq!(read_le(&[0xff; 8]), u64::MAX);
    }
}

//! Frame codecs: the ZBXD frame of the TCP protocols and the type+size frame of the
//! Agent 2 plugin protocol. Pure byte-level code; no I/O.

pub mod budget;
pub mod plugin;
pub mod zbxd;

pub use budget::{Budget, BudgetReport, OverBudget};
pub use plugin::{
    encode_plugin_frame, encode_plugin_frame_raw, PluginCodec, PluginFrame, PluginFrameError,
};
pub use zbxd::{
    encode_frame, zlib_compress, FrameOptions, FramePart, ZbxdCodec, ZbxdError, ZbxdFrame,
};

use bytes::BytesMut;

/// A framing error of either protocol, kept typed through the transport so that a
/// check can tell what the peer did (bad magic, closed mid-frame, over the budget)
/// rather than parse a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error(transparent)]
    Zbxd(#[from] ZbxdError),
    #[error(transparent)]
    Plugin(#[from] PluginFrameError),
}

impl FrameError {
    /// The budget refusal inside, when the frame was refused for memory rather than
    /// malformed (reported as such, not as a broken frame).
    pub fn over_budget(&self) -> Option<&OverBudget> {
        match self {
            FrameError::Zbxd(ZbxdError::OverBudget(b)) => Some(b),
            _ => None,
        }
    }

    /// The peer closed the connection in the middle of a frame.
    pub fn is_truncated(&self) -> bool {
        matches!(
            self,
            FrameError::Zbxd(ZbxdError::Truncated { .. })
                | FrameError::Plugin(PluginFrameError::Truncated { .. })
        )
    }
}

/// Never reserve more than this ahead of the bytes actually received: declared lengths
/// are untrusted, and a peer announcing 1 GiB then sending 10 bytes must not cost 1 GiB.
const MAX_RESERVE_AHEAD: usize = 1 << 20;
/// Spare capacity below which we reserve again. Reserving on every call would let the
/// buffer double each time a byte arrives (`reserve` grows geometrically).
const RESERVE_LOW_WATER: usize = 8 << 10;

/// Make room for up to `missing` more bytes of a frame being received: at most
/// [`MAX_RESERVE_AHEAD`] beyond what has arrived, and only when spare capacity runs low.
pub(crate) fn reserve_ahead(src: &mut BytesMut, missing: usize) {
    let spare = src.capacity() - src.len();
    if spare < missing.min(RESERVE_LOW_WATER) {
        src.reserve(missing.min(MAX_RESERVE_AHEAD));
    }
}

//! Fuzz-style robustness for both decoders: arbitrary, structured and mutated inputs,
//! fed whole and in random chunks through `decode`, `decode_eof` and `decode_exact`.
//! Asserts: no panic, buffers and memory bounded, streaming and one-shot agree.
//!
//! Default: 256 cases per property so it runs in seconds; raise with
//! `PROPTEST_CASES=100000 cargo test --release --test frame_fuzz`.

mod frame_support;

use bytes::BytesMut;
use frame_support::{measure, Tracking};
use proptest::prelude::*;
use tokio_util::codec::Decoder;
use zbx_conform::frame::plugin::{encode_plugin_frame_raw, PluginCodec};
use zbx_conform::frame::zbxd::{encode_frame, zlib_compress, FrameOptions, ZbxdCodec};

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// Small maximum for half of the runs, so the size checks are exercised often.
const SMALL_MAX: u64 = 4096;
/// What the decoders may reserve ahead of received bytes.
const RESERVE_AHEAD: usize = 1 << 20;
/// Slack for inflate state and bookkeeping.
const SLACK: usize = 512 << 10;

fn config() -> proptest::test_runner::Config {
    frame_support::proptest_config()
}

/// Headers that are mostly valid so that the decoder gets past the magic and flags.
fn zbxd_like() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            4 => Just(*b"ZBXD"),
            1 => any::<[u8; 4]>(),
        ],
        prop_oneof![
            4 => prop::sample::select(vec![0x01u8, 0x03, 0x05, 0x07]),
            1 => any::<u8>(),
        ],
        prop_oneof![0u64..64, 0u64..5000, any::<u64>()],
        prop_oneof![0u64..64, 0u64..5000, any::<u64>()],
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::collection::vec(any::<u8>(), 0..200).prop_map(|v| zlib_compress(&v)),
            (0usize..200_000).prop_map(|n| zlib_compress(&vec![0u8; n])),
        ],
    )
        .prop_map(|(magic, flags, datalen, reserved, body)| {
            let mut out = magic.to_vec();
            out.push(flags);
            if flags & 0x04 != 0 {
                out.extend_from_slice(&datalen.to_le_bytes());
                out.extend_from_slice(&reserved.to_le_bytes());
            } else {
                out.extend_from_slice(&(datalen as u32).to_le_bytes());
                out.extend_from_slice(&(reserved as u32).to_le_bytes());
            }
            out.extend_from_slice(&body);
            out
        })
}

/// Valid frames with a few bytes overwritten, cut, or extended.
fn mutated_zbxd() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        proptest::option::of(any::<prop::sample::Index>()),
        proptest::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(payload, compress, large, edits, cut, tail)| {
            let opts = FrameOptions {
                compress,
                large,
                ..FrameOptions::default()
            };
            let mut f = encode_frame(&payload, &opts);
            for (at, byte) in edits {
                let i = at.index(f.len());
                f[i] = byte;
            }
            if let Some(c) = cut {
                f.truncate(c.index(f.len() + 1));
            }
            f.extend(tail);
            f
        })
}

fn any_zbxd_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        zbxd_like(),
        mutated_zbxd(),
    ]
}

fn any_plugin_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        (
            prop_oneof![4 => Just(1u32), 1 => any::<u32>()],
            prop_oneof![0u32..64, 0u32..5000, any::<u32>()],
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec(any::<u8>(), 0..20),
        )
            .prop_map(|(t, s, body, tail)| {
                let mut f = encode_plugin_frame_raw(t, s, &body);
                f.extend(tail);
                f
            }),
    ]
}

/// Split points for chunked feeding.
fn chunks() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..64, 1..16)
}

/// Feed `input` in chunks through `decode`, then `decode_eof`; returns the payloads of
/// the frames decoded before the first error (or the end). Checks buffer bounds on the way.
fn drive<D, F>(mut codec: D, input: &[u8], sizes: &[usize], payload_of: F) -> Vec<Vec<u8>>
where
    D: Decoder,
    F: Fn(&D::Item) -> Vec<u8>,
{
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < input.len() {
        let n = sizes[i % sizes.len()].min(input.len() - pos);
        i += 1;
        buf.extend_from_slice(&input[pos..pos + n]);
        pos += n;
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => frames.push(payload_of(&f)),
                Ok(None) => break,
                Err(_) => return frames,
            }
        }
        // Received bytes may be held with `Vec`-style doubling, plus the reserve ahead.
        assert!(
            buf.capacity() <= 2 * input.len() + RESERVE_AHEAD + 64,
            "buffer capacity {} for {} input bytes",
            buf.capacity(),
            input.len()
        );
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(f)) => frames.push(payload_of(&f)),
            Ok(None) | Err(_) => return frames,
        }
    }
}

/// Memory a decode of `input` may legitimately use: copies of the input, the reserve
/// ahead, and at most `max + 1` inflated bytes (also bounded by deflate's ~1032:1 ratio).
fn memory_bound(input_len: usize, max: u64) -> usize {
    let inflated = (max as usize)
        .saturating_add(1)
        .min(input_len.saturating_mul(1100));
    4 * input_len + RESERVE_AHEAD + inflated + SLACK
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn zbxd_decoder_never_panics_and_stays_bounded(
        input in any_zbxd_input(),
        sizes in chunks(),
        small in any::<bool>(),
    ) {
        let codec = if small { ZbxdCodec::new(SMALL_MAX) } else { ZbxdCodec::default() };
        let max = codec.max_size();
        let (streamed, usage) = measure(|| {
            drive(codec.clone(), &input, &sizes, |f| f.payload.to_vec())
        });
        prop_assert!(usage.peak_extra <= memory_bound(input.len(), max), "{:?}", usage);
        for p in &streamed {
            prop_assert!(p.len() as u64 <= max);
        }
        let (exact, usage) = measure(|| codec.decode_exact(&input));
        prop_assert!(usage.peak_extra <= memory_bound(input.len(), max), "{:?}", usage);
        if let Ok(frame) = exact {
            // One-shot success means streaming saw exactly that one frame.
            prop_assert_eq!(streamed.len(), 1);
            prop_assert_eq!(&streamed[0][..], &frame.payload[..]);
            prop_assert_eq!(frame.wire_len(), input.len() as u64);
        }
    }

    #[test]
    fn zbxd_without_large_never_panics(input in any_zbxd_input()) {
        let codec = ZbxdCodec::new(SMALL_MAX).without_large();
        if let Ok(frame) = codec.decode_exact(&input) {
            prop_assert!(!frame.is_large());
        }
        let mut buf = BytesMut::from(&input[..]);
        let mut c = codec.clone();
        while let Ok(Some(_)) = c.decode_eof(&mut buf) {}
    }

    #[test]
    fn plugin_decoder_never_panics_and_stays_bounded(
        input in any_plugin_input(),
        sizes in chunks(),
        small in any::<bool>(),
    ) {
        let codec = if small { PluginCodec::new(SMALL_MAX as u32) } else { PluginCodec::default() };
        let max = u64::from(codec.max_size());
        let (streamed, usage) = measure(|| {
            drive(codec.clone(), &input, &sizes, |f| f.payload.to_vec())
        });
        prop_assert!(usage.peak_extra <= memory_bound(input.len(), 0), "{:?}", usage);
        for p in &streamed {
            prop_assert!(p.len() as u64 <= max);
        }
        if let Ok(frame) = codec.decode_exact(&input) {
            prop_assert_eq!(streamed.len(), 1);
            prop_assert_eq!(&streamed[0][..], &frame.payload[..]);
            prop_assert_eq!(frame.payload.len() + 8, input.len());
        }
    }
}

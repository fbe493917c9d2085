//! ZBXD codec tests: round trips over every flag combination, truncation at every byte,
//! one crafted input per error variant, size limits enforced before allocation, zlib
//! bombs, streaming vs one-shot decoding. Facts from protocol.md §1.

mod frame_support;

use bytes::BytesMut;
use frame_support::{decode_byte_by_byte, measure, Tracking};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};
use zbx_conform::frame::zbxd::{
    encode_frame, zlib_compress, FrameOptions, FramePart, ZbxdCodec, ZbxdError, FLAG_COMPRESSED,
    FLAG_LARGE, FLAG_PROTOCOL, HEADER_LEN, LARGE_HEADER_LEN,
};

#[global_allocator]
static ALLOC: Tracking = Tracking;

const PAYLOAD: &[u8] = br#"{"request":"active checks","host":"Zabbix server"}"#;

fn opts(compress: bool, large: bool) -> FrameOptions {
    FrameOptions {
        compress,
        large,
        ..FrameOptions::default()
    }
}

/// A hand-built header, independent of `encode_frame`, for crafted inputs.
fn header(flags: u8, datalen: u64, reserved: u64) -> Vec<u8> {
    let mut h = b"ZBXD".to_vec();
    h.push(flags);
    if flags & FLAG_LARGE != 0 {
        h.extend_from_slice(&datalen.to_le_bytes());
        h.extend_from_slice(&reserved.to_le_bytes());
    } else {
        h.extend_from_slice(&(datalen as u32).to_le_bytes());
        h.extend_from_slice(&(reserved as u32).to_le_bytes());
    }
    h
}

/// The truncation error a correct decoder must give for `frame[..cut]`, derived from the
/// byte layout of protocol.md §1.1 (not from the decoder).
fn expected_truncation(frame: &[u8], cut: usize) -> ZbxdError {
    let large = frame[4] & FLAG_LARGE != 0;
    let (hlen, width) = if large {
        (LARGE_HEADER_LEN, 16)
    } else {
        (HEADER_LEN, 8)
    };
    let datalen = (frame.len() - hlen) as u64;
    let (part, expected, got) = match cut {
        0..=3 => (FramePart::Magic, 4, cut as u64),
        4 => (FramePart::Flags, 1, 0),
        c if c < 5 + width => (FramePart::Lengths, width as u64, (c - 5) as u64),
        c => (FramePart::Payload, datalen, (c - hlen) as u64),
    };
    ZbxdError::Truncated {
        part,
        expected,
        got,
    }
}

// ---------------------------------------------------------------- round trips

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Every flag combination and payload size decodes back to what was encoded.
    #[test]
    fn round_trip_all_flag_combinations(
        payload in proptest::collection::vec(any::<u8>(), 0..4096),
        compress in any::<bool>(),
        large in any::<bool>(),
    ) {
        let bytes = encode_frame(&payload, &opts(compress, large));
        let frame = ZbxdCodec::default().decode_exact(&bytes).unwrap();
        prop_assert_eq!(&frame.payload[..], &payload[..]);
        prop_assert_eq!(frame.is_compressed(), compress);
        prop_assert_eq!(frame.is_large(), large);
        prop_assert_eq!(frame.wire_len(), bytes.len() as u64);
        let expected_reserved = if compress { payload.len() as u64 } else { 0 };
        prop_assert_eq!(frame.reserved, expected_reserved);
        let hlen = if large { LARGE_HEADER_LEN } else { HEADER_LEN };
        prop_assert_eq!(frame.datalen, (bytes.len() - hlen) as u64);
    }

    /// Agent 2 writes the payload length into `reserved` even on plain frames; any value
    /// there must be accepted when 0x02 is clear (protocol.md §1.2).
    #[test]
    fn arbitrary_reserved_on_plain_frames_is_accepted(
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        reserved in any::<u64>(),
        large in any::<bool>(),
    ) {
        let o = FrameOptions { large, reserved: Some(reserved), ..FrameOptions::default() };
        let bytes = encode_frame(&payload, &o);
        // A small maximum proves `reserved` is not checked against it on plain frames.
        let frame = ZbxdCodec::new(256).decode_exact(&bytes).unwrap();
        prop_assert_eq!(&frame.payload[..], &payload[..]);
        let written = if large { reserved } else { u64::from(reserved as u32) };
        prop_assert_eq!(frame.reserved, written);
    }

    /// Feeding one byte at a time yields `None` until the last byte, then the same frame
    /// as one-shot decoding.
    #[test]
    fn byte_by_byte_equals_one_shot(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        compress in any::<bool>(),
        large in any::<bool>(),
    ) {
        let bytes = encode_frame(&payload, &opts(compress, large));
        let one_shot = ZbxdCodec::default().decode_exact(&bytes).unwrap();
        let (at, got) = decode_byte_by_byte(ZbxdCodec::default(), &bytes);
        prop_assert_eq!(at, Some(bytes.len() - 1), "the frame must come out at the last byte");
        prop_assert_eq!(got.as_ref(), Some(&one_shot));
    }
}

#[test]
fn empty_payload_in_every_flag_combination() {
    for compress in [false, true] {
        for large in [false, true] {
            let bytes = encode_frame(b"", &opts(compress, large));
            let frame = ZbxdCodec::new(0)
                .decode_exact(&bytes)
                .map(Some)
                .or_else(|e| match e {
                    // A compressed empty payload is an 8+ byte zlib stream: over a 0 max.
                    ZbxdError::TooLarge { .. } if compress => Ok(None),
                    e => Err(e),
                })
                .unwrap();
            if let Some(frame) = frame {
                assert!(frame.payload.is_empty());
                assert_eq!(frame.datalen, 0);
            }
            let frame = ZbxdCodec::default().decode_exact(&bytes).unwrap();
            assert!(
                frame.payload.is_empty(),
                "compress={compress} large={large}"
            );
            assert_eq!(frame.reserved, 0);
        }
    }
}

#[test]
fn sizes_at_the_limit() {
    const MAX: u64 = 1000;
    let codec = ZbxdCodec::new(MAX);
    for large in [false, true] {
        let at = vec![b'x'; MAX as usize];
        let frame = codec.decode_exact(&encode_frame(&at, &opts(false, large)));
        assert_eq!(frame.unwrap().payload.len(), MAX as usize);

        let over = vec![b'x'; MAX as usize + 1];
        assert_eq!(
            codec.decode_exact(&encode_frame(&over, &opts(false, large))),
            Err(ZbxdError::TooLarge {
                declared: MAX + 1,
                max: MAX
            })
        );

        // Compressed: 1000 'x' compress to a few bytes; `reserved` is what hits the limit.
        let frame = codec.decode_exact(&encode_frame(&at, &opts(true, large)));
        assert_eq!(frame.unwrap().payload.len(), MAX as usize);
        assert_eq!(
            codec.decode_exact(&encode_frame(&over, &opts(true, large))),
            Err(ZbxdError::UncompressedTooLarge {
                declared: MAX + 1,
                max: MAX
            })
        );
    }
}

// ---------------------------------------------------------------- truncation

#[test]
fn truncation_at_every_byte_gives_the_exact_error() {
    let codec = ZbxdCodec::default();
    for compress in [false, true] {
        for large in [false, true] {
            let frame = encode_frame(PAYLOAD, &opts(compress, large));
            for cut in 0..frame.len() {
                let prefix = &frame[..cut];
                assert_eq!(
                    codec.decode_exact(prefix),
                    Err(expected_truncation(&frame, cut)),
                    "compress={compress} large={large} cut={cut}"
                );
                // The streaming decoder just waits for more.
                let mut buf = BytesMut::from(prefix);
                assert_eq!(codec.clone().decode(&mut buf), Ok(None), "cut={cut}");
                assert_eq!(buf.len(), cut, "decode must not consume a partial frame");
            }
            assert!(codec.decode_exact(&frame).is_ok());
        }
    }
}

#[test]
fn decode_eof_on_empty_buffer_is_end_of_stream() {
    let mut buf = BytesMut::new();
    assert_eq!(ZbxdCodec::default().decode_eof(&mut buf), Ok(None));
}

// ---------------------------------------------------------------- each error variant

#[test]
fn bad_magic_full_and_as_soon_as_the_prefix_differs() {
    let mut frame = encode_frame(PAYLOAD, &FrameOptions::default());
    frame[..4].copy_from_slice(b"HTTP");
    assert_eq!(
        ZbxdCodec::default().decode_exact(&frame),
        Err(ZbxdError::BadMagic {
            found: b"HTTP".to_vec()
        })
    );
    // A C receiver aborts on the first byte that is not a prefix of ZBXD (§1.4 step 1).
    let mut buf = BytesMut::from(&b"ZBY"[..]);
    assert_eq!(
        ZbxdCodec::default().decode(&mut buf),
        Err(ZbxdError::BadMagic {
            found: b"ZBY".to_vec()
        })
    );
    // Built through FrameOptions as a negative test would.
    let wrong = encode_frame(
        PAYLOAD,
        &FrameOptions {
            magic: Some(*b"ZBXE"),
            ..FrameOptions::default()
        },
    );
    assert!(matches!(
        ZbxdCodec::default().decode_exact(&wrong),
        Err(ZbxdError::BadMagic { .. })
    ));
}

#[test]
fn bad_flags() {
    for flags in [0x00u8, 0x02, 0x04, 0x06, 0x08, 0x09, 0x11, 0x81, 0xff] {
        let mut frame = header(FLAG_PROTOCOL, 2, 0);
        frame[4] = flags;
        frame.extend_from_slice(b"{}");
        assert_eq!(
            ZbxdCodec::default().decode_exact(&frame),
            Err(ZbxdError::BadFlags { flags }),
            "flags 0x{flags:02x}"
        );
    }
    // 0x05/0x07 are fine for a LARGE receiver, refused by one that is not (§1.4 step 2).
    for flags in [0x05u8, 0x07] {
        let frame = encode_frame(
            b"{}",
            &FrameOptions {
                compress: flags & FLAG_COMPRESSED != 0,
                large: true,
                ..FrameOptions::default()
            },
        );
        assert!(ZbxdCodec::default().decode_exact(&frame).is_ok());
        assert_eq!(
            ZbxdCodec::default().without_large().decode_exact(&frame),
            Err(ZbxdError::BadFlags { flags })
        );
    }
    // Flags are judged as soon as the byte arrives, before the lengths.
    let mut buf = BytesMut::from(&b"ZBXD\x08"[..]);
    assert_eq!(
        ZbxdCodec::default().decode(&mut buf),
        Err(ZbxdError::BadFlags { flags: 0x08 })
    );
}

#[test]
fn too_large_and_uncompressed_too_large() {
    let codec = ZbxdCodec::new(100);
    assert_eq!(
        codec.decode_exact(&header(0x01, 101, 0)),
        Err(ZbxdError::TooLarge {
            declared: 101,
            max: 100
        })
    );
    assert_eq!(
        codec.decode_exact(&header(0x03, 10, 101)),
        Err(ZbxdError::UncompressedTooLarge {
            declared: 101,
            max: 100
        })
    );
}

#[test]
fn bad_zlib_garbage_and_truncated_stream() {
    let mut frame = header(0x03, 8, 8);
    frame.extend_from_slice(b"notzlib!");
    assert!(matches!(
        ZbxdCodec::default().decode_exact(&frame),
        Err(ZbxdError::BadZlib { .. })
    ));

    // A valid zlib stream cut before its Adler-32 trailer, in a well-formed frame.
    let z = zlib_compress(PAYLOAD);
    let body = &z[..z.len() - 4];
    let mut frame = header(0x03, body.len() as u64, PAYLOAD.len() as u64);
    frame.extend_from_slice(body);
    assert!(matches!(
        ZbxdCodec::default().decode_exact(&frame),
        Err(ZbxdError::BadZlib { .. })
    ));

    // Corrupted checksum.
    let mut z = zlib_compress(PAYLOAD);
    let last = z.len() - 1;
    z[last] ^= 0xff;
    let mut frame = header(0x03, z.len() as u64, PAYLOAD.len() as u64);
    frame.extend_from_slice(&z);
    assert!(matches!(
        ZbxdCodec::default().decode_exact(&frame),
        Err(ZbxdError::BadZlib { .. })
    ));
}

#[test]
fn bytes_after_the_zlib_stream_inside_datalen_are_ignored() {
    // zlib's uncompress() in a C receiver stops at the stream end and ignores the rest
    // of the input, so such a frame is accepted by real peers; we match that.
    let mut body = zlib_compress(PAYLOAD);
    body.extend_from_slice(b"xyz");
    let mut frame = header(0x03, body.len() as u64, PAYLOAD.len() as u64);
    frame.extend_from_slice(&body);
    let decoded = ZbxdCodec::default().decode_exact(&frame).unwrap();
    assert_eq!(&decoded.payload[..], PAYLOAD);
    assert_eq!(decoded.datalen, body.len() as u64);
}

#[test]
fn length_mismatch_both_directions() {
    let n = PAYLOAD.len() as u64;
    for (declared, actual) in [(n + 5, n), (n - 5, n - 4)] {
        let frame = encode_frame(
            PAYLOAD,
            &FrameOptions {
                compress: true,
                reserved: Some(declared),
                ..FrameOptions::default()
            },
        );
        assert_eq!(
            ZbxdCodec::default().decode_exact(&frame),
            Err(ZbxdError::LengthMismatch { declared, actual })
        );
    }
}

#[test]
fn trailing_bytes_after_one_frame() {
    let frame = encode_frame(
        PAYLOAD,
        &FrameOptions {
            trailing: b"junk".to_vec(),
            ..FrameOptions::default()
        },
    );
    assert_eq!(
        ZbxdCodec::default().decode_exact(&frame),
        Err(ZbxdError::TrailingBytes { count: 4 })
    );
    // Two valid frames are also "trailing bytes" for decode_exact.
    let mut two = encode_frame(PAYLOAD, &FrameOptions::default());
    two.extend(encode_frame(b"{}", &FrameOptions::default()));
    assert_eq!(
        ZbxdCodec::default().decode_exact(&two),
        Err(ZbxdError::TrailingBytes {
            count: HEADER_LEN as u64 + 2
        })
    );
}

#[test]
fn datalen_smaller_than_body_leaves_the_rest() {
    // A frame that under-declares its length: the decoder takes datalen bytes; the rest
    // is trailing (a C receiver reports "longer than expected", §1.4 step 4).
    let frame = encode_frame(
        PAYLOAD,
        &FrameOptions {
            datalen: Some(5),
            ..FrameOptions::default()
        },
    );
    assert_eq!(
        ZbxdCodec::default().decode_exact(&frame),
        Err(ZbxdError::TrailingBytes {
            count: PAYLOAD.len() as u64 - 5
        })
    );
}

#[test]
fn io_errors_convert() {
    let e: ZbxdError = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset").into();
    assert!(matches!(e, ZbxdError::Io(ref s) if s.contains("reset")));
}

#[test]
fn error_messages_name_the_cause() {
    let e = ZbxdError::Truncated {
        part: FramePart::Lengths,
        expected: 8,
        got: 3,
    };
    assert_eq!(
        e.to_string(),
        "connection closed after 3 of 8 bytes of the length fields"
    );
    let longer = ZbxdError::LengthMismatch {
        declared: 10,
        actual: 11,
    };
    assert!(longer.to_string().contains("longer than the 10 bytes"));
    let shorter = ZbxdError::LengthMismatch {
        declared: 10,
        actual: 3,
    };
    assert!(shorter.to_string().contains("is 3 bytes"));
}

// ---------------------------------------------------------------- limits before allocation

#[test]
fn huge_declared_lengths_are_refused_before_allocating() {
    let cases: Vec<(Vec<u8>, u64)> = vec![
        (header(0x01, u64::from(u32::MAX), 0), u64::from(u32::MAX)), // ~4 GiB, 4-byte field
        (header(0x05, 4 << 30, 0), 4 << 30),                         // 4 GiB, large frame
        (header(0x05, u64::MAX, 0), u64::MAX),                       // 16 EiB
        (header(0x07, u64::MAX, 0), u64::MAX),
    ];
    for (bytes, declared) in cases {
        let mut buf = BytesMut::from(&bytes[..]);
        let cap_before = buf.capacity();
        let (result, usage) = measure(|| ZbxdCodec::default().decode(&mut buf));
        assert_eq!(
            result,
            Err(ZbxdError::TooLarge {
                declared,
                max: 1 << 30
            })
        );
        assert_eq!(
            buf.capacity(),
            cap_before,
            "buffer grew for a refused frame"
        );
        assert!(
            usage.largest < 1024,
            "allocated {usage:?} for a refused frame"
        );
    }
    // Declared uncompressed size of 16 EiB with a tiny body.
    let mut buf = BytesMut::from(&header(0x07, 4, u64::MAX)[..]);
    let (result, usage) = measure(|| ZbxdCodec::default().decode(&mut buf));
    assert!(matches!(
        result,
        Err(ZbxdError::UncompressedTooLarge { .. })
    ));
    assert!(usage.largest < 1024);
}

#[test]
fn unlimited_codec_still_refuses_lengths_that_cannot_exist() {
    // With max = u64::MAX, header + 16 EiB overflows: refused, not wrapped or allocated.
    let mut buf = BytesMut::from(&header(0x05, u64::MAX, 0)[..]);
    let (result, usage) = measure(|| ZbxdCodec::new(u64::MAX).decode(&mut buf));
    assert!(matches!(result, Err(ZbxdError::TooLarge { .. })));
    assert!(usage.largest < 1024);
}

#[test]
fn allowed_but_unsent_payload_reserves_at_most_one_mebibyte() {
    // 1 GiB declared (allowed by the default max), only the header arrived.
    let mut buf = BytesMut::from(&header(0x01, 1 << 30, 0)[..]);
    let (result, usage) = measure(|| ZbxdCodec::default().decode(&mut buf));
    assert_eq!(result, Ok(None));
    assert!(
        buf.capacity() <= (1 << 20) + 64,
        "capacity {}",
        buf.capacity()
    );
    assert!(usage.peak_extra <= (1 << 20) + 4096, "{usage:?}");
    // And at EOF it is a precise payload truncation.
    assert_eq!(
        ZbxdCodec::default().decode_eof(&mut buf),
        Err(ZbxdError::Truncated {
            part: FramePart::Payload,
            expected: 1 << 30,
            got: 0
        })
    );
}

// ---------------------------------------------------------------- zlib bombs

/// zlib stream of `n` zero bytes, built in chunks (n may be large).
fn zeros_compressed(n: usize) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1 << 16];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len());
        enc.write_all(&chunk[..k]).unwrap();
        left -= k;
    }
    enc.finish().unwrap()
}

#[test]
fn zlib_bomb_with_small_declared_size_is_a_mismatch_in_bounded_memory() {
    let bomb = zeros_compressed(32 << 20); // 32 MiB of zeros in ~32 KiB
    assert!(bomb.len() < 64 << 10);
    let mut frame = header(0x03, bomb.len() as u64, 100);
    frame.extend_from_slice(&bomb);
    let (result, usage) = measure(|| ZbxdCodec::default().decode_exact(&frame));
    assert_eq!(
        result,
        Err(ZbxdError::LengthMismatch {
            declared: 100,
            actual: 101
        })
    );
    // The frame copy (~bomb size) plus inflate state; nowhere near 32 MiB.
    assert!(usage.peak_extra < 512 << 10, "{usage:?}");
}

#[test]
fn zlib_bomb_declaring_the_maximum_stays_within_the_maximum() {
    const MAX: u64 = 1 << 20;
    let bomb = zeros_compressed(32 << 20);
    let mut frame = header(0x03, bomb.len() as u64, MAX);
    frame.extend_from_slice(&bomb);
    let (result, usage) = measure(|| ZbxdCodec::new(MAX).decode_exact(&frame));
    assert_eq!(
        result,
        Err(ZbxdError::LengthMismatch {
            declared: MAX,
            actual: MAX + 1
        })
    );
    assert!(usage.largest <= MAX as usize + 1, "{usage:?}");
    assert!(usage.peak_extra < 3 * MAX as usize, "{usage:?}");
}

// ---------------------------------------------------------------- streaming

#[test]
fn two_concatenated_frames_through_the_streaming_decoder() {
    let first = encode_frame(PAYLOAD, &opts(true, false));
    let second = encode_frame(b"{\"response\":\"success\"}", &opts(false, true));
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&first);
    buf.extend_from_slice(&second);
    let mut codec = ZbxdCodec::default();
    let a = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(&a.payload[..], PAYLOAD);
    assert!(a.is_compressed());
    let b = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(&b.payload[..], b"{\"response\":\"success\"}");
    assert!(b.is_large());
    assert_eq!(codec.decode(&mut buf), Ok(None));
    assert_eq!(codec.decode_eof(&mut buf), Ok(None));
}

#[test]
fn frame_followed_by_partial_frame_at_eof() {
    let first = encode_frame(PAYLOAD, &FrameOptions::default());
    let mut buf = BytesMut::from(&first[..]);
    buf.extend_from_slice(b"ZBXD\x01\x05\x00");
    let mut codec = ZbxdCodec::default();
    assert!(codec.decode_eof(&mut buf).unwrap().is_some());
    assert_eq!(
        codec.decode_eof(&mut buf),
        Err(ZbxdError::Truncated {
            part: FramePart::Lengths,
            expected: 8,
            got: 2
        })
    );
}

// ---------------------------------------------------------------- encoder

#[test]
fn encoder_uses_the_codec_options() {
    let mut buf = BytesMut::new();
    let mut codec = ZbxdCodec::default().with_encode_options(FrameOptions::compressed());
    codec.encode(PAYLOAD, &mut buf).unwrap();
    assert_eq!(buf[4], FLAG_PROTOCOL | FLAG_COMPRESSED);
    let frame = ZbxdCodec::default().decode_exact(&buf).unwrap();
    assert_eq!(&frame.payload[..], PAYLOAD);
    assert_eq!(frame.reserved, PAYLOAD.len() as u64);

    let mut buf = BytesMut::new();
    ZbxdCodec::default().encode(PAYLOAD, &mut buf).unwrap();
    assert_eq!(&buf[..], &encode_frame(PAYLOAD, &FrameOptions::plain())[..]);
}

#[test]
fn flag_override_does_not_change_length_width() {
    // Lie: claim 0x04 while writing 4-byte lengths. The decoder reads 8-byte lengths:
    // datalen (4 bytes) + reserved 0 (4 bytes) form the 8-byte datalen, and the first 8
    // payload bytes become `reserved`, so the frame looks 8 bytes short.
    let frame = encode_frame(
        PAYLOAD,
        &FrameOptions {
            flags: Some(0x05),
            ..FrameOptions::default()
        },
    );
    assert_eq!(frame.len(), HEADER_LEN + PAYLOAD.len());
    assert_eq!(frame[4], 0x05);
    assert_eq!(
        ZbxdCodec::default().decode_exact(&frame),
        Err(ZbxdError::Truncated {
            part: FramePart::Payload,
            expected: PAYLOAD.len() as u64,
            got: PAYLOAD.len() as u64 - 8
        })
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|row| {
            row.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn snapshots_of_encoded_frames() {
    // Compressed frames are not snapshotted: their bytes depend on the zlib backend.
    insta::assert_snapshot!(
        "zbxd_plain",
        hex(&encode_frame(PAYLOAD, &FrameOptions::plain()))
    );
    insta::assert_snapshot!("zbxd_large", hex(&encode_frame(b"{}", &opts(false, true))));
    insta::assert_snapshot!(
        "zbxd_agent2_style_reserved",
        hex(&encode_frame(
            b"1",
            &FrameOptions {
                reserved: Some(1),
                ..FrameOptions::default()
            }
        ))
    );
}

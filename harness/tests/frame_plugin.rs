//! Agent 2 plugin framing tests (protocol.md §4.1): type 1 + LE size + JSON body.

mod frame_support;

use bytes::BytesMut;
use frame_support::{decode_byte_by_byte, measure, Tracking};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};
use zbx_conform::frame::plugin::{
    encode_plugin_frame, encode_plugin_frame_raw, PluginCodec, PluginFrameError, DEFAULT_MAX_SIZE,
    HEADER_LEN, TYPE_JSON,
};

#[global_allocator]
static ALLOC: Tracking = Tracking;

const REGISTER: &[u8] = br#"{"id":1,"type":2,"version":"6.0.13"}"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn round_trip(payload in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let bytes = encode_plugin_frame(&payload);
        prop_assert_eq!(bytes.len(), HEADER_LEN + payload.len());
        let frame = PluginCodec::default().decode_exact(&bytes).unwrap();
        prop_assert_eq!(frame.typ, TYPE_JSON);
        prop_assert_eq!(&frame.payload[..], &payload[..]);
    }

    #[test]
    fn byte_by_byte_equals_one_shot(payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let bytes = encode_plugin_frame(&payload);
        let one_shot = PluginCodec::default().decode_exact(&bytes).unwrap();
        let (at, got) = decode_byte_by_byte(PluginCodec::default(), &bytes);
        prop_assert_eq!(at, Some(bytes.len() - 1), "the frame must come out at the last byte");
        prop_assert_eq!(got.as_ref(), Some(&one_shot));
    }
}

#[test]
fn wire_layout_is_little_endian_type_then_size() {
    let bytes = encode_plugin_frame(REGISTER);
    assert_eq!(&bytes[..4], &[1, 0, 0, 0]);
    assert_eq!(&bytes[4..8], &(REGISTER.len() as u32).to_le_bytes());
    assert_eq!(&bytes[8..], REGISTER);
}

#[test]
fn empty_and_at_limit_payloads() {
    let codec = PluginCodec::new(64);
    assert!(codec
        .decode_exact(&encode_plugin_frame(b""))
        .unwrap()
        .payload
        .is_empty());
    let at = vec![b'x'; 64];
    assert_eq!(
        codec
            .decode_exact(&encode_plugin_frame(&at))
            .unwrap()
            .payload,
        at
    );
    assert_eq!(
        codec.decode_exact(&encode_plugin_frame(&[b'x'; 65])),
        Err(PluginFrameError::TooLarge {
            declared: 65,
            max: 64
        })
    );
}

#[test]
fn truncation_at_every_byte() {
    let bytes = encode_plugin_frame(REGISTER);
    let codec = PluginCodec::default();
    for cut in 0..bytes.len() {
        let expected = if cut < HEADER_LEN {
            PluginFrameError::Truncated {
                part: "header",
                expected: HEADER_LEN as u64,
                got: cut as u64,
            }
        } else {
            PluginFrameError::Truncated {
                part: "payload",
                expected: REGISTER.len() as u64,
                got: (cut - HEADER_LEN) as u64,
            }
        };
        assert_eq!(
            codec.decode_exact(&bytes[..cut]),
            Err(expected),
            "cut={cut}"
        );
        let mut buf = BytesMut::from(&bytes[..cut]);
        assert_eq!(codec.clone().decode(&mut buf), Ok(None), "cut={cut}");
        assert_eq!(buf.len(), cut);
    }
}

#[test]
fn bad_type_as_soon_as_four_bytes_arrive() {
    for typ in [0u32, 2, 0x0100_0000, u32::MAX] {
        let bytes = encode_plugin_frame_raw(typ, REGISTER.len() as u32, REGISTER);
        assert_eq!(
            PluginCodec::default().decode_exact(&bytes),
            Err(PluginFrameError::BadType { typ })
        );
        let mut buf = BytesMut::from(&bytes[..4]);
        assert_eq!(
            PluginCodec::default().decode(&mut buf),
            Err(PluginFrameError::BadType { typ })
        );
    }
}

#[test]
fn huge_size_refused_before_allocating() {
    // 0xFFFFFFFF would be a negative int32 in the SDK reader (§4.1); we refuse it by size.
    for size in [u32::MAX, 1 << 31, DEFAULT_MAX_SIZE + 1] {
        let mut buf = BytesMut::from(&encode_plugin_frame_raw(TYPE_JSON, size, b"{}")[..]);
        let cap = buf.capacity();
        let (result, usage) = measure(|| PluginCodec::default().decode(&mut buf));
        assert_eq!(
            result,
            Err(PluginFrameError::TooLarge {
                declared: u64::from(size),
                max: u64::from(DEFAULT_MAX_SIZE)
            })
        );
        assert_eq!(buf.capacity(), cap);
        assert!(usage.largest < 1024, "{usage:?}");
    }
}

#[test]
fn allowed_but_unsent_payload_reserves_at_most_one_mebibyte() {
    let mut buf = BytesMut::from(&encode_plugin_frame_raw(TYPE_JSON, DEFAULT_MAX_SIZE, b"")[..]);
    let (result, usage) = measure(|| PluginCodec::default().decode(&mut buf));
    assert_eq!(result, Ok(None));
    assert!(buf.capacity() <= (1 << 20) + 64, "{}", buf.capacity());
    assert!(usage.peak_extra <= (1 << 20) + 4096, "{usage:?}");
}

#[test]
fn trailing_bytes_and_two_frames() {
    let mut two = encode_plugin_frame(REGISTER);
    let second = br#"{"id":1,"type":3,"name":"Myip"}"#;
    two.extend(encode_plugin_frame(second));
    assert_eq!(
        PluginCodec::default().decode_exact(&two),
        Err(PluginFrameError::TrailingBytes {
            count: (HEADER_LEN + second.len()) as u64
        })
    );
    let mut buf = BytesMut::from(&two[..]);
    let mut codec = PluginCodec::default();
    assert_eq!(
        &codec.decode(&mut buf).unwrap().unwrap().payload[..],
        REGISTER
    );
    assert_eq!(
        &codec.decode(&mut buf).unwrap().unwrap().payload[..],
        second
    );
    assert_eq!(codec.decode_eof(&mut buf), Ok(None));
}

#[test]
fn size_larger_than_body_is_truncated_payload() {
    let bytes = encode_plugin_frame_raw(TYPE_JSON, 100, REGISTER);
    assert_eq!(
        PluginCodec::default().decode_exact(&bytes),
        Err(PluginFrameError::Truncated {
            part: "payload",
            expected: 100,
            got: REGISTER.len() as u64
        })
    );
}

#[test]
fn encoder_matches_encode_plugin_frame() {
    let mut buf = BytesMut::new();
    PluginCodec::default().encode(REGISTER, &mut buf).unwrap();
    assert_eq!(&buf[..], &encode_plugin_frame(REGISTER)[..]);
}

#[test]
fn io_errors_convert() {
    let e: PluginFrameError = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe").into();
    assert!(matches!(e, PluginFrameError::Io(ref s) if s.contains("pipe")));
}

#[test]
fn snapshot_of_a_register_request_frame() {
    let hex: Vec<String> = encode_plugin_frame(REGISTER)
        .chunks(16)
        .map(|r| {
            r.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    insta::assert_snapshot!("plugin_register_request", hex.join("\n"));
}

//! Every server<->proxy fixture encoded as a ZBXD frame: a snapshot of the header
//! (flags, datalen, reserved) of the plain frame, and a round trip through the decoder
//! for both the plain and the compressed frame (proxies always compress, protocol.md §1.2).
//! Compressed lengths are not snapshotted: zlib output may differ between builds.

use serde_json::{json, Value};
use std::path::Path;
use zbx_conform::catalog::{Body, Catalog};
use zbx_conform::frame::{encode_frame, FrameOptions, ZbxdCodec};

#[test]
fn fixture_frames() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let cat = Catalog::load(root).expect("catalog loads");
    let codec = ZbxdCodec::new(1 << 30);
    let mut summary = Vec::new();
    for r in cat.rows(Some("server-proxy"), None) {
        let text = std::fs::read_to_string(cat.root().join(&r.fixture)).expect("fixture");
        let value: Value = serde_json::from_str(&text).expect("fixture JSON");
        // Zabbix peers send compact JSON.
        let payload = serde_json::to_vec(&value).expect("serialise");

        let plain = codec
            .decode_exact(&encode_frame(&payload, &FrameOptions::default()))
            .expect("plain frame decodes");
        assert_eq!(plain.payload.as_ref(), payload.as_slice());
        assert_eq!(
            Body::from_payload(&plain.payload),
            Body::Json(value.clone())
        );

        let opts = FrameOptions {
            compress: true,
            ..FrameOptions::default()
        };
        let packed = codec
            .decode_exact(&encode_frame(&payload, &opts))
            .expect("compressed frame decodes");
        assert_eq!(packed.flags, 0x03);
        assert_eq!(packed.reserved, payload.len() as u64);
        assert_eq!(packed.payload.as_ref(), payload.as_slice());

        summary.push(json!({
            "version": r.version,
            "kind": r.kind,
            "flags": format!("0x{:02x}", plain.flags),
            "datalen": plain.datalen,
            "reserved": plain.reserved,
        }));
    }
    // 15 kinds in 5.4 and 6.0, 17 in 6.4, 7.0, 7.2 and 7.4.
    assert_eq!(summary.len(), 98);
    insta::assert_json_snapshot!("server_proxy_fixture_frames", summary);
}

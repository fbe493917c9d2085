//! The agent-protocol reference peers on the wire, without the runner: what exactly
//! they send, how they frame it and when they close (protocol.md §1.7, §3).

mod roles_util;

use roles_util::*;
use serde_json::json;
use zbx_conform::frame::encode_frame;

#[tokio::test]
async fn passive_agent_answers_plain_frames_and_closes() {
    for (version, full) in VERSIONS {
        let peer = start("agent-passive", version, None, None).await;
        for (key, want) in [
            ("agent.ping", b"1".to_vec()),
            ("agent.version\r\n", full.as_bytes().to_vec()),
            ("agent.hostname", b"zbx-conform-agent".to_vec()),
            (
                "no.such.key",
                b"ZBX_NOTSUPPORTED\0Unsupported item key.".to_vec(),
            ),
        ] {
            let mut c = connect(&peer).await;
            send_raw(&mut c, &encode_frame(key.as_bytes(), &opts(false))).await;
            let f = c
                .read_frame(WAIT)
                .await
                .expect("frame")
                .expect("not closed");
            assert_eq!(f.flags, 0x01, "{key}");
            assert_eq!(f.payload.to_vec(), want, "{key} [{version}]");
            assert_silent_close(&mut c).await;
        }
        peer.stop().await;
    }
}

#[tokio::test]
async fn active_agent_asks_without_version_then_sends_rows_for_its_items() {
    let (l, addr) = listen().await;
    let peer = start("agent-active", "6.0", None, Some(addr)).await;
    let mut c = accept(&l).await;
    let (f, req) = read_json(&mut c).await;
    assert_eq!(f.flags, 0x01);
    assert_eq!(req["request"], "active checks");
    assert_eq!(req["host"], "zbx-conform-agent");
    assert!(
        req.get("version").is_none(),
        "agentd sends no version: {req}"
    );
    let items = json!({"response": "success", "data": [
        {"key": "agent.ping", "delay": 1, "lastlogsize": 0, "mtime": 0},
        {"key": "no.such.key", "delay": 1, "lastlogsize": 0, "mtime": 0},
    ]});
    send(&mut c, &items, false).await;
    let mut d = accept(&l).await;
    let (_, data) = read_json(&mut d).await;
    assert_eq!(data["request"], "agent data");
    assert!(is_session(&data["session"]), "{data}");
    let rows = data["data"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["key"], "agent.ping");
    assert_eq!(rows[0]["value"], "1");
    assert_eq!(rows[1]["state"], 1);
    assert!(rows[0]["id"].as_u64() < rows[1]["id"].as_u64());
    peer.stop().await;
}

#[tokio::test]
async fn trapper_mirrors_compression_and_closes() {
    let peer = start("server-for-agents", "6.0", None, None).await;
    for compress in [false, true] {
        let req = json!({"request": "sender data", "data": [
            {"host": "h", "key": "k", "value": "1"},
            {"host": "unknown-h", "key": "k", "value": "2"},
        ]});
        let (mut c, f, r) = request(&peer, &req, compress).await;
        assert_eq!(f.is_compressed(), compress);
        assert_eq!(r["response"], "success");
        let info = r["info"].as_str().expect("info");
        assert!(
            info.starts_with("processed: 1; failed: 1; total: 2; seconds spent: "),
            "{info}"
        );
        assert_silent_close(&mut c).await;
    }
    peer.stop().await;
}

#[tokio::test]
async fn trapper_answers_legacy_text_with_raw_ok_and_ignores_unknown_requests() {
    let peer = start("server-for-agents", "6.0", None, None).await;
    let mut c = connect(&peer).await;
    send_raw(&mut c, &encode_frame(b"h:k:v", &opts(false))).await;
    let bytes = c.wait_close(WAIT).await.expect("closes");
    assert_eq!(bytes, b"OK", "raw OK without a ZBXD header");

    let mut c = connect(&peer).await;
    send(&mut c, &json!({"request": "no such request"}), false).await;
    assert_silent_close(&mut c).await;
    peer.stop().await;
}

//! The reference proxies (passive and active) behave like 6.0.14 proxies, and each of
//! their faults really misbehaves.

mod roles_util;

use roles_util::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use zbx_conform::frame::{encode_frame, FrameOptions};
use zbx_conform::transport::{Silence, TransportError};

fn config_request() -> Value {
    json!({"request": "proxy config", "data": {"hosts": {"fields": ["hostid"], "data": []}, "macro.secrets": {}}})
}

// ---------------------------------------------------------------- passive proxy

#[tokio::test]
async fn passive_config_with_data_succeeds_compressed_then_closes() {
    for (v, full) in VERSIONS {
        let peer = start("passive-proxy", v, None, None).await;
        let (mut c, f, r) = request(&peer, &config_request(), false).await;
        assert_eq!(f.flags, 0x03, "proxy replies compressed");
        assert_eq!(r, json!({"response": "success", "version": full}));
        assert_eq!(keys(&r), ["response", "version"]);
        assert_silent_close(&mut c).await;
        peer.stop().await;
    }
}

#[tokio::test]
async fn passive_config_without_data_fails_with_info() {
    for (v, full) in VERSIONS {
        let peer = start("passive-proxy", v, None, None).await;
        let (_, f, r) = request(&peer, &json!({"request": "proxy config"}), false).await;
        assert_eq!(f.flags, 0x03);
        assert_eq!(
            r,
            json!({"response": "failed", "info": "cannot find pair with name \"data\"", "version": full})
        );
        peer.stop().await;
    }
}

#[tokio::test]
async fn passive_data_is_committed_only_after_a_successful_ack() {
    for (v, full) in VERSIONS {
        let peer = start("passive-proxy", v, None, None).await;
        let req = json!({"request": "proxy data"});
        let (mut c, f, first) = request(&peer, &req, false).await;
        assert_eq!(f.flags, 0x03);
        assert_proxy_data(&first, full);
        assert_eq!(
            keys(&first)[0],
            "session",
            "passive data starts with session"
        );
        assert!(first.get("request").is_none() && first.get("host").is_none());
        let ids1 = history_ids(&first);
        // No ack: close. The same rows come back.
        c.shutdown().await;
        drop(c);
        let (mut c, _, again) = request(&peer, &req, false).await;
        assert_eq!(
            history_ids(&again),
            ids1,
            "unacknowledged data is sent again"
        );
        assert_eq!(
            again["session"], first["session"],
            "session fixed per process"
        );
        // A failed ack does not commit either.
        send(&mut c, &json!({"response": "failed"}), false).await;
        assert_silent_close(&mut c).await;
        let (mut c, _, again) = request(&peer, &req, false).await;
        assert_eq!(history_ids(&again), ids1);
        // A successful ack commits: the next data has new, higher ids.
        send(&mut c, &json!({"response": "success"}), false).await;
        assert_silent_close(&mut c).await;
        let (_, _, next) = request(&peer, &req, false).await;
        let ids2 = history_ids(&next);
        assert!(!ids2.is_empty());
        assert!(
            ids2.iter().min() > ids1.iter().max(),
            "{ids1:?} then {ids2:?}"
        );
        assert_eq!(next["session"], first["session"]);
        peer.stop().await;
    }
}

#[tokio::test]
async fn passive_tasks_answer_then_ack() {
    for (v, full) in VERSIONS {
        let peer = start("passive-proxy", v, None, None).await;
        let (mut c, f, r) = request(&peer, &json!({"request": "proxy tasks"}), false).await;
        assert_eq!(f.flags, 0x03);
        assert_eq!(keys(&r), ["version", "clock", "ns"]);
        assert_eq!(r["version"], full);
        // Still waiting for the ack: the connection is open.
        assert_eq!(
            c.expect_silence(Duration::from_millis(200)).await,
            Ok(Silence::Quiet)
        );
        send(&mut c, &json!({"response": "success"}), false).await;
        assert_silent_close(&mut c).await;
        peer.stop().await;
    }
}

#[tokio::test]
async fn passive_invalid_json_gets_the_generic_failure() {
    let peer = start("passive-proxy", "6.0", None, None).await;
    let mut c = connect(&peer).await;
    send_raw(
        &mut c,
        &encode_frame(b"{\"request\":\"proxy data\"", &FrameOptions::default()),
    )
    .await;
    let (f, r) = read_json(&mut c).await;
    assert_eq!(f.flags, 0x01);
    assert_eq!(r["response"], "failed");
    let info = r["info"].as_str().expect("info");
    assert!(
        info.starts_with("cannot parse as a valid JSON object: "),
        "{info}"
    );
    peer.stop().await;
}

#[tokio::test]
async fn passive_closes_silently_on_unknown_or_missing_request_and_bad_frames() {
    let peer = start("passive-proxy", "6.0", None, None).await;
    for body in [
        json!({"request": "no such request"}),
        json!({"data": 1}),
        json!({"request": "proxy heartbeat", "host": "x"}),
    ] {
        let mut c = connect(&peer).await;
        send(&mut c, &body, true).await;
        assert_silent_close(&mut c).await;
    }
    let bad = FrameOptions {
        magic: Some(*b"ZBXX"),
        ..FrameOptions::default()
    };
    let mut c = connect(&peer).await;
    send_raw(&mut c, &encode_frame(b"{\"request\":\"proxy data\"}", &bad)).await;
    assert_silent_close(&mut c).await;
    // Truncated: header says more than arrives, then we close our side.
    let cut = FrameOptions {
        datalen: Some(100),
        ..FrameOptions::default()
    };
    let mut c = connect(&peer).await;
    send_raw(&mut c, &encode_frame(b"{\"request\":\"proxy data\"}", &cut)).await;
    c.shutdown().await;
    assert_silent_close(&mut c).await;
    peer.stop().await;
}

#[tokio::test]
async fn passive_stop_is_prompt_even_with_held_connections() {
    let peer = start("passive-proxy", "6.0", Some("no-reply"), None).await;
    let addr = peer.listen.expect("listens");
    let mut c = connect(&peer).await;
    send(&mut c, &json!({"request": "proxy data"}), false).await;
    assert_eq!(
        c.expect_silence(Duration::from_millis(100)).await,
        Ok(Silence::Quiet)
    );
    let t = Instant::now();
    peer.stop().await;
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "stopped in {:?}",
        t.elapsed()
    );
    assert_eq!(
        c.expect_silence(WAIT).await,
        Ok(Silence::Closed),
        "held connection closed"
    );
    let again =
        zbx_conform::transport::connect_tcp(&addr.to_string(), Duration::from_millis(500)).await;
    assert!(again.is_err(), "listener gone after stop");
}

// ----------------------------------------------------- passive proxy faults

#[tokio::test]
async fn passive_fault_wrong_response() {
    let peer = start("passive-proxy", "6.0", Some("wrong-response"), None).await;
    let (_, _, r) = request(&peer, &config_request(), false).await;
    assert_eq!(r["response"], "failed");
    peer.stop().await;
}

#[tokio::test]
async fn passive_fault_missing_fields() {
    let peer = start("passive-proxy", "6.0", Some("missing-fields"), None).await;
    let (_, _, r) = request(&peer, &config_request(), false).await;
    assert_eq!(r, json!({"response": "success"}));
    let (_, _, d) = request(&peer, &json!({"request": "proxy data"}), false).await;
    assert!(
        d.get("session").is_none() && d.get("version").is_none(),
        "{d}"
    );
    let (_, _, t) = request(&peer, &json!({"request": "proxy tasks"}), false).await;
    assert!(t.get("version").is_none());
    peer.stop().await;
}

#[tokio::test]
async fn passive_fault_wrong_types_and_wrong_version() {
    let peer = start("passive-proxy", "6.0", Some("wrong-types"), None).await;
    let (_, _, d) = request(&peer, &json!({"request": "proxy data"}), false).await;
    assert_eq!(d["session"].as_str().map(str::len), Some(31));
    assert!(d["history data"]
        .as_array()
        .expect("history")
        .iter()
        .any(|r| r["value"].is_number()));
    assert!(d["auto registration"][0]["port"].is_number());
    peer.stop().await;

    let peer = start("passive-proxy", "6.0", Some("wrong-version"), None).await;
    let (_, _, r) = request(&peer, &config_request(), false).await;
    assert_eq!(r["version"], "4.0.0");
    let (_, _, d) = request(&peer, &json!({"request": "proxy data"}), false).await;
    assert_eq!(d["version"], "4.0.0");
    peer.stop().await;
}

#[tokio::test]
async fn passive_fault_bad_frame() {
    let peer = start("passive-proxy", "6.0", Some("bad-frame"), None).await;
    for req in [
        config_request(),
        json!({"request": "proxy data"}),
        json!({"request": "proxy tasks"}),
    ] {
        let mut c = connect(&peer).await;
        send(&mut c, &req, false).await;
        match try_read(&mut c, WAIT).await {
            Err(TransportError::Frame(_)) => {}
            other => panic!(
                "{} must get an undecodable frame, got {other:?}",
                req["request"]
            ),
        }
    }
    peer.stop().await;
}

#[tokio::test]
async fn passive_fault_no_reply_times_out() {
    let peer = start("passive-proxy", "6.0", Some("no-reply"), None).await;
    let mut c = connect(&peer).await;
    send(&mut c, &config_request(), false).await;
    let r = try_read(&mut c, Duration::from_millis(400)).await;
    assert!(matches!(r, Err(TransportError::Timeout { .. })), "{r:?}");
    peer.stop().await;
}

#[tokio::test]
async fn passive_fault_no_ack_wait_never_resends() {
    let peer = start("passive-proxy", "6.0", Some("no-ack-wait"), None).await;
    let req = json!({"request": "proxy data"});
    let (mut c, _, first) = request(&peer, &req, false).await;
    // It does not even wait for the ack: it closes at once.
    assert_silent_close(&mut c).await;
    let (_, _, second) = request(&peer, &req, false).await;
    assert_ne!(
        history_ids(&first),
        history_ids(&second),
        "data was not resent"
    );
    peer.stop().await;
}

#[tokio::test]
async fn passive_fault_no_close() {
    let peer = start("passive-proxy", "6.0", Some("no-close"), None).await;
    let (mut c, _, _) = request(&peer, &config_request(), false).await;
    assert!(matches!(
        c.wait_close(Duration::from_millis(400)).await,
        Err(TransportError::Timeout { .. })
    ));
    let mut c = connect(&peer).await;
    send(&mut c, &json!({"request": "bogus"}), false).await;
    assert!(matches!(
        c.wait_close(Duration::from_millis(400)).await,
        Err(TransportError::Timeout { .. })
    ));
    peer.stop().await;
}

#[tokio::test]
async fn passive_fault_uncompressed_extra_bytes_replies_unknown() {
    let peer = start("passive-proxy", "6.0", Some("uncompressed"), None).await;
    let (_, f, _) = request(&peer, &config_request(), false).await;
    assert_eq!(f.flags, 0x01);
    peer.stop().await;

    let peer = start("passive-proxy", "6.0", Some("extra-bytes"), None).await;
    let (mut c, _, _) = request(&peer, &config_request(), false).await;
    let mut trailing = c.leftover().to_vec();
    trailing.extend(c.wait_close(WAIT).await.expect("closes"));
    assert!(!trailing.is_empty(), "garbage after the frame");
    peer.stop().await;

    let peer = start("passive-proxy", "6.0", Some("replies-unknown"), None).await;
    let (_, _, r) = request(&peer, &json!({"request": "bogus"}), false).await;
    assert_eq!(r["response"], "failed");
    peer.stop().await;
}

// ---------------------------------------------------------------- active proxy

/// Accept connections until one carries `request`; answer it with `reply` (or nothing).
async fn next_request(
    l: &tokio::net::TcpListener,
    request: &str,
    reply: Option<Value>,
) -> (zbx_conform::frame::ZbxdFrame, Value) {
    for _ in 0..6 {
        let mut c = accept(l).await;
        let (f, v) = read_json(&mut c).await;
        if v["request"] == request {
            if let Some(r) = reply {
                send(&mut c, &r, f.is_compressed()).await;
                assert_silent_close(&mut c).await;
            }
            return (f, v);
        }
    }
    panic!("no {request} within six connections");
}

#[tokio::test]
async fn active_proxy_cycle_and_ack_semantics() {
    for (v, full) in VERSIONS {
        let (l, addr) = listen().await;
        let peer = start("active-proxy", v, None, Some(addr)).await;
        // It also listens: its trapper, for agents and senders.
        assert!(peer.listen.is_some());
        let (f, hb) =
            next_request(&l, "proxy heartbeat", Some(json!({"response": "success"}))).await;
        assert_eq!(f.flags, 0x03);
        assert_eq!(
            hb,
            json!({"request": "proxy heartbeat", "host": "zbx-conform-proxy", "version": full})
        );
        let (f, cfg) = next_request(
            &l,
            "proxy config",
            Some(json!({"globalmacro": {"fields": [], "data": []}})),
        )
        .await;
        assert_eq!(f.flags, 0x03);
        assert_eq!(
            cfg,
            json!({"request": "proxy config", "host": "zbx-conform-proxy", "version": full})
        );
        // Refuse the data: the same rows must come back.
        let failed = json!({"upload": "enabled", "response": "failed"});
        let (f, d1) = next_request(&l, "proxy data", Some(failed)).await;
        assert_eq!(f.flags, 0x03);
        assert_eq!(&keys(&d1)[..3], ["request", "host", "session"]);
        assert_eq!(d1["host"], "zbx-conform-proxy");
        assert_proxy_data(&d1, full);
        let ok = json!({"upload": "enabled", "response": "success"});
        let (_, d2) = next_request(&l, "proxy data", Some(ok.clone())).await;
        assert_eq!(
            history_ids(&d2),
            history_ids(&d1),
            "refused data is sent again"
        );
        assert_eq!(d2["session"], d1["session"]);
        let (_, d3) = next_request(&l, "proxy data", Some(ok)).await;
        assert!(history_ids(&d3).iter().min() > history_ids(&d2).iter().max());
        peer.stop().await;
    }
}

#[tokio::test]
async fn active_proxy_retries_until_the_server_listens_and_stops_promptly() {
    // Reserve a port, close it, start the proxy against it, then listen.
    let (l, addr) = listen().await;
    drop(l);
    let peer = start("active-proxy", "6.0", None, Some(addr)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let l = tokio::net::TcpListener::bind(addr).await.expect("rebind");
    let mut c = accept(&l).await;
    let (_, v) = read_json(&mut c).await;
    assert!(v["request"]
        .as_str()
        .is_some_and(|r| r.starts_with("proxy ")));
    let t = Instant::now();
    peer.stop().await;
    assert!(t.elapsed() < Duration::from_secs(1));
}

/// Whether a received frame and body show the fault's misbehaviour.
type Misbehaves = fn(&zbx_conform::frame::ZbxdFrame, &Value) -> bool;

#[tokio::test]
async fn active_proxy_faults() {
    // missing-fields / wrong-types / wrong-version / uncompressed on proxy data.
    let cases: [(&str, Misbehaves); 4] = [
        ("missing-fields", |_, d| {
            d.get("session").is_none() && d.get("version").is_none()
        }),
        ("wrong-types", |_, d| {
            d["session"].as_str().map(str::len) == Some(31)
                && d["auto registration"][0]["port"].is_number()
        }),
        ("wrong-version", |_, d| d["version"] == "4.0.0"),
        ("uncompressed", |f, _| f.flags == 0x01),
    ];
    for (fault, bad) in cases {
        let (l, addr) = listen().await;
        let peer = start("active-proxy", "6.0", Some(fault), Some(addr)).await;
        let (f, d) = next_request(
            &l,
            "proxy data",
            Some(json!({"upload": "enabled", "response": "success"})),
        )
        .await;
        assert!(bad(&f, &d), "{fault}: {d}");
        peer.stop().await;
    }
}

#[tokio::test]
async fn active_proxy_frame_and_timing_faults() {
    assert_connecting_frame_faults("active-proxy").await;

    let (l, addr) = listen().await;
    let peer = start("active-proxy", "6.0", Some("no-reply"), Some(addr)).await;
    let mut c = accept(&l).await;
    assert_eq!(
        c.expect_silence(Duration::from_millis(400)).await,
        Ok(Silence::Quiet)
    );
    peer.stop().await;

    let (l, addr) = listen().await;
    let peer = start("active-proxy", "6.0", Some("no-ack-wait"), Some(addr)).await;
    let failed = json!({"upload": "enabled", "response": "failed"});
    let (_, d1) = next_request(&l, "proxy data", None).await;
    let (_, d2) = next_request(&l, "proxy data", Some(failed)).await;
    assert_ne!(
        history_ids(&d1),
        history_ids(&d2),
        "data marked sent without an answer"
    );
    peer.stop().await;
}

// ---------------------------------------------------------------- 6.4 / 7.0 proxies

/// The versions with incremental configuration sync (protocol.md §2.4).
const INCREMENTAL: [(&str, &str); 2] = [("6.4", "6.4.0"), ("7.0", "7.0.0")];

/// A 6.4+ configuration answer with one trapper item on one host.
fn config_answer(revision: u64) -> Value {
    json!({
        "full_sync": 1,
        "data": {
            "hosts": {"fields": ["hostid", "host", "status"], "data": [[10084, "h1", 0]]},
            "items": {"fields": ["itemid", "hostid", "key_", "type", "status"],
                      "data": [[28501, 10084, "trap", 2, 0]]}
        },
        "proxy_group": {"hostmap_revision": 3, "failover_delay": "1m"},
        "config_revision": revision
    })
}

/// One `sender data` value for h1:trap; the trapper's info text.
async fn trap_value(peer: &zbx_conform::reference::RunningPeer) -> String {
    let v =
        json!({"request": "sender data", "data": [{"host": "h1", "key": "trap", "value": "1"}]});
    let (_, _, r) = request(peer, &v, false).await;
    r["info"].as_str().unwrap_or_default().to_string()
}

/// Open a config dialogue: send the empty request, return the revision reply.
async fn open_dialogue(
    peer: &zbx_conform::reference::RunningPeer,
    compress: bool,
) -> (Conn, zbx_conform::frame::ZbxdFrame, Value) {
    request(peer, &json!({"request": "proxy config"}), compress).await
}

#[tokio::test]
async fn passive_6_4_config_is_a_four_message_dialogue() {
    for (v, full) in INCREMENTAL {
        let peer = start("passive-proxy", v, None, None).await;
        // 1-2: empty request, revision reply with the request's flags.
        let (mut c, f, info) = open_dialogue(&peer, false).await;
        assert_eq!(f.flags, 0x01, "{v}: revision reply mirrors a plain request");
        assert_eq!(keys(&info), ["version", "session", "config_revision"]);
        assert_eq!(info["version"], full);
        assert!(is_session(&info["session"]));
        assert_eq!(info["config_revision"], 0);
        // 3-4: the configuration, then the response (compressed), then close.
        send(&mut c, &config_answer(9), true).await;
        let (f, r) = read_json(&mut c).await;
        assert_eq!(f.flags, 0x03);
        assert_eq!(r, json!({"response": "success", "version": full}));
        assert_silent_close(&mut c).await;
        assert!(trap_value(&peer)
            .await
            .starts_with("processed: 1; failed: 0"));
        // Next dialogue: the revision it was sent (and 7.0: the host-map revision).
        let (mut c, f, info2) = open_dialogue(&peer, true).await;
        assert_eq!(
            f.flags, 0x03,
            "{v}: revision reply mirrors a compressed request"
        );
        assert_eq!(info2["session"], info["session"]);
        assert_eq!(info2["config_revision"], 9);
        if v == "7.0" {
            assert_eq!(info2["hostmap_revision"], 3);
        } else {
            assert!(info2.get("hostmap_revision").is_none());
        }
        // {}: nothing changes, success.
        send(&mut c, &json!({}), true).await;
        let (_, r) = read_json(&mut c).await;
        assert_eq!(r["response"], "success");
        assert!(trap_value(&peer)
            .await
            .starts_with("processed: 1; failed: 0"));
        // An answer with data but no config_revision is refused.
        let (mut c, _, _) = open_dialogue(&peer, false).await;
        let mut bad = config_answer(10);
        bad.as_object_mut().map(|m| m.remove("config_revision"));
        send(&mut c, &bad, true).await;
        let (_, r) = read_json(&mut c).await;
        assert_eq!(r["response"], "failed");
        assert!(r["info"]
            .as_str()
            .is_some_and(|i| i.contains("config_revision")));
        // Proxy data carries host data rows from 6.4 on.
        let (mut c, _, d) = request(&peer, &json!({"request": "proxy data"}), false).await;
        assert_proxy_data(&d, full);
        assert_eq!(
            d["host data"],
            json!([{"hostid": 10084, "active_status": 1}])
        );
        send(&mut c, &json!({"response": "success"}), false).await;
        peer.stop().await;
    }
}

#[tokio::test]
async fn passive_6_4_faults_in_the_dialogue() {
    for (v, full) in INCREMENTAL {
        // missing-fields: no session, no config_revision in the revision reply.
        let peer = start("passive-proxy", v, Some("missing-fields"), None).await;
        let (_, _, info) = open_dialogue(&peer, false).await;
        assert_eq!(info, json!({"version": full}));
        peer.stop().await;
        // wrong-types: a 31-char session.
        let peer = start("passive-proxy", v, Some("wrong-types"), None).await;
        let (_, _, info) = open_dialogue(&peer, false).await;
        assert_eq!(info["session"].as_str().map(str::len), Some(31));
        peer.stop().await;
        // wrong-response: the configuration is answered with failed.
        let peer = start("passive-proxy", v, Some("wrong-response"), None).await;
        let (mut c, _, _) = open_dialogue(&peer, false).await;
        send(&mut c, &config_answer(9), true).await;
        let (_, r) = read_json(&mut c).await;
        assert_eq!(r["response"], "failed");
        peer.stop().await;
        // stale-revision: revision 0 again after a configuration; reset-on-unchanged:
        // {} forgets the items and the revision.
        for fault in ["stale-revision", "reset-on-unchanged"] {
            let peer = start("passive-proxy", v, Some(fault), None).await;
            let (mut c, _, _) = open_dialogue(&peer, false).await;
            send(&mut c, &config_answer(9), true).await;
            let _ = read_json(&mut c).await;
            let (mut c, _, info) = open_dialogue(&peer, false).await;
            let expected = if fault == "stale-revision" { 0 } else { 9 };
            assert_eq!(info["config_revision"], expected, "{fault}");
            send(&mut c, &json!({}), true).await;
            let _ = read_json(&mut c).await;
            let (_, _, info) = open_dialogue(&peer, false).await;
            assert_eq!(info["config_revision"], 0, "{fault}");
            if fault == "reset-on-unchanged" {
                assert!(trap_value(&peer)
                    .await
                    .starts_with("processed: 0; failed: 1"));
            }
            peer.stop().await;
        }
    }
}

#[tokio::test]
async fn active_6_4_proxy_sends_no_heartbeat_and_tracks_revisions() {
    for (v, full) in INCREMENTAL {
        let (l, addr) = listen().await;
        let peer = start("active-proxy", v, None, Some(addr)).await;
        // The first connection is the config request: no heartbeat since 6.4.
        let mut c = accept(&l).await;
        let (f, cfg) = read_json(&mut c).await;
        assert_eq!(f.flags, 0x03);
        assert_eq!(cfg["request"], "proxy config", "{v}: no heartbeat first");
        assert_eq!(
            keys(&cfg),
            ["request", "host", "version", "session", "config_revision"]
        );
        assert_eq!(cfg["version"], full);
        assert_eq!(cfg["config_revision"], 0);
        send(&mut c, &config_answer(9), true).await;
        drop(c);
        // Then data (with host data), then the next config request with revision 9.
        let (_, d) = next_request(
            &l,
            "proxy data",
            Some(json!({"upload": "enabled", "response": "success"})),
        )
        .await;
        assert_proxy_data(&d, full);
        assert!(d["host data"].is_array());
        let (_, cfg2) = next_request(&l, "proxy config", Some(json!({}))).await;
        assert_eq!(cfg2["session"], cfg["session"]);
        assert_eq!(cfg2["config_revision"], 9);
        if v == "7.0" {
            assert_eq!(cfg2["hostmap_revision"], 3);
        } else {
            assert!(cfg2.get("hostmap_revision").is_none());
        }
        // {} keeps the revision.
        let (_, cfg3) = next_request(&l, "proxy config", Some(json!({}))).await;
        assert_eq!(cfg3["config_revision"], 9);
        peer.stop().await;
    }
}

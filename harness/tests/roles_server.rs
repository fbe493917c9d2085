//! The reference servers (trapper for active proxies, poller for passive proxies)
//! behave like a 6.0.14 server, each of their faults really misbehaves, and the
//! registry refuses what it cannot start.

mod roles_util;

use roles_util::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use zbx_conform::frame::{encode_frame, FrameOptions, ZbxdFrame};
use zbx_conform::reference::{self, ReferenceConfig};
use zbx_conform::transport::{Silence, TransportError};

const HOST: &str = "zbx-conform-proxy";

fn heartbeat(full: &str) -> Value {
    json!({"request": "proxy heartbeat", "host": HOST, "version": full})
}

fn data(host: &str, version: Option<&str>) -> Value {
    let mut v = json!({
        "request": "proxy data", "host": host, "session": "0123456789abcdef0123456789abcdef",
        "history data": [{"id": 1, "itemid": 10001, "clock": 1, "ns": 2, "value": "1"}],
        "clock": 1, "ns": 2
    });
    if let Some(ver) = version {
        v["version"] = json!(ver);
    }
    v
}

// ---------------------------------------------------------------- server trapper

#[tokio::test]
async fn trapper_heartbeat_mirrors_compression() {
    for (v, full) in VERSIONS {
        let peer = start("server-trapper", v, None, None).await;
        for compress in [true, false] {
            let (mut c, f, r) = request(&peer, &heartbeat(full), compress).await;
            assert_eq!(
                f.is_compressed(),
                compress,
                "reply mirrors the request flag"
            );
            assert_eq!(r, json!({"response": "success"}));
            assert_silent_close(&mut c).await;
        }
        let (_, _, r) = request(
            &peer,
            &json!({"request": "proxy heartbeat", "host": "unknown-1", "version": full}),
            true,
        )
        .await;
        assert_eq!(
            r,
            json!({"response": "failed", "info": "proxy \"unknown-1\" not found"})
        );
        peer.stop().await;
    }
}

#[tokio::test]
async fn trapper_config_is_the_bare_table_object() {
    for (v, full) in VERSIONS {
        let peer = start("server-trapper", v, None, None).await;
        let req = json!({"request": "proxy config", "host": HOST, "version": full});
        let (mut c, f, r) = request(&peer, &req, true).await;
        assert_eq!(f.flags, 0x03);
        let k = keys(&r);
        assert_eq!(k.first().map(String::as_str), Some("globalmacro"));
        assert_eq!(k.last().map(String::as_str), Some("macro.secrets"));
        assert_eq!(r["macro.secrets"], json!({}));
        assert!(
            r.get("response").is_none() && r.get("data").is_none() && r.get("request").is_none()
        );
        // The configuration of fixtures/server-proxy/<v>/proxy-config.trapper.tables.json.
        let hosts = &r["hosts"];
        assert_eq!(hosts["fields"][0], "hostid");
        assert_eq!(hosts["data"][0][0], 10001);
        assert_eq!(hosts["data"][0][1], "zbx-conform-h1");
        assert!(r["interface"]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|c| c == "port"));
        for (name, table) in r.as_object().expect("object") {
            if name != "macro.secrets" {
                assert!(
                    table["fields"].is_array() && table["data"].is_array(),
                    "{name}"
                );
            }
        }
        assert_silent_close(&mut c).await;
        // Unknown proxy: closed without a reply.
        let mut c = connect(&peer).await;
        send(
            &mut c,
            &json!({"request": "proxy config", "host": "unknown-proxy", "version": full}),
            true,
        )
        .await;
        assert_silent_close(&mut c).await;
        peer.stop().await;
    }
}

#[tokio::test]
async fn trapper_proxy_data_answers_upload_first() {
    for (v, full) in VERSIONS {
        let peer = start("server-trapper", v, None, None).await;
        let (mut c, f, r) = request(&peer, &data(HOST, Some(full)), true).await;
        assert_eq!(f.flags, 0x03);
        assert_eq!(r, json!({"upload": "enabled", "response": "success"}));
        assert_eq!(keys(&r), ["upload", "response"]);
        assert_silent_close(&mut c).await;
        let (_, _, r) = request(&peer, &data("unknown-x", Some(full)), true).await;
        assert_eq!(
            r,
            json!({"response": "failed", "info": "proxy \"unknown-x\" not found"})
        );
        let mut short = data(HOST, Some(full));
        short["session"] = json!("abc");
        let (_, _, r) = request(&peer, &short, true).await;
        assert_eq!(r["response"], "failed");
        assert_eq!(r["info"], "invalid session token length 3");
        peer.stop().await;
    }
}

#[tokio::test]
async fn trapper_checks_proxy_versions_like_6_0() {
    let peer = start("server-trapper", "6.0", None, None).await;
    for (ver, ok) in [
        (Some("6.0.14"), true),
        (Some("5.4.0"), true),
        (Some("4.2.0"), true),
        (Some("4.0.0"), false),
        (Some("6.2.0"), false),
        (None, false),
    ] {
        let (_, _, r) = request(&peer, &data(HOST, ver), true).await;
        if ok {
            assert_eq!(r["response"], "success", "{ver:?}");
        } else {
            assert_eq!(r, json!({"response": "failed"}), "{ver:?}");
        }
    }
    peer.stop().await;
    let peer = start("server-trapper", "5.4", None, None).await;
    let (_, _, r) = request(&peer, &data(HOST, Some("6.0.14")), true).await;
    assert_eq!(
        r,
        json!({"response": "failed"}),
        "a 5.4 server refuses a newer proxy"
    );
    peer.stop().await;
}

#[tokio::test]
async fn trapper_invalid_json_and_unknown_requests() {
    let peer = start("server-trapper", "6.0", None, None).await;
    let mut c = connect(&peer).await;
    send_raw(
        &mut c,
        &encode_frame(b"{not json}", &FrameOptions::default()),
    )
    .await;
    let (f, r) = read_json(&mut c).await;
    assert_eq!(f.flags, 0x01);
    assert_eq!(r["response"], "failed");
    assert!(r["info"]
        .as_str()
        .is_some_and(|i| i.starts_with("cannot parse as a valid JSON object: ")));
    for body in [
        json!({"request": "bogus", "host": HOST}),
        json!({"host": HOST}),
    ] {
        let mut c = connect(&peer).await;
        send(&mut c, &body, true).await;
        assert_silent_close(&mut c).await;
    }
    let mut c = connect(&peer).await;
    let bad = FrameOptions {
        flags: Some(0x09),
        ..FrameOptions::default()
    };
    send_raw(
        &mut c,
        &encode_frame(heartbeat("6.0.14").to_string().as_bytes(), &bad),
    )
    .await;
    assert_silent_close(&mut c).await;
    peer.stop().await;
}

#[tokio::test]
async fn trapper_faults_in_content() {
    let full = "6.0.14";
    let peer = start("server-trapper", "6.0", Some("wrong-response"), None).await;
    let (_, _, r) = request(&peer, &heartbeat(full), true).await;
    assert_eq!(r["response"], "failed");
    let (_, _, r) = request(&peer, &data(HOST, Some(full)), true).await;
    assert_eq!(
        (r["upload"].as_str(), r["response"].as_str()),
        (Some("disabled"), Some("failed"))
    );
    peer.stop().await;

    let peer = start("server-trapper", "6.0", Some("missing-fields"), None).await;
    let (_, _, r) = request(&peer, &data(HOST, Some(full)), true).await;
    assert!(r.get("upload").is_none(), "{r}");
    let (_, _, r) = request(
        &peer,
        &json!({"request": "proxy config", "host": HOST, "version": full}),
        true,
    )
    .await;
    assert!(r.get("hosts").is_none() && r.get("macro.secrets").is_none());
    let (_, _, r) = request(&peer, &heartbeat(full), true).await;
    assert!(r.get("response").is_none());
    peer.stop().await;

    let peer = start("server-trapper", "6.0", Some("wrong-types"), None).await;
    let (_, _, r) = request(&peer, &data(HOST, Some(full)), true).await;
    assert_eq!(r["upload"], json!(true));
    let (_, _, r) = request(
        &peer,
        &json!({"request": "proxy config", "host": HOST, "version": full}),
        true,
    )
    .await;
    assert!(r["hosts"]["data"][0][0].is_string());
    peer.stop().await;

    let peer = start("server-trapper", "6.0", Some("no-version-check"), None).await;
    let (_, _, r) = request(&peer, &data(HOST, Some("3.0.0")), true).await;
    assert_eq!(r["response"], "success");
    peer.stop().await;

    let peer = start("server-trapper", "6.0", Some("replies-unknown"), None).await;
    let (_, _, r) = request(&peer, &json!({"request": "bogus"}), true).await;
    assert_eq!(r["response"], "failed");
    let (_, _, r) = request(
        &peer,
        &json!({"request": "proxy config", "host": "unknown-p"}),
        true,
    )
    .await;
    assert_eq!(r["response"], "failed");
    peer.stop().await;
}

#[tokio::test]
async fn trapper_faults_in_frames_and_timing() {
    let full = "6.0.14";
    let peer = start("server-trapper", "6.0", Some("bad-frame"), None).await;
    let cfg = json!({"request": "proxy config", "host": HOST, "version": full});
    for req in [heartbeat(full), cfg, data(HOST, Some(full))] {
        let mut c = connect(&peer).await;
        send(&mut c, &req, true).await;
        let r = try_read(&mut c, WAIT).await;
        assert!(
            matches!(r, Err(TransportError::Frame(_))),
            "{}: {r:?}",
            req["request"]
        );
    }
    peer.stop().await;

    let peer = start("server-trapper", "6.0", Some("uncompressed"), None).await;
    let (_, f, _) = request(&peer, &heartbeat(full), true).await;
    assert_eq!(f.flags, 0x01, "does not mirror a compressed request");
    peer.stop().await;

    let peer = start("server-trapper", "6.0", Some("extra-bytes"), None).await;
    let (mut c, _, _) = request(&peer, &heartbeat(full), true).await;
    let mut extra = c.leftover().to_vec();
    extra.extend(c.wait_close(WAIT).await.expect("closes"));
    assert!(!extra.is_empty());
    peer.stop().await;

    let peer = start("server-trapper", "6.0", Some("no-reply"), None).await;
    let mut c = connect(&peer).await;
    send(&mut c, &heartbeat(full), true).await;
    assert!(matches!(
        try_read(&mut c, Duration::from_millis(400)).await,
        Err(TransportError::Timeout { .. })
    ));
    let t = Instant::now();
    peer.stop().await;
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(c.expect_silence(WAIT).await, Ok(Silence::Closed));

    let peer = start("server-trapper", "6.0", Some("no-close"), None).await;
    let (mut c, _, _) = request(&peer, &heartbeat(full), true).await;
    assert!(matches!(
        c.wait_close(Duration::from_millis(400)).await,
        Err(TransportError::Timeout { .. })
    ));
    peer.stop().await;
}

// ---------------------------------------------------------------- server poller

/// Play a passive proxy for one full cycle; returns (config request frame+body,
/// data request frame, ack body, tasks request frame, tasks ack body).
struct Cycle {
    config: (ZbxdFrame, Value),
    data: ZbxdFrame,
    data_ack: Value,
    tasks: ZbxdFrame,
    tasks_ack: Value,
}

async fn play_passive_proxy(l: &tokio::net::TcpListener, full: &str, compress: bool) -> Cycle {
    // The poller may be anywhere in its cycle: skip to its next proxy config.
    let config = loop {
        let mut c = accept(l).await;
        let (f, v) = read_json(&mut c).await;
        if v["request"] == "proxy config" {
            send(
                &mut c,
                &json!({"response": "success", "version": full}),
                compress,
            )
            .await;
            assert_silent_close(&mut c).await;
            break (f, v);
        }
    };
    let mut c = accept(l).await;
    let (data, v) = read_json(&mut c).await;
    assert_eq!(v, json!({"request": "proxy data"}));
    send(&mut c, &json!({"session": "0123456789abcdef0123456789abcdef", "version": full, "clock": 1, "ns": 1}), compress).await;
    let (_, data_ack) = read_json(&mut c).await;
    assert_silent_close(&mut c).await;
    let mut c = accept(l).await;
    let (tasks, v) = read_json(&mut c).await;
    assert_eq!(v, json!({"request": "proxy tasks"}));
    send(
        &mut c,
        &json!({"version": full, "clock": 1, "ns": 1}),
        compress,
    )
    .await;
    let (_, tasks_ack) = read_json(&mut c).await;
    assert_silent_close(&mut c).await;
    Cycle {
        config,
        data,
        data_ack,
        tasks,
        tasks_ack,
    }
}

#[tokio::test]
async fn poller_cycle_wraps_config_in_data_and_acknowledges() {
    for (v, full) in VERSIONS {
        let (l, addr) = listen().await;
        let peer = start("server-poller", v, None, Some(addr)).await;
        let cy = play_passive_proxy(&l, full, true).await;
        let (f, cfg) = &cy.config;
        assert_eq!(keys(cfg), ["request", "data"]);
        assert_eq!(cfg["data"]["macro.secrets"], json!({}));
        assert!(cfg["data"]["hosts"]["fields"].is_array());
        assert_eq!(f.flags, 0x01, "first contact is uncompressed");
        assert_eq!(cy.data.flags, 0x03, "mirrors the proxy's compressed answer");
        assert_eq!(cy.data_ack, json!({"response": "success"}));
        assert_eq!(cy.tasks.flags, 0x03);
        assert_eq!(cy.tasks_ack, json!({"response": "success"}));
        // A proxy answering uncompressed gets uncompressed frames again.
        let cy = play_passive_proxy(&l, full, false).await;
        assert_eq!(cy.data.flags, 0x01);
        assert_eq!(cy.tasks.flags, 0x01);
        let t = Instant::now();
        peer.stop().await;
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}

#[tokio::test]
async fn poller_faults_in_content() {
    let full = "6.0.14";
    let (l, addr) = listen().await;
    let peer = start("server-poller", "6.0", Some("wrong-response"), Some(addr)).await;
    let cy = play_passive_proxy(&l, full, true).await;
    assert_eq!(cy.data_ack, json!({"response": "failed"}));
    peer.stop().await;

    let (l, addr) = listen().await;
    let peer = start("server-poller", "6.0", Some("missing-fields"), Some(addr)).await;
    let cy = play_passive_proxy(&l, full, true).await;
    assert!(cy.config.1.get("data").is_none() && cy.config.1.get("hosts").is_some());
    assert_eq!(cy.data_ack, json!({}));
    peer.stop().await;

    let (l, addr) = listen().await;
    let peer = start("server-poller", "6.0", Some("wrong-types"), Some(addr)).await;
    let cy = play_passive_proxy(&l, full, true).await;
    assert!(cy.config.1["data"]["hosts"]["data"][0][0].is_string());
    assert_eq!(cy.data_ack, json!({"response": true}));
    peer.stop().await;
}

#[tokio::test]
async fn poller_faults_in_frames_and_timing() {
    assert_connecting_frame_faults("server-poller").await;

    for fault in ["no-reply", "no-close"] {
        let (l, addr) = listen().await;
        let peer = start("server-poller", "6.0", Some(fault), Some(addr)).await;
        loop {
            let mut c = accept(&l).await;
            let (_, v) = read_json(&mut c).await;
            if v["request"] == "proxy config" {
                send(
                    &mut c,
                    &json!({"response": "success", "version": "6.0.14"}),
                    true,
                )
                .await;
                continue;
            }
            send(
                &mut c,
                &json!({"version": "6.0.14", "clock": 1, "ns": 1}),
                true,
            )
            .await;
            if fault == "no-reply" {
                // The acknowledgement never comes; the connection stays open.
                assert!(matches!(
                    try_read(&mut c, Duration::from_millis(400)).await,
                    Err(TransportError::Timeout { .. })
                ));
            } else {
                let _ = read_json(&mut c).await;
                assert!(matches!(
                    c.wait_close(Duration::from_millis(400)).await,
                    Err(TransportError::Timeout { .. })
                ));
            }
            break;
        }
        peer.stop().await;
    }
}

// ---------------------------------------------------------------- registry

#[tokio::test]
async fn registry_lists_and_refuses() {
    let names = reference::names();
    assert_eq!(
        names,
        [
            "passive-proxy",
            "active-proxy",
            "server-trapper",
            "server-poller",
            "agent-passive",
            "agent-active",
            "server-for-agents"
        ]
    );
    assert!(reference::faults().len() >= 10);
    for (name, _) in reference::references() {
        assert!(!reference::faults_for(name).is_empty(), "{name}");
    }
    let cfg = |name: &str, version: &str, fault: Option<&str>| ReferenceConfig {
        name: name.into(),
        version: version.into(),
        fault: fault.map(Into::into),
        connect_to: None,
        listen: None,
    };
    for (c, needle) in [
        (cfg("nope", "6.0", None), "unknown reference"),
        (cfg("passive-proxy", "9.9", None), "cannot speak"),
        (cfg("passive-proxy", "6.0", Some("nope")), "unknown fault"),
        (
            cfg("server-trapper", "6.0", Some("no-ack-wait")),
            "not implemented",
        ),
        (cfg("active-proxy", "6.0", None), "needs an address"),
    ] {
        match reference::start(&c, catalog()).await {
            Err(e) => assert!(e.contains(needle), "{e}"),
            Ok(p) => {
                p.stop().await;
                panic!("{c:?} must be refused");
            }
        }
    }
    let p = reference::start(&cfg("passive-proxy", "6.0.14", Some("no-close")), catalog())
        .await
        .expect("starts");
    assert!(
        p.describe.contains("passive-proxy")
            && p.describe.contains("6.0.14")
            && p.describe.contains("no-close")
    );
    p.stop().await;
}

// ---------------------------------------------------------------- 6.4 / 7.0 servers

const INCREMENTAL: [(&str, &str); 2] = [("6.4", "6.4.0"), ("7.0", "7.0.0")];
const SESSION: &str = "0123456789abcdef0123456789abcdef";

fn config_request(full: &str, session: Option<&str>, revision: Option<Value>) -> Value {
    let mut m = json!({"request": "proxy config", "host": "zbx-conform-proxy", "version": full});
    if let Some(s) = session {
        m["session"] = json!(s);
    }
    if let Some(r) = revision {
        m["config_revision"] = r;
    }
    m
}

#[tokio::test]
async fn trapper_6_4_config_is_incremental() {
    for (v, full) in INCREMENTAL {
        let peer = start("server-trapper", v, None, None).await;
        // Session and config_revision are required.
        let (_, _, r) = request(&peer, &config_request(full, None, Some(json!(0))), true).await;
        assert_eq!(r["response"], "failed");
        assert!(r["info"].as_str().is_some_and(|i| i.contains("session")));
        let (_, _, r) = request(&peer, &config_request(full, Some(SESSION), None), true).await;
        assert!(r["info"].as_str().is_some_and(|i| i.contains("revision")));
        // New session: full sync with the server's revision; macro.secrets top-level.
        let (_, f, full_sync) = request(
            &peer,
            &config_request(full, Some(SESSION), Some(json!(5))),
            true,
        )
        .await;
        assert_eq!(f.flags, 0x03, "mirrors the compressed request");
        assert_eq!(full_sync["full_sync"], 1);
        assert!(full_sync["data"]["hosts"]["fields"].is_array());
        assert!(full_sync["data"].get("macro.secrets").is_none());
        assert_eq!(full_sync["macro.secrets"], json!({}));
        let server_rev = full_sync["config_revision"].as_u64().expect("revision");
        // Same session at the server's revision: {}.
        let (_, _, r) = request(
            &peer,
            &config_request(full, Some(SESSION), Some(json!(server_rev))),
            true,
        )
        .await;
        assert_eq!(r, json!({}));
        // Same session, older revision: changes without full_sync.
        let (_, _, r) = request(
            &peer,
            &config_request(full, Some(SESSION), Some(json!(1))),
            true,
        )
        .await;
        assert!(r.get("full_sync").is_none() && r["data"].is_object());
        assert_eq!(r["config_revision"], server_rev);
        // Revision 0 always gets a full sync.
        let (_, _, r) = request(
            &peer,
            &config_request(full, Some(SESSION), Some(json!(0))),
            true,
        )
        .await;
        assert_eq!(r["full_sync"], 1);
        // Heartbeats are still answered.
        let (_, _, r) = request(&peer, &heartbeat(full), true).await;
        assert_eq!(r, json!({"response": "success"}));
        // Data from outdated (6.0) proxies is accepted, from unsupported (5.4) refused.
        let (_, _, r) = request(&peer, &data("zbx-conform-proxy", Some("6.0.14")), true).await;
        assert_eq!(r["response"], "success");
        let (_, _, r) = request(&peer, &data("zbx-conform-proxy", Some("5.4.0")), true).await;
        assert_eq!(r, json!({"response": "failed"}));
        peer.stop().await;
    }
}

#[tokio::test]
async fn trapper_6_4_faults() {
    let full = "6.4.0";
    let at_rev = |peer_rev: u64| config_request(full, Some(SESSION), Some(json!(peer_rev)));
    // stale-revision: a full sync even for the server's own revision.
    let peer = start("server-trapper", "6.4", Some("stale-revision"), None).await;
    let (_, _, r) = request(&peer, &at_rev(0), true).await;
    let rev = r["config_revision"].as_u64().expect("revision");
    let (_, _, r) = request(&peer, &at_rev(rev), true).await;
    assert_eq!(r["full_sync"], 1);
    peer.stop().await;
    // missing-fields: no config_revision, no hosts; the heartbeat stays intact.
    let peer = start("server-trapper", "6.4", Some("missing-fields"), None).await;
    let (_, _, r) = request(&peer, &at_rev(0), true).await;
    assert!(r.get("config_revision").is_none() && r["data"].get("hosts").is_none());
    let (_, _, r) = request(&peer, &heartbeat(full), true).await;
    assert_eq!(r, json!({"response": "success"}));
    peer.stop().await;
    // wrong-types: config_revision as a string.
    let peer = start("server-trapper", "6.4", Some("wrong-types"), None).await;
    let (_, _, r) = request(&peer, &at_rev(0), true).await;
    assert!(r["config_revision"].is_string());
    peer.stop().await;
}

/// Play a 6.4+ passive proxy for one configuration dialogue (skipping the poller's
/// other exchanges): returns the request frame, the request and the answer frame/body.
async fn play_config_dialogue(
    l: &tokio::net::TcpListener,
    full: &str,
    revision: u64,
) -> (ZbxdFrame, Value, ZbxdFrame, Value) {
    loop {
        let mut c = accept(l).await;
        let (f, v) = read_json(&mut c).await;
        if v["request"] != "proxy config" {
            continue;
        }
        let info = json!({"version": full, "session": SESSION, "config_revision": revision});
        send(&mut c, &info, f.is_compressed()).await;
        let (af, answer) = read_json(&mut c).await;
        send(
            &mut c,
            &json!({"response": "success", "version": full}),
            true,
        )
        .await;
        assert_silent_close(&mut c).await;
        return (f, v, af, answer);
    }
}

#[tokio::test]
async fn poller_6_4_config_dialogue() {
    for (v, full) in INCREMENTAL {
        let (l, addr) = listen().await;
        let peer = start("server-poller", v, None, Some(addr)).await;
        let (f, req, af, answer) = play_config_dialogue(&l, full, 0).await;
        assert_eq!(
            req,
            json!({"request": "proxy config"}),
            "{v}: empty request"
        );
        assert_eq!(f.flags, 0x01);
        assert_eq!(af.flags, 0x03, "configuration answer is compressed");
        assert_eq!(answer["full_sync"], 1);
        let rev = answer["config_revision"].as_u64().expect("revision");
        let (_, _, _, unchanged) = play_config_dialogue(&l, full, rev).await;
        assert_eq!(unchanged, json!({}), "{v}: current revision gets no data");
        peer.stop().await;
        // stale-revision: full sync again.
        let (l, addr) = listen().await;
        let peer = start("server-poller", v, Some("stale-revision"), Some(addr)).await;
        let (_, _, _, a) = play_config_dialogue(&l, full, 0).await;
        let rev = a["config_revision"].as_u64().expect("revision");
        let (_, _, _, again) = play_config_dialogue(&l, full, rev).await;
        assert_eq!(again["full_sync"], 1);
        peer.stop().await;
    }
}

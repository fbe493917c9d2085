//! TLS connections over real loopback sockets, the harness on both ends: PSK and
//! certificates succeed and are recorded; a wrong key, a foreign identity, a plaintext
//! connection to a TLS-only listener, an unknown CA and an unexpected subject are each
//! refused with a TLS error that names the reason and never shows the key.

mod support;
mod tls_support;

use std::time::Duration;
use tls_support::*;
use tokio::net::TcpListener;
use zbx_conform::frame::{encode_frame, FrameOptions, ZbxdCodec};
use zbx_conform::transport::tls::{self, TlsConfig, TlsInfo, TlsMode, TlsSettings};
use zbx_conform::transport::{connect_tcp, Connection, TransportError};

const WAIT: Duration = Duration::from_secs(5);

fn load(s: TlsSettings) -> TlsConfig {
    TlsConfig::load(&s, None).expect("settings load")
}

fn psk(
    pki: &Pki,
    connect: Option<&str>,
    accept: Option<&[&str]>,
    key: &str,
    id: &str,
) -> TlsConfig {
    load(TlsSettings {
        connect: connect.map(str::to_string),
        accept: accept.map(|a| a.iter().map(|s| s.to_string()).collect()),
        psk_identity: Some(id.into()),
        psk_file: Some(pki.file(key)),
        ..Default::default()
    })
}

fn certs(
    pki: &Pki,
    connect: Option<&str>,
    accept: Option<&[&str]>,
    who: &str,
    ca: &str,
) -> TlsSettings {
    TlsSettings {
        connect: connect.map(str::to_string),
        accept: accept.map(|a| a.iter().map(|s| s.to_string()).collect()),
        ca_file: Some(pki.file(&format!("{ca}.crt"))),
        cert_file: Some(pki.file(&format!("{who}.crt"))),
        key_file: Some(pki.file(&format!("{who}.key"))),
        ..Default::default()
    }
}

/// What one side of a conversation ended with: the connection's TLS facts, or the
/// error of its set-up or of the exchange that followed.
type Side = Result<Option<TlsInfo>, TransportError>;

/// One request and its echo over a connection that `server` accepts and `client` makes.
async fn talk(server: TlsConfig, client: TlsConfig) -> (Side, Side) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let srv = tokio::spawn(async move {
        let (tcp, from) = listener.accept().await.unwrap();
        let s = tls::accept(tcp, &server, &from.to_string(), WAIT).await?;
        let mut conn = Connection::new(s.stream, ZbxdCodec::default(), "client");
        let frame = conn
            .read_frame(WAIT)
            .await?
            .ok_or(TransportError::Io("closed".into()))?;
        let echo = encode_frame(&frame.payload, &FrameOptions::default());
        conn.write_all(&echo, WAIT).await?;
        conn.shutdown().await;
        Ok(s.tls)
    });
    let client_side = async {
        let tcp = connect_tcp(&addr, WAIT).await?;
        let s = tls::connect(tcp, &client, &addr, WAIT).await?;
        let mut conn = Connection::new(s.stream, ZbxdCodec::default(), addr.clone());
        let sent = encode_frame(br#"{"request":"ping"}"#, &FrameOptions::default());
        conn.write_all(&sent, WAIT).await?;
        let got = conn
            .read_frame(WAIT)
            .await?
            .ok_or(TransportError::Io("closed".into()))?;
        assert_eq!(&got.payload[..], br#"{"request":"ping"}"#);
        Ok(s.tls)
    }
    .await;
    (srv.await.unwrap(), client_side)
}

/// The error of a side that must have failed in TLS: the handshake, or (TLS 1.3 refuses
/// a client certificate after the client's handshake) the first read, naming TLS.
fn tls_error(r: &Side) -> String {
    match r {
        Err(e @ TransportError::Tls { .. }) => e.to_string(),
        Err(e @ TransportError::Io(m)) if m.starts_with("TLS: ") => e.to_string(),
        Err(other) => panic!("expected a TLS error, got {other}"),
        Ok(tls) => panic!("expected a TLS error, got a connection {tls:?}"),
    }
}

fn no_key_in(text: &str) {
    for k in [PSK, WRONG_PSK] {
        assert!(!text.contains(&k[..16]), "a key shows in {text}");
    }
}

#[tokio::test]
async fn psk_connects_and_both_sides_record_version_cipher_and_identity() {
    let pki = Pki::psk_only();
    let server = psk(&pki, None, Some(&["psk"]), "good.psk", IDENTITY);
    let client = psk(&pki, Some("psk"), None, "good.psk", IDENTITY);
    let (s, c) = talk(server, client).await;
    let (s, c) = (
        s.expect("server side").unwrap(),
        c.expect("client side").unwrap(),
    );
    for info in [&s, &c] {
        assert_eq!(info.version, "TLSv1.3", "{info}");
        assert_eq!(info.psk_identity.as_deref(), Some(IDENTITY), "{info}");
        assert!(info.cipher.ends_with("SHA256"), "{info}");
    }
}

#[tokio::test]
async fn tls_1_2_psk_suites_work_when_the_client_offers_only_them() {
    let pki = Pki::psk_only();
    let server = psk(&pki, None, Some(&["psk"]), "good.psk", IDENTITY);
    // A cipher list with no TLS 1.3 suite: what a GnuTLS-built Zabbix 6.0 offers.
    let client = load(TlsSettings {
        connect: Some("psk".into()),
        psk_identity: Some(IDENTITY.into()),
        psk_file: Some(pki.file("good.psk")),
        cipher: Some("PSK-AES128-GCM-SHA256".into()),
        cipher13: Some("".into()),
        ..Default::default()
    });
    let (s, c) = talk(server, client).await;
    let c = c.expect("client side").unwrap();
    assert_eq!(c.version, "TLSv1.2", "{c}");
    assert_eq!(c.cipher, "PSK-AES128-GCM-SHA256", "{c}");
    assert_eq!(s.unwrap().unwrap().psk_identity.as_deref(), Some(IDENTITY));
}

#[tokio::test]
async fn a_wrong_key_fails_as_tls_on_both_sides_without_showing_a_key() {
    let pki = Pki::psk_only();
    let server = psk(&pki, None, Some(&["psk"]), "good.psk", IDENTITY);
    let client = psk(&pki, Some("psk"), None, "wrong.psk", IDENTITY);
    let (s, c) = talk(server, client).await;
    let (se, ce) = (tls_error(&s), tls_error(&c));
    no_key_in(&se);
    no_key_in(&ce);
    assert!(ce.starts_with("TLS handshake with 127.0.0.1:"), "{ce}");
}

#[tokio::test]
async fn a_foreign_identity_is_named_by_the_accepting_side() {
    let pki = Pki::psk_only();
    let server = psk(&pki, None, Some(&["psk"]), "good.psk", IDENTITY);
    let client = psk(&pki, Some("psk"), None, "good.psk", "somebody else");
    let (s, c) = talk(server, client).await;
    let se = tls_error(&s);
    assert!(
        se.contains("PSK identity \"somebody else\" is not ours"),
        "{se}"
    );
    tls_error(&c);
}

#[tokio::test]
async fn plaintext_to_a_psk_only_listener_is_not_allowed_and_allowed_when_listed() {
    let pki = Pki::psk_only();
    let server = psk(&pki, None, Some(&["psk"]), "good.psk", IDENTITY);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let srv = tokio::spawn(async move {
        let (tcp, from) = listener.accept().await.unwrap();
        tls::accept(tcp, &server, &from.to_string(), WAIT).await
    });
    let mut plain = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut plain, b"ZBXD\x01")
        .await
        .unwrap();
    match srv.await.unwrap() {
        Err(e @ TransportError::NotAllowed { .. }) => {
            assert!(
                e.to_string().contains("connection of type \"unencrypted\""),
                "{e}"
            );
            assert!(e.to_string().contains("(accept: psk)"), "{e}");
        }
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(s) => panic!("expected a refusal, got a connection {:?}", s.tls),
    }

    let both = psk(
        &pki,
        None,
        Some(&["unencrypted", "psk"]),
        "good.psk",
        IDENTITY,
    );
    assert_eq!(both.accept, [TlsMode::Unencrypted, TlsMode::Psk]);
    let (s, c) = talk(both, TlsConfig::plaintext()).await;
    assert_eq!(s.unwrap(), None);
    assert_eq!(c.unwrap(), None);
}

#[tokio::test]
async fn certificates_chain_to_the_ca_and_subjects_are_recorded() {
    let Some(pki) = Pki::with_certs() else { return };
    let server = load(certs(&pki, None, Some(&["cert"]), "server", "ca"));
    let mut client = certs(&pki, Some("cert"), None, "client", "ca");
    client.server_cert_subject = Some(SERVER_SUBJECT.into());
    client.server_cert_issuer = Some(CA_SUBJECT.into());
    let (s, c) = talk(server, load(client)).await;
    let (s, c) = (
        s.expect("server side").unwrap(),
        c.expect("client side").unwrap(),
    );
    assert_eq!(c.peer_subject.as_deref(), Some(SERVER_SUBJECT), "{c}");
    assert_eq!(s.peer_subject.as_deref(), Some(CLIENT_SUBJECT), "{s}");
    assert_eq!(s.peer_issuer.as_deref(), Some(CA_SUBJECT), "{s}");
    assert!(s.psk_identity.is_none());
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused_with_the_reason() {
    let Some(pki) = Pki::with_certs() else { return };
    let server = load(certs(&pki, None, Some(&["cert"]), "server", "ca"));
    let client = load(certs(&pki, Some("cert"), None, "rogue", "ca"));
    let (s, c) = talk(server, client).await;
    let se = tls_error(&s);
    assert!(se.contains("certificate verify failed"), "{se}");
    let ce = tls_error(&c);
    assert!(ce.contains("unknown ca"), "{ce}");

    // The other way round: our client does not trust a server of another CA.
    let server = load(certs(&pki, None, Some(&["cert"]), "server", "ca"));
    let client = load(certs(&pki, Some("cert"), None, "client", "other-ca"));
    let (_, c) = talk(server, client).await;
    let ce = tls_error(&c);
    assert!(ce.contains("certificate verify failed"), "{ce}");
}

#[tokio::test]
async fn an_unexpected_subject_or_issuer_is_refused() {
    let Some(pki) = Pki::with_certs() else { return };
    for (subject, issuer, want) in [
        (
            Some("CN=someone else"),
            None,
            "subject \"CN=zbxc server,O=zbx-conform\" is not the expected \"CN=someone else\"",
        ),
        (None, Some("CN=another CA"), "issuer"),
    ] {
        let server = load(certs(&pki, None, Some(&["cert"]), "server", "ca"));
        let mut client = certs(&pki, Some("cert"), None, "client", "ca");
        client.server_cert_subject = subject.map(str::to_string);
        client.server_cert_issuer = issuer.map(str::to_string);
        let (_, c) = talk(server, load(client)).await;
        let ce = tls_error(&c);
        assert!(ce.contains(want), "{ce}");
    }
}

#[test]
fn a_key_that_does_not_fit_the_certificate_and_an_unreadable_key_are_named() {
    let Some(pki) = Pki::with_certs() else { return };
    let mut s = certs(&pki, Some("cert"), None, "client", "ca");
    s.key_file = Some(pki.file("server.key"));
    let e = TlsConfig::load(&s, None).unwrap_err().to_string();
    assert!(
        e.contains("key_file (--tls-key-file)") && e.contains("does not belong"),
        "{e}"
    );
    s.key_file = Some(pki.file("missing.key"));
    let e = TlsConfig::load(&s, None).unwrap_err().to_string();
    assert!(e.contains("missing.key: cannot read"), "{e}");
    std::fs::write(pki.path("garbage.key"), "-----BEGIN PRIVATE KEY-----\nxx\n").unwrap();
    s.key_file = Some(pki.file("garbage.key"));
    let e = TlsConfig::load(&s, None).unwrap_err().to_string();
    assert!(e.contains("not a PEM private key"), "{e}");
}

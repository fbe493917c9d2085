//! Connections that may be encrypted: connect with the configured mode, or accept and
//! tell TLS from plaintext by the first byte as Zabbix does (0x16 opens a TLS handshake
//! record, `Z` a ZBXD frame), then check that the type is one we accept.
//!
//! A failed handshake is a [`TransportError::Tls`] carrying OpenSSL's reason (and the
//! certificate check's, or the PSK identity that did not fit), never a bare close.

use super::config::{reasons, TlsConfig};
use super::context::{self, SeenIdentity};
use super::info::TlsInfo;
use super::settings::TlsMode;
use crate::transport::TransportError;
use openssl::ssl::{ErrorCode, Ssl, SslRef};
use openssl::x509::X509VerifyResult;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// A TCP connection, in clear or inside TLS.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
}

impl Stream {
    /// The type of this connection in Zabbix's terms: unencrypted, psk, or cert (TLS with
    /// a certificate from the peer), what a host's tls_accept is checked against.
    pub fn mode(&self) -> TlsMode {
        match self {
            Stream::Plain(_) => TlsMode::Unencrypted,
            Stream::Tls(s) if s.ssl().peer_certificate().is_some() => TlsMode::Cert,
            Stream::Tls(_) => TlsMode::Psk,
        }
    }
}

/// A connection and, when it is encrypted, what TLS it speaks.
#[derive(Debug)]
pub struct Secured {
    pub stream: Stream,
    pub tls: Option<TlsInfo>,
}

impl Secured {
    fn plain(tcp: TcpStream) -> Secured {
        Secured {
            stream: Stream::Plain(tcp),
            tls: None,
        }
    }
}

/// Connect over `tcp` with `cfg.connect`: unchanged for unencrypted, else a TLS
/// handshake within `within`, then the peer certificate's issuer and subject checked.
pub async fn connect(
    tcp: TcpStream,
    cfg: &TlsConfig,
    peer: &str,
    within: Duration,
) -> Result<Secured, TransportError> {
    if cfg.connect == TlsMode::Unencrypted {
        return Ok(Secured::plain(tcp));
    }
    let fail = |reason: String| TransportError::Tls {
        peer: peer.to_string(),
        reason,
    };
    let ctx = context::client(cfg).map_err(|e| fail(reasons(&e)))?;
    let ssl = Ssl::new(&ctx).map_err(|e| fail(reasons(&e)))?;
    let mut s = SslStream::new(ssl, tcp).map_err(|e| fail(reasons(&e)))?;
    match tokio::time::timeout(within, Pin::new(&mut s).connect()).await {
        Err(_) => return Err(handshake_timeout(peer, within)),
        Ok(Err(e)) => return Err(fail(handshake_reason(&e, s.ssl(), None, cfg))),
        Ok(Ok(())) => {}
    }
    let identity = (cfg.connect == TlsMode::Psk)
        .then(|| cfg.psk.as_ref().map(|p| p.identity().to_string()))
        .flatten();
    let info = TlsInfo::of(s.ssl(), identity);
    check_names(&info, cfg).map_err(fail)?;
    Ok(Secured {
        stream: Stream::Tls(Box::new(s)),
        tls: Some(info),
    })
}

/// Accept over `tcp` what `cfg.accept` allows. With plaintext only (no TLS configured)
/// nothing is read ahead, exactly as before TLS existed; otherwise the first byte
/// decides, waiting for it at most `within`.
pub async fn accept(
    tcp: TcpStream,
    cfg: &TlsConfig,
    peer: &str,
    within: Duration,
) -> Result<Secured, TransportError> {
    if cfg.accept == [TlsMode::Unencrypted] {
        return Ok(Secured::plain(tcp));
    }
    let mut first = [0u8; 1];
    let n = match tokio::time::timeout(within, tcp.peek(&mut first)).await {
        Err(_) => {
            return Err(TransportError::Timeout {
                what: format!("the first byte from {peer} (to tell TLS from plaintext)"),
                after: within,
            })
        }
        Ok(Err(e)) => return Err(TransportError::Io(e.to_string())),
        Ok(Ok(n)) => n,
    };
    // A connection closed before its first byte is left to the reader to report.
    if n == 0 {
        return Ok(Secured::plain(tcp));
    }
    let allowed = cfg
        .accept
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let encrypted = cfg.accept.iter().any(|m| *m != TlsMode::Unencrypted);
    if first[0] != TLS_HANDSHAKE {
        if cfg.accept.contains(&TlsMode::Unencrypted) {
            return Ok(Secured::plain(tcp));
        }
        return Err(TransportError::NotAllowed {
            peer: peer.to_string(),
            got: TlsMode::Unencrypted.as_str().into(),
            allowed,
        });
    }
    if !encrypted {
        return Err(TransportError::NotAllowed {
            peer: peer.to_string(),
            got: "TLS".into(),
            allowed,
        });
    }
    let fail = |reason: String| TransportError::Tls {
        peer: peer.to_string(),
        reason,
    };
    let seen: SeenIdentity = Default::default();
    let ctx = context::server(cfg, seen.clone()).map_err(|e| fail(reasons(&e)))?;
    let ssl = Ssl::new(&ctx).map_err(|e| fail(reasons(&e)))?;
    let mut s = SslStream::new(ssl, tcp).map_err(|e| fail(reasons(&e)))?;
    let offered = || seen.lock().ok().and_then(|s| s.clone());
    match tokio::time::timeout(within, Pin::new(&mut s).accept()).await {
        Err(_) => return Err(handshake_timeout(peer, within)),
        Ok(Err(e)) => return Err(fail(handshake_reason(&e, s.ssl(), offered(), cfg))),
        Ok(Ok(())) => {}
    }
    let has_cert = s.ssl().peer_certificate().is_some();
    let identity = if has_cert { None } else { offered() };
    let info = TlsInfo::of(s.ssl(), identity);
    let mode = if has_cert {
        TlsMode::Cert
    } else {
        TlsMode::Psk
    };
    if !cfg.accept.contains(&mode) {
        return Err(TransportError::NotAllowed {
            peer: peer.to_string(),
            got: mode.as_str().into(),
            allowed,
        });
    }
    check_names(&info, cfg).map_err(fail)?;
    Ok(Secured {
        stream: Stream::Tls(Box::new(s)),
        tls: Some(info),
    })
}

fn handshake_timeout(peer: &str, within: Duration) -> TransportError {
    TransportError::Timeout {
        what: format!("the TLS handshake with {peer}"),
        after: within,
    }
}

/// Why a handshake failed, in words: OpenSSL's reasons, the certificate check's verdict,
/// and on our accepting side a PSK identity that is not ours.
fn handshake_reason(
    e: &openssl::ssl::Error,
    ssl: &SslRef,
    offered: Option<String>,
    cfg: &TlsConfig,
) -> String {
    let mut parts = Vec::new();
    if let Some(stack) = e.ssl_error() {
        parts.push(reasons(stack));
    }
    let verify = ssl.verify_result();
    if verify != X509VerifyResult::OK {
        parts.push(format!(
            "certificate verify failed: {}",
            verify.error_string()
        ));
    }
    if let (Some(got), Some(ours)) = (&offered, &cfg.psk) {
        if got != ours.identity() {
            parts.push(format!(
                "the peer's PSK identity {got:?} is not ours ({:?})",
                ours.identity()
            ));
        }
    }
    if parts.is_empty() {
        parts.push(match (e.code(), e.io_error()) {
            (_, Some(io)) if io.kind() != io::ErrorKind::UnexpectedEof => {
                format!("I/O error: {io}")
            }
            (ErrorCode::ZERO_RETURN, _) | (ErrorCode::SYSCALL, _) => {
                "the peer closed the connection during the handshake".into()
            }
            (code, _) => format!("OpenSSL error code {}", code.as_raw()),
        });
    }
    parts.join("; ")
}

/// The peer certificate's issuer and subject against the expected ones, when given.
fn check_names(info: &TlsInfo, cfg: &TlsConfig) -> Result<(), String> {
    let checks = [
        ("issuer", &cfg.peer_issuer, &info.peer_issuer),
        ("subject", &cfg.peer_subject, &info.peer_subject),
    ];
    for (what, want, got) in checks {
        let Some(want) = want else { continue };
        match got {
            Some(got) if got == want => {}
            Some(got) => {
                return Err(format!(
                    "the peer certificate's {what} {got:?} is not the expected {want:?}"
                ))
            }
            None => {
                return Err(format!(
                    "the peer sent no certificate, but its {what} must be {want:?}"
                ))
            }
        }
    }
    Ok(())
}

/// An I/O error of an established TLS connection in words a report can use: TLS 1.3
/// refuses a client certificate only after the client's handshake is done, so the
/// refusal (an alert such as "unknown ca") arrives with the first read.
fn tls_io_error(e: io::Error) -> io::Error {
    let reason = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<openssl::ssl::Error>())
        .and_then(|ssl| ssl.ssl_error())
        .map(reasons);
    match reason {
        Some(r) => io::Error::new(e.kind(), format!("TLS: {r}")),
        None => e,
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut())
                .poll_read(cx, buf)
                .map_err(tls_io_error),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut())
                .poll_write(cx, buf)
                .map_err(tls_io_error),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

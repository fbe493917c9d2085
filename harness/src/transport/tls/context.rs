//! OpenSSL contexts for one connection, set up the way Zabbix sets up its own: TLS 1.2
//! and 1.3, Zabbix's default cipher lists (AES-128 suites; for PSK in TLS 1.3 only the
//! SHA-256 suites, which TLS 1.3 PSK needs), certificates verified against the CA with
//! no host name check (Zabbix compares issuer and subject instead).
//!
//! A context is made per connection: it is cheap next to a handshake, and the PSK
//! callback of an accepting context can then tell this connection's failure apart.

use super::config::TlsConfig;
use super::settings::TlsMode;
use openssl::error::ErrorStack;
use openssl::ssl::{
    SslContext, SslContextBuilder, SslFiletype, SslMethod, SslVerifyMode, SslVersion,
};
use openssl::x509::store::X509Lookup;
use openssl::x509::verify::X509VerifyFlags;
use std::sync::{Arc, Mutex};

/// Zabbix's TLS 1.2 cipher list for certificates (TLSCipherCert's default).
const CERT12: &str = "EECDH+aRSA+AES128:RSA+aRSA+AES128";
/// Zabbix's TLS 1.2 cipher list for PSK (TLSCipherPSK's default).
const PSK12: &str = "kECDHEPSK+AES128:kPSK+AES128";
/// Zabbix's TLS 1.3 suites for PSK (TLSCipherPSK13's default).
const PSK13: &str = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
/// TLS 1.3 suites when certificates may be used too: the PSK-capable ones first.
const ALL13: &str = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384";

/// The PSK identity an accepting context was offered (kept for the report and for a
/// failure message naming the identity that did not fit).
pub type SeenIdentity = Arc<Mutex<Option<String>>>;

/// Versions, cipher lists and certificates common to both sides; `modes` are the modes
/// this context may negotiate.
fn base(
    method: SslMethod,
    cfg: &TlsConfig,
    modes: &[TlsMode],
) -> Result<SslContextBuilder, ErrorStack> {
    let mut b = SslContextBuilder::new(method)?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    let psk = modes.contains(&TlsMode::Psk);
    let cert = modes.contains(&TlsMode::Cert);
    let list12 = match (psk, cert) {
        (true, true) => format!("{CERT12}:{PSK12}"),
        (true, false) => PSK12.to_string(),
        _ => CERT12.to_string(),
    };
    b.set_cipher_list(cfg.cipher.as_deref().unwrap_or(&list12))?;
    let list13 = if psk && !cert { PSK13 } else { ALL13 };
    match cfg.cipher13.as_deref() {
        // No TLS 1.3 suite means TLS 1.2 only (OpenSSL would rather offer nothing).
        Some(c) if c.trim().is_empty() => b.set_max_proto_version(Some(SslVersion::TLS1_2))?,
        c => b.set_ciphersuites(c.unwrap_or(list13))?,
    }
    if cert {
        if let Some(m) = &cfg.certs {
            for ca in &m.ca {
                b.cert_store_mut().add_cert(ca.clone())?;
            }
            if let Some(crl) = &m.crl_file {
                let path = crl.to_string_lossy().into_owned();
                let lookup = b.cert_store_mut().add_lookup(X509Lookup::file())?;
                lookup.load_crl_file(path, SslFiletype::PEM)?;
                b.cert_store_mut().set_flags(X509VerifyFlags::CRL_CHECK)?;
            }
            b.set_certificate(&m.chain[0])?;
            for c in &m.chain[1..] {
                b.add_extra_chain_cert(c.clone())?;
            }
            b.set_private_key(&m.key)?;
            b.check_private_key()?;
        }
    }
    Ok(b)
}

/// A context for connecting with `cfg.connect` (psk or cert).
pub fn client(cfg: &TlsConfig) -> Result<SslContext, ErrorStack> {
    let mut b = base(SslMethod::tls_client(), cfg, &[cfg.connect])?;
    match cfg.connect {
        TlsMode::Cert => b.set_verify(SslVerifyMode::PEER),
        _ => b.set_verify(SslVerifyMode::NONE),
    }
    if let (TlsMode::Psk, Some(psk)) = (cfg.connect, &cfg.psk) {
        let identity = psk.identity().as_bytes().to_vec();
        let key = psk.key().to_vec();
        b.set_psk_client_callback(move |_ssl, _hint, id_out, key_out| {
            // Buffers too small for what was checked at load time: refuse, do not panic.
            if identity.len() >= id_out.len() || key.len() > key_out.len() {
                return Ok(0);
            }
            id_out[..identity.len()].copy_from_slice(&identity);
            id_out[identity.len()] = 0;
            key_out[..key.len()].copy_from_slice(&key);
            Ok(key.len())
        });
    }
    Ok(b.build())
}

/// A context for accepting the encrypted modes of `cfg.accept`; `seen` receives the PSK
/// identity the client offers.
pub fn server(cfg: &TlsConfig, seen: SeenIdentity) -> Result<SslContext, ErrorStack> {
    let modes: Vec<TlsMode> = cfg
        .accept
        .iter()
        .copied()
        .filter(|m| *m != TlsMode::Unencrypted)
        .collect();
    let mut b = base(SslMethod::tls_server(), cfg, &modes)?;
    if modes.contains(&TlsMode::Cert) {
        // Zabbix requires a certificate from a client that connects with certificates.
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    } else {
        b.set_verify(SslVerifyMode::NONE);
    }
    if let (true, Some(psk)) = (modes.contains(&TlsMode::Psk), &cfg.psk) {
        let identity = psk.identity().as_bytes().to_vec();
        let key = psk.key().to_vec();
        b.set_psk_server_callback(move |_ssl, offered, key_out| {
            if let Ok(mut s) = seen.lock() {
                *s = offered.map(|o| String::from_utf8_lossy(o).into_owned());
            }
            if offered != Some(identity.as_slice()) || key.len() > key_out.len() {
                return Ok(0);
            }
            key_out[..key.len()].copy_from_slice(&key);
            Ok(key.len())
        });
    }
    Ok(b.build())
}

//! A checked TLS configuration: modes parsed, the key file and certificates read. Made
//! once per connection from [`TlsSettings`], so every mistake in a setting is reported
//! before a byte goes out, as a value that names the setting and the file.

use super::psk::{PskCredentials, PskError};
use super::settings::{cli_name, TlsMode, TlsSettings};
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslContextBuilder, SslMethod};
use openssl::x509::X509;
use std::path::{Path, PathBuf};

/// What is wrong with TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsConfigError {
    #[error("tls {field} ({cli}): {reason}")]
    BadValue {
        field: &'static str,
        cli: &'static str,
        reason: String,
    },
    #[error("tls {field} ({cli}) is required for {needed_by}")]
    Missing {
        field: &'static str,
        cli: &'static str,
        needed_by: String,
    },
    #[error("tls: {0}")]
    Psk(#[from] PskError),
    #[error("tls {field} ({cli}): {path}: {reason}")]
    File {
        field: &'static str,
        cli: &'static str,
        path: String,
        reason: String,
    },
}

impl TlsConfigError {
    fn bad(field: &'static str, reason: impl Into<String>) -> Self {
        TlsConfigError::BadValue {
            field,
            cli: cli_name(field),
            reason: reason.into(),
        }
    }

    fn file(field: &'static str, path: &Path, reason: impl Into<String>) -> Self {
        TlsConfigError::File {
            field,
            cli: cli_name(field),
            path: path.display().to_string(),
            reason: reason.into(),
        }
    }
}

/// Our certificate, its key and the CA (and CRL) that peers' certificates must chain to.
#[derive(Clone)]
pub struct CertMaterial {
    pub ca: Vec<X509>,
    /// Checked for readability; handed to the TLS library by path.
    pub crl_file: Option<PathBuf>,
    /// Our certificate first, then any intermediates from the same file.
    pub chain: Vec<X509>,
    pub key: PKey<Private>,
}

impl std::fmt::Debug for CertMaterial {
    /// Subjects only: the private key is not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let subjects: Vec<String> = self
            .chain
            .iter()
            .map(|c| super::info::name_string(c.subject_name()))
            .collect();
        f.debug_struct("CertMaterial")
            .field("ca", &self.ca.len())
            .field("crl_file", &self.crl_file)
            .field("chain", &subjects)
            .field("key", &"<secret>")
            .finish()
    }
}

/// A checked TLS configuration for one connection.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// How we connect out.
    pub connect: TlsMode,
    /// What we accept, sorted, once each.
    pub accept: Vec<TlsMode>,
    pub psk: Option<PskCredentials>,
    pub certs: Option<CertMaterial>,
    /// The issuer and subject the peer's certificate must have, when given.
    pub peer_issuer: Option<String>,
    pub peer_subject: Option<String>,
    pub cipher: Option<String>,
    pub cipher13: Option<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig::plaintext()
    }
}

impl TlsConfig {
    /// No TLS at all: connect unencrypted, accept unencrypted only.
    pub fn plaintext() -> TlsConfig {
        TlsConfig {
            connect: TlsMode::Unencrypted,
            accept: vec![TlsMode::Unencrypted],
            psk: None,
            certs: None,
            peer_issuer: None,
            peer_subject: None,
            cipher: None,
            cipher13: None,
        }
    }

    /// Whether this configuration neither encrypts nor accepts encryption.
    pub fn is_plaintext(&self) -> bool {
        self.connect == TlsMode::Unencrypted && self.accept == [TlsMode::Unencrypted]
    }

    /// The other side of this configuration, for a peer that must meet it (a built-in
    /// reference peer): it accepts exactly the type we connect with (so a plaintext
    /// connection to a peer we reach over PSK is closed, as a PSK-only Zabbix peer
    /// closes it), and connects with the strongest type we accept. Same key and
    /// certificates; no issuer or subject check of its own.
    pub fn mirrored(&self) -> TlsConfig {
        let connect = self
            .accept
            .iter()
            .copied()
            .max()
            .unwrap_or(TlsMode::Unencrypted);
        TlsConfig {
            connect,
            accept: vec![self.connect],
            psk: self.psk.clone(),
            certs: self.certs.clone(),
            peer_issuer: None,
            peer_subject: None,
            cipher: self.cipher.clone(),
            cipher13: self.cipher13.clone(),
        }
    }

    /// Whether `mode` is used for connecting or accepting.
    fn uses(&self, mode: TlsMode) -> bool {
        self.connect == mode || self.accept.contains(&mode)
    }

    /// Check `settings` and read the files they name; relative paths are taken from
    /// `base` (a scenario's folder) when given. Every file that is named is read and
    /// checked, used or not, so a typo does not wait for the step that needs it.
    pub fn load(settings: &TlsSettings, base: Option<&Path>) -> Result<TlsConfig, TlsConfigError> {
        let mut cfg = TlsConfig::plaintext();
        if let Some(c) = &settings.connect {
            cfg.connect = TlsMode::parse(c).map_err(|e| TlsConfigError::bad("connect", e))?;
        }
        if let Some(list) = &settings.accept {
            let mut modes = Vec::new();
            for a in list.iter().flat_map(|a| a.split(',')) {
                modes.push(TlsMode::parse(a).map_err(|e| TlsConfigError::bad("accept", e))?);
            }
            if modes.is_empty() {
                return Err(TlsConfigError::bad("accept", "lists no connection type"));
            }
            modes.sort();
            modes.dedup();
            cfg.accept = modes;
        }
        let path =
            |field: &'static str, p: &Option<String>| -> Result<Option<PathBuf>, TlsConfigError> {
                let Some(p) = p.as_deref() else {
                    return Ok(None);
                };
                if p.trim().is_empty() {
                    return Err(TlsConfigError::bad(field, "is empty"));
                }
                if p.contains('\0') {
                    return Err(TlsConfigError::bad(field, "contains a NUL character"));
                }
                let p = PathBuf::from(p);
                Ok(Some(match base {
                    Some(b) if p.is_relative() => b.join(p),
                    _ => p,
                }))
            };

        let psk_file = path("psk_file", &settings.psk_file)?;
        match (&settings.psk_identity, &psk_file) {
            (Some(id), Some(file)) => cfg.psk = Some(PskCredentials::load(id, file)?),
            (Some(id), None) => super::psk::check_identity(id)?,
            _ => {}
        }
        if cfg.uses(TlsMode::Psk) && cfg.psk.is_none() {
            let field = if settings.psk_identity.is_none() {
                "psk_identity"
            } else {
                "psk_file"
            };
            return Err(TlsConfigError::Missing {
                field,
                cli: cli_name(field),
                needed_by: needed_by(&cfg, TlsMode::Psk),
            });
        }

        let ca = path("ca_file", &settings.ca_file)?;
        let crl = path("crl_file", &settings.crl_file)?;
        let cert = path("cert_file", &settings.cert_file)?;
        let key = path("key_file", &settings.key_file)?;
        if cfg.uses(TlsMode::Cert) || ca.is_some() || cert.is_some() || key.is_some() {
            let needed = needed_by(&cfg, TlsMode::Cert);
            let required = |field: &'static str, p: Option<PathBuf>| {
                p.ok_or_else(|| TlsConfigError::Missing {
                    field,
                    cli: cli_name(field),
                    needed_by: needed.clone(),
                })
            };
            let (ca, cert, key) = (
                required("ca_file", ca)?,
                required("cert_file", cert)?,
                required("key_file", key)?,
            );
            cfg.certs = Some(load_certs(&ca, crl.as_deref(), &cert, &key)?);
        } else if let Some(crl) = crl {
            readable("crl_file", &crl)?;
        }

        for (field, value) in [
            ("server_cert_issuer", &settings.server_cert_issuer),
            ("server_cert_subject", &settings.server_cert_subject),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(TlsConfigError::bad(field, "is empty"));
            }
        }
        cfg.peer_issuer = settings.server_cert_issuer.clone();
        cfg.peer_subject = settings.server_cert_subject.clone();
        cfg.cipher = settings.cipher.clone();
        cfg.cipher13 = settings.cipher13.clone();
        // A cipher list OpenSSL does not know is a settings mistake: say so now, not as
        // a handshake failure later.
        check_ciphers(&cfg).map_err(|(field, e)| TlsConfigError::bad(field, e))?;
        Ok(cfg)
    }
}

/// "connect: psk" / "accept: psk" / both, for a message about a missing setting.
fn needed_by(cfg: &TlsConfig, mode: TlsMode) -> String {
    let mut uses = Vec::new();
    if cfg.connect == mode {
        uses.push(format!("connect: {mode}"));
    }
    if cfg.accept.contains(&mode) {
        uses.push(format!("accept: {mode}"));
    }
    if uses.is_empty() {
        // Files given without the mode that needs them still have to be complete.
        uses.push("certificates".into());
    }
    uses.join(" and ")
}

fn readable(field: &'static str, path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|e| TlsConfigError::file(field, path, format!("cannot read: {e}")))
}

/// Read the CA, our certificate chain and key, and check that the key fits the
/// certificate. The error names the file and OpenSSL's reason, never the key.
fn load_certs(
    ca: &Path,
    crl: Option<&Path>,
    cert: &Path,
    key: &Path,
) -> Result<CertMaterial, TlsConfigError> {
    let pem_certs = |field: &'static str, path: &Path| -> Result<Vec<X509>, TlsConfigError> {
        let bytes = readable(field, path)?;
        let certs = X509::stack_from_pem(&bytes).map_err(|e| {
            TlsConfigError::file(
                field,
                path,
                format!("not PEM certificates: {}", reasons(&e)),
            )
        })?;
        if certs.is_empty() {
            return Err(TlsConfigError::file(field, path, "holds no certificate"));
        }
        Ok(certs)
    };
    let ca_certs = pem_certs("ca_file", ca)?;
    let chain = pem_certs("cert_file", cert)?;
    let key_bytes = readable("key_file", key)?;
    let pkey = PKey::private_key_from_pem(&key_bytes).map_err(|e| {
        TlsConfigError::file(
            "key_file",
            key,
            format!("not a PEM private key: {}", reasons(&e)),
        )
    })?;
    let public = chain[0]
        .public_key()
        .map_err(|e| TlsConfigError::file("cert_file", cert, reasons(&e)))?;
    if !public.public_eq(&pkey) {
        return Err(TlsConfigError::file(
            "key_file",
            key,
            format!("does not belong to the certificate in {}", cert.display()),
        ));
    }
    if let Some(crl) = crl {
        let bytes = readable("crl_file", crl)?;
        openssl::x509::X509Crl::from_pem(&bytes).map_err(|e| {
            TlsConfigError::file("crl_file", crl, format!("not a PEM CRL: {}", reasons(&e)))
        })?;
    }
    Ok(CertMaterial {
        ca: ca_certs,
        crl_file: crl.map(Path::to_path_buf),
        chain,
        key: pkey,
    })
}

/// OpenSSL's reasons in an error stack, joined (without file names and line numbers).
pub(crate) fn reasons(e: &openssl::error::ErrorStack) -> String {
    let parts: Vec<String> = e
        .errors()
        .iter()
        .map(|x| {
            x.reason()
                .map(str::to_string)
                .unwrap_or_else(|| x.to_string())
        })
        .collect();
    if parts.is_empty() {
        "unknown OpenSSL error".into()
    } else {
        parts.join("; ")
    }
}

/// Check the user's cipher lists against OpenSSL; `Err((field, reason))`.
pub fn check_ciphers(cfg: &TlsConfig) -> Result<(), (&'static str, String)> {
    let mut b = SslContextBuilder::new(SslMethod::tls()).map_err(|e| ("cipher", reasons(&e)))?;
    if let Some(c) = &cfg.cipher {
        b.set_cipher_list(c).map_err(|e| {
            (
                "cipher",
                format!("OpenSSL does not take {c:?}: {}", reasons(&e)),
            )
        })?;
    }
    if let Some(c) = &cfg.cipher13 {
        b.set_ciphersuites(c).map_err(|e| {
            (
                "cipher13",
                format!("OpenSSL does not take {c:?}: {}", reasons(&e)),
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "1f87b595725ac58dd977beef14b97461a7c1045b9a1c963065002c5473194952";

    fn psk_settings(dir: &tempfile::TempDir, key: &str) -> TlsSettings {
        let file = dir.path().join("k.psk");
        std::fs::write(&file, key).unwrap();
        TlsSettings {
            connect: Some("psk".into()),
            psk_identity: Some("harness".into()),
            psk_file: Some("k.psk".into()),
            ..Default::default()
        }
    }

    #[test]
    fn nothing_set_is_plaintext() {
        let cfg = TlsConfig::load(&TlsSettings::default(), None).unwrap();
        assert!(cfg.is_plaintext());
    }

    #[test]
    fn a_psk_setting_loads_relative_to_the_base_and_never_shows_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TlsConfig::load(&psk_settings(&dir, KEY), Some(dir.path())).unwrap();
        assert_eq!(cfg.connect, TlsMode::Psk);
        assert_eq!(cfg.psk.as_ref().map(|p| p.identity()), Some("harness"));
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains(KEY) && !shown.contains(&KEY[..10]),
            "{shown}"
        );
    }

    #[test]
    fn settings_mistakes_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = psk_settings(&dir, KEY);
        s.connect = Some("tls".into());
        let e = TlsConfig::load(&s, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("connect (--tls-connect)") && e.contains("\"tls\""),
            "{e}"
        );

        let mut s = psk_settings(&dir, KEY);
        s.psk_file = None;
        let e = TlsConfig::load(&s, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("psk_file (--tls-psk-file) is required for connect: psk"),
            "{e}"
        );

        let mut s = psk_settings(&dir, KEY);
        s.psk_identity = Some("i".repeat(129));
        let e = TlsConfig::load(&s, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("129 characters"), "{e}");

        let s = psk_settings(&dir, &KEY[..30]);
        let e = TlsConfig::load(&s, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("30 hex digits") && !e.contains(&KEY[..30]),
            "{e}"
        );

        let s = TlsSettings {
            accept: Some(vec!["cert".into()]),
            ..Default::default()
        };
        let e = TlsConfig::load(&s, None).unwrap_err().to_string();
        assert!(
            e.contains("ca_file (--tls-ca-file) is required for accept: cert"),
            "{e}"
        );

        let s = TlsSettings {
            cipher: Some("NO-SUCH-CIPHER".into()),
            ..Default::default()
        };
        let e = TlsConfig::load(&s, None).unwrap_err().to_string();
        assert!(e.contains("cipher (--tls-cipher)"), "{e}");
    }

    #[test]
    fn the_mirror_accepts_what_we_connect_with_and_connects_with_what_we_accept() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = psk_settings(&dir, KEY);
        s.accept = Some(vec!["unencrypted,psk".into()]);
        let ours = TlsConfig::load(&s, Some(dir.path())).unwrap();
        let theirs = ours.mirrored();
        assert_eq!(theirs.accept, [TlsMode::Psk]);
        assert_eq!(theirs.connect, TlsMode::Psk);
        assert_eq!(theirs.psk.as_ref().map(|p| p.identity()), Some("harness"));
        let plain = TlsConfig::plaintext().mirrored();
        assert!(plain.is_plaintext(), "{plain:?}");
    }

    #[test]
    fn a_file_that_is_not_pem_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "not pem").unwrap();
        let s = TlsSettings {
            connect: Some("cert".into()),
            ca_file: Some("ca.pem".into()),
            cert_file: Some("c.pem".into()),
            key_file: Some("k.pem".into()),
            ..Default::default()
        };
        let e = TlsConfig::load(&s, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ca_file") && e.contains("ca.pem: holds no certificate"),
            "{e}"
        );
    }
}

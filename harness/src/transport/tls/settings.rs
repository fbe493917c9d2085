//! TLS settings as the user writes them: a scenario's `tls:` block or the `run` command's
//! `--tls-*` options. Plain strings, nothing read or checked yet, so that settings from
//! several places can be overlaid before [`super::TlsConfig::load`] validates the result.

use std::fmt;

/// How a connection is made (`TLSConnect`), or one kind of connection that may be
/// accepted (an entry of `TLSAccept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsMode {
    Unencrypted,
    Psk,
    Cert,
}

impl TlsMode {
    /// Every mode, in the order Zabbix lists them.
    pub const ALL: [TlsMode; 3] = [TlsMode::Unencrypted, TlsMode::Psk, TlsMode::Cert];

    /// The word Zabbix uses (`unencrypted`, `psk`, `cert`).
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Unencrypted => "unencrypted",
            TlsMode::Psk => "psk",
            TlsMode::Cert => "cert",
        }
    }

    /// The bit of this type in Zabbix's tls_accept and tls_connect columns (1, 2, 4).
    pub fn bit(self) -> u64 {
        match self {
            TlsMode::Unencrypted => 1,
            TlsMode::Psk => 2,
            TlsMode::Cert => 4,
        }
    }

    /// Parse Zabbix's word for a mode; the error names the words that are allowed.
    pub fn parse(text: &str) -> Result<TlsMode, String> {
        let t = text.trim();
        TlsMode::ALL
            .into_iter()
            .find(|m| m.as_str() == t)
            .ok_or_else(|| format!("{t:?} is not one of unencrypted, psk, cert"))
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// TLS settings as written. Every field is optional so that a step can override one
/// field of its scenario's settings and keep the others. Holds paths, never a key, so
/// the derived `Debug` reveals nothing secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `connect`: how the harness connects out (default unencrypted).
    pub connect: Option<String>,
    /// `accept`: what the harness accepts (default unencrypted only).
    pub accept: Option<Vec<String>>,
    pub psk_identity: Option<String>,
    pub psk_file: Option<String>,
    pub ca_file: Option<String>,
    pub crl_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    /// The issuer the peer's certificate must have (RFC 4514 form), when given.
    pub server_cert_issuer: Option<String>,
    /// The subject the peer's certificate must have (RFC 4514 form), when given.
    pub server_cert_subject: Option<String>,
    /// TLS 1.2 cipher list (OpenSSL syntax), replacing the Zabbix defaults.
    pub cipher: Option<String>,
    /// TLS 1.3 ciphersuites (OpenSSL syntax), replacing the Zabbix defaults; empty means
    /// TLS 1.2 only (what a GnuTLS build of Zabbix 6.0 speaks).
    pub cipher13: Option<String>,
}

impl TlsSettings {
    /// Whether nothing is set: the connection stays plaintext, as before TLS existed.
    pub fn is_empty(&self) -> bool {
        *self == TlsSettings::default()
    }

    /// These settings with every field that `over` sets replaced by `over`'s.
    pub fn overlaid(&self, over: &TlsSettings) -> TlsSettings {
        fn pick<T: Clone>(base: &Option<T>, over: &Option<T>) -> Option<T> {
            over.clone().or_else(|| base.clone())
        }
        TlsSettings {
            connect: pick(&self.connect, &over.connect),
            accept: pick(&self.accept, &over.accept),
            psk_identity: pick(&self.psk_identity, &over.psk_identity),
            psk_file: pick(&self.psk_file, &over.psk_file),
            ca_file: pick(&self.ca_file, &over.ca_file),
            crl_file: pick(&self.crl_file, &over.crl_file),
            cert_file: pick(&self.cert_file, &over.cert_file),
            key_file: pick(&self.key_file, &over.key_file),
            server_cert_issuer: pick(&self.server_cert_issuer, &over.server_cert_issuer),
            server_cert_subject: pick(&self.server_cert_subject, &over.server_cert_subject),
            cipher: pick(&self.cipher, &over.cipher),
            cipher13: pick(&self.cipher13, &over.cipher13),
        }
    }

    /// Every field as `(name, value)`, for expanding variables and for checks.
    pub fn fields_mut(&mut self) -> Vec<(&'static str, &mut String)> {
        let mut out: Vec<(&'static str, &mut String)> = Vec::new();
        let singles: [(&'static str, &mut Option<String>); 11] = [
            ("connect", &mut self.connect),
            ("psk_identity", &mut self.psk_identity),
            ("psk_file", &mut self.psk_file),
            ("ca_file", &mut self.ca_file),
            ("crl_file", &mut self.crl_file),
            ("cert_file", &mut self.cert_file),
            ("key_file", &mut self.key_file),
            ("server_cert_issuer", &mut self.server_cert_issuer),
            ("server_cert_subject", &mut self.server_cert_subject),
            ("cipher", &mut self.cipher),
            ("cipher13", &mut self.cipher13),
        ];
        for (name, v) in singles {
            if let Some(v) = v.as_mut() {
                out.push((name, v));
            }
        }
        if let Some(list) = self.accept.as_mut() {
            for v in list {
                out.push(("accept", v));
            }
        }
        out
    }
}

/// The `run` option that sets a settings field (for messages that must make sense on the
/// command line as well as in a scenario).
pub fn cli_name(field: &str) -> &'static str {
    match field {
        "connect" => "--tls-connect",
        "accept" => "--tls-accept",
        "psk_identity" => "--tls-psk-identity",
        "psk_file" => "--tls-psk-file",
        "ca_file" => "--tls-ca-file",
        "crl_file" => "--tls-crl-file",
        "cert_file" => "--tls-cert-file",
        "key_file" => "--tls-key-file",
        "server_cert_issuer" => "--tls-server-cert-issuer",
        "server_cert_subject" => "--tls-server-cert-subject",
        "cipher" => "--tls-cipher",
        "cipher13" => "--tls-cipher13",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_by_zabbix_words_only() {
        assert_eq!(TlsMode::parse("psk"), Ok(TlsMode::Psk));
        assert_eq!(TlsMode::parse(" cert "), Ok(TlsMode::Cert));
        let e = TlsMode::parse("PSK").unwrap_err();
        assert!(e.contains("unencrypted, psk, cert"), "{e}");
    }

    #[test]
    fn an_overlay_replaces_only_what_it_sets() {
        let base = TlsSettings {
            connect: Some("psk".into()),
            psk_identity: Some("a".into()),
            ..Default::default()
        };
        let over = TlsSettings {
            psk_identity: Some("b".into()),
            ..Default::default()
        };
        let both = base.overlaid(&over);
        assert_eq!(both.connect.as_deref(), Some("psk"));
        assert_eq!(both.psk_identity.as_deref(), Some("b"));
        assert!(TlsSettings::default().is_empty());
        assert!(!both.is_empty());
    }
}

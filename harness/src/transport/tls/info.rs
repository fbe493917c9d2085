//! What a TLS connection turned out to be: version, cipher, and who the peer is (its PSK
//! identity or its certificate's subject and issuer). Reports show it for every
//! connection, so a run proves which encryption it tested.

use openssl::nid::Nid;
use openssl::ssl::SslRef;
use openssl::x509::X509NameRef;
use std::fmt;

/// The facts of one established TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.2`, `TLSv1.3`.
    pub version: String,
    /// OpenSSL's cipher name, e.g. `TLS_AES_128_GCM_SHA256`, `PSK-AES128-GCM-SHA256`.
    pub cipher: String,
    /// The PSK identity, when a PSK was used.
    pub psk_identity: Option<String>,
    /// The peer certificate's subject and issuer (RFC 4514), when it sent one.
    pub peer_subject: Option<String>,
    pub peer_issuer: Option<String>,
}

impl TlsInfo {
    /// Read the facts from an established connection; `psk_identity` is what our side
    /// used or accepted (OpenSSL does not keep it for TLS 1.3 in every version).
    pub fn of(ssl: &SslRef, psk_identity: Option<String>) -> TlsInfo {
        let cert = ssl.peer_certificate();
        TlsInfo {
            version: ssl.version_str().to_string(),
            cipher: ssl
                .current_cipher()
                .map(|c| c.name().to_string())
                .unwrap_or_else(|| "unknown".into()),
            psk_identity,
            peer_subject: cert.as_ref().map(|c| name_string(c.subject_name())),
            peer_issuer: cert.as_ref().map(|c| name_string(c.issuer_name())),
        }
    }
}

impl fmt::Display for TlsInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.version, self.cipher)?;
        if let Some(id) = &self.psk_identity {
            write!(f, ", PSK identity {id:?}")?;
        }
        if let Some(s) = &self.peer_subject {
            write!(f, ", peer certificate subject {s:?}")?;
        }
        if let Some(i) = &self.peer_issuer {
            write!(f, ", issuer {i:?}")?;
        }
        Ok(())
    }
}

/// A distinguished name in the RFC 4514 form Zabbix compares `TLSServerCertIssuer` and
/// `TLSServerCertSubject` with: most significant RDN last, `CN=x,O=y,C=z`, special
/// characters escaped with a backslash.
pub fn name_string(name: &X509NameRef) -> String {
    let mut parts: Vec<String> = name
        .entries()
        .map(|e| {
            let nid = e.object().nid();
            let key = match nid {
                Nid::UNDEF => e.object().to_string(),
                n => n
                    .short_name()
                    .map(str::to_string)
                    .unwrap_or_else(|_| e.object().to_string()),
            };
            let value = e
                .data()
                .to_string()
                .unwrap_or_else(|_| String::from_utf8_lossy(e.data().as_slice()).into_owned());
            format!("{key}={}", escape_value(&value))
        })
        .collect();
    parts.reverse();
    parts.join(",")
}

/// RFC 4514 §2.4 escaping of an attribute value.
fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::x509::X509Name;

    #[test]
    fn names_print_most_significant_last_with_escapes() {
        let mut b = X509Name::builder().unwrap();
        b.append_entry_by_text("C", "LV").unwrap();
        b.append_entry_by_text("O", "Zabbix, SIA").unwrap();
        b.append_entry_by_text("CN", " server+1").unwrap();
        let name = b.build();
        assert_eq!(name_string(&name), r"CN=\ server\+1,O=Zabbix\, SIA,C=LV");
    }

    #[test]
    fn info_reads_as_one_line() {
        let i = TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "TLS_AES_128_GCM_SHA256".into(),
            psk_identity: Some("harness".into()),
            peer_subject: None,
            peer_issuer: None,
        };
        assert_eq!(
            i.to_string(),
            "TLSv1.3 TLS_AES_128_GCM_SHA256, PSK identity \"harness\""
        );
    }
}

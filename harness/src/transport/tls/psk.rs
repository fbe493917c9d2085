//! Pre-shared keys: the identity (sent in clear, not a secret) and the key (a secret).
//!
//! The key never leaves this module as text except through [`PskCredentials::hex`],
//! which exists for the redaction list; its `Debug` shows only its length, and no error
//! quotes a byte of a key file.

use std::fmt;
use std::path::Path;

/// Longest identity, in characters (GnuTLS takes 128 bytes; protocol.md §4b).
pub const MAX_IDENTITY_CHARS: usize = 128;
/// Fewest hex digits in a key (128 bits).
pub const MIN_PSK_HEX: usize = 32;
/// Most hex digits in a key (2048 bits).
pub const MAX_PSK_HEX: usize = 512;
/// A key file larger than this is not a key file; it is not read further.
const MAX_PSK_FILE_BYTES: u64 = 4096;

/// Why an identity or a key file cannot be used. The messages name the file and say
/// what is wrong with it, never what it contains.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PskError {
    #[error("psk_identity is empty")]
    IdentityEmpty,
    #[error("psk_identity has {chars} characters; at most {MAX_IDENTITY_CHARS} are allowed")]
    IdentityTooLong { chars: usize },
    #[error("psk_identity contains a NUL character")]
    IdentityNul,
    #[error("PSK file {path}: cannot read: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("PSK file {path}: larger than {MAX_PSK_FILE_BYTES} bytes, not a key file")]
    TooBig { path: String },
    #[error("PSK file {path}: the key is empty")]
    Empty { path: String },
    #[error("PSK file {path}: character {position} of the key is not a hex digit")]
    NotHex { path: String, position: usize },
    #[error("PSK file {path}: the key has {digits} hex digits; a PSK has {MIN_PSK_HEX} to {MAX_PSK_HEX}")]
    Length { path: String, digits: usize },
    #[error("PSK file {path}: the key has an odd number of hex digits ({digits})")]
    Odd { path: String, digits: usize },
}

/// Check an identity as Zabbix does: non-empty, at most 128 characters.
pub fn check_identity(identity: &str) -> Result<(), PskError> {
    let chars = identity.chars().count();
    if chars == 0 {
        return Err(PskError::IdentityEmpty);
    }
    if chars > MAX_IDENTITY_CHARS {
        return Err(PskError::IdentityTooLong { chars });
    }
    if identity.contains('\0') {
        return Err(PskError::IdentityNul);
    }
    Ok(())
}

/// A PSK identity and its key.
#[derive(Clone, PartialEq, Eq)]
pub struct PskCredentials {
    identity: String,
    key: Vec<u8>,
    hex: String,
}

impl PskCredentials {
    /// Check `identity` and read the key from `path`: the first line, surrounding
    /// whitespace ignored, 32 to 512 hex digits.
    pub fn load(identity: &str, path: &Path) -> Result<PskCredentials, PskError> {
        check_identity(identity)?;
        let shown = path.display().to_string();
        let unreadable = |e: std::io::Error| PskError::Unreadable {
            path: shown.clone(),
            reason: e.to_string(),
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        if meta.len() > MAX_PSK_FILE_BYTES {
            return Err(PskError::TooBig { path: shown });
        }
        let bytes = std::fs::read(path).map_err(unreadable)?;
        let hex = parse_hex_line(&bytes, &shown)?;
        Ok(PskCredentials {
            identity: identity.to_string(),
            key: decode(&hex),
            hex,
        })
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The key's bytes, for the TLS library only.
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    /// The key as written in its file: for the list of values scrubbed from every report
    /// (so that a key a peer echoes back is never shown), and for a configuration the
    /// harness pushes that must name it (`${tls_psk}`, scrubbed the same way).
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Debug for PskCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PskCredentials")
            .field("identity", &self.identity)
            .field("key", &format_args!("<secret, {} bytes>", self.key.len()))
            .finish()
    }
}

/// The key on the first line of a key file, checked; errors name `path` only.
fn parse_hex_line(bytes: &[u8], path: &str) -> Result<String, PskError> {
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = first.trim_ascii();
    if line.is_empty() {
        return Err(PskError::Empty { path: path.into() });
    }
    if let Some(i) = line.iter().position(|b| !b.is_ascii_hexdigit()) {
        return Err(PskError::NotHex {
            path: path.into(),
            position: i + 1,
        });
    }
    let digits = line.len();
    if !(MIN_PSK_HEX..=MAX_PSK_HEX).contains(&digits) {
        return Err(PskError::Length {
            path: path.into(),
            digits,
        });
    }
    if digits % 2 == 1 {
        return Err(PskError::Odd {
            path: path.into(),
            digits,
        });
    }
    // Only ASCII hex digits are left, so this is valid UTF-8.
    Ok(String::from_utf8_lossy(line).into_owned())
}

/// Hex digits (already checked, even count) to bytes.
fn decode(hex: &str) -> Vec<u8> {
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            digit(pair[0]) << 4 | digit(pair[1])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "1f87b595725ac58dd977beef14b97461a7c1045b9a1c963065002c5473194952";

    fn key_file(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
        let p = dir.path().join("key.psk");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_good_key_loads_and_its_debug_hides_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = PskCredentials::load("id one", &key_file(&dir, &format!("{KEY}\n"))).unwrap();
        assert_eq!(c.identity(), "id one");
        assert_eq!(c.key().len(), 32);
        assert_eq!(c.key()[0], 0x1f);
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains(KEY), "{shown}");
        assert!(!shown.to_lowercase().contains("1f87b5"), "{shown}");
        assert!(shown.contains("32 bytes"), "{shown}");
    }

    #[test]
    fn bad_keys_are_named_without_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, &str); 4] = [
            (
                "zz87b595725ac58dd977beef14b97461",
                "character 1 of the key is not a hex digit",
            ),
            (
                "1f87b595725ac58dd977beef14b9746",
                "31 hex digits; a PSK has 32 to 512",
            ),
            ("", "the key is empty"),
            ("1f87b595 725ac58dd977beef14b97461", "character 9"),
        ];
        for (text, want) in cases {
            let e = PskCredentials::load("id", &key_file(&dir, text)).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(want), "{text:?}: {msg}");
            if !text.is_empty() {
                assert!(!msg.contains(&text[2..12]), "{msg} shows the key");
            }
        }
        // 33 digits passes the length rule but not the byte rule.
        let e =
            PskCredentials::load("id", &key_file(&dir, &format!("{}1", &KEY[..32]))).unwrap_err();
        assert!(matches!(e, PskError::Odd { digits: 33, .. }), "{e}");
        let long = "a".repeat(MAX_PSK_HEX + 2);
        let e = PskCredentials::load("id", &key_file(&dir, &long)).unwrap_err();
        assert!(e.to_string().contains("514 hex digits"), "{e}");
    }

    #[test]
    fn a_missing_file_and_bad_identities_are_refused() {
        let e = PskCredentials::load("id", Path::new("/nonexistent/key.psk")).unwrap_err();
        assert!(matches!(e, PskError::Unreadable { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/key.psk"), "{e}");
        assert_eq!(check_identity(""), Err(PskError::IdentityEmpty));
        assert_eq!(check_identity(&"é".repeat(128)), Ok(()));
        assert_eq!(
            check_identity(&"x".repeat(129)),
            Err(PskError::IdentityTooLong { chars: 129 })
        );
    }
}

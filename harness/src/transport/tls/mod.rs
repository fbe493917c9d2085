//! TLS for every ZBXD connection (protocol.md §4b): no STARTTLS, the handshake right
//! after connect, frames inside TLS unchanged; PSK (TLS 1.2 PSK suites and TLS 1.3) and
//! certificates, on OpenSSL, which meets both the GnuTLS and the OpenSSL builds of
//! Zabbix.
//!
//! [`TlsSettings`] is what the user wrote; [`TlsConfig::load`] checks it and reads the
//! files; [`connect`] and [`accept`] turn a TCP stream into a [`Stream`] and say what
//! TLS it speaks ([`TlsInfo`]). A PSK never appears in a `Debug` output or an error.

mod config;
mod context;
mod info;
mod psk;
mod settings;
mod stream;

pub use config::{CertMaterial, TlsConfig, TlsConfigError};
pub use info::{name_string, TlsInfo};
pub use psk::{
    check_identity, PskCredentials, PskError, MAX_IDENTITY_CHARS, MAX_PSK_HEX, MIN_PSK_HEX,
};
pub use settings::{cli_name, TlsMode, TlsSettings};
pub use stream::{accept, connect, Secured, Stream};

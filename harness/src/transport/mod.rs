//! Transports: a framed connection over any byte stream (TCP for ZBXD, Unix sockets for
//! the plugin protocol), plain or inside TLS, with every read and write bounded by a
//! timeout.

pub mod connection;
pub mod spawn;
pub mod tcp;
pub mod tls;

pub use connection::{Connection, Silence, TransportError};
pub use tcp::{bind_listener, connect_tcp};

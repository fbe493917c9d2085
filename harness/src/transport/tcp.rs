//! TCP helpers: connect and bind with timeouts and errors that name the address.

use super::TransportError;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Connect to `addr` ("host:port"), giving up after `within`.
pub async fn connect_tcp(addr: &str, within: Duration) -> Result<TcpStream, TransportError> {
    match tokio::time::timeout(within, TcpStream::connect(addr)).await {
        Err(_) => Err(TransportError::Connect {
            addr: addr.to_string(),
            reason: format!("no answer within {within:?}"),
        }),
        Ok(Err(e)) => Err(TransportError::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        }),
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
    }
}

/// Bind a listener; port 0 picks an ephemeral port (read it back with `local_addr`).
pub async fn bind_listener(addr: &str) -> Result<TcpListener, TransportError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| TransportError::Listen {
            addr: addr.to_string(),
            reason: e.to_string(),
        })
}

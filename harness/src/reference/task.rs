//! How a reference peer runs: one task per peer, an accept loop with a bounded number
//! of connections for listening peers, and a stop that ends every task at once. Kept
//! apart from the registry so that the peers can use it without importing the module
//! that imports them.

use super::wire;
use crate::transport::tls::{self, TlsConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// How many connections a listening reference peer serves at once.
const MAX_CONNECTIONS: usize = 32;

/// How long [`RunningPeer::stop`] waits for the peer's task.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// A reference peer that is running.
pub struct RunningPeer {
    /// Where it listens, for peers the harness connects to.
    pub listen: Option<SocketAddr>,
    /// Human-readable description for reports (`reference:passive-proxy 6.0.14`, fault...).
    pub describe: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningPeer {
    /// Stop the peer and wait for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(STOP_WAIT, t).await;
        }
    }
}

/// What starting a peer gives: the running peer, or why it could not start.
pub(crate) type Started = Pin<Box<dyn Future<Output = Result<RunningPeer, String>> + Send>>;

/// A listening peer: serves one accepted connection.
pub(crate) trait Serve: Send + Sync + 'static {
    fn serve(self: Arc<Self>, conn: wire::Conn) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Run `body` as the peer's task; it gets the receiver that says "stop".
pub(crate) fn spawn<F, Fut>(describe: String, listen: Option<SocketAddr>, body: F) -> RunningPeer
where
    F: FnOnce(oneshot::Receiver<()>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(body(rx));
    RunningPeer {
        listen,
        describe,
        shutdown: Some(tx),
        task: Some(task),
    }
}

/// Run `work` until it ends or the peer is stopped (or its handle dropped); dropping
/// the future cancels whatever I/O it was waiting for.
pub(crate) async fn until_stopped(stop: oneshot::Receiver<()>, work: impl Future<Output = ()>) {
    tokio::select! {
        _ = stop => {}
        _ = work => {}
    }
}

/// Accept loop of a listening peer: one task per connection, at most
/// [`MAX_CONNECTIONS`] at once; stopping drops the set, which aborts every task. Each
/// connection is first told TLS from plaintext and checked against `tls.accept`, in
/// its own task so a slow handshake holds up no other; one that is not accepted is
/// closed without a word, as Zabbix closes it.
pub(crate) async fn serve(
    listener: TcpListener,
    peer: Arc<dyn Serve>,
    mut stop: oneshot::Receiver<()>,
    tls: Arc<TlsConfig>,
) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept(), if tasks.len() < MAX_CONNECTIONS => {
                match accepted {
                    Ok((stream, addr)) => {
                        let _ = stream.set_nodelay(true);
                        let (peer, tls) = (peer.clone(), tls.clone());
                        tasks.spawn(async move {
                            let from = addr.to_string();
                            let accepted =
                                tls::accept(stream, &tls, &from, wire::REQUEST_TIMEOUT).await;
                            if let Ok(secured) = accepted {
                                peer.serve(wire::conn(secured.stream, from)).await;
                            }
                        });
                    }
                    // Transient accept errors (EMFILE...): back off briefly, keep serving.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
    }
    tasks.abort_all();
}

/// Serve `peer` on `listener` until stopped: the whole task of a plain listening peer.
pub(crate) fn listening(
    describe: String,
    listener: TcpListener,
    peer: Arc<dyn Serve>,
    tls: Arc<TlsConfig>,
) -> RunningPeer {
    let addr = listener.local_addr().ok();
    spawn(describe, addr, move |stop| serve(listener, peer, stop, tls))
}

//! Listeners: accept network connections (TCP; TLS and WebSocket per configuration) and spawn
//! one connection task each.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::config::{ListenerConfig, ListenerKind};
use super::{connection, BrokerError, Shared};

/// Bind `config` and spawn its accept loop; returns the bound address.
pub(crate) async fn start(
    shared: Arc<Shared>,
    config: &ListenerConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), BrokerError> {
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| BrokerError::Bind {
            addr: config.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| BrokerError::Bind {
        addr: config.bind,
        source,
    })?;
    let kind = config.kind;
    if kind != ListenerKind::Tcp {
        return Err(BrokerError::Tls {
            addr,
            reason: format!("{kind:?} listeners are not available in this build"),
        });
    }
    let task = tokio::spawn(accept_loop(shared, listener, shutdown));
    Ok((addr, task))
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(connection::serve(Arc::clone(&shared), stream, peer, shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    // Out of file descriptors and the like: back off briefly instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
}

//! The broker: shared state (sessions, subscriptions, retained messages), the tokio listeners
//! and one task per connection around the sans-IO [`crate::protocol::ServerConnection`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), reference_broker::broker::BrokerError> {
//! use reference_broker::broker::{Broker, BrokerConfig};
//! let broker = Broker::bind(BrokerConfig::default_tcp("127.0.0.1:0".parse().unwrap())).await?;
//! println!("listening on {}", broker.tcp_addr().unwrap());
//! broker.shutdown().await;
//! # Ok(()) }
//! ```

pub mod auth;
mod backpressure;
pub mod config;
mod connection;
mod journal;
mod listener;
mod outbox;
mod retained;
mod router;
pub mod transport;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{BrokerConfig, ConfigError, ListenerConfig, ListenerKind};
pub use router::RouterStats;

use crate::protocol::ServerLimits;
pub use router::persist::PersistError;
use router::persist::SessionStore;
use router::Router;

/// Why the broker cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener cannot bind its address.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The session store (`persistence`) cannot be opened or read.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// TLS material cannot be loaded.
    #[error("TLS listener {addr}: {reason}")]
    Tls {
        /// The listener address.
        addr: SocketAddr,
        /// What is wrong.
        reason: String,
    },
}

/// State shared by every connection task.
#[derive(Debug)]
pub(crate) struct Shared {
    router: Mutex<Router>,
    config: BrokerConfig,
    limits: Arc<ServerLimits>,
    conn_ids: AtomicU64,
    shutdown: watch::Receiver<bool>,
    /// The on-disk session store, when `persistence` is configured.
    store: Option<SessionStore>,
    /// The journal's writer thread, closed at shutdown before the final save.
    writer: Mutex<Option<journal::Writer>>,
    /// Notified whenever a client connection ends.
    departed: tokio::sync::Notify,
}

impl Shared {
    /// Lock the router. A panic in another task while holding it is a bug; the data is still
    /// usable, so the poison is ignored rather than propagated.
    fn router(&self) -> MutexGuard<'_, Router> {
        self.router.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_conn_id(&self) -> u64 {
        self.conn_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Run `f` after `delay` unless the broker shuts down first (session expiry, will delay).
    fn after(self: &Arc<Self>, delay: Duration, f: impl FnOnce(&Shared) + Send + 'static) {
        let shared = Arc::clone(self);
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(delay) => f(&shared),
                _ = shutdown.changed() => {}
            }
        });
    }
}

/// A running broker: listeners bound, serving in background tasks.
#[derive(Debug)]
pub struct Broker {
    addrs: Vec<(ListenerKind, SocketAddr)>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Broker {
    /// Bind every listener of `config` and start serving.
    pub async fn bind(config: BrokerConfig) -> Result<Broker, BrokerError> {
        let limits = Arc::new(config.server_limits()?);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut router = Router::new(
            Arc::clone(&limits),
            config.limits.max_subscriptions_per_client,
            config.limits.max_retained_messages,
        );
        let store = config
            .persistence
            .as_deref()
            .map(SessionStore::open)
            .transpose()?;
        let timers = match &store {
            Some(store) => store.load(
                &mut router,
                std::time::Instant::now(),
                std::time::SystemTime::now(),
            )?,
            None => Vec::new(),
        };
        let mut writer = None;
        if let Some(path) = config.persistence.as_deref() {
            let (journal, w) = journal::Journal::start(path)?;
            router.journal = Some(journal);
            writer = Some(w);
        }
        let shared = Arc::new(Shared {
            router: Mutex::new(router),
            config,
            limits,
            conn_ids: AtomicU64::new(1),
            shutdown: shutdown_rx.clone(),
            store,
            writer: Mutex::new(writer),
            departed: tokio::sync::Notify::new(),
        });
        for (client_id, left) in timers {
            // [MQTT-3.1.2-23] restored sessions still expire; generation 0 is theirs until a
            // client resumes them.
            shared.after(left, move |s| s.router().expire(&client_id, 0));
        }
        let mut addrs = Vec::new();
        let mut tasks = Vec::new();
        for l in shared.config.listeners.clone() {
            let (addr, task) =
                listener::start(Arc::clone(&shared), &l, shutdown_rx.clone()).await?;
            tracing::info!(kind = ?l.kind, %addr, "listening");
            addrs.push((l.kind, addr));
            tasks.push(task);
        }
        Ok(Broker {
            addrs,
            shutdown,
            tasks,
            shared,
        })
    }

    /// Serve one already-connected byte stream as an MQTT connection, as if a listener had
    /// accepted it: in-memory pipes (`tokio::io::duplex`) in tests with paused time, or
    /// transports the broker does not listen on itself.
    pub fn serve_stream<S>(&self, stream: S, peer: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::spawn(connection::serve(
            shared,
            stream,
            peer,
            self.shutdown.subscribe(),
        ));
    }

    /// The actual bound addresses (port 0 resolved), in listener order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.addrs.iter().map(|(_, a)| *a).collect()
    }

    /// The address of the first listener of `kind`.
    pub fn addr_of(&self, kind: ListenerKind) -> Option<SocketAddr> {
        self.addrs.iter().find(|(k, _)| *k == kind).map(|(_, a)| *a)
    }

    /// The first TCP listener.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.addr_of(ListenerKind::Tcp)
    }

    /// Drop counters of the router.
    pub fn stats(&self) -> RouterStats {
        self.shared.router().stats
    }

    /// Number of clients connected right now.
    pub fn connected_clients(&self) -> usize {
        self.shared.router().online_count()
    }

    /// Resolve once no client is connected (wrap it in a timeout).
    pub async fn until_no_clients(&self) {
        loop {
            let departed = self.shared.departed.notified();
            tokio::pin!(departed);
            departed.as_mut().enable();
            if self.connected_clients() == 0 {
                return;
            }
            departed.await;
        }
    }

    /// Number of retained messages.
    pub fn retained_messages(&self) -> usize {
        self.shared.router().retained_len()
    }

    /// Stop the listeners and close every connection (DISCONNECT 0x8B in MQTT 5); with
    /// `persistence`, then save the persistent sessions and retained messages.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        // Every change journalled so far is committed before the final save replaces it.
        self.shared.router().journal = None;
        let writer = self
            .shared
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(writer) = writer {
            let _ = tokio::task::spawn_blocking(move || writer.close()).await;
        }
        if let Some(store) = &self.shared.store {
            let router = self.shared.router();
            if let Err(e) = store.save(
                &router,
                std::time::Instant::now(),
                std::time::SystemTime::now(),
            ) {
                tracing::error!(error = %e, "persistent sessions not saved");
            }
        }
    }
}

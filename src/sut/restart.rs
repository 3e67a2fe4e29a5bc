//! A reference broker started for one case alone, so that the case may restart it
//! (`restart_broker`) without disturbing the cases running beside it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use reference_broker::broker::{Broker, BrokerConfig};

use super::TargetError;

/// Whether the target lets cases restart the broker, and how the restarted brokers keep
/// their sessions.
#[derive(Debug, Clone, Default)]
pub struct RestartSupport {
    /// Directory under which each case broker gets its own session store; `None` runs the
    /// case brokers without persistence (sessions are lost on restart).
    pub persistence_root: Option<PathBuf>,
    /// The configuration of the case brokers (none: the default); selftest sets a variant's
    /// or a defect's.
    pub config: Option<Box<BrokerConfig>>,
}

impl RestartSupport {
    /// Case brokers persisting their sessions under the system temporary directory.
    pub fn persistent() -> RestartSupport {
        RestartSupport {
            persistence_root: Some(std::env::temp_dir()),
            config: None,
        }
    }
}

/// A reference broker owned by one case execution: it listens on 127.0.0.1, port 0 at first,
/// and on the same port after each restart.
#[derive(Debug)]
pub struct CaseBroker {
    broker: Option<Broker>,
    config: BrokerConfig,
    addr: SocketAddr,
    store: Option<PathBuf>,
}

static NEXT_STORE: AtomicU64 = AtomicU64::new(0);

impl CaseBroker {
    /// Starts a broker for one case.
    pub async fn start(support: &RestartSupport) -> Result<CaseBroker, TargetError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = match &support.config {
            Some(c) => BrokerConfig {
                listeners: BrokerConfig::default_tcp(addr).listeners,
                ..(**c).clone()
            },
            None => BrokerConfig::default_tcp(addr),
        };
        let store = support.persistence_root.as_ref().map(|root| {
            let n = NEXT_STORE.fetch_add(1, Ordering::Relaxed);
            root.join(format!(
                "mqtt-conformance-{}-{n}.sessions",
                std::process::id()
            ))
        });
        config.persistence = store.clone();
        let broker = Broker::bind(config.clone())
            .await
            .map_err(|e| TargetError::Reference(e.to_string()))?;
        let addr = broker
            .tcp_addr()
            .ok_or_else(|| TargetError::Reference("the broker has no TCP listener".into()))?;
        // Restarts bind the port the first start picked.
        for l in &mut config.listeners {
            l.bind = addr;
        }
        Ok(CaseBroker {
            broker: Some(broker),
            config,
            addr,
            store,
        })
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// Stops the broker (every connection closes) and binds a new one with the same
    /// configuration on the same address.
    pub async fn restart(&mut self) -> Result<(), TargetError> {
        if let Some(broker) = self.broker.take() {
            broker.shutdown().await;
        }
        let broker = Broker::bind(self.config.clone())
            .await
            .map_err(|e| TargetError::Reference(format!("restart: {e}")))?;
        self.broker = Some(broker);
        Ok(())
    }

    /// Stops the broker and removes its session store.
    pub async fn stop(mut self) {
        if let Some(broker) = self.broker.take() {
            broker.shutdown().await;
        }
        if let Some(store) = self.store.take() {
            let _ = std::fs::remove_file(&store);
            let _ = std::fs::remove_dir_all(&store);
        }
    }
}

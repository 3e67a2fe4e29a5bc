//! [`FaultInjector`] over the in-process [`Engine`]: no HTTP, no set-up.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;

use super::engine::{Engine, NewProxy};
use super::{FaultError, FaultInjector, Toxic};

/// Faults applied by an in-process engine (the default).
#[derive(Debug, Clone, Default)]
pub struct EmbeddedInjector {
    engine: Arc<Engine>,
}

impl EmbeddedInjector {
    /// An injector with its own, empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// An injector over an existing engine (e.g. the one behind [`super::serve`]).
    pub fn with_engine(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// The engine, e.g. to inspect its state.
    pub fn engine(&self) -> Arc<Engine> {
        Arc::clone(&self.engine)
    }
}

#[async_trait]
impl FaultInjector for EmbeddedInjector {
    async fn create_proxy(
        &self,
        name: &str,
        upstream: SocketAddr,
    ) -> Result<SocketAddr, FaultError> {
        let info = self
            .engine
            .create_proxy(NewProxy::new(name, upstream.to_string()))
            .await?;
        Ok(info.listen)
    }

    async fn add_toxic(&self, proxy: &str, toxic: &Toxic) -> Result<(), FaultError> {
        self.engine.add_toxic(proxy, toxic.clone()).await.map(drop)
    }

    async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), FaultError> {
        self.engine.remove_toxic(proxy, toxic).await
    }

    async fn heal(&self, proxy: &str) -> Result<(), FaultError> {
        self.engine.remove_all_toxics(proxy).await
    }

    async fn set_enabled(&self, proxy: &str, enabled: bool) -> Result<(), FaultError> {
        self.engine.set_enabled(proxy, enabled).await.map(drop)
    }

    async fn toxics(&self, proxy: &str) -> Result<Vec<Toxic>, FaultError> {
        self.engine.toxics(proxy).await
    }

    async fn delete_proxy(&self, proxy: &str) -> Result<(), FaultError> {
        self.engine.delete_proxy(proxy).await
    }
}

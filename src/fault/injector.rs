//! The one trait the scenario runner drives faults through, whatever proxy sits underneath.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;

use super::{FaultError, Stream, Toxic, ToxicKind};

/// Creates proxies in front of a broker and applies network faults to them.
///
/// Implemented by [`super::EmbeddedInjector`] (in-process, the default) and
/// [`super::ToxiproxyInjector`] (a real Toxiproxy over HTTP); the runner holds a
/// `Box<dyn FaultInjector>` and cannot tell them apart.
#[async_trait]
pub trait FaultInjector: Send + Sync {
    /// Creates proxy `name` forwarding to `upstream`, listening on a free port; returns the
    /// address clients must connect to.
    async fn create_proxy(
        &self,
        name: &str,
        upstream: SocketAddr,
    ) -> Result<SocketAddr, FaultError>;

    /// Adds a toxic; it acts on the proxy's existing and future connections.
    async fn add_toxic(&self, proxy: &str, toxic: &Toxic) -> Result<(), FaultError>;

    /// Removes one toxic by name.
    async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), FaultError>;

    /// Removes every toxic of the proxy (both streams).
    async fn heal(&self, proxy: &str) -> Result<(), FaultError>;

    /// `false` closes every connection of the proxy (without any MQTT DISCONNECT) and refuses
    /// new ones; `true` accepts connections again.
    async fn set_enabled(&self, proxy: &str, enabled: bool) -> Result<(), FaultError>;

    /// The proxy's toxics, as the proxy reports them.
    async fn toxics(&self, proxy: &str) -> Result<Vec<Toxic>, FaultError>;

    /// Deletes the proxy and closes its connections.
    async fn delete_proxy(&self, proxy: &str) -> Result<(), FaultError>;

    /// Adds a `reset_peer` toxic (Toxiproxy semantics): on each connection, the next chunk on
    /// `stream` (or its end) is dropped, and `after` later the connection is reset (TCP RST).
    /// It stays armed for connections opened later, until removed. The embedded engine resets
    /// connections that existed before the toxic too; a real Toxiproxy closes those with a FIN.
    async fn reset_peer(
        &self,
        proxy: &str,
        stream: Stream,
        after: Duration,
    ) -> Result<Toxic, FaultError> {
        let timeout = u64::try_from(after.as_millis())
            .map_err(|_| FaultError::Invalid(format!("reset_peer delay {after:?} is too long")))?;
        let toxic = Toxic::new(ToxicKind::ResetPeer { timeout }, stream);
        self.add_toxic(proxy, &toxic).await?;
        Ok(toxic)
    }
}

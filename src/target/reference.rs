//! The in-process reference broker on 127.0.0.1, port 0.

use std::net::SocketAddr;

use reference_broker::broker::{Broker, BrokerConfig};

use super::TargetError;

/// The running in-process broker.
pub struct InProcess(Broker);

/// Start the reference broker; returns it and the address it listens on.
pub async fn start() -> Result<(InProcess, SocketAddr), TargetError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let broker = Broker::bind(BrokerConfig::default_tcp(addr))
        .await
        .map_err(|e| TargetError::Reference(e.to_string()))?;
    let bound = broker
        .tcp_addr()
        .ok_or_else(|| TargetError::Reference("the broker has no TCP listener".into()))?;
    Ok((InProcess(broker), bound))
}

/// Stop it.
pub async fn stop(broker: InProcess) {
    broker.0.shutdown().await;
}

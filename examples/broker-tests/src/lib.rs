//! Stand-in for a broker crate: starts the reference broker on 127.0.0.1, port 0, on a
//! runtime of its own, the way a broker project would start its own broker in a test.

use std::net::SocketAddr;

use reference_broker::broker::{Broker, BrokerConfig};

/// A broker running on its own runtime until the value is dropped.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    broker: Option<Broker>,
}

/// Start the broker on a free port.
pub fn start() -> std::io::Result<Running> {
    let runtime = tokio::runtime::Runtime::new()?;
    let config = BrokerConfig::default_tcp(SocketAddr::from(([127, 0, 0, 1], 0)));
    let broker = runtime
        .block_on(Broker::bind(config))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let addr = broker
        .tcp_addr()
        .ok_or_else(|| std::io::Error::other("the broker has no TCP listener"))?;
    Ok(Running {
        addr,
        runtime,
        broker: Some(broker),
    })
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(b) = self.broker.take() {
            self.runtime.block_on(b.shutdown());
        }
    }
}

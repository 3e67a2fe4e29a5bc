//! Network fault injection: Toxiproxy-style proxies and toxics, behind one trait.
//!
//! - [`FaultInjector`]: the trait the runner uses; [`EmbeddedInjector`] (default, in-process)
//!   and [`ToxiproxyInjector`] (a real Toxiproxy over HTTP) implement it.
//! - [`Engine`]: the embedded, Toxiproxy-compatible proxy engine.
//! - [`Fault`]: a scenario's fault step (`cut`, `down`, `blackhole`, ..., `heal`), applied
//!   through the trait.
//! - [`serve`]: Toxiproxy's HTTP API around an [`Engine`], for `mqtt-conformance toxiproxy`.

//!
//! ```
//! use std::time::Duration;
//! use mqtt_conformance::fault::{Direction, EmbeddedInjector, Fault, FaultInjector};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let faults = EmbeddedInjector::new();
//! // Clients connect to `listen` instead of the broker.
//! let listen = faults.create_proxy("sub", broker.local_addr()?).await?;
//! let latency = Fault::Latency {
//!     delay: Duration::from_millis(100),
//!     jitter: Duration::ZERO,
//!     direction: Direction::Down,
//! };
//! let toxics = latency.apply(&faults, "sub").await?;
//! assert_eq!(toxics[0].name, "latency_downstream");
//! Fault::Heal.apply(&faults, "sub").await?;
//! # let _ = listen;
//! # Ok(())
//! # }
//! ```

mod api;
mod embedded;
mod engine;
mod error;
mod injector;
mod link;
mod proxy;
mod step;
mod toxic;
mod toxiproxy;

pub use api::{router, serve, ServerHandle};
pub use embedded::EmbeddedInjector;
pub use engine::{Engine, NewProxy, ProxyInfo, ProxyUpdate, ToxicUpdate};
pub use error::FaultError;
pub use injector::FaultInjector;
pub use step::{Direction, Fault};
pub use toxic::{Stream, Toxic, ToxicKind};
pub use toxiproxy::ToxiproxyInjector;

//! Network fault injection: Toxiproxy-style proxies and toxics, behind one trait.
//!
//! - [`FaultInjector`]: the trait the runner uses; [`EmbeddedInjector`] (default, in-process)
//!   and [`ToxiproxyInjector`] (a real Toxiproxy over HTTP) implement it.
//! - [`Engine`]: the embedded, Toxiproxy-compatible proxy engine.
//! - [`Fault`]: a scenario's fault step (`cut`, `blackhole`, ..., `heal`), applied through the trait.
//! - [`serve`]: Toxiproxy's HTTP API around an [`Engine`], for `mqtt-conformance toxiproxy`.

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

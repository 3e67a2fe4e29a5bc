//! The reference client: a packet-level [`Connection`] (transport + codec + trace, able to
//! send anything, including raw bytes) and, on top of it, the full-protocol [`Client`]
//! driving the sans-IO [`ClientState`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), reference_broker::client::ClientError> {
//! use std::time::Duration;
//! use reference_broker::client::{Client, ConnectOptions};
//! use reference_broker::codec::QoS;
//!
//! let mut sub = Client::connect("mqtt://127.0.0.1:1883", ConnectOptions::new("sub")).await?;
//! sub.subscribe("sensor/+/temperature", QoS::AtLeastOnce).await?;
//! let mut sensor = Client::connect("mqtt://127.0.0.1:1883", ConnectOptions::new("s1")).await?;
//! sensor.publish("sensor/1/temperature", "21.5", QoS::ExactlyOnce, false).await?;
//! let message = sub.recv_message(Duration::from_secs(2)).await?;
//! assert_eq!(&message.payload[..], b"21.5");
//! println!("{}", sub.trace()); // +0.001s  -> CONNECT v5 client_id="sub" clean_start ...
//! # Ok(()) }
//! ```

mod clock;
mod connection;
mod session;
mod trace;
mod transport;
mod url;

pub use crate::protocol::client::{
    BrokerLimits, ClientState, ConnectOptions, Controls, Event, Phase, ReleaseOrder, StateError,
};
pub use connection::{ClientError, Connection, Received, TransportOptions};
pub use session::{AuthResponder, Client};
pub use trace::{
    dropped_line, hex, payload, Direction, PacketDisplay, Trace, TraceEntry, TraceEvent,
    TRACE_HEAD, TRACE_TAIL,
};
pub use url::{parse_url, BrokerUrl, Scheme};

//! The reference client: a packet-level [`Connection`] (transport + codec + trace, able to
//! send anything, including raw bytes) and, on top of it, the full-protocol client.

mod connection;
mod trace;
mod transport;
mod url;

pub use connection::{ClientError, Connection, Received, TransportOptions};
pub use trace::{hex, payload, Direction, PacketDisplay, Trace, TraceEntry, TraceEvent};
pub use url::{parse_url, BrokerUrl, Scheme};

//! The reference client: a packet-level [`Connection`] (transport + codec + trace, able to
//! send anything, including raw bytes) and, on top of it, the full-protocol client.

mod connection;
mod trace;

pub use connection::{ClientError, Connection, Received, TransportOptions};
pub use trace::{Direction, Trace, TraceEntry, TraceEvent};

//! The reference client: a packet-level [`Connection`] (transport + codec + trace, able to
//! send anything, including raw bytes) and, on top of it, the full-protocol [`Client`]
//! driving the sans-IO [`ClientState`].

mod connection;
mod session;
mod state;
mod trace;
mod transport;
mod url;

pub use connection::{ClientError, Connection, Received, TransportOptions};
pub use session::{AuthResponder, Client};
pub use state::{
    BrokerLimits, ClientState, ConnectOptions, Controls, Event, Phase, ReleaseOrder, StateError,
};
pub use trace::{hex, payload, Direction, PacketDisplay, Trace, TraceEntry, TraceEvent};
pub use url::{parse_url, BrokerUrl, Scheme};

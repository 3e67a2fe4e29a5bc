//! A timestamped record of everything a connection sent and received, printable as a
//! readable exchange for failure reports.

use std::time::Duration;

use bytes::Bytes;

use crate::codec::Packet;

/// Which way a trace entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to broker.
    Sent,
    /// Broker to client.
    Received,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceEvent {
    /// A decoded packet.
    Packet(Packet),
    /// Raw bytes sent as they are (raw mode) or bytes that could not be decoded.
    Raw(Bytes),
    /// The connection closed (by whom and why).
    Closed(String),
    /// A note from the harness (fault applied, step started, ...).
    Note(String),
}

/// One entry: when (since the connection opened), which way, what.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEntry {
    /// Time since the connection was opened.
    pub at: Duration,
    /// Direction.
    pub direction: Direction,
    /// Event.
    pub event: TraceEvent,
}

/// The trace of one connection.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// Entries in order.
    pub entries: Vec<TraceEntry>,
}

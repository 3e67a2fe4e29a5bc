//! A packet-level connection to a broker: open a transport, send packets or raw bytes,
//! receive packets with a timeout, observe the close, record a trace.

use std::time::Duration;

use crate::codec::{DecodeError, Packet, ProtocolVersion, ReasonCode};

use super::Trace;

/// How to reach the broker beyond its URL (TLS settings, timeouts).
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    /// Skip certificate verification (test brokers with self-signed certificates).
    pub insecure_tls: bool,
    /// PEM file of a CA to trust.
    pub ca_file: Option<std::path::PathBuf>,
    /// Connect timeout (default 5 s).
    pub connect_timeout: Option<Duration>,
}

/// What [`Connection::recv`] observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A packet from the broker.
    Packet(Packet),
    /// The broker closed the connection (EOF or reset).
    Closed,
}

/// Errors of the client, typed so that a report can say what happened.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not a valid broker URL.
    #[error("invalid broker URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The broker could not be reached.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Address tried.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Nothing arrived in time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    /// The broker sent bytes that do not decode.
    #[error("broker sent a malformed packet: {0}")]
    Decode(#[from] DecodeError),
    /// The broker refused the connection.
    #[error("connection refused by broker: {0}")]
    Refused(ReasonCode),
    /// The broker closed the connection.
    #[error("connection closed by broker{0}")]
    Closed(String),
    /// Socket error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// A packet-level connection. It never answers anything by itself: every packet the broker
/// sends is returned by [`Connection::recv`], so tests see exactly what the broker did.
#[derive(Debug)]
pub struct Connection {
    trace: Trace,
}

impl Connection {
    /// Open a transport to `url` (`mqtt://`, `mqtts://`, `ws://`, `wss://`, `tcp://`,
    /// or `host:port`). No MQTT packet is sent.
    pub async fn open(url: &str, options: &TransportOptions) -> Result<Connection, ClientError> {
        let _ = (url, options);
        todo!("client implementation in progress")
    }

    /// Fix the protocol version used to encode and decode (set from the CONNECT sent).
    pub fn set_version(&mut self, version: ProtocolVersion) {
        let _ = version;
        todo!("client implementation in progress")
    }

    /// Encode and send one packet (a CONNECT also fixes the version).
    pub async fn send(&mut self, packet: &Packet) -> Result<(), ClientError> {
        let _ = packet;
        todo!("client implementation in progress")
    }

    /// Send bytes as they are (raw mode: malformed packets on purpose).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let _ = bytes;
        todo!("client implementation in progress")
    }

    /// Wait up to `timeout` for the next packet or the close of the connection;
    /// [`ClientError::Timeout`] if neither happens.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Received, ClientError> {
        let _ = timeout;
        todo!("client implementation in progress")
    }

    /// Close the transport abruptly, without DISCONNECT.
    pub fn abort(self) {}

    /// Add a harness note to the trace (step boundaries, faults).
    pub fn note(&mut self, text: impl Into<String>) {
        let _ = text.into();
        todo!("client implementation in progress")
    }

    /// Everything sent and received so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }
}

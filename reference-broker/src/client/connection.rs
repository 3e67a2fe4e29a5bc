//! A packet-level connection to a broker: open a transport, send packets or raw bytes,
//! receive packets with a timeout, observe the close, record a trace.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::codec::{
    encode, DecodeError, Decoder, EncodeError, Packet, ProtocolVersion, ReasonCode,
    MAX_REMAINING_LENGTH,
};

use super::clock::now;
use super::trace::{hex, PacketDisplay};
use super::transport::Transport;
use super::url::{parse_url, BrokerUrl};
use super::{Direction, Trace, TraceEvent};

/// How to reach the broker beyond its URL (TLS settings, timeouts).
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    /// Skip certificate verification (test brokers with self-signed certificates).
    pub insecure_tls: bool,
    /// PEM file of a CA to trust.
    pub ca_file: Option<std::path::PathBuf>,
    /// Connect timeout (default 5 s).
    pub connect_timeout: Option<Duration>,
    /// PEM file of a client certificate chain (TLS client authentication).
    pub client_cert: Option<std::path::PathBuf>,
    /// PEM file of the client certificate's private key.
    pub client_key: Option<std::path::PathBuf>,
}

/// What [`Connection::recv`] observed.
// Packet's size is the codec's business; boxing it here would only add an allocation.
#[allow(clippy::large_enum_variant)]
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
        /// The URL given (credentials redacted).
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
    /// A packet could not be encoded.
    #[error("cannot encode packet: {0}")]
    Encode(#[from] EncodeError),
    /// TLS setup or handshake failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// WebSocket handshake failed.
    #[error("WebSocket: {0}")]
    WebSocket(String),
    /// The broker broke the protocol (unexpected packet, unknown packet id, ...).
    #[error("broker protocol violation: {0}")]
    Protocol(String),
    /// A request the client cannot honour (packet too large for the broker, closed
    /// client, ...).
    #[error("{0}")]
    Usage(String),
}

/// A packet-level connection. It never answers anything by itself: every packet the broker
/// sends is returned by [`Connection::recv`], so tests see exactly what the broker did.
///
/// Reading is cancel safe: bytes already read stay in the connection's buffer when a
/// `recv` future is dropped (inside `tokio::time::timeout` or `select!`).
pub struct Connection {
    transport: Option<Transport>,
    url: BrokerUrl,
    read_buf: BytesMut,
    decoder: Decoder,
    version: Option<ProtocolVersion>,
    started: Instant,
    trace: Trace,
    tracing_enabled: bool,
    /// Set once the peer closed (EOF or reset) or we closed; `recv` then reports `Closed`.
    closed: Option<String>,
    close_recorded: bool,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .field("version", &self.version)
            .field("open", &self.transport.is_some())
            .field("closed", &self.closed)
            .field("buffered", &self.read_buf.len())
            .field("trace_entries", &self.trace.len())
            .finish()
    }
}

impl Connection {
    /// Open a transport to `url` (`mqtt://`, `mqtts://`, `ws://`, `wss://`, `tcp://`,
    /// or `host:port`). No MQTT packet is sent.
    pub async fn open(url: &str, options: &TransportOptions) -> Result<Connection, ClientError> {
        let url = parse_url(url)?;
        Self::open_url(&url, options).await
    }

    /// [`Connection::open`] with an already parsed URL.
    pub async fn open_url(
        url: &BrokerUrl,
        options: &TransportOptions,
    ) -> Result<Connection, ClientError> {
        let started = now();
        let transport = Transport::open(url, options).await?;
        Ok(Connection {
            transport: Some(transport),
            url: url.clone(),
            read_buf: BytesMut::with_capacity(8192),
            decoder: Decoder::new(MAX_REMAINING_LENGTH + 5),
            version: None,
            started,
            trace: Trace::default(),
            tracing_enabled: true,
            closed: None,
            close_recorded: false,
        })
    }

    /// The URL this connection was opened to.
    pub fn url(&self) -> &BrokerUrl {
        &self.url
    }

    /// Fix the protocol version used to encode and decode (set from the CONNECT sent).
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.version = Some(version);
        self.decoder.set_version(version);
    }

    /// The version in force (3.1.1 rules apply until a CONNECT is sent).
    pub fn version(&self) -> ProtocolVersion {
        self.version.unwrap_or(ProtocolVersion::V3_1_1)
    }

    /// Refuse incoming packets larger than `max` bytes (the Maximum Packet Size this client
    /// announced in CONNECT).
    pub fn set_max_packet_size(&mut self, max: usize) {
        self.decoder.set_max_packet_size(max);
    }

    /// Turn trace recording on or off (off for load runs; notes and closes still recorded).
    pub fn set_tracing(&mut self, enabled: bool) {
        self.tracing_enabled = enabled;
    }

    /// True until the connection is known to be closed (by either side).
    pub fn is_open(&self) -> bool {
        self.transport.is_some() && self.closed.is_none()
    }

    /// Encode and send one packet (a CONNECT also fixes the version).
    pub async fn send(&mut self, packet: &Packet) -> Result<(), ClientError> {
        if let Packet::Connect(c) = packet {
            self.set_version(c.protocol);
        }
        let mut buf = BytesMut::new();
        encode(packet, self.version(), &mut buf)?;
        self.record_packet(Direction::Sent, packet);
        self.write(buf.freeze(), || {
            format!(" while sending {}", packet_name(packet))
        })
        .await
    }

    /// Encode several packets and send them in one write (pipelining for load and for
    /// out-of-order tests).
    pub async fn send_all(&mut self, packets: &[Packet]) -> Result<(), ClientError> {
        let mut buf = BytesMut::new();
        for packet in packets {
            if let Packet::Connect(c) = packet {
                self.set_version(c.protocol);
            }
            encode(packet, self.version(), &mut buf)?;
        }
        for packet in packets {
            self.record_packet(Direction::Sent, packet);
        }
        let n = packets.len();
        self.write(buf.freeze(), || format!(" while sending {n} packets"))
            .await
    }

    /// Send bytes as they are (raw mode: malformed packets on purpose).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let bytes = Bytes::copy_from_slice(bytes);
        self.record(Direction::Sent, TraceEvent::Raw(bytes.clone()));
        self.write(bytes, || " while sending raw bytes".to_string())
            .await
    }

    async fn write(
        &mut self,
        bytes: Bytes,
        context: impl FnOnce() -> String,
    ) -> Result<(), ClientError> {
        if let Some(why) = &self.closed {
            return Err(ClientError::Closed(format!(
                "{} (connection already closed: {why})",
                context()
            )));
        }
        let Some(transport) = self.transport.as_mut() else {
            return Err(ClientError::Closed(format!(
                "{} (connection already closed)",
                context()
            )));
        };
        match transport.write_all(bytes).await {
            Ok(()) => Ok(()),
            Err(e) if is_close(&e) => {
                let context = context();
                self.mark_closed(format!("closed by broker ({e}){context}"));
                Err(ClientError::Closed(context))
            }
            Err(e) => Err(ClientError::Io(e)),
        }
    }

    /// Wait up to `timeout` for the next packet or the close of the connection;
    /// [`ClientError::Timeout`] if neither happens.
    ///
    /// A decode error is recorded in the trace (with the offending bytes) and returned;
    /// the undecodable bytes are dropped from the buffer.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Received, ClientError> {
        match tokio::time::timeout(timeout, self.recv_any()).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout(
                timeout,
                "a packet from the broker".to_string(),
            )),
        }
    }

    /// The next packet or the close, with no time limit. Cancel safe.
    pub async fn recv_any(&mut self) -> Result<Received, ClientError> {
        loop {
            if let Some(packet) = self.try_decode()? {
                return Ok(Received::Packet(packet));
            }
            if self.closed.is_some() {
                self.record_close();
                return Ok(Received::Closed);
            }
            let Some(transport) = self.transport.as_mut() else {
                self.mark_closed("closed by client".to_string());
                continue;
            };
            match transport.read_into(&mut self.read_buf).await {
                Ok(0) => {
                    let why = if self.read_buf.is_empty() {
                        "closed by broker".to_string()
                    } else {
                        format!(
                            "closed by broker with {} undecoded bytes: {}",
                            self.read_buf.len(),
                            hex(&self.read_buf, 64)
                        )
                    };
                    self.read_buf.clear();
                    self.mark_closed(why);
                }
                Ok(_) => {}
                Err(e) if is_close(&e) => self.mark_closed(format!("closed by broker ({e})")),
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
    }

    /// Raw mode: the next bytes the broker sent, exactly as they came (whatever is buffered,
    /// else one read), without decoding; `None` once the connection is closed. Recorded in
    /// the trace as raw bytes. Do not mix with [`Connection::recv`] mid-packet.
    pub async fn recv_bytes(&mut self, timeout: Duration) -> Result<Option<Bytes>, ClientError> {
        let read = async {
            loop {
                if !self.read_buf.is_empty() {
                    let bytes = self.read_buf.split().freeze();
                    self.record(Direction::Received, TraceEvent::Raw(bytes.clone()));
                    return Ok(Some(bytes));
                }
                if self.closed.is_some() {
                    self.record_close();
                    return Ok(None);
                }
                let Some(transport) = self.transport.as_mut() else {
                    self.mark_closed("closed by client".to_string());
                    continue;
                };
                match transport.read_into(&mut self.read_buf).await {
                    Ok(0) => self.mark_closed("closed by broker".to_string()),
                    Ok(_) => {}
                    Err(e) if is_close(&e) => self.mark_closed(format!("closed by broker ({e})")),
                    Err(e) => return Err(ClientError::Io(e)),
                }
            }
        };
        match tokio::time::timeout(timeout, read).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout(
                timeout,
                "bytes from the broker".to_string(),
            )),
        }
    }

    /// A packet already buffered, without reading the socket.
    pub fn try_decode(&mut self) -> Result<Option<Packet>, ClientError> {
        if self.read_buf.is_empty() {
            return Ok(None);
        }
        let snapshot = Bytes::copy_from_slice(&self.read_buf[..self.read_buf.len().min(256)]);
        match self.decoder.decode(&mut self.read_buf) {
            Ok(Some(packet)) => {
                self.record_packet(Direction::Received, &packet);
                Ok(Some(packet))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.read_buf.clear();
                self.record(Direction::Received, TraceEvent::Raw(snapshot));
                self.trace.push(
                    now().saturating_duration_since(self.started),
                    Direction::Received,
                    TraceEvent::Note(format!("decode error: {e}")),
                );
                Err(ClientError::Decode(e))
            }
        }
    }

    /// Send a TCP FIN (or a WebSocket Close) but keep reading: what the broker does next is
    /// still observed by [`Connection::recv`].
    pub async fn shutdown_write(&mut self) -> Result<(), ClientError> {
        if let Some(t) = self.transport.as_mut() {
            self.trace.push(
                now().saturating_duration_since(self.started),
                Direction::Sent,
                TraceEvent::Closed("write side shut down by client (FIN)".into()),
            );
            t.shutdown().await?;
        }
        Ok(())
    }

    /// Close gracefully (FIN) and release the socket; the trace stays readable.
    pub async fn close(&mut self) {
        if let Some(mut t) = self.transport.take() {
            let _ = t.shutdown().await;
            self.trace.push(
                now().saturating_duration_since(self.started),
                Direction::Sent,
                TraceEvent::Closed("closed by client".into()),
            );
        }
        if self.closed.is_none() {
            self.closed = Some("closed by client".into());
            self.close_recorded = true;
        }
    }

    /// Close abruptly (TCP reset, no DISCONNECT) and keep the trace readable.
    pub fn kill(&mut self) {
        if let Some(t) = self.transport.take() {
            t.abort();
            self.trace.push(
                now().saturating_duration_since(self.started),
                Direction::Sent,
                TraceEvent::Closed("closed abruptly by client (reset, no DISCONNECT)".into()),
            );
        }
        if self.closed.is_none() {
            self.closed = Some("closed abruptly by client".into());
            self.close_recorded = true;
        }
    }

    /// Close the transport abruptly, without DISCONNECT.
    pub fn abort(mut self) {
        self.kill();
    }

    /// Add a harness note to the trace (step boundaries, faults).
    pub fn note(&mut self, text: impl Into<String>) {
        self.trace.push(
            now().saturating_duration_since(self.started),
            Direction::Sent,
            TraceEvent::Note(text.into()),
        );
    }

    /// Everything sent and received so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Take the trace, leaving an empty one.
    pub fn take_trace(&mut self) -> Trace {
        std::mem::take(&mut self.trace)
    }

    /// When the connection was opened (the trace's zero).
    pub fn started_at(&self) -> Instant {
        self.started
    }

    /// Time since the connection was opened (the trace's clock).
    pub fn elapsed(&self) -> Duration {
        now().saturating_duration_since(self.started)
    }

    fn mark_closed(&mut self, why: String) {
        if self.closed.is_none() {
            self.closed = Some(why);
        }
    }

    fn record_close(&mut self) {
        if !self.close_recorded {
            self.close_recorded = true;
            let why = self.closed.clone().unwrap_or_default();
            self.trace.push(
                now().saturating_duration_since(self.started),
                Direction::Received,
                TraceEvent::Closed(why),
            );
        }
    }

    fn record_packet(&mut self, direction: Direction, packet: &Packet) {
        if self.tracing_enabled {
            self.record(direction, TraceEvent::Packet(packet.clone()));
        }
    }

    fn record(&mut self, direction: Direction, event: TraceEvent) {
        if self.tracing_enabled {
            self.trace.push(
                now().saturating_duration_since(self.started),
                direction,
                event,
            );
        }
    }
}

/// The short name of a packet with its id, for error messages: `PUBLISH id=3`.
pub(crate) fn packet_name(packet: &Packet) -> String {
    let full = PacketDisplay(packet).to_string();
    let mut words = full.split_whitespace();
    let name = words.next().unwrap_or_default().to_string();
    match words.find(|w| w.starts_with("id=")) {
        Some(id) => format!("{name} {id}"),
        None => name,
    }
}

fn is_close(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected
    )
}

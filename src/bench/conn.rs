//! The lean connection path of the load generator: a TCP socket, the reference codec and a
//! CONNECT/CONNACK and SUBSCRIBE/SUBACK handshake, nothing else (no trace, no state machine,
//! no per-packet allocation beyond the codec's).
//!
//! Why not the reference [`reference_broker::client::Client`]: it runs the full client state
//! machine per packet and only does I/O when a method is awaited, so a publisher cannot write
//! while acknowledgements are read. Measured
//! with `cargo bench --bench client_path` (1 publisher -> 1 subscriber, 50,000 messages of
//! 64 B, in-process reference broker, 2 shared and busy cores, two runs): QoS 0 reference
//! client 62k-79k msg/s, lean path 124k-280k msg/s (1.6x-4.5x); QoS 1 (window 20) 18k msg/s
//! against 33k-39k msg/s (1.8x-2.1x). The lean path is also not the bottleneck of a run:
//! against the reference broker binary (8 publishers -> 1 subscriber, 5 s) the bench used
//! 0.5 s (QoS 0) and 1.2 s (QoS 1) of CPU while the broker used 3.1 s and 2.5 s; against
//! Mosquitto (3 s) 1.5 s against Mosquitto's 2.5 s at QoS 0, and at QoS 1 neither was busy
//! (Mosquitto's 20-message window to the subscriber bounds the rate).

use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use reference_broker::client::{parse_url, Scheme};
use reference_broker::codec::{
    encode, ConnAck, Connect, Decoder, Packet, Properties, ProtocolVersion, QoS, Subscribe,
    Subscription, SubscriptionOptions,
};

use super::BenchError;

/// Largest packet the bench accepts from the broker.
const MAX_PACKET: usize = 16 * 1024 * 1024;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `host:port`.
    pub addr: String,
    /// Protocol version.
    pub version: ProtocolVersion,
    /// User name and password from the URL.
    pub credentials: Option<(String, Option<String>)>,
    /// Handshake timeout.
    pub timeout: Duration,
}

impl Endpoint {
    /// An endpoint from a broker URL (only `mqtt://`, `tcp://` or `host:port`).
    pub fn from_url(
        url: &str,
        version: ProtocolVersion,
        timeout: Duration,
    ) -> Result<Endpoint, BenchError> {
        let parsed = parse_url(url).map_err(|e| BenchError::Usage(e.to_string()))?;
        if parsed.scheme() != Scheme::Tcp {
            return Err(BenchError::Usage(format!(
                "bench speaks plain TCP only (mqtt://host:port), not {:?}",
                parsed.scheme()
            )));
        }
        Ok(Endpoint {
            addr: parsed.socket_addr(),
            version,
            credentials: parsed
                .username()
                .map(|u| (u.to_string(), parsed.password().map(str::to_string))),
            timeout,
        })
    }
}

/// A connected MQTT session over TCP, with its read buffer and decoder.
#[derive(Debug)]
pub struct Lean {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read and not yet decoded.
    pub read_buf: BytesMut,
    /// The decoder, version fixed.
    pub decoder: Decoder,
    /// Protocol version.
    pub version: ProtocolVersion,
    /// The CONNACK.
    pub connack: ConnAck,
}

/// The session a connection asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOpts {
    /// Clean Start (MQTT 5) / Clean Session (3.1.1).
    pub clean_start: bool,
    /// Session Expiry Interval in seconds (MQTT 5 only; 3.1.1 sessions last until a clean
    /// connection).
    pub expiry: Option<u32>,
}

impl SessionOpts {
    /// A clean session that ends with the connection.
    pub const CLEAN: SessionOpts = SessionOpts {
        clean_start: true,
        expiry: None,
    };
}

impl Lean {
    /// Open TCP, send CONNECT with a clean session, wait for a successful CONNACK. Returns
    /// the connection and the time the whole handshake took.
    pub async fn connect(
        ep: &Endpoint,
        client_id: String,
        keep_alive: u16,
    ) -> Result<(Lean, Duration), BenchError> {
        Self::connect_with(ep, client_id, keep_alive, SessionOpts::CLEAN).await
    }

    /// [`Lean::connect`] asking for the session `session`; Session Present is in
    /// `connack.session_present`.
    pub async fn connect_with(
        ep: &Endpoint,
        client_id: String,
        keep_alive: u16,
        session: SessionOpts,
    ) -> Result<(Lean, Duration), BenchError> {
        let started = Instant::now();
        let what = format!("CONNACK for {client_id}");
        let fut = async {
            let stream = TcpStream::connect(&ep.addr)
                .await
                .map_err(|e| BenchError::Io(format!("connect to {}", ep.addr), e))?;
            stream
                .set_nodelay(true)
                .map_err(|e| BenchError::Io("set TCP_NODELAY".into(), e))?;
            let mut lean = Lean {
                stream,
                read_buf: BytesMut::with_capacity(4096),
                decoder: Decoder::with_version(ep.version, MAX_PACKET),
                version: ep.version,
                connack: ConnAck::default(),
            };
            let connect = Packet::Connect(Box::new(Connect {
                protocol: ep.version,
                clean_start: session.clean_start,
                keep_alive,
                client_id: client_id.clone(),
                will: None,
                username: ep.credentials.as_ref().map(|(u, _)| u.clone()),
                password: ep
                    .credentials
                    .as_ref()
                    .and_then(|(_, p)| p.as_ref())
                    .map(|p| bytes::Bytes::copy_from_slice(p.as_bytes())),
                properties: Properties {
                    // Let the broker send as much as it likes to subscribers.
                    receive_maximum: ep.version.is_v5().then_some(u16::MAX),
                    session_expiry_interval: session.expiry.filter(|_| ep.version.is_v5()),
                    ..Properties::default()
                }
                .into(),
            }));
            lean.send(&connect).await?;
            match lean.next().await? {
                Some(Packet::ConnAck(ack)) if ack.code.0 == 0 => {
                    lean.connack = ack;
                    Ok(lean)
                }
                Some(Packet::ConnAck(ack)) => {
                    Err(BenchError::Refused(client_id.clone(), ack.code.0))
                }
                Some(other) => Err(BenchError::Protocol(format!(
                    "{client_id}: expected CONNACK, got {:?}",
                    other.packet_type()
                ))),
                None => Err(BenchError::Protocol(format!(
                    "{client_id}: connection closed before CONNACK"
                ))),
            }
        };
        let lean = tokio::time::timeout(ep.timeout, fut)
            .await
            .map_err(|_| BenchError::Timeout(ep.timeout, what))??;
        Ok((lean, started.elapsed()))
    }

    /// Subscribe to one filter and wait for a successful SUBACK.
    pub async fn subscribe(
        &mut self,
        filter: &str,
        qos: QoS,
        timeout: Duration,
    ) -> Result<(), BenchError> {
        let sub = Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Default::default(),
            subscriptions: vec![Subscription {
                filter: filter.to_string(),
                options: SubscriptionOptions {
                    qos,
                    ..SubscriptionOptions::default()
                },
            }],
        });
        let fut = async {
            self.send(&sub).await?;
            match self.next().await? {
                // SUBACK return codes of 0x80 and above are failures. [MQTT-3.9.3-2]
                Some(Packet::SubAck(ack)) if ack.reason_codes.iter().all(|c| c.0 < 0x80) => Ok(()),
                Some(Packet::SubAck(ack)) => Err(BenchError::Protocol(format!(
                    "subscribe {filter}: refused with {:?}",
                    ack.reason_codes
                ))),
                Some(other) => Err(BenchError::Protocol(format!(
                    "subscribe {filter}: expected SUBACK, got {:?}",
                    other.packet_type()
                ))),
                None => Err(BenchError::Protocol(format!(
                    "subscribe {filter}: connection closed"
                ))),
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| BenchError::Timeout(timeout, format!("SUBACK for {filter}")))?
    }

    /// Encode and write one packet.
    pub async fn send(&mut self, packet: &Packet) -> Result<(), BenchError> {
        let mut out = BytesMut::new();
        encode(packet, self.version, &mut out).map_err(|e| BenchError::Protocol(e.to_string()))?;
        self.stream
            .write_all(&out)
            .await
            .map_err(|e| BenchError::Io("write".into(), e))
    }

    /// The next packet, or `None` at EOF.
    pub async fn next(&mut self) -> Result<Option<Packet>, BenchError> {
        loop {
            if let Some(p) = self
                .decoder
                .decode(&mut self.read_buf)
                .map_err(|e| BenchError::Protocol(format!("broker sent a malformed packet: {e}")))?
            {
                return Ok(Some(p));
            }
            let n = self
                .stream
                .read_buf(&mut self.read_buf)
                .await
                .map_err(|e| BenchError::Io("read".into(), e))?;
            if n == 0 {
                return Ok(None);
            }
        }
    }
}

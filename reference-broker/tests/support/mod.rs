//! A scripted raw MQTT client over TCP for broker tests: encode with the codec, send, decode
//! what comes back, every wait bounded.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reference_broker::broker::{Broker, BrokerConfig};
use reference_broker::codec::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound of any wait for an expected packet.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long to wait before concluding that nothing (more) is coming.
pub const QUIET: Duration = Duration::from_millis(300);

pub const V4: ProtocolVersion = ProtocolVersion::V3_1_1;
pub const V5: ProtocolVersion = ProtocolVersion::V5;

pub async fn start() -> Broker {
    start_with(|_| {}).await
}

pub async fn start_with(f: impl FnOnce(&mut BrokerConfig)) -> Broker {
    let mut config = BrokerConfig::default_tcp("127.0.0.1:0".parse().unwrap());
    f(&mut config);
    Broker::bind(config).await.unwrap()
}

pub fn connect_packet(version: ProtocolVersion, id: &str, clean: bool) -> Connect {
    Connect {
        protocol: version,
        clean_start: clean,
        keep_alive: 0,
        client_id: id.into(),
        will: None,
        username: None,
        password: None,
        properties: Default::default(),
    }
}

pub fn publish_packet(topic: &str, payload: &'static [u8], qos: QoS, id: u16) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        properties: Default::default(),
        payload: Bytes::from_static(payload),
    }
}

pub fn subscribe_packet(id: u16, filter: &str, qos: QoS) -> Subscribe {
    Subscribe {
        packet_id: id,
        properties: Default::default(),
        subscriptions: vec![Subscription {
            filter: filter.into(),
            options: SubscriptionOptions {
                qos,
                ..Default::default()
            },
        }],
    }
}

/// Any byte stream a test client can talk over (TCP, in-memory pipe).
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

pub struct Client {
    pub stream: Box<dyn Io>,
    pub version: ProtocolVersion,
    decoder: Decoder,
    buf: BytesMut,
    closed: bool,
}

impl Client {
    pub async fn open(addr: SocketAddr, version: ProtocolVersion) -> Client {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream: Box::new(stream),
            version,
            decoder: Decoder::with_version(version, 1 << 24),
            buf: BytesMut::new(),
            closed: false,
        }
    }

    /// A client on an in-memory pipe served by `broker` (no socket: works with paused time).
    pub fn pipe(broker: &Broker, version: ProtocolVersion) -> Client {
        let (client, server) = tokio::io::duplex(64 * 1024);
        broker.serve_stream(server, "127.0.0.1:1".parse().unwrap());
        Client {
            stream: Box::new(client),
            version,
            decoder: Decoder::with_version(version, 1 << 24),
            buf: BytesMut::new(),
            closed: false,
        }
    }

    /// Send CONNECT on an opened client and expect CONNACK 0.
    pub async fn handshake(mut self, connect: Connect) -> (Client, ConnAck) {
        self.send(Packet::Connect(Box::new(connect))).await;
        match self.recv().await {
            Packet::ConnAck(a) => {
                assert_eq!(a.code, ReasonCode::SUCCESS, "CONNACK {a:?}");
                (self, a)
            }
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Open, send CONNECT, expect CONNACK 0.
    pub async fn connect(
        addr: SocketAddr,
        version: ProtocolVersion,
        id: &str,
        clean: bool,
    ) -> (Client, ConnAck) {
        Self::connect_with(addr, connect_packet(version, id, clean)).await
    }

    pub async fn connect_with(addr: SocketAddr, connect: Connect) -> (Client, ConnAck) {
        let mut c = Client::open(addr, connect.protocol).await;
        c.send(Packet::Connect(Box::new(connect))).await;
        match c.recv().await {
            Packet::ConnAck(a) => {
                assert_eq!(a.code, ReasonCode::SUCCESS, "CONNACK {a:?}");
                (c, a)
            }
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    pub async fn send(&mut self, p: Packet) {
        let mut out = BytesMut::new();
        encode(&p, self.version, &mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    pub async fn send_raw(&mut self, b: &[u8]) {
        let _ = self.stream.write_all(b).await;
    }

    /// The next packet, or `None` when the connection closed or `wait` passed.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Packet> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(p) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(p);
            }
            if self.closed {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => self.closed = true,
                Ok(Ok(_)) => {}
            }
        }
    }

    pub async fn recv(&mut self) -> Packet {
        match self.recv_within(WAIT).await {
            Some(p) => p,
            None => panic!("no packet within {WAIT:?} (closed: {})", self.closed),
        }
    }

    pub async fn recv_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Assert nothing arrives for a short while.
    pub async fn expect_nothing(&mut self) {
        self.expect_nothing_within(QUIET).await;
    }

    /// Assert nothing arrives (and the connection stays open) for `wait` (paused-time tests).
    pub async fn expect_nothing_within(&mut self, wait: Duration) {
        if let Some(p) = self.recv_within(wait).await {
            panic!("unexpected packet {p:?}");
        }
        assert!(!self.closed, "connection closed");
    }

    /// Wait until the broker closes the connection; returns the packets received before.
    pub async fn expect_closed(&mut self) -> Vec<Packet> {
        self.expect_closed_within(WAIT).await
    }

    /// [`Client::expect_closed`] with a chosen bound (long ones for paused-time tests).
    pub async fn expect_closed_within(&mut self, wait: Duration) -> Vec<Packet> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_within(left).await {
                Some(p) => got.push(p),
                None if self.closed => return got,
                None => panic!("connection not closed within {wait:?}; got {got:?}"),
            }
        }
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> SubAck {
        self.send(Packet::Subscribe(subscribe_packet(1, filter, qos)))
            .await;
        match self.recv().await {
            Packet::SubAck(s) => s,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publish and complete the acknowledgement flow for QoS 1/2.
    pub async fn publish(&mut self, p: Publish) -> ReasonCode {
        let id = p.packet_id;
        let qos = p.qos;
        self.send(Packet::Publish(p)).await;
        match qos {
            QoS::AtMostOnce => ReasonCode::SUCCESS,
            QoS::AtLeastOnce => match self.recv().await {
                Packet::PubAck(a) if a.packet_id == id => a.reason,
                other => panic!("expected PUBACK {id}, got {other:?}"),
            },
            QoS::ExactlyOnce => {
                let reason = match self.recv().await {
                    Packet::PubRec(a) if a.packet_id == id => a.reason,
                    other => panic!("expected PUBREC {id}, got {other:?}"),
                };
                if !reason.is_success() {
                    return reason;
                }
                self.send(Packet::PubRel(PubResponse {
                    packet_id: id,
                    ..Default::default()
                }))
                .await;
                match self.recv().await {
                    Packet::PubComp(a) if a.packet_id == id => reason,
                    other => panic!("expected PUBCOMP {id}, got {other:?}"),
                }
            }
        }
    }

    /// Acknowledge a received PUBLISH (QoS 1: PUBACK; QoS 2: PUBREC, wait PUBREL, PUBCOMP).
    pub async fn ack(&mut self, p: &Publish) {
        let r = PubResponse {
            packet_id: p.packet_id,
            ..Default::default()
        };
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(Packet::PubAck(r)).await,
            QoS::ExactlyOnce => {
                self.send(Packet::PubRec(r.clone())).await;
                match self.recv().await {
                    Packet::PubRel(rel) if rel.packet_id == p.packet_id => {}
                    other => panic!("expected PUBREL, got {other:?}"),
                }
                self.send(Packet::PubComp(r)).await;
            }
        }
    }

    pub async fn disconnect(mut self) {
        self.send(Packet::Disconnect(Disconnect::default())).await;
        let _ = self.stream.shutdown().await;
    }
}

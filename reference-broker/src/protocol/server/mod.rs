//! The server side of one MQTT connection as a pure state machine.
//!
//! Inputs: [`ServerConnection::handle_packet`], [`ServerConnection::handle_timeout`] and the
//! broker's decisions ([`ServerConnection::accept`], [`ServerConnection::publish_done`],
//! [`ServerConnection::deliver`], ...). Outputs: packets from
//! [`ServerConnection::poll_transmit`], events from [`ServerConnection::poll_event`] and the
//! next deadline from [`ServerConnection::poll_timeout`]. Nothing here reads a clock or a socket.
//!
//! One file per concern: [`limits`] (what the server announces), `connect` (CONNECT, CONNACK,
//! DISCONNECT), `auth` (enhanced authentication), `publish` (inbound QoS flows), `deliver`
//! (outbound QoS flows and flow control), `subscribe` (SUBACK/UNSUBACK), `keep_alive`
//! (timers) and `decode_error` (what a malformed packet costs the client).

mod auth;
mod connect;
mod decode_error;
mod deliver;
mod keep_alive;
pub mod limits;
mod publish;
mod subscribe;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::{
    Connect, Disconnect, Packet, ProtocolVersion, QoS, ReasonCode, Subscribe, Unsubscribe, Will,
};

use super::alias::{InboundAliases, OutboundAliases};
use super::variants::{ErrorDisconnect, ReasonStrings};
use super::{Defect, Message, Session};

pub use limits::ServerLimits;

/// Something the broker must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A valid CONNECT arrived; answer with [`ServerConnection::accept`],
    /// [`ServerConnection::reject`] or, for an Authentication Method the broker supports,
    /// [`ServerConnection::auth_challenge`].
    Connect(Box<Connect>),
    /// The client answered a challenge with `data` (MQTT 5 enhanced authentication): judge
    /// it and call [`ServerConnection::auth_verdict`].
    AuthResponse {
        /// The challenge the client answers.
        challenge: bytes::Bytes,
        /// Its Authentication Data.
        data: Option<bytes::Bytes>,
    },
    /// The client asks to re-authenticate: call [`ServerConnection::auth_challenge`].
    ReAuthenticate,
    /// An application message to route; for QoS 1/2 answer with
    /// [`ServerConnection::publish_done`].
    Publish(InboundPublish),
    /// SUBSCRIBE; the broker answers with [`ServerConnection::subscribe_done`].
    Subscribe(Subscribe),
    /// UNSUBSCRIBE; the broker answers with [`ServerConnection::unsubscribe_done`].
    Unsubscribe(Unsubscribe),
}

/// An inbound application message.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundPublish {
    /// Packet identifier (0 for QoS 0).
    pub packet_id: u16,
    /// QoS of the PUBLISH.
    pub qos: QoS,
    /// The message, topic alias resolved.
    pub message: Message,
}

/// How a connection ended, which decides whether the will is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    /// DISCONNECT with reason 0x00 (or 3.1.x DISCONNECT): the will is discarded.
    NormalDisconnect,
    /// DISCONNECT with a reason other than 0x00, such as 0x04 (MQTT 5): publish the will.
    DisconnectWithWill,
    /// The client broke a rule (malformed packet, protocol error, ...).
    ProtocolError,
    /// Keep alive expired.
    KeepAliveTimeout,
    /// No CONNECT in time.
    ConnectTimeout,
    /// CONNECT refused.
    Rejected,
    /// Another connection took over the session.
    TakenOver,
    /// The network connection was lost.
    NetworkLost,
    /// The server is shutting down or closed it for an administrative reason.
    ServerClosed,
}

/// The broker's decision to accept a CONNECT.
#[derive(Debug, Default)]
pub struct Accept {
    /// The session to resume (or a new empty one).
    pub session: Session,
    /// CONNACK Session Present.
    pub session_present: bool,
    /// Client identifier assigned by the server for an empty one (MQTT 5).
    pub assigned_client_id: Option<String>,
    /// Authentication method and final data of an enhanced authentication (MQTT 5).
    pub auth: Option<(String, Option<bytes::Bytes>)>,
    /// Response Information for a client that asked for it (MQTT 5).
    pub response_information: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitConnect,
    AwaitDecision,
    Authenticating,
    Connected,
    Closed,
}

/// The server side of one connection.
#[derive(Debug)]
pub struct ServerConnection {
    limits: Arc<ServerLimits>,
    state: State,
    version: ProtocolVersion,
    client_id: Arc<str>,
    keep_alive: Option<Duration>,
    /// The Server Keep Alive sent in CONNACK (MQTT 5), if any.
    server_keep_alive: Option<u16>,
    last_rx: Instant,
    connect_deadline: Instant,
    /// Boxed: most connections have none, and every connection's task holds this state.
    will: Option<Box<Will>>,
    session: Session,
    session_expiry: u32,
    connect_session_expiry_zero: bool,
    client_receive_maximum: u16,
    client_max_packet_size: Option<u32>,
    inbound_aliases: InboundAliases,
    outbound_aliases: OutboundAliases,
    /// Enhanced authentication, for a CONNECT with an Authentication Method (boxed: rare).
    auth: Option<Box<auth::AuthFlow>>,
    transmits: VecDeque<Packet>,
    events: VecDeque<Event>,
    close_kind: Option<CloseKind>,
    dropped: u64,
}

impl ServerConnection {
    /// A new connection accepted at `now`, waiting for CONNECT.
    pub fn new(now: Instant, limits: Arc<ServerLimits>) -> ServerConnection {
        let connect_deadline = now + limits.connect_timeout;
        let inbound_aliases = InboundAliases::new(limits.topic_alias_maximum);
        ServerConnection {
            limits,
            state: State::AwaitConnect,
            version: ProtocolVersion::V3_1_1,
            client_id: Arc::from(""),
            keep_alive: None,
            server_keep_alive: None,
            last_rx: now,
            connect_deadline,
            will: None,
            session: Session::new(),
            session_expiry: 0,
            connect_session_expiry_zero: true,
            client_receive_maximum: u16::MAX,
            client_max_packet_size: None,
            inbound_aliases,
            outbound_aliases: OutboundAliases::new(0),
            auth: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            close_kind: None,
            dropped: 0,
        }
    }

    // ----- getters -----

    /// The protocol version (3.1.1 until CONNECT is received).
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The client identifier (assigned one included) once accepted.
    pub fn client_id(&self) -> &Arc<str> {
        &self.client_id
    }

    /// True once CONNACK 0x00 was sent and until the connection closes.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// True once the connection is closed; flush the transmits, then close the socket.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// How the connection ended, once closed.
    pub fn close_kind(&self) -> Option<CloseKind> {
        self.close_kind
    }

    /// The session expiry interval in force (seconds; `u32::MAX` = never).
    pub fn session_expiry(&self) -> u32 {
        self.session_expiry
    }

    /// Messages dropped so far (expired, too large for the client, queue full).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The session state.
    pub fn session(&self) -> &Session {
        &self.session
    }

    // ----- outputs -----

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Packet> {
        let next = self.transmits.pop_front();
        if next.is_none() && self.transmits.capacity() > 0 {
            // Packets are large (properties inline): an idle connection keeps no buffer.
            self.transmits = VecDeque::new();
        }
        next
    }

    /// The next event for the broker.
    pub fn poll_event(&mut self) -> Option<Event> {
        let next = self.events.pop_front();
        if next.is_none() && self.events.capacity() > 0 {
            // Events carry whole packets: an idle connection keeps no buffer.
            self.events = VecDeque::new();
        }
        next
    }

    /// A decoded packet arrived at `now`.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet) {
        if !(self.state == State::Connected
            && self.limits.defects.has(Defect::KeepAliveFromConnect))
        {
            self.last_rx = now;
        }
        match self.state {
            State::Closed => {}
            State::AwaitConnect => match packet {
                Packet::Connect(connect) => self.handle_connect(*connect),
                _ if self.limits.defects.has(Defect::PacketBeforeConnectIgnored) => {}
                // [MQTT-3.1.0-1] the first packet must be CONNECT; close without CONNACK.
                _ => self.close_silently(CloseKind::ProtocolError),
            },
            State::AwaitDecision => self.protocol_error(),
            State::Authenticating => match packet {
                Packet::Auth(auth) => self.handle_auth(auth),
                Packet::Disconnect(_) => self.close_silently(CloseKind::NormalDisconnect),
                // [MQTT-4.12.0-3] only AUTH (or DISCONNECT) during authentication.
                _ => self.close(ReasonCode::PROTOCOL_ERROR, CloseKind::ProtocolError),
            },
            State::Connected => self.handle_connected(now, packet),
        }
    }

    /// Queue a packet built by the broker (SUBACK, UNSUBACK, AUTH).
    pub fn send(&mut self, packet: Packet) {
        if self.state != State::Closed {
            self.transmits.push_back(packet);
        }
    }

    fn handle_connected(&mut self, now: Instant, packet: Packet) {
        let v5 = self.version.is_v5();
        match packet {
            // [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
            Packet::Connect(_) if self.limits.defects.has(Defect::SecondConnectAccepted) => {}
            Packet::Connect(_) => self.protocol_error(),
            Packet::Publish(publish) => self.handle_publish(now, publish),
            Packet::PubAck(ack) => self.handle_puback(now, ack),
            Packet::PubRec(rec) => self.handle_pubrec(now, rec),
            Packet::PubRel(rel) => self.handle_pubrel(rel),
            Packet::PubComp(comp) => self.handle_pubcomp(now, comp),
            Packet::Subscribe(s) => self.events.push_back(Event::Subscribe(s)),
            Packet::Unsubscribe(u) => self.events.push_back(Event::Unsubscribe(u)),
            // [MQTT-3.12.4-1] answer PINGREQ with PINGRESP.
            Packet::PingReq if self.limits.defects.has(Defect::PingrespMissing) => {}
            Packet::PingReq => self.transmits.push_back(Packet::PingResp),
            Packet::Disconnect(d) => self.handle_disconnect(d),
            Packet::Auth(auth) if v5 => self.handle_auth(auth),
            // Server-to-client packets are protocol errors when a client sends them.
            _ => self.protocol_error(),
        }
    }

    /// Close because a rule was broken: DISCONNECT 0x82 (MQTT 5), then close.
    pub fn protocol_error(&mut self) {
        self.close(ReasonCode::PROTOCOL_ERROR, CloseKind::ProtocolError);
    }

    /// Close with a server DISCONNECT carrying `reason` (MQTT 5 only, once connected).
    pub fn close(&mut self, reason: ReasonCode, kind: CloseKind) {
        self.close_with_text(reason, kind, None);
    }

    /// [`ServerConnection::close`] with a human-readable Reason String in the DISCONNECT,
    /// left out if it could exceed the client's Maximum Packet Size ([MQTT-3.2.2-19] spirit).
    pub fn close_with_text(&mut self, reason: ReasonCode, kind: CloseKind, text: Option<String>) {
        if self.state == State::Closed {
            return;
        }
        let close_only = kind == CloseKind::ProtocolError
            && self.limits.variants.error_disconnect == ErrorDisconnect::CloseOnly;
        if self.version.is_v5()
            && matches!(self.state, State::Connected | State::Authenticating)
            && !close_only
        {
            let mut properties = crate::codec::Properties::default();
            let text = text.filter(|_| self.limits.variants.reason_strings == ReasonStrings::Send);
            if let Some(text) = text {
                let fits = self
                    .client_max_packet_size
                    .is_none_or(|max| text.len() + 16 <= max as usize);
                if fits && text.len() <= 256 {
                    properties.reason_string = Some(text.into());
                }
            }
            self.transmits.push_back(Packet::Disconnect(Disconnect {
                reason,
                properties: properties.into(),
            }));
        }
        self.close_silently(kind);
    }

    /// Close without sending anything (network lost, DISCONNECT received, pre-CONNECT errors).
    pub fn close_silently(&mut self, kind: CloseKind) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.close_kind = Some(kind);
    }

    /// The will to publish now that the connection is closed, if any: `None` after a normal
    /// DISCONNECT or a rejected CONNECT.
    pub fn take_will(&mut self) -> Option<Will> {
        match self.close_kind {
            Some(CloseKind::NormalDisconnect)
                if self
                    .limits
                    .defects
                    .has(Defect::WillPublishedOnNormalDisconnect) =>
            {
                self.will.take().map(|w| *w)
            }
            Some(CloseKind::NetworkLost) if self.limits.defects.has(Defect::WillNotPublished) => {
                None
            }
            Some(CloseKind::NormalDisconnect) | Some(CloseKind::Rejected) | None => None,
            Some(_) => self.will.take().map(|w| *w),
        }
    }

    /// The session, to keep in the registry after the connection closes.
    pub fn take_session(&mut self) -> Session {
        if self.limits.defects.has(Defect::AliasKeptInSession) {
            self.session.kept_aliases = Some(self.inbound_aliases.clone());
        }
        std::mem::take(&mut self.session)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod size {
    /// Every connection's task holds this state inline, idle or not: what most connections
    /// never use (a will, topic alias tables, enhanced authentication) is boxed (648 bytes
    /// with them inline).
    #[test]
    fn a_server_connection_stays_small() {
        let size = std::mem::size_of::<super::ServerConnection>();
        assert!(size <= 416, "ServerConnection is {size} bytes");
    }
}

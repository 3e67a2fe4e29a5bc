//! The server side of one MQTT connection as a pure state machine.
//!
//! Inputs: [`ServerConnection::handle_packet`], [`ServerConnection::handle_timeout`] and the
//! broker's decisions ([`ServerConnection::accept`], [`ServerConnection::publish_done`],
//! [`ServerConnection::deliver`], ...). Outputs: packets from
//! [`ServerConnection::poll_transmit`], events from [`ServerConnection::poll_event`] and the
//! next deadline from [`ServerConnection::poll_timeout`]. Nothing here reads a clock or a socket.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::{
    encoded_len, Auth, ConnAck, Connect, Disconnect, Packet, Properties, ProtocolVersion,
    PubResponse, Publish, QoS, ReasonCode, Subscribe, TopicName, Unsubscribe, Will,
};

use super::session::{InflightOut, OutState};
use super::{Delivery, Message, Session};

/// Limits and capabilities of the server, announced in CONNACK (MQTT 5) and enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Largest packet the server accepts, in bytes.
    pub max_packet_size: u32,
    /// How many inbound QoS 1/2 PUBLISH may be unacknowledged at once.
    pub receive_maximum: u16,
    /// Highest inbound topic alias accepted (0 disables aliases).
    pub topic_alias_maximum: u16,
    /// Highest QoS the server supports.
    pub maximum_qos: QoS,
    /// Whether retained messages are supported.
    pub retain_available: bool,
    /// Whether wildcard subscriptions are supported.
    pub wildcard_subscription_available: bool,
    /// Whether subscription identifiers are supported.
    pub subscription_identifiers_available: bool,
    /// Whether shared subscriptions are supported.
    pub shared_subscription_available: bool,
    /// Keep alive the server imposes on every MQTT 5 client (Server Keep Alive), if any.
    pub server_keep_alive: Option<u16>,
    /// Highest keep alive granted to an MQTT 5 client (Mosquitto's `max_keepalive`): a client
    /// asking for more, or for 0 (none), gets this as Server Keep Alive; others keep theirs.
    /// MQTT 3.1.x has no way to tell the client, so it does not apply there.
    pub max_keep_alive: Option<u16>,
    /// Close a connection that sends no CONNECT within this time.
    pub connect_timeout: Duration,
    /// Highest session expiry interval granted, in seconds.
    pub max_session_expiry: u32,
    /// Most outbound QoS 1/2 messages in flight per client, whatever its receive maximum.
    pub max_inflight: u16,
    /// Most messages queued per session (offline sessions drop beyond it).
    pub max_queued_messages: usize,
    /// Most messages queued per online client before its publishers are slowed down: in its
    /// connection (waiting for its Receive Maximum) and again in the broker's overflow queue.
    /// Small, so that a slow consumer slows its publishers instead of holding seconds of
    /// messages (latency); capped by `max_queued_messages`.
    pub max_queued_online: usize,
    /// Whether QoS 0 messages are queued for offline or flow-controlled clients.
    pub queue_qos0: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_packet_size: 1024 * 1024,
            receive_maximum: 1024,
            topic_alias_maximum: 64,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            wildcard_subscription_available: true,
            subscription_identifiers_available: true,
            shared_subscription_available: true,
            server_keep_alive: None,
            max_keep_alive: None,
            connect_timeout: Duration::from_secs(10),
            max_session_expiry: u32::MAX,
            max_inflight: 1024,
            max_queued_messages: 10_000,
            max_queued_online: 1000,
            queue_qos0: false,
        }
    }
}

/// Something the broker must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A valid CONNECT arrived; answer with [`ServerConnection::accept`],
    /// [`ServerConnection::reject`] or [`ServerConnection::auth_continue`].
    Connect(Box<Connect>),
    /// An AUTH packet arrived during enhanced authentication.
    Auth(Auth),
    /// An application message to route; for QoS 1/2 answer with
    /// [`ServerConnection::publish_done`].
    Publish(InboundPublish),
    /// SUBSCRIBE; the broker answers with SUBACK through [`ServerConnection::send`].
    Subscribe(Subscribe),
    /// UNSUBSCRIBE; the broker answers with UNSUBACK through [`ServerConnection::send`].
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
    will: Option<Will>,
    session: Session,
    session_expiry: u32,
    connect_session_expiry_zero: bool,
    client_receive_maximum: u16,
    client_max_packet_size: Option<u32>,
    client_topic_alias_maximum: u16,
    inbound_aliases: HashMap<u16, TopicName>,
    outbound_aliases: HashMap<TopicName, u16>,
    auth_method: Option<compact_str::CompactString>,
    transmits: VecDeque<Packet>,
    events: VecDeque<Event>,
    close_kind: Option<CloseKind>,
    dropped: u64,
}

impl ServerConnection {
    /// A new connection accepted at `now`, waiting for CONNECT.
    pub fn new(now: Instant, limits: Arc<ServerLimits>) -> ServerConnection {
        let connect_deadline = now + limits.connect_timeout;
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
            client_topic_alias_maximum: 0,
            inbound_aliases: HashMap::new(),
            outbound_aliases: HashMap::new(),
            auth_method: None,
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

    /// When [`ServerConnection::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::AwaitConnect | State::AwaitDecision | State::Authenticating => {
                Some(self.connect_deadline)
            }
            // [MQTT-3.1.2-24] (3.1.1) / [MQTT-3.1.2-22] (5): one and a half times keep alive.
            State::Connected => self.keep_alive.map(|ka| self.last_rx + ka + ka / 2),
            State::Closed => None,
        }
    }

    // ----- inputs -----

    /// A timer fired.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.state {
            State::AwaitConnect | State::AwaitDecision | State::Authenticating => {
                self.close_silently(CloseKind::ConnectTimeout);
            }
            State::Connected => {
                self.close(ReasonCode::KEEP_ALIVE_TIMEOUT, CloseKind::KeepAliveTimeout)
            }
            State::Closed => {}
        }
    }

    /// A decoded packet arrived at `now`.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet) {
        self.last_rx = now;
        match self.state {
            State::Closed => {}
            State::AwaitConnect => match packet {
                Packet::Connect(connect) => self.handle_connect(*connect),
                // [MQTT-3.1.0-1] the first packet must be CONNECT; close without CONNACK.
                _ => self.close_silently(CloseKind::ProtocolError),
            },
            State::AwaitDecision => self.protocol_error(),
            State::Authenticating => match packet {
                Packet::Auth(auth) => self.events.push_back(Event::Auth(auth)),
                Packet::Disconnect(_) => self.close_silently(CloseKind::NormalDisconnect),
                // [MQTT-4.12.0-3] only AUTH (or DISCONNECT) during authentication.
                _ => self.close(ReasonCode::PROTOCOL_ERROR, CloseKind::ProtocolError),
            },
            State::Connected => self.handle_connected(now, packet),
        }
    }

    fn handle_connect(&mut self, connect: Connect) {
        self.version = connect.protocol;
        // [MQTT-3.1.2-24] keep alive from CONNECT, unless the server imposes one (MQTT 5).
        self.server_keep_alive = server_keep_alive(&self.limits, &connect);
        // [MQTT-3.2.2-22] without a Server Keep Alive, the client's value.
        let keep_alive = self.server_keep_alive.unwrap_or(connect.keep_alive);
        self.keep_alive = (keep_alive > 0).then(|| Duration::from_secs(u64::from(keep_alive)));
        self.will = connect.will.clone();
        if connect.protocol.is_v5() {
            let props = &connect.properties;
            let requested = props.session_expiry_interval.unwrap_or(0);
            self.connect_session_expiry_zero = requested == 0;
            self.session_expiry = requested.min(self.limits.max_session_expiry);
            self.client_receive_maximum = props.receive_maximum.unwrap_or(u16::MAX);
            self.client_max_packet_size = props.maximum_packet_size;
            self.client_topic_alias_maximum = props.topic_alias_maximum.unwrap_or(0);
            self.auth_method = props.authentication_method.clone();
        } else {
            // [MQTT-3.1.2-6] Clean Session 1: the session lasts as long as the connection;
            // Clean Session 0: it is kept until a clean connection.
            self.session_expiry = if connect.clean_start { 0 } else { u32::MAX };
            self.connect_session_expiry_zero = connect.clean_start;
        }
        // [MQTT-3.1.3-8] (3.1.1): a zero-byte client id requires Clean Session 1.
        if connect.client_id.is_empty() && !connect.clean_start && !connect.protocol.is_v5() {
            self.reject(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
            return;
        }
        self.client_id = Arc::from(connect.client_id.as_str());
        self.state = State::AwaitDecision;
        self.events.push_back(Event::Connect(Box::new(connect)));
    }

    /// Accept the CONNECT: send CONNACK 0x00, resume the session, redeliver in-flight messages.
    pub fn accept(&mut self, now: Instant, accept: Accept) {
        if !matches!(self.state, State::AwaitDecision | State::Authenticating) {
            return;
        }
        self.session = accept.session;
        let mut connack = ConnAck {
            session_present: accept.session_present,
            code: ReasonCode::SUCCESS,
            properties: Default::default(),
        };
        if let Some(id) = &accept.assigned_client_id {
            self.client_id = Arc::from(id.as_str());
        }
        if self.version.is_v5() {
            let l = &self.limits;
            let p = &mut connack.properties;
            // [MQTT-3.2.2-22] the client uses the assigned identifier.
            p.assigned_client_identifier = accept.assigned_client_id.map(Into::into);
            if l.max_session_expiry != u32::MAX {
                p.session_expiry_interval = Some(self.session_expiry);
            }
            p.receive_maximum = Some(l.receive_maximum);
            if l.maximum_qos != QoS::ExactlyOnce {
                p.maximum_qos = Some(l.maximum_qos.as_u8());
            }
            p.retain_available = Some(u8::from(l.retain_available));
            p.maximum_packet_size = Some(l.max_packet_size);
            p.topic_alias_maximum = Some(l.topic_alias_maximum);
            p.wildcard_subscription_available = Some(u8::from(l.wildcard_subscription_available));
            p.subscription_identifier_available =
                Some(u8::from(l.subscription_identifiers_available));
            p.shared_subscription_available = Some(u8::from(l.shared_subscription_available));
            // [MQTT-3.2.2-21] the client must use the Server Keep Alive.
            p.server_keep_alive = self.server_keep_alive;
            // [MQTT-3.1.2-28] only when requested (the shell checks the request).
            p.response_information = accept.response_information.map(Into::into);
            if let Some((method, data)) = accept.auth {
                p.authentication_method = Some(method.into());
                p.authentication_data = data;
            }
        }
        if let (true, Some(max)) = (self.version.is_v5(), self.client_max_packet_size) {
            fit_connack(&mut connack, max);
        }
        self.transmits.push_back(Packet::ConnAck(connack));
        self.state = State::Connected;
        self.last_rx = now;
        // [MQTT-4.4.0-1] resend unacknowledged PUBLISH (DUP set) and PUBREL on reconnection.
        let inflight: Vec<InflightOut> = self.session.inflight.iter().cloned().collect();
        for entry in inflight {
            match entry.state {
                OutState::AwaitPubAck | OutState::AwaitPubRec => {
                    let mut publish = entry.publish;
                    // [MQTT-3.3.1-1] DUP is set on a redelivery.
                    publish.dup = true;
                    self.transmit_publish(publish);
                }
                OutState::AwaitPubComp => self.transmits.push_back(Packet::PubRel(PubResponse {
                    packet_id: entry.publish.packet_id,
                    ..Default::default()
                })),
            }
        }
        self.pump(now);
    }

    /// Refuse the CONNECT with `code` (an MQTT 5 reason code; mapped for 3.1.x) and close.
    pub fn reject(&mut self, code: ReasonCode) {
        let mut properties = crate::codec::Properties::default();
        let code = if self.version.is_v5() {
            // [MQTT-3.1.2-29] a Reason String is allowed on CONNACK whatever Request Problem
            // Information says; it is short, so within any sane Maximum Packet Size.
            let fits = self.client_max_packet_size.is_none_or(|max| max >= 64);
            if fits {
                properties.reason_string = code.name().map(str::to_owned).map(Into::into);
            }
            code
        } else {
            code.to_v3_connack()
        };
        self.transmits.push_back(Packet::ConnAck(ConnAck {
            session_present: false,
            code,
            properties: properties.into(),
        }));
        self.will = None;
        self.state = State::Closed;
        self.close_kind = Some(CloseKind::Rejected);
    }

    /// Refuse a CONNECT the decoder could not read because of its protocol level: send a
    /// CONNACK in the format of `version` with `code`, then close.
    pub fn reject_version(&mut self, version: ProtocolVersion, code: ReasonCode) {
        self.version = version;
        self.transmits.push_back(Packet::ConnAck(ConnAck {
            session_present: false,
            code,
            properties: Default::default(),
        }));
        self.state = State::Closed;
        self.close_kind = Some(CloseKind::Rejected);
    }

    /// Replace the client identifier (one the server chose for an empty 3.1.1 client id).
    pub fn set_client_id(&mut self, client_id: Arc<str>) {
        self.client_id = client_id;
    }

    /// Continue an enhanced authentication (MQTT 5): send AUTH 0x18 with `data`.
    pub fn auth_continue(&mut self, data: Option<bytes::Bytes>) {
        let mut auth = Auth {
            reason: ReasonCode::CONTINUE_AUTHENTICATION,
            properties: Default::default(),
        };
        auth.properties.authentication_method = self.auth_method.clone();
        auth.properties.authentication_data = data;
        self.transmits.push_back(Packet::Auth(auth));
        if self.state == State::AwaitDecision {
            self.state = State::Authenticating;
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
            Packet::Connect(_) => self.protocol_error(),
            Packet::Publish(publish) => self.handle_publish(now, publish),
            Packet::PubAck(ack) => {
                self.session
                    .take_inflight(ack.packet_id, OutState::AwaitPubAck);
                self.pump(now);
            }
            Packet::PubRec(rec) => {
                if v5 && !rec.reason.is_success() {
                    // [MQTT-4.3.3-4] a PUBREC error (>= 0x80) ends the QoS 2 flow: no PUBREL.
                    self.session
                        .take_inflight(rec.packet_id, OutState::AwaitPubRec);
                    self.pump(now);
                } else {
                    let found = self.session.mark_released(rec.packet_id)
                        || self
                            .session
                            .inflight
                            .iter()
                            .any(|i| i.publish.packet_id == rec.packet_id);
                    // [MQTT-4.3.3-4] answer PUBREC with PUBREL, same packet identifier.
                    self.transmits.push_back(Packet::PubRel(PubResponse {
                        packet_id: rec.packet_id,
                        reason: if found || !v5 {
                            ReasonCode::SUCCESS
                        } else {
                            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
                        },
                        properties: Default::default(),
                    }));
                }
            }
            Packet::PubRel(rel) => {
                // [MQTT-4.3.3-11] PUBREL releases the packet identifier; answer PUBCOMP.
                let found = self.session.inbound_qos2.remove(&rel.packet_id);
                self.transmits.push_back(Packet::PubComp(PubResponse {
                    packet_id: rel.packet_id,
                    reason: if found || !v5 {
                        ReasonCode::SUCCESS
                    } else {
                        ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
                    },
                    properties: Default::default(),
                }));
            }
            Packet::PubComp(comp) => {
                self.session
                    .take_inflight(comp.packet_id, OutState::AwaitPubComp);
                self.pump(now);
            }
            Packet::Subscribe(s) => self.events.push_back(Event::Subscribe(s)),
            Packet::Unsubscribe(u) => self.events.push_back(Event::Unsubscribe(u)),
            // [MQTT-3.12.4-1] answer PINGREQ with PINGRESP.
            Packet::PingReq => self.transmits.push_back(Packet::PingResp),
            Packet::Disconnect(d) => self.handle_disconnect(d),
            Packet::Auth(auth) if v5 => self.events.push_back(Event::Auth(auth)),
            // Server-to-client packets are protocol errors when a client sends them.
            _ => self.protocol_error(),
        }
    }

    fn handle_disconnect(&mut self, d: Disconnect) {
        if self.version.is_v5() {
            if let Some(expiry) = d.properties.session_expiry_interval {
                // [MQTT-3.14.2-2] a zero session expiry from CONNECT cannot become non-zero.
                if self.connect_session_expiry_zero && expiry != 0 {
                    self.close(ReasonCode::PROTOCOL_ERROR, CloseKind::ProtocolError);
                    return;
                }
                self.session_expiry = expiry.min(self.limits.max_session_expiry);
            }
            if d.reason != ReasonCode::SUCCESS {
                // [MQTT-3.1.2-10] (5) only reason 0x00 removes the will; 0x04 and errors keep it.
                self.close_silently(CloseKind::DisconnectWithWill);
                return;
            }
        }
        // [MQTT-3.14.4-3] (3.1.1) / [MQTT-3.1.2-10] (5): a normal DISCONNECT discards the will.
        self.will = None;
        self.close_silently(CloseKind::NormalDisconnect);
    }

    fn handle_publish(&mut self, now: Instant, mut publish: Publish) {
        let v5 = self.version.is_v5();
        // [MQTT-3.2.2-11] (5) QoS above the server's Maximum QoS.
        if publish.qos > self.limits.maximum_qos {
            self.close(ReasonCode::QOS_NOT_SUPPORTED, CloseKind::ProtocolError);
            return;
        }
        // [MQTT-3.2.2-14] (5) retain when Retain Available is 0.
        if publish.retain && !self.limits.retain_available {
            self.close(ReasonCode::RETAIN_NOT_SUPPORTED, CloseKind::ProtocolError);
            return;
        }
        if v5 {
            // [MQTT-3.3.4-6] a client must not send subscription identifiers.
            if !publish.properties.subscription_identifiers.is_empty() {
                self.protocol_error();
                return;
            }
            if let Some(alias) = publish.properties.topic_alias {
                // [MQTT-3.3.2-8] / [MQTT-3.3.2-9] alias 0 or above Topic Alias Maximum.
                if alias == 0 || alias > self.limits.topic_alias_maximum {
                    self.close(ReasonCode::TOPIC_ALIAS_INVALID, CloseKind::ProtocolError);
                    return;
                }
                if publish.topic.is_empty() {
                    match self.inbound_aliases.get(&alias) {
                        Some(topic) => publish.topic = topic.clone(),
                        None => {
                            // [MQTT-3.3.2-12] (5) an empty topic needs a known alias: Protocol Error.
                            self.protocol_error();
                            return;
                        }
                    }
                } else {
                    self.inbound_aliases.insert(alias, publish.topic.clone());
                }
            } else if publish.topic.is_empty() {
                // [MQTT-3.3.2-1] a topic name is required without a topic alias.
                self.protocol_error();
                return;
            }
        }
        match publish.qos {
            QoS::ExactlyOnce => {
                if self.session.inbound_qos2.contains(&publish.packet_id) {
                    // [MQTT-4.3.3-10] duplicate before PUBREL: PUBREC again, no duplicate delivery.
                    self.transmits.push_back(Packet::PubRec(PubResponse {
                        packet_id: publish.packet_id,
                        ..Default::default()
                    }));
                    return;
                }
                // [MQTT-3.3.4-7] (5) the client sent more than Receive Maximum unacknowledged QoS 2.
                if self.session.inbound_qos2.len() >= usize::from(self.limits.receive_maximum) {
                    self.close(
                        ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                        CloseKind::ProtocolError,
                    );
                    return;
                }
                self.session.inbound_qos2.insert(publish.packet_id);
            }
            QoS::AtLeastOnce | QoS::AtMostOnce => {}
        }
        let packet_id = publish.packet_id;
        let qos = publish.qos;
        let message = Message::from_publish(now, publish, Some(self.client_id.clone()));
        self.events.push_back(Event::Publish(InboundPublish {
            packet_id,
            qos,
            message,
        }));
    }

    /// The broker routed an inbound QoS 1/2 message: acknowledge it with `reason` (MQTT 5;
    /// 3.1.x acknowledgements have no reason code).
    pub fn publish_done(&mut self, packet_id: u16, qos: QoS, reason: ReasonCode) {
        if self.state != State::Connected {
            return;
        }
        let reason = if self.version.is_v5() {
            reason
        } else {
            ReasonCode::SUCCESS
        };
        let ack = PubResponse {
            packet_id,
            reason,
            properties: Default::default(),
        };
        match qos {
            QoS::AtMostOnce => {}
            // [MQTT-4.3.2-4] acknowledge QoS 1 with PUBACK.
            QoS::AtLeastOnce => self.transmits.push_back(Packet::PubAck(ack)),
            QoS::ExactlyOnce => {
                if !reason.is_success() {
                    self.session.inbound_qos2.remove(&packet_id);
                }
                // [MQTT-4.3.3-8] acknowledge QoS 2 with PUBREC; [MQTT-4.3.3-9] an error ends the flow.
                self.transmits.push_back(Packet::PubRec(ack));
            }
        }
    }

    /// How many more deliveries the broker should hand [`ServerConnection::deliver`]:
    /// `max_queued_online` (at most `max_queued_messages`) minus the messages waiting for the
    /// client's Receive Maximum. The broker takes no more than this from its channels, so an
    /// online client's queue is never overrun; the rest waits upstream (back-pressure).
    pub fn queue_room(&self) -> usize {
        self.limits
            .max_queued_online
            .min(self.limits.max_queued_messages)
            .saturating_sub(self.session.pending.len())
    }

    /// The broker holds back packets this client has sent (back-pressure) and does not read
    /// more for now: count the client as active at `now`, so keep alive closes only silent
    /// clients ([MQTT-3.1.2-24] is about the client's silence, not the server's reading).
    pub fn hold_keep_alive(&mut self, now: Instant) {
        self.last_rx = self.last_rx.max(now);
    }

    /// Send (or queue) an application message to this client.
    pub fn deliver(&mut self, now: Instant, delivery: Delivery) {
        if self.state == State::Closed {
            return;
        }
        let limits = Arc::clone(&self.limits);
        if !self
            .session
            .enqueue(delivery, limits.max_queued_messages, true)
        {
            self.dropped += 1;
            return;
        }
        if self.state == State::Connected {
            self.pump(now);
        }
    }

    /// Send queued messages while flow control allows.
    fn pump(&mut self, now: Instant) {
        let window = usize::from(self.client_receive_maximum.min(self.limits.max_inflight));
        while let Some(front) = self.session.pending.front() {
            if front.qos != QoS::AtMostOnce && self.session.inflight.len() >= window {
                // [MQTT-3.3.4-9] (5) no more than Receive Maximum unacknowledged QoS 1/2.
                break;
            }
            let Some(delivery) = self.session.pending.pop_front() else {
                break;
            };
            let msg = &delivery.message;
            // [MQTT-3.3.2-5] (5) an expired message is not forwarded.
            if msg.is_expired(now) {
                self.dropped += 1;
                continue;
            }
            let mut properties = msg.properties.clone();
            // [MQTT-3.3.2-6] (5) forward the remaining expiry interval.
            properties.message_expiry_interval = msg.remaining_expiry(now);
            if self.version.is_v5() {
                // [MQTT-3.3.4-3] every matching subscription identifier.
                properties.subscription_identifiers = delivery.subscription_ids.clone();
            } else {
                properties = Default::default();
            }
            let mut publish = Publish {
                dup: false,
                qos: delivery.qos,
                retain: delivery.retain,
                topic: msg.topic.clone(),
                packet_id: 0,
                properties,
                payload: msg.payload.clone(),
            };
            if let Some(max) = self.client_max_packet_size {
                // [MQTT-3.1.2-24] / [MQTT-3.1.2-25] (5) never send a packet larger than the client's maximum;
                // the message is discarded as if delivered.
                let size = encoded_len(&Packet::Publish(publish.clone()), self.version);
                if size > max as usize {
                    self.dropped += 1;
                    continue;
                }
            }
            if publish.qos != QoS::AtMostOnce {
                let Some(id) = self.session.allocate_packet_id() else {
                    self.session.pending.push_front(delivery);
                    break;
                };
                publish.packet_id = id;
                let state = if publish.qos == QoS::AtLeastOnce {
                    OutState::AwaitPubAck
                } else {
                    OutState::AwaitPubRec
                };
                self.session.push_inflight(InflightOut {
                    publish: publish.clone(),
                    state,
                });
            }
            self.transmit_publish(publish);
        }
    }

    /// Queue a PUBLISH, replacing its topic by an alias when the client accepts aliases.
    fn transmit_publish(&mut self, mut publish: Publish) {
        if self.version.is_v5() && self.client_topic_alias_maximum > 0 {
            if let Some(alias) = self.outbound_aliases.get(&publish.topic) {
                publish.properties.topic_alias = Some(*alias);
                publish.topic = TopicName::new();
            } else if self.outbound_aliases.len() < usize::from(self.client_topic_alias_maximum) {
                // [MQTT-3.1.2-26] / [MQTT-3.3.2-11] (5) aliases stay within the client's Topic Alias Maximum.
                let alias = u16::try_from(self.outbound_aliases.len() + 1).unwrap_or(u16::MAX);
                self.outbound_aliases.insert(publish.topic.clone(), alias);
                publish.properties.topic_alias = Some(alias);
            }
        }
        self.transmits.push_back(Packet::Publish(publish));
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
        if self.version.is_v5() && matches!(self.state, State::Connected | State::Authenticating) {
            let mut properties = crate::codec::Properties::default();
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
            Some(CloseKind::NormalDisconnect) | Some(CloseKind::Rejected) | None => None,
            Some(_) => self.will.take(),
        }
    }

    /// The session, to keep in the registry after the connection closes.
    pub fn take_session(&mut self) -> Session {
        std::mem::take(&mut self.session)
    }
}

#[cfg(test)]
mod tests;

/// The Server Keep Alive to send an MQTT 5 client, if any: the imposed `server_keep_alive`,
/// else `max_keep_alive` when the client asks for more or for none (0). MQTT 3.1.x cannot be
/// told, so the client's value holds there.
fn server_keep_alive(limits: &ServerLimits, connect: &Connect) -> Option<u16> {
    if !connect.protocol.is_v5() {
        return None;
    }
    if limits.server_keep_alive.is_some() {
        return limits.server_keep_alive;
    }
    let max = limits.max_keep_alive?;
    (connect.keep_alive == 0 || connect.keep_alive > max).then_some(max)
}

/// Shrink a v5 CONNACK to the client's Maximum Packet Size by leaving out the properties whose
/// absence means the same, or something more conservative: availability flags that are 1
/// (absent means available), Topic Alias Maximum (absent means 0: no aliases), Response
/// Information and user properties (informational).
// [MQTT-3.1.2-24] the Server MUST NOT send packets exceeding the client's Maximum Packet Size.
fn fit_connack(connack: &mut ConnAck, max: u32) {
    let too_big = |c: &ConnAck| {
        let len = encoded_len(&Packet::ConnAck(c.clone()), ProtocolVersion::V5);
        u32::try_from(len).map_or(true, |len| len > max)
    };
    let steps: [fn(&mut Properties); 7] = [
        |p| p.user_properties.clear(),
        |p| p.response_information = None,
        |p| p.retain_available = p.retain_available.filter(|v| *v != 1),
        |p| {
            p.wildcard_subscription_available =
                p.wildcard_subscription_available.filter(|v| *v != 1)
        },
        |p| {
            p.subscription_identifier_available =
                p.subscription_identifier_available.filter(|v| *v != 1)
        },
        |p| p.shared_subscription_available = p.shared_subscription_available.filter(|v| *v != 1),
        |p| p.topic_alias_maximum = None,
    ];
    for step in steps {
        if !too_big(connack) {
            return;
        }
        step(&mut connack.properties);
    }
}

//! The client side of the protocol as a pure state machine: packets and time in, packets to
//! send and events out. No I/O, no clock: every method that needs time takes `now`.
//!
//! It allocates packet identifiers, runs the QoS 1/2 flows in both directions, sends PINGREQ,
//! applies topic aliases, honours the broker's Receive Maximum, Maximum Packet Size, Maximum
//! QoS and Retain Available, and keeps the session across connections so that a reconnect
//! resends what is unacknowledged with DUP. [`Controls`] make it misbehave on purpose.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::{
    encoded_len, ConnAck, Connect, Disconnect, Packet, Properties, ProtocolVersion, PubResponse,
    Publish, QoS, ReasonCode, SubAck, Subscribe, Subscription, TopicName, UnsubAck, Unsubscribe,
    Will,
};

/// Everything a CONNECT can say, with a builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Protocol version (default 5).
    pub version: ProtocolVersion,
    /// Client identifier ("" asks the broker to assign one).
    pub client_id: String,
    /// Clean Session (3.1.1) / Clean Start (5); default true.
    pub clean_start: bool,
    /// Keep alive in seconds (default 60; 0 disables PINGREQ).
    pub keep_alive: u16,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Bytes>,
    /// Will message, with its properties (MQTT 5).
    pub will: Option<Will>,
    /// CONNECT properties (MQTT 5): session expiry, receive maximum, maximum packet size,
    /// topic alias maximum, request response/problem information, user properties,
    /// authentication method/data.
    pub properties: Properties,
}

impl ConnectOptions {
    /// Defaults: MQTT 5, clean start, keep alive 60 s, no will, no credentials.
    pub fn new(client_id: impl Into<String>) -> Self {
        ConnectOptions {
            version: ProtocolVersion::V5,
            client_id: client_id.into(),
            clean_start: true,
            keep_alive: 60,
            username: None,
            password: None,
            will: None,
            properties: Default::default(),
        }
    }

    /// Protocol version.
    pub fn version(mut self, version: ProtocolVersion) -> Self {
        self.version = version;
        self
    }

    /// Clean Session / Clean Start.
    pub fn clean_start(mut self, clean: bool) -> Self {
        self.clean_start = clean;
        self
    }

    /// Keep alive in seconds.
    pub fn keep_alive(mut self, seconds: u16) -> Self {
        self.keep_alive = seconds;
        self
    }

    /// User name and optional password.
    pub fn credentials(mut self, username: impl Into<String>, password: Option<Bytes>) -> Self {
        self.username = Some(username.into());
        self.password = password;
        self
    }

    /// Will message.
    pub fn will(mut self, will: Will) -> Self {
        self.will = Some(will);
        self
    }

    /// Session Expiry Interval in seconds (MQTT 5).
    pub fn session_expiry(mut self, seconds: u32) -> Self {
        self.properties.session_expiry_interval = Some(seconds);
        self
    }

    /// Receive Maximum (MQTT 5): QoS 1/2 messages the broker may have in flight to us.
    pub fn receive_maximum(mut self, max: u16) -> Self {
        self.properties.receive_maximum = Some(max);
        self
    }

    /// Maximum Packet Size (MQTT 5) this client accepts.
    pub fn maximum_packet_size(mut self, max: u32) -> Self {
        self.properties.maximum_packet_size = Some(max);
        self
    }

    /// Topic Alias Maximum (MQTT 5) this client accepts.
    pub fn topic_alias_maximum(mut self, max: u16) -> Self {
        self.properties.topic_alias_maximum = Some(max);
        self
    }

    /// Request Response Information (MQTT 5).
    pub fn request_response_information(mut self, on: bool) -> Self {
        self.properties.request_response_information = Some(u8::from(on));
        self
    }

    /// Request Problem Information (MQTT 5).
    pub fn request_problem_information(mut self, on: bool) -> Self {
        self.properties.request_problem_information = Some(u8::from(on));
        self
    }

    /// Add a user property (MQTT 5).
    pub fn user_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties
            .user_properties
            .push((key.into().into(), value.into().into()));
        self
    }

    /// Authentication method and data (MQTT 5 enhanced authentication).
    pub fn authentication(mut self, method: impl Into<String>, data: Option<Bytes>) -> Self {
        self.properties.authentication_method = Some(method.into().into());
        self.properties.authentication_data = data;
        self
    }

    /// The CONNECT packet these options describe.
    pub fn to_packet(&self) -> Connect {
        let v5 = self.version.is_v5();
        Connect {
            protocol: self.version,
            clean_start: self.clean_start,
            keep_alive: self.keep_alive,
            client_id: self.client_id.clone(),
            will: self.will.clone().map(|mut w| {
                if !v5 {
                    w.properties = Default::default();
                }
                w
            }),
            username: self.username.clone(),
            password: self.password.clone(),
            properties: if v5 {
                self.properties.clone().into()
            } else {
                Default::default()
            },
        }
    }
}

/// Switches that make the client misbehave on purpose, for conformance tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controls {
    /// Answer PUBLISH with PUBACK/PUBREC and PUBREL with PUBCOMP (default true). When false
    /// nothing is acknowledged: the test sends acknowledgements itself.
    pub auto_ack: bool,
    /// Queue acknowledgements instead of sending them, until [`ClientState::release_held`].
    pub hold_acks: bool,
    /// Send acknowledgements only this long after the packet they answer.
    pub ack_delay: Option<Duration>,
    /// On PUBREC, never send the PUBREL (the QoS 2 flow stalls half way).
    pub never_send_pubrel: bool,
    /// Send PINGREQ when keep alive requires it (default true).
    pub auto_ping: bool,
    /// Replace topics with aliases when the broker allows them (default false).
    pub use_topic_aliases: bool,
    /// Refuse to send what the broker's CONNACK forbids (default true). When false the
    /// client exceeds Receive Maximum, Maximum Packet Size, Maximum QoS on request.
    pub enforce_limits: bool,
}

impl Default for Controls {
    fn default() -> Self {
        Controls {
            auto_ack: true,
            hold_acks: false,
            ack_delay: None,
            never_send_pubrel: false,
            auto_ping: true,
            use_topic_aliases: false,
            enforce_limits: true,
        }
    }
}

/// In which order held acknowledgements go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOrder {
    /// The order they were produced in.
    InOrder,
    /// Reversed: out of order on purpose.
    Reversed,
}

/// What happened, for the application or the test.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The broker accepted the connection.
    Connected(ConnAck),
    /// An application message (topic alias already resolved).
    Message(Publish),
    /// An outgoing publish finished: PUBACK (QoS 1), PUBCOMP (QoS 2), or a PUBACK/PUBREC
    /// with an error reason code. QoS 0 publishes finish when handed to the transport.
    Published {
        /// Its packet identifier (0 for QoS 0).
        packet_id: u16,
        /// Its QoS.
        qos: QoS,
        /// The reason code of the final acknowledgement.
        reason: ReasonCode,
    },
    /// A PUBREC arrived (QoS 2 first half); reported only while
    /// [`Controls::never_send_pubrel`] is set.
    PubRec(PubResponse),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGRESP.
    PingResp,
    /// The broker sent DISCONNECT (MQTT 5).
    Disconnected(Disconnect),
    /// AUTH (MQTT 5).
    Auth(crate::codec::Auth),
    /// A publish of the previous session was dropped because the broker had no session.
    SessionLost {
        /// Its packet identifier.
        packet_id: u16,
    },
}

/// Why the state machine cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The broker broke the protocol; a v5 client sends DISCONNECT with `reason` and closes.
    #[error("{message}")]
    Protocol {
        /// Reason code for the DISCONNECT.
        reason: ReasonCode,
        /// What the broker did.
        message: String,
    },
    /// The broker refused the connection in CONNACK.
    #[error("connection refused: {0}")]
    Refused(ReasonCode),
    /// No PINGRESP within keep alive after a PINGREQ.
    #[error("no PINGRESP within {0:?}")]
    KeepAliveTimeout(Duration),
    /// The command cannot be honoured (limits, no free packet id, not connected).
    #[error("{0}")]
    Usage(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutStage {
    /// Waiting for send quota.
    Queued,
    /// QoS 1 sent, waiting for PUBACK.
    AwaitPubAck,
    /// QoS 2 sent, waiting for PUBREC.
    AwaitPubRec,
    /// PUBREC received, PUBREL withheld by [`Controls::never_send_pubrel`].
    PubRelHeld,
    /// PUBREL sent, waiting for PUBCOMP.
    AwaitPubComp,
}

#[derive(Debug, Clone)]
struct Outgoing {
    seq: u64,
    publish: Publish,
    stage: OutStage,
}

/// Connection phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No connection.
    Disconnected,
    /// CONNECT queued or sent, waiting for CONNACK.
    Connecting,
    /// CONNACK success received.
    Connected,
}

/// Limits the broker announced in CONNACK (MQTT 5 defaults when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerLimits {
    /// Receive Maximum: QoS 1/2 publishes the broker accepts in flight.
    pub receive_maximum: u16,
    /// Maximum Packet Size, if announced.
    pub maximum_packet_size: Option<u32>,
    /// Topic Alias Maximum (0: none).
    pub topic_alias_maximum: u16,
    /// Maximum QoS.
    pub maximum_qos: QoS,
    /// Retain Available.
    pub retain_available: bool,
}

impl Default for BrokerLimits {
    fn default() -> Self {
        BrokerLimits {
            receive_maximum: u16::MAX,
            maximum_packet_size: None,
            topic_alias_maximum: 0,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
        }
    }
}

/// The client protocol state machine (see the module documentation).
#[derive(Debug)]
pub struct ClientState {
    options: ConnectOptions,
    /// Switches for misbehaviour; change them at any time.
    pub controls: Controls,
    phase: Phase,
    limits: BrokerLimits,
    keep_alive: Option<Duration>,
    last_sent: Option<Instant>,
    ping_sent: Option<Instant>,
    next_id: u16,
    next_seq: u64,
    /// Outgoing QoS 1/2 publishes by packet id (session state).
    outgoing: HashMap<u16, Outgoing>,
    /// Ids of queued (not yet sent) publishes, oldest first.
    queue: VecDeque<u16>,
    /// Ids used by SUBSCRIBE/UNSUBSCRIBE waiting for their ack.
    pending_requests: HashSet<u16>,
    /// Incoming QoS 2 ids for which PUBREC was sent and PUBREL not yet seen (session state).
    incoming_qos2: HashSet<u16>,
    send_quota: u16,
    aliases_out: HashMap<TopicName, u16>,
    aliases_in: HashMap<u16, TopicName>,
    held: VecDeque<(Option<Instant>, Packet)>,
    transmits: VecDeque<Packet>,
    events: VecDeque<Event>,
}

impl ClientState {
    /// A disconnected client that will connect with `options`.
    pub fn new(options: ConnectOptions) -> Self {
        ClientState {
            options,
            controls: Controls::default(),
            phase: Phase::Disconnected,
            limits: BrokerLimits::default(),
            keep_alive: None,
            last_sent: None,
            ping_sent: None,
            next_id: 1,
            next_seq: 0,
            outgoing: HashMap::new(),
            queue: VecDeque::new(),
            pending_requests: HashSet::new(),
            incoming_qos2: HashSet::new(),
            send_quota: u16::MAX,
            aliases_out: HashMap::new(),
            aliases_in: HashMap::new(),
            held: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    // ---- getters ----

    /// The options CONNECT is built from.
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }

    /// Mutable options (e.g. clear `clean_start` before a reconnect).
    pub fn options_mut(&mut self) -> &mut ConnectOptions {
        &mut self.options
    }

    /// The protocol version.
    pub fn version(&self) -> ProtocolVersion {
        self.options.version
    }

    /// Connection phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The broker's limits from the last CONNACK.
    pub fn limits(&self) -> BrokerLimits {
        self.limits
    }

    /// Outgoing QoS 1/2 publishes not yet completed (queued ones included).
    pub fn in_flight(&self) -> usize {
        self.outgoing.len()
    }

    /// Remaining send quota (Receive Maximum minus unacknowledged QoS 1/2 publishes).
    pub fn send_quota(&self) -> u16 {
        self.send_quota
    }

    /// Acknowledgements currently held back.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    // ---- commands ----

    /// Start a connection: queue CONNECT. Per-connection state (aliases, held acks, ping)
    /// is reset; session state (in-flight messages, incoming QoS 2 ids) is kept.
    pub fn connect(&mut self, _now: Instant) {
        self.reset_connection();
        self.phase = Phase::Connecting;
        self.transmits
            .push_back(Packet::Connect(Box::new(self.options.to_packet())));
    }

    /// The network connection is gone (either side): per-connection state is dropped.
    pub fn connection_lost(&mut self) {
        self.phase = Phase::Disconnected;
        self.reset_connection();
    }

    fn reset_connection(&mut self) {
        // [MQTT-3.3.2-7] topic alias mappings never carry over to another connection.
        self.aliases_in.clear();
        self.aliases_out.clear();
        self.held.clear();
        self.transmits.clear();
        self.ping_sent = None;
        self.last_sent = None;
        self.pending_requests.clear();
    }

    /// Queue a PUBLISH; returns its packet identifier (0 for QoS 0).
    ///
    /// QoS 1/2 get an unused packet id ([MQTT-4.3.2-1], [MQTT-4.3.3-1]) and wait for send
    /// quota ([MQTT-4.9.0-2]).
    pub fn publish(&mut self, now: Instant, mut publish: Publish) -> Result<u16, StateError> {
        if self.phase != Phase::Connected {
            return Err(StateError::Usage("not connected".into()));
        }
        if self.controls.enforce_limits {
            // [MQTT-3.2.2-11]
            if publish.qos > self.limits.maximum_qos {
                return Err(StateError::Usage(format!(
                    "QoS {} exceeds the broker's Maximum QoS {}",
                    publish.qos.as_u8(),
                    self.limits.maximum_qos.as_u8()
                )));
            }
            // [MQTT-3.2.2-14]
            if publish.retain && !self.limits.retain_available {
                return Err(StateError::Usage(
                    "the broker does not support retained messages".into(),
                ));
            }
        }
        publish.dup = false;
        if publish.qos == QoS::AtMostOnce {
            publish.packet_id = 0;
            self.check_size(&Packet::Publish(publish.clone()))?;
            self.transmit_publish(now, publish);
            self.events.push_back(Event::Published {
                packet_id: 0,
                qos: QoS::AtMostOnce,
                reason: ReasonCode::SUCCESS,
            });
            return Ok(0);
        }
        let id = self.allocate_id()?;
        publish.packet_id = id;
        self.check_size(&Packet::Publish(publish.clone()))?;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outgoing.insert(
            id,
            Outgoing {
                seq,
                publish,
                stage: OutStage::Queued,
            },
        );
        self.queue.push_back(id);
        self.pump_queue(now);
        Ok(id)
    }

    /// Queue a SUBSCRIBE; returns its packet id.
    pub fn subscribe(
        &mut self,
        subscriptions: Vec<Subscription>,
        properties: Properties,
    ) -> Result<u16, StateError> {
        let id = self.allocate_id()?;
        let packet = Packet::Subscribe(Subscribe {
            packet_id: id,
            properties: properties.into(),
            subscriptions,
        });
        self.check_size(&packet)?;
        self.pending_requests.insert(id);
        self.transmits.push_back(packet);
        Ok(id)
    }

    /// Queue an UNSUBSCRIBE; returns its packet id.
    pub fn unsubscribe(
        &mut self,
        filters: Vec<String>,
        properties: Properties,
    ) -> Result<u16, StateError> {
        let id = self.allocate_id()?;
        let packet = Packet::Unsubscribe(Unsubscribe {
            packet_id: id,
            properties: properties.into(),
            filters,
        });
        self.check_size(&packet)?;
        self.pending_requests.insert(id);
        self.transmits.push_back(packet);
        Ok(id)
    }

    /// Queue a DISCONNECT; the connection is considered gone once it is sent.
    pub fn disconnect(&mut self, disconnect: Disconnect) {
        self.transmits.push_back(Packet::Disconnect(disconnect));
    }

    /// Queue any packet as it is (tests that misbehave: out-of-order acks, duplicates).
    pub fn send_packet(&mut self, packet: Packet) {
        self.transmits.push_back(packet);
    }

    /// Send the held acknowledgements now, in the given order.
    pub fn release_held(&mut self, order: ReleaseOrder) {
        let mut held: Vec<Packet> = self.held.drain(..).map(|(_, p)| p).collect();
        if order == ReleaseOrder::Reversed {
            held.reverse();
        }
        self.transmits.extend(held);
    }

    /// Send the PUBRELs withheld by [`Controls::never_send_pubrel`].
    pub fn release_pubrels(&mut self) {
        let mut ids: Vec<(u64, u16)> = self
            .outgoing
            .iter()
            .filter(|(_, o)| o.stage == OutStage::PubRelHeld)
            .map(|(id, o)| (o.seq, *id))
            .collect();
        ids.sort_unstable();
        for (_, id) in ids {
            if let Some(o) = self.outgoing.get_mut(&id) {
                o.stage = OutStage::AwaitPubComp;
            }
            self.transmits.push_back(pubrel(id));
        }
    }

    // ---- inputs ----

    /// A packet from the broker.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet) -> Result<(), StateError> {
        if self.phase == Phase::Connecting
            && !matches!(packet, Packet::ConnAck(_) | Packet::Auth(_))
        {
            return Err(protocol(format!(
                "{:?} before CONNACK",
                packet.packet_type()
            )));
        }
        match packet {
            Packet::ConnAck(ack) => self.on_connack(now, ack),
            Packet::Publish(p) => self.on_publish(now, p),
            Packet::PubAck(r) => self.on_puback(now, r),
            Packet::PubRec(r) => self.on_pubrec(now, r),
            Packet::PubRel(r) => {
                // [MQTT-4.3.3-11] answer PUBREL with PUBCOMP, even for an unknown id.
                let known = self.incoming_qos2.remove(&r.packet_id);
                let reason = if known || !self.version().is_v5() {
                    ReasonCode::SUCCESS
                } else {
                    ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
                };
                self.ack(now, Packet::PubComp(response(r.packet_id, reason)));
                Ok(())
            }
            Packet::PubComp(r) => self.on_pubcomp(now, r),
            Packet::SubAck(s) => {
                if !self.pending_requests.remove(&s.packet_id) {
                    return Err(protocol(format!("SUBACK for unknown id {}", s.packet_id)));
                }
                self.events.push_back(Event::SubAck(s));
                Ok(())
            }
            Packet::UnsubAck(u) => {
                if !self.pending_requests.remove(&u.packet_id) {
                    return Err(protocol(format!("UNSUBACK for unknown id {}", u.packet_id)));
                }
                self.events.push_back(Event::UnsubAck(u));
                Ok(())
            }
            Packet::PingResp => {
                self.ping_sent = None;
                self.events.push_back(Event::PingResp);
                Ok(())
            }
            Packet::Disconnect(d) => {
                self.phase = Phase::Disconnected;
                self.events.push_back(Event::Disconnected(d));
                Ok(())
            }
            Packet::Auth(a) => {
                self.events.push_back(Event::Auth(a));
                Ok(())
            }
            other => Err(protocol(format!(
                "a broker must not send {:?}",
                other.packet_type()
            ))),
        }
    }

    fn on_connack(&mut self, now: Instant, ack: ConnAck) -> Result<(), StateError> {
        if self.phase != Phase::Connecting {
            return Err(protocol("CONNACK on an established connection".into()));
        }
        if !ack.code.is_success() || (!self.version().is_v5() && ack.code.0 != 0) {
            self.phase = Phase::Disconnected;
            return Err(StateError::Refused(ack.code));
        }
        self.phase = Phase::Connected;
        let p = &ack.properties;
        self.limits = BrokerLimits {
            receive_maximum: p.receive_maximum.unwrap_or(u16::MAX),
            maximum_packet_size: p.maximum_packet_size,
            topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
            maximum_qos: p
                .maximum_qos
                .and_then(QoS::from_u8)
                .unwrap_or(QoS::ExactlyOnce),
            retain_available: p.retain_available != Some(0),
        };
        // [MQTT-3.1.2-21] the Server Keep Alive replaces ours.
        let keep_alive = p.server_keep_alive.unwrap_or(self.options.keep_alive);
        self.keep_alive = (keep_alive > 0).then(|| Duration::from_secs(keep_alive.into()));
        if let Some(id) = &p.assigned_client_identifier {
            // Reconnects must use the identifier the broker assigned.
            self.options.client_id = id.to_string();
        }
        // [MQTT-4.9.0-1] the send quota starts at the broker's Receive Maximum.
        self.send_quota = self.limits.receive_maximum;
        if ack.session_present {
            self.resend_session(now);
        } else {
            // No session on the broker: ours is meaningless now.
            let mut lost: Vec<(u64, u16)> =
                self.outgoing.iter().map(|(id, o)| (o.seq, *id)).collect();
            lost.sort_unstable();
            for (_, packet_id) in lost {
                self.events.push_back(Event::SessionLost { packet_id });
            }
            self.outgoing.clear();
            self.queue.clear();
            self.incoming_qos2.clear();
        }
        self.events.push_back(Event::Connected(ack));
        self.pump_queue(now);
        Ok(())
    }

    /// [MQTT-4.4.0-1] resend unacknowledged PUBLISH (with DUP) and PUBREL, in their
    /// original order and with their original packet ids.
    fn resend_session(&mut self, now: Instant) {
        let mut order: Vec<(u64, u16)> = self.outgoing.iter().map(|(id, o)| (o.seq, *id)).collect();
        order.sort_unstable();
        for (_, id) in order {
            let Some(o) = self.outgoing.get_mut(&id) else {
                continue;
            };
            match o.stage {
                OutStage::Queued => {}
                OutStage::AwaitPubAck | OutStage::AwaitPubRec => {
                    let mut p = o.publish.clone();
                    p.dup = true;
                    self.send_quota = self.send_quota.saturating_sub(1);
                    self.transmit_publish(now, p);
                }
                OutStage::AwaitPubComp | OutStage::PubRelHeld => {
                    // Still unacknowledged for flow control until PUBCOMP.
                    self.send_quota = self.send_quota.saturating_sub(1);
                    if !self.controls.never_send_pubrel {
                        o.stage = OutStage::AwaitPubComp;
                        self.transmits.push_back(pubrel(id));
                    }
                }
            }
        }
    }

    fn on_publish(&mut self, now: Instant, mut p: Publish) -> Result<(), StateError> {
        if let Some(alias) = p.properties.topic_alias {
            let max = self.options.properties.topic_alias_maximum.unwrap_or(0);
            // [MQTT-3.3.2-11] no alias above what we announced; [MQTT-3.3.2-8] never 0.
            if alias == 0 || alias > max {
                return Err(StateError::Protocol {
                    reason: ReasonCode::TOPIC_ALIAS_INVALID,
                    message: format!("topic alias {alias} outside 1..={max}"),
                });
            }
            if p.topic.is_empty() {
                match self.aliases_in.get(&alias) {
                    Some(topic) => p.topic = topic.clone(),
                    None => {
                        return Err(StateError::Protocol {
                            reason: ReasonCode::PROTOCOL_ERROR,
                            message: format!("unknown topic alias {alias}"),
                        })
                    }
                }
            } else {
                self.aliases_in.insert(alias, p.topic.clone());
            }
        } else if p.topic.is_empty() {
            return Err(protocol("PUBLISH with an empty topic and no alias".into()));
        }
        match p.qos {
            QoS::AtMostOnce => self.events.push_back(Event::Message(p)),
            QoS::AtLeastOnce => {
                let id = p.packet_id;
                self.check_inbound_quota()?;
                // [MQTT-4.3.2-4], [MQTT-4.3.2-5]: every QoS 1 PUBLISH is a new message.
                self.events.push_back(Event::Message(p));
                self.ack(now, Packet::PubAck(response(id, ReasonCode::SUCCESS)));
            }
            QoS::ExactlyOnce => {
                let id = p.packet_id;
                // [MQTT-4.3.3-10] a repeated id before PUBREL is not delivered again.
                if !self.incoming_qos2.contains(&id) {
                    self.check_inbound_quota()?;
                    self.incoming_qos2.insert(id);
                    self.events.push_back(Event::Message(p));
                }
                // [MQTT-4.3.3-8]
                self.ack(now, Packet::PubRec(response(id, ReasonCode::SUCCESS)));
            }
        }
        Ok(())
    }

    /// [MQTT-3.3.4-9] the broker must not exceed the Receive Maximum we announced.
    fn check_inbound_quota(&self) -> Result<(), StateError> {
        let Some(max) = self.options.properties.receive_maximum else {
            return Ok(());
        };
        if !self.version().is_v5() {
            return Ok(());
        }
        let held_pubacks = self
            .held
            .iter()
            .filter(|(_, p)| matches!(p, Packet::PubAck(_)))
            .count();
        if self.incoming_qos2.len() + held_pubacks >= usize::from(max) {
            return Err(StateError::Protocol {
                reason: ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                message: format!("broker sent more than Receive Maximum {max} unacknowledged"),
            });
        }
        Ok(())
    }

    fn on_puback(&mut self, now: Instant, r: PubResponse) -> Result<(), StateError> {
        match self.outgoing.get(&r.packet_id).map(|o| o.stage) {
            Some(OutStage::AwaitPubAck) => {
                self.outgoing.remove(&r.packet_id);
                self.complete(now, r.packet_id, QoS::AtLeastOnce, r.reason);
                Ok(())
            }
            _ => Err(protocol(format!(
                "PUBACK for id {} which is not awaiting one",
                r.packet_id
            ))),
        }
    }

    fn on_pubrec(&mut self, now: Instant, r: PubResponse) -> Result<(), StateError> {
        let id = r.packet_id;
        let stage = self.outgoing.get(&id).map(|o| o.stage);
        if self.controls.never_send_pubrel {
            // Only reported when the flow stalls on purpose: the test wants to see it.
            self.events.push_back(Event::PubRec(r.clone()));
        }
        match stage {
            Some(OutStage::AwaitPubRec) if !r.reason.is_success() => {
                // [MQTT-4.4.0-2] an error PUBREC ends the flow: no PUBREL, no retransmit.
                self.outgoing.remove(&id);
                self.complete(now, id, QoS::ExactlyOnce, r.reason);
                Ok(())
            }
            Some(OutStage::AwaitPubRec | OutStage::AwaitPubComp) => {
                let held = self.controls.never_send_pubrel;
                if let Some(o) = self.outgoing.get_mut(&id) {
                    o.stage = if held {
                        OutStage::PubRelHeld
                    } else {
                        OutStage::AwaitPubComp
                    };
                }
                if !held {
                    // [MQTT-4.3.3-4]
                    self.transmits.push_back(pubrel(id));
                }
                Ok(())
            }
            Some(OutStage::PubRelHeld) => Ok(()),
            _ => Err(protocol(format!(
                "PUBREC for id {id} which is not awaiting one"
            ))),
        }
    }

    fn on_pubcomp(&mut self, now: Instant, r: PubResponse) -> Result<(), StateError> {
        match self.outgoing.get(&r.packet_id).map(|o| o.stage) {
            Some(OutStage::AwaitPubComp) => {
                self.outgoing.remove(&r.packet_id);
                self.complete(now, r.packet_id, QoS::ExactlyOnce, r.reason);
                Ok(())
            }
            _ => Err(protocol(format!(
                "PUBCOMP for id {} which is not awaiting one",
                r.packet_id
            ))),
        }
    }

    fn complete(&mut self, now: Instant, packet_id: u16, qos: QoS, reason: ReasonCode) {
        self.send_quota = self
            .send_quota
            .saturating_add(1)
            .min(self.limits.receive_maximum);
        self.events.push_back(Event::Published {
            packet_id,
            qos,
            reason,
        });
        self.pump_queue(now);
    }

    /// Time passed: release delayed acks, send PINGREQ, detect a missing PINGRESP.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), StateError> {
        while let Some((Some(due), _)) = self.held.front() {
            if *due > now {
                break;
            }
            if let Some((_, p)) = self.held.pop_front() {
                self.transmits.push_back(p);
            }
        }
        if self.phase != Phase::Connected {
            return Ok(());
        }
        let Some(keep_alive) = self.keep_alive else {
            return Ok(());
        };
        if let Some(sent) = self.ping_sent {
            if now >= sent + keep_alive {
                return Err(StateError::KeepAliveTimeout(keep_alive));
            }
        }
        // [MQTT-3.1.2-20] PINGREQ when nothing else was sent for a keep alive period.
        if self.controls.auto_ping && self.ping_sent.is_none() {
            if let Some(last) = self.last_sent {
                if now >= last + keep_alive {
                    self.ping_sent = Some(now);
                    self.transmits.push_back(Packet::PingReq);
                }
            }
        }
        Ok(())
    }

    // ---- outputs ----

    /// The next packet to write, with topic aliases applied. Call [`ClientState::on_sent`]
    /// once it is written.
    pub fn poll_transmit(&mut self) -> Option<Packet> {
        let mut packet = self.transmits.pop_front()?;
        if let Packet::Publish(p) = &mut packet {
            self.apply_alias(p);
        }
        Some(packet)
    }

    /// A packet was written at `now` (for keep alive).
    pub fn on_sent(&mut self, now: Instant, packet: &Packet) {
        self.last_sent = Some(now);
        if let Packet::Disconnect(_) = packet {
            self.phase = Phase::Disconnected;
        }
    }

    /// When [`ClientState::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let held = self.held.front().and_then(|(due, _)| *due);
        let keep_alive = match (self.phase, self.keep_alive) {
            (Phase::Connected, Some(ka)) => match self.ping_sent {
                Some(sent) => Some(sent + ka),
                None if self.controls.auto_ping => self.last_sent.map(|t| t + ka),
                None => None,
            },
            _ => None,
        };
        match (held, keep_alive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- helpers ----

    fn allocate_id(&mut self) -> Result<u16, StateError> {
        for _ in 0..u16::MAX {
            let id = self.next_id;
            self.next_id = if id == u16::MAX { 1 } else { id + 1 };
            if !self.outgoing.contains_key(&id) && !self.pending_requests.contains(&id) {
                return Ok(id);
            }
        }
        Err(StateError::Usage(
            "all 65535 packet identifiers in use".into(),
        ))
    }

    fn check_size(&self, packet: &Packet) -> Result<(), StateError> {
        // [MQTT-3.2.2-15] never send a packet larger than the broker's Maximum Packet Size.
        if let (true, Some(max)) = (
            self.controls.enforce_limits,
            self.limits.maximum_packet_size,
        ) {
            let len = encoded_len(packet, self.version());
            if len > max as usize {
                return Err(StateError::Usage(format!(
                    "packet of {len} bytes exceeds the broker's Maximum Packet Size {max}"
                )));
            }
        }
        Ok(())
    }

    /// Send queued QoS 1/2 publishes while the send quota allows ([MQTT-4.9.0-2]).
    fn pump_queue(&mut self, now: Instant) {
        if self.phase != Phase::Connected {
            return;
        }
        while let Some(&id) = self.queue.front() {
            if self.send_quota == 0 && self.controls.enforce_limits {
                break;
            }
            self.queue.pop_front();
            let Some(o) = self.outgoing.get_mut(&id) else {
                continue;
            };
            if o.stage != OutStage::Queued {
                continue;
            }
            o.stage = if o.publish.qos == QoS::AtLeastOnce {
                OutStage::AwaitPubAck
            } else {
                OutStage::AwaitPubRec
            };
            let p = o.publish.clone();
            self.send_quota = self.send_quota.saturating_sub(1);
            self.transmit_publish(now, p);
        }
    }

    fn transmit_publish(&mut self, _now: Instant, p: Publish) {
        self.transmits.push_back(Packet::Publish(p));
    }

    /// Replace the topic by an alias when allowed ([MQTT-3.2.2-17], [MQTT-3.3.2-9]).
    fn apply_alias(&mut self, p: &mut Publish) {
        let max = self.limits.topic_alias_maximum;
        if !self.controls.use_topic_aliases
            || max == 0
            || !self.version().is_v5()
            || p.properties.topic_alias.is_some()
        {
            return;
        }
        if let Some(alias) = self.aliases_out.get(&p.topic) {
            p.properties.topic_alias = Some(*alias);
            p.topic = TopicName::new();
        } else if self.aliases_out.len() < usize::from(max) {
            // Aliases 1..=max, never 0 ([MQTT-3.3.2-8]).
            let alias = (self.aliases_out.len() + 1) as u16;
            self.aliases_out.insert(p.topic.clone(), alias);
            p.properties.topic_alias = Some(alias);
        }
    }

    /// Send an acknowledgement now, later, or never, as the controls say.
    fn ack(&mut self, now: Instant, packet: Packet) {
        if !self.controls.auto_ack {
            return;
        }
        if self.controls.hold_acks {
            self.held.push_back((None, packet));
        } else if let Some(delay) = self.controls.ack_delay {
            self.held.push_back((Some(now + delay), packet));
        } else {
            self.transmits.push_back(packet);
        }
    }
}

fn response(packet_id: u16, reason: ReasonCode) -> PubResponse {
    PubResponse {
        packet_id,
        reason,
        properties: Default::default(),
    }
}

fn pubrel(packet_id: u16) -> Packet {
    Packet::PubRel(response(packet_id, ReasonCode::SUCCESS))
}

fn protocol(message: String) -> StateError {
    StateError::Protocol {
        reason: ReasonCode::PROTOCOL_ERROR,
        message,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::codec::SubscriptionOptions;

    fn t0() -> Instant {
        Instant::now()
    }

    fn publish(topic: &str, qos: QoS) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.into(),
            packet_id: 0,
            properties: Default::default(),
            payload: Bytes::from_static(b"x"),
        }
    }

    fn drain(s: &mut ClientState, now: Instant) -> Vec<Packet> {
        let mut out = Vec::new();
        while let Some(p) = s.poll_transmit() {
            s.on_sent(now, &p);
            out.push(p);
        }
        out
    }

    fn events(s: &mut ClientState) -> Vec<Event> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    fn connected(options: ConnectOptions, props: Properties, now: Instant) -> ClientState {
        let mut s = ClientState::new(options);
        s.connect(now);
        assert!(matches!(drain(&mut s, now)[..], [Packet::Connect(_)]));
        s.handle_packet(
            now,
            Packet::ConnAck(ConnAck {
                session_present: false,
                code: ReasonCode::SUCCESS,
                properties: props.into(),
            }),
        )
        .unwrap();
        assert!(matches!(events(&mut s)[..], [Event::Connected(_)]));
        s
    }

    fn ack(id: u16) -> PubResponse {
        response(id, ReasonCode::SUCCESS)
    }

    #[test]
    fn qos1_and_qos2_outgoing_flows_complete() {
        let now = t0();
        let mut s = connected(ConnectOptions::new("c"), Properties::default(), now);
        let a = s.publish(now, publish("t", QoS::AtLeastOnce)).unwrap();
        let b = s.publish(now, publish("t", QoS::ExactlyOnce)).unwrap();
        assert_ne!(a, b);
        assert!(a != 0 && b != 0);
        let sent = drain(&mut s, now);
        assert_eq!(sent.len(), 2);
        s.handle_packet(now, Packet::PubAck(ack(a))).unwrap();
        s.handle_packet(now, Packet::PubRec(ack(b))).unwrap();
        // [MQTT-4.3.3-4] PUBREL follows PUBREC.
        assert_eq!(drain(&mut s, now), vec![pubrel(b)]);
        s.handle_packet(now, Packet::PubComp(ack(b))).unwrap();
        let ev = events(&mut s);
        assert!(ev.contains(&Event::Published {
            packet_id: a,
            qos: QoS::AtLeastOnce,
            reason: ReasonCode::SUCCESS
        }));
        assert!(ev.contains(&Event::Published {
            packet_id: b,
            qos: QoS::ExactlyOnce,
            reason: ReasonCode::SUCCESS
        }));
        assert_eq!(s.in_flight(), 0);
        // An ack for nothing is a protocol violation.
        assert!(s.handle_packet(now, Packet::PubAck(ack(a))).is_err());
    }

    #[test]
    fn receive_maximum_queues_publishes_until_acked() {
        let now = t0();
        let props = Properties {
            receive_maximum: Some(2),
            ..Default::default()
        };
        let mut s = connected(ConnectOptions::new("c"), props, now);
        let ids: Vec<u16> = (0..5)
            .map(|_| s.publish(now, publish("t", QoS::AtLeastOnce)).unwrap())
            .collect();
        // [MQTT-4.9.0-2] only Receive Maximum publishes go out.
        assert_eq!(drain(&mut s, now).len(), 2);
        assert_eq!(s.send_quota(), 0);
        // [MQTT-4.9.0-3] other packets still go out with zero quota.
        s.subscribe(
            vec![Subscription {
                filter: "f".into(),
                options: SubscriptionOptions::default(),
            }],
            Properties::default(),
        )
        .unwrap();
        assert!(matches!(drain(&mut s, now)[..], [Packet::Subscribe(_)]));
        s.handle_packet(now, Packet::PubAck(ack(ids[0]))).unwrap();
        let next = drain(&mut s, now);
        assert!(matches!(&next[..], [Packet::Publish(p)] if p.packet_id == ids[2]));
    }

    #[test]
    fn incoming_qos2_is_delivered_once() {
        let now = t0();
        let mut s = connected(ConnectOptions::new("c"), Properties::default(), now);
        let mut p = publish("t", QoS::ExactlyOnce);
        p.packet_id = 7;
        s.handle_packet(now, Packet::Publish(p.clone())).unwrap();
        p.dup = true;
        s.handle_packet(now, Packet::Publish(p.clone())).unwrap();
        // [MQTT-4.3.3-10] two PUBRECs, one delivery.
        let sent = drain(&mut s, now);
        assert_eq!(sent, vec![Packet::PubRec(ack(7)), Packet::PubRec(ack(7))]);
        let msgs = events(&mut s)
            .into_iter()
            .filter(|e| matches!(e, Event::Message(_)))
            .count();
        assert_eq!(msgs, 1);
        s.handle_packet(now, Packet::PubRel(ack(7))).unwrap();
        assert_eq!(drain(&mut s, now), vec![Packet::PubComp(ack(7))]);
        // [MQTT-4.3.3-12] after PUBCOMP the id is a new message.
        s.handle_packet(now, Packet::Publish(p)).unwrap();
        assert_eq!(events(&mut s).len(), 1);
    }

    #[test]
    fn keep_alive_pings_and_detects_a_missing_pingresp() {
        let now = t0();
        let mut s = connected(
            ConnectOptions::new("c").keep_alive(10),
            Properties::default(),
            now,
        );
        assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(10)));
        s.handle_timeout(now + Duration::from_secs(9)).unwrap();
        assert!(drain(&mut s, now).is_empty());
        let t1 = now + Duration::from_secs(10);
        s.handle_timeout(t1).unwrap();
        assert_eq!(drain(&mut s, t1), vec![Packet::PingReq]);
        s.handle_packet(t1, Packet::PingResp).unwrap();
        let t2 = t1 + Duration::from_secs(10);
        s.handle_timeout(t2).unwrap();
        assert_eq!(drain(&mut s, t2), vec![Packet::PingReq]);
        // No PINGRESP within keep alive.
        assert_eq!(
            s.handle_timeout(t2 + Duration::from_secs(10)),
            Err(StateError::KeepAliveTimeout(Duration::from_secs(10)))
        );
    }

    #[test]
    fn server_keep_alive_overrides_ours() {
        let now = t0();
        let props = Properties {
            server_keep_alive: Some(3),
            ..Default::default()
        };
        let s = connected(ConnectOptions::new("c").keep_alive(60), props, now);
        // [MQTT-3.1.2-21]; nothing sent yet after CONNACK in this test beyond CONNECT.
        assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(3)));
    }

    #[test]
    fn reconnect_resends_with_dup_and_pubrel_in_order() {
        let now = t0();
        let mut s = connected(
            ConnectOptions::new("c").clean_start(false),
            Properties::default(),
            now,
        );
        let a = s.publish(now, publish("a", QoS::AtLeastOnce)).unwrap();
        let b = s.publish(now, publish("b", QoS::ExactlyOnce)).unwrap();
        let c = s.publish(now, publish("c", QoS::ExactlyOnce)).unwrap();
        drain(&mut s, now);
        s.handle_packet(now, Packet::PubRec(ack(b))).unwrap();
        drain(&mut s, now);
        s.connection_lost();
        s.connect(now);
        let connect = drain(&mut s, now);
        assert!(matches!(&connect[..], [Packet::Connect(c)] if !c.clean_start));
        s.handle_packet(
            now,
            Packet::ConnAck(ConnAck {
                session_present: true,
                ..Default::default()
            }),
        )
        .unwrap();
        // [MQTT-4.4.0-1] original ids and order; PUBLISH with DUP, PUBREL for b.
        let resent = drain(&mut s, now);
        assert_eq!(resent.len(), 3);
        assert!(matches!(&resent[0], Packet::Publish(p) if p.packet_id == a && p.dup));
        assert_eq!(resent[1], pubrel(b));
        assert!(matches!(&resent[2], Packet::Publish(p) if p.packet_id == c && p.dup));
    }

    #[test]
    fn no_session_on_the_broker_drops_ours() {
        let now = t0();
        let mut s = connected(ConnectOptions::new("c"), Properties::default(), now);
        let a = s.publish(now, publish("a", QoS::AtLeastOnce)).unwrap();
        drain(&mut s, now);
        s.connection_lost();
        s.connect(now);
        drain(&mut s, now);
        s.handle_packet(now, Packet::ConnAck(ConnAck::default()))
            .unwrap();
        assert!(drain(&mut s, now).is_empty());
        assert!(events(&mut s).contains(&Event::SessionLost { packet_id: a }));
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn topic_aliases_outgoing_and_incoming() {
        let now = t0();
        let props = Properties {
            topic_alias_maximum: Some(1),
            ..Default::default()
        };
        let mut s = connected(ConnectOptions::new("c").topic_alias_maximum(2), props, now);
        s.controls.use_topic_aliases = true;
        for topic in ["a", "a", "b"] {
            s.publish(now, publish(topic, QoS::AtMostOnce)).unwrap();
        }
        let sent = drain(&mut s, now);
        let seen: Vec<(String, Option<u16>)> = sent
            .iter()
            .map(|p| match p {
                Packet::Publish(p) => (p.topic.to_string(), p.properties.topic_alias),
                _ => panic!(),
            })
            .collect();
        // First use carries topic and alias, then the alias alone; the maximum is 1, so b
        // goes without one.
        assert_eq!(
            seen,
            vec![
                ("a".into(), Some(1)),
                (String::new(), Some(1)),
                ("b".into(), None)
            ]
        );
        let mut p = publish("x/y", QoS::AtMostOnce);
        p.properties.topic_alias = Some(2);
        s.handle_packet(now, Packet::Publish(p.clone())).unwrap();
        p.topic = TopicName::new();
        s.handle_packet(now, Packet::Publish(p.clone())).unwrap();
        let topics: Vec<String> = events(&mut s)
            .into_iter()
            .filter_map(|e| match e {
                Event::Message(p) => Some(p.topic.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(topics, vec!["x/y".to_string(), "x/y".to_string()]);
        // [MQTT-3.3.2-11] an alias above our maximum is an error.
        p.properties.topic_alias = Some(3);
        let err = s.handle_packet(now, Packet::Publish(p)).unwrap_err();
        assert!(
            matches!(err, StateError::Protocol { reason, .. } if reason == ReasonCode::TOPIC_ALIAS_INVALID)
        );
    }

    #[test]
    fn broker_limits_are_enforced_unless_disabled() {
        let now = t0();
        let props = Properties {
            maximum_packet_size: Some(20),
            maximum_qos: Some(1),
            retain_available: Some(0),
            ..Default::default()
        };
        let mut s = connected(ConnectOptions::new("c"), props, now);
        let mut big = publish("t", QoS::AtMostOnce);
        big.payload = Bytes::from(vec![0u8; 100]);
        assert!(matches!(
            s.publish(now, big.clone()),
            Err(StateError::Usage(_))
        ));
        assert!(matches!(
            s.publish(now, publish("t", QoS::ExactlyOnce)),
            Err(StateError::Usage(_))
        ));
        let mut retained = publish("t", QoS::AtMostOnce);
        retained.retain = true;
        assert!(matches!(
            s.publish(now, retained),
            Err(StateError::Usage(_))
        ));
        s.controls.enforce_limits = false;
        assert!(s.publish(now, big).is_ok());
    }

    #[test]
    fn held_acks_are_released_reversed_and_pubrel_can_be_withheld() {
        let now = t0();
        let mut s = connected(ConnectOptions::new("c"), Properties::default(), now);
        s.controls.hold_acks = true;
        for id in [1, 2] {
            let mut p = publish("t", QoS::AtLeastOnce);
            p.packet_id = id;
            s.handle_packet(now, Packet::Publish(p)).unwrap();
        }
        assert!(drain(&mut s, now).is_empty());
        assert_eq!(s.held_count(), 2);
        s.release_held(ReleaseOrder::Reversed);
        assert_eq!(
            drain(&mut s, now),
            vec![Packet::PubAck(ack(2)), Packet::PubAck(ack(1))]
        );

        s.controls.never_send_pubrel = true;
        let id = s.publish(now, publish("t", QoS::ExactlyOnce)).unwrap();
        drain(&mut s, now);
        s.handle_packet(now, Packet::PubRec(ack(id))).unwrap();
        assert!(drain(&mut s, now).is_empty());
        s.release_pubrels();
        assert_eq!(drain(&mut s, now), vec![pubrel(id)]);
    }

    #[test]
    fn delayed_acks_go_out_when_due() {
        let now = t0();
        let mut s = connected(
            ConnectOptions::new("c").keep_alive(0),
            Properties::default(),
            now,
        );
        s.controls.ack_delay = Some(Duration::from_millis(500));
        let mut p = publish("t", QoS::AtLeastOnce);
        p.packet_id = 9;
        s.handle_packet(now, Packet::Publish(p)).unwrap();
        assert!(drain(&mut s, now).is_empty());
        let due = now + Duration::from_millis(500);
        assert_eq!(s.poll_timeout(), Some(due));
        s.handle_timeout(due - Duration::from_millis(1)).unwrap();
        assert!(drain(&mut s, now).is_empty());
        s.handle_timeout(due).unwrap();
        assert_eq!(drain(&mut s, due), vec![Packet::PubAck(ack(9))]);
    }

    #[test]
    fn inbound_receive_maximum_violation_is_detected() {
        let now = t0();
        let mut s = connected(
            ConnectOptions::new("c").receive_maximum(1),
            Properties::default(),
            now,
        );
        s.controls.auto_ack = false;
        for id in [1, 2] {
            let mut p = publish("t", QoS::ExactlyOnce);
            p.packet_id = id;
            let r = s.handle_packet(now, Packet::Publish(p));
            if id == 2 {
                assert!(
                    matches!(r, Err(StateError::Protocol { reason, .. }) if reason == ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)
                );
            } else {
                r.unwrap();
            }
        }
    }

    #[test]
    fn refused_connack_is_an_error_with_its_code() {
        let now = t0();
        let mut s = ClientState::new(ConnectOptions::new("c"));
        s.connect(now);
        drain(&mut s, now);
        let r = s.handle_packet(
            now,
            Packet::ConnAck(ConnAck {
                code: ReasonCode::NOT_AUTHORIZED,
                ..Default::default()
            }),
        );
        assert_eq!(r, Err(StateError::Refused(ReasonCode::NOT_AUTHORIZED)));
        assert_eq!(s.phase(), Phase::Disconnected);
    }

    #[test]
    fn packet_ids_skip_those_in_use_and_wrap() {
        let now = t0();
        let mut s = connected(ConnectOptions::new("c"), Properties::default(), now);
        s.next_id = u16::MAX;
        let a = s.publish(now, publish("t", QoS::AtLeastOnce)).unwrap();
        let b = s.publish(now, publish("t", QoS::AtLeastOnce)).unwrap();
        assert_eq!((a, b), (u16::MAX, 1));
        s.next_id = u16::MAX;
        let c = s.publish(now, publish("t", QoS::AtLeastOnce)).unwrap();
        assert_eq!(c, 2, "65535 and 1 are in use");
    }
}

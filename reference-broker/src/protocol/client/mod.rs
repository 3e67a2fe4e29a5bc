//! The client side of the protocol as a pure state machine: packets and time in, packets to
//! send and events out. No I/O, no clock: every method that needs time takes `now`.
//!
//! It allocates packet identifiers, runs the QoS 1/2 flows in both directions, sends PINGREQ,
//! applies topic aliases, honours the broker's Receive Maximum, Maximum Packet Size, Maximum
//! QoS and Retain Available, and keeps the session across connections so that a reconnect
//! resends what is unacknowledged with DUP. [`Controls`] make it misbehave on purpose.
//!
//! Files: [`options`] (what CONNECT says), [`controls`] (misbehaviour), `outbound` (commands
//! and the sending side of the QoS flows), `inbound` (packets from the broker and timers).

pub mod controls;
mod inbound;
pub mod options;
mod outbound;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::codec::{
    ConnAck, Disconnect, Packet, ProtocolVersion, PubResponse, Publish, QoS, ReasonCode, SubAck,
    UnsubAck,
};

use super::{InboundAcks, InboundAliases, OutboundAliases, PacketIds};

pub use controls::{Controls, ReleaseOrder};
pub use options::ConnectOptions;

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
    ids: PacketIds,
    next_seq: u64,
    /// Outgoing QoS 1/2 publishes by packet id (session state).
    outgoing: HashMap<u16, Outgoing>,
    /// Ids of queued (not yet sent) publishes, oldest first.
    queue: VecDeque<u16>,
    /// Ids used by SUBSCRIBE/UNSUBSCRIBE waiting for their ack.
    pending_requests: HashSet<u16>,
    /// Incoming QoS 2 ids for which PUBREC was sent and PUBREL not yet seen (session state).
    inbound: InboundAcks,
    send_quota: u16,
    aliases_out: OutboundAliases,
    aliases_in: InboundAliases,
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
            ids: PacketIds::new(),
            next_seq: 0,
            outgoing: HashMap::new(),
            queue: VecDeque::new(),
            pending_requests: HashSet::new(),
            inbound: InboundAcks::new(),
            send_quota: u16::MAX,
            aliases_out: OutboundAliases::default(),
            aliases_in: InboundAliases::default(),
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

    // ---- outputs ----

    /// The next packet to write, with topic aliases applied. Call [`ClientState::on_sent`]
    /// once it is written.
    pub fn poll_transmit(&mut self) -> Option<Packet> {
        let mut packet = self.transmits.pop_front()?;
        if let Packet::Publish(p) = &mut packet {
            // [MQTT-3.2.2-17] / [MQTT-3.3.2-9] only when the broker allows aliases.
            if self.controls.use_topic_aliases && self.version().is_v5() {
                self.aliases_out.apply(p);
            }
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

fn protocol(message: String) -> StateError {
    StateError::Protocol {
        reason: ReasonCode::PROTOCOL_ERROR,
        message,
    }
}

#[cfg(test)]
mod tests;

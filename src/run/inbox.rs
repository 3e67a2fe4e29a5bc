//! One client of a case: its connection, the inbox of packets it received, the automatic
//! acknowledgement of QoS deliveries and the resolution of inbound topic aliases.

use std::collections::VecDeque;
use std::time::Duration;

use reference_broker::client::{ClientError, Connection, Received, TransportOptions};
use reference_broker::codec::{ConnAck, DecodeError, Packet, ReasonCode};
use reference_broker::protocol::{AliasError, InboundAcks, InboundAliases, PacketIds};
use tokio::time::Instant;

use super::trace;
use crate::scenario::{ClientSpec, Effective, Observation};
use crate::sut::READ_LIMIT;

/// How many received packets a client holds that no step has taken yet. No case expects
/// more than a few dozen; a broker that sends more is flooding the client, and the step that
/// reads fails instead of letting memory grow.
pub(super) const INBOX_LIMIT: usize = 2_000;

/// A step failure before traces are attached.
pub(super) struct StepError {
    pub(super) message: String,
    pub(super) expected: Option<String>,
    pub(super) received: Option<String>,
    pub(super) timeout: bool,
    /// What was observed (deviations and SHOULD-level steps judge by it).
    pub(super) kind: Observation,
    /// The harness failed (a fault proxy error), not the broker.
    pub(super) harness: bool,
    /// The case has nothing to judge on this broker (a CONNECT it may refuse was refused):
    /// the run is skipped with this reason.
    pub(super) not_applicable: Option<String>,
}

/// The message of a step that read bytes it could not decode as a packet.
const UNDECODABLE: &str = "the broker sent a malformed packet";

impl StepError {
    /// Whether this step read bytes that do not decode as a packet (not a packet above a
    /// size limit, which breaks a statement of its own).
    pub(super) fn is_undecodable(&self) -> bool {
        self.kind == Observation::MalformedPacket && self.message == UNDECODABLE
    }

    pub(super) fn new(message: impl Into<String>) -> StepError {
        StepError {
            message: message.into(),
            expected: None,
            received: None,
            timeout: false,
            kind: Observation::Harness,
            harness: false,
            not_applicable: None,
        }
    }

    /// The case cannot judge this broker: it refused a CONNECT that the specification lets
    /// it refuse. The run is skipped with `reason`.
    pub(super) fn not_applicable(reason: impl Into<String>) -> StepError {
        let reason = reason.into();
        StepError {
            not_applicable: Some(reason.clone()),
            ..StepError::new(reason)
        }
    }

    /// A failure of the harness itself (the fault proxy), not of the broker.
    pub(super) fn harness(message: impl Into<String>) -> StepError {
        StepError {
            harness: true,
            ..StepError::new(message)
        }
    }

    /// The same error, observed as `kind`.
    pub(super) fn kind(mut self, kind: Observation) -> StepError {
        self.kind = kind;
        self
    }

    pub(super) fn diff(
        message: impl Into<String>,
        expected: String,
        received: String,
    ) -> StepError {
        StepError {
            message: message.into(),
            expected: Some(expected),
            received: Some(received),
            timeout: false,
            kind: Observation::PacketDiffers,
            harness: false,
            not_applicable: None,
        }
    }
}

pub(super) type StepResult = Result<(), StepError>;

pub(super) struct Client {
    pub(super) spec: ClientSpec,
    pub(super) id: String,
    pub(super) conn: Option<Connection>,
    pub(super) inbox: VecDeque<Packet>,
    pub(super) closed: bool,
    ids: PacketIds,
    /// QoS 2 deliveries acknowledged with PUBREC and awaiting PUBREL (auto ack).
    acks: InboundAcks,
    pub(super) past: Vec<String>,
    pub(super) connections: usize,
    /// Topic aliases the broker set on the current connection (MQTT 5).
    aliases: InboundAliases,
    /// The CONNACK of the current connection came in MQTT 3.1.1 form on an MQTT 5
    /// connection (a server that does not speak MQTT 5 refusing it).
    pub(super) v311_connack: bool,
    /// The Maximum Packet Size this client announced on its current connection (MQTT 5).
    max_packet_size: Option<usize>,
    /// What the current connection runs with, once its CONNACK arrived.
    pub(super) effective: Option<Effective>,
    /// The keep alive the client keeps of its own accord (see [`Client::keep_alive`]).
    pings: Pings,
}

/// The PINGREQs a client sends of its own accord on a connection whose CONNACK imposed a
/// Server Keep Alive shorter than the client's own (MQTT-3.2.2-21: the client uses it;
/// MQTT-3.1.2-20: in the absence of other packets it sends PINGREQ).
#[derive(Debug, Default)]
struct Pings {
    /// Half the imposed keep alive: the longest the client stays silent.
    every: Option<Duration>,
    /// When the client last sent a packet.
    last_sent: Option<Instant>,
    /// PINGREQs sent of its own accord whose PINGRESP has not arrived: those PINGRESPs are
    /// not the case's, and no step sees them.
    unanswered: usize,
}

impl Client {
    /// A client that is not connected yet.
    pub(super) fn new(spec: ClientSpec, id: String) -> Client {
        Client {
            spec,
            id,
            conn: None,
            inbox: VecDeque::new(),
            closed: false,
            ids: PacketIds::new(),
            acks: InboundAcks::new(),
            past: Vec::new(),
            connections: 0,
            aliases: InboundAliases::default(),
            v311_connack: false,
            max_packet_size: None,
            effective: None,
            pings: Pings::default(),
        }
    }

    /// Records what the connection runs with once its CONNACK arrived; when the broker
    /// imposed a shorter Server Keep Alive than the client's, the client keeps it from now
    /// on: a PINGREQ after half of it without another packet ([MQTT-3.2.2-21],
    /// [MQTT-3.1.2-20]), so that no case fails on a close the broker was entitled to.
    pub(super) fn connected(&mut self, effective: Effective) {
        self.effective = Some(effective);
        self.pings.every = effective
            .imposed_keep_alive()
            .map(|s| Duration::from_millis(u64::from(s) * 500));
        if let (Some(conn), Some(s)) = (self.conn.as_mut(), effective.imposed_keep_alive()) {
            conn.note(format!(
                "the CONNACK imposes Server Keep Alive {s} s (the client asked for {}): the \
                 client sends PINGREQ when silent for {} ms",
                effective.requested_keep_alive,
                u64::from(s) * 500
            ));
        }
    }

    /// When the client must next send a PINGREQ of its own accord, if it must.
    pub(super) fn ping_due(&self) -> Option<Instant> {
        let every = self.pings.every?;
        self.conn.as_ref()?;
        Some(
            self.pings
                .last_sent
                .map_or_else(Instant::now, |t| t + every),
        )
    }

    /// Note that the client just sent a packet (any packet restarts the keep alive).
    pub(super) fn sent(&mut self) {
        self.pings.last_sent = Some(Instant::now());
    }

    /// The case writes raw bytes on this connection: from now on it times the connection
    /// itself (a PINGREQ of the client's own could split a packet the case sends in parts).
    pub(super) fn sent_raw(&mut self) {
        self.pings.every = None;
    }

    /// Send a PINGREQ if the imposed keep alive asks for one now.
    pub(super) async fn keep_alive(&mut self) -> StepResult {
        if self.ping_due().is_some_and(|due| due <= Instant::now()) {
            send(self, &Packet::PingReq).await?;
            self.pings.unanswered += 1;
        }
        Ok(())
    }

    /// The next packet identifier. The scenario decides what is in flight (it may reuse an
    /// identifier on purpose), so none counts as in use here.
    pub(super) fn packet_id(&mut self) -> u16 {
        self.ids.next(|_| false).unwrap_or(1)
    }

    /// Close the connection (no DISCONNECT), keeping its trace.
    pub(super) fn retire(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.past.push(format!("# connection {}", self.connections));
            self.past.extend(trace::render(conn.trace()));
            conn.abort();
        }
        self.inbox.clear();
        self.closed = false;
        self.reset_aliases();
        self.v311_connack = false;
        self.effective = None;
        self.pings = Pings::default();
    }

    /// [MQTT-3.3.2-7] a new connection starts with no topic aliases.
    fn reset_aliases(&mut self) {
        let maximum = self.spec.properties.topic_alias_maximum.unwrap_or(0);
        self.aliases.reset(maximum);
    }

    /// Replace an inbound topic alias by its topic, so patterns match the effective topic.
    fn resolve_alias(&mut self, packet: &mut Packet) -> StepResult {
        let Packet::Publish(p) = packet else {
            return Ok(());
        };
        match self.aliases.resolve(p) {
            // An empty topic without an alias is left for the case to judge.
            Ok(()) | Err(AliasError::NoTopic) => Ok(()),
            // [MQTT-3.1.2-26] [MQTT-3.1.2-27] [MQTT-3.3.2-11] no alias above the client's maximum.
            Err(AliasError::OutOfRange { alias, maximum }) => Err(StepError::diff(
                "the broker sent a Topic Alias the client does not accept",
                format!("Topic Alias 1..={maximum} (the client's Topic Alias Maximum)"),
                format!("Topic Alias {alias}"),
            )),
            Err(AliasError::Unknown(alias)) => Err(StepError::diff(
                "the broker used a Topic Alias it never set",
                "a known Topic Alias or a topic name".into(),
                format!("Topic Alias {alias} with an empty topic"),
            )),
        }
    }

    /// Records `text` in the client's packet trace timeline (before its next connection when
    /// it has none now).
    pub(super) fn note(&mut self, text: String) {
        match self.conn.as_mut() {
            Some(conn) => conn.note(text),
            None => self.past.push(format!("(no connection) # {text}")),
        }
    }

    /// Every connection's trace, oldest first.
    pub(super) fn trace(&self) -> Vec<String> {
        let mut lines = self.past.clone();
        if let Some(conn) = &self.conn {
            lines.push(format!("# connection {} (open)", self.connections));
            lines.extend(trace::render(conn.trace()));
        }
        lines
    }
}

pub(super) async fn open(c: &mut Client, url: &str, transport: &TransportOptions) -> StepResult {
    let conn = Connection::open(url, transport).await.map_err(|e| {
        StepError::new(format!(
            "cannot open a connection to the broker: {}",
            redact(&e)
        ))
        .kind(Observation::ConnectionRefused)
    })?;
    c.conn = Some(conn);
    limit_packet_size(c, None);
    c.closed = false;
    c.inbox.clear();
    c.reset_aliases();
    c.v311_connack = false;
    c.effective = None;
    c.pings = Pings::default();
    c.connections += 1;
    Ok(())
}

/// Refuse incoming packets above the client's Maximum Packet Size (`announced`, MQTT 5) or
/// above [`READ_LIMIT`], whichever is smaller.
pub(super) fn limit_packet_size(c: &mut Client, announced: Option<u32>) {
    let announced = announced.map(|m| usize::try_from(m).unwrap_or(usize::MAX));
    c.max_packet_size = announced;
    if let Some(conn) = c.conn.as_mut() {
        conn.set_max_packet_size(announced.map_or(READ_LIMIT, |m| m.min(READ_LIMIT)));
    }
}

fn redact(e: &ClientError) -> String {
    match e {
        ClientError::InvalidUrl { .. } => "invalid broker URL".to_string(),
        ClientError::Connect { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

pub(super) async fn send(c: &mut Client, packet: &Packet) -> StepResult {
    let conn = c
        .conn
        .as_mut()
        .ok_or_else(|| StepError::new("the client is not connected (add a connect step)"))?;
    conn.send(packet).await.map_err(|e| {
        StepError::new(format!(
            "sending {:?} failed: {}",
            packet.packet_type(),
            redact(&e)
        ))
        .kind(Observation::ConnectionClosed)
    })?;
    c.sent();
    Ok(())
}

/// Read one event (or time out); acknowledge QoS deliveries when the client asks for it.
pub(super) async fn recv_one(c: &mut Client, timeout: Duration) -> StepResult {
    if c.conn.is_none() {
        c.closed = true;
        return Ok(());
    }
    if c.inbox.len() >= INBOX_LIMIT {
        return Err(StepError::diff(
            format!(
                "broker floods: {} packets unread (the client holds at most {INBOX_LIMIT} \
                 packets that no step has taken)",
                c.inbox.len()
            ),
            "the packets this step waits for".into(),
            summarize(&c.inbox),
        ));
    }
    // A client keeping an imposed keep alive wakes up in time for its next PINGREQ.
    let timeout = match c.ping_due() {
        Some(due) => timeout.min(due.saturating_duration_since(Instant::now())),
        None => timeout,
    };
    let Some(conn) = c.conn.as_mut() else {
        return Ok(());
    };
    let received = conn.recv(timeout).await;
    if matches!(
        received,
        Ok(Received::Packet(_)) | Err(ClientError::Timeout(..))
    ) {
        // A failed PINGREQ means the connection is gone: the next read observes the close.
        let _ = c.keep_alive().await;
    }
    match received {
        Ok(Received::Packet(Packet::PingResp)) if c.pings.unanswered > 0 => {
            // The answer to a PINGREQ of the client's own: not the case's to see.
            c.pings.unanswered -= 1;
            Ok(())
        }
        Ok(Received::Packet(mut packet)) => {
            c.resolve_alias(&mut packet)?;
            let Some(conn) = c.conn.as_mut() else {
                return Ok(());
            };
            if c.spec.auto_ack {
                // [MQTT-4.3.2-2] QoS 1 with PUBACK; [MQTT-4.3.3-8] QoS 2 with PUBREC, then
                // PUBCOMP for the PUBREL.
                let reply = c.acks.acknowledge(&packet, conn.version()).reply;
                if let Some(reply) = reply {
                    // The broker may already be gone; the close is observed on the next read.
                    let _ = conn.send(&reply).await;
                }
            }
            c.inbox.push_back(packet);
            Ok(())
        }
        Ok(Received::Closed) => {
            c.closed = true;
            Ok(())
        }
        Err(ClientError::Timeout(..)) => Ok(()),
        Err(ClientError::Decode(DecodeError::V311ConnAckRefusal(code))) => {
            // A refusal in 3.1.1 form (3.1.1 [MQTT-3.1.2-2]): recorded as the CONNACK it is,
            // so the connect step judges it and the case goes on to check the close.
            c.v311_connack = true;
            c.inbox.push_back(Packet::ConnAck(ConnAck {
                code: ReasonCode(code),
                ..ConnAck::default()
            }));
            Ok(())
        }
        Err(ClientError::Decode(DecodeError::PacketTooLarge { size, .. })) => {
            match c.max_packet_size {
                // [MQTT-3.1.2-24] the broker must not send a packet above the client's maximum.
                Some(max) if size > max => Err(StepError::diff(
                    "the broker sent a packet larger than the client's Maximum Packet Size",
                    format!("packets of at most {max} bytes"),
                    format!("a packet of {size} bytes (its fixed header says so; not read)"),
                )
                .kind(Observation::MalformedPacket)),
                _ => Err(StepError::diff(
                    format!(
                        "the broker announced a packet of {size} bytes, more than any case \
                         publishes; the harness reads at most {READ_LIMIT} bytes per packet and \
                         did not read it"
                    ),
                    format!("packets of at most {READ_LIMIT} bytes"),
                    format!("a fixed header announcing {size} bytes"),
                )
                .kind(Observation::MalformedPacket)),
            }
        }
        Err(ClientError::Decode(e)) => {
            Err(
                StepError::diff(UNDECODABLE, "a well-formed packet".into(), e.to_string())
                    .kind(Observation::MalformedPacket),
            )
        }
        Err(ClientError::Io(_)) | Err(ClientError::Closed(_)) => {
            c.closed = true;
            Ok(())
        }
        Err(e) => Err(StepError::new(redact(&e))),
    }
}

/// What an overfull inbox holds, in a few words: `1,998 PUBLISH, 2 PINGRESP`.
fn summarize(inbox: &VecDeque<Packet>) -> String {
    let mut counts: Vec<(reference_broker::codec::PacketType, usize)> = Vec::new();
    for p in inbox {
        let kind = p.packet_type();
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(k, n)| format!("{n} {}", format!("{k:?}").to_uppercase()))
        .collect();
    format!("{} unread packets: {}", inbox.len(), parts.join(", "))
}

/// The packet identifier of a PUBACK, PUBREC, PUBREL or PUBCOMP.
pub(super) fn ack_id(p: &Packet) -> Option<u16> {
    match p {
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            Some(r.packet_id)
        }
        _ => None,
    }
}

/// The reason code of a PUBACK, PUBREC, PUBREL or PUBCOMP (success for other packets).
pub(super) fn ack_reason(p: &Packet) -> ReasonCode {
    match p {
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => r.reason,
        _ => ReasonCode::SUCCESS,
    }
}

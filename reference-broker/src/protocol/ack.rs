//! Acknowledging what a peer publishes, one copy for broker, client, harness and bench: which
//! packet answers an inbound PUBLISH or PUBREL, and which QoS 2 identifiers await PUBREL.

use std::collections::HashSet;

use crate::codec::{Packet, ProtocolVersion, PubResponse, QoS, ReasonCode};

/// The acknowledgement of a PUBLISH of `qos` with `packet_id`: [MQTT-4.3.2-4] PUBACK for
/// QoS 1, [MQTT-4.3.3-8] PUBREC for QoS 2, nothing for QoS 0.
pub fn publish_ack(qos: QoS, packet_id: u16, reason: ReasonCode) -> Option<Packet> {
    let ack = response(packet_id, reason);
    match qos {
        QoS::AtMostOnce => None,
        QoS::AtLeastOnce => Some(Packet::PubAck(ack)),
        QoS::ExactlyOnce => Some(Packet::PubRec(ack)),
    }
}

/// A PUBACK/PUBREC/PUBREL/PUBCOMP body with no properties.
pub fn response(packet_id: u16, reason: ReasonCode) -> PubResponse {
    PubResponse {
        packet_id,
        reason,
        properties: Default::default(),
    }
}

/// What to do with a received packet of a QoS flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Acknowledged {
    /// The packet to send back, if any.
    pub reply: Option<Packet>,
    /// False for a QoS 2 PUBLISH whose identifier still awaits PUBREL: a resend of a message
    /// already received, not to be delivered again ([MQTT-4.3.3-10]).
    pub fresh: bool,
}

/// The receiving side of the QoS 2 flow: identifiers whose PUBREC was sent and whose PUBREL
/// has not arrived. Session state: it outlives a network connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundAcks {
    awaiting_rel: HashSet<u16>,
}

impl InboundAcks {
    /// Nothing awaits PUBREL.
    pub fn new() -> InboundAcks {
        InboundAcks::default()
    }

    /// Acknowledge a received packet automatically: PUBLISH QoS 1 with PUBACK, QoS 2 with
    /// PUBREC (recording the identifier), PUBREL with PUBCOMP. Other packets need no answer.
    pub fn acknowledge(&mut self, packet: &Packet, version: ProtocolVersion) -> Acknowledged {
        match packet {
            Packet::Publish(p) => self.on_publish(p.qos, p.packet_id),
            Packet::PubRel(r) => Acknowledged {
                reply: Some(self.release(r.packet_id, version)),
                fresh: true,
            },
            _ => Acknowledged {
                reply: None,
                fresh: true,
            },
        }
    }

    /// Acknowledge a received PUBLISH of `qos` with `packet_id` (see [`InboundAcks::acknowledge`]).
    pub fn on_publish(&mut self, qos: QoS, packet_id: u16) -> Acknowledged {
        Acknowledged {
            reply: publish_ack(qos, packet_id, ReasonCode::SUCCESS),
            fresh: qos != QoS::ExactlyOnce || self.begin(packet_id),
        }
    }

    /// Record a QoS 2 identifier as awaiting PUBREL; false when it already was (a resend).
    pub fn begin(&mut self, packet_id: u16) -> bool {
        self.awaiting_rel.insert(packet_id)
    }

    /// [MQTT-4.3.3-11] PUBREL releases the identifier; the answer is PUBCOMP, with 0x92 Packet
    /// Identifier not found (MQTT 5) when it was not awaiting release.
    pub fn release(&mut self, packet_id: u16, version: ProtocolVersion) -> Packet {
        let known = self.awaiting_rel.remove(&packet_id);
        let reason = if known || !version.is_v5() {
            ReasonCode::SUCCESS
        } else {
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        };
        Packet::PubComp(response(packet_id, reason))
    }

    /// Drop an identifier without PUBREL ([MQTT-4.3.3-9] a PUBREC with an error ends the flow).
    pub fn forget(&mut self, packet_id: u16) {
        self.awaiting_rel.remove(&packet_id);
    }

    /// True when `packet_id` awaits PUBREL.
    pub fn contains(&self, packet_id: &u16) -> bool {
        self.awaiting_rel.contains(packet_id)
    }

    /// How many identifiers await PUBREL.
    pub fn len(&self) -> usize {
        self.awaiting_rel.len()
    }

    /// True when nothing awaits PUBREL.
    pub fn is_empty(&self) -> bool {
        self.awaiting_rel.is_empty()
    }

    /// Forget everything (the peer has no session).
    pub fn clear(&mut self) {
        self.awaiting_rel.clear();
    }

    /// The identifiers awaiting PUBREL, in no order (persistence).
    pub fn iter(&self) -> impl Iterator<Item = &u16> + '_ {
        self.awaiting_rel.iter()
    }
}

impl FromIterator<u16> for InboundAcks {
    fn from_iter<I: IntoIterator<Item = u16>>(iter: I) -> Self {
        InboundAcks {
            awaiting_rel: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Publish;

    fn publish(qos: QoS, id: u16) -> Packet {
        Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: "t".into(),
            packet_id: id,
            properties: Default::default(),
            payload: bytes::Bytes::new(),
        })
    }

    #[test]
    fn each_qos_gets_its_acknowledgement_and_qos2_is_fresh_once() {
        let v5 = ProtocolVersion::V5;
        let mut acks = InboundAcks::new();
        let q0 = acks.acknowledge(&publish(QoS::AtMostOnce, 0), v5);
        assert_eq!((q0.reply, q0.fresh), (None, true));
        let q1 = acks.acknowledge(&publish(QoS::AtLeastOnce, 3), v5);
        assert_eq!(
            q1.reply,
            Some(Packet::PubAck(response(3, ReasonCode::SUCCESS)))
        );
        let q2 = acks.acknowledge(&publish(QoS::ExactlyOnce, 4), v5);
        assert_eq!(
            q2.reply,
            Some(Packet::PubRec(response(4, ReasonCode::SUCCESS)))
        );
        assert!(q2.fresh);
        assert!(!acks.acknowledge(&publish(QoS::ExactlyOnce, 4), v5).fresh);
        let rel = Packet::PubRel(response(4, ReasonCode::SUCCESS));
        let comp = acks.acknowledge(&rel, v5).reply;
        assert_eq!(
            comp,
            Some(Packet::PubComp(response(4, ReasonCode::SUCCESS)))
        );
        // [MQTT-4.3.3-12] released: the same identifier is a new message again.
        assert!(acks.acknowledge(&publish(QoS::ExactlyOnce, 4), v5).fresh);
    }

    #[test]
    fn unknown_pubrel_is_0x92_in_v5_only() {
        let mut acks = InboundAcks::new();
        let v5 = acks.release(9, ProtocolVersion::V5);
        let v3 = acks.release(9, ProtocolVersion::V3_1_1);
        let code = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
        assert_eq!(v5, Packet::PubComp(response(9, code)));
        assert_eq!(v3, Packet::PubComp(response(9, ReasonCode::SUCCESS)));
    }
}

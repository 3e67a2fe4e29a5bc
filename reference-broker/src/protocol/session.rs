//! Per-client session state that outlives a network connection: outbound messages in flight and
//! queued, and inbound QoS 2 packet identifiers awaiting PUBREL.

use std::collections::{HashSet, VecDeque};

use crate::codec::{Publish, QoS};

use super::{Delivery, InboundAcks, PacketIds};

/// Where an outbound QoS 1/2 message is in its acknowledgement flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutState {
    /// QoS 1 PUBLISH sent, waiting for PUBACK.
    AwaitPubAck,
    /// QoS 2 PUBLISH sent, waiting for PUBREC.
    AwaitPubRec,
    /// PUBREL sent, waiting for PUBCOMP.
    AwaitPubComp,
}

/// An outbound message that has a packet identifier and is not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InflightOut {
    /// The PUBLISH as first sent (full topic, no alias), kept for redelivery with DUP.
    pub publish: Publish,
    /// Acknowledgement state.
    pub state: OutState,
}

/// The state of one session ([MQTT-4.1.0-1]: kept as long as the session lasts, across
/// connections, unless the session is clean).
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// Outbound QoS 1/2 messages in flight, in the order they were sent.
    pub(crate) inflight: VecDeque<InflightOut>,
    /// Packet identifiers used by `inflight`.
    pub(crate) used_ids: HashSet<u16>,
    /// Messages waiting to be sent (receive maximum reached, or client offline).
    pub(crate) pending: VecDeque<Delivery>,
    /// Inbound QoS 2 packet identifiers: PUBREC sent, PUBREL not yet received.
    pub(crate) inbound_qos2: InboundAcks,
    ids: PacketIds,
    /// The last connection's inbound Topic Alias table: only ever set under the deliberate
    /// defect `AliasKeptInSession` (aliases are not session state, [MQTT-3.3.2-7]).
    pub(crate) kept_aliases: Option<super::alias::InboundAliases>,
}

impl Session {
    /// An empty session.
    pub fn new() -> Session {
        Session::default()
    }

    /// Number of outbound messages in flight.
    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// Number of messages queued and not yet sent.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing is in flight or queued in either direction.
    pub fn is_idle(&self) -> bool {
        self.inflight.is_empty() && self.pending.is_empty() && self.inbound_qos2.is_empty()
    }

    /// Queue a delivery while it cannot be sent. QoS 0 messages are only queued when
    /// `queue_qos0`; returns false when the message was dropped (queue full or QoS 0).
    pub fn enqueue(&mut self, delivery: Delivery, max_queued: usize, queue_qos0: bool) -> bool {
        if delivery.qos == QoS::AtMostOnce && !queue_qos0 {
            return false;
        }
        if self.pending.len() >= max_queued {
            return false;
        }
        self.pending.push_back(delivery);
        true
    }

    /// A free non-zero packet identifier ([MQTT-2.3.1-2]: not in use by another in-flight
    /// PUBLISH), or `None` when all 65,535 are in use.
    pub(crate) fn allocate_packet_id(&mut self) -> Option<u16> {
        if self.used_ids.len() >= usize::from(u16::MAX) {
            return None;
        }
        let used = &self.used_ids;
        self.ids.next(|id| used.contains(&id))
    }

    /// Remove the in-flight entry with `packet_id` in `state`.
    pub(crate) fn take_inflight(&mut self, packet_id: u16, state: OutState) -> Option<InflightOut> {
        let pos = self
            .inflight
            .iter()
            .position(|i| i.publish.packet_id == packet_id && i.state == state)?;
        let entry = self.inflight.remove(pos)?;
        self.used_ids.remove(&packet_id);
        Some(entry)
    }

    /// Mark the in-flight QoS 2 entry `packet_id` as released (PUBREC received).
    pub(crate) fn mark_released(&mut self, packet_id: u16) -> bool {
        match self
            .inflight
            .iter_mut()
            .find(|i| i.publish.packet_id == packet_id && i.state == OutState::AwaitPubRec)
        {
            Some(entry) => {
                entry.state = OutState::AwaitPubComp;
                true
            }
            None => false,
        }
    }

    pub(crate) fn push_inflight(&mut self, entry: InflightOut) {
        self.used_ids.insert(entry.publish.packet_id);
        self.inflight.push_back(entry);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::protocol::Message;
    use std::sync::Arc;
    use std::time::Instant;

    fn delivery(qos: QoS) -> Delivery {
        let publish = Publish {
            dup: false,
            qos,
            retain: false,
            topic: "t".into(),
            packet_id: 0,
            properties: Default::default(),
            payload: bytes::Bytes::from_static(b"x"),
        };
        Delivery {
            message: Arc::new(Message::from_publish(Instant::now(), publish, None)),
            qos,
            retain: false,
            subscription_ids: vec![],
        }
    }

    #[test]
    fn queue_is_bounded_and_skips_qos0_by_default() {
        let mut s = Session::new();
        assert!(!s.enqueue(delivery(QoS::AtMostOnce), 2, false));
        assert!(s.enqueue(delivery(QoS::AtMostOnce), 2, true));
        assert!(s.enqueue(delivery(QoS::AtLeastOnce), 2, false));
        assert!(!s.enqueue(delivery(QoS::AtLeastOnce), 2, false));
        assert_eq!(s.pending_len(), 2);
    }

    #[test]
    fn packet_ids_are_nonzero_and_unique() {
        let mut s = Session::new();
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let id = s.allocate_packet_id().unwrap();
            assert_ne!(id, 0);
            assert!(seen.insert(id));
            s.used_ids.insert(id);
        }
    }
}

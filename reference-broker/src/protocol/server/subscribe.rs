//! Subscriptions: SUBSCRIBE and UNSUBSCRIBE go to the broker as events; its answers come back
//! here to become SUBACK and UNSUBACK in the connection's version.

use crate::codec::{Packet, ReasonCode, SubAck, UnsubAck};

use super::ServerConnection;
use crate::protocol::session::OutState;
use crate::protocol::Defect;

impl ServerConnection {
    /// The broker removed the subscriptions of `filters`. Messages already in flight on them
    /// are still completed ([MQTT-3.10.4-3]): nothing to do, unless the deliberate defect
    /// `UnsubscribeDropsInflight` forgets them.
    pub fn unsubscribed(&mut self, filters: &[String]) {
        if !self.limits.defects.has(Defect::UnsubscribeDropsInflight) {
            return;
        }
        let dropped: Vec<(u16, OutState)> = self
            .session
            .inflight
            .iter()
            .filter(|i| {
                let topic: &str = &i.publish.topic;
                filters.iter().any(|f| crate::topic::matches(f, topic))
            })
            .map(|i| (i.publish.packet_id, i.state))
            .collect();
        for (id, state) in dropped {
            self.session.take_inflight(id, state);
        }
    }

    /// The broker handled a SUBSCRIBE: [MQTT-3.8.4-1] SUBACK with [MQTT-3.8.4-2] the same
    /// packet identifier and [MQTT-3.8.4-6] one return code per filter.
    pub fn subscribe_done(&mut self, packet_id: u16, codes: Vec<ReasonCode>) {
        self.send(Packet::SubAck(SubAck {
            packet_id,
            properties: Default::default(),
            reason_codes: codes,
        }));
    }

    /// The broker handled an UNSUBSCRIBE: [MQTT-3.10.4-4] / [MQTT-3.10.4-5] always UNSUBACK
    /// with the same packet identifier; reason codes exist in MQTT 5 only.
    pub fn unsubscribe_done(&mut self, packet_id: u16, codes: Vec<ReasonCode>) {
        let reason_codes = if self.version.is_v5() {
            codes
        } else {
            Vec::new()
        };
        self.send(Packet::UnsubAck(UnsubAck {
            packet_id,
            properties: Default::default(),
            reason_codes,
        }));
    }
}

//! Outbound application messages: the session queue, flow control (the client's Receive
//! Maximum and Maximum Packet Size, the server's in-flight limit), packet identifiers and
//! outbound topic aliases.

use std::sync::Arc;
use std::time::Instant;

use crate::codec::{encoded_len, Packet, Publish, QoS};
use crate::protocol::session::{InflightOut, OutState};
use crate::protocol::variants::ServerTopicAliases;
use crate::protocol::{Defect, Delivery};

use super::{ServerConnection, State};

impl ServerConnection {
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
    pub(super) fn pump(&mut self, now: Instant) {
        let mut window = usize::from(self.client_receive_maximum.min(self.limits.max_inflight));
        if self.limits.defects.has(Defect::ReceiveMaximumIgnored) {
            window = usize::MAX;
        }
        while let Some(front) = self.session.pending.front() {
            // [MQTT-3.3.4-9] one quota for QoS 1 and 2 (the defect counts each QoS apart).
            let in_flight = if self.limits.defects.has(Defect::ReceiveMaximumPerQos) {
                let qos = front.qos;
                let same = |i: &&InflightOut| i.publish.qos == qos;
                self.session.inflight.iter().filter(same).count()
            } else {
                self.session.inflight.len()
            };
            if front.qos != QoS::AtMostOnce && in_flight >= window {
                // [MQTT-3.3.4-9] (5) no more than Receive Maximum unacknowledged QoS 1/2.
                break;
            }
            let Some(delivery) = self.session.pending.pop_front() else {
                break;
            };
            let msg = &delivery.message;
            // [MQTT-3.3.2-5] (5) an expired message is not forwarded.
            if msg.is_expired(now) && !self.limits.defects.has(Defect::ExpiredQueuedMessageSent) {
                self.dropped += 1;
                continue;
            }
            let mut properties = msg.properties.clone();
            // [MQTT-3.3.2-6] (5) forward the remaining expiry interval.
            if !self.limits.defects.has(Defect::MessageExpiryNotDecremented) {
                properties.message_expiry_interval = msg.remaining_expiry(now);
            }
            self.limits.defects.mangle_forwarded(&mut properties);
            if self.version.is_v5() {
                // [MQTT-3.3.4-3] every matching subscription identifier.
                properties.subscription_identifiers = delivery.subscription_ids.clone();
            } else {
                properties = Default::default();
            }
            let mut publish = Publish {
                // [MQTT-4.3.1-1] QoS 0 goes with DUP 0.
                dup: delivery.qos == QoS::AtMostOnce
                    && self.limits.defects.has(Defect::Qos0ForwardedWithDup),
                qos: delivery.qos,
                retain: delivery.retain,
                topic: msg.topic.clone(),
                packet_id: 0,
                properties,
                payload: msg.payload.clone(),
            };
            if let Some(max) = self
                .client_max_packet_size
                .filter(|_| !self.limits.defects.has(Defect::ClientMaxPacketSizeIgnored))
            {
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
    pub(super) fn transmit_publish(&mut self, mut publish: Publish) {
        if self.limits.variants.server_topic_aliases == ServerTopicAliases::Use {
            let given = publish.properties.topic_alias.is_some();
            self.outbound_aliases.apply(&mut publish);
            // [MQTT-3.1.2-26] / [MQTT-3.3.2-11] (5) aliases stay within the client's Topic Alias
            // Maximum; the defect shifts every alias it assigns up by one, so the last exceeds it.
            if !given
                && self
                    .limits
                    .defects
                    .has(Defect::ServerAliasAboveClientMaximum)
            {
                let alias = publish.properties.topic_alias;
                publish.properties.topic_alias = alias.map(|a| a.saturating_add(1));
            }
        }
        self.transmits.push_back(Packet::Publish(publish));
    }
}

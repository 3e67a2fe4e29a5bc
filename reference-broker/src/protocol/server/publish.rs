//! Inbound application messages: the checks a PUBLISH must pass, topic alias resolution, the
//! receiving side of QoS 1/2 (PUBACK, PUBREC, PUBCOMP) and the sending side's PUBREL.

use std::time::Instant;

use crate::codec::{Packet, PubResponse, Publish, QoS, ReasonCode};
use crate::protocol::ack::{publish_ack, response};
use crate::protocol::session::OutState;
use crate::protocol::Defect;

use super::{CloseKind, Event, InboundPublish, Message, ServerConnection, State};

impl ServerConnection {
    pub(super) fn handle_publish(&mut self, now: Instant, mut publish: Publish) {
        let v5 = self.version.is_v5();
        // [MQTT-3.2.2-11] (5) QoS above the server's Maximum QoS. 3.1.1 has no Maximum QoS: the
        // message is accepted and forwarded at most at the granted QoS ([MQTT-3.8.4-6]).
        if v5 && publish.qos > self.limits.maximum_qos {
            self.close(ReasonCode::QOS_NOT_SUPPORTED, CloseKind::ProtocolError);
            return;
        }
        // [MQTT-3.2.2-14] (5) retain when Retain Available is 0.
        // 3.1.1 has no Retain Available: its retained messages are stored ([MQTT-3.3.1-5]).
        if v5 && publish.retain && !self.limits.retain_available {
            self.close(ReasonCode::RETAIN_NOT_SUPPORTED, CloseKind::ProtocolError);
            return;
        }
        if v5 {
            // [MQTT-3.3.4-6] a client must not send subscription identifiers.
            if !publish.properties.subscription_identifiers.is_empty()
                && !self
                    .limits
                    .defects
                    .has(Defect::ClientSubscriptionIdAccepted)
            {
                self.protocol_error();
                return;
            }
            // [MQTT-3.3.2-8] / [MQTT-3.3.2-9] alias 0 or above Topic Alias Maximum: 0x94;
            // [MQTT-3.3.2-12] an empty topic needs a known alias and [MQTT-3.3.2-1] a topic
            // name is required without one: Protocol Error.
            if publish.properties.topic_alias == Some(0)
                && !publish.topic.is_empty()
                && self.limits.defects.has(Defect::TopicAliasZeroAccepted)
            {
                publish.properties.topic_alias = None;
            }
            if publish.properties.topic_alias.is_some()
                && self.limits.defects.has(Defect::TopicAliasRefused)
            {
                self.close(ReasonCode::TOPIC_ALIAS_INVALID, CloseKind::ProtocolError);
                return;
            }
            if let Err(e) = self.inbound_aliases.resolve(&mut publish) {
                self.close(e.reason_code(), CloseKind::ProtocolError);
                return;
            }
        }
        if publish.qos == QoS::ExactlyOnce {
            if self.session.inbound_qos2.contains(&publish.packet_id)
                && !self.limits.defects.has(Defect::Qos2DuplicateOnResend)
            {
                // [MQTT-4.3.3-10] duplicate before PUBREL: PUBREC again, no duplicate delivery.
                let pubrec = Packet::PubRec(response(publish.packet_id, ReasonCode::SUCCESS));
                self.transmits.push_back(pubrec);
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
            self.session.inbound_qos2.begin(publish.packet_id);
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
        if qos == QoS::ExactlyOnce && !reason.is_success() {
            // [MQTT-4.3.3-9] a PUBREC with an error ends the flow.
            self.session.inbound_qos2.forget(packet_id);
        }
        // [MQTT-4.3.2-4] QoS 1 with PUBACK; [MQTT-4.3.3-8] QoS 2 with PUBREC.
        if qos == QoS::AtLeastOnce && self.limits.defects.has(Defect::PubackMissing) {
            return;
        }
        if let Some(mut ack) = publish_ack(qos, packet_id, reason) {
            // [MQTT-3.1.2-29] (5) no Reason String on an ack when Request Problem Information
            // is 0 (the broker never sends one on an ack; the defect always does).
            if let (Packet::PubAck(r) | Packet::PubRec(r), false, true) = (
                &mut ack,
                reason == ReasonCode::SUCCESS,
                self.limits
                    .defects
                    .has(Defect::ReasonStringDespiteProblemInformation0),
            ) {
                r.properties.reason_string = reason.name().map(Into::into);
            }
            self.transmits.push_back(ack);
        }
    }

    /// [MQTT-4.3.3-11] PUBREL releases the packet identifier; answer PUBCOMP.
    pub(super) fn handle_pubrel(&mut self, rel: PubResponse) {
        let comp = self
            .session
            .inbound_qos2
            .release(rel.packet_id, self.version);
        if self.limits.defects.has(Defect::PubcompMissing) {
            return;
        }
        self.transmits.push_back(comp);
    }

    /// PUBACK ends an outbound QoS 1 flow.
    pub(super) fn handle_puback(&mut self, now: Instant, ack: PubResponse) {
        // [MQTT-4.4.0-2] (5) a PUBACK with an error code acknowledges too.
        let keep = !ack.reason.is_success()
            && self
                .limits
                .defects
                .has(Defect::PubackErrorKeepsMessageInFlight);
        if !keep {
            self.session
                .take_inflight(ack.packet_id, OutState::AwaitPubAck);
        }
        self.pump(now);
    }

    /// PUBREC: the first half of an outbound QoS 2 flow.
    pub(super) fn handle_pubrec(&mut self, now: Instant, rec: PubResponse) {
        let v5 = self.version.is_v5();
        if v5 && !rec.reason.is_success() {
            // [MQTT-4.3.3-4] a PUBREC error (>= 0x80) ends the QoS 2 flow: no PUBREL.
            self.session
                .take_inflight(rec.packet_id, OutState::AwaitPubRec);
            self.pump(now);
            return;
        }
        let found = self.session.mark_released(rec.packet_id)
            || self
                .session
                .inflight
                .iter()
                .any(|i| i.publish.packet_id == rec.packet_id);
        // [MQTT-4.3.3-4] answer PUBREC with PUBREL, same packet identifier.
        let reason = if v5 && self.limits.defects.has(Defect::PubrelInvalidReasonCode) {
            // [MQTT-3.6.2-1] (5) 0x10 is not a PUBREL reason code.
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        } else if found || !v5 {
            ReasonCode::SUCCESS
        } else {
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        };
        let pubrel = Packet::PubRel(response(rec.packet_id, reason));
        self.transmits.push_back(pubrel);
    }

    /// PUBCOMP ends an outbound QoS 2 flow.
    pub(super) fn handle_pubcomp(&mut self, now: Instant, comp: PubResponse) {
        self.session
            .take_inflight(comp.packet_id, OutState::AwaitPubComp);
        self.pump(now);
    }
}

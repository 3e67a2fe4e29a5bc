//! What the broker sends the client, and time passing: CONNACK, the receiving side of the QoS
//! flows (topic aliases, PUBACK / PUBREC / PUBCOMP, the client's Receive Maximum), SUBACK,
//! UNSUBACK, PINGRESP, DISCONNECT, AUTH, and keep alive.

use std::time::{Duration, Instant};

use crate::codec::{ConnAck, Packet, Publish, QoS, ReasonCode};

use super::{protocol, BrokerLimits, ClientState, Event, Phase, StateError};

impl ClientState {
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
                let comp = self.inbound.release(r.packet_id, self.version());
                self.ack(now, comp);
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
        self.aliases_out.reset(self.limits.topic_alias_maximum);
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
            self.inbound.clear();
        }
        self.events.push_back(Event::Connected(ack));
        self.pump_queue(now);
        Ok(())
    }

    fn on_publish(&mut self, now: Instant, mut p: Publish) -> Result<(), StateError> {
        // [MQTT-3.3.2-8] / [MQTT-3.3.2-11] aliases 1..= what we announced; a known alias for an
        // empty topic; [MQTT-3.3.2-1] a topic name otherwise.
        self.aliases_in
            .resolve(&mut p)
            .map_err(|e| StateError::Protocol {
                reason: e.reason_code(),
                message: e.to_string(),
            })?;
        // [MQTT-4.3.3-10] a repeated QoS 2 id before PUBREL is not delivered (or counted) again.
        let resend = p.qos == QoS::ExactlyOnce && self.inbound.contains(&p.packet_id);
        if p.qos != QoS::AtMostOnce && !resend {
            self.check_inbound_quota()?;
        }
        // [MQTT-4.3.2-4] / [MQTT-4.3.2-5] every QoS 1 PUBLISH is a new message; [MQTT-4.3.3-8]
        // QoS 2 is answered with PUBREC.
        let acked = self.inbound.on_publish(p.qos, p.packet_id);
        if acked.fresh {
            self.events.push_back(Event::Message(p));
        }
        if let Some(reply) = acked.reply {
            self.ack(now, reply);
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
        if self.inbound.len() + held_pubacks >= usize::from(max) {
            return Err(StateError::Protocol {
                reason: ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                message: format!("broker sent more than Receive Maximum {max} unacknowledged"),
            });
        }
        Ok(())
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
}

//! The client's commands and the sending side of its QoS flows: PUBLISH, SUBSCRIBE and
//! UNSUBSCRIBE with packet identifiers, the send quota, PUBACK / PUBREC / PUBCOMP from the
//! broker, and the session resent on reconnection.

use std::time::Instant;

use crate::codec::{
    encoded_len, Disconnect, Packet, Properties, PubResponse, Publish, QoS, ReasonCode, Subscribe,
    Subscription, Unsubscribe,
};
use crate::protocol::ack::response;

use super::{protocol, ClientState, Event, OutStage, Outgoing, Phase, ReleaseOrder, StateError};

impl ClientState {
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

    pub(super) fn reset_connection(&mut self) {
        // [MQTT-3.3.2-7] topic alias mappings never carry over to another connection.
        let maximum = self.options.properties.topic_alias_maximum.unwrap_or(0);
        self.aliases_in.reset(maximum);
        self.aliases_out.reset(0);
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

    pub(super) fn on_puback(&mut self, now: Instant, r: PubResponse) -> Result<(), StateError> {
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

    pub(super) fn on_pubrec(&mut self, now: Instant, r: PubResponse) -> Result<(), StateError> {
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

    pub(super) fn on_pubcomp(&mut self, now: Instant, r: PubResponse) -> Result<(), StateError> {
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

    /// [MQTT-4.4.0-1] resend unacknowledged PUBLISH (with DUP) and PUBREL, in their
    /// original order and with their original packet ids.
    pub(super) fn resend_session(&mut self, now: Instant) {
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

    fn allocate_id(&mut self) -> Result<u16, StateError> {
        let (outgoing, requests) = (&self.outgoing, &self.pending_requests);
        self.ids
            .next(|id| outgoing.contains_key(&id) || requests.contains(&id))
            .ok_or_else(|| StateError::Usage("all 65535 packet identifiers in use".into()))
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
    pub(super) fn pump_queue(&mut self, now: Instant) {
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

    pub(super) fn transmit_publish(&mut self, _now: Instant, p: Publish) {
        self.transmits.push_back(Packet::Publish(p));
    }
}

fn pubrel(packet_id: u16) -> Packet {
    Packet::PubRel(response(packet_id, ReasonCode::SUCCESS))
}

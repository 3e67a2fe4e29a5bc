//! The connection's life: CONNECT (checks, keep alive, session expiry, will), the broker's
//! answer (CONNACK accept or reject) and DISCONNECT.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::{
    encoded_len, ConnAck, Connect, Disconnect, Packet, Properties, ProtocolVersion, PubResponse,
    QoS, ReasonCode,
};
use crate::protocol::session::{InflightOut, OutState};
use crate::protocol::variants::{ReasonStrings, RefusedConnect};
use crate::protocol::Defect;

use super::{Accept, CloseKind, Event, ServerConnection, ServerLimits, State};

impl ServerConnection {
    pub(super) fn handle_connect(&mut self, connect: Connect) {
        self.version = connect.protocol;
        // [MQTT-3.1.2-24] keep alive from CONNECT, unless the server imposes one (MQTT 5).
        self.server_keep_alive = server_keep_alive(&self.limits, &connect);
        // [MQTT-3.2.2-22] without a Server Keep Alive, the client's value.
        let mut keep_alive = self.server_keep_alive.unwrap_or(connect.keep_alive);
        if keep_alive == 0 && self.limits.defects.has(Defect::KeepAliveZeroEnforced) {
            keep_alive = 1;
        }
        self.keep_alive = (keep_alive > 0).then(|| Duration::from_secs(u64::from(keep_alive)));
        self.will = connect.will.clone().map(Box::new);
        if connect.protocol.is_v5() {
            let props = &connect.properties;
            let mut requested = props.session_expiry_interval.unwrap_or(0);
            // 0xFFFFFFFF: the session never expires ([MQTT-3.1.2-23] keeps it).
            if requested == u32::MAX && self.limits.defects.has(Defect::SessionExpiryMaxAsZero) {
                requested = 0;
            }
            self.connect_session_expiry_zero = requested == 0;
            self.session_expiry = requested.min(self.limits.max_session_expiry);
            self.client_receive_maximum = props.receive_maximum.unwrap_or(u16::MAX);
            self.client_max_packet_size = props.maximum_packet_size;
            self.outbound_aliases
                .reset(props.topic_alias_maximum.unwrap_or(0));
            self.auth = props
                .authentication_method
                .clone()
                .map(|method| Box::new(super::auth::AuthFlow::new(method, &connect)));
        } else {
            // [MQTT-3.1.2-6] Clean Session 1: the session lasts as long as the connection;
            // Clean Session 0: it is kept until a clean connection.
            self.session_expiry = if connect.clean_start { 0 } else { u32::MAX };
            self.connect_session_expiry_zero = connect.clean_start;
        }
        // [MQTT-3.1.3-8] (3.1.1): a zero-byte client id requires Clean Session 1.
        if connect.client_id.is_empty()
            && !connect.clean_start
            && !connect.protocol.is_v5()
            && !self
                .limits
                .defects
                .has(Defect::EmptyClientIdNoCleanAccepted)
        {
            self.reject(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
            return;
        }
        // [MQTT-3.1.3-5] ids of 1 to 23 alphanumerics are allowed.
        if connect.client_id.len() == 1 && self.limits.defects.has(Defect::ShortClientIdRefused) {
            self.reject(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
            return;
        }
        // [MQTT-3.2.2-12] / [MQTT-3.2.2-13] (5) a will the server cannot honour.
        // 3.1.1 has neither: its wills are accepted whatever the MQTT 5 limits say.
        if let Some(w) = connect.will.as_ref().filter(|_| connect.protocol.is_v5()) {
            if w.qos > self.limits.maximum_qos {
                self.reject(ReasonCode::QOS_NOT_SUPPORTED);
                return;
            }
            if w.retain && !self.limits.retain_available {
                self.reject(ReasonCode::RETAIN_NOT_SUPPORTED);
                return;
            }
        }
        self.client_id = Arc::from(connect.client_id.as_str());
        self.state = State::AwaitDecision;
        self.events.push_back(Event::Connect(Box::new(connect)));
    }

    /// Accept the CONNECT: send CONNACK 0x00, resume the session, redeliver in-flight messages.
    pub fn accept(&mut self, now: Instant, accept: Accept) {
        if !matches!(self.state, State::AwaitDecision | State::Authenticating) {
            return;
        }
        self.session = accept.session;
        // [MQTT-3.3.2-7] a new connection starts without aliases (set only by a defect).
        if let Some(kept) = self.session.kept_aliases.take() {
            self.inbound_aliases = kept;
        }
        let mut connack = ConnAck {
            session_present: accept.session_present
                && !self.limits.defects.has(Defect::SessionPresentAlwaysZero),
            code: ReasonCode::SUCCESS,
            properties: Default::default(),
        };
        if let Some(id) = &accept.assigned_client_id {
            self.client_id = Arc::from(id.as_str());
        }
        if self.version.is_v5() {
            let l = &self.limits;
            let p = &mut connack.properties;
            // [MQTT-3.2.2-22] the client uses the assigned identifier.
            p.assigned_client_identifier = accept.assigned_client_id.map(Into::into);
            if l.max_session_expiry != u32::MAX {
                p.session_expiry_interval = Some(self.session_expiry);
            }
            p.receive_maximum = Some(l.receive_maximum);
            if l.maximum_qos != QoS::ExactlyOnce {
                p.maximum_qos = Some(l.maximum_qos.as_u8());
            }
            p.retain_available = Some(u8::from(l.retain_available));
            p.maximum_packet_size = Some(l.max_packet_size);
            p.topic_alias_maximum = Some(l.topic_alias_maximum);
            p.wildcard_subscription_available = Some(u8::from(l.wildcard_subscription_available));
            p.subscription_identifier_available =
                Some(u8::from(l.subscription_identifiers_available));
            p.shared_subscription_available = Some(u8::from(l.shared_subscription_available));
            // [MQTT-3.2.2-21] the client must use the Server Keep Alive.
            p.server_keep_alive = self.server_keep_alive;
            // [MQTT-3.1.2-28] only when requested (the shell checks the request).
            p.response_information = accept.response_information.map(Into::into);
            let auth = accept
                .auth
                .or_else(|| self.authenticated_method().map(|m| (m, None)));
            // [MQTT-4.12.0-5] a successful CONNACK names the method of an enhanced authentication.
            if let Some((method, data)) = auth {
                p.authentication_method = Some(method.into());
                p.authentication_data = data;
            }
        }
        let max = self
            .client_max_packet_size
            .filter(|_| !self.limits.defects.has(Defect::ConnackNotFitted));
        if let (true, Some(max)) = (self.version.is_v5(), max) {
            fit_connack(&mut connack, max);
        }
        self.transmits.push_back(Packet::ConnAck(connack));
        self.state = State::Connected;
        self.last_rx = now;
        // [MQTT-4.4.0-1] resend unacknowledged PUBLISH (DUP set) and PUBREL on reconnection.
        let mut inflight: Vec<InflightOut> = self.session.inflight.iter().cloned().collect();
        if self.limits.defects.has(Defect::InflightNotResent) {
            inflight.clear();
        }
        for entry in inflight {
            // [MQTT-4.3.3-7] (5) a QoS 2 PUBLISH once sent is not expired any more.
            if entry.state == OutState::AwaitPubRec
                && entry.publish.properties.message_expiry_interval.is_some()
                && self.limits.defects.has(Defect::InflightQos2Expired)
            {
                self.session
                    .take_inflight(entry.publish.packet_id, OutState::AwaitPubRec);
                continue;
            }
            match entry.state {
                OutState::AwaitPubAck | OutState::AwaitPubRec => {
                    let mut publish = entry.publish;
                    // [MQTT-3.3.1-1] DUP is set on a redelivery.
                    publish.dup = !self.limits.defects.has(Defect::RedeliveryWithoutDup);
                    self.transmit_publish(publish);
                }
                OutState::AwaitPubComp => self.transmits.push_back(Packet::PubRel(PubResponse {
                    packet_id: entry.publish.packet_id,
                    ..Default::default()
                })),
            }
        }
        self.pump(now);
    }

    /// Refuse the CONNECT with `code` (an MQTT 5 reason code; mapped for 3.1.x) and close.
    pub fn reject(&mut self, code: ReasonCode) {
        let mut properties = crate::codec::Properties::default();
        let code = if self.version.is_v5() {
            // [MQTT-3.1.2-29] a Reason String is allowed on CONNACK whatever Request Problem
            // Information says; it is short, so within any sane Maximum Packet Size.
            let fits = self.client_max_packet_size.is_none_or(|max| max >= 64);
            if fits && self.limits.variants.reason_strings == ReasonStrings::Send {
                properties.reason_string = code.name().map(str::to_owned).map(Into::into);
            }
            code
        } else {
            code.to_v3_connack()
        };
        if !(self.version.is_v5()
            && self.limits.variants.refused_connect == RefusedConnect::CloseOnly)
        {
            self.transmits.push_back(Packet::ConnAck(ConnAck {
                session_present: false,
                code,
                properties: properties.into(),
            }));
        }
        self.will = None;
        self.state = State::Closed;
        self.close_kind = Some(CloseKind::Rejected);
    }

    /// Refuse a CONNECT the decoder could not read because of its protocol level: send a
    /// CONNACK in the format of `version` with `code`, then close.
    pub fn reject_version(&mut self, version: ProtocolVersion, code: ReasonCode) {
        self.version = version;
        self.transmits.push_back(Packet::ConnAck(ConnAck {
            session_present: false,
            code,
            properties: Default::default(),
        }));
        self.state = State::Closed;
        self.close_kind = Some(CloseKind::Rejected);
    }

    /// Replace the client identifier (one the server chose for an empty 3.1.1 client id).
    pub fn set_client_id(&mut self, client_id: Arc<str>) {
        self.client_id = client_id;
    }

    pub(super) fn handle_disconnect(&mut self, d: Disconnect) {
        if self.version.is_v5() {
            if let Some(expiry) = d.properties.session_expiry_interval {
                // [MQTT-3.14.2-2] a zero session expiry from CONNECT cannot become non-zero.
                if self.connect_session_expiry_zero
                    && expiry != 0
                    && !self
                        .limits
                        .defects
                        .has(Defect::DisconnectExpiryFromZeroAccepted)
                {
                    self.close(ReasonCode::PROTOCOL_ERROR, CloseKind::ProtocolError);
                    return;
                }
                self.session_expiry = expiry.min(self.limits.max_session_expiry);
            }
            if d.reason != ReasonCode::SUCCESS {
                // [MQTT-3.1.2-10] (5) only reason 0x00 removes the will; 0x04 and errors keep it.
                self.close_silently(CloseKind::DisconnectWithWill);
                return;
            }
        }
        // [MQTT-3.14.4-3] (3.1.1) / [MQTT-3.1.2-10] (5): a normal DISCONNECT discards the will.
        if !self
            .limits
            .defects
            .has(Defect::WillPublishedOnNormalDisconnect)
        {
            self.will = None;
        }
        self.close_silently(CloseKind::NormalDisconnect);
    }
}

/// The Server Keep Alive to send an MQTT 5 client, if any: the imposed `server_keep_alive`,
/// else `max_keep_alive` when the client asks for more or for none (0). MQTT 3.1.x cannot be
/// told, so the client's value holds there.
fn server_keep_alive(limits: &ServerLimits, connect: &Connect) -> Option<u16> {
    if !connect.protocol.is_v5() {
        return None;
    }
    if limits.server_keep_alive.is_some() {
        return limits.server_keep_alive;
    }
    let max = limits.max_keep_alive?;
    (connect.keep_alive == 0 || connect.keep_alive > max).then_some(max)
}

/// Shrink a v5 CONNACK to the client's Maximum Packet Size by leaving out the properties whose
/// absence means the same, or something more conservative: availability flags that are 1
/// (absent means available), Topic Alias Maximum (absent means 0: no aliases), Response
/// Information and user properties (informational).
// [MQTT-3.1.2-24] the Server MUST NOT send packets exceeding the client's Maximum Packet Size.
fn fit_connack(connack: &mut ConnAck, max: u32) {
    let too_big = |c: &ConnAck| {
        let len = encoded_len(&Packet::ConnAck(c.clone()), ProtocolVersion::V5);
        u32::try_from(len).map_or(true, |len| len > max)
    };
    let steps: [fn(&mut Properties); 7] = [
        |p| p.user_properties.clear(),
        |p| p.response_information = None,
        |p| p.retain_available = p.retain_available.filter(|v| *v != 1),
        |p| {
            p.wildcard_subscription_available =
                p.wildcard_subscription_available.filter(|v| *v != 1)
        },
        |p| {
            p.subscription_identifier_available =
                p.subscription_identifier_available.filter(|v| *v != 1)
        },
        |p| p.shared_subscription_available = p.shared_subscription_available.filter(|v| *v != 1),
        |p| p.topic_alias_maximum = None,
    ];
    for step in steps {
        if !too_big(connack) {
            return;
        }
        step(&mut connack.properties);
    }
}

//! Enhanced authentication (MQTT 5, section 4.12): the AUTH exchange of CONNECT and of
//! re-authentication. The state machine keeps the exchange's state (the agreed method, the
//! challenge outstanding, the CONNECT waiting for it) and enforces its rules; the broker only
//! makes challenges and judges answers.

use bytes::Bytes;

use crate::codec::{Auth, Connect, Packet, ReasonCode};

use super::{CloseKind, Event, ServerConnection, State};
use crate::protocol::Defect;

/// Where an enhanced authentication stands.
#[derive(Debug, Default)]
pub(super) struct AuthFlow {
    /// The challenge sent in the last AUTH 0x18, until the client answers it.
    challenge: Option<Bytes>,
    /// The CONNECT that waits for the exchange to finish.
    pending: Option<Box<Connect>>,
    /// The connection was accepted through enhanced authentication: it may re-authenticate.
    authenticated: bool,
}

impl AuthFlow {
    /// Remember the CONNECT of an enhanced authentication until the exchange ends.
    pub(super) fn wait(&mut self, connect: &Connect) {
        self.pending = Some(Box::new(connect.clone()));
    }
}

impl ServerConnection {
    /// Challenge the client (MQTT 5): send AUTH 0x18 with `data` and wait for its answer,
    /// which arrives as [`Event::AuthResponse`]. Answers [`Event::Connect`] with an
    /// Authentication Method the broker supports ([MQTT-4.12.0-2]) and
    /// [`Event::ReAuthenticate`].
    pub fn auth_challenge(&mut self, data: Bytes) {
        if !matches!(
            self.state,
            State::AwaitDecision | State::Authenticating | State::Connected
        ) {
            return;
        }
        let mut auth = Auth {
            reason: ReasonCode::CONTINUE_AUTHENTICATION,
            properties: Default::default(),
        };
        // [MQTT-4.12.0-5] every AUTH names the method of the CONNECT.
        if !self.limits.defects.has(Defect::AuthMethodMissingInAuth) {
            auth.properties.authentication_method = self.auth_method.clone();
        }
        auth.properties.authentication_data = Some(data.clone());
        self.transmits.push_back(Packet::Auth(auth));
        self.auth.challenge = Some(data);
        if self.state == State::AwaitDecision {
            self.state = State::Authenticating;
        }
    }

    /// The broker judged the answer to a challenge. During CONNECT, success hands back the
    /// CONNECT to accept (the CONNACK then names the method) and failure refuses it with 0x87;
    /// during re-authentication, success sends AUTH 0x00 and failure closes the connection
    /// ([MQTT-4.12.1-2]).
    pub fn auth_verdict(&mut self, ok: bool) -> Option<Box<Connect>> {
        match (self.auth.pending.take(), ok) {
            (Some(connect), true) => {
                self.auth.authenticated = true;
                return Some(connect);
            }
            (Some(_), false) => self.reject(ReasonCode::NOT_AUTHORIZED),
            (None, true) => {
                let mut done = Auth::default();
                done.properties.authentication_method = self.auth_method.clone();
                self.send(Packet::Auth(done));
            }
            (None, false) => self.close(ReasonCode::NOT_AUTHORIZED, CloseKind::ProtocolError),
        }
        None
    }

    /// The Authentication Method of a connection accepted through enhanced authentication.
    pub(super) fn authenticated_method(&self) -> Option<String> {
        let method = self
            .auth_method
            .as_ref()
            .filter(|_| self.auth.authenticated)?;
        Some(method.to_string())
    }

    /// An AUTH packet from the client (MQTT 5, during CONNECT or once connected).
    pub(super) fn handle_auth(&mut self, auth: Auth) {
        // [MQTT-4.12.0-5] / [MQTT-4.12.1-1] AUTH carries the Authentication Method of CONNECT;
        // [MQTT-4.12.0-7] without one the client must not send AUTH at all.
        let method = auth.properties.authentication_method.as_ref();
        if self.auth_method.is_none() && self.limits.defects.has(Defect::AuthWithoutMethodIgnored) {
            return;
        }
        if self.auth_method.is_none() || method != self.auth_method.as_ref() {
            self.protocol_error();
            return;
        }
        let connected = self.state == State::Connected;
        if auth.reason == ReasonCode::RE_AUTHENTICATE && connected && self.auth.authenticated {
            // [MQTT-4.12.1-1] re-authentication after CONNACK: the broker challenges again.
            self.events.push_back(Event::ReAuthenticate);
            return;
        }
        let Some(challenge) = self.auth.challenge.take() else {
            // An answer with no challenge outstanding.
            self.protocol_error();
            return;
        };
        if auth.reason != ReasonCode::CONTINUE_AUTHENTICATION {
            // [MQTT-4.12.0-3] an answer to AUTH 0x18 continues the authentication.
            self.auth_verdict(false);
            return;
        }
        self.events.push_back(Event::AuthResponse {
            challenge,
            data: auth.properties.authentication_data.clone(),
        });
    }
}

//! Enhanced authentication (MQTT 5, section 4.12): the AUTH exchange of CONNECT and of
//! re-authentication. The state machine keeps the exchange's state (the agreed method, the
//! challenge outstanding, the CONNECT waiting for it) and enforces its rules; the broker only
//! makes challenges and judges answers.

use bytes::Bytes;
use compact_str::CompactString;

use crate::codec::{Auth, Connect, Packet, ReasonCode};

use super::{CloseKind, Event, ServerConnection, State};
use crate::protocol::Defect;

/// Where an enhanced authentication stands: only for a CONNECT with an Authentication Method
/// (boxed in the connection, which most connections never need).
#[derive(Debug)]
pub(super) struct AuthFlow {
    /// The Authentication Method of the CONNECT.
    method: CompactString,
    /// The challenge sent in the last AUTH 0x18, until the client answers it.
    challenge: Option<Bytes>,
    /// The CONNECT that waits for the exchange to finish.
    pending: Option<Box<Connect>>,
    /// The connection was accepted through enhanced authentication: it may re-authenticate.
    authenticated: bool,
}

impl AuthFlow {
    /// An exchange with `method` that remembers its CONNECT until it ends.
    pub(super) fn new(method: CompactString, connect: &Connect) -> AuthFlow {
        AuthFlow {
            method,
            challenge: None,
            pending: Some(Box::new(connect.clone())),
            authenticated: false,
        }
    }
}

impl ServerConnection {
    /// The Authentication Method of the CONNECT, if it had one.
    fn auth_method(&self) -> Option<&CompactString> {
        self.auth.as_ref().map(|a| &a.method)
    }

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
            auth.properties.authentication_method = self.auth_method().cloned();
        }
        auth.properties.authentication_data = Some(data.clone());
        self.transmits.push_back(Packet::Auth(auth));
        if let Some(flow) = self.auth.as_mut() {
            flow.challenge = Some(data);
        }
        if self.state == State::AwaitDecision {
            self.state = State::Authenticating;
        }
    }

    /// The broker judged the answer to a challenge. During CONNECT, success hands back the
    /// CONNECT to accept (the CONNACK then names the method) and failure refuses it with 0x87;
    /// during re-authentication, success sends AUTH 0x00 and failure closes the connection
    /// ([MQTT-4.12.1-2]).
    pub fn auth_verdict(&mut self, ok: bool) -> Option<Box<Connect>> {
        match (self.auth.as_mut().and_then(|a| a.pending.take()), ok) {
            (Some(connect), true) => {
                if let Some(flow) = self.auth.as_mut() {
                    flow.authenticated = true;
                }
                return Some(connect);
            }
            (Some(_), false) => self.reject(ReasonCode::NOT_AUTHORIZED),
            (None, true) => {
                let mut done = Auth::default();
                done.properties.authentication_method = self.auth_method().cloned();
                self.send(Packet::Auth(done));
            }
            (None, false) => self.close(ReasonCode::NOT_AUTHORIZED, CloseKind::ProtocolError),
        }
        None
    }

    /// The Authentication Method of a connection accepted through enhanced authentication.
    pub(super) fn authenticated_method(&self) -> Option<String> {
        let method = self
            .auth
            .as_ref()
            .filter(|a| a.authenticated)
            .map(|a| &a.method)?;
        Some(method.to_string())
    }

    /// An AUTH packet from the client (MQTT 5, during CONNECT or once connected).
    pub(super) fn handle_auth(&mut self, auth: Auth) {
        // [MQTT-4.12.0-5] / [MQTT-4.12.1-1] AUTH carries the Authentication Method of CONNECT;
        // [MQTT-4.12.0-7] without one the client must not send AUTH at all.
        let method = auth.properties.authentication_method.as_ref();
        if self.auth.is_none() && self.limits.defects.has(Defect::AuthWithoutMethodIgnored) {
            return;
        }
        if self.auth.is_none() || method != self.auth_method() {
            self.protocol_error();
            return;
        }
        let connected = self.state == State::Connected;
        let authenticated = self.auth.as_ref().is_some_and(|a| a.authenticated);
        if auth.reason == ReasonCode::RE_AUTHENTICATE && connected && authenticated {
            // [MQTT-4.12.1-1] re-authentication after CONNACK: the broker challenges again.
            self.events.push_back(Event::ReAuthenticate);
            return;
        }
        let Some(challenge) = self.auth.as_mut().and_then(|a| a.challenge.take()) else {
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

//! Enhanced authentication (MQTT 5, section 4.12): the AUTH exchange of CONNECT and of
//! re-authentication.

use crate::codec::{Auth, Packet, ReasonCode};

use super::{ServerConnection, State};

impl ServerConnection {
    /// Continue an enhanced authentication (MQTT 5): send AUTH 0x18 with `data`.
    pub fn auth_continue(&mut self, data: Option<bytes::Bytes>) {
        let mut auth = Auth {
            reason: ReasonCode::CONTINUE_AUTHENTICATION,
            properties: Default::default(),
        };
        auth.properties.authentication_method = self.auth_method.clone();
        auth.properties.authentication_data = data;
        self.transmits.push_back(Packet::Auth(auth));
        if self.state == State::AwaitDecision {
            self.state = State::Authenticating;
        }
    }
}

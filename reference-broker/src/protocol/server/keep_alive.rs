//! Timers: the CONNECT deadline and keep alive ([MQTT-3.1.2-24] / [MQTT-3.1.2-22]).

use std::time::Instant;

use crate::codec::ReasonCode;

use super::{CloseKind, ServerConnection, State};

impl ServerConnection {
    /// When [`ServerConnection::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::AwaitConnect | State::AwaitDecision | State::Authenticating => {
                Some(self.connect_deadline)
            }
            // [MQTT-3.1.2-24] (3.1.1) / [MQTT-3.1.2-22] (5): one and a half times keep alive.
            State::Connected => self.keep_alive.map(|ka| self.last_rx + ka + ka / 2),
            State::Closed => None,
        }
    }

    /// A timer fired.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.state {
            State::AwaitConnect | State::AwaitDecision | State::Authenticating => {
                self.close_silently(CloseKind::ConnectTimeout);
            }
            State::Connected => {
                self.close(ReasonCode::KEEP_ALIVE_TIMEOUT, CloseKind::KeepAliveTimeout)
            }
            State::Closed => {}
        }
    }

    /// The broker holds back packets this client has sent (back-pressure) and does not read
    /// more for now: count the client as active at `now`, so keep alive closes only silent
    /// clients ([MQTT-3.1.2-24] is about the client's silence, not the server's reading).
    pub fn hold_keep_alive(&mut self, now: Instant) {
        self.last_rx = self.last_rx.max(now);
    }
}

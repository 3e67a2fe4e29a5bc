//! The decode-error policy: what a packet the codec could not read costs the client.

use crate::codec::{reason, DecodeError, ProtocolVersion};

use super::{CloseKind, ServerConnection, State};

impl ServerConnection {
    /// The bytes the client sent do not decode: answer as the specification says and close.
    /// Before CONNECT: an unsupported protocol level gets CONNACK 0x01 in the 3.1.1 format
    /// ([MQTT-3.1.2-2]; the level is not 5, so the client is not known to read the MQTT 5
    /// format, whose 0x84 is optional there; every version reads this one, as Mosquitto
    /// does), anything else a silent close. After CONNECT: DISCONNECT with the error's reason
    /// code (MQTT 5, [MQTT-4.13.1-1]), then close. A deliberate defect may leave the connection
    /// open instead: the caller then skips the packet.
    pub fn decode_error(&mut self, error: &DecodeError) {
        let connecting = self.state == State::AwaitConnect;
        if self
            .limits
            .defects
            .tolerates(error, self.version, connecting)
        {
            return;
        }
        if self.state == State::AwaitConnect {
            if let DecodeError::UnsupportedProtocolVersion(_) = error {
                let code = reason::v3::UNACCEPTABLE_PROTOCOL_VERSION;
                self.reject_version(ProtocolVersion::V3_1_1, code);
            } else {
                self.close_silently(CloseKind::ProtocolError);
            }
            return;
        }
        self.close_with_text(
            error.reason_code(),
            CloseKind::ProtocolError,
            Some(error.to_string()),
        );
    }
}

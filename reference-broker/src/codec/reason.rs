//! MQTT reason codes (5.0) and return codes (3.1.1) as one newtype with named constants.

use std::fmt;

/// A reason code as it travels on the wire.
///
/// MQTT 5 uses one byte in CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK,
/// DISCONNECT and AUTH. MQTT 3.1.1 uses the same byte position for the CONNACK return code
/// (0..=5) and the SUBACK return code (0, 1, 2, 0x80); those share this type so that one
/// packet model serves both versions.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ReasonCode(pub u8);

macro_rules! reason_codes {
    ($($name:ident = $value:expr, $text:expr;)*) => {
        impl ReasonCode {
            $(
                #[doc = $text]
                pub const $name: ReasonCode = ReasonCode($value);
            )*

            /// The specification's name of this code, if it is an MQTT 5 reason code.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($text),)*
                    _ => None,
                }
            }
        }
    };
}

reason_codes! {
    SUCCESS = 0x00, "Success";
    GRANTED_QOS_1 = 0x01, "Granted QoS 1";
    GRANTED_QOS_2 = 0x02, "Granted QoS 2";
    DISCONNECT_WITH_WILL_MESSAGE = 0x04, "Disconnect with Will Message";
    NO_MATCHING_SUBSCRIBERS = 0x10, "No matching subscribers";
    NO_SUBSCRIPTION_EXISTED = 0x11, "No subscription existed";
    CONTINUE_AUTHENTICATION = 0x18, "Continue authentication";
    RE_AUTHENTICATE = 0x19, "Re-authenticate";
    UNSPECIFIED_ERROR = 0x80, "Unspecified error";
    MALFORMED_PACKET = 0x81, "Malformed Packet";
    PROTOCOL_ERROR = 0x82, "Protocol Error";
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83, "Implementation specific error";
    UNSUPPORTED_PROTOCOL_VERSION = 0x84, "Unsupported Protocol Version";
    CLIENT_IDENTIFIER_NOT_VALID = 0x85, "Client Identifier not valid";
    BAD_USER_NAME_OR_PASSWORD = 0x86, "Bad User Name or Password";
    NOT_AUTHORIZED = 0x87, "Not authorized";
    SERVER_UNAVAILABLE = 0x88, "Server unavailable";
    SERVER_BUSY = 0x89, "Server busy";
    BANNED = 0x8A, "Banned";
    SERVER_SHUTTING_DOWN = 0x8B, "Server shutting down";
    BAD_AUTHENTICATION_METHOD = 0x8C, "Bad authentication method";
    KEEP_ALIVE_TIMEOUT = 0x8D, "Keep Alive timeout";
    SESSION_TAKEN_OVER = 0x8E, "Session taken over";
    TOPIC_FILTER_INVALID = 0x8F, "Topic Filter invalid";
    TOPIC_NAME_INVALID = 0x90, "Topic Name invalid";
    PACKET_IDENTIFIER_IN_USE = 0x91, "Packet Identifier in use";
    PACKET_IDENTIFIER_NOT_FOUND = 0x92, "Packet Identifier not found";
    RECEIVE_MAXIMUM_EXCEEDED = 0x93, "Receive Maximum exceeded";
    TOPIC_ALIAS_INVALID = 0x94, "Topic Alias invalid";
    PACKET_TOO_LARGE = 0x95, "Packet too large";
    MESSAGE_RATE_TOO_HIGH = 0x96, "Message rate too high";
    QUOTA_EXCEEDED = 0x97, "Quota exceeded";
    ADMINISTRATIVE_ACTION = 0x98, "Administrative action";
    PAYLOAD_FORMAT_INVALID = 0x99, "Payload format invalid";
    RETAIN_NOT_SUPPORTED = 0x9A, "Retain not supported";
    QOS_NOT_SUPPORTED = 0x9B, "QoS not supported";
    USE_ANOTHER_SERVER = 0x9C, "Use another server";
    SERVER_MOVED = 0x9D, "Server moved";
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E, "Shared Subscriptions not supported";
    CONNECTION_RATE_EXCEEDED = 0x9F, "Connection rate exceeded";
    MAXIMUM_CONNECT_TIME = 0xA0, "Maximum connect time";
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1, "Subscription Identifiers not supported";
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2, "Wildcard Subscriptions not supported";
}

/// MQTT 3.1.1 CONNACK return codes (section 3.2.2.3), which share the byte with v5 reason codes.
pub mod v3 {
    use super::ReasonCode;
    /// 0x00 Connection Accepted.
    pub const ACCEPTED: ReasonCode = ReasonCode(0);
    /// 0x01 Connection Refused, unacceptable protocol version.
    pub const UNACCEPTABLE_PROTOCOL_VERSION: ReasonCode = ReasonCode(1);
    /// 0x02 Connection Refused, identifier rejected.
    pub const IDENTIFIER_REJECTED: ReasonCode = ReasonCode(2);
    /// 0x03 Connection Refused, Server unavailable.
    pub const SERVER_UNAVAILABLE: ReasonCode = ReasonCode(3);
    /// 0x04 Connection Refused, bad user name or password.
    pub const BAD_USER_NAME_OR_PASSWORD: ReasonCode = ReasonCode(4);
    /// 0x05 Connection Refused, not authorized.
    pub const NOT_AUTHORIZED: ReasonCode = ReasonCode(5);
    /// 0x80 SUBACK Failure.
    pub const SUBACK_FAILURE: ReasonCode = ReasonCode(0x80);

    /// The MQTT 3.1.1 meaning of a CONNACK return code (section 3.2.2.3), for traces: the
    /// same byte means something else in MQTT 5 (0x04 is "Bad user name or password" here,
    /// "Disconnect with Will Message" there).
    pub fn connack_name(code: ReasonCode) -> Option<&'static str> {
        Some(match code.0 {
            0 => "Connection Accepted",
            1 => "unacceptable protocol version",
            2 => "identifier rejected",
            3 => "Server unavailable",
            4 => "bad user name or password",
            5 => "not authorized",
            _ => return None,
        })
    }
}

impl ReasonCode {
    /// True for codes below 0x80, which signal success (MQTT 5 section 2.4).
    pub fn is_success(self) -> bool {
        self.0 < 0x80
    }

    /// The MQTT 3.1.1 CONNACK return code closest to this MQTT 5 CONNACK reason code.
    pub fn to_v3_connack(self) -> ReasonCode {
        match self {
            ReasonCode::SUCCESS => v3::ACCEPTED,
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION => v3::UNACCEPTABLE_PROTOCOL_VERSION,
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID => v3::IDENTIFIER_REJECTED,
            ReasonCode::BAD_USER_NAME_OR_PASSWORD | ReasonCode::BAD_AUTHENTICATION_METHOD => {
                v3::BAD_USER_NAME_OR_PASSWORD
            }
            ReasonCode::NOT_AUTHORIZED | ReasonCode::BANNED => v3::NOT_AUTHORIZED,
            _ => v3::SERVER_UNAVAILABLE,
        }
    }
}

impl fmt::Debug for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "0x{:02X} ({name})", self.0),
            None => write!(f, "0x{:02X}", self.0),
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<u8> for ReasonCode {
    fn from(value: u8) -> Self {
        ReasonCode(value)
    }
}

impl ReasonCode {
    /// Whether this code may appear in a packet of `packet_type` under `version`
    /// (MQTT 5 tables 3-1, 3-4, 3-5, 3-6, 3-7, 3-8, 3-9, 3-10, 3-11; MQTT 3.1.1 tables 3.1
    /// and section 3.9.3). Packet types without a reason code return `false`.
    pub fn is_valid_for(
        self,
        packet_type: super::PacketType,
        version: super::ProtocolVersion,
    ) -> bool {
        use super::PacketType as T;
        let c = self.0;
        if !version.is_v5() {
            return match packet_type {
                T::ConnAck => c <= 5,
                // [MQTT-3.9.3-2] (3.1.1)
                T::SubAck => matches!(c, 0x00 | 0x01 | 0x02 | 0x80),
                _ => false,
            };
        }
        match packet_type {
            // [MQTT-3.2.2-8]
            T::ConnAck => matches!(
                c,
                0x00 | 0x80..=0x8A | 0x8C | 0x90 | 0x95 | 0x97 | 0x99..=0x9D | 0x9F
            ),
            // [MQTT-3.4.2-1], PUBREC 3.5.2.1
            T::PubAck | T::PubRec => {
                matches!(
                    c,
                    0x00 | 0x10 | 0x80 | 0x83 | 0x87 | 0x90 | 0x91 | 0x97 | 0x99
                )
            }
            // [MQTT-3.6.2-1], PUBCOMP 3.7.2.1
            T::PubRel | T::PubComp => matches!(c, 0x00 | 0x92),
            // [MQTT-3.9.3-2]
            T::SubAck => matches!(
                c,
                0x00 | 0x01 | 0x02 | 0x80 | 0x83 | 0x87 | 0x8F | 0x91 | 0x97 | 0x9E | 0xA1 | 0xA2
            ),
            // [MQTT-3.11.3-2]
            T::UnsubAck => matches!(c, 0x00 | 0x11 | 0x80 | 0x83 | 0x87 | 0x8F | 0x91),
            // [MQTT-3.14.2-1]
            T::Disconnect => matches!(
                c,
                0x00 | 0x04 | 0x80..=0x83 | 0x87 | 0x89 | 0x8B | 0x8D..=0x90 | 0x93..=0xA2
            ),
            // [MQTT-3.15.2-1]
            T::Auth => matches!(c, 0x00 | 0x18 | 0x19),
            _ => false,
        }
    }
}

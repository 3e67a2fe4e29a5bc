//! Decode errors: one variant per malformed-packet or protocol-error rule of the wire format.

use super::{PacketType, ProtocolVersion, ReasonCode};

/// Why a byte stream is not a valid MQTT packet. Each variant maps to the MQTT 5 reason code a
/// receiver must send in DISCONNECT (or CONNACK) and to the normative statement it enforces;
/// under 3.1.x the receiver just closes the network connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Packet type 0 (reserved), or 15 (AUTH) under 3.1.x.
    #[error("invalid packet type {0}")]
    InvalidPacketType(u8),
    /// Reserved bits of the fixed header are not as Table 2.2 lists them.
    #[error("invalid fixed header flags 0x{flags:X} for {packet_type:?}")]
    InvalidFlags {
        /// The packet type.
        packet_type: PacketType,
        /// The four low bits received.
        flags: u8,
    },
    /// The remaining length uses more than four bytes.
    #[error("remaining length is longer than four bytes")]
    MalformedRemainingLength,
    /// A variable byte integer is not in its shortest form or is longer than four bytes.
    #[error("malformed variable byte integer")]
    MalformedVariableByteInteger,
    /// The packet is larger than the receiver's maximum packet size.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Total packet size (fixed header included).
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The body ends before a field it declares, or has bytes left over.
    #[error("packet body length does not match its contents: {0}")]
    LengthMismatch(&'static str),
    /// A UTF-8 string is not well-formed (including encoded surrogates).
    #[error("string is not well-formed UTF-8")]
    InvalidUtf8,
    /// A UTF-8 string contains U+0000.
    #[error("string contains the null character U+0000")]
    NullCharacter,
    /// The protocol name is not "MQTT" (or "MQIsdp" for level 3).
    #[error("invalid protocol name {0:?}")]
    InvalidProtocolName(String),
    /// The protocol level is not 3, 4 or 5.
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocolVersion(u8),
    /// The reserved bit 0 of the CONNECT flags is set.
    #[error("reserved CONNECT flag bit is set")]
    ConnectReservedFlag,
    /// Will flag, will QoS and will retain disagree, or will QoS is 3.
    #[error("invalid will flags")]
    InvalidWillFlags,
    /// Password flag set without user name flag (3.1.1).
    #[error("password flag set without user name flag")]
    PasswordWithoutUsername,
    /// QoS 3 in a PUBLISH or a subscription.
    #[error("invalid QoS 3")]
    InvalidQoS,
    /// DUP set on a QoS 0 PUBLISH.
    #[error("DUP flag set on a QoS 0 PUBLISH")]
    DupOnQoS0,
    /// A topic name contains a wildcard character.
    #[error("topic name {0:?} contains a wildcard")]
    WildcardInTopicName(String),
    /// A topic name is empty where it must not be.
    #[error("topic name is empty")]
    EmptyTopicName,
    /// A topic filter breaks the wildcard rules or is empty.
    #[error("invalid topic filter {0:?}")]
    InvalidTopicFilter(String),
    /// A packet identifier is 0 where a non-zero one is required.
    #[error("packet identifier is zero")]
    ZeroPacketIdentifier,
    /// SUBSCRIBE or UNSUBSCRIBE without any topic filter.
    #[error("{0:?} carries no topic filter")]
    NoTopicFilters(PacketType),
    /// Reserved bits of the subscription options are set.
    #[error("reserved subscription option bits are set")]
    SubscriptionOptionsReserved,
    /// Retain handling 3.
    #[error("invalid retain handling 3")]
    InvalidRetainHandling,
    /// A property identifier is unknown.
    #[error("unknown property identifier 0x{0:02X}")]
    UnknownProperty(u8),
    /// A property is not allowed in this packet.
    #[error("property 0x{id:02X} is not allowed in {context}")]
    PropertyNotAllowed {
        /// The property identifier.
        id: u8,
        /// Where it appeared.
        context: &'static str,
    },
    /// A property that may appear once appears twice.
    #[error("property 0x{0:02X} appears more than once")]
    DuplicateProperty(u8),
    /// A property value is out of its allowed range (e.g. Receive Maximum 0).
    #[error("invalid value for property 0x{0:02X}")]
    InvalidPropertyValue(u8),
    /// A reason code is not valid for this packet.
    #[error("reason code 0x{code:02X} is not valid in {packet_type:?}")]
    InvalidReasonCode {
        /// The packet type.
        packet_type: PacketType,
        /// The code received.
        code: u8,
    },
    /// The first packet is not CONNECT, or a CONNECT arrives before the version is known
    /// in a way the decoder cannot handle.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
}

impl DecodeError {
    /// The MQTT 5 reason code a receiver sends before closing for this error.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            DecodeError::UnsupportedProtocolVersion(_) | DecodeError::InvalidProtocolName(_) => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            DecodeError::WildcardInTopicName(_) | DecodeError::EmptyTopicName => {
                ReasonCode::TOPIC_NAME_INVALID
            }
            DecodeError::InvalidTopicFilter(_) => ReasonCode::TOPIC_FILTER_INVALID,
            DecodeError::DuplicateProperty(_)
            | DecodeError::InvalidPropertyValue(_)
            | DecodeError::Protocol(_)
            | DecodeError::ZeroPacketIdentifier
            | DecodeError::NoTopicFilters(_) => ReasonCode::PROTOCOL_ERROR,
            _ => ReasonCode::MALFORMED_PACKET,
        }
    }

    /// The normative statement this error enforces, in the numbering of `version`.
    pub fn statement(&self, version: ProtocolVersion) -> Option<&'static str> {
        let v5 = version.is_v5();
        Some(match self {
            DecodeError::InvalidFlags { .. } => {
                if v5 {
                    "MQTT-2.1.3-1"
                } else {
                    "MQTT-2.2.2-2"
                }
            }
            DecodeError::InvalidUtf8 => {
                if v5 {
                    "MQTT-1.5.4-1"
                } else {
                    "MQTT-1.5.3-1"
                }
            }
            DecodeError::NullCharacter => {
                if v5 {
                    "MQTT-1.5.4-2"
                } else {
                    "MQTT-1.5.3-2"
                }
            }
            DecodeError::MalformedVariableByteInteger => "MQTT-1.5.5-1",
            DecodeError::InvalidProtocolName(_) => "MQTT-3.1.2-1",
            DecodeError::UnsupportedProtocolVersion(_) => "MQTT-3.1.2-2",
            DecodeError::ConnectReservedFlag => "MQTT-3.1.2-3",
            DecodeError::DupOnQoS0 => {
                if v5 {
                    "MQTT-3.3.1-2"
                } else {
                    "MQTT-3.3.1-2"
                }
            }
            DecodeError::InvalidQoS => "MQTT-3.3.1-4",
            DecodeError::WildcardInTopicName(_) => "MQTT-3.3.2-2",
            DecodeError::ZeroPacketIdentifier => "MQTT-2.3.1-1",
            _ => return None,
        })
    }
}

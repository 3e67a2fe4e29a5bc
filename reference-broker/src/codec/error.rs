//! Decode errors: one variant per malformed-packet or protocol-error rule of the wire format.

use super::{PacketType, ProtocolVersion, ReasonCode};
use crate::topic::{validate_topic_filter, validate_topic_filter_v5, TopicError};

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
    /// A CONNACK in MQTT 3.1.1 form (two bytes, return code 1 to 5) on an MQTT 5 connection:
    /// a server that does not speak MQTT 5 refusing it ([MQTT-3.1.2-2] of 3.1.1). Typed so
    /// that a client can record the refusal instead of reporting a malformed packet.
    #[error("CONNACK in MQTT 3.1.1 form refusing the connection (return code 0x{0:02X})")]
    V311ConnAckRefusal(u8),
    /// Reserved bits 7-1 of the CONNACK acknowledge flags are set.
    #[error("reserved CONNACK flag bits are set: 0x{0:02X}")]
    ConnAckReservedFlags(u8),
    /// QoS 3 as the maximum QoS of a subscription.
    #[error("invalid subscription QoS 3")]
    InvalidSubscriptionQoS,
    /// No Local set on a shared subscription (MQTT 5).
    #[error("No Local set on a shared subscription")]
    NoLocalOnSharedSubscription,
    /// The first packet is not CONNECT, or a CONNECT arrives before the version is known
    /// in a way the decoder cannot handle.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
}

impl DecodeError {
    /// The MQTT 5 reason code a receiver sends before closing for this error (in DISCONNECT,
    /// or in CONNACK while connecting). This is the only place errors map to reason codes.
    ///
    /// Malformed Packet (0x81) unless the specification calls the case a Protocol Error
    /// (0x82) or names a dedicated code: 0x84 for the protocol name/level, 0x95 for size,
    /// 0x90 for an invalid topic name and 0x8F for an invalid topic filter.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            DecodeError::UnsupportedProtocolVersion(_) | DecodeError::InvalidProtocolName(_) => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            DecodeError::WildcardInTopicName(_) => ReasonCode::TOPIC_NAME_INVALID,
            DecodeError::InvalidTopicFilter(_) => ReasonCode::TOPIC_FILTER_INVALID,
            // MQTT 5 section 3.3.2.1: a zero-length topic name without a Topic Alias is a
            // Protocol Error; section 2.2.2.2: a property included twice; 3.8.3.1: Retain
            // Handling 3, subscription QoS 3; [MQTT-3.8.3-4] No Local on a shared
            // subscription; 3.8.3 / 3.10.3: SUBSCRIBE / UNSUBSCRIBE without payload; value
            // ranges of Receive Maximum, Maximum Packet Size, the 0/1 byte properties and
            // Subscription Identifier 0.
            DecodeError::EmptyTopicName
            | DecodeError::DuplicateProperty(_)
            | DecodeError::InvalidPropertyValue(_)
            | DecodeError::InvalidRetainHandling
            | DecodeError::InvalidSubscriptionQoS
            | DecodeError::NoLocalOnSharedSubscription
            | DecodeError::Protocol(_)
            | DecodeError::ZeroPacketIdentifier
            | DecodeError::NoTopicFilters(_) => ReasonCode::PROTOCOL_ERROR,
            DecodeError::InvalidPacketType(_)
            | DecodeError::InvalidFlags { .. }
            | DecodeError::MalformedRemainingLength
            | DecodeError::MalformedVariableByteInteger
            | DecodeError::LengthMismatch(_)
            | DecodeError::InvalidUtf8
            | DecodeError::NullCharacter
            | DecodeError::ConnectReservedFlag
            | DecodeError::InvalidWillFlags
            | DecodeError::PasswordWithoutUsername
            | DecodeError::InvalidQoS
            | DecodeError::DupOnQoS0
            | DecodeError::SubscriptionOptionsReserved
            | DecodeError::UnknownProperty(_)
            | DecodeError::PropertyNotAllowed { .. }
            | DecodeError::InvalidReasonCode { .. }
            | DecodeError::ConnAckReservedFlags(_)
            | DecodeError::V311ConnAckRefusal(_) => ReasonCode::MALFORMED_PACKET,
        }
    }

    /// The normative statement this error enforces, in the numbering of `version`
    /// (`None` where that version's statement list names none).
    pub fn statement(&self, version: ProtocolVersion) -> Option<&'static str> {
        let v5 = version.is_v5();
        let pick = |v3: &'static str, v5_id: &'static str| Some(if v5 { v5_id } else { v3 });
        match self {
            DecodeError::InvalidFlags { packet_type, .. } => match packet_type {
                PacketType::PubRel => Some("MQTT-3.6.1-1"),
                PacketType::Subscribe => Some("MQTT-3.8.1-1"),
                PacketType::Unsubscribe => Some("MQTT-3.10.1-1"),
                PacketType::Disconnect => Some("MQTT-3.14.1-1"),
                PacketType::Auth => Some("MQTT-3.15.1-1"),
                PacketType::Publish => Some("MQTT-3.3.1-4"),
                _ => pick("MQTT-2.2.2-2", "MQTT-2.1.3-1"),
            },
            DecodeError::InvalidUtf8 => pick("MQTT-1.5.3-1", "MQTT-1.5.4-1"),
            DecodeError::NullCharacter => pick("MQTT-1.5.3-2", "MQTT-1.5.4-2"),
            DecodeError::MalformedVariableByteInteger | DecodeError::MalformedRemainingLength => {
                if v5 {
                    Some("MQTT-1.5.5-1")
                } else {
                    None
                }
            }
            DecodeError::InvalidProtocolName(_) => Some("MQTT-3.1.2-1"),
            DecodeError::UnsupportedProtocolVersion(_) => Some("MQTT-3.1.2-2"),
            DecodeError::ConnectReservedFlag => Some("MQTT-3.1.2-3"),
            DecodeError::InvalidWillFlags => Some("MQTT-3.1.2-11"),
            DecodeError::PasswordWithoutUsername if !v5 => Some("MQTT-3.1.2-22"),
            DecodeError::ConnAckReservedFlags(_) if v5 => Some("MQTT-3.2.2-1"),
            DecodeError::DupOnQoS0 => Some("MQTT-3.3.1-2"),
            DecodeError::InvalidQoS => Some("MQTT-3.3.1-4"),
            DecodeError::WildcardInTopicName(_) => Some("MQTT-3.3.2-2"),
            DecodeError::EmptyTopicName => Some("MQTT-4.7.3-1"),
            DecodeError::InvalidTopicFilter(filter) => {
                let checked = if v5 {
                    validate_topic_filter_v5(filter)
                } else {
                    validate_topic_filter(filter)
                };
                match checked {
                    Err(TopicError::Empty) => Some("MQTT-4.7.3-1"),
                    Err(TopicError::MisplacedMultiLevelWildcard) => {
                        pick("MQTT-4.7.1-2", "MQTT-4.7.1-1")
                    }
                    Err(TopicError::MisplacedSingleLevelWildcard) => {
                        pick("MQTT-4.7.1-3", "MQTT-4.7.1-2")
                    }
                    Err(TopicError::InvalidSharedSubscription) => Some("MQTT-4.8.2-2"),
                    Err(TopicError::NullCharacter) => Some("MQTT-4.7.3-2"),
                    _ => None,
                }
            }
            DecodeError::ZeroPacketIdentifier => pick("MQTT-2.3.1-1", "MQTT-2.2.1-3"),
            DecodeError::NoTopicFilters(t) => match t {
                PacketType::Subscribe => pick("MQTT-3.8.3-3", "MQTT-3.8.3-2"),
                PacketType::Unsubscribe => Some("MQTT-3.10.3-2"),
                PacketType::SubAck => pick("MQTT-3.8.4-5", "MQTT-3.8.4-6"),
                PacketType::UnsubAck if v5 => Some("MQTT-3.11.3-2"),
                _ => None,
            },
            DecodeError::SubscriptionOptionsReserved => pick("MQTT-3.8.3-4", "MQTT-3.8.3-5"),
            DecodeError::InvalidSubscriptionQoS if !v5 => Some("MQTT-3.8.3-4"),
            DecodeError::NoLocalOnSharedSubscription if v5 => Some("MQTT-3.8.3-4"),
            // The Response Topic must not contain wildcards.
            DecodeError::InvalidPropertyValue(0x08) if v5 => Some("MQTT-3.3.2-14"),
            DecodeError::InvalidReasonCode { packet_type, .. } => match (packet_type, v5) {
                (PacketType::SubAck, _) => Some("MQTT-3.9.3-2"),
                (PacketType::ConnAck, true) => Some("MQTT-3.2.2-8"),
                (PacketType::PubAck, true) => Some("MQTT-3.4.2-1"),
                (PacketType::PubRel, true) => Some("MQTT-3.6.2-1"),
                (PacketType::UnsubAck, true) => Some("MQTT-3.11.3-2"),
                (PacketType::Disconnect, true) => Some("MQTT-3.14.2-1"),
                (PacketType::Auth, true) => Some("MQTT-3.15.2-1"),
                _ => None,
            },
            _ => None,
        }
    }
}

//! MQTT 5 properties: identifiers, value types, which packets may carry them, and the
//! decoded property set shared by every packet.

use bytes::Bytes;
use compact_str::CompactString;

/// The wire type of a property value (MQTT 5 section 2.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyType {
    /// One byte.
    Byte,
    /// Two Byte Integer.
    TwoByteInteger,
    /// Four Byte Integer.
    FourByteInteger,
    /// Variable Byte Integer.
    VariableByteInteger,
    /// UTF-8 Encoded String.
    Utf8String,
    /// UTF-8 String Pair.
    Utf8StringPair,
    /// Binary Data.
    BinaryData,
}

/// A control packet kind as far as property placement is concerned. Will properties are
/// carried in CONNECT's payload but have their own allowed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropertyContext {
    /// CONNECT variable header.
    Connect,
    /// CONNACK.
    ConnAck,
    /// PUBLISH.
    Publish,
    /// Will properties in the CONNECT payload.
    Will,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    PubResponse,
    /// SUBSCRIBE.
    Subscribe,
    /// SUBACK.
    SubAck,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// UNSUBACK.
    UnsubAck,
    /// DISCONNECT.
    Disconnect,
    /// AUTH.
    Auth,
}

macro_rules! property_ids {
    ($($name:ident = $id:expr, $ty:ident, $text:expr, [$($ctx:ident),*];)*) => {
        /// Every MQTT 5 property identifier (MQTT 5 section 2.2.2.2, Table 2-4).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum PropertyId {
            $(
                #[doc = $text]
                $name = $id,
            )*
        }

        impl PropertyId {
            /// The identifier for a wire byte, or `None` for an unknown identifier.
            pub fn from_u8(id: u8) -> Option<PropertyId> {
                match id {
                    $($id => Some(PropertyId::$name),)*
                    _ => None,
                }
            }

            /// The value type of this property.
            pub fn value_type(self) -> PropertyType {
                match self {
                    $(PropertyId::$name => PropertyType::$ty,)*
                }
            }

            /// The specification's name of this property.
            pub fn name(self) -> &'static str {
                match self {
                    $(PropertyId::$name => $text,)*
                }
            }

            /// Whether the property may appear in the given packet; anything else is a
            /// Protocol Error / Malformed Packet for the receiver.
            #[inline]
            pub fn allowed_in(self, ctx: PropertyContext) -> bool {
                // One bit per context, so the check is a shift on the decoder's hot path.
                let mask: u16 = match self {
                    $(PropertyId::$name => 0 $(| (1u16 << PropertyContext::$ctx as u16))*,)*
                };
                mask & (1u16 << ctx as u16) != 0
            }

            /// Every property identifier, in identifier order.
            pub const ALL: &'static [PropertyId] = &[$(PropertyId::$name,)*];
        }
    };
}

property_ids! {
    PayloadFormatIndicator = 0x01, Byte, "Payload Format Indicator", [Publish, Will];
    MessageExpiryInterval = 0x02, FourByteInteger, "Message Expiry Interval", [Publish, Will];
    ContentType = 0x03, Utf8String, "Content Type", [Publish, Will];
    ResponseTopic = 0x08, Utf8String, "Response Topic", [Publish, Will];
    CorrelationData = 0x09, BinaryData, "Correlation Data", [Publish, Will];
    SubscriptionIdentifier = 0x0B, VariableByteInteger, "Subscription Identifier", [Publish, Subscribe];
    SessionExpiryInterval = 0x11, FourByteInteger, "Session Expiry Interval", [Connect, ConnAck, Disconnect];
    AssignedClientIdentifier = 0x12, Utf8String, "Assigned Client Identifier", [ConnAck];
    ServerKeepAlive = 0x13, TwoByteInteger, "Server Keep Alive", [ConnAck];
    AuthenticationMethod = 0x15, Utf8String, "Authentication Method", [Connect, ConnAck, Auth];
    AuthenticationData = 0x16, BinaryData, "Authentication Data", [Connect, ConnAck, Auth];
    RequestProblemInformation = 0x17, Byte, "Request Problem Information", [Connect];
    WillDelayInterval = 0x18, FourByteInteger, "Will Delay Interval", [Will];
    RequestResponseInformation = 0x19, Byte, "Request Response Information", [Connect];
    ResponseInformation = 0x1A, Utf8String, "Response Information", [ConnAck];
    ServerReference = 0x1C, Utf8String, "Server Reference", [ConnAck, Disconnect];
    ReasonString = 0x1F, Utf8String, "Reason String", [ConnAck, PubResponse, SubAck, UnsubAck, Disconnect, Auth];
    ReceiveMaximum = 0x21, TwoByteInteger, "Receive Maximum", [Connect, ConnAck];
    TopicAliasMaximum = 0x22, TwoByteInteger, "Topic Alias Maximum", [Connect, ConnAck];
    TopicAlias = 0x23, TwoByteInteger, "Topic Alias", [Publish];
    MaximumQos = 0x24, Byte, "Maximum QoS", [ConnAck];
    RetainAvailable = 0x25, Byte, "Retain Available", [ConnAck];
    UserProperty = 0x26, Utf8StringPair, "User Property", [Connect, ConnAck, Publish, Will, PubResponse, Subscribe, SubAck, Unsubscribe, UnsubAck, Disconnect, Auth];
    MaximumPacketSize = 0x27, FourByteInteger, "Maximum Packet Size", [Connect, ConnAck];
    WildcardSubscriptionAvailable = 0x28, Byte, "Wildcard Subscription Available", [ConnAck];
    SubscriptionIdentifierAvailable = 0x29, Byte, "Subscription Identifier Available", [ConnAck];
    SharedSubscriptionAvailable = 0x2A, Byte, "Shared Subscription Available", [ConnAck];
}

/// The decoded properties of one packet. Strings are [`CompactString`]s: property values
/// are short (content types, user properties, reason strings), and up to 24 bytes a
/// `CompactString` keeps them inline, so decoding one costs neither an allocation nor a
/// reference count. Every field is optional; which ones may be set
/// depends on the packet ([`PropertyId::allowed_in`]). `UserProperty` and (in PUBLISH)
/// `SubscriptionIdentifier` may repeat, so they are lists and keep their wire order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Properties {
    /// 0x01: 0 = unspecified bytes, 1 = UTF-8 payload.
    pub payload_format_indicator: Option<u8>,
    /// 0x02: seconds until the application message expires.
    pub message_expiry_interval: Option<u32>,
    /// 0x03: MIME-like description of the payload.
    pub content_type: Option<CompactString>,
    /// 0x08: topic for a response message.
    pub response_topic: Option<CompactString>,
    /// 0x09: opaque data to correlate request and response.
    pub correlation_data: Option<Bytes>,
    /// 0x0B: subscription identifiers (one in SUBSCRIBE, one per matching subscription in PUBLISH).
    pub subscription_identifiers: Vec<u32>,
    /// 0x11: seconds the session outlives the connection.
    pub session_expiry_interval: Option<u32>,
    /// 0x12: client id assigned by the server for a zero-length client id.
    pub assigned_client_identifier: Option<CompactString>,
    /// 0x13: keep alive the server imposes.
    pub server_keep_alive: Option<u16>,
    /// 0x15: name of the extended authentication method.
    pub authentication_method: Option<CompactString>,
    /// 0x16: data of the extended authentication exchange.
    pub authentication_data: Option<Bytes>,
    /// 0x17: whether reason strings and user properties may be sent on failures.
    pub request_problem_information: Option<u8>,
    /// 0x18: seconds the server waits before publishing the will.
    pub will_delay_interval: Option<u32>,
    /// 0x19: whether the client wants response information in CONNACK.
    pub request_response_information: Option<u8>,
    /// 0x1A: basis for response topics.
    pub response_information: Option<CompactString>,
    /// 0x1C: another server to use.
    pub server_reference: Option<CompactString>,
    /// 0x1F: human-readable diagnostic.
    pub reason_string: Option<CompactString>,
    /// 0x21: how many QoS 1/2 publications the sender accepts at once.
    pub receive_maximum: Option<u16>,
    /// 0x22: highest topic alias the sender accepts.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23: topic alias of this PUBLISH. The decoder accepts any value: 0 ([MQTT-3.3.2-8])
    /// and values above the Topic Alias Maximum are rejected by the protocol layer, which
    /// knows the maximum, with 0x94 Topic Alias invalid.
    pub topic_alias: Option<u16>,
    /// 0x24: highest QoS the server supports (0 or 1; absent means 2).
    pub maximum_qos: Option<u8>,
    /// 0x25: whether the server supports retained messages.
    pub retain_available: Option<u8>,
    /// 0x26: user properties, in wire order, duplicates allowed.
    pub user_properties: Vec<(CompactString, CompactString)>,
    /// 0x27: largest packet the sender accepts.
    pub maximum_packet_size: Option<u32>,
    /// 0x28: whether the server supports wildcard subscriptions.
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29: whether the server supports subscription identifiers.
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A: whether the server supports shared subscriptions.
    pub shared_subscription_available: Option<u8>,
}

impl Properties {
    /// The empty set, usable in constants and statics.
    pub const EMPTY: Properties = Properties {
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        subscription_identifiers: Vec::new(),
        session_expiry_interval: None,
        assigned_client_identifier: None,
        server_keep_alive: None,
        authentication_method: None,
        authentication_data: None,
        request_problem_information: None,
        will_delay_interval: None,
        request_response_information: None,
        response_information: None,
        server_reference: None,
        reason_string: None,
        receive_maximum: None,
        topic_alias_maximum: None,
        topic_alias: None,
        maximum_qos: None,
        retain_available: None,
        user_properties: Vec::new(),
        maximum_packet_size: None,
        wildcard_subscription_available: None,
        subscription_identifier_available: None,
        shared_subscription_available: None,
    };

    /// True when no property is set, so the property length on the wire is 0.
    pub fn is_empty(&self) -> bool {
        // Field by field (the destructuring keeps this exhaustive): comparing against a
        // fresh `Properties::default()` builds and compares a 344-byte value on every call.
        let Properties {
            payload_format_indicator,
            message_expiry_interval,
            content_type,
            response_topic,
            correlation_data,
            subscription_identifiers,
            session_expiry_interval,
            assigned_client_identifier,
            server_keep_alive,
            authentication_method,
            authentication_data,
            request_problem_information,
            will_delay_interval,
            request_response_information,
            response_information,
            server_reference,
            reason_string,
            receive_maximum,
            topic_alias_maximum,
            topic_alias,
            maximum_qos,
            retain_available,
            user_properties,
            maximum_packet_size,
            wildcard_subscription_available,
            subscription_identifier_available,
            shared_subscription_available,
        } = self;
        payload_format_indicator.is_none()
            && message_expiry_interval.is_none()
            && content_type.is_none()
            && response_topic.is_none()
            && correlation_data.is_none()
            && subscription_identifiers.is_empty()
            && session_expiry_interval.is_none()
            && assigned_client_identifier.is_none()
            && server_keep_alive.is_none()
            && authentication_method.is_none()
            && authentication_data.is_none()
            && request_problem_information.is_none()
            && will_delay_interval.is_none()
            && request_response_information.is_none()
            && response_information.is_none()
            && server_reference.is_none()
            && reason_string.is_none()
            && receive_maximum.is_none()
            && topic_alias_maximum.is_none()
            && topic_alias.is_none()
            && maximum_qos.is_none()
            && retain_available.is_none()
            && user_properties.is_empty()
            && maximum_packet_size.is_none()
            && wildcard_subscription_available.is_none()
            && subscription_identifier_available.is_none()
            && shared_subscription_available.is_none()
    }
}

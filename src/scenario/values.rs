//! Scalar values of the scenario format: protocol versions, durations, reason codes, packet kinds.

use std::fmt;
use std::time::Duration;

use reference_broker::codec::{PacketType, ProtocolVersion, ReasonCode};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A protocol version a case runs under: `"3.1.1"` or `"5"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// MQTT 3.1.1.
    V311,
    /// MQTT 5.0.
    V5,
}

impl Version {
    /// Both versions, in report order.
    pub const ALL: [Version; 2] = [Version::V311, Version::V5];

    /// The label used in scenario files and reports: `3.1.1` or `5`.
    pub fn label(self) -> &'static str {
        match self {
            Version::V311 => "3.1.1",
            Version::V5 => "5",
        }
    }

    /// The codec's protocol version.
    pub fn protocol(self) -> ProtocolVersion {
        match self {
            Version::V311 => ProtocolVersion::V3_1_1,
            Version::V5 => ProtocolVersion::V5,
        }
    }

    /// Parse `3.1.1`, `5` or `5.0`.
    pub fn parse(text: &str) -> Option<Version> {
        match text.trim() {
            "3.1.1" => Some(Version::V311),
            "5" | "5.0" => Some(Version::V5),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Version;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a protocol version \"3.1.1\" or \"5\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Version, E> {
                Version::parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Version, E> {
                match v {
                    5 => Ok(Version::V5),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Version, E> {
                match v {
                    5 => Ok(Version::V5),
                    _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Version, E> {
                if v == 5.0 {
                    Ok(Version::V5)
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Version {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Version".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A protocol version: \"3.1.1\" or \"5\"",
            "enum": ["3.1.1", "5", "5.0", 5]
        })
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration like \"500ms\", \"2s\" or \"1.5s\"",
            "type": "string",
            "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*(ms|s)\\s*$"
        })
    }
}

impl JsonSchema for Code {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ReasonCode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A reason or return code: a number 0..=255 (0x87, 135) or a snake-case name (not_authorized)",
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": 255},
                {"type": "string", "pattern": "^(0[xX][0-9a-fA-F]{1,2}|[0-9]{1,3}|[a-z0-9_]+)$"}
            ]
        })
    }
}

/// A duration written as `500ms`, `2s` or `1.5s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    /// Parse `<number>ms` or `<number>s` (the number may have a fraction).
    pub fn parse(text: &str) -> Option<Dur> {
        let text = text.trim();
        let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
            (n, 0.001)
        } else if let Some(n) = text.strip_suffix('s') {
            (n, 1.0)
        } else {
            return None;
        };
        let value: f64 = number.trim().parse().ok()?;
        if !value.is_finite() || !(0.0..=86_400.0).contains(&value) {
            return None;
        }
        Some(Dur(Duration::from_secs_f64(value * scale)))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0.as_millis())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration like \"500ms\" or \"1.5s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                Dur::parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_str(V)
    }
}

/// A reason code (MQTT 5) or return code (3.1.1): a number (`0x87`, `135`) or a snake-case
/// name (`not_authorized`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(pub ReasonCode);

impl Code {
    /// Parse a number (decimal or `0x` hex) or a reason code name in snake case.
    pub fn parse(text: &str) -> Option<Code> {
        let text = text.trim();
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            return u8::from_str_radix(hex, 16)
                .ok()
                .map(|b| Code(ReasonCode(b)));
        }
        if let Ok(n) = text.parse::<u8>() {
            return Some(Code(ReasonCode(n)));
        }
        let wanted = text.to_ascii_lowercase();
        (0u8..=255)
            .map(ReasonCode)
            .find(|code| code.name().is_some_and(|name| snake(name) == wanted))
            .map(Code)
    }
}

/// `"Granted QoS 1"` -> `granted_qos_1`.
fn snake(name: &str) -> String {
    name.to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Code;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a reason code: a number 0..=255 (0x87) or a name (not_authorized)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Code, E> {
                Code::parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Code, E> {
                u8::try_from(v)
                    .map(|b| Code(ReasonCode(b)))
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Code, E> {
                u8::try_from(v)
                    .map(|b| Code(ReasonCode(b)))
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// The kind of a control packet, as named in `expect` and `send` steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PacketKind {
    /// CONNECT
    Connect,
    /// CONNACK
    Connack,
    /// PUBLISH
    Publish,
    /// PUBACK
    Puback,
    /// PUBREC
    Pubrec,
    /// PUBREL
    Pubrel,
    /// PUBCOMP
    Pubcomp,
    /// SUBSCRIBE
    Subscribe,
    /// SUBACK
    Suback,
    /// UNSUBSCRIBE
    Unsubscribe,
    /// UNSUBACK
    Unsuback,
    /// PINGREQ
    Pingreq,
    /// PINGRESP
    Pingresp,
    /// DISCONNECT
    Disconnect,
    /// AUTH
    Auth,
}

impl PacketKind {
    /// The codec's packet type (resolved while the YAML is read: see [`Kind`]).
    fn packet_type(self) -> PacketType {
        match self {
            PacketKind::Connect => PacketType::Connect,
            PacketKind::Connack => PacketType::ConnAck,
            PacketKind::Publish => PacketType::Publish,
            PacketKind::Puback => PacketType::PubAck,
            PacketKind::Pubrec => PacketType::PubRec,
            PacketKind::Pubrel => PacketType::PubRel,
            PacketKind::Pubcomp => PacketType::PubComp,
            PacketKind::Subscribe => PacketType::Subscribe,
            PacketKind::Suback => PacketType::SubAck,
            PacketKind::Unsubscribe => PacketType::Unsubscribe,
            PacketKind::Unsuback => PacketType::UnsubAck,
            PacketKind::Pingreq => PacketType::PingReq,
            PacketKind::Pingresp => PacketType::PingResp,
            PacketKind::Disconnect => PacketType::Disconnect,
            PacketKind::Auth => PacketType::Auth,
        }
    }
}

/// A packet kind an `expect` names, resolved to the codec's type while the YAML is read, so
/// the runner compares packet types and maps nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kind(pub PacketType);

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PacketKind::deserialize(d).map(|k| Kind(k.packet_type()))
    }
}

// Written back as the YAML spells it (`connack`), so the JSON Schema shows the defaults.
impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:?}", self.0).to_lowercase())
    }
}

impl JsonSchema for Kind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        PacketKind::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        PacketKind::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        PacketKind::json_schema(generator)
    }
}

/// The packet a `send` step sends: only the kinds a client sends, so a server-only kind
/// (CONNACK, SUBACK, UNSUBACK, PINGRESP) is a load error at its line, not a runtime one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PacketKind")]
pub enum ClientPacket {
    /// CONNECT
    Connect,
    /// PUBLISH
    Publish,
    /// PUBACK
    Puback,
    /// PUBREC
    Pubrec,
    /// PUBREL
    Pubrel,
    /// PUBCOMP
    Pubcomp,
    /// SUBSCRIBE
    Subscribe,
    /// UNSUBSCRIBE
    Unsubscribe,
    /// PINGREQ
    Pingreq,
    /// DISCONNECT
    Disconnect,
    /// AUTH
    Auth,
}

impl JsonSchema for ClientPacket {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ClientPacket".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A packet kind a client sends (CONNACK, SUBACK, UNSUBACK and PINGRESP only a server does)",
            "type": "string",
            "enum": ["connect", "publish", "puback", "pubrec", "pubrel", "pubcomp", "subscribe",
                     "unsubscribe", "pingreq", "disconnect", "auth"]
        })
    }
}

impl ClientPacket {
    /// The codec's packet type.
    pub fn packet_type(self) -> PacketType {
        match self {
            ClientPacket::Connect => PacketType::Connect,
            ClientPacket::Publish => PacketType::Publish,
            ClientPacket::Puback => PacketType::PubAck,
            ClientPacket::Pubrec => PacketType::PubRec,
            ClientPacket::Pubrel => PacketType::PubRel,
            ClientPacket::Pubcomp => PacketType::PubComp,
            ClientPacket::Subscribe => PacketType::Subscribe,
            ClientPacket::Unsubscribe => PacketType::Unsubscribe,
            ClientPacket::Pingreq => PacketType::PingReq,
            ClientPacket::Disconnect => PacketType::Disconnect,
            ClientPacket::Auth => PacketType::Auth,
        }
    }
}

impl TryFrom<PacketKind> for ClientPacket {
    type Error = String;

    fn try_from(k: PacketKind) -> Result<Self, String> {
        Ok(match k {
            PacketKind::Connect => ClientPacket::Connect,
            PacketKind::Publish => ClientPacket::Publish,
            PacketKind::Puback => ClientPacket::Puback,
            PacketKind::Pubrec => ClientPacket::Pubrec,
            PacketKind::Pubrel => ClientPacket::Pubrel,
            PacketKind::Pubcomp => ClientPacket::Pubcomp,
            PacketKind::Subscribe => ClientPacket::Subscribe,
            PacketKind::Unsubscribe => ClientPacket::Unsubscribe,
            PacketKind::Pingreq => ClientPacket::Pingreq,
            PacketKind::Disconnect => ClientPacket::Disconnect,
            PacketKind::Auth => ClientPacket::Auth,
            PacketKind::Connack
            | PacketKind::Suback
            | PacketKind::Unsuback
            | PacketKind::Pingresp => {
                return Err(format!(
                    "a client cannot send {:?} (only a server does)",
                    k.packet_type()
                ))
            }
        })
    }
}

/// Optional broker features a case may `require`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Retained messages (CONNACK Retain Available).
    Retain,
    /// Wildcard subscriptions (CONNACK Wildcard Subscription Available).
    WildcardSubscriptions,
    /// Shared subscriptions (CONNACK Shared Subscription Available).
    SharedSubscriptions,
    /// Subscription identifiers (CONNACK Subscription Identifier Available).
    SubscriptionIdentifiers,
    /// QoS 1 (CONNACK Maximum QoS >= 1).
    Qos1,
    /// QoS 2 (CONNACK Maximum QoS absent or 2).
    Qos2,
    /// Topic aliases (CONNACK Topic Alias Maximum > 0).
    TopicAlias,
    /// A user name and password provided by the target profile.
    Authentication,
    /// A TLS listener.
    Tls,
    /// A WebSocket listener.
    Websocket,
    /// Enhanced authentication (AUTH packets).
    EnhancedAuth,
    /// MQTT 5: the broker keeps the client's Keep Alive (no Server Keep Alive in the probe's
    /// CONNACK); cases that time keep alive need it. Always met in 3.1.1.
    ClientKeepAlive,
    /// A zero-byte ClientId is accepted (MQTT-3.1.3-6: a server MAY allow it).
    ZeroLengthClientId,
}

impl Feature {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Retain => "retain",
            Feature::WildcardSubscriptions => "wildcard_subscriptions",
            Feature::SharedSubscriptions => "shared_subscriptions",
            Feature::SubscriptionIdentifiers => "subscription_identifiers",
            Feature::Qos1 => "qos1",
            Feature::Qos2 => "qos2",
            Feature::TopicAlias => "topic_alias",
            Feature::Authentication => "authentication",
            Feature::Tls => "tls",
            Feature::Websocket => "websocket",
            Feature::EnhancedAuth => "enhanced_auth",
            Feature::ClientKeepAlive => "client_keep_alive",
            Feature::ZeroLengthClientId => "zero_length_client_id",
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn packet_kinds_resolve_at_load_and_write_back_as_spelled() {
        for name in [
            "connect",
            "connack",
            "publish",
            "puback",
            "pubrec",
            "pubrel",
            "pubcomp",
            "subscribe",
            "suback",
            "unsubscribe",
            "unsuback",
            "pingreq",
            "pingresp",
            "disconnect",
            "auth",
        ] {
            let k: Kind = serde_saphyr::from_str(name).unwrap();
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(name));
        }
        let k: Kind = serde_saphyr::from_str("suback").unwrap();
        assert_eq!(k.0, PacketType::SubAck);
        assert!(serde_saphyr::from_str::<ClientPacket>("suback").is_err());
        assert_eq!(
            serde_saphyr::from_str::<ClientPacket>("pubrel").unwrap(),
            ClientPacket::Pubrel
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(Dur::parse("500ms"), Some(Dur(Duration::from_millis(500))));
        assert_eq!(Dur::parse("1.5s"), Some(Dur(Duration::from_millis(1500))));
        assert_eq!(Dur::parse("2"), None);
        assert_eq!(Dur::parse("-1s"), None);
    }

    #[test]
    fn codes_parse_by_number_and_name() {
        assert_eq!(Code::parse("0x87"), Some(Code(ReasonCode::NOT_AUTHORIZED)));
        assert_eq!(Code::parse("135"), Some(Code(ReasonCode::NOT_AUTHORIZED)));
        assert_eq!(
            Code::parse("not_authorized"),
            Some(Code(ReasonCode::NOT_AUTHORIZED))
        );
        assert_eq!(
            Code::parse("granted_qos_1"),
            Some(Code(ReasonCode::GRANTED_QOS_1))
        );
        assert_eq!(Code::parse("no_such_code"), None);
    }
}

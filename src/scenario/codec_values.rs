//! Scenario values resolved to codec types while the YAML is read (QoS, Retain Handling,
//! payload bytes), so a bad value is a file:line:column error and the runner converts nothing.

use std::fmt;

use bytes::Bytes;
use reference_broker::codec::{QoS, RetainHandling};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::hex;

/// A QoS level, written `0`, `1` or `2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Qos(pub QoS);

/// A Retain Handling option (MQTT 5), written `0`, `1` or `2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retain(pub RetainHandling);

/// UTF-8 text sent or compared as bytes (payloads, passwords, will payloads).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text(pub Bytes);

/// Bytes written as hex pairs (spaces allowed), decoded once at load.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HexBytes(pub Bytes);

/// A small integer 0..=2 read by `make` (the values of QoS and Retain Handling).
fn small<'de, D: Deserializer<'de>, T>(
    d: D,
    what: &'static str,
    make: fn(u8) -> Option<T>,
) -> Result<T, D::Error> {
    struct V<T> {
        what: &'static str,
        make: fn(u8) -> Option<T>,
    }
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.what)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            u8::try_from(v)
                .ok()
                .and_then(self.make)
                .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            u8::try_from(v)
                .ok()
                .and_then(self.make)
                .ok_or_else(|| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
    }
    d.deserialize_u8(V { what, make })
}

fn retain_handling(v: u8) -> Option<RetainHandling> {
    match v {
        0 => Some(RetainHandling::SendAtSubscribe),
        1 => Some(RetainHandling::SendIfNew),
        2 => Some(RetainHandling::DoNotSend),
        _ => None,
    }
}

impl<'de> Deserialize<'de> for Qos {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        small(d, "a QoS 0, 1 or 2", QoS::from_u8).map(Qos)
    }
}

impl<'de> Deserialize<'de> for Retain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        small(d, "a Retain Handling 0, 1 or 2", retain_handling).map(Retain)
    }
}

/// A string read by `make`.
fn string<'de, D: Deserializer<'de>, T>(
    d: D,
    what: &'static str,
    make: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    struct V<T> {
        what: &'static str,
        make: fn(&str) -> Result<T, String>,
    }
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.what)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.make)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V { what, make })
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string(d, "a string", |s| {
            Ok(Text(Bytes::copy_from_slice(s.as_bytes())))
        })
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string(d, "hex digits", |s| {
            hex::decode_plain(s)
                .map(|b| HexBytes(Bytes::from(b)))
                .map_err(|e| e.to_string())
        })
    }
}

impl Text {
    /// The text as written (lossy only if it was built from non-UTF-8 bytes).
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl fmt::Display for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

// Written back as the YAML spells them: the JSON Schema shows the serde defaults through these.
impl Serialize for Qos {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0 as u8)
    }
}

impl Serialize for Retain {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0 as u8)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Qos {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "QoS".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"description": "A QoS level: 0, 1 or 2", "type": "integer", "minimum": 0, "maximum": 2})
    }
}

impl JsonSchema for Retain {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RetainHandling".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"description": "Retain Handling: 0 send at subscribe, 1 only for a new subscription, 2 never", "type": "integer", "minimum": 0, "maximum": 2})
    }
}

impl JsonSchema for Text {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Text".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string"})
    }
}

impl JsonSchema for HexBytes {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HexBytes".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"description": "Bytes as pairs of hex digits, spaces allowed", "type": "string", "pattern": "^(\\s*[0-9a-fA-F]\\s*[0-9a-fA-F])*\\s*$"})
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn values_resolve_to_codec_types() {
        let q: Qos = serde_saphyr::from_str("2").unwrap();
        assert_eq!(q.0, QoS::ExactlyOnce);
        assert!(serde_saphyr::from_str::<Qos>("3").is_err());
        let r: Retain = serde_saphyr::from_str("1").unwrap();
        assert_eq!(r.0, RetainHandling::SendIfNew);
        assert!(serde_saphyr::from_str::<Retain>("-1").is_err());
        let h: HexBytes = serde_saphyr::from_str("'68 69'").unwrap();
        assert_eq!(h.0.as_ref(), b"hi");
        assert_eq!(h.to_string(), "6869");
        assert!(serde_saphyr::from_str::<HexBytes>("'6'").is_err());
        let t: Text = serde_saphyr::from_str("hi").unwrap();
        assert_eq!(t.as_str(), "hi");
    }

    #[test]
    fn values_serialize_as_written() {
        let q = serde_json::to_value(Qos(QoS::AtLeastOnce)).unwrap();
        assert_eq!(q, serde_json::json!(1));
        let r = serde_json::to_value(Retain(RetainHandling::DoNotSend)).unwrap();
        assert_eq!(r, serde_json::json!(2));
        let h = serde_json::to_value(HexBytes(Bytes::from_static(b"hi"))).unwrap();
        assert_eq!(h, serde_json::json!("6869"));
    }
}

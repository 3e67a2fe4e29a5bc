//! Hex byte strings of `send_raw` and `payload_hex`, with `${topic:NAME}` and
//! `${client_id:NAME}` placeholders expanded to length-prefixed UTF-8 strings, and
//! `${remaining_length}` expanded to the variable byte integer of the byte count after it.

use std::fmt;

use reference_broker::codec::raw;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A bad hex string or placeholder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// A character that is not a hex digit, or an odd number of digits.
    #[error("invalid hex {0:?}: expected pairs of hex digits")]
    Digits(String),
    /// An unknown or unterminated placeholder.
    #[error("invalid placeholder {0:?}: expected ${{topic:NAME}} or ${{client_id:CLIENT}}")]
    Placeholder(String),
    /// A placeholder names a client that the case does not declare.
    #[error("placeholder names unknown client {0:?}")]
    UnknownClient(String),
    /// An expanded string is longer than 65,535 bytes.
    #[error("placeholder expands to more than 65535 bytes")]
    TooLong,
    /// More than one `${remaining_length}`.
    #[error("at most one ${{remaining_length}} per template")]
    TwoLengths,
}

/// Decode plain hex (spaces allowed, no placeholders).
pub fn decode_plain(text: &str) -> Result<Vec<u8>, HexError> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() % 2 != 0 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(HexError::Digits(text.to_string()));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| HexError::Digits(text.into()))
        })
        .collect()
}

/// One piece of a template.
enum Piece<'a> {
    Hex(&'a str),
    Topic(&'a str),
    ClientId(&'a str),
    RemainingLength,
}

fn pieces(text: &str) -> Result<Vec<Piece<'_>>, HexError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push(Piece::Hex(&rest[..start]));
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| HexError::Placeholder(rest[start..].to_string()))?;
        let inner = &after[..end];
        out.push(if inner == "remaining_length" {
            Piece::RemainingLength
        } else if let Some(t) = inner.strip_prefix("topic:") {
            Piece::Topic(t)
        } else if let Some(c) = inner.strip_prefix("client_id:") {
            Piece::ClientId(c)
        } else {
            return Err(HexError::Placeholder(format!("${{{inner}}}")));
        });
        rest = &after[end + 1..];
    }
    out.push(Piece::Hex(rest));
    if out
        .iter()
        .filter(|p| matches!(p, Piece::RemainingLength))
        .count()
        > 1
    {
        return Err(HexError::TwoLengths);
    }
    Ok(out)
}

/// A `send_raw` template, parsed and its hex decoded at load; placeholders are filled per run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTemplate(Vec<Part>);

/// One part of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Bytes(Vec<u8>),
    Topic(String),
    ClientId(String),
    RemainingLength,
}

impl RawTemplate {
    /// Parse `text`: hex pairs (spaces allowed) and placeholders.
    pub fn parse(text: &str) -> Result<RawTemplate, HexError> {
        pieces(text)?
            .into_iter()
            .map(|piece| {
                Ok(match piece {
                    Piece::Hex(h) => Part::Bytes(decode_plain(h)?),
                    Piece::Topic(t) => Part::Topic(t.to_string()),
                    Piece::ClientId(c) => Part::ClientId(c.to_string()),
                    Piece::RemainingLength => Part::RemainingLength,
                })
            })
            .collect::<Result<_, _>>()
            .map(RawTemplate)
    }

    /// The clients named by `${client_id:NAME}` placeholders.
    pub fn clients(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Part::ClientId(c) => Some(c.as_str()),
            _ => None,
        })
    }

    /// The bytes: `topic` prefixes a topic, `client_id` gives a client's id.
    pub fn expand(
        &self,
        topic: &dyn Fn(&str) -> String,
        client_id: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<u8>, HexError> {
        let mut out = Vec::new();
        let mut length_at = None;
        let push_str = |out: &mut Vec<u8>, s: &str| -> Result<(), HexError> {
            u16::try_from(s.len()).map_err(|_| HexError::TooLong)?;
            out.extend(raw::utf8_field(s.as_bytes()));
            Ok(())
        };
        for part in &self.0 {
            match part {
                Part::Bytes(b) => out.extend_from_slice(b),
                Part::Topic(t) => push_str(&mut out, &topic(t))?,
                Part::ClientId(c) => {
                    let id = client_id(c).ok_or_else(|| HexError::UnknownClient(c.clone()))?;
                    push_str(&mut out, &id)?;
                }
                Part::RemainingLength => length_at = Some(out.len()),
            }
        }
        if let Some(at) = length_at {
            let tail = out.split_off(at);
            out.extend(raw::remaining_length(tail.len()));
            out.extend(tail);
        }
        Ok(out)
    }
}

impl<'de> Deserialize<'de> for RawTemplate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawTemplate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("hex bytes with ${topic:NAME}, ${client_id:CLIENT} placeholders")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawTemplate, E> {
                RawTemplate::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl JsonSchema for RawTemplate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RawTemplate".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"description": "Hex bytes; spaces allowed; ${topic:NAME}, ${client_id:NAME} and ${remaining_length} placeholders", "type": "string"})
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_hex_with_spaces() {
        assert_eq!(decode_plain("30 05 0a").unwrap(), vec![0x30, 0x05, 0x0a]);
        assert!(decode_plain("3").is_err());
        assert!(decode_plain("zz").is_err());
    }

    #[test]
    fn remaining_length_counts_the_bytes_after_it() {
        let bytes = RawTemplate::parse("30 ${remaining_length} ${topic:a} 68 69")
            .unwrap()
            .expand(&|t| format!("p/{t}"), &|_| None)
            .unwrap();
        assert_eq!(bytes, b"\x30\x07\x00\x03p/ahi".to_vec());
        assert_eq!(
            RawTemplate::parse("${remaining_length}${remaining_length}"),
            Err(HexError::TwoLengths)
        );
    }

    #[test]
    fn placeholders_expand_to_length_prefixed_strings() {
        let template = RawTemplate::parse("30 ${topic:a} ${client_id:c}").unwrap();
        assert_eq!(template.clients().collect::<Vec<_>>(), vec!["c"]);
        let bytes = template
            .expand(&|t| format!("p/{t}"), &|c| Some(format!("id-{c}")))
            .unwrap();
        assert_eq!(bytes, b"\x30\x00\x03p/a\x00\x04id-c".to_vec());
        assert!(matches!(
            RawTemplate::parse("${nope:x}"),
            Err(HexError::Placeholder(_))
        ));
        assert!(RawTemplate::parse("${client_id:x} 3g").is_err());
    }
}

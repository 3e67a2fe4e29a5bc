//! Hex byte strings of `send_raw` and `payload_hex`, with `${topic:NAME}` and
//! `${client_id:NAME}` placeholders expanded to length-prefixed UTF-8 strings, and
//! `${remaining_length}` expanded to the variable byte integer of the byte count after it (up
//! to the next packet's `${remaining_length}`, for packets sent back to back).
//! A raw CONNECT carries the target's credentials through `${connect_flags:HH}` (the flags
//! byte HH, with User Name and Password flags added when the run has credentials) and
//! `${credentials}` (the User Name and Password fields, or nothing).

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
    #[error("invalid placeholder {0:?}: expected ${{topic:NAME}}, ${{client_id:CLIENT}}, ${{remaining_length}}, ${{connect_flags:HH}} or ${{credentials}}")]
    Placeholder(String),
    /// A placeholder names a client that the case does not declare.
    #[error("placeholder names unknown client {0:?}")]
    UnknownClient(String),
    /// An expanded string is longer than 65,535 bytes.
    #[error("placeholder expands to more than 65535 bytes")]
    TooLong,
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
    ConnectFlags(&'a str),
    Credentials,
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
        } else if let Some(f) = inner.strip_prefix("connect_flags:") {
            Piece::ConnectFlags(f)
        } else if inner == "credentials" {
            Piece::Credentials
        } else {
            return Err(HexError::Placeholder(format!("${{{inner}}}")));
        });
        rest = &after[end + 1..];
    }
    out.push(Piece::Hex(rest));
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
    /// A CONNECT flags byte; 0xC0 (User Name, Password) is added with credentials.
    ConnectFlags(u8),
    /// User Name and Password fields, with credentials.
    Credentials,
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
                    Piece::ConnectFlags(f) => match decode_plain(f)?.as_slice() {
                        [b] => Part::ConnectFlags(*b),
                        _ => return Err(HexError::Placeholder(format!("${{connect_flags:{f}}}"))),
                    },
                    Piece::Credentials => Part::Credentials,
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

    /// The topics named by `${topic:NAME}` placeholders (the plan counts their levels).
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Part::Topic(t) => Some(t.as_str()),
            _ => None,
        })
    }

    /// The bytes without credentials: `topic` prefixes a topic, `client_id` gives a client's
    /// id.
    pub fn expand(
        &self,
        topic: &dyn Fn(&str) -> String,
        client_id: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<u8>, HexError> {
        self.expand_with(topic, client_id, None)
    }

    /// The bytes, with `credentials` (user name, password) in `${connect_flags:..}` and
    /// `${credentials}`.
    pub fn expand_with(
        &self,
        topic: &dyn Fn(&str) -> String,
        client_id: &dyn Fn(&str) -> Option<String>,
        credentials: Option<(&str, &str)>,
    ) -> Result<Vec<u8>, HexError> {
        let mut out = Vec::new();
        let mut lengths = Vec::new();
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
                Part::RemainingLength => lengths.push(out.len()),
                Part::ConnectFlags(f) => {
                    out.push(if credentials.is_some() { f | 0xC0 } else { *f })
                }
                Part::Credentials => {
                    if let Some((user, password)) = credentials {
                        push_str(&mut out, user)?;
                        push_str(&mut out, password)?;
                    }
                }
            }
        }
        // Each length counts the bytes after it up to the fixed-header byte just before the
        // next length (packets sent back to back), the last one up to the end.
        let mut end = out.len();
        for at in lengths.into_iter().rev() {
            let body = out[at..end].to_vec();
            let encoded = raw::remaining_length(body.len());
            out.splice(at..at, encoded);
            end = at.saturating_sub(1);
        }
        Ok(out)
    }
}

impl RawTemplate {
    /// A copy whose CONNECT carries Keep Alive `keep_alive` (a plan lowering a case's Keep
    /// Alive to the broker's ceiling), when the template starts with a CONNECT whose Keep Alive
    /// bytes are written out (not behind a placeholder); else None.
    pub fn with_connect_keep_alive(&self, keep_alive: u16) -> Option<RawTemplate> {
        // The template's leading fixed bytes: (part, offset in a Bytes part) and value, up to
        // the first placeholder of variable length; where a `${remaining_length}` stands.
        let mut stream: Vec<(usize, Option<usize>, u8)> = Vec::new();
        let mut length_at = None;
        for (i, part) in self.0.iter().enumerate() {
            match part {
                Part::Bytes(b) => {
                    stream.extend(b.iter().enumerate().map(|(o, v)| (i, Some(o), *v)))
                }
                Part::ConnectFlags(f) => stream.push((i, None, *f)),
                Part::RemainingLength => {
                    length_at.get_or_insert(stream.len());
                }
                Part::Topic(_) | Part::ClientId(_) | Part::Credentials => break,
            }
        }
        let byte = |at: usize| stream.get(at).map(|(_, _, v)| *v);
        if byte(0)? >> 4 != 1 {
            return None;
        }
        let mut at = 1;
        if length_at != Some(1) {
            while byte(at)? & 0x80 != 0 {
                at += 1;
            }
            at += 1;
        }
        let name = usize::from(u16::from_be_bytes([byte(at)?, byte(at + 1)?]));
        // Protocol Name, Protocol Level, Connect Flags, then Keep Alive.
        let keep = at + 2 + name + 2;
        let mut parts = self.0.clone();
        for (at, value) in [
            (keep, keep_alive.to_be_bytes()[0]),
            (keep + 1, keep_alive.to_be_bytes()[1]),
        ] {
            let (i, Some(o), _) = *stream.get(at)? else {
                return None;
            };
            let Part::Bytes(b) = &mut parts[i] else {
                return None;
            };
            *b.get_mut(o)? = value;
        }
        Some(RawTemplate(parts))
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
        json_schema!({"description": "Hex bytes; spaces allowed; ${topic:NAME}, ${client_id:NAME}, ${remaining_length}, ${connect_flags:HH} (the CONNECT flags byte HH, with the User Name and Password flags when the run has credentials) and ${credentials} (the User Name and Password fields, or nothing) placeholders", "type": "string"})
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_connect_gets_another_keep_alive() {
        let t = RawTemplate::parse(
            "10 ${remaining_length} 00 04 4d 51 54 54 04 ${connect_flags:02} 00 3c ${client_id:c} ${credentials}",
        )
        .unwrap();
        let low = t.with_connect_keep_alive(30).unwrap();
        let bytes = low
            .expand(&|t| t.to_string(), &|_| Some("id".into()))
            .unwrap();
        assert_eq!(&bytes[10..12], &[0x00, 0x1e]);
        let literal =
            RawTemplate::parse("10 10 00 04 4d 51 54 54 04 02 00 3c 00 02 69 64").unwrap();
        let low = literal.with_connect_keep_alive(5).unwrap();
        let bytes = low.expand(&|t| t.to_string(), &|_| None).unwrap();
        assert_eq!(&bytes[10..12], &[0x00, 0x05]);
        assert!(RawTemplate::parse("c0 00")
            .unwrap()
            .with_connect_keep_alive(5)
            .is_none());
        assert!(RawTemplate::parse("10 0a 00 04")
            .unwrap()
            .with_connect_keep_alive(5)
            .is_none());
    }

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
        // Two packets back to back: each length counts up to the next packet's first byte.
        let two = RawTemplate::parse("10 ${remaining_length} 01 02 30 ${remaining_length} 03")
            .unwrap()
            .expand(&|t| t.into(), &|_| None)
            .unwrap();
        assert_eq!(two, vec![0x10, 2, 1, 2, 0x30, 1, 3]);
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

    #[test]
    fn credentials_set_the_flags_and_the_lengths() {
        let t = RawTemplate::parse(
            "10 ${remaining_length} 00 04 4d 51 54 54 04 ${connect_flags:02} 00 3c 00 01 5a ${credentials}",
        )
        .unwrap();
        let none = t.expand(&|t| t.into(), &|_| None).unwrap();
        assert_eq!(
            none,
            b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01Z".to_vec()
        );
        let with = t
            .expand_with(&|t| t.into(), &|_| None, Some(("u", "pw")))
            .unwrap();
        assert_eq!(
            with,
            b"\x10\x14\x00\x04MQTT\x04\xc2\x00\x3c\x00\x01Z\x00\x01u\x00\x02pw".to_vec()
        );
        assert!(RawTemplate::parse("${connect_flags:2}").is_err());
    }
}

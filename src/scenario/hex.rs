//! Hex byte strings of `send_raw` and `payload_hex`, with `${topic:NAME}` and
//! `${client_id:NAME}` placeholders expanded to length-prefixed UTF-8 strings, and
//! `${remaining_length}` expanded to the variable byte integer of the byte count after it.

use reference_broker::codec::raw;

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

/// Check a template without expanding it.
pub fn check_template(text: &str, has_client: &dyn Fn(&str) -> bool) -> Result<(), HexError> {
    for piece in pieces(text)? {
        match piece {
            Piece::Hex(h) => {
                decode_plain(h)?;
            }
            Piece::Topic(_) | Piece::RemainingLength => {}
            Piece::ClientId(c) => {
                if !has_client(c) {
                    return Err(HexError::UnknownClient(c.to_string()));
                }
            }
        }
    }
    Ok(())
}

/// Expand a template: `topic` prefixes a topic, `client_id` gives a client's id.
pub fn expand(
    text: &str,
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
    for piece in pieces(text)? {
        match piece {
            Piece::Hex(h) => out.extend(decode_plain(h)?),
            Piece::Topic(t) => push_str(&mut out, &topic(t))?,
            Piece::ClientId(c) => {
                let id = client_id(c).ok_or_else(|| HexError::UnknownClient(c.to_string()))?;
                push_str(&mut out, &id)?;
            }
            Piece::RemainingLength => length_at = Some(out.len()),
        }
    }
    if let Some(at) = length_at {
        let tail = out.split_off(at);
        out.extend(raw::remaining_length(tail.len()));
        out.extend(tail);
    }
    Ok(out)
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
        let bytes = expand(
            "30 ${remaining_length} ${topic:a} 68 69",
            &|t| format!("p/{t}"),
            &|_| None,
        )
        .unwrap();
        assert_eq!(bytes, b"\x30\x07\x00\x03p/ahi".to_vec());
        assert_eq!(
            expand(
                "${remaining_length}${remaining_length}",
                &|t| t.into(),
                &|_| None
            ),
            Err(HexError::TwoLengths)
        );
    }

    #[test]
    fn placeholders_expand_to_length_prefixed_strings() {
        let bytes = expand(
            "30 ${topic:a} ${client_id:c}",
            &|t| format!("p/{t}"),
            &|c| Some(format!("id-{c}")),
        )
        .unwrap();
        assert_eq!(bytes, b"\x30\x00\x03p/a\x00\x04id-c".to_vec());
        assert!(matches!(
            expand("${nope:x}", &|t| t.into(), &|_| None),
            Err(HexError::Placeholder(_))
        ));
        assert!(check_template("${client_id:x}", &|_| false).is_err());
    }
}

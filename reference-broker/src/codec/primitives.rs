//! Wire primitives shared by every packet: integers, variable byte integers, UTF-8 strings
//! and binary data, in both directions. The MQTT 5 property block is in `property_block`.

use bytes::{BufMut, Bytes, BytesMut};
use compact_str::CompactString;

use super::scan::is_ascii_without_nul;
use super::{DecodeError, EncodeError};

pub(crate) use super::property_block::{
    parse_validated_properties, parse_validated_slice, properties_block_len, properties_len,
    put_properties, put_properties_with_len,
};

/// A checked cursor over one packet body. Strings are validated and copied into their
/// `String`. Binary fields are sliced out of the shared buffer without copying when the
/// body was split off as [`Bytes`] ([`Reader::shared`], PUBLISH and CONNECT), and copied
/// otherwise ([`Reader::new`]): packets without binary fields (acknowledgements, pings,
/// subscriptions) are then decoded straight from the read buffer, without touching a
/// reference count.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
    pub(super) shared: Option<&'a Bytes>,
}

/// A field runs past the end of the body.
pub(crate) const TRUNCATED: DecodeError = DecodeError::LengthMismatch("body ends inside a field");

impl<'a> Reader<'a> {
    /// A reader over a body borrowed from the read buffer; binary fields are copied.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            shared: None,
        }
    }

    /// A reader over a body split off as `Bytes`; binary fields share it.
    pub(crate) fn shared(buf: &'a Bytes) -> Self {
        Reader {
            buf,
            pos: 0,
            shared: Some(buf),
        }
    }

    /// A reader over a body split off as `Bytes`, starting at `pos`; binary fields share it.
    pub(crate) fn shared_at(buf: &'a Bytes, pos: usize) -> Self {
        Reader {
            buf,
            pos,
            shared: Some(buf),
        }
    }

    /// Bytes read so far.
    #[inline]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fail with [`DecodeError::LengthMismatch`] if bytes are left over.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::LengthMismatch(
                "trailing bytes after the last field",
            ))
        }
    }

    #[inline]
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(TRUNCATED);
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..start + n])
    }

    /// One byte.
    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian Two Byte Integer.
    #[inline]
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A big-endian Four Byte Integer.
    #[inline]
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A Variable Byte Integer in its minimal form.
    pub(crate) fn vbi(&mut self) -> Result<u32, DecodeError> {
        match parse_vbi(&self.buf[self.pos..])? {
            Some((value, len)) => {
                self.pos += len;
                Ok(value)
            }
            None => Err(TRUNCATED),
        }
    }

    /// Binary Data: a Two Byte length and that many bytes, shared with the packet buffer
    /// when the reader has one, copied otherwise.
    #[inline]
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16()?);
        let start = self.pos;
        let raw = self.take(len)?;
        Ok(match self.shared {
            Some(buf) => buf.slice(start..start + len),
            None => Bytes::copy_from_slice(raw),
        })
    }

    /// A UTF-8 Encoded String.
    #[inline]
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        Ok(self.str()?.to_owned())
    }

    /// A UTF-8 Encoded String as a [`CompactString`] (property values): inline up to 24
    /// bytes, so a short value costs no allocation.
    #[inline]
    pub(crate) fn compact_string(&mut self) -> Result<CompactString, DecodeError> {
        Ok(CompactString::new(self.str()?))
    }

    /// A UTF-8 Encoded String, validated and borrowed from the body.
    #[inline]
    pub(super) fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::from(self.u16()?);
        utf8(self.take(len)?)
    }

    /// Skip a UTF-8 Encoded String after checking it ([MQTT-1.5.4-1], [MQTT-1.5.4-2]).
    #[inline]
    pub(super) fn check_str(&mut self) -> Result<(), DecodeError> {
        let len = usize::from(self.u16()?);
        let raw = self.take(len)?;
        if is_ascii_without_nul(raw) {
            return Ok(());
        }
        utf8(raw).map(drop)
    }
}

/// Validate UTF-8 string data.
#[inline]
pub(crate) fn utf8(raw: &[u8]) -> Result<&str, DecodeError> {
    // [MQTT-1.5.4-1] / [MQTT-1.5.3-1]: well-formed UTF-8; `from_utf8` rejects encoded
    // surrogates (U+D800..U+DFFF) and overlong forms.
    let s = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
    // [MQTT-1.5.4-2] / [MQTT-1.5.3-2]: no U+0000 (the only UTF-8 sequence containing 0x00).
    if raw.contains(&0) {
        return Err(DecodeError::NullCharacter);
    }
    Ok(s)
}

/// Parse a Variable Byte Integer at the start of `buf`: `Ok(None)` if `buf` ends first,
/// `Ok(Some((value, bytes_used)))` otherwise.
#[inline]
pub(crate) fn parse_vbi(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&byte) = buf.get(i) else {
            return Ok(None);
        };
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            // [MQTT-1.5.5-1] the minimum number of bytes: a last byte of 0 after a first
            // byte means a longer-than-needed encoding.
            if i > 0 && byte == 0 {
                return Err(DecodeError::MalformedVariableByteInteger);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    Err(DecodeError::MalformedVariableByteInteger)
}

/// The number of bytes of the Variable Byte Integer encoding of `value`.
#[inline]
pub(crate) fn vbi_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Append a Variable Byte Integer (`value` must be at most 268,435,455).
#[inline]
pub(crate) fn put_vbi(dst: &mut BytesMut, mut value: usize) {
    loop {
        let mut byte = (value & 0x7F) as u8;
        value >>= 7;
        if value > 0 {
            byte |= 0x80;
        }
        dst.put_u8(byte);
        if value == 0 {
            break;
        }
    }
}

/// Append a UTF-8 Encoded String.
#[inline]
pub(crate) fn put_str(dst: &mut BytesMut, s: &str) -> Result<(), EncodeError> {
    put_binary(dst, s.as_bytes())
}

/// Append Binary Data.
#[inline]
pub(crate) fn put_binary(dst: &mut BytesMut, b: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(b.len()).map_err(|_| EncodeError::StringTooLong)?;
    dst.put_u16(len);
    dst.put_slice(b);
    Ok(())
}

/// The encoded length of a string or binary field.
#[inline]
pub(crate) fn str_len(len: usize) -> usize {
    2 + len
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn vbi_round_trip_at_boundaries() {
        for v in [
            0usize,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            268_435_455,
        ] {
            let mut b = BytesMut::new();
            put_vbi(&mut b, v);
            assert_eq!(b.len(), vbi_len(v));
            assert_eq!(parse_vbi(&b).unwrap(), Some((v as u32, b.len())));
        }
    }

    #[test]
    fn vbi_rejects_five_bytes_and_non_minimal() {
        assert_eq!(
            parse_vbi(&[0x80, 0x80, 0x80, 0x80, 0x01]),
            Err(DecodeError::MalformedVariableByteInteger)
        );
        assert_eq!(
            parse_vbi(&[0x80, 0x00]),
            Err(DecodeError::MalformedVariableByteInteger)
        );
        assert_eq!(parse_vbi(&[0x80, 0x80]), Ok(None));
    }

    #[test]
    fn utf8_rejects_surrogate_and_null() {
        assert_eq!(utf8(&[0xED, 0xA0, 0x80]), Err(DecodeError::InvalidUtf8));
        assert_eq!(utf8(b"a\0b"), Err(DecodeError::NullCharacter));
        assert_eq!(utf8("\u{FEFF}x".as_bytes()), Ok("\u{FEFF}x"));
    }
}

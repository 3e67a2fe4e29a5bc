//! A raw encoder for deliberately invalid packets, so the harness can test how a broker
//! handles malformed input. Nothing here validates anything.
//!
//! Build a packet field by field with [`Builder`], or glue pieces with the free functions:
//!
//! ```
//! use reference_broker::codec::raw;
//!
//! // SUBSCRIBE with reserved flags 0b0000 instead of 0b0010 ([MQTT-3.8.1-1]).
//! let bad = raw::Builder::new(0x80).u16(1).utf8(b"a/b").u8(0).build();
//! assert_eq!(&bad[..], &[0x80, 0x08, 0x00, 0x01, 0x00, 0x03, b'a', b'/', b'b', 0x00]);
//!
//! // A PUBLISH topic with an encoded surrogate (U+D800) ([MQTT-1.5.4-1]).
//! let topic = raw::utf8_field(&[0xED, 0xA0, 0x80]);
//! let bad = raw::packet(0x30, &topic);
//! assert_eq!(bad.len(), 2 + 2 + 3);
//!
//! // A remaining length encoded in five bytes (malformed), value 0.
//! assert_eq!(raw::remaining_length_forced(0, 5), vec![0x80, 0x80, 0x80, 0x80, 0x00]);
//! ```

use bytes::{BufMut, Bytes, BytesMut};

/// The minimal Variable Byte Integer encoding of `value` (values above 268,435,455 keep
/// going past four bytes, which is malformed on purpose).
pub fn vbi(mut value: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    loop {
        let mut byte = (value & 0x7F) as u8;
        value >>= 7;
        if value > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if value == 0 {
            return out;
        }
    }
}

/// The minimal encoding of a remaining length `n`.
pub fn remaining_length(n: usize) -> Vec<u8> {
    vbi(n as u64)
}

/// `n` encoded as a Variable Byte Integer of exactly `bytes` bytes (padded with
/// continuation bytes, so non-minimal; more than four bytes is malformed). If `n` needs
/// more than `bytes` bytes, the minimal encoding is returned.
pub fn remaining_length_forced(n: usize, bytes: usize) -> Vec<u8> {
    let mut out = vbi(n as u64);
    if out.len() >= bytes {
        return out;
    }
    // Set the continuation bit on the last byte, then add 0x80 padding and a final 0x00.
    if let Some(last) = out.last_mut() {
        *last |= 0x80;
    }
    while out.len() < bytes - 1 {
        out.push(0x80);
    }
    out.push(0x00);
    out
}

/// A whole packet: `first_byte` (type and flags), the correct remaining length, `body`.
pub fn packet(first_byte: u8, body: &[u8]) -> Bytes {
    packet_with_remaining_length(first_byte, &remaining_length(body.len()), body)
}

/// A whole packet with a remaining length given as raw bytes (e.g. from
/// [`remaining_length`] of a wrong value, or [`remaining_length_forced`]).
pub fn packet_with_remaining_length(first_byte: u8, remaining: &[u8], body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + remaining.len() + body.len());
    out.put_u8(first_byte);
    out.put_slice(remaining);
    out.put_slice(body);
    out.freeze()
}

/// A UTF-8 Encoded String field holding arbitrary bytes: a two-byte length, then `bytes`
/// (truncated at 65,535 bytes).
pub fn utf8_field(bytes: &[u8]) -> Vec<u8> {
    binary_field(bytes)
}

/// A Binary Data field: a two-byte length, then `bytes` (truncated at 65,535 bytes).
pub fn binary_field(bytes: &[u8]) -> Vec<u8> {
    let len = bytes.len().min(usize::from(u16::MAX));
    let mut out = Vec::with_capacity(2 + len);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&bytes[..len]);
    out
}

/// A string field whose declared length differs from its content (`declared` bytes
/// announced, `bytes` written).
pub fn utf8_field_with_length(declared: u16, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + bytes.len());
    out.extend_from_slice(&declared.to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

/// One MQTT 5 property: the identifier byte, then the value bytes as given.
pub fn property(id: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + value.len());
    out.push(id);
    out.extend_from_slice(value);
    out
}

/// A property block: the Property Length (of `properties`), then `properties`.
pub fn properties(properties: &[u8]) -> Vec<u8> {
    let mut out = vbi(properties.len() as u64);
    out.extend_from_slice(properties);
    out
}

/// Builds a packet body field by field; [`Builder::build`] adds the fixed header.
#[derive(Debug, Clone)]
pub struct Builder {
    first_byte: u8,
    body: BytesMut,
}

impl Builder {
    /// A packet whose first byte (type << 4 | flags) is `first_byte`.
    pub fn new(first_byte: u8) -> Self {
        Builder {
            first_byte,
            body: BytesMut::new(),
        }
    }

    /// Append one byte.
    pub fn u8(mut self, v: u8) -> Self {
        self.body.put_u8(v);
        self
    }

    /// Append a big-endian Two Byte Integer.
    pub fn u16(mut self, v: u16) -> Self {
        self.body.put_u16(v);
        self
    }

    /// Append a big-endian Four Byte Integer.
    pub fn u32(mut self, v: u32) -> Self {
        self.body.put_u32(v);
        self
    }

    /// Append a minimal Variable Byte Integer.
    pub fn vbi(mut self, v: u64) -> Self {
        self.body.put_slice(&vbi(v));
        self
    }

    /// Append a length-prefixed string of arbitrary bytes.
    pub fn utf8(mut self, bytes: &[u8]) -> Self {
        self.body.put_slice(&utf8_field(bytes));
        self
    }

    /// Append length-prefixed binary data.
    pub fn binary(mut self, bytes: &[u8]) -> Self {
        self.body.put_slice(&binary_field(bytes));
        self
    }

    /// Append a property block (Property Length then `props`).
    pub fn properties(mut self, props: &[u8]) -> Self {
        self.body.put_slice(&properties(props));
        self
    }

    /// Append raw bytes.
    pub fn bytes(mut self, bytes: &[u8]) -> Self {
        self.body.put_slice(bytes);
        self
    }

    /// The body so far.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The packet with the correct remaining length.
    pub fn build(self) -> Bytes {
        packet(self.first_byte, &self.body)
    }

    /// The packet with a remaining length claiming `declared` bytes (minimal encoding).
    pub fn build_with_length(self, declared: usize) -> Bytes {
        packet_with_remaining_length(self.first_byte, &remaining_length(declared), &self.body)
    }

    /// The packet with the remaining length given as raw bytes.
    pub fn build_with_remaining_length(self, remaining: &[u8]) -> Bytes {
        packet_with_remaining_length(self.first_byte, remaining, &self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forced_lengths() {
        assert_eq!(remaining_length_forced(0, 1), vec![0x00]);
        assert_eq!(remaining_length_forced(0, 2), vec![0x80, 0x00]);
        assert_eq!(remaining_length_forced(5, 3), vec![0x85, 0x80, 0x00]);
        assert_eq!(remaining_length_forced(200, 1), vec![0xC8, 0x01]);
        assert_eq!(remaining_length(321), vec![0xC1, 0x02]);
    }

    #[test]
    fn builder_counts_the_body() {
        let p = Builder::new(0xE0).u8(0x04).properties(&[]).build();
        assert_eq!(&p[..], &[0xE0, 0x02, 0x04, 0x00]);
        let p = Builder::new(0xC0).build_with_length(3);
        assert_eq!(&p[..], &[0xC0, 0x03]);
    }
}

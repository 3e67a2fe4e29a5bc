//! Encoder: a valid [`Packet`] to bytes for a given protocol version.

use bytes::BytesMut;

use super::{Packet, ProtocolVersion};

/// Why a packet cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The packet does not exist in this protocol version (AUTH under 3.1.1).
    #[error("{0} cannot be sent in this protocol version")]
    NotInVersion(&'static str),
    /// The encoded packet would exceed the largest remaining length.
    #[error("packet too large to encode: {0} bytes")]
    TooLarge(usize),
    /// A string field exceeds 65,535 bytes.
    #[error("string field longer than 65535 bytes")]
    StringTooLong,
}

/// Append the encoding of `packet` under `version` to `dst`.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let _ = (packet, version, dst);
    todo!("codec implementation in progress")
}

/// The number of bytes [`encode`] writes for `packet` under `version`.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    let _ = (packet, version);
    todo!("codec implementation in progress")
}

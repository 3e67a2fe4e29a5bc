//! Streaming decoder: a byte buffer in, whole packets out.

use bytes::BytesMut;

use super::{DecodeError, Packet, ProtocolVersion};

/// Decodes packets from a growing buffer.
///
/// Until a CONNECT has been decoded (or [`Decoder::set_version`] called) the version is
/// unknown and the decoder only accepts CONNECT (server side) or applies 3.1.1 rules.
#[derive(Debug, Clone)]
pub struct Decoder {
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
}

impl Decoder {
    /// A decoder that refuses packets larger than `max_packet_size` bytes (whole packet,
    /// fixed header included).
    pub fn new(max_packet_size: usize) -> Self {
        Decoder {
            version: None,
            max_packet_size,
        }
    }

    /// A decoder for a connection whose version is already known (client side, tests).
    pub fn with_version(version: ProtocolVersion, max_packet_size: usize) -> Self {
        Decoder {
            version: Some(version),
            max_packet_size,
        }
    }

    /// The version in force, if known.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Fix the version (after CONNECT was sent or received).
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.version = Some(version);
    }

    /// Change the maximum packet size (e.g. after CONNACK announced one).
    pub fn set_max_packet_size(&mut self, max_packet_size: usize) {
        self.max_packet_size = max_packet_size;
    }

    /// Decode the next packet from the front of `buf`, consuming exactly its bytes.
    ///
    /// Returns `Ok(None)` when `buf` holds only part of a packet; the caller reads more and
    /// calls again. A decoded CONNECT fixes the version for the rest of the stream.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let _ = buf;
        todo!("codec implementation in progress")
    }
}

//! Streaming decoder: a byte buffer in, whole packets out.

use bytes::{Buf, BytesMut};

use super::primitives::{parse_vbi, Reader};
use super::{
    connack, connect, publish, pubresp, reason_body, suback, subscribe, unsuback, unsubscribe,
};
use super::{Auth, DecodeError, Disconnect, Packet, PacketType, ProtocolVersion};

/// Decodes packets from a growing buffer.
///
/// Until a CONNECT has been decoded (or [`Decoder::set_version`] called) the version is
/// unknown: a CONNECT is decoded with its own version (which then becomes the decoder's),
/// any other packet with 3.1.1 rules.
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

    /// The maximum packet size in force.
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// Decode the next packet from the front of `buf`, consuming exactly its bytes.
    ///
    /// Returns `Ok(None)` when `buf` holds only part of a packet (nothing is consumed); the
    /// caller reads more and calls again. A decoded CONNECT fixes the version if it was not
    /// known yet. After an error the stream is unusable: close the connection.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let version = self.version.unwrap_or(ProtocolVersion::V3_1_1);
        let packet_type = check_fixed_header(first, version)?;
        let (remaining, len_bytes) = match buf.get(1) {
            None => return Ok(None),
            // One length byte: every packet under 128 bytes, most acknowledgements and
            // small messages.
            Some(&byte) if byte < 0x80 => (usize::from(byte), 1),
            Some(_) => match parse_vbi(&buf[1..]) {
                Ok(Some((value, len))) => (value as usize, len),
                Ok(None) => return Ok(None),
                // [MQTT-1.5.5-1] (5) / 3.1.1 section 2.2.3: at most four bytes, minimal.
                Err(_) => return Err(DecodeError::MalformedRemainingLength),
            },
        };
        let header_len = 1 + len_bytes;
        let size = header_len + remaining;
        // Refuse before buffering the body (MQTT 5 section 3.1.2.11.4: a packet over the
        // Maximum Packet Size is answered with 0x95).
        if size > self.max_packet_size {
            return Err(DecodeError::PacketTooLarge {
                size,
                max: self.max_packet_size,
            });
        }
        if buf.len() < size {
            return Ok(None);
        }
        let flags = first & 0x0F;
        match packet_type {
            // PUBLISH carries its payload as a slice of the read buffer.
            PacketType::Publish => publish::decode(flags, buf, header_len, size, version),
            // CONNECT carries binary data (password, will payload) that the packet shares
            // with the read buffer: split the body off as `Bytes`.
            PacketType::Connect => {
                buf.advance(header_len);
                let body = buf.split_to(remaining).freeze();
                let c = connect::decode(&mut Reader::shared(&body))?;
                if self.version.is_none() {
                    self.version = Some(c.protocol);
                }
                Ok(Some(Packet::Connect(Box::new(c))))
            }
            // Everything else is decoded from the buffer in place, then consumed: no
            // reference count changes hands for an acknowledgement or a ping.
            PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
                let body = pubresp::decode(
                    &mut Reader::new(&buf[header_len..size]),
                    packet_type,
                    version,
                )?;
                buf.advance(size);
                // The packet is built where it is returned: a `Packet` is large, and
                // moving one measured as a visible share of decoding an acknowledgement.
                Ok(Some(match packet_type {
                    PacketType::PubAck => Packet::PubAck(body),
                    PacketType::PubRec => Packet::PubRec(body),
                    PacketType::PubRel => Packet::PubRel(body),
                    _ => Packet::PubComp(body),
                }))
            }
            PacketType::PingReq | PacketType::PingResp => {
                // Nothing follows the fixed header.
                if remaining != 0 {
                    return Err(DecodeError::LengthMismatch(
                        "trailing bytes after the last field",
                    ));
                }
                buf.advance(header_len);
                Ok(Some(if packet_type == PacketType::PingReq {
                    Packet::PingReq
                } else {
                    Packet::PingResp
                }))
            }
            PacketType::ConnAck => in_place(buf, header_len, size, |r| {
                Ok(Packet::ConnAck(connack::decode(r, version)?))
            }),
            PacketType::Subscribe => in_place(buf, header_len, size, |r| {
                Ok(Packet::Subscribe(subscribe::decode(r, version)?))
            }),
            PacketType::SubAck => in_place(buf, header_len, size, |r| {
                Ok(Packet::SubAck(suback::decode(r, version)?))
            }),
            PacketType::Unsubscribe => in_place(buf, header_len, size, |r| {
                Ok(Packet::Unsubscribe(unsubscribe::decode(r, version)?))
            }),
            PacketType::UnsubAck => in_place(buf, header_len, size, |r| {
                Ok(Packet::UnsubAck(unsuback::decode(r, version)?))
            }),
            PacketType::Disconnect => in_place(buf, header_len, size, |r| {
                let (reason, properties) =
                    reason_body::decode_reason_body(r, packet_type, version)?;
                Ok(Packet::Disconnect(Disconnect { reason, properties }))
            }),
            PacketType::Auth => in_place(buf, header_len, size, |r| {
                let (reason, properties) =
                    reason_body::decode_reason_body(r, packet_type, version)?;
                Ok(Packet::Auth(Auth { reason, properties }))
            }),
        }
    }
}

/// Decode a body that shares nothing with the read buffer straight from it (bytes
/// `header_len..size`), then consume the packet.
#[inline]
fn in_place(
    buf: &mut BytesMut,
    header_len: usize,
    size: usize,
    decode_body: impl FnOnce(&mut Reader) -> Result<Packet, DecodeError>,
) -> Result<Option<Packet>, DecodeError> {
    let packet = decode_body(&mut Reader::new(&buf[header_len..size]))?;
    buf.advance(size);
    Ok(Some(packet))
}

/// Check the first byte of a fixed header: packet type and reserved flags.
fn check_fixed_header(first: u8, version: ProtocolVersion) -> Result<PacketType, DecodeError> {
    let packet_type = match first >> 4 {
        1 => PacketType::Connect,
        2 => PacketType::ConnAck,
        3 => PacketType::Publish,
        4 => PacketType::PubAck,
        5 => PacketType::PubRec,
        6 => PacketType::PubRel,
        7 => PacketType::PubComp,
        8 => PacketType::Subscribe,
        9 => PacketType::SubAck,
        10 => PacketType::Unsubscribe,
        11 => PacketType::UnsubAck,
        12 => PacketType::PingReq,
        13 => PacketType::PingResp,
        14 => PacketType::Disconnect,
        // AUTH exists only in MQTT 5.
        15 if version.is_v5() => PacketType::Auth,
        other => return Err(DecodeError::InvalidPacketType(other)),
    };
    let flags = first & 0x0F;
    let ok = match packet_type {
        PacketType::Publish => {
            publish::check_flags(flags)?;
            true
        }
        // [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1]: 0b0010. MQTT 3.1 sent these at
        // "QoS 1" and could set DUP on a resend, so 0b1010 is accepted there.
        PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => {
            flags == 0b0010 || (version == ProtocolVersion::V3_1 && flags == 0b1010)
        }
        // [MQTT-2.2.2-1] (3.1.1) / [MQTT-2.1.3-1] (5); DISCONNECT [MQTT-3.14.1-1], AUTH
        // [MQTT-3.15.1-1].
        _ => flags == 0,
    };
    if !ok {
        return Err(DecodeError::InvalidFlags { packet_type, flags });
    }
    Ok(packet_type)
}

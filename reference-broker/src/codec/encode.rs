//! Encoder: a valid [`Packet`] to bytes for a given protocol version.

use bytes::{BufMut, BytesMut};

use super::primitives::{put_vbi, vbi_len};
use super::{
    connack, connect, publish, pubresp, reason_body, suback, subscribe, unsuback, unsubscribe,
};
use super::{Packet, ProtocolVersion, MAX_REMAINING_LENGTH};

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

/// Append the encoding of `packet` under `version` to `dst`. On error `dst` is left as it
/// was. A CONNECT is always encoded under its own `protocol`.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    if matches!(packet, Packet::Auth(_)) && !version.is_v5() {
        return Err(EncodeError::NotInVersion("AUTH"));
    }
    let start = dst.len();
    if let Packet::Publish(p) = packet {
        let written = publish::encode(p, version, dst);
        if written.is_err() {
            dst.truncate(start);
        }
        return written;
    }
    let body = body_len(packet, version);
    if body > MAX_REMAINING_LENGTH {
        return Err(EncodeError::TooLarge(body));
    }
    dst.reserve(1 + vbi_len(body) + body);
    dst.put_u8(first_byte(packet));
    put_vbi(dst, body);
    let written = write_body(packet, version, dst);
    if written.is_err() {
        dst.truncate(start);
    }
    written
}

/// The number of bytes [`encode`] writes for `packet` under `version`.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    let body = body_len(packet, version);
    1 + vbi_len(body) + body
}

fn first_byte(packet: &Packet) -> u8 {
    let flags = match packet {
        Packet::Publish(p) => publish::flags(p),
        // [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1]
        Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
        _ => 0,
    };
    ((packet.packet_type() as u8) << 4) | flags
}

fn body_len(packet: &Packet, version: ProtocolVersion) -> usize {
    match packet {
        Packet::Connect(c) => connect::body_len(c),
        Packet::ConnAck(c) => connack::body_len(c, version),
        Packet::Publish(p) => publish::body_len(p, version),
        Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
            pubresp::body_len(p, version)
        }
        Packet::Subscribe(s) => subscribe::body_len(s, version),
        Packet::SubAck(s) => suback::body_len(s, version),
        Packet::Unsubscribe(u) => unsubscribe::body_len(u, version),
        Packet::UnsubAck(u) => unsuback::body_len(u, version),
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(d) => reason_body::reason_body_len(d.reason, &d.properties, version),
        Packet::Auth(a) => reason_body::reason_body_len(a.reason, &a.properties, version),
    }
}

fn write_body(
    packet: &Packet,
    version: ProtocolVersion,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    match packet {
        Packet::Connect(c) => connect::write(c, dst),
        Packet::ConnAck(c) => connack::write(c, version, dst),
        // Encoded by `publish::encode` above.
        Packet::Publish(_) => Ok(()),
        Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
            pubresp::write(p, version, dst)
        }
        Packet::Subscribe(s) => subscribe::write(s, version, dst),
        Packet::SubAck(s) => suback::write(s, version, dst),
        Packet::Unsubscribe(u) => unsubscribe::write(u, version, dst),
        Packet::UnsubAck(u) => unsuback::write(u, version, dst),
        Packet::PingReq | Packet::PingResp => Ok(()),
        Packet::Disconnect(d) => {
            reason_body::write_reason_body(d.reason, &d.properties, version, dst)
        }
        Packet::Auth(a) => reason_body::write_reason_body(a.reason, &a.properties, version, dst),
    }
}

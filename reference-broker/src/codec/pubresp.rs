//! PUBACK, PUBREC, PUBREL and PUBCOMP (MQTT 3.1.1 sections 3.4-3.7, MQTT 5 sections
//! 3.4-3.7): one shared body, decode and encode.

use bytes::{BufMut, BytesMut};

use super::primitives::{properties_block_len, put_properties, Reader};
use super::{
    DecodeError, EncodeError, Packet, PacketType, Properties, PropertyContext, ProtocolVersion,
    PubResponse, ReasonCode,
};

/// Decode the body of a PUBACK, PUBREC, PUBREL or PUBCOMP, built in place as the packet
/// of `packet_type` (the packet model is large: this avoids moving it).
pub(crate) fn decode(
    mut r: Reader,
    packet_type: PacketType,
    version: ProtocolVersion,
) -> Result<Option<Packet>, DecodeError> {
    let packet_id = r.u16()?;
    // [MQTT-2.3.1-1] (3.1.1) / [MQTT-2.2.1-5] (5): it names a PUBLISH, whose id is non-zero.
    if packet_id == 0 {
        return Err(DecodeError::ZeroPacketIdentifier);
    }
    let body = PubResponse {
        packet_id,
        reason: ReasonCode::SUCCESS,
        properties: Properties::default(),
    };
    let mut out = Ok(Some(match packet_type {
        PacketType::PubAck => Packet::PubAck(body),
        PacketType::PubRec => Packet::PubRec(body),
        PacketType::PubRel => Packet::PubRel(body),
        _ => Packet::PubComp(body),
    }));
    if let Ok(Some(
        Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p),
    )) = &mut out
    {
        // MQTT 5 section 3.4.2.1: a remaining length of 2 means reason 0x00 and no
        // properties; "If the Remaining Length is less than 4 there is no Property Length".
        if version.is_v5() && r.remaining() > 0 {
            p.reason = ReasonCode(r.u8()?);
            // [MQTT-3.4.2-1] [MQTT-3.6.2-1] (PUBREC 3.5.2.1, PUBCOMP 3.7.2.1)
            if !p.reason.is_valid_for(packet_type, version) {
                return Err(DecodeError::InvalidReasonCode {
                    packet_type,
                    code: p.reason.0,
                });
            }
            if r.remaining() > 0 {
                r.properties_into(PropertyContext::PubResponse, &mut p.properties)?;
            }
        }
    }
    r.finish()?;
    out
}

/// The body length of `p`: the reason code and properties are omitted when they are
/// Success and empty (MQTT 5 section 3.4.2.1).
pub(crate) fn body_len(p: &PubResponse, version: ProtocolVersion) -> usize {
    if !version.is_v5() {
        return 2;
    }
    if p.properties.is_empty() {
        if p.reason == ReasonCode::SUCCESS {
            2
        } else {
            3
        }
    } else {
        3 + properties_block_len(&p.properties)
    }
}

/// Write the body of `p`.
pub(crate) fn write(
    p: &PubResponse,
    version: ProtocolVersion,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    dst.put_u16(p.packet_id);
    if !version.is_v5() {
        return Ok(());
    }
    if p.properties.is_empty() {
        if p.reason != ReasonCode::SUCCESS {
            dst.put_u8(p.reason.0);
        }
    } else {
        dst.put_u8(p.reason.0);
        put_properties(dst, &p.properties)?;
    }
    Ok(())
}

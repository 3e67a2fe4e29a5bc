//! PUBACK, PUBREC, PUBREL and PUBCOMP (MQTT 3.1.1 sections 3.4-3.7, MQTT 5 sections
//! 3.4-3.7): one shared body, decode and encode.

use bytes::{BufMut, BytesMut};

use super::primitives::{properties_block_len, put_properties, Reader};
use super::{
    DecodeError, EncodeError, PacketType, PropertyContext, ProtocolVersion, PubResponse, ReasonCode,
};

/// Decode the body of a PUBACK, PUBREC, PUBREL or PUBCOMP (`packet_type`).
#[inline]
pub(crate) fn decode(
    r: &mut Reader,
    packet_type: PacketType,
    version: ProtocolVersion,
) -> Result<PubResponse, DecodeError> {
    let packet_id = r.u16()?;
    // [MQTT-2.3.1-1] (3.1.1) / [MQTT-2.2.1-5] (5): it names a PUBLISH, whose id is non-zero.
    if packet_id == 0 {
        return Err(DecodeError::ZeroPacketIdentifier);
    }
    let mut body = PubResponse {
        packet_id,
        reason: ReasonCode::SUCCESS,
        properties: Default::default(),
    };
    // MQTT 5 section 3.4.2.1: a remaining length of 2 means reason 0x00 and no properties;
    // "If the Remaining Length is less than 4 there is no Property Length".
    if version.is_v5() && r.remaining() > 0 {
        body.reason = ReasonCode(r.u8()?);
        // [MQTT-3.4.2-1] [MQTT-3.6.2-1] (PUBREC 3.5.2.1, PUBCOMP 3.7.2.1)
        if !body.reason.is_valid_for(packet_type, version) {
            return Err(DecodeError::InvalidReasonCode {
                packet_type,
                code: body.reason.0,
            });
        }
        if r.remaining() > 0 {
            body.properties = r.properties(PropertyContext::PubResponse)?;
        }
    }
    r.finish()?;
    Ok(body)
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

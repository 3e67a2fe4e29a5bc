//! SUBACK (MQTT 3.1.1 section 3.9, MQTT 5 section 3.9): body decode and encode.

use bytes::{BufMut, BytesMut};

use super::primitives::{properties_block_len, put_properties, Reader};
use super::{
    DecodeError, EncodeError, PacketType, PropertyContext, ProtocolVersion, ReasonCode, SubAck,
};

/// Decode a SUBACK body.
pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<SubAck, DecodeError> {
    let packet_id = r.u16()?;
    // [MQTT-2.3.1-1] (3.1.1) / [MQTT-2.2.1-6] (5): the SUBSCRIBE's non-zero identifier.
    if packet_id == 0 {
        return Err(DecodeError::ZeroPacketIdentifier);
    }
    let properties = if version.is_v5() {
        r.properties(PropertyContext::SubAck)?
    } else {
        Default::default()
    };
    let mut reason_codes = Vec::with_capacity(r.remaining());
    while r.remaining() > 0 {
        let code = ReasonCode(r.u8()?);
        // [MQTT-3.9.3-2]
        if !code.is_valid_for(PacketType::SubAck, version) {
            return Err(DecodeError::InvalidReasonCode {
                packet_type: PacketType::SubAck,
                code: code.0,
            });
        }
        reason_codes.push(code);
    }
    // [MQTT-3.8.4-5] (3.1.1) / [MQTT-3.8.4-6] (5): one code per filter, so at least one.
    if reason_codes.is_empty() {
        return Err(DecodeError::NoTopicFilters(PacketType::SubAck));
    }
    Ok(SubAck {
        packet_id,
        properties,
        reason_codes,
    })
}

/// The body length of `s`.
pub(crate) fn body_len(s: &SubAck, version: ProtocolVersion) -> usize {
    let props = if version.is_v5() {
        properties_block_len(&s.properties)
    } else {
        0
    };
    2 + props + s.reason_codes.len()
}

/// Write the body of `s`.
pub(crate) fn write(
    s: &SubAck,
    version: ProtocolVersion,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    dst.put_u16(s.packet_id);
    if version.is_v5() {
        put_properties(dst, &s.properties)?;
    }
    for c in &s.reason_codes {
        dst.put_u8(c.0);
    }
    Ok(())
}

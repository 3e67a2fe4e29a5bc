//! UNSUBACK (MQTT 3.1.1 section 3.11, MQTT 5 section 3.11): body decode and encode.

use bytes::{BufMut, BytesMut};

use super::primitives::{properties_block_len, put_properties, Reader};
use super::{
    DecodeError, EncodeError, PacketType, PropertyContext, ProtocolVersion, ReasonCode, UnsubAck,
};

/// Decode an UNSUBACK body.
pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<UnsubAck, DecodeError> {
    let packet_id = r.u16()?;
    // [MQTT-2.3.1-1] (3.1.1) / [MQTT-2.2.1-6] (5)
    if packet_id == 0 {
        return Err(DecodeError::ZeroPacketIdentifier);
    }
    let mut out = UnsubAck {
        packet_id,
        properties: Default::default(),
        reason_codes: Vec::new(),
    };
    if version.is_v5() {
        out.properties = r.properties(PropertyContext::UnsubAck)?;
        out.reason_codes.reserve(r.remaining());
        while r.remaining() > 0 {
            let code = ReasonCode(r.u8()?);
            // [MQTT-3.11.3-2]
            if !code.is_valid_for(PacketType::UnsubAck, version) {
                return Err(DecodeError::InvalidReasonCode {
                    packet_type: PacketType::UnsubAck,
                    code: code.0,
                });
            }
            out.reason_codes.push(code);
        }
        // [MQTT-3.11.3-2] one code per filter, so at least one.
        if out.reason_codes.is_empty() {
            return Err(DecodeError::NoTopicFilters(PacketType::UnsubAck));
        }
    }
    r.finish()?;
    Ok(out)
}

/// The body length of `u`.
pub(crate) fn body_len(u: &UnsubAck, version: ProtocolVersion) -> usize {
    if version.is_v5() {
        2 + properties_block_len(&u.properties) + u.reason_codes.len()
    } else {
        2
    }
}

/// Write the body of `u`.
pub(crate) fn write(
    u: &UnsubAck,
    version: ProtocolVersion,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    dst.put_u16(u.packet_id);
    if version.is_v5() {
        put_properties(dst, &u.properties)?;
        for c in &u.reason_codes {
            dst.put_u8(c.0);
        }
    }
    Ok(())
}

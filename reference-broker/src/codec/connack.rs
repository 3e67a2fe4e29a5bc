//! CONNACK (MQTT 3.1.1 section 3.2, MQTT 5 section 3.2): body decode and encode.

use bytes::{BufMut, BytesMut};

use super::primitives::{properties_block_len, put_properties, Reader};
use super::{
    ConnAck, DecodeError, EncodeError, PacketType, PropertyContext, ProtocolVersion, ReasonCode,
};

/// Decode a CONNACK body.
pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    // [MQTT-3.2.2-1] (5; 3.1.1 section 3.2.2.1) bits 7-1 of the acknowledge flags are reserved.
    if flags & 0xFE != 0 {
        return Err(DecodeError::ConnAckReservedFlags(flags));
    }
    let code = ReasonCode(r.u8()?);
    // A server that speaks only 3.1.x answers an MQTT 5 CONNECT in its own form: two bytes,
    // return code 0x01 (3.1.1 [MQTT-3.1.2-2]) or another refusal. No MQTT 5 CONNACK has
    // these codes, so the form is unambiguous.
    if version.is_v5() && r.remaining() == 0 && (1..=5).contains(&code.0) {
        return Err(DecodeError::V311ConnAckRefusal(code.0));
    }
    // [MQTT-3.2.2-8] (5) / table 3.1 (3.1.1): one of the listed codes.
    if !code.is_valid_for(PacketType::ConnAck, version) {
        return Err(DecodeError::InvalidReasonCode {
            packet_type: PacketType::ConnAck,
            code: code.0,
        });
    }
    let properties = if version.is_v5() {
        r.properties(PropertyContext::ConnAck)?
    } else {
        Default::default()
    };
    r.finish()?;
    Ok(ConnAck {
        session_present: flags & 1 != 0,
        code,
        properties,
    })
}

/// The body length of `c`.
pub(crate) fn body_len(c: &ConnAck, version: ProtocolVersion) -> usize {
    2 + if version.is_v5() {
        properties_block_len(&c.properties)
    } else {
        0
    }
}

/// Write the body of `c`.
pub(crate) fn write(
    c: &ConnAck,
    version: ProtocolVersion,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    dst.put_u8(u8::from(c.session_present));
    dst.put_u8(c.code.0);
    if version.is_v5() {
        put_properties(dst, &c.properties)?;
    }
    Ok(())
}

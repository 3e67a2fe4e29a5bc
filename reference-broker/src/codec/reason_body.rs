//! The body shared by DISCONNECT (MQTT 3.1.1 section 3.14, MQTT 5 section 3.14) and AUTH
//! (MQTT 5 section 3.15): an optional reason code and optional properties.

use bytes::{BufMut, BytesMut};

use super::primitives::{properties_block_len, put_properties, Reader};
use super::{
    DecodeError, EncodeError, PacketType, PropertyBox, PropertyContext, ProtocolVersion, ReasonCode,
};

/// Decode the `(reason, properties)` body of a v5 DISCONNECT or AUTH: a remaining length
/// of 0 means Success without properties, 1 means no properties (MQTT 5 sections 3.14.2.1
/// and 3.15.2.1).
pub(crate) fn decode_reason_body(
    r: &mut Reader,
    packet_type: PacketType,
    version: ProtocolVersion,
) -> Result<(ReasonCode, PropertyBox), DecodeError> {
    let ctx = match packet_type {
        PacketType::Auth => PropertyContext::Auth,
        _ => PropertyContext::Disconnect,
    };
    if !version.is_v5() {
        // 3.1.1 section 3.14: DISCONNECT has no variable header and no payload.
        r.finish()?;
        return Ok((ReasonCode::SUCCESS, PropertyBox::new()));
    }
    let mut reason = ReasonCode::SUCCESS;
    let mut properties = PropertyBox::new();
    if r.remaining() > 0 {
        reason = ReasonCode(r.u8()?);
        // [MQTT-3.14.2-1] / [MQTT-3.15.2-1]
        if !reason.is_valid_for(packet_type, version) {
            return Err(DecodeError::InvalidReasonCode {
                packet_type,
                code: reason.0,
            });
        }
        if r.remaining() > 0 {
            properties = r.properties(ctx)?;
        }
    }
    r.finish()?;
    Ok((reason, properties))
}

/// The body length of a reason-code-and-properties body, omitting what can be omitted.
pub(crate) fn reason_body_len(
    reason: ReasonCode,
    properties: &PropertyBox,
    version: ProtocolVersion,
) -> usize {
    if !version.is_v5() {
        return 0;
    }
    if properties.is_empty() {
        usize::from(reason != ReasonCode::SUCCESS)
    } else {
        1 + properties_block_len(properties)
    }
}

/// Write a reason-code-and-properties body.
pub(crate) fn write_reason_body(
    reason: ReasonCode,
    properties: &PropertyBox,
    version: ProtocolVersion,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    if !version.is_v5() {
        return Ok(());
    }
    if properties.is_empty() {
        if reason != ReasonCode::SUCCESS {
            dst.put_u8(reason.0);
        }
    } else {
        dst.put_u8(reason.0);
        put_properties(dst, properties)?;
    }
    Ok(())
}

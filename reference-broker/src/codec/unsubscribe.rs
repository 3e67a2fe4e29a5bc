//! UNSUBSCRIBE (MQTT 3.1.1 section 3.10, MQTT 5 section 3.10): body decode and encode.

use bytes::{BufMut, BytesMut};

use super::primitives::{properties_block_len, put_properties, put_str, str_len, Reader};
use super::subscribe::check_filter;
use super::{DecodeError, EncodeError, PacketType, PropertyContext, ProtocolVersion, Unsubscribe};

/// Decode an UNSUBSCRIBE body.
pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Unsubscribe, DecodeError> {
    let packet_id = r.u16()?;
    // [MQTT-2.3.1-1] (3.1.1) / [MQTT-2.2.1-3] (5)
    if packet_id == 0 {
        return Err(DecodeError::ZeroPacketIdentifier);
    }
    let properties = if version.is_v5() {
        r.properties(PropertyContext::Unsubscribe)?
    } else {
        Default::default()
    };
    let mut filters = Vec::new();
    while r.remaining() > 0 {
        // [MQTT-3.10.3-1] UTF-8 Encoded Strings.
        let filter = r.string()?;
        check_filter(&filter, version)?;
        filters.push(filter);
    }
    // [MQTT-3.10.3-2] at least one topic filter.
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters(PacketType::Unsubscribe));
    }
    Ok(Unsubscribe {
        packet_id,
        properties,
        filters,
    })
}

/// The body length of `u`.
pub(crate) fn body_len(u: &Unsubscribe, version: ProtocolVersion) -> usize {
    let props = if version.is_v5() {
        properties_block_len(&u.properties)
    } else {
        0
    };
    2 + props + u.filters.iter().map(|f| str_len(f.len())).sum::<usize>()
}

/// Write the body of `u`.
pub(crate) fn write(
    u: &Unsubscribe,
    version: ProtocolVersion,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    dst.put_u16(u.packet_id);
    if version.is_v5() {
        put_properties(dst, &u.properties)?;
    }
    for f in &u.filters {
        put_str(dst, f)?;
    }
    Ok(())
}

//! PUBLISH (MQTT 3.1.1 section 3.3, MQTT 5 section 3.3): body decode and encode.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::connect::topic_name_error;
use super::primitives::{
    properties_len, put_properties_with_len, put_str, put_vbi, str_len, vbi_len, Reader, TRUNCATED,
};
use super::scan::{has_no_wildcard_or_nul, is_plain_ascii};
use super::{
    DecodeError, EncodeError, Packet, PacketType, PropertyBox, PropertyContext, ProtocolVersion,
    Publish, QoS, TopicName, MAX_REMAINING_LENGTH,
};
use crate::topic::validate_topic_name;

/// The fixed-header flags of `p`.
pub(crate) fn flags(p: &Publish) -> u8 {
    (u8::from(p.dup) << 3) | (p.qos.as_u8() << 1) | u8::from(p.retain)
}

/// Check the fixed-header flags of a PUBLISH before its body is read.
pub(crate) fn check_flags(flags: u8) -> Result<QoS, DecodeError> {
    // [MQTT-3.3.1-4] both QoS bits set is malformed.
    let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::InvalidQoS)?;
    // [MQTT-3.3.1-2] DUP must be 0 for QoS 0.
    if qos == QoS::AtMostOnce && flags & 0b1000 != 0 {
        return Err(DecodeError::DupOnQoS0);
    }
    Ok(qos)
}

/// Decode the PUBLISH at the front of `buf` (fixed header of `header_len` bytes, `size`
/// bytes in all, flags already checked by [`check_flags`]) and consume it. The payload is a
/// slice of the read buffer: no copy. PUBLISH is the packet a broker decodes most, so this
/// is written as straight-line code over the borrowed bytes, and the packet is split off
/// the buffer only once its lengths and packet identifier are known to be valid.
#[inline]
pub(crate) fn decode(
    flags: u8,
    buf: &mut BytesMut,
    header_len: usize,
    size: usize,
    version: ProtocolVersion,
) -> Result<Option<Packet>, DecodeError> {
    let body = &buf[header_len..size];
    let topic_len = match body.get(..2) {
        Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => return Err(TRUNCATED),
    };
    let mut pos = 2 + topic_len;
    let qos = check_flags(flags)?;
    // [MQTT-2.3.1-5] (3.1.1) / [MQTT-2.2.1-2] (5): a packet identifier only for QoS > 0.
    let packet_id = if qos == QoS::AtMostOnce {
        0
    } else {
        let id = match body.get(pos..pos + 2) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            _ => return Err(TRUNCATED),
        };
        pos += 2;
        // [MQTT-2.3.1-1] (3.1.1) / [MQTT-2.2.1-3] (5): non-zero.
        if id == 0 {
            return Err(DecodeError::ZeroPacketIdentifier);
        }
        id
    };
    if pos > body.len() {
        return Err(TRUNCATED);
    }
    let mut packet = buf.split_to(size).freeze();
    // [MQTT-3.3.2-1] the topic name is the first field, a UTF-8 Encoded String; it stays a
    // slice of the packet.
    let topic_start = header_len + 2;
    let topic = topic_name(packet.slice(topic_start..topic_start + topic_len), version)?;
    let properties = if version.is_v5() {
        let mut r = Reader::shared_at(&packet, header_len + pos);
        let properties = r.properties(PropertyContext::Publish)?;
        pos = r.position() - header_len;
        // MQTT 5 section 3.3.2.1: "It is a Protocol Error if the Topic Name is zero length
        // and there is no Topic Alias."
        if topic.is_empty() && properties.topic_alias.is_none() {
            return Err(DecodeError::EmptyTopicName);
        }
        properties
    } else {
        PropertyBox::new()
    };
    // The rest is the payload: the packet's own handle, advanced past the header fields.
    packet.advance(header_len + pos);
    // Built where it is returned (a `Packet` is large; moving it costs).
    Ok(Some(Packet::Publish(Publish {
        dup: flags & 0b1000 != 0,
        qos,
        retain: flags & 1 != 0,
        topic,
        packet_id,
        properties,
        payload: packet,
    })))
}

/// A PUBLISH topic name, validated.
#[inline]
fn topic_name(raw: Bytes, version: ProtocolVersion) -> Result<TopicName, DecodeError> {
    // The common topic: non-empty ASCII without wildcards or U+0000. One word-at-a-time
    // pass says so, and then the bytes need no UTF-8 decoding: this skips `from_utf8`,
    // measured at a tenth of the time to decode a 3.1.1 PUBLISH. The only `unsafe` in the
    // workspace (which otherwise denies it).
    if !raw.is_empty() && is_plain_ascii(&raw) {
        #[allow(unsafe_code)]
        // SAFETY: `is_plain_ascii` holds only if every byte is below 0x80 (tested against
        // the byte-by-byte definition in `scan`), and ASCII bytes are valid UTF-8.
        return Ok(unsafe { TopicName::from_bytes_unchecked(raw) });
    }
    // [MQTT-1.5.4-1] / [MQTT-1.5.3-1]: well-formed UTF-8, no encoded surrogates.
    let topic = TopicName::try_from(raw).map_err(|_| DecodeError::InvalidUtf8)?;
    // A non-ASCII topic without wildcards or U+0000 is valid too; anything else takes the
    // full check, which names the rule broken.
    if !has_no_wildcard_or_nul(topic.as_bytes()) || topic.is_empty() {
        // MQTT 5: an empty topic name is allowed when a Topic Alias stands in for it (the
        // caller checks the alias).
        if !(topic.is_empty() && version.is_v5()) {
            // [MQTT-3.3.2-2] no wildcards; [MQTT-4.7.3-1] at least one character;
            // [MQTT-1.5.4-2] no U+0000.
            validate_topic_name(&topic).map_err(|e| topic_name_error(e, &topic))?;
        }
    }
    Ok(topic)
}

/// The body length of `p`, given the length of its property contents (0 before MQTT 5).
fn body_len_with(p: &Publish, version: ProtocolVersion, props_len: usize) -> usize {
    let mut n = str_len(p.topic.len()) + p.payload.len();
    if p.qos != QoS::AtMostOnce {
        n += 2;
    }
    if version.is_v5() {
        n += vbi_len(props_len) + props_len;
    }
    n
}

/// The body length of `p`.
pub(crate) fn body_len(p: &Publish, version: ProtocolVersion) -> usize {
    let props_len = if version.is_v5() {
        properties_len(&p.properties)
    } else {
        0
    };
    body_len_with(p, version, props_len)
}

/// Write the whole packet (fixed header included), sizing the properties once: PUBLISH is
/// the packet a broker encodes most.
pub(crate) fn encode(
    p: &Publish,
    version: ProtocolVersion,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let props_len = if version.is_v5() {
        properties_len(&p.properties)
    } else {
        0
    };
    let body = body_len_with(p, version, props_len);
    if body > MAX_REMAINING_LENGTH {
        return Err(EncodeError::TooLarge(body));
    }
    dst.reserve(1 + vbi_len(body) + body);
    dst.put_u8(((PacketType::Publish as u8) << 4) | flags(p));
    put_vbi(dst, body);
    put_str(dst, &p.topic)?;
    if p.qos != QoS::AtMostOnce {
        dst.put_u16(p.packet_id);
    }
    if version.is_v5() {
        put_properties_with_len(dst, &p.properties, props_len)?;
    }
    dst.put_slice(&p.payload);
    Ok(())
}

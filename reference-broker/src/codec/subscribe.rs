//! SUBSCRIBE (MQTT 3.1.1 section 3.8, MQTT 5 section 3.8): body decode and encode.

use bytes::{BufMut, BytesMut};

use super::primitives::{properties_block_len, put_properties, put_str, str_len, Reader};
use super::{
    DecodeError, EncodeError, PacketType, PropertyContext, ProtocolVersion, QoS, RetainHandling,
    Subscribe, Subscription, SubscriptionOptions,
};
use crate::topic::{split_shared, validate_topic_filter, validate_topic_filter_v5};

/// Check a topic filter under the rules of `version`.
pub(crate) fn check_filter(filter: &str, version: ProtocolVersion) -> Result<(), DecodeError> {
    // [MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.3-1] (3.1.1); [MQTT-4.7.1-1] [MQTT-4.7.1-2]
    // [MQTT-4.7.3-1] [MQTT-4.8.2-1] [MQTT-4.8.2-2] (5).
    let checked = if version.is_v5() {
        validate_topic_filter_v5(filter)
    } else {
        validate_topic_filter(filter)
    };
    checked.map_err(|_| DecodeError::InvalidTopicFilter(filter.to_owned()))
}

/// Decode a SUBSCRIBE body.
pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Subscribe, DecodeError> {
    let v5 = version.is_v5();
    let packet_id = r.u16()?;
    // [MQTT-2.3.1-1] (3.1.1) / [MQTT-2.2.1-3] (5)
    if packet_id == 0 {
        return Err(DecodeError::ZeroPacketIdentifier);
    }
    let properties = if v5 {
        r.properties(PropertyContext::Subscribe)?
    } else {
        Default::default()
    };
    let mut subscriptions = Vec::new();
    while r.remaining() > 0 {
        // [MQTT-3.8.3-1] topic filters are UTF-8 Encoded Strings.
        let filter = r.string()?;
        check_filter(&filter, version)?;
        let byte = r.u8()?;
        let reserved = if v5 { 0b1100_0000 } else { 0b1111_1100 };
        // [MQTT-3.8.3-4] (3.1.1) / [MQTT-3.8.3-5] (5): reserved bits are 0.
        if byte & reserved != 0 {
            return Err(DecodeError::SubscriptionOptionsReserved);
        }
        // [MQTT-3.8.3-4] (3.1.1): QoS 0, 1 or 2; (5) section 3.8.3.1: QoS 3 is a
        // Protocol Error.
        let qos = QoS::from_u8(byte & 0b11).ok_or(DecodeError::InvalidSubscriptionQoS)?;
        let retain_handling = match (byte >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            // MQTT 5 section 3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3".
            _ => return Err(DecodeError::InvalidRetainHandling),
        };
        let options = SubscriptionOptions {
            qos,
            no_local: byte & 0b0100 != 0,
            retain_as_published: byte & 0b1000 != 0,
            retain_handling,
        };
        // [MQTT-3.8.3-4] (5): No Local on a shared subscription is a Protocol Error.
        if v5 && options.no_local && split_shared(&filter).is_some() {
            return Err(DecodeError::NoLocalOnSharedSubscription);
        }
        subscriptions.push(Subscription { filter, options });
    }
    // [MQTT-3.8.3-3] (3.1.1) / [MQTT-3.8.3-2] (5): at least one filter.
    if subscriptions.is_empty() {
        return Err(DecodeError::NoTopicFilters(PacketType::Subscribe));
    }
    Ok(Subscribe {
        packet_id,
        properties,
        subscriptions,
    })
}

/// The options byte of one subscription under `version`.
fn options_byte(o: &SubscriptionOptions, version: ProtocolVersion) -> u8 {
    let mut b = o.qos.as_u8();
    if version.is_v5() {
        b |= u8::from(o.no_local) << 2;
        b |= u8::from(o.retain_as_published) << 3;
        b |= (o.retain_handling as u8) << 4;
    }
    b
}

/// The body length of `s`.
pub(crate) fn body_len(s: &Subscribe, version: ProtocolVersion) -> usize {
    let mut n = 2;
    if version.is_v5() {
        n += properties_block_len(&s.properties);
    }
    n + s
        .subscriptions
        .iter()
        .map(|sub| str_len(sub.filter.len()) + 1)
        .sum::<usize>()
}

/// Write the body of `s`.
pub(crate) fn write(
    s: &Subscribe,
    version: ProtocolVersion,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    dst.put_u16(s.packet_id);
    if version.is_v5() {
        put_properties(dst, &s.properties)?;
    }
    for sub in &s.subscriptions {
        put_str(dst, &sub.filter)?;
        dst.put_u8(options_byte(&sub.options, version));
    }
    Ok(())
}

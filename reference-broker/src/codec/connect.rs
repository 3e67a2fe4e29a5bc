//! CONNECT (MQTT 3.1.1 section 3.1, MQTT 5 section 3.1): body decode and encode.

use bytes::{BufMut, BytesMut};

use super::primitives::{
    properties_block_len, put_binary, put_properties, put_str, str_len, Reader,
};
use super::{Connect, DecodeError, EncodeError, PropertyContext, ProtocolVersion, QoS, Will};
use crate::topic::{validate_topic_name, TopicError};

const USERNAME: u8 = 0x80;
const PASSWORD: u8 = 0x40;
const WILL_RETAIN: u8 = 0x20;
const WILL_QOS: u8 = 0x18;
const WILL: u8 = 0x04;
const CLEAN: u8 = 0x02;
const RESERVED: u8 = 0x01;

/// Map a topic-name rule violation to its decode error.
pub(crate) fn topic_name_error(e: TopicError, topic: &str) -> DecodeError {
    match e {
        TopicError::Empty => DecodeError::EmptyTopicName,
        TopicError::NullCharacter => DecodeError::NullCharacter,
        _ => DecodeError::WildcardInTopicName(topic.to_owned()),
    }
}

/// Decode a CONNECT body; the version comes from the packet itself.
pub(crate) fn decode(r: &mut Reader) -> Result<Connect, DecodeError> {
    let name = r.string()?;
    let level = r.u8()?;
    let protocol = match (name.as_str(), level) {
        ("MQTT", 4) => ProtocolVersion::V3_1_1,
        ("MQTT", 5) => ProtocolVersion::V5,
        ("MQIsdp", 3) => ProtocolVersion::V3_1,
        // [MQTT-3.1.2-2] an unsupported level is answered with CONNACK 0x01 / 0x84.
        ("MQTT", _) | ("MQIsdp", _) => return Err(DecodeError::UnsupportedProtocolVersion(level)),
        // [MQTT-3.1.2-1] the protocol name must be "MQTT" ("MQIsdp" for 3.1).
        _ => return Err(DecodeError::InvalidProtocolName(name)),
    };
    let v5 = protocol.is_v5();
    let flags = r.u8()?;
    // [MQTT-3.1.2-3] the reserved flag must be 0.
    if flags & RESERVED != 0 {
        return Err(DecodeError::ConnectReservedFlag);
    }
    let will_flag = flags & WILL != 0;
    let will_qos_bits = (flags & WILL_QOS) >> 3;
    let will_retain = flags & WILL_RETAIN != 0;
    if !will_flag && (will_qos_bits != 0 || will_retain) {
        // [MQTT-3.1.2-11] [MQTT-3.1.2-13] (3.1.1 also [MQTT-3.1.2-15]): will QoS and will
        // retain are 0 without a will.
        return Err(DecodeError::InvalidWillFlags);
    }
    // [MQTT-3.1.2-14] (3.1.1) / [MQTT-3.1.2-12] (5): will QoS 3 is invalid.
    let will_qos = QoS::from_u8(will_qos_bits).ok_or(DecodeError::InvalidWillFlags)?;
    let has_username = flags & USERNAME != 0;
    let has_password = flags & PASSWORD != 0;
    // [MQTT-3.1.2-22] (3.1.1) a password needs a user name; MQTT 5 allows it alone.
    if !v5 && has_password && !has_username {
        return Err(DecodeError::PasswordWithoutUsername);
    }
    let keep_alive = r.u16()?;
    let properties = if v5 {
        r.properties(PropertyContext::Connect)?
    } else {
        Default::default()
    };
    // MQTT 5 section 3.1.2.11.10: "It is a Protocol Error to include Authentication Data if
    // there is no Authentication Method".
    if properties.authentication_data.is_some() && properties.authentication_method.is_none() {
        return Err(DecodeError::Protocol(
            "Authentication Data without Authentication Method",
        ));
    }
    // [MQTT-3.1.3-1] payload order: client id, will (properties, topic, payload), user
    // name, password.
    let client_id = r.string()?;
    let will = if will_flag {
        // [MQTT-3.1.2-9] will properties (5), topic and payload are present.
        let properties = if v5 {
            r.properties(PropertyContext::Will)?
        } else {
            Default::default()
        };
        let topic = r.string()?;
        validate_topic_name(&topic).map_err(|e| topic_name_error(e, &topic))?;
        let payload = r.binary()?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if has_username {
        Some(r.string()?)
    } else {
        None
    };
    // [MQTT-3.1.2-21] (3.1.1) / [MQTT-3.1.2-19] (5): present iff the flag is set.
    let password = if has_password {
        Some(r.binary()?)
    } else {
        None
    };
    r.finish()?;
    Ok(Connect {
        protocol,
        clean_start: flags & CLEAN != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

/// The body length of `c`.
pub(crate) fn body_len(c: &Connect) -> usize {
    let v5 = c.protocol.is_v5();
    let mut n = str_len(c.protocol.protocol_name().len()) + 1 + 1 + 2;
    if v5 {
        n += properties_block_len(&c.properties);
    }
    n += str_len(c.client_id.len());
    if let Some(w) = &c.will {
        if v5 {
            n += properties_block_len(&w.properties);
        }
        n += str_len(w.topic.len()) + str_len(w.payload.len());
    }
    if let Some(u) = &c.username {
        n += str_len(u.len());
    }
    if let Some(p) = &c.password {
        n += str_len(p.len());
    }
    n
}

/// Write the body of `c`.
pub(crate) fn write(c: &Connect, dst: &mut BytesMut) -> Result<(), EncodeError> {
    let v5 = c.protocol.is_v5();
    put_str(dst, c.protocol.protocol_name())?;
    dst.put_u8(c.protocol.level());
    let mut flags = 0u8;
    if c.clean_start {
        flags |= CLEAN;
    }
    if let Some(w) = &c.will {
        flags |= WILL | (w.qos.as_u8() << 3);
        if w.retain {
            flags |= WILL_RETAIN;
        }
    }
    if c.username.is_some() {
        flags |= USERNAME;
    }
    if c.password.is_some() {
        flags |= PASSWORD;
    }
    dst.put_u8(flags);
    dst.put_u16(c.keep_alive);
    if v5 {
        put_properties(dst, &c.properties)?;
    }
    put_str(dst, &c.client_id)?;
    if let Some(w) = &c.will {
        if v5 {
            put_properties(dst, &w.properties)?;
        }
        put_str(dst, &w.topic)?;
        put_binary(dst, &w.payload)?;
    }
    if let Some(u) = &c.username {
        put_str(dst, u)?;
    }
    if let Some(p) = &c.password {
        put_binary(dst, p)?;
    }
    Ok(())
}

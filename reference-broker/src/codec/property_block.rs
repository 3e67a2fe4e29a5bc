//! The MQTT 5 property block on the wire: reading it with every rule checked, building the
//! set from a validated block, its encoded length, and writing it.

use bytes::{BufMut, Bytes, BytesMut};
use compact_str::CompactString;

use super::primitives::{put_binary, put_str, put_vbi, str_len, vbi_len, Reader};
use super::properties::{Properties, PropertyContext, PropertyId, PropertyType};
use super::PropertyBox;
use super::{DecodeError, EncodeError};

impl<'a> Reader<'a> {
    /// The MQTT 5 property block of a packet: Property Length, then properties. Every rule
    /// is checked here; the set itself is built only when first read. An empty block (the
    /// common case) costs nothing more.
    pub(crate) fn properties(&mut self, ctx: PropertyContext) -> Result<PropertyBox, DecodeError> {
        let len = self.vbi()? as usize;
        if self.remaining() < len {
            return Err(DecodeError::LengthMismatch(
                "property length exceeds the packet",
            ));
        }
        if len == 0 {
            return Ok(PropertyBox::new());
        }
        let start = self.pos;
        let end = start + len;
        // Bit n set: property id n already seen. Every id is below 64.
        let mut seen: u64 = 0;
        while self.pos < end {
            let raw_id = self.vbi()?;
            let id = u8::try_from(raw_id)
                .ok()
                .and_then(PropertyId::from_u8)
                // MQTT 5 section 2.2.2.2: an unknown identifier is a Malformed Packet.
                .ok_or(DecodeError::UnknownProperty(raw_id.min(255) as u8))?;
            if !id.allowed_in(ctx) {
                // v5 2.2.2.2: an identifier not valid for the packet type is Malformed.
                return Err(DecodeError::PropertyNotAllowed {
                    id: id as u8,
                    context: context_name(ctx),
                });
            }
            let bit = 1u64 << (id as u8);
            let repeatable = id == PropertyId::UserProperty
                || (id == PropertyId::SubscriptionIdentifier && ctx == PropertyContext::Publish);
            if seen & bit != 0 && !repeatable {
                // v5 3.x.2.x: "It is a Protocol Error to include <property> more than once".
                return Err(DecodeError::DuplicateProperty(id as u8));
            }
            seen |= bit;
            self.check_property_value(id)?;
            if self.pos > end {
                return Err(DecodeError::LengthMismatch(
                    "a property runs past the property length",
                ));
            }
        }
        let shared = self.shared;
        Ok(PropertyBox::from_validated(&self.buf[start..end], || {
            shared.map(|buf| buf.slice(start..end))
        }))
    }

    /// Read one property value and check it against the rules on its value; build nothing.
    fn check_property_value(&mut self, id: PropertyId) -> Result<(), DecodeError> {
        let bad = || DecodeError::InvalidPropertyValue(id as u8);
        let fails = |broken: bool| if broken { Err(bad()) } else { Ok(()) };
        match id {
            // Byte properties whose only legal values are 0 and 1.
            PropertyId::PayloadFormatIndicator
            | PropertyId::RequestProblemInformation
            | PropertyId::RequestResponseInformation
            | PropertyId::MaximumQos
            | PropertyId::RetainAvailable
            | PropertyId::WildcardSubscriptionAvailable
            | PropertyId::SubscriptionIdentifierAvailable
            | PropertyId::SharedSubscriptionAvailable => fails(self.u8()? > 1),
            // v5 3.8.2.1.2: "It is a Protocol Error if the Subscription Identifier has a
            // value of 0".
            PropertyId::SubscriptionIdentifier => fails(self.vbi()? == 0),
            // v5 3.1.2.11.3 / 3.2.2.3.3: "It is a Protocol Error to include the Receive
            // Maximum value of 0".
            PropertyId::ReceiveMaximum => fails(self.u16()? == 0),
            // v5 3.1.2.11.4: "It is a Protocol Error to include ... Maximum Packet Size ...
            // zero".
            PropertyId::MaximumPacketSize => fails(self.u32()? == 0),
            // [MQTT-3.3.2-14] the Response Topic must not contain wildcards.
            PropertyId::ResponseTopic => {
                crate::topic::validate_topic_name(self.str()?).map_err(|_| bad())
            }
            // Topic Alias 0 [MQTT-3.3.2-8] and aliases above the maximum are checked by the
            // protocol layer, which knows the maximum and answers 0x94 Topic Alias invalid.
            _ => match id.value_type() {
                PropertyType::Byte => self.u8().map(drop),
                PropertyType::TwoByteInteger => self.u16().map(drop),
                PropertyType::FourByteInteger => self.u32().map(drop),
                PropertyType::VariableByteInteger => self.vbi().map(drop),
                PropertyType::Utf8String => self.check_str(),
                // [MQTT-1.5.7-1] both strings of the pair are UTF-8 Encoded Strings.
                PropertyType::Utf8StringPair => self.check_str().and_then(|()| self.check_str()),
                PropertyType::BinaryData => {
                    let len = usize::from(self.u16()?);
                    self.take(len).map(drop)
                }
            },
        }
    }

    /// Read one property value, already validated, into `p`.
    fn store_property(&mut self, id: PropertyId, p: &mut Properties) -> Result<(), DecodeError> {
        match id {
            PropertyId::PayloadFormatIndicator => p.payload_format_indicator = Some(self.u8()?),
            PropertyId::MessageExpiryInterval => p.message_expiry_interval = Some(self.u32()?),
            PropertyId::ContentType => p.content_type = Some(self.compact_string()?),
            PropertyId::ResponseTopic => p.response_topic = Some(self.compact_string()?),
            PropertyId::CorrelationData => p.correlation_data = Some(self.binary()?),
            PropertyId::SubscriptionIdentifier => p.subscription_identifiers.push(self.vbi()?),
            PropertyId::SessionExpiryInterval => p.session_expiry_interval = Some(self.u32()?),
            PropertyId::AssignedClientIdentifier => {
                p.assigned_client_identifier = Some(self.compact_string()?)
            }
            PropertyId::ServerKeepAlive => p.server_keep_alive = Some(self.u16()?),
            PropertyId::AuthenticationMethod => {
                p.authentication_method = Some(self.compact_string()?)
            }
            PropertyId::AuthenticationData => p.authentication_data = Some(self.binary()?),
            PropertyId::RequestProblemInformation => {
                p.request_problem_information = Some(self.u8()?)
            }
            PropertyId::WillDelayInterval => p.will_delay_interval = Some(self.u32()?),
            PropertyId::RequestResponseInformation => {
                p.request_response_information = Some(self.u8()?)
            }
            PropertyId::ResponseInformation => {
                p.response_information = Some(self.compact_string()?)
            }
            PropertyId::ServerReference => p.server_reference = Some(self.compact_string()?),
            PropertyId::ReasonString => p.reason_string = Some(self.compact_string()?),
            PropertyId::ReceiveMaximum => p.receive_maximum = Some(self.u16()?),
            PropertyId::TopicAliasMaximum => p.topic_alias_maximum = Some(self.u16()?),
            PropertyId::TopicAlias => p.topic_alias = Some(self.u16()?),
            PropertyId::MaximumQos => p.maximum_qos = Some(self.u8()?),
            PropertyId::RetainAvailable => p.retain_available = Some(self.u8()?),
            PropertyId::UserProperty => {
                let k = self.compact_string()?;
                let v = self.compact_string()?;
                p.user_properties.push((k, v));
            }
            PropertyId::MaximumPacketSize => p.maximum_packet_size = Some(self.u32()?),
            PropertyId::WildcardSubscriptionAvailable => {
                p.wildcard_subscription_available = Some(self.u8()?)
            }
            PropertyId::SubscriptionIdentifierAvailable => {
                p.subscription_identifier_available = Some(self.u8()?)
            }
            PropertyId::SharedSubscriptionAvailable => {
                p.shared_subscription_available = Some(self.u8()?)
            }
        }
        Ok(())
    }
}

/// Build the set from property block contents that [`Reader::properties`] has validated;
/// binary values share `raw`.
pub(crate) fn parse_validated_properties(raw: &Bytes) -> Properties {
    parse_properties(Reader::shared(raw))
}

/// Build the set from property block contents that [`Reader::properties`] has validated;
/// binary values are copied.
pub(crate) fn parse_validated_slice(raw: &[u8]) -> Properties {
    parse_properties(Reader::new(raw))
}

/// Build the set from validated property block contents.
fn parse_properties(mut r: Reader) -> Properties {
    let mut p = Properties::default();
    while r.remaining() > 0 {
        let id = r
            .vbi()
            .ok()
            .and_then(|id| u8::try_from(id).ok())
            .and_then(PropertyId::from_u8);
        // The block was validated, so neither can fail; were one to, the set read so far
        // is the answer rather than a panic.
        let stored = id.map(|id| r.store_property(id, &mut p));
        if !matches!(stored, Some(Ok(()))) {
            debug_assert!(false, "a validated property block failed to parse");
            break;
        }
    }
    p
}

/// The name of a property context, for error messages.
fn context_name(ctx: PropertyContext) -> &'static str {
    match ctx {
        PropertyContext::Connect => "CONNECT",
        PropertyContext::ConnAck => "CONNACK",
        PropertyContext::Publish => "PUBLISH",
        PropertyContext::Will => "Will Properties",
        PropertyContext::PubResponse => "PUBACK/PUBREC/PUBREL/PUBCOMP",
        PropertyContext::Subscribe => "SUBSCRIBE",
        PropertyContext::SubAck => "SUBACK",
        PropertyContext::Unsubscribe => "UNSUBSCRIBE",
        PropertyContext::UnsubAck => "UNSUBACK",
        PropertyContext::Disconnect => "DISCONNECT",
        PropertyContext::Auth => "AUTH",
    }
}

/// The length of the property block contents (without the Property Length itself). A
/// received set that was never written is as long as the block it came in.
#[inline]
pub(crate) fn properties_len(p: &PropertyBox) -> usize {
    match p.validated_block() {
        Some(raw) => raw.len(),
        None => structured_properties_len(p),
    }
}

/// [`properties_len`] of a structured set.
fn structured_properties_len(p: &Properties) -> usize {
    let mut n = 0;
    let byte = |o: &Option<u8>| o.map_or(0, |_| 2);
    let two = |o: &Option<u16>| o.map_or(0, |_| 3);
    let four = |o: &Option<u32>| o.map_or(0, |_| 5);
    let s = |o: &Option<CompactString>| o.as_ref().map_or(0, |v| 1 + str_len(v.len()));
    let b = |o: &Option<Bytes>| o.as_ref().map_or(0, |v| 1 + str_len(v.len()));
    n += byte(&p.payload_format_indicator);
    n += four(&p.message_expiry_interval);
    n += s(&p.content_type);
    n += s(&p.response_topic);
    n += b(&p.correlation_data);
    n += p
        .subscription_identifiers
        .iter()
        .map(|&v| 1 + vbi_len(v as usize))
        .sum::<usize>();
    n += four(&p.session_expiry_interval);
    n += s(&p.assigned_client_identifier);
    n += two(&p.server_keep_alive);
    n += s(&p.authentication_method);
    n += b(&p.authentication_data);
    n += byte(&p.request_problem_information);
    n += four(&p.will_delay_interval);
    n += byte(&p.request_response_information);
    n += s(&p.response_information);
    n += s(&p.server_reference);
    n += s(&p.reason_string);
    n += two(&p.receive_maximum);
    n += two(&p.topic_alias_maximum);
    n += two(&p.topic_alias);
    n += byte(&p.maximum_qos);
    n += byte(&p.retain_available);
    n += p
        .user_properties
        .iter()
        .map(|(k, v)| 1 + str_len(k.len()) + str_len(v.len()))
        .sum::<usize>();
    n += four(&p.maximum_packet_size);
    n += byte(&p.wildcard_subscription_available);
    n += byte(&p.subscription_identifier_available);
    n += byte(&p.shared_subscription_available);
    n
}

/// The length of a whole property block: Property Length plus contents.
#[inline]
pub(crate) fn properties_block_len(p: &PropertyBox) -> usize {
    let n = properties_len(p);
    vbi_len(n) + n
}

/// Append a property block (Property Length, then every set property in identifier order;
/// user properties and subscription identifiers in list order).
pub(crate) fn put_properties(dst: &mut BytesMut, p: &PropertyBox) -> Result<(), EncodeError> {
    put_properties_with_len(dst, p, properties_len(p))
}

/// [`put_properties`] when the caller already knows `len == properties_len(p)`.
pub(crate) fn put_properties_with_len(
    dst: &mut BytesMut,
    p: &PropertyBox,
    len: usize,
) -> Result<(), EncodeError> {
    put_vbi(dst, len);
    if len == 0 {
        return Ok(());
    }
    // A received set that was never written: its block, as it came.
    if let Some(raw) = p.validated_block() {
        dst.put_slice(raw);
        return Ok(());
    }
    let p: &Properties = p;
    #[inline]
    fn byte(dst: &mut BytesMut, id: PropertyId, v: Option<u8>) {
        if let Some(v) = v {
            dst.put_u8(id as u8);
            dst.put_u8(v);
        }
    }
    #[inline]
    fn two(dst: &mut BytesMut, id: PropertyId, v: Option<u16>) {
        if let Some(v) = v {
            dst.put_u8(id as u8);
            dst.put_u16(v);
        }
    }
    #[inline]
    fn four(dst: &mut BytesMut, id: PropertyId, v: Option<u32>) {
        if let Some(v) = v {
            dst.put_u8(id as u8);
            dst.put_u32(v);
        }
    }
    #[inline]
    fn s(dst: &mut BytesMut, id: PropertyId, v: &Option<CompactString>) -> Result<(), EncodeError> {
        if let Some(v) = v {
            dst.put_u8(id as u8);
            put_str(dst, v)?;
        }
        Ok(())
    }
    #[inline]
    fn b(dst: &mut BytesMut, id: PropertyId, v: &Option<Bytes>) -> Result<(), EncodeError> {
        if let Some(v) = v {
            dst.put_u8(id as u8);
            put_binary(dst, v)?;
        }
        Ok(())
    }
    use PropertyId as P;
    byte(dst, P::PayloadFormatIndicator, p.payload_format_indicator);
    four(dst, P::MessageExpiryInterval, p.message_expiry_interval);
    s(dst, P::ContentType, &p.content_type)?;
    s(dst, P::ResponseTopic, &p.response_topic)?;
    b(dst, P::CorrelationData, &p.correlation_data)?;
    for &id in &p.subscription_identifiers {
        dst.put_u8(P::SubscriptionIdentifier as u8);
        put_vbi(dst, id as usize);
    }
    four(dst, P::SessionExpiryInterval, p.session_expiry_interval);
    s(
        dst,
        P::AssignedClientIdentifier,
        &p.assigned_client_identifier,
    )?;
    two(dst, P::ServerKeepAlive, p.server_keep_alive);
    s(dst, P::AuthenticationMethod, &p.authentication_method)?;
    b(dst, P::AuthenticationData, &p.authentication_data)?;
    byte(
        dst,
        P::RequestProblemInformation,
        p.request_problem_information,
    );
    four(dst, P::WillDelayInterval, p.will_delay_interval);
    byte(
        dst,
        P::RequestResponseInformation,
        p.request_response_information,
    );
    s(dst, P::ResponseInformation, &p.response_information)?;
    s(dst, P::ServerReference, &p.server_reference)?;
    s(dst, P::ReasonString, &p.reason_string)?;
    two(dst, P::ReceiveMaximum, p.receive_maximum);
    two(dst, P::TopicAliasMaximum, p.topic_alias_maximum);
    two(dst, P::TopicAlias, p.topic_alias);
    byte(dst, P::MaximumQos, p.maximum_qos);
    byte(dst, P::RetainAvailable, p.retain_available);
    for (k, v) in &p.user_properties {
        dst.put_u8(P::UserProperty as u8);
        put_str(dst, k)?;
        put_str(dst, v)?;
    }
    four(dst, P::MaximumPacketSize, p.maximum_packet_size);
    byte(
        dst,
        P::WildcardSubscriptionAvailable,
        p.wildcard_subscription_available,
    );
    byte(
        dst,
        P::SubscriptionIdentifierAvailable,
        p.subscription_identifier_available,
    );
    byte(
        dst,
        P::SharedSubscriptionAvailable,
        p.shared_subscription_available,
    );
    Ok(())
}

//! Wire primitives shared by every packet: integers, variable byte integers, UTF-8 strings,
//! binary data and the MQTT 5 property block, in both directions.

use bytes::{BufMut, Bytes, BytesMut};
use compact_str::CompactString;

use super::properties::{Properties, PropertyContext, PropertyId, PropertyType};
use super::scan::is_ascii_without_nul;
use super::PropertyBox;
use super::{DecodeError, EncodeError};

/// A checked cursor over one packet body. Strings are validated and copied into their
/// `String`. Binary fields are sliced out of the shared buffer without copying when the
/// body was split off as [`Bytes`] ([`Reader::shared`], PUBLISH and CONNECT), and copied
/// otherwise ([`Reader::new`]): packets without binary fields (acknowledgements, pings,
/// subscriptions) are then decoded straight from the read buffer, without touching a
/// reference count.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    shared: Option<&'a Bytes>,
}

/// A field runs past the end of the body.
pub(crate) const TRUNCATED: DecodeError = DecodeError::LengthMismatch("body ends inside a field");

impl<'a> Reader<'a> {
    /// A reader over a body borrowed from the read buffer; binary fields are copied.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            shared: None,
        }
    }

    /// A reader over a body split off as `Bytes`; binary fields share it.
    pub(crate) fn shared(buf: &'a Bytes) -> Self {
        Reader {
            buf,
            pos: 0,
            shared: Some(buf),
        }
    }

    /// A reader over a body split off as `Bytes`, starting at `pos`; binary fields share it.
    pub(crate) fn shared_at(buf: &'a Bytes, pos: usize) -> Self {
        Reader {
            buf,
            pos,
            shared: Some(buf),
        }
    }

    /// Bytes read so far.
    #[inline]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fail with [`DecodeError::LengthMismatch`] if bytes are left over.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::LengthMismatch(
                "trailing bytes after the last field",
            ))
        }
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(TRUNCATED);
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..start + n])
    }

    /// One byte.
    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian Two Byte Integer.
    #[inline]
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A big-endian Four Byte Integer.
    #[inline]
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A Variable Byte Integer in its minimal form.
    pub(crate) fn vbi(&mut self) -> Result<u32, DecodeError> {
        match parse_vbi(&self.buf[self.pos..])? {
            Some((value, len)) => {
                self.pos += len;
                Ok(value)
            }
            None => Err(TRUNCATED),
        }
    }

    /// Binary Data: a Two Byte length and that many bytes, shared with the packet buffer
    /// when the reader has one, copied otherwise.
    #[inline]
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16()?);
        let start = self.pos;
        let raw = self.take(len)?;
        Ok(match self.shared {
            Some(buf) => buf.slice(start..start + len),
            None => Bytes::copy_from_slice(raw),
        })
    }

    /// A UTF-8 Encoded String.
    #[inline]
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        Ok(self.str()?.to_owned())
    }

    /// A UTF-8 Encoded String as a [`CompactString`] (property values): inline up to 24
    /// bytes, so a short value costs no allocation.
    #[inline]
    pub(crate) fn compact_string(&mut self) -> Result<CompactString, DecodeError> {
        Ok(CompactString::new(self.str()?))
    }

    /// A UTF-8 Encoded String, validated and borrowed from the body.
    #[inline]
    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::from(self.u16()?);
        utf8(self.take(len)?)
    }

    /// Skip a UTF-8 Encoded String after checking it ([MQTT-1.5.4-1], [MQTT-1.5.4-2]).
    #[inline]
    fn check_str(&mut self) -> Result<(), DecodeError> {
        let len = usize::from(self.u16()?);
        let raw = self.take(len)?;
        if is_ascii_without_nul(raw) {
            return Ok(());
        }
        utf8(raw).map(drop)
    }

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
pub(crate) fn context_name(ctx: PropertyContext) -> &'static str {
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

/// Validate UTF-8 string data.
#[inline]
pub(crate) fn utf8(raw: &[u8]) -> Result<&str, DecodeError> {
    // [MQTT-1.5.4-1] / [MQTT-1.5.3-1]: well-formed UTF-8; `from_utf8` rejects encoded
    // surrogates (U+D800..U+DFFF) and overlong forms.
    let s = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
    // [MQTT-1.5.4-2] / [MQTT-1.5.3-2]: no U+0000 (the only UTF-8 sequence containing 0x00).
    if raw.contains(&0) {
        return Err(DecodeError::NullCharacter);
    }
    Ok(s)
}

/// Parse a Variable Byte Integer at the start of `buf`: `Ok(None)` if `buf` ends first,
/// `Ok(Some((value, bytes_used)))` otherwise.
#[inline]
pub(crate) fn parse_vbi(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&byte) = buf.get(i) else {
            return Ok(None);
        };
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            // [MQTT-1.5.5-1] the minimum number of bytes: a last byte of 0 after a first
            // byte means a longer-than-needed encoding.
            if i > 0 && byte == 0 {
                return Err(DecodeError::MalformedVariableByteInteger);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    Err(DecodeError::MalformedVariableByteInteger)
}

/// The number of bytes of the Variable Byte Integer encoding of `value`.
#[inline]
pub(crate) fn vbi_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Append a Variable Byte Integer (`value` must be at most 268,435,455).
#[inline]
pub(crate) fn put_vbi(dst: &mut BytesMut, mut value: usize) {
    loop {
        let mut byte = (value & 0x7F) as u8;
        value >>= 7;
        if value > 0 {
            byte |= 0x80;
        }
        dst.put_u8(byte);
        if value == 0 {
            break;
        }
    }
}

/// Append a UTF-8 Encoded String.
#[inline]
pub(crate) fn put_str(dst: &mut BytesMut, s: &str) -> Result<(), EncodeError> {
    put_binary(dst, s.as_bytes())
}

/// Append Binary Data.
#[inline]
pub(crate) fn put_binary(dst: &mut BytesMut, b: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(b.len()).map_err(|_| EncodeError::StringTooLong)?;
    dst.put_u16(len);
    dst.put_slice(b);
    Ok(())
}

/// The encoded length of a string or binary field.
#[inline]
pub(crate) fn str_len(len: usize) -> usize {
    2 + len
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn vbi_round_trip_at_boundaries() {
        for v in [
            0usize,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            268_435_455,
        ] {
            let mut b = BytesMut::new();
            put_vbi(&mut b, v);
            assert_eq!(b.len(), vbi_len(v));
            assert_eq!(parse_vbi(&b).unwrap(), Some((v as u32, b.len())));
        }
    }

    #[test]
    fn vbi_rejects_five_bytes_and_non_minimal() {
        assert_eq!(
            parse_vbi(&[0x80, 0x80, 0x80, 0x80, 0x01]),
            Err(DecodeError::MalformedVariableByteInteger)
        );
        assert_eq!(
            parse_vbi(&[0x80, 0x00]),
            Err(DecodeError::MalformedVariableByteInteger)
        );
        assert_eq!(parse_vbi(&[0x80, 0x80]), Ok(None));
    }

    #[test]
    fn utf8_rejects_surrogate_and_null() {
        assert_eq!(utf8(&[0xED, 0xA0, 0x80]), Err(DecodeError::InvalidUtf8));
        assert_eq!(utf8(b"a\0b"), Err(DecodeError::NullCharacter));
        assert_eq!(utf8("\u{FEFF}x".as_bytes()), Ok("\u{FEFF}x"));
    }
}

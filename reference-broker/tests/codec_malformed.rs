//! One case per malformed-packet rule: the exact bytes, the exact error, its MQTT 5 reason
//! code and, where the version's statement list names one, the normative statement.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use reference_broker::codec::raw::{self, Builder};
use reference_broker::codec::{DecodeError, Decoder, PacketType, ProtocolVersion};
use rstest::rstest;

const V3: ProtocolVersion = ProtocolVersion::V3_1;
const V4: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// A CONNECT with the given name, level, flags, v5 property block (if any) and payload
/// after the client id "c".
fn connect(name: &[u8], level: u8, flags: u8, props: Option<&[u8]>, rest: &[u8]) -> Bytes {
    let mut b = Builder::new(0x10).utf8(name).u8(level).u8(flags).u16(60);
    if let Some(p) = props {
        b = b.properties(p);
    }
    b.utf8(b"c").bytes(rest).build()
}

fn v4_connect(flags: u8, rest: &[u8]) -> Bytes {
    connect(b"MQTT", 4, flags, None, rest)
}

fn v5_connect(props: &[u8]) -> Bytes {
    connect(b"MQTT", 5, 0x02, Some(props), &[])
}

/// A v5 PUBLISH QoS 0 to "t" with the given property block contents.
fn v5_publish(props: &[u8]) -> Bytes {
    Builder::new(0x30).utf8(b"t").properties(props).build()
}

fn publish_topic(topic: &[u8]) -> Bytes {
    Builder::new(0x30).utf8(topic).build()
}

fn subscribe(filter: &[u8], options: u8) -> Bytes {
    Builder::new(0x82).u16(1).utf8(filter).u8(options).build()
}

fn v5_subscribe(props: &[u8], filter: &[u8], options: u8) -> Bytes {
    Builder::new(0x82)
        .u16(1)
        .properties(props)
        .utf8(filter)
        .u8(options)
        .build()
}

fn decode(version: Option<ProtocolVersion>, bytes: &[u8]) -> Result<(), DecodeError> {
    let mut d = match version {
        Some(v) => Decoder::with_version(v, 1 << 20),
        None => Decoder::new(1 << 20),
    };
    let mut buf = BytesMut::from(bytes);
    d.decode(&mut buf)
        .map(|p| assert!(p.is_some(), "incomplete"))
}

#[rstest]
// ---- fixed header ----
#[case::reserved_packet_type(V4, raw::packet(0x00, &[]), DecodeError::InvalidPacketType(0), 0x81, None)]
#[case::auth_in_v311(V4, raw::packet(0xF0, &[]), DecodeError::InvalidPacketType(15), 0x81, None)]
#[case::pubrel_flags(V4, raw::packet(0x60, &[0, 1]), DecodeError::InvalidFlags { packet_type: PacketType::PubRel, flags: 0 }, 0x81, Some("MQTT-3.6.1-1"))]
#[case::subscribe_flags(V4, Builder::new(0x80).u16(1).utf8(b"a").u8(0).build(), DecodeError::InvalidFlags { packet_type: PacketType::Subscribe, flags: 0 }, 0x81, Some("MQTT-3.8.1-1"))]
#[case::unsubscribe_flags(V5, Builder::new(0xA3).u16(1).properties(&[]).utf8(b"a").build(), DecodeError::InvalidFlags { packet_type: PacketType::Unsubscribe, flags: 3 }, 0x81, Some("MQTT-3.10.1-1"))]
#[case::pingreq_flags(V4, raw::packet(0xC1, &[]), DecodeError::InvalidFlags { packet_type: PacketType::PingReq, flags: 1 }, 0x81, Some("MQTT-2.2.2-2"))]
#[case::pingresp_flags_v5(V5, raw::packet(0xD4, &[]), DecodeError::InvalidFlags { packet_type: PacketType::PingResp, flags: 4 }, 0x81, Some("MQTT-2.1.3-1"))]
#[case::disconnect_flags(V5, raw::packet(0xE8, &[]), DecodeError::InvalidFlags { packet_type: PacketType::Disconnect, flags: 8 }, 0x81, Some("MQTT-3.14.1-1"))]
#[case::auth_flags(V5, raw::packet(0xF1, &[]), DecodeError::InvalidFlags { packet_type: PacketType::Auth, flags: 1 }, 0x81, Some("MQTT-3.15.1-1"))]
#[case::connect_flags(V4, raw::packet(0x12, &[]), DecodeError::InvalidFlags { packet_type: PacketType::Connect, flags: 2 }, 0x81, Some("MQTT-2.2.2-2"))]
#[case::publish_qos3(V4, raw::packet(0x36, &[0, 1, b't', 0, 1]), DecodeError::InvalidQoS, 0x81, Some("MQTT-3.3.1-4"))]
#[case::publish_dup_qos0(V5, raw::packet(0x38, &[0, 1, b't', 0]), DecodeError::DupOnQoS0, 0x81, Some("MQTT-3.3.1-2"))]
#[case::remaining_length_five_bytes(V4, raw::packet_with_remaining_length(0x30, &[0xFF, 0xFF, 0xFF, 0xFF, 0x7F], &[]), DecodeError::MalformedRemainingLength, 0x81, None)]
#[case::remaining_length_non_minimal(V5, raw::packet_with_remaining_length(0xC0, &raw::remaining_length_forced(0, 2), &[]), DecodeError::MalformedRemainingLength, 0x81, Some("MQTT-1.5.5-1"))]
// ---- lengths ----
#[case::truncated_packet_id(V4, raw::packet(0x40, &[0]), DecodeError::LengthMismatch("body ends inside a field"), 0x81, None)]
#[case::pingreq_trailing(V4, raw::packet(0xC0, &[0]), DecodeError::LengthMismatch("trailing bytes after the last field"), 0x81, None)]
#[case::v311_disconnect_with_body(V4, raw::packet(0xE0, &[0]), DecodeError::LengthMismatch("trailing bytes after the last field"), 0x81, None)]
#[case::v311_puback_reason(V4, raw::packet(0x40, &[0, 1, 0]), DecodeError::LengthMismatch("trailing bytes after the last field"), 0x81, None)]
#[case::string_longer_than_body(V4, Builder::new(0x30).bytes(&raw::utf8_field_with_length(10, b"ab")).build(), DecodeError::LengthMismatch("body ends inside a field"), 0x81, None)]
#[case::connect_missing_password(V4, v4_connect(0xC2, &raw::utf8_field(b"u")), DecodeError::LengthMismatch("body ends inside a field"), 0x81, None)]
#[case::connect_trailing(V4, v4_connect(0x02, &[0]), DecodeError::LengthMismatch("trailing bytes after the last field"), 0x81, None)]
#[case::property_length_past_packet(V5, Builder::new(0x30).utf8(b"t").vbi(5).u8(1).build(), DecodeError::LengthMismatch("property length exceeds the packet"), 0x81, None)]
#[case::property_runs_past_length(V5, Builder::new(0x30).utf8(b"t").vbi(2).u8(0x02).u32(1).build(), DecodeError::LengthMismatch("a property runs past the property length"), 0x81, None)]
#[case::property_length_non_minimal(V5, Builder::new(0x30).utf8(b"t").bytes(&[0x80, 0x00]).build(), DecodeError::MalformedVariableByteInteger, 0x81, Some("MQTT-1.5.5-1"))]
#[case::subscription_id_non_minimal(V5, v5_publish(&[0x0B, 0x81, 0x00]), DecodeError::MalformedVariableByteInteger, 0x81, Some("MQTT-1.5.5-1"))]
// ---- UTF-8 ----
#[case::topic_surrogate(V4, publish_topic(&[0xED, 0xA0, 0x80]), DecodeError::InvalidUtf8, 0x81, Some("MQTT-1.5.3-1"))]
#[case::topic_surrogate_v5(V5, Builder::new(0x30).utf8(&[0xED, 0xBF, 0xBF]).properties(&[]).build(), DecodeError::InvalidUtf8, 0x81, Some("MQTT-1.5.4-1"))]
#[case::topic_invalid_byte(V4, publish_topic(&[b'a', 0xFF]), DecodeError::InvalidUtf8, 0x81, Some("MQTT-1.5.3-1"))]
#[case::topic_overlong_null(V4, publish_topic(&[0xC0, 0x80]), DecodeError::InvalidUtf8, 0x81, Some("MQTT-1.5.3-1"))]
#[case::topic_null(
    V4,
    publish_topic(b"a\0b"),
    DecodeError::NullCharacter,
    0x81,
    Some("MQTT-1.5.3-2")
)]
#[case::client_id_null(V4, connect(b"MQTT", 4, 0x02, None, &[]).iter().copied().map(|b| if b == b'c' { 0 } else { b }).collect::<Bytes>(), DecodeError::NullCharacter, 0x81, Some("MQTT-1.5.3-2"))]
#[case::filter_null_v5(V5, v5_subscribe(&[], b"a\0", 0), DecodeError::NullCharacter, 0x81, Some("MQTT-1.5.4-2"))]
#[case::user_property_invalid(V5, v5_publish(&[0x26, 0, 1, b'k', 0, 1, 0xFE]), DecodeError::InvalidUtf8, 0x81, Some("MQTT-1.5.4-1"))]
// ---- topic names and filters ----
#[case::topic_plus(V4, publish_topic(b"a/+"), DecodeError::WildcardInTopicName("a/+".into()), 0x90, Some("MQTT-3.3.2-2"))]
#[case::topic_hash(V5, Builder::new(0x30).utf8(b"#").properties(&[]).build(), DecodeError::WildcardInTopicName("#".into()), 0x90, Some("MQTT-3.3.2-2"))]
#[case::topic_empty_v311(
    V4,
    publish_topic(b""),
    DecodeError::EmptyTopicName,
    0x82,
    Some("MQTT-4.7.3-1")
)]
#[case::topic_empty_no_alias_v5(V5, Builder::new(0x30).utf8(b"").properties(&[]).build(), DecodeError::EmptyTopicName, 0x82, Some("MQTT-4.7.3-1"))]
#[case::will_topic_wildcard(V4, v4_connect(0x06, &[raw::utf8_field(b"w/#"), raw::binary_field(b"x")].concat()), DecodeError::WildcardInTopicName("w/#".into()), 0x90, Some("MQTT-3.3.2-2"))]
#[case::response_topic_wildcard(V5, v5_publish(&[&[0x08][..], &raw::utf8_field(b"r/+")].concat()), DecodeError::InvalidPropertyValue(0x08), 0x82, Some("MQTT-3.3.2-14"))]
#[case::filter_hash_not_last(V4, subscribe(b"a/#/b", 0), DecodeError::InvalidTopicFilter("a/#/b".into()), 0x8F, Some("MQTT-4.7.1-2"))]
#[case::filter_hash_not_alone(V5, v5_subscribe(&[], b"a#", 0), DecodeError::InvalidTopicFilter("a#".into()), 0x8F, Some("MQTT-4.7.1-1"))]
#[case::filter_plus_not_alone(V4, subscribe(b"a/b+", 1), DecodeError::InvalidTopicFilter("a/b+".into()), 0x8F, Some("MQTT-4.7.1-3"))]
#[case::filter_plus_not_alone_v5(V5, v5_subscribe(&[], b"+a", 1), DecodeError::InvalidTopicFilter("+a".into()), 0x8F, Some("MQTT-4.7.1-2"))]
#[case::filter_empty(
    V4,
    subscribe(b"", 0),
    DecodeError::InvalidTopicFilter(String::new()),
    0x8F,
    Some("MQTT-4.7.3-1")
)]
#[case::unsubscribe_bad_filter(V4, Builder::new(0xA2).u16(1).utf8(b"#/a").build(), DecodeError::InvalidTopicFilter("#/a".into()), 0x8F, Some("MQTT-4.7.1-2"))]
#[case::shared_empty_name(V5, v5_subscribe(&[], b"$share//a", 0), DecodeError::InvalidTopicFilter("$share//a".into()), 0x8F, Some("MQTT-4.8.2-2"))]
#[case::shared_no_filter(V5, v5_subscribe(&[], b"$share/g", 0), DecodeError::InvalidTopicFilter("$share/g".into()), 0x8F, Some("MQTT-4.8.2-2"))]
#[case::shared_wildcard_name(V5, v5_subscribe(&[], b"$share/g+/a", 0), DecodeError::InvalidTopicFilter("$share/g+/a".into()), 0x8F, Some("MQTT-4.8.2-2"))]
#[case::shared_no_local(V5, v5_subscribe(&[], b"$share/g/a", 0x04), DecodeError::NoLocalOnSharedSubscription, 0x82, Some("MQTT-3.8.3-4"))]
// ---- packet identifiers and payload presence ----
#[case::publish_qos1_id0(V4, raw::packet(0x32, &[0, 1, b't', 0, 0]), DecodeError::ZeroPacketIdentifier, 0x82, Some("MQTT-2.3.1-1"))]
#[case::publish_qos2_id0_v5(V5, raw::packet(0x34, &[0, 1, b't', 0, 0, 0]), DecodeError::ZeroPacketIdentifier, 0x82, Some("MQTT-2.2.1-3"))]
#[case::subscribe_id0(V4, Builder::new(0x82).u16(0).utf8(b"a").u8(0).build(), DecodeError::ZeroPacketIdentifier, 0x82, Some("MQTT-2.3.1-1"))]
#[case::unsubscribe_id0(V4, Builder::new(0xA2).u16(0).utf8(b"a").build(), DecodeError::ZeroPacketIdentifier, 0x82, Some("MQTT-2.3.1-1"))]
#[case::puback_id0(V4, raw::packet(0x40, &[0, 0]), DecodeError::ZeroPacketIdentifier, 0x82, Some("MQTT-2.3.1-1"))]
#[case::subscribe_no_filter(V4, raw::packet(0x82, &[0, 1]), DecodeError::NoTopicFilters(PacketType::Subscribe), 0x82, Some("MQTT-3.8.3-3"))]
#[case::subscribe_no_filter_v5(V5, raw::packet(0x82, &[0, 1, 0]), DecodeError::NoTopicFilters(PacketType::Subscribe), 0x82, Some("MQTT-3.8.3-2"))]
#[case::unsubscribe_no_filter(V4, raw::packet(0xA2, &[0, 1]), DecodeError::NoTopicFilters(PacketType::Unsubscribe), 0x82, Some("MQTT-3.10.3-2"))]
#[case::suback_no_code(V4, raw::packet(0x90, &[0, 1]), DecodeError::NoTopicFilters(PacketType::SubAck), 0x82, Some("MQTT-3.8.4-5"))]
#[case::unsuback_no_code_v5(V5, raw::packet(0xB0, &[0, 1, 0]), DecodeError::NoTopicFilters(PacketType::UnsubAck), 0x82, Some("MQTT-3.11.3-2"))]
// ---- subscription options ----
#[case::options_reserved_v311(
    V4,
    subscribe(b"a", 0x04),
    DecodeError::SubscriptionOptionsReserved,
    0x81,
    Some("MQTT-3.8.3-4")
)]
#[case::options_reserved_v5(V5, v5_subscribe(&[], b"a", 0x40), DecodeError::SubscriptionOptionsReserved, 0x81, Some("MQTT-3.8.3-5"))]
#[case::options_qos3(
    V4,
    subscribe(b"a", 0x03),
    DecodeError::InvalidSubscriptionQoS,
    0x82,
    Some("MQTT-3.8.3-4")
)]
#[case::options_qos3_v5(V5, v5_subscribe(&[], b"a", 0x03), DecodeError::InvalidSubscriptionQoS, 0x82, None)]
#[case::retain_handling3(V5, v5_subscribe(&[], b"a", 0x30), DecodeError::InvalidRetainHandling, 0x82, None)]
// ---- CONNECT ----
#[case::connect_reserved_flag(V4, v4_connect(0x03, &[]), DecodeError::ConnectReservedFlag, 0x81, Some("MQTT-3.1.2-3"))]
#[case::will_qos_without_will(V4, v4_connect(0x0A, &[]), DecodeError::InvalidWillFlags, 0x81, Some("MQTT-3.1.2-11"))]
#[case::will_retain_without_will(V5, connect(b"MQTT", 5, 0x22, Some(&[]), &[]), DecodeError::InvalidWillFlags, 0x81, Some("MQTT-3.1.2-11"))]
#[case::will_qos3(V4, v4_connect(0x1E, &[raw::utf8_field(b"w"), raw::binary_field(b"x")].concat()), DecodeError::InvalidWillFlags, 0x81, Some("MQTT-3.1.2-11"))]
#[case::password_without_username(V4, v4_connect(0x42, &raw::binary_field(b"p")), DecodeError::PasswordWithoutUsername, 0x81, Some("MQTT-3.1.2-22"))]
#[case::password_without_username_v31(V3, connect(b"MQIsdp", 3, 0x42, None, &raw::binary_field(b"p")), DecodeError::PasswordWithoutUsername, 0x81, Some("MQTT-3.1.2-22"))]
#[case::protocol_name(V4, connect(b"MQTX", 4, 0x02, None, &[]), DecodeError::InvalidProtocolName("MQTX".into()), 0x84, Some("MQTT-3.1.2-1"))]
#[case::protocol_level(V4, connect(b"MQTT", 6, 0x02, None, &[]), DecodeError::UnsupportedProtocolVersion(6), 0x84, Some("MQTT-3.1.2-2"))]
#[case::mqisdp_level4(V4, connect(b"MQIsdp", 4, 0x02, None, &[]), DecodeError::UnsupportedProtocolVersion(4), 0x84, Some("MQTT-3.1.2-2"))]
#[case::protocol_name_invalid_utf8(V4, connect(&[0xFF], 4, 0x02, None, &[]), DecodeError::InvalidUtf8, 0x81, Some("MQTT-1.5.3-1"))]
// ---- properties ----
#[case::unknown_property(V5, v5_publish(&[0x05, 0]), DecodeError::UnknownProperty(0x05), 0x81, None)]
#[case::property_not_in_publish(V5, v5_publish(&[0x11, 0, 0, 0, 1]), DecodeError::PropertyNotAllowed { id: 0x11, context: "PUBLISH" }, 0x81, None)]
#[case::property_not_in_connect(V5, v5_connect(&[0x18, 0, 0, 0, 1]), DecodeError::PropertyNotAllowed { id: 0x18, context: "CONNECT" }, 0x81, None)]
#[case::property_not_in_will(V5, connect(b"MQTT", 5, 0x06, Some(&[]), &[raw::properties(&[0x11, 0, 0, 0, 1]), raw::utf8_field(b"w"), raw::binary_field(b"")].concat()), DecodeError::PropertyNotAllowed { id: 0x11, context: "Will Properties" }, 0x81, None)]
#[case::duplicate_property(V5, v5_publish(&[0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2]), DecodeError::DuplicateProperty(0x02), 0x82, None)]
#[case::duplicate_subscription_id_in_subscribe(V5, v5_subscribe(&[0x0B, 1, 0x0B, 2], b"a", 0), DecodeError::DuplicateProperty(0x0B), 0x82, None)]
#[case::receive_maximum_zero(V5, v5_connect(&[0x21, 0, 0]), DecodeError::InvalidPropertyValue(0x21), 0x82, None)]
#[case::maximum_packet_size_zero(V5, v5_connect(&[0x27, 0, 0, 0, 0]), DecodeError::InvalidPropertyValue(0x27), 0x82, None)]
#[case::request_problem_information_2(V5, v5_connect(&[0x17, 2]), DecodeError::InvalidPropertyValue(0x17), 0x82, None)]
#[case::maximum_qos_2(V5, Builder::new(0x20).u8(0).u8(0).properties(&[0x24, 2]).build(), DecodeError::InvalidPropertyValue(0x24), 0x82, None)]
#[case::payload_format_2(V5, v5_publish(&[0x01, 2]), DecodeError::InvalidPropertyValue(0x01), 0x82, None)]
#[case::auth_data_without_method(V5, v5_connect(&[0x16, 0, 1, 7]), DecodeError::Protocol("Authentication Data without Authentication Method"), 0x82, None)]
#[case::subscription_id_zero(V5, v5_subscribe(&[0x0B, 0], b"a", 0), DecodeError::InvalidPropertyValue(0x0B), 0x82, None)]
// ---- reason codes ----
#[case::connack_reserved_flags(V5, Builder::new(0x20).u8(2).u8(0).properties(&[]).build(), DecodeError::ConnAckReservedFlags(2), 0x81, Some("MQTT-3.2.2-1"))]
#[case::connack_v311_code6(V4, raw::packet(0x20, &[0, 6]), DecodeError::InvalidReasonCode { packet_type: PacketType::ConnAck, code: 6 }, 0x81, None)]
#[case::connack_v5_code1(V5, Builder::new(0x20).u8(0).u8(1).properties(&[]).build(), DecodeError::InvalidReasonCode { packet_type: PacketType::ConnAck, code: 1 }, 0x81, Some("MQTT-3.2.2-8"))]
#[case::puback_code(V5, raw::packet(0x40, &[0, 1, 0x05]), DecodeError::InvalidReasonCode { packet_type: PacketType::PubAck, code: 5 }, 0x81, Some("MQTT-3.4.2-1"))]
#[case::pubrel_code(V5, raw::packet(0x62, &[0, 1, 0x10]), DecodeError::InvalidReasonCode { packet_type: PacketType::PubRel, code: 0x10 }, 0x81, Some("MQTT-3.6.2-1"))]
#[case::suback_code_v311(V4, raw::packet(0x90, &[0, 1, 3]), DecodeError::InvalidReasonCode { packet_type: PacketType::SubAck, code: 3 }, 0x81, Some("MQTT-3.9.3-2"))]
#[case::unsuback_code(V5, raw::packet(0xB0, &[0, 1, 0, 0x01]), DecodeError::InvalidReasonCode { packet_type: PacketType::UnsubAck, code: 1 }, 0x81, Some("MQTT-3.11.3-2"))]
#[case::disconnect_code(V5, raw::packet(0xE0, &[0x05]), DecodeError::InvalidReasonCode { packet_type: PacketType::Disconnect, code: 5 }, 0x81, Some("MQTT-3.14.2-1"))]
#[case::disconnect_code_packet_id_in_use(V5, raw::packet(0xE0, &[0x91]), DecodeError::InvalidReasonCode { packet_type: PacketType::Disconnect, code: 0x91 }, 0x81, Some("MQTT-3.14.2-1"))]
#[case::auth_code(V5, raw::packet(0xF0, &[0x01]), DecodeError::InvalidReasonCode { packet_type: PacketType::Auth, code: 1 }, 0x81, Some("MQTT-3.15.2-1"))]
fn malformed(
    #[case] version: ProtocolVersion,
    #[case] bytes: Bytes,
    #[case] expected: DecodeError,
    #[case] reason: u8,
    #[case] statement: Option<&str>,
) {
    let got = decode(Some(version), &bytes);
    assert_eq!(got, Err(expected.clone()), "bytes {bytes:02X?}");
    assert_eq!(
        expected.reason_code().0,
        reason,
        "reason code of {expected:?}"
    );
    assert_eq!(
        expected.statement(version),
        statement,
        "statement of {expected:?}"
    );
    // A server decoder that has not seen CONNECT yet decodes CONNECT with its own
    // version, and everything else with 3.1.1 rules: CONNECT errors are the same.
    if bytes[0] >> 4 == 1 {
        assert_eq!(decode(None, &bytes), Err(expected));
    }
}

#[test]
fn packet_too_large_before_body() {
    let mut d = Decoder::with_version(V5, 10);
    // PUBLISH announcing 100 bytes; only the fixed header has arrived.
    let mut buf = BytesMut::from(
        &raw::packet_with_remaining_length(0x30, &raw::remaining_length(100), &[])[..],
    );
    let err = d.decode(&mut buf).unwrap_err();
    assert_eq!(err, DecodeError::PacketTooLarge { size: 102, max: 10 });
    assert_eq!(err.reason_code().0, 0x95);
}

#[test]
fn mqtt31_accepts_dup_on_subscribe() {
    let bytes = Builder::new(0x8A).u16(1).utf8(b"a").u8(1).build();
    assert_eq!(decode(Some(V3), &bytes), Ok(()));
    assert!(decode(Some(V4), &bytes).is_err());
}

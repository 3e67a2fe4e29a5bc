//! Shared proptest strategies: arbitrary valid packets of every type for MQTT 3.1, 3.1.1
//! and 5.0 (only the properties each packet allows, values in their legal ranges).
#![allow(dead_code)]

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::select;
use reference_broker::codec::*;

pub const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

pub fn arb_version() -> impl Strategy<Value = ProtocolVersion> {
    select(&VERSIONS[..])
}

pub fn arb_string() -> impl Strategy<Value = String> {
    // Any characters but U+0000 (forbidden in every UTF-8 field).
    "[^\u{0}]{0,8}"
}

pub fn arb_bytes() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..16).prop_map(Bytes::from)
}

pub fn arb_topic() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9/ $é€😀]{1,12}"
}

pub fn arb_filter(v5: bool) -> impl Strategy<Value = String> {
    let levels = prop::collection::vec(prop_oneof!["[a-z$é]{0,3}", Just("+".to_owned())], 1..4);
    let plain = (levels, any::<bool>(), any::<bool>()).prop_map(|(levels, hash, only_hash)| {
        if only_hash {
            return "#".to_owned();
        }
        let mut f = levels.join("/");
        if f.is_empty() {
            // [MQTT-4.7.3-1] a filter has at least one character.
            f.push('x');
        }
        if hash {
            f.push_str("/#");
        }
        f
    });
    (plain, "[a-z]{1,4}", any::<bool>()).prop_map(move |(f, group, shared)| {
        if v5 && shared {
            format!("$share/{group}/{f}")
        } else {
            f
        }
    })
}

pub fn flag() -> impl Strategy<Value = Option<u8>> {
    proptest::option::of(0u8..=1)
}

pub fn s() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(arb_string())
}

pub fn arb_properties(ctx: PropertyContext) -> impl Strategy<Value = Properties> {
    let t1 = (
        flag(),
        any::<Option<u32>>(),
        s(),
        proptest::option::of(arb_topic()),
        proptest::option::of(arb_bytes()),
        prop::collection::vec(1u32..=268_435_455, 0..3),
        any::<Option<u32>>(),
        s(),
        any::<Option<u16>>(),
    );
    let t2 = (
        s(),
        proptest::option::of(arb_bytes()),
        flag(),
        any::<Option<u32>>(),
        flag(),
        s(),
        s(),
        s(),
        proptest::option::of(1u16..),
    );
    let t3 = (
        any::<Option<u16>>(),
        any::<Option<u16>>(),
        flag(),
        flag(),
        prop::collection::vec((arb_string(), arb_string()), 0..3),
        proptest::option::of(1u32..),
        flag(),
        flag(),
        flag(),
    );
    (t1, t2, t3).prop_map(move |(t1, t2, t3)| {
        let mut p = Properties {
            payload_format_indicator: t1.0,
            message_expiry_interval: t1.1,
            content_type: t1.2.map(Into::into),
            response_topic: t1.3.map(Into::into),
            correlation_data: t1.4,
            subscription_identifiers: t1.5,
            session_expiry_interval: t1.6,
            assigned_client_identifier: t1.7.map(Into::into),
            server_keep_alive: t1.8,
            authentication_method: t2.0.map(Into::into),
            authentication_data: t2.1,
            request_problem_information: t2.2,
            will_delay_interval: t2.3,
            request_response_information: t2.4,
            response_information: t2.5.map(Into::into),
            server_reference: t2.6.map(Into::into),
            reason_string: t2.7.map(Into::into),
            receive_maximum: t2.8,
            topic_alias_maximum: t3.0,
            topic_alias: t3.1,
            maximum_qos: t3.2,
            retain_available: t3.3,
            user_properties: t3
                .4
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            maximum_packet_size: t3.5,
            wildcard_subscription_available: t3.6,
            subscription_identifier_available: t3.7,
            shared_subscription_available: t3.8,
        };
        restrict(&mut p, ctx);
        p
    })
}

/// Clear every property not allowed in `ctx`.
pub fn restrict(p: &mut Properties, ctx: PropertyContext) {
    use PropertyId as P;
    for &id in PropertyId::ALL {
        if id.allowed_in(ctx) {
            continue;
        }
        match id {
            P::PayloadFormatIndicator => p.payload_format_indicator = None,
            P::MessageExpiryInterval => p.message_expiry_interval = None,
            P::ContentType => p.content_type = None,
            P::ResponseTopic => p.response_topic = None,
            P::CorrelationData => p.correlation_data = None,
            P::SubscriptionIdentifier => p.subscription_identifiers.clear(),
            P::SessionExpiryInterval => p.session_expiry_interval = None,
            P::AssignedClientIdentifier => p.assigned_client_identifier = None,
            P::ServerKeepAlive => p.server_keep_alive = None,
            P::AuthenticationMethod => p.authentication_method = None,
            P::AuthenticationData => p.authentication_data = None,
            P::RequestProblemInformation => p.request_problem_information = None,
            P::WillDelayInterval => p.will_delay_interval = None,
            P::RequestResponseInformation => p.request_response_information = None,
            P::ResponseInformation => p.response_information = None,
            P::ServerReference => p.server_reference = None,
            P::ReasonString => p.reason_string = None,
            P::ReceiveMaximum => p.receive_maximum = None,
            P::TopicAliasMaximum => p.topic_alias_maximum = None,
            P::TopicAlias => p.topic_alias = None,
            P::MaximumQos => p.maximum_qos = None,
            P::RetainAvailable => p.retain_available = None,
            P::UserProperty => p.user_properties.clear(),
            P::MaximumPacketSize => p.maximum_packet_size = None,
            P::WildcardSubscriptionAvailable => p.wildcard_subscription_available = None,
            P::SubscriptionIdentifierAvailable => p.subscription_identifier_available = None,
            P::SharedSubscriptionAvailable => p.shared_subscription_available = None,
        }
    }
    // Authentication Data needs an Authentication Method (MQTT 5 section 3.1.2.11.10).
    if p.authentication_method.is_none() {
        p.authentication_data = None;
    }
    // Only PUBLISH may repeat the Subscription Identifier.
    if ctx != PropertyContext::Publish {
        p.subscription_identifiers.truncate(1);
    }
}

/// Properties under `v`: empty before MQTT 5.
pub fn props(v: ProtocolVersion, ctx: PropertyContext) -> BoxedStrategy<Properties> {
    if v.is_v5() {
        arb_properties(ctx).boxed()
    } else {
        Just(Properties::default()).boxed()
    }
}

pub fn reason(t: PacketType, v: ProtocolVersion) -> impl Strategy<Value = ReasonCode> {
    let valid: Vec<ReasonCode> = (0..=255u8)
        .map(ReasonCode)
        .filter(|c| c.is_valid_for(t, v))
        .collect();
    select(valid)
}

pub fn arb_qos() -> impl Strategy<Value = QoS> {
    select(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][..])
}

pub fn arb_connect(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let will = proptest::option::of(
        (
            arb_topic(),
            arb_bytes(),
            arb_qos(),
            any::<bool>(),
            props(v, PropertyContext::Will),
        )
            .prop_map(|(topic, payload, qos, retain, properties)| Will {
                topic,
                payload,
                qos,
                retain,
                properties: properties.into(),
            }),
    );
    (
        any::<bool>(),
        any::<u16>(),
        arb_string(),
        will,
        proptest::option::of(arb_string()),
        proptest::option::of(arb_bytes()),
        props(v, PropertyContext::Connect),
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                // Before MQTT 5 a password needs a user name [MQTT-3.1.2-22].
                let password = if v.is_v5() || username.is_some() {
                    password
                } else {
                    None
                };
                Packet::Connect(Box::new(Connect {
                    protocol: v,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties: properties.into(),
                }))
            },
        )
}

pub fn arb_publish(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        arb_qos(),
        any::<bool>(),
        any::<bool>(),
        arb_topic(),
        1u16..,
        props(v, PropertyContext::Publish),
        prop::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    )
        .prop_map(
            move |(qos, dup, retain, topic, id, mut properties, payload, alias_only)| {
                let zero = qos == QoS::AtMostOnce;
                // MQTT 5: an empty topic name needs a Topic Alias.
                let topic = if v.is_v5() && alias_only {
                    properties.topic_alias = Some(properties.topic_alias.unwrap_or(1));
                    String::new()
                } else {
                    topic
                };
                Packet::Publish(Publish {
                    dup: dup && !zero,
                    qos,
                    retain,
                    topic: topic.into(),
                    packet_id: if zero { 0 } else { id },
                    properties: properties.into(),
                    payload: Bytes::from(payload),
                })
            },
        )
}

pub fn arb_pub_response(v: ProtocolVersion, t: PacketType) -> impl Strategy<Value = Packet> {
    let reason = if v.is_v5() {
        reason(t, v).boxed()
    } else {
        Just(ReasonCode::SUCCESS).boxed()
    };
    (1u16.., reason, props(v, PropertyContext::PubResponse)).prop_map(
        move |(packet_id, reason, properties)| {
            let r = PubResponse {
                packet_id,
                reason,
                properties: properties.into(),
            };
            match t {
                PacketType::PubAck => Packet::PubAck(r),
                PacketType::PubRec => Packet::PubRec(r),
                PacketType::PubRel => Packet::PubRel(r),
                _ => Packet::PubComp(r),
            }
        },
    )
}

pub fn arb_subscribe(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = v.is_v5();
    let sub = (
        arb_filter(v5),
        arb_qos(),
        any::<bool>(),
        any::<bool>(),
        select(
            &[
                RetainHandling::SendAtSubscribe,
                RetainHandling::SendIfNew,
                RetainHandling::DoNotSend,
            ][..],
        ),
    )
        .prop_map(move |(filter, qos, nl, rap, rh)| {
            let shared = filter.starts_with("$share/");
            let options = if v5 {
                SubscriptionOptions {
                    qos,
                    no_local: nl && !shared,
                    retain_as_published: rap,
                    retain_handling: rh,
                }
            } else {
                SubscriptionOptions {
                    qos,
                    ..Default::default()
                }
            };
            Subscription { filter, options }
        });
    (
        1u16..,
        props(v, PropertyContext::Subscribe),
        prop::collection::vec(sub, 1..4),
    )
        .prop_map(|(packet_id, properties, subscriptions)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                properties: properties.into(),
                subscriptions,
            })
        })
}

pub fn arb_suback(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        1u16..,
        props(v, PropertyContext::SubAck),
        prop::collection::vec(reason(PacketType::SubAck, v), 1..4),
    )
        .prop_map(|(packet_id, properties, reason_codes)| {
            Packet::SubAck(SubAck {
                packet_id,
                properties: properties.into(),
                reason_codes,
            })
        })
}

pub fn arb_unsubscribe(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        1u16..,
        props(v, PropertyContext::Unsubscribe),
        prop::collection::vec(arb_filter(v.is_v5()), 1..4),
    )
        .prop_map(|(packet_id, properties, filters)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties: properties.into(),
                filters,
            })
        })
}

pub fn arb_unsuback(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let codes = if v.is_v5() {
        prop::collection::vec(reason(PacketType::UnsubAck, v), 1..4).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (1u16.., props(v, PropertyContext::UnsubAck), codes).prop_map(
        |(packet_id, properties, reason_codes)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                properties: properties.into(),
                reason_codes,
            })
        },
    )
}

pub fn arb_packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let connack = (
        any::<bool>(),
        reason(PacketType::ConnAck, v),
        props(v, PropertyContext::ConnAck),
    )
        .prop_map(|(session_present, code, properties)| {
            Packet::ConnAck(ConnAck {
                session_present,
                code,
                properties: properties.into(),
            })
        });
    let common = prop_oneof![
        arb_connect(v),
        connack,
        arb_publish(v),
        arb_pub_response(v, PacketType::PubAck),
        arb_pub_response(v, PacketType::PubRec),
        arb_pub_response(v, PacketType::PubRel),
        arb_pub_response(v, PacketType::PubComp),
        arb_subscribe(v),
        arb_suback(v),
        arb_unsubscribe(v),
        arb_unsuback(v),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
    ];
    if !v.is_v5() {
        return prop_oneof![12 => common, 1 => Just(Packet::Disconnect(Disconnect::default()))]
            .boxed();
    }
    let disconnect = (
        reason(PacketType::Disconnect, v),
        props(v, PropertyContext::Disconnect),
    )
        .prop_map(|(reason, properties)| {
            Packet::Disconnect(Disconnect {
                reason,
                properties: properties.into(),
            })
        });
    let auth = (reason(PacketType::Auth, v), props(v, PropertyContext::Auth)).prop_map(
        |(reason, properties)| {
            Packet::Auth(Auth {
                reason,
                properties: properties.into(),
            })
        },
    );
    prop_oneof![13 => common, 1 => disconnect, 1 => auth].boxed()
}

pub fn arb_versioned_packet() -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    arb_version().prop_flat_map(|v| (Just(v), arb_packet(v)))
}

/// A deterministic proptest configuration: `cases` cases from a fixed seed, so every run
/// checks the same inputs (set `PROPTEST_RNG_SEED` to explore other seeds locally).
pub fn config(cases: u32) -> ProptestConfig {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x4D51_5454);
    ProptestConfig {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        ..ProptestConfig::default()
    }
}

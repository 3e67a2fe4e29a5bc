//! Unit tests of the codec: known byte vectors and round trips of sample packets.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};

use super::*;

const ALL: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

fn props() -> Properties {
    Properties {
        reason_string: Some("why".into()),
        user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
        ..Default::default()
    }
}

/// Sample packets valid under `v`.
pub(crate) fn samples(v: ProtocolVersion) -> Vec<Packet> {
    let v5 = v.is_v5();
    let p = |x: Properties| if v5 { x } else { Properties::default() };
    let rc = |c: u8| {
        if v5 {
            ReasonCode(c)
        } else {
            ReasonCode::SUCCESS
        }
    };
    let mut out = vec![
        Packet::Connect(Box::new(Connect {
            protocol: v,
            clean_start: true,
            keep_alive: 30,
            client_id: "client-1".into(),
            will: Some(Will {
                topic: "will/t".into(),
                payload: Bytes::from_static(b"bye"),
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: p(Properties {
                    will_delay_interval: Some(5),
                    content_type: Some("text/plain".into()),
                    ..Default::default()
                })
                .into(),
            }),
            username: Some("user".into()),
            password: Some(Bytes::from_static(b"pw")),
            properties: p(Properties {
                session_expiry_interval: Some(60),
                receive_maximum: Some(10),
                maximum_packet_size: Some(1024),
                topic_alias_maximum: Some(5),
                user_properties: vec![("a".into(), "b".into())],
                authentication_method: Some("SCRAM".into()),
                authentication_data: Some(Bytes::from_static(b"\x00\x01")),
                ..Default::default()
            })
            .into(),
        })),
        Packet::Connect(Box::new(Connect {
            protocol: v,
            clean_start: false,
            keep_alive: 0,
            client_id: String::new(),
            will: None,
            username: None,
            password: None,
            properties: Default::default(),
        })),
        Packet::ConnAck(ConnAck {
            session_present: true,
            code: ReasonCode::SUCCESS,
            properties: p(Properties {
                assigned_client_identifier: Some("auto-1".into()),
                maximum_qos: Some(1),
                retain_available: Some(0),
                server_keep_alive: Some(20),
                ..Default::default()
            })
            .into(),
        }),
        Packet::ConnAck(ConnAck {
            session_present: false,
            code: if v5 {
                ReasonCode::NOT_AUTHORIZED
            } else {
                reason::v3::NOT_AUTHORIZED
            },
            properties: Default::default(),
        }),
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: true,
            topic: "a/b".into(),
            packet_id: 0,
            properties: Default::default(),
            payload: Bytes::from_static(b"hello"),
        }),
        Packet::Publish(Publish {
            dup: true,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "a/b/c".into(),
            packet_id: 7,
            properties: p(Properties {
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(100),
                response_topic: Some("resp/x".into()),
                correlation_data: Some(Bytes::from_static(b"corr")),
                subscription_identifiers: vec![1, 300, 268_435_455],
                topic_alias: Some(3),
                user_properties: vec![("x".into(), "y".into())],
                ..Default::default()
            })
            .into(),
            payload: Bytes::new(),
        }),
        Packet::PubAck(PubResponse {
            packet_id: 1,
            reason: ReasonCode::SUCCESS,
            properties: Default::default(),
        }),
        Packet::PubAck(PubResponse {
            packet_id: 2,
            reason: rc(0x10),
            properties: Default::default(),
        }),
        Packet::PubRec(PubResponse {
            packet_id: 3,
            reason: rc(0x80),
            properties: p(props()).into(),
        }),
        Packet::PubRel(PubResponse {
            packet_id: 4,
            reason: rc(0x92),
            properties: Default::default(),
        }),
        Packet::PubComp(PubResponse {
            packet_id: 65535,
            reason: ReasonCode::SUCCESS,
            properties: p(props()).into(),
        }),
        Packet::Subscribe(Subscribe {
            packet_id: 10,
            properties: p(Properties {
                subscription_identifiers: vec![42],
                ..Default::default()
            })
            .into(),
            subscriptions: vec![
                Subscription {
                    filter: "a/+/c".into(),
                    options: SubscriptionOptions {
                        qos: QoS::ExactlyOnce,
                        no_local: v5,
                        retain_as_published: v5,
                        retain_handling: if v5 {
                            RetainHandling::DoNotSend
                        } else {
                            RetainHandling::SendAtSubscribe
                        },
                    },
                },
                Subscription {
                    filter: "#".into(),
                    options: SubscriptionOptions::default(),
                },
            ],
        }),
        Packet::SubAck(SubAck {
            packet_id: 10,
            properties: p(props()).into(),
            reason_codes: vec![ReasonCode(2), ReasonCode(0), ReasonCode(0x80)],
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 11,
            properties: p(Properties {
                user_properties: vec![("u".into(), "".into())],
                ..Default::default()
            })
            .into(),
            filters: vec!["a/#".into(), "b".into()],
        }),
        Packet::UnsubAck(UnsubAck {
            packet_id: 11,
            properties: p(props()).into(),
            reason_codes: if v5 {
                vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED]
            } else {
                vec![]
            },
        }),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect(Disconnect::default()),
    ];
    if v5 {
        out.push(Packet::Disconnect(Disconnect {
            reason: ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
            properties: Default::default(),
        }));
        out.push(Packet::Disconnect(Disconnect {
            reason: ReasonCode::SERVER_MOVED,
            properties: Properties {
                server_reference: Some("other:1883".into()),
                session_expiry_interval: Some(0),
                ..props()
            }
            .into(),
        }));
        out.push(Packet::Auth(Auth::default()));
        out.push(Packet::Auth(Auth {
            reason: ReasonCode::CONTINUE_AUTHENTICATION,
            properties: Properties {
                authentication_method: Some("SCRAM".into()),
                authentication_data: Some(Bytes::from_static(b"data")),
                ..props()
            }
            .into(),
        }));
        out.push(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: String::new().into(),
            packet_id: 9,
            properties: Properties {
                topic_alias: Some(1),
                ..Default::default()
            }
            .into(),
            payload: Bytes::from_static(b"aliased"),
        }));
    }
    out
}

fn round_trip(packet: &Packet, v: ProtocolVersion) {
    let mut buf = BytesMut::new();
    encode(packet, v, &mut buf).unwrap();
    assert_eq!(buf.len(), encoded_len(packet, v), "{packet:?}");
    let mut d = Decoder::with_version(v, usize::MAX);
    let got = d.decode(&mut buf).unwrap().unwrap();
    assert_eq!(&got, packet, "{v:?}");
    assert!(buf.is_empty());
}

#[test]
fn every_sample_round_trips_in_every_version() {
    for v in ALL {
        for p in samples(v) {
            round_trip(&p, v);
        }
    }
}

#[test]
fn connect_fixes_the_version() {
    for v in ALL {
        let mut buf = BytesMut::new();
        for p in samples(v) {
            encode(&p, v, &mut buf).unwrap();
        }
        let mut d = Decoder::new(usize::MAX);
        assert_eq!(d.version(), None);
        let first = d.decode(&mut buf).unwrap().unwrap();
        assert!(matches!(first, Packet::Connect(_)));
        assert_eq!(d.version(), Some(v));
        let mut n = 1;
        while d.decode(&mut buf).unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, samples(v).len());
    }
}

#[test]
fn known_bytes_v311() {
    // CONNECT "MQTT" 4, clean session, keep alive 60, client id "a".
    let bytes = [
        0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x01, b'a',
    ];
    let mut buf = BytesMut::from(&bytes[..]);
    let p = Decoder::new(1000).decode(&mut buf).unwrap().unwrap();
    let Packet::Connect(c) = &p else {
        panic!("{p:?}")
    };
    assert_eq!(c.protocol, ProtocolVersion::V3_1_1);
    assert_eq!(c.keep_alive, 60);
    assert_eq!(c.client_id, "a");
    let mut out = BytesMut::new();
    encode(&p, ProtocolVersion::V3_1_1, &mut out).unwrap();
    assert_eq!(&out[..], &bytes[..]);
}

#[test]
fn known_bytes_v5_puback_short_forms() {
    let v = ProtocolVersion::V5;
    for (bytes, reason) in [
        (&[0x40, 0x02, 0x00, 0x01][..], 0x00),
        (&[0x40, 0x03, 0x00, 0x01, 0x10][..], 0x10),
        (&[0x40, 0x04, 0x00, 0x01, 0x10, 0x00][..], 0x10),
    ] {
        let mut buf = BytesMut::from(bytes);
        let p = Decoder::with_version(v, 100).decode(&mut buf).unwrap();
        assert_eq!(
            p,
            Some(Packet::PubAck(PubResponse {
                packet_id: 1,
                reason: ReasonCode(reason),
                properties: Default::default()
            }))
        );
    }
}

#[test]
fn incomplete_frames_consume_nothing() {
    let v = ProtocolVersion::V5;
    for p in samples(v) {
        let mut full = BytesMut::new();
        encode(&p, v, &mut full).unwrap();
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            let mut d = Decoder::with_version(v, usize::MAX);
            assert_eq!(d.decode(&mut part), Ok(None), "cut {cut} of {p:?}");
            assert_eq!(part.len(), cut);
        }
    }
}

#[test]
fn too_large_is_refused_before_the_body_arrives() {
    // PUBLISH header announcing 1000 bytes, no body yet.
    let mut buf = BytesMut::from(&[0x30, 0xE8, 0x07][..]);
    let mut d = Decoder::with_version(ProtocolVersion::V5, 100);
    assert_eq!(
        d.decode(&mut buf),
        Err(DecodeError::PacketTooLarge {
            size: 1003,
            max: 100
        })
    );
}

#[test]
fn auth_is_not_in_v3() {
    let mut buf = BytesMut::new();
    assert_eq!(
        encode(
            &Packet::Auth(Auth::default()),
            ProtocolVersion::V3_1_1,
            &mut buf
        ),
        Err(EncodeError::NotInVersion("AUTH"))
    );
    let mut buf = BytesMut::from(&[0xF0, 0x00][..]);
    assert_eq!(
        Decoder::with_version(ProtocolVersion::V3_1_1, 10).decode(&mut buf),
        Err(DecodeError::InvalidPacketType(15))
    );
}

#[test]
fn publish_payload_is_not_copied() {
    let v = ProtocolVersion::V3_1_1;
    let payload = Bytes::from(vec![7u8; 4096]);
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "t".into(),
        packet_id: 1,
        properties: Default::default(),
        payload,
    });
    let mut buf = BytesMut::new();
    encode(&p, v, &mut buf).unwrap();
    let body_start = buf.as_ptr() as usize + 3 + 3 + 2;
    let Some(Packet::Publish(got)) = Decoder::with_version(v, usize::MAX)
        .decode(&mut buf)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(got.payload.as_ptr() as usize, body_start);
}

#[test]
fn a_v311_refusal_in_a_v5_connection_is_typed_not_malformed() {
    let mut d = Decoder::new(1000);
    d.set_version(ProtocolVersion::V5);
    let mut buf = BytesMut::from(&[0x20, 0x02, 0x00, 0x01][..]);
    assert!(matches!(
        d.decode(&mut buf),
        Err(DecodeError::V311ConnAckRefusal(1))
    ));
    // With a property length byte it is an MQTT 5 CONNACK with an invalid code.
    let mut d = Decoder::new(1000);
    d.set_version(ProtocolVersion::V5);
    let mut buf = BytesMut::from(&[0x20, 0x03, 0x00, 0x01, 0x00][..]);
    assert!(matches!(
        d.decode(&mut buf),
        Err(DecodeError::InvalidReasonCode { code: 1, .. })
    ));
}

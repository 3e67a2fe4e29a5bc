//! Unit tests of the client state machine, driven with synthetic instants.
#![allow(clippy::unwrap_used)]
use super::*;
use crate::codec::{Properties, Subscription, SubscriptionOptions, TopicName};
use crate::protocol::ack::response;
use bytes::Bytes;

fn pubrel(packet_id: u16) -> Packet {
    Packet::PubRel(response(packet_id, ReasonCode::SUCCESS))
}

fn t0() -> Instant {
    Instant::now()
}

fn publish(topic: &str, qos: QoS) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: 0,
        properties: Default::default(),
        payload: Bytes::from_static(b"x"),
    }
}

fn drain(s: &mut ClientState, now: Instant) -> Vec<Packet> {
    let mut out = Vec::new();
    while let Some(p) = s.poll_transmit() {
        s.on_sent(now, &p);
        out.push(p);
    }
    out
}

fn events(s: &mut ClientState) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn connected(options: ConnectOptions, props: Properties, now: Instant) -> ClientState {
    let mut s = ClientState::new(options);
    s.connect(now);
    assert!(matches!(drain(&mut s, now)[..], [Packet::Connect(_)]));
    s.handle_packet(
        now,
        Packet::ConnAck(ConnAck {
            session_present: false,
            code: ReasonCode::SUCCESS,
            properties: props.into(),
        }),
    )
    .unwrap();
    assert!(matches!(events(&mut s)[..], [Event::Connected(_)]));
    s
}

fn ack(id: u16) -> PubResponse {
    response(id, ReasonCode::SUCCESS)
}

#[test]
fn qos1_and_qos2_outgoing_flows_complete() {
    let now = t0();
    let mut s = connected(ConnectOptions::new("c"), Properties::default(), now);
    let a = s.publish(now, publish("t", QoS::AtLeastOnce)).unwrap();
    let b = s.publish(now, publish("t", QoS::ExactlyOnce)).unwrap();
    assert_ne!(a, b);
    assert!(a != 0 && b != 0);
    let sent = drain(&mut s, now);
    assert_eq!(sent.len(), 2);
    s.handle_packet(now, Packet::PubAck(ack(a))).unwrap();
    s.handle_packet(now, Packet::PubRec(ack(b))).unwrap();
    // [MQTT-4.3.3-4] PUBREL follows PUBREC.
    assert_eq!(drain(&mut s, now), vec![pubrel(b)]);
    s.handle_packet(now, Packet::PubComp(ack(b))).unwrap();
    let ev = events(&mut s);
    assert!(ev.contains(&Event::Published {
        packet_id: a,
        qos: QoS::AtLeastOnce,
        reason: ReasonCode::SUCCESS
    }));
    assert!(ev.contains(&Event::Published {
        packet_id: b,
        qos: QoS::ExactlyOnce,
        reason: ReasonCode::SUCCESS
    }));
    assert_eq!(s.in_flight(), 0);
    // An ack for nothing is a protocol violation.
    assert!(s.handle_packet(now, Packet::PubAck(ack(a))).is_err());
}

#[test]
fn receive_maximum_queues_publishes_until_acked() {
    let now = t0();
    let props = Properties {
        receive_maximum: Some(2),
        ..Default::default()
    };
    let mut s = connected(ConnectOptions::new("c"), props, now);
    let ids: Vec<u16> = (0..5)
        .map(|_| s.publish(now, publish("t", QoS::AtLeastOnce)).unwrap())
        .collect();
    // [MQTT-4.9.0-2] only Receive Maximum publishes go out.
    assert_eq!(drain(&mut s, now).len(), 2);
    assert_eq!(s.send_quota(), 0);
    // [MQTT-4.9.0-3] other packets still go out with zero quota.
    s.subscribe(
        vec![Subscription {
            filter: "f".into(),
            options: SubscriptionOptions::default(),
        }],
        Properties::default(),
    )
    .unwrap();
    assert!(matches!(drain(&mut s, now)[..], [Packet::Subscribe(_)]));
    s.handle_packet(now, Packet::PubAck(ack(ids[0]))).unwrap();
    let next = drain(&mut s, now);
    assert!(matches!(&next[..], [Packet::Publish(p)] if p.packet_id == ids[2]));
}

#[test]
fn incoming_qos2_is_delivered_once() {
    let now = t0();
    let mut s = connected(ConnectOptions::new("c"), Properties::default(), now);
    let mut p = publish("t", QoS::ExactlyOnce);
    p.packet_id = 7;
    s.handle_packet(now, Packet::Publish(p.clone())).unwrap();
    p.dup = true;
    s.handle_packet(now, Packet::Publish(p.clone())).unwrap();
    // [MQTT-4.3.3-10] two PUBRECs, one delivery.
    let sent = drain(&mut s, now);
    assert_eq!(sent, vec![Packet::PubRec(ack(7)), Packet::PubRec(ack(7))]);
    let msgs = events(&mut s)
        .into_iter()
        .filter(|e| matches!(e, Event::Message(_)))
        .count();
    assert_eq!(msgs, 1);
    s.handle_packet(now, Packet::PubRel(ack(7))).unwrap();
    assert_eq!(drain(&mut s, now), vec![Packet::PubComp(ack(7))]);
    // [MQTT-4.3.3-12] after PUBCOMP the id is a new message.
    s.handle_packet(now, Packet::Publish(p)).unwrap();
    assert_eq!(events(&mut s).len(), 1);
}

#[test]
fn keep_alive_pings_and_detects_a_missing_pingresp() {
    let now = t0();
    let mut s = connected(
        ConnectOptions::new("c").keep_alive(10),
        Properties::default(),
        now,
    );
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(10)));
    s.handle_timeout(now + Duration::from_secs(9)).unwrap();
    assert!(drain(&mut s, now).is_empty());
    let t1 = now + Duration::from_secs(10);
    s.handle_timeout(t1).unwrap();
    assert_eq!(drain(&mut s, t1), vec![Packet::PingReq]);
    s.handle_packet(t1, Packet::PingResp).unwrap();
    let t2 = t1 + Duration::from_secs(10);
    s.handle_timeout(t2).unwrap();
    assert_eq!(drain(&mut s, t2), vec![Packet::PingReq]);
    // No PINGRESP within keep alive.
    assert_eq!(
        s.handle_timeout(t2 + Duration::from_secs(10)),
        Err(StateError::KeepAliveTimeout(Duration::from_secs(10)))
    );
}

#[test]
fn server_keep_alive_overrides_ours() {
    let now = t0();
    let props = Properties {
        server_keep_alive: Some(3),
        ..Default::default()
    };
    let s = connected(ConnectOptions::new("c").keep_alive(60), props, now);
    // [MQTT-3.1.2-21]; nothing sent yet after CONNACK in this test beyond CONNECT.
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(3)));
}

#[test]
fn reconnect_resends_with_dup_and_pubrel_in_order() {
    let now = t0();
    let mut s = connected(
        ConnectOptions::new("c").clean_start(false),
        Properties::default(),
        now,
    );
    let a = s.publish(now, publish("a", QoS::AtLeastOnce)).unwrap();
    let b = s.publish(now, publish("b", QoS::ExactlyOnce)).unwrap();
    let c = s.publish(now, publish("c", QoS::ExactlyOnce)).unwrap();
    drain(&mut s, now);
    s.handle_packet(now, Packet::PubRec(ack(b))).unwrap();
    drain(&mut s, now);
    s.connection_lost();
    s.connect(now);
    let connect = drain(&mut s, now);
    assert!(matches!(&connect[..], [Packet::Connect(c)] if !c.clean_start));
    s.handle_packet(
        now,
        Packet::ConnAck(ConnAck {
            session_present: true,
            ..Default::default()
        }),
    )
    .unwrap();
    // [MQTT-4.4.0-1] original ids and order; PUBLISH with DUP, PUBREL for b.
    let resent = drain(&mut s, now);
    assert_eq!(resent.len(), 3);
    assert!(matches!(&resent[0], Packet::Publish(p) if p.packet_id == a && p.dup));
    assert_eq!(resent[1], pubrel(b));
    assert!(matches!(&resent[2], Packet::Publish(p) if p.packet_id == c && p.dup));
}

#[test]
fn no_session_on_the_broker_drops_ours() {
    let now = t0();
    let mut s = connected(ConnectOptions::new("c"), Properties::default(), now);
    let a = s.publish(now, publish("a", QoS::AtLeastOnce)).unwrap();
    drain(&mut s, now);
    s.connection_lost();
    s.connect(now);
    drain(&mut s, now);
    s.handle_packet(now, Packet::ConnAck(ConnAck::default()))
        .unwrap();
    assert!(drain(&mut s, now).is_empty());
    assert!(events(&mut s).contains(&Event::SessionLost { packet_id: a }));
    assert_eq!(s.in_flight(), 0);
}

#[test]
fn topic_aliases_outgoing_and_incoming() {
    let now = t0();
    let props = Properties {
        topic_alias_maximum: Some(1),
        ..Default::default()
    };
    let mut s = connected(ConnectOptions::new("c").topic_alias_maximum(2), props, now);
    s.controls.use_topic_aliases = true;
    for topic in ["a", "a", "b"] {
        s.publish(now, publish(topic, QoS::AtMostOnce)).unwrap();
    }
    let sent = drain(&mut s, now);
    let seen: Vec<(String, Option<u16>)> = sent
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => (p.topic.to_string(), p.properties.topic_alias),
            _ => panic!(),
        })
        .collect();
    // First use carries topic and alias, then the alias alone; the maximum is 1, so b
    // goes without one.
    assert_eq!(
        seen,
        vec![
            ("a".into(), Some(1)),
            (String::new(), Some(1)),
            ("b".into(), None)
        ]
    );
    let mut p = publish("x/y", QoS::AtMostOnce);
    p.properties.topic_alias = Some(2);
    s.handle_packet(now, Packet::Publish(p.clone())).unwrap();
    p.topic = TopicName::new();
    s.handle_packet(now, Packet::Publish(p.clone())).unwrap();
    let topics: Vec<String> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(p) => Some(p.topic.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(topics, vec!["x/y".to_string(), "x/y".to_string()]);
    // [MQTT-3.3.2-11] an alias above our maximum is an error.
    p.properties.topic_alias = Some(3);
    let err = s.handle_packet(now, Packet::Publish(p)).unwrap_err();
    assert!(
        matches!(err, StateError::Protocol { reason, .. } if reason == ReasonCode::TOPIC_ALIAS_INVALID)
    );
}

#[test]
fn broker_limits_are_enforced_unless_disabled() {
    let now = t0();
    let props = Properties {
        maximum_packet_size: Some(20),
        maximum_qos: Some(1),
        retain_available: Some(0),
        ..Default::default()
    };
    let mut s = connected(ConnectOptions::new("c"), props, now);
    let mut big = publish("t", QoS::AtMostOnce);
    big.payload = Bytes::from(vec![0u8; 100]);
    assert!(matches!(
        s.publish(now, big.clone()),
        Err(StateError::Usage(_))
    ));
    assert!(matches!(
        s.publish(now, publish("t", QoS::ExactlyOnce)),
        Err(StateError::Usage(_))
    ));
    let mut retained = publish("t", QoS::AtMostOnce);
    retained.retain = true;
    assert!(matches!(
        s.publish(now, retained),
        Err(StateError::Usage(_))
    ));
    s.controls.enforce_limits = false;
    assert!(s.publish(now, big).is_ok());
}

#[test]
fn held_acks_are_released_reversed_and_pubrel_can_be_withheld() {
    let now = t0();
    let mut s = connected(ConnectOptions::new("c"), Properties::default(), now);
    s.controls.hold_acks = true;
    for id in [1, 2] {
        let mut p = publish("t", QoS::AtLeastOnce);
        p.packet_id = id;
        s.handle_packet(now, Packet::Publish(p)).unwrap();
    }
    assert!(drain(&mut s, now).is_empty());
    assert_eq!(s.held_count(), 2);
    s.release_held(ReleaseOrder::Reversed);
    assert_eq!(
        drain(&mut s, now),
        vec![Packet::PubAck(ack(2)), Packet::PubAck(ack(1))]
    );

    s.controls.never_send_pubrel = true;
    let id = s.publish(now, publish("t", QoS::ExactlyOnce)).unwrap();
    drain(&mut s, now);
    s.handle_packet(now, Packet::PubRec(ack(id))).unwrap();
    assert!(drain(&mut s, now).is_empty());
    s.release_pubrels();
    assert_eq!(drain(&mut s, now), vec![pubrel(id)]);
}

#[test]
fn delayed_acks_go_out_when_due() {
    let now = t0();
    let mut s = connected(
        ConnectOptions::new("c").keep_alive(0),
        Properties::default(),
        now,
    );
    s.controls.ack_delay = Some(Duration::from_millis(500));
    let mut p = publish("t", QoS::AtLeastOnce);
    p.packet_id = 9;
    s.handle_packet(now, Packet::Publish(p)).unwrap();
    assert!(drain(&mut s, now).is_empty());
    let due = now + Duration::from_millis(500);
    assert_eq!(s.poll_timeout(), Some(due));
    s.handle_timeout(due - Duration::from_millis(1)).unwrap();
    assert!(drain(&mut s, now).is_empty());
    s.handle_timeout(due).unwrap();
    assert_eq!(drain(&mut s, due), vec![Packet::PubAck(ack(9))]);
}

#[test]
fn inbound_receive_maximum_violation_is_detected() {
    let now = t0();
    let mut s = connected(
        ConnectOptions::new("c").receive_maximum(1),
        Properties::default(),
        now,
    );
    s.controls.auto_ack = false;
    for id in [1, 2] {
        let mut p = publish("t", QoS::ExactlyOnce);
        p.packet_id = id;
        let r = s.handle_packet(now, Packet::Publish(p));
        if id == 2 {
            assert!(
                matches!(r, Err(StateError::Protocol { reason, .. }) if reason == ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)
            );
        } else {
            r.unwrap();
        }
    }
}

#[test]
fn refused_connack_is_an_error_with_its_code() {
    let now = t0();
    let mut s = ClientState::new(ConnectOptions::new("c"));
    s.connect(now);
    drain(&mut s, now);
    let r = s.handle_packet(
        now,
        Packet::ConnAck(ConnAck {
            code: ReasonCode::NOT_AUTHORIZED,
            ..Default::default()
        }),
    );
    assert_eq!(r, Err(StateError::Refused(ReasonCode::NOT_AUTHORIZED)));
    assert_eq!(s.phase(), Phase::Disconnected);
}

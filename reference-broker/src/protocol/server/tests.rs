//! Unit tests of the server state machine, driven with synthetic instants (no sockets, no sleeps).
#![allow(clippy::unwrap_used)]

use super::*;
use crate::codec::{encoded_len, Auth, DecodeError, PubResponse, Publish, Subscription};
use crate::protocol::Delivery;
use bytes::Bytes;

fn connect(version: ProtocolVersion, keep_alive: u16) -> Connect {
    Connect {
        protocol: version,
        clean_start: true,
        keep_alive,
        client_id: "c1".into(),
        will: Some(Will {
            topic: "will/t".into(),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Default::default(),
        }),
        username: None,
        password: None,
        properties: Default::default(),
    }
}

fn publish(qos: QoS, id: u16, topic: &str) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        properties: Default::default(),
        payload: Bytes::from_static(b"p"),
    }
}

fn connected(version: ProtocolVersion, keep_alive: u16) -> (ServerConnection, Instant) {
    let now = Instant::now();
    let mut c = ServerConnection::new(now, Arc::new(ServerLimits::default()));
    c.handle_packet(now, Packet::Connect(Box::new(connect(version, keep_alive))));
    assert!(matches!(c.poll_event(), Some(Event::Connect(_))));
    c.accept(now, Accept::default());
    assert!(matches!(c.poll_transmit(), Some(Packet::ConnAck(a)) if a.code == ReasonCode::SUCCESS));
    (c, now)
}

fn drain(c: &mut ServerConnection) -> Vec<Packet> {
    std::iter::from_fn(|| c.poll_transmit()).collect()
}

fn delivery(qos: QoS, topic: &str) -> Delivery {
    Delivery {
        message: Arc::new(Message::from_publish(
            Instant::now(),
            publish(qos, 0, topic),
            None,
        )),
        qos,
        retain: false,
        subscription_ids: vec![],
    }
}

#[test]
fn first_packet_must_be_connect() {
    let now = Instant::now();
    let mut c = ServerConnection::new(now, Arc::new(ServerLimits::default()));
    c.handle_packet(now, Packet::PingReq);
    assert!(c.is_closed());
    assert!(
        drain(&mut c).is_empty(),
        "no CONNACK for a non-CONNECT first packet"
    );
}

#[test]
fn second_connect_is_protocol_error() {
    let (mut c, now) = connected(ProtocolVersion::V5, 0);
    c.handle_packet(
        now,
        Packet::Connect(Box::new(connect(ProtocolVersion::V5, 0))),
    );
    assert!(c.is_closed());
    assert!(matches!(drain(&mut c).as_slice(),
        [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR));
    assert!(
        c.take_will().is_some(),
        "a protocol error publishes the will"
    );
}

#[test]
fn keep_alive_closes_after_one_and_a_half_periods() {
    let (mut c, now) = connected(ProtocolVersion::V5, 10);
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(15)));
    c.handle_timeout(now + Duration::from_secs(14));
    assert!(!c.is_closed());
    c.handle_packet(now + Duration::from_secs(14), Packet::PingReq);
    assert_eq!(drain(&mut c), vec![Packet::PingResp]);
    c.handle_timeout(now + Duration::from_secs(28));
    assert!(!c.is_closed(), "PINGREQ restarted the keep alive period");
    c.handle_timeout(now + Duration::from_secs(29));
    assert!(c.is_closed());
    assert!(matches!(drain(&mut c).as_slice(),
        [Packet::Disconnect(d)] if d.reason == ReasonCode::KEEP_ALIVE_TIMEOUT));
    assert_eq!(c.close_kind(), Some(CloseKind::KeepAliveTimeout));
    assert!(c.take_will().is_some());
}

#[test]
fn connect_timeout_closes_silent_connection() {
    let now = Instant::now();
    let limits = ServerLimits::default();
    let mut c = ServerConnection::new(now, Arc::new(limits.clone()));
    c.handle_timeout(now + limits.connect_timeout);
    assert!(c.is_closed());
    assert_eq!(c.close_kind(), Some(CloseKind::ConnectTimeout));
}

#[test]
fn normal_disconnect_discards_will_and_0x04_keeps_it() {
    let (mut c, now) = connected(ProtocolVersion::V3_1_1, 0);
    c.handle_packet(now, Packet::Disconnect(Disconnect::default()));
    assert!(c.is_closed());
    assert!(c.take_will().is_none());

    let (mut c, now) = connected(ProtocolVersion::V5, 0);
    c.handle_packet(
        now,
        Packet::Disconnect(Disconnect {
            reason: ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
            properties: Default::default(),
        }),
    );
    assert!(c.take_will().is_some());
}

#[test]
fn disconnect_cannot_raise_zero_session_expiry() {
    let (mut c, now) = connected(ProtocolVersion::V5, 0);
    let mut d = Disconnect::default();
    d.properties.session_expiry_interval = Some(30);
    c.handle_packet(now, Packet::Disconnect(d));
    assert!(matches!(drain(&mut c).as_slice(),
        [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR));
}

#[test]
fn qos2_duplicate_is_not_delivered_twice() {
    let (mut c, now) = connected(ProtocolVersion::V3_1_1, 0);
    c.handle_packet(now, Packet::Publish(publish(QoS::ExactlyOnce, 7, "a")));
    let Some(Event::Publish(p)) = c.poll_event() else {
        panic!("expected a publish event")
    };
    c.publish_done(p.packet_id, p.qos, ReasonCode::SUCCESS);
    assert!(matches!(drain(&mut c).as_slice(), [Packet::PubRec(r)] if r.packet_id == 7));
    let mut dup = publish(QoS::ExactlyOnce, 7, "a");
    dup.dup = true;
    c.handle_packet(now, Packet::Publish(dup));
    assert!(c.poll_event().is_none(), "no second delivery before PUBREL");
    assert!(matches!(drain(&mut c).as_slice(), [Packet::PubRec(r)] if r.packet_id == 7));
    c.handle_packet(
        now,
        Packet::PubRel(PubResponse {
            packet_id: 7,
            ..Default::default()
        }),
    );
    assert!(matches!(drain(&mut c).as_slice(), [Packet::PubComp(r)] if r.packet_id == 7));
    c.handle_packet(now, Packet::Publish(publish(QoS::ExactlyOnce, 7, "a")));
    assert!(
        matches!(c.poll_event(), Some(Event::Publish(_))),
        "new message after PUBCOMP"
    );
}

#[test]
fn outbound_respects_client_receive_maximum_and_redelivers_with_dup() {
    let now = Instant::now();
    let mut c = ServerConnection::new(now, Arc::new(ServerLimits::default()));
    let mut conn = connect(ProtocolVersion::V5, 0);
    conn.properties.receive_maximum = Some(2);
    c.handle_packet(now, Packet::Connect(Box::new(conn)));
    c.poll_event();
    c.accept(now, Accept::default());
    drain(&mut c);
    for _ in 0..3 {
        c.deliver(now, delivery(QoS::AtLeastOnce, "t"));
    }
    let sent = drain(&mut c);
    assert_eq!(sent.len(), 2, "third message waits for a PUBACK");
    let Packet::Publish(first) = &sent[0] else {
        panic!()
    };
    c.handle_packet(
        now,
        Packet::PubAck(PubResponse {
            packet_id: first.packet_id,
            ..Default::default()
        }),
    );
    assert_eq!(drain(&mut c).len(), 1);
    // Connection lost: the session carries two unacknowledged messages to the next connection.
    c.close_silently(CloseKind::NetworkLost);
    let session = c.take_session();
    assert_eq!(session.inflight_len(), 2);
    let mut c2 = ServerConnection::new(now, Arc::new(ServerLimits::default()));
    c2.handle_packet(
        now,
        Packet::Connect(Box::new(connect(ProtocolVersion::V5, 0))),
    );
    c2.poll_event();
    c2.accept(
        now,
        Accept {
            session,
            session_present: true,
            ..Default::default()
        },
    );
    let sent = drain(&mut c2);
    assert!(matches!(&sent[0], Packet::ConnAck(a) if a.session_present));
    assert_eq!(sent.len(), 3);
    for p in &sent[1..] {
        assert!(matches!(p, Packet::Publish(p) if p.dup && p.qos == QoS::AtLeastOnce));
    }
}

#[test]
fn inbound_topic_alias_is_resolved_and_checked() {
    let (mut c, now) = connected(ProtocolVersion::V5, 0);
    let mut p = publish(QoS::AtMostOnce, 0, "long/topic");
    p.properties.topic_alias = Some(1);
    c.handle_packet(now, Packet::Publish(p));
    let mut p = publish(QoS::AtMostOnce, 0, "");
    p.properties.topic_alias = Some(1);
    c.handle_packet(now, Packet::Publish(p));
    for _ in 0..2 {
        let Some(Event::Publish(ev)) = c.poll_event() else {
            panic!()
        };
        assert_eq!(ev.message.topic, "long/topic");
        assert_eq!(ev.message.properties.topic_alias, None);
    }
    let mut p = publish(QoS::AtMostOnce, 0, "x");
    p.properties.topic_alias = Some(ServerLimits::default().topic_alias_maximum + 1);
    c.handle_packet(now, Packet::Publish(p));
    assert!(matches!(drain(&mut c).as_slice(),
        [Packet::Disconnect(d)] if d.reason == ReasonCode::TOPIC_ALIAS_INVALID));
}

#[test]
fn outbound_message_expiry_forwards_remaining_interval() {
    let (mut c, now) = connected(ProtocolVersion::V5, 0);
    let mut p = publish(QoS::AtMostOnce, 0, "t");
    p.properties.message_expiry_interval = Some(10);
    let msg = Arc::new(Message::from_publish(now, p, None));
    let d = Delivery {
        message: msg.clone(),
        qos: QoS::AtMostOnce,
        retain: false,
        subscription_ids: vec![3],
    };
    c.deliver(now + Duration::from_secs(4), d.clone());
    let sent = drain(&mut c);
    assert!(matches!(&sent[..], [Packet::Publish(p)]
        if p.properties.message_expiry_interval == Some(6)
        && p.properties.subscription_identifiers == vec![3]));
    c.deliver(now + Duration::from_secs(10), d);
    assert!(drain(&mut c).is_empty(), "expired message is dropped");
}

#[test]
fn subscribe_is_an_event_and_pingreq_answered() {
    let (mut c, now) = connected(ProtocolVersion::V3_1_1, 0);
    c.handle_packet(
        now,
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Default::default(),
            subscriptions: vec![Subscription {
                filter: "a/#".into(),
                options: Default::default(),
            }],
        }),
    );
    assert!(matches!(c.poll_event(), Some(Event::Subscribe(_))));
    c.handle_packet(now, Packet::PingReq);
    assert_eq!(drain(&mut c), vec![Packet::PingResp]);
}

#[test]
fn rejection_carries_a_reason_string_in_v5_only() {
    let now = Instant::now();
    let mut c = ServerConnection::new(now, Arc::new(ServerLimits::default()));
    c.handle_packet(
        now,
        Packet::Connect(Box::new(connect(ProtocolVersion::V5, 0))),
    );
    c.poll_event();
    c.reject(ReasonCode::NOT_AUTHORIZED);
    assert!(matches!(drain(&mut c).as_slice(), [Packet::ConnAck(a)]
        if a.code == ReasonCode::NOT_AUTHORIZED
        && a.properties.reason_string.as_deref() == Some("Not authorized")));
    assert!(c.is_closed());

    let mut c = ServerConnection::new(now, Arc::new(ServerLimits::default()));
    c.handle_packet(
        now,
        Packet::Connect(Box::new(connect(ProtocolVersion::V3_1_1, 0))),
    );
    c.poll_event();
    c.reject(ReasonCode::NOT_AUTHORIZED);
    assert!(matches!(drain(&mut c).as_slice(), [Packet::ConnAck(a)]
        if a.code == crate::codec::reason::v3::NOT_AUTHORIZED && a.properties.is_empty()));
}

#[test]
fn connack_fits_the_client_maximum_packet_size() {
    let now = Instant::now();
    let mut c = ServerConnection::new(now, Arc::new(ServerLimits::default()));
    let mut conn = connect(ProtocolVersion::V5, 60);
    conn.properties.maximum_packet_size = Some(20);
    c.handle_packet(now, Packet::Connect(Box::new(conn)));
    assert!(matches!(c.poll_event(), Some(Event::Connect(_))));
    c.accept(now, Accept::default());
    let Some(Packet::ConnAck(ack)) = c.poll_transmit() else {
        panic!("no CONNACK");
    };
    let len = encoded_len(&Packet::ConnAck(ack.clone()), ProtocolVersion::V5);
    // [MQTT-3.1.2-24]
    assert!(len <= 20, "CONNACK of {len} bytes exceeds 20");
    assert_eq!(ack.code, ReasonCode::SUCCESS);
    // What changes the client's behaviour stays: the limits it must respect.
    assert!(ack.properties.receive_maximum.is_some());
    assert!(ack.properties.maximum_packet_size.is_some());
    // What is left out means the same when absent (an availability flag of 1).
    assert_eq!(ack.properties.retain_available, None);

    // Without a limit, the full CONNACK is sent.
    let mut c = ServerConnection::new(now, Arc::new(ServerLimits::default()));
    c.handle_packet(
        now,
        Packet::Connect(Box::new(connect(ProtocolVersion::V5, 60))),
    );
    assert!(matches!(c.poll_event(), Some(Event::Connect(_))));
    c.accept(now, Accept::default());
    let Some(Packet::ConnAck(ack)) = c.poll_transmit() else {
        panic!("no CONNACK");
    };
    assert_eq!(ack.properties.retain_available, Some(1));
    assert!(ack.properties.topic_alias_maximum.is_some());
}

#[test]
fn queue_room_counts_what_waits_for_the_receive_maximum() {
    let now = Instant::now();
    let limits = ServerLimits {
        max_queued_online: 3,
        ..ServerLimits::default()
    };
    let mut c = ServerConnection::new(now, Arc::new(limits));
    let mut conn = connect(ProtocolVersion::V5, 0);
    conn.properties.receive_maximum = Some(1);
    c.handle_packet(now, Packet::Connect(Box::new(conn)));
    c.poll_event();
    c.accept(now, Accept::default());
    drain(&mut c);
    assert_eq!(c.queue_room(), 3);
    // The first goes out (in flight), the next two wait: one slot left.
    for _ in 0..3 {
        c.deliver(now, delivery(QoS::AtLeastOnce, "t"));
    }
    assert_eq!(c.queue_room(), 1);
    c.deliver(now, delivery(QoS::AtLeastOnce, "t"));
    assert_eq!(c.queue_room(), 0);
    assert_eq!(c.dropped(), 0, "within the room nothing is dropped");
}

#[test]
fn held_keep_alive_moves_the_deadline() {
    let (mut c, now) = connected(ProtocolVersion::V5, 10);
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(15)));
    let later = now + Duration::from_secs(14);
    c.hold_keep_alive(later);
    c.handle_timeout(now + Duration::from_secs(20));
    assert!(!c.is_closed());
    assert_eq!(c.poll_timeout(), Some(later + Duration::from_secs(15)));
}

#[test]
fn a_will_the_server_cannot_honour_is_refused_before_the_broker_sees_it() {
    let now = Instant::now();
    let limits = ServerLimits {
        maximum_qos: QoS::AtLeastOnce,
        retain_available: false,
        ..Default::default()
    };
    let limits = Arc::new(limits);
    for (qos, retain, code) in [
        (QoS::ExactlyOnce, false, ReasonCode::QOS_NOT_SUPPORTED),
        (QoS::AtMostOnce, true, ReasonCode::RETAIN_NOT_SUPPORTED),
    ] {
        let mut c = ServerConnection::new(now, Arc::clone(&limits));
        let mut packet = connect(ProtocolVersion::V5, 0);
        if let Some(w) = packet.will.as_mut() {
            w.qos = qos;
            w.retain = retain;
        }
        c.handle_packet(now, Packet::Connect(Box::new(packet)));
        // [MQTT-3.2.2-12] / [MQTT-3.2.2-13]
        assert_eq!(c.poll_event(), None);
        assert!(matches!(&drain(&mut c)[..], [Packet::ConnAck(a)] if a.code == code));
        assert!(c.is_closed());
    }
}

#[test]
fn decode_errors_cost_a_connack_before_connect_and_a_disconnect_after() {
    let now = Instant::now();
    let mut c = ServerConnection::new(now, Arc::new(ServerLimits::default()));
    c.decode_error(&DecodeError::UnsupportedProtocolVersion(9));
    let sent = drain(&mut c);
    // [MQTT-3.1.2-2] CONNACK 0x01 in the 3.1.1 format.
    assert!(matches!(&sent[..], [Packet::ConnAck(a)] if a.code.0 == 0x01));
    assert_eq!(c.version(), ProtocolVersion::V3_1_1);
    let mut c = ServerConnection::new(now, Arc::new(ServerLimits::default()));
    c.decode_error(&DecodeError::InvalidUtf8);
    assert!(c.is_closed() && drain(&mut c).is_empty());
    let (mut c, _) = connected(ProtocolVersion::V5, 0);
    let error = DecodeError::InvalidUtf8;
    c.decode_error(&error);
    // [MQTT-4.13.1-1] DISCONNECT with the error's reason code, then close.
    let sent = drain(&mut c);
    assert!(matches!(&sent[..], [Packet::Disconnect(d)] if d.reason == error.reason_code()));
    assert_eq!(c.close_kind(), Some(CloseKind::ProtocolError));
}

fn auth(reason: ReasonCode, method: &str, data: &'static [u8]) -> Packet {
    let mut a = Auth {
        reason,
        properties: Default::default(),
    };
    a.properties.authentication_method = Some(method.into());
    a.properties.authentication_data = Some(Bytes::from_static(data));
    Packet::Auth(a)
}

fn authenticating(now: Instant) -> ServerConnection {
    let mut c = ServerConnection::new(now, Arc::new(ServerLimits::default()));
    let mut packet = connect(ProtocolVersion::V5, 0);
    packet.properties.authentication_method = Some("m".into());
    c.handle_packet(now, Packet::Connect(Box::new(packet)));
    assert!(matches!(c.poll_event(), Some(Event::Connect(_))));
    c.auth_challenge(Bytes::from_static(b"nonce"));
    let sent = drain(&mut c);
    // [MQTT-4.12.0-2] AUTH 0x18; [MQTT-4.12.0-5] with the method of CONNECT.
    assert!(matches!(&sent[..], [Packet::Auth(a)]
        if a.reason == ReasonCode::CONTINUE_AUTHENTICATION
            && a.properties.authentication_method.as_deref() == Some("m")));
    c
}

#[test]
fn enhanced_authentication_runs_in_the_state_machine() {
    let now = Instant::now();
    let mut c = authenticating(now);
    c.handle_packet(
        now,
        auth(ReasonCode::CONTINUE_AUTHENTICATION, "m", b"answer"),
    );
    let Some(Event::AuthResponse { challenge, data }) = c.poll_event() else {
        panic!("no AuthResponse");
    };
    assert_eq!(
        (&challenge[..], data.as_deref()),
        (&b"nonce"[..], Some(&b"answer"[..]))
    );
    let pending = c.auth_verdict(true).unwrap();
    assert_eq!(pending.client_id, "c1");
    c.accept(now, Accept::default());
    let sent = drain(&mut c);
    // [MQTT-4.12.0-5] the successful CONNACK names the method.
    assert!(matches!(&sent[..], [Packet::ConnAck(a)]
        if a.code == ReasonCode::SUCCESS
            && a.properties.authentication_method.as_deref() == Some("m")));
    // [MQTT-4.12.1-1] re-authentication: a new challenge, then AUTH 0x00.
    c.handle_packet(now, auth(ReasonCode::RE_AUTHENTICATE, "m", b""));
    assert_eq!(c.poll_event(), Some(Event::ReAuthenticate));
    c.auth_challenge(Bytes::from_static(b"again"));
    drain(&mut c);
    c.handle_packet(now, auth(ReasonCode::CONTINUE_AUTHENTICATION, "m", b"x"));
    assert!(matches!(c.poll_event(), Some(Event::AuthResponse { .. })));
    assert!(c.auth_verdict(true).is_none());
    assert!(matches!(&drain(&mut c)[..], [Packet::Auth(a)] if a.reason == ReasonCode::SUCCESS));
    // [MQTT-4.12.1-2] a failed re-authentication closes the connection.
    c.handle_packet(now, auth(ReasonCode::RE_AUTHENTICATE, "m", b""));
    c.poll_event();
    c.auth_challenge(Bytes::from_static(b"third"));
    drain(&mut c);
    c.handle_packet(
        now,
        auth(ReasonCode::CONTINUE_AUTHENTICATION, "m", b"wrong"),
    );
    c.poll_event();
    c.auth_verdict(false);
    let sent = drain(&mut c);
    assert!(matches!(&sent[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::NOT_AUTHORIZED));
    assert!(c.is_closed());
}

#[test]
fn auth_breaking_the_rules_is_refused() {
    let now = Instant::now();
    // [MQTT-4.12.0-5] another method: Protocol Error.
    let mut c = authenticating(now);
    c.handle_packet(
        now,
        auth(ReasonCode::CONTINUE_AUTHENTICATION, "other", b"x"),
    );
    let sent = drain(&mut c);
    assert!(matches!(&sent[..], [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR));
    // [MQTT-4.12.0-3] an answer that is not 0x18 fails the authentication: CONNACK 0x87.
    let mut c = authenticating(now);
    c.handle_packet(now, auth(ReasonCode::RE_AUTHENTICATE, "m", b"x"));
    assert_eq!(c.poll_event(), None);
    let sent = drain(&mut c);
    assert!(matches!(&sent[..], [Packet::ConnAck(a)] if a.code == ReasonCode::NOT_AUTHORIZED));
    // [MQTT-4.12.0-7] AUTH without an Authentication Method in CONNECT: Protocol Error.
    let (mut c, _) = connected(ProtocolVersion::V5, 0);
    c.handle_packet(now, auth(ReasonCode::RE_AUTHENTICATE, "m", b""));
    assert!(c.is_closed());
}

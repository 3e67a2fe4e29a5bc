//! MQTT 5 features over real sockets: properties forwarded, message expiry, topic aliases,
//! subscription identifiers, shared subscriptions, No Local, retain handling, flow control,
//! maximum packet size, session expiry, will delay, reason codes on errors.
#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use reference_broker::codec::raw::Builder;
use reference_broker::codec::*;
use support::*;

fn sub_with(filter: &str, qos: QoS, f: impl FnOnce(&mut SubscriptionOptions)) -> Subscription {
    let mut options = SubscriptionOptions {
        qos,
        ..Default::default()
    };
    f(&mut options);
    Subscription {
        filter: filter.into(),
        options,
    }
}

async fn subscribe_many(c: &mut Client, id: Option<u32>, subs: Vec<Subscription>) -> SubAck {
    let mut properties = Properties::default();
    properties.subscription_identifiers.extend(id);
    c.send(Packet::Subscribe(Subscribe {
        packet_id: 3,
        properties: properties.into(),
        subscriptions: subs,
    }))
    .await;
    match c.recv().await {
        Packet::SubAck(s) => s,
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

#[tokio::test]
async fn properties_forwarded_unchanged() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut s, _) = Client::connect(addr, V5, "s", true).await;
    s.subscribe("req", QoS::AtMostOnce).await;
    let (mut p, _) = Client::connect(addr, V5, "p", true).await;
    let mut m = publish_packet("req", b"{}", QoS::AtMostOnce, 0);
    let props = &mut m.properties;
    props.payload_format_indicator = Some(1);
    props.content_type = Some("application/json".into());
    props.response_topic = Some("resp/1".into());
    props.correlation_data = Some(Bytes::from_static(b"corr"));
    props.user_properties = vec![
        ("b".into(), "2".into()),
        ("a".into(), "1".into()),
        ("b".into(), "3".into()),
    ];
    p.publish(m.clone()).await;
    let got = s.recv_publish().await;
    // [MQTT-3.3.2-4], [MQTT-3.3.2-15], [MQTT-3.3.2-16], [MQTT-3.3.2-17], [MQTT-3.3.2-18],
    // [MQTT-3.3.2-20]: forwarded unaltered, user properties in order.
    assert_eq!(got.properties, m.properties);
    broker.shutdown().await;
}

#[tokio::test]
async fn message_expiry_remaining_interval_forwarded() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut p, _) = Client::connect(addr, V5, "p", true).await;
    let mut m = publish_packet("exp/keep", b"x", QoS::AtLeastOnce, 1);
    m.retain = true;
    m.properties.message_expiry_interval = Some(100);
    p.publish(m).await;
    let (mut s, _) = Client::connect(addr, V5, "s", true).await;
    s.subscribe("exp/#", QoS::AtLeastOnce).await;
    let got = s.recv_publish().await;
    assert_eq!(got.topic, "exp/keep");
    // [MQTT-3.3.2-6] the remaining interval is forwarded.
    let left = got.properties.message_expiry_interval.unwrap();
    assert!((99..=100).contains(&left), "{left}");
    s.ack(&got).await;
    // Expiry itself is proven in virtual time: broker_time::queued_message_expiry_*.
    broker.shutdown().await;
}

#[tokio::test]
async fn topic_alias_inbound_and_outbound() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let mut c = connect_packet(V5, "s", true);
    c.properties.topic_alias_maximum = Some(4);
    let (mut s, _) = Client::connect_with(addr, c).await;
    s.subscribe("alias/#", QoS::AtMostOnce).await;
    let (mut p, ack) = Client::connect(addr, V5, "p", true).await;
    assert!(ack.properties.topic_alias_maximum.unwrap() >= 1);
    let mut m = publish_packet("alias/long/topic", b"1", QoS::AtMostOnce, 0);
    m.properties.topic_alias = Some(1);
    p.publish(m).await;
    let mut m = publish_packet("", b"2", QoS::AtMostOnce, 0);
    m.properties.topic_alias = Some(1);
    p.publish(m).await;
    // Outbound: first with topic and alias, then alias only ([MQTT-3.1.2-26] within maximum 4).
    let first = s.recv_publish().await;
    assert_eq!(first.topic, "alias/long/topic");
    let alias = first.properties.topic_alias.unwrap();
    assert!((1..=4).contains(&alias));
    let second = s.recv_publish().await;
    assert_eq!(second.topic, "");
    assert_eq!(second.properties.topic_alias, Some(alias));
    assert_eq!(&second.payload[..], b"2");
    // Alias 0 is a Protocol Error: DISCONNECT 0x94 ([MQTT-3.3.2-8]).
    let mut m = publish_packet("alias/x", b"3", QoS::AtMostOnce, 0);
    m.properties.topic_alias = Some(0);
    p.send(Packet::Publish(m)).await;
    let got = p.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::TOPIC_ALIAS_INVALID),
        "{got:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn unknown_topic_alias_is_protocol_error() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut p, _) = Client::connect(addr, V5, "p", true).await;
    let mut m = publish_packet("", b"3", QoS::AtMostOnce, 0);
    m.properties.topic_alias = Some(2);
    p.send(Packet::Publish(m)).await;
    let got = p.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR),
        "{got:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn subscription_identifiers_of_all_matching_subscriptions() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut s, _) = Client::connect(addr, V5, "s", true).await;
    subscribe_many(
        &mut s,
        Some(7),
        vec![sub_with("id/#", QoS::AtMostOnce, |_| {})],
    )
    .await;
    subscribe_many(
        &mut s,
        Some(9),
        vec![sub_with("id/+", QoS::AtMostOnce, |_| {})],
    )
    .await;
    subscribe_many(&mut s, None, vec![sub_with("+/x", QoS::AtMostOnce, |_| {})]).await;
    let (mut p, _) = Client::connect(addr, V5, "p", true).await;
    p.publish(publish_packet("id/x", b"1", QoS::AtMostOnce, 0))
        .await;
    let got = s.recv_publish().await;
    let mut ids = got.properties.subscription_identifiers.clone();
    ids.sort();
    // [MQTT-3.3.4-3] / [MQTT-3.3.4-4] one copy carrying every identifier.
    assert_eq!(ids, vec![7, 9]);
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn shared_subscription_one_member_each_and_redistribution() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut a, _) = Client::connect(addr, V5, "a", true).await;
    let (mut b, _) = Client::connect(addr, V5, "b", true).await;
    a.subscribe("$share/g/work/+", QoS::AtLeastOnce).await;
    b.subscribe("$share/g/work/+", QoS::AtLeastOnce).await;
    let (mut p, ack) = Client::connect(addr, V5, "p", true).await;
    assert_eq!(ack.properties.shared_subscription_available, Some(1));
    for i in 0..4u16 {
        p.publish(publish_packet("work/x", b"job", QoS::AtLeastOnce, i + 1))
            .await;
    }
    let mut count_a = 0;
    while let Some(Packet::Publish(m)) = a.recv_within(QUIET).await {
        a.ack(&m).await;
        count_a += 1;
    }
    let mut count_b = 0;
    while let Some(Packet::Publish(m)) = b.recv_within(QUIET).await {
        b.ack(&m).await;
        count_b += 1;
    }
    // Each message to exactly one member, shared round robin.
    assert_eq!((count_a, count_b), (2, 2));
    // When a member leaves, the others get everything.
    b.disconnect().await;
    for i in 0..2u16 {
        p.publish(publish_packet("work/y", b"job", QoS::AtLeastOnce, 10 + i))
            .await;
    }
    for _ in 0..2 {
        let m = a.recv_publish().await;
        a.ack(&m).await;
    }
    a.expect_nothing().await;
    // No Local on a shared subscription is a Protocol Error ([MQTT-3.8.3-4]).
    let mut c = a;
    c.send(Packet::Subscribe(Subscribe {
        packet_id: 4,
        properties: Default::default(),
        subscriptions: vec![sub_with("$share/g/z", QoS::AtMostOnce, |o| {
            o.no_local = true
        })],
    }))
    .await;
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR),
        "{got:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn no_local_and_retain_as_published() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut c, _) = Client::connect(addr, V5, "c", true).await;
    subscribe_many(
        &mut c,
        None,
        vec![
            sub_with("nl", QoS::AtMostOnce, |o| o.no_local = true),
            sub_with("rap", QoS::AtMostOnce, |o| o.retain_as_published = true),
        ],
    )
    .await;
    c.publish(publish_packet("nl", b"mine", QoS::AtMostOnce, 0))
        .await;
    // [MQTT-3.8.3-3] not sent back to the publisher.
    c.expect_nothing().await;
    let (mut other, _) = Client::connect(addr, V5, "o", true).await;
    other
        .publish(publish_packet("nl", b"theirs", QoS::AtMostOnce, 0))
        .await;
    assert_eq!(&c.recv_publish().await.payload[..], b"theirs");
    let mut m = publish_packet("rap", b"r", QoS::AtMostOnce, 0);
    m.retain = true;
    other.publish(m).await;
    // [MQTT-3.3.1-13] RETAIN kept as published.
    assert!(c.recv_publish().await.retain);
    broker.shutdown().await;
}

#[tokio::test]
async fn retain_handling_options() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut p, _) = Client::connect(addr, V5, "p", true).await;
    let mut m = publish_packet("rh", b"kept", QoS::AtMostOnce, 0);
    m.retain = true;
    p.publish(m).await;
    let (mut c, _) = Client::connect(addr, V5, "c", true).await;
    // 2: never ([MQTT-3.3.1-11]).
    subscribe_many(
        &mut c,
        None,
        vec![sub_with("rh", QoS::AtMostOnce, |o| {
            o.retain_handling = RetainHandling::DoNotSend
        })],
    )
    .await;
    c.expect_nothing().await;
    // 1: only for a new subscription ([MQTT-3.3.1-10]); this one exists already.
    subscribe_many(
        &mut c,
        None,
        vec![sub_with("rh", QoS::AtMostOnce, |o| {
            o.retain_handling = RetainHandling::SendIfNew
        })],
    )
    .await;
    c.expect_nothing().await;
    subscribe_many(
        &mut c,
        None,
        vec![sub_with("rh/#", QoS::AtMostOnce, |o| {
            o.retain_handling = RetainHandling::SendIfNew
        })],
    )
    .await;
    assert!(c.recv_publish().await.retain);
    // 0: always ([MQTT-3.3.1-9]), even for an existing subscription.
    subscribe_many(&mut c, None, vec![sub_with("rh", QoS::AtMostOnce, |_| {})]).await;
    assert!(c.recv_publish().await.retain);
    broker.shutdown().await;
}

#[tokio::test]
async fn client_receive_maximum_limits_inflight() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let mut conn = connect_packet(V5, "slow", true);
    conn.properties.receive_maximum = Some(1);
    let (mut s, _) = Client::connect_with(addr, conn).await;
    s.subscribe("rm", QoS::AtLeastOnce).await;
    let (mut p, _) = Client::connect(addr, V5, "p", true).await;
    for i in 0..3u16 {
        p.publish(publish_packet("rm", b"m", QoS::AtLeastOnce, i + 1))
            .await;
    }
    // [MQTT-3.3.4-9] one unacknowledged PUBLISH at a time.
    let first = s.recv_publish().await;
    s.expect_nothing().await;
    s.ack(&first).await;
    let second = s.recv_publish().await;
    s.expect_nothing().await;
    s.ack(&second).await;
    let third = s.recv_publish().await;
    s.ack(&third).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn server_receive_maximum_enforced() {
    let broker = start_with(|c| c.limits.receive_maximum = 2).await;
    let addr = broker.tcp_addr().unwrap();
    let (mut p, ack) = Client::connect(addr, V5, "p", true).await;
    assert_eq!(ack.properties.receive_maximum, Some(2));
    for id in 1..=3u16 {
        p.send(Packet::Publish(publish_packet(
            "x",
            b"m",
            QoS::ExactlyOnce,
            id,
        )))
        .await;
    }
    let got = p.expect_closed().await;
    assert!(
        matches!(got.last(), Some(Packet::Disconnect(d)) if d.reason == ReasonCode::RECEIVE_MAXIMUM_EXCEEDED),
        "{got:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn maximum_packet_size_both_directions() {
    let broker = start_with(|c| c.limits.max_packet_size = 200).await;
    let addr = broker.tcp_addr().unwrap();
    let mut conn = connect_packet(V5, "small", true);
    conn.properties.maximum_packet_size = Some(60);
    let (mut s, _) = Client::connect_with(addr, conn).await;
    s.subscribe("mps", QoS::AtMostOnce).await;
    let (mut p, ack) = Client::connect(addr, V5, "p", true).await;
    assert_eq!(ack.properties.maximum_packet_size, Some(200));
    static BIG: [u8; 100] = [b'x'; 100];
    p.publish(publish_packet("mps", &BIG, QoS::AtMostOnce, 0))
        .await;
    p.publish(publish_packet("mps", b"small", QoS::AtMostOnce, 0))
        .await;
    // [MQTT-3.1.2-24] / [MQTT-3.1.2-25] the big one is discarded for this client.
    assert_eq!(&s.recv_publish().await.payload[..], b"small");
    static HUGE: [u8; 300] = [b'y'; 300];
    p.send(Packet::Publish(publish_packet(
        "mps",
        &HUGE,
        QoS::AtMostOnce,
        0,
    )))
    .await;
    let got = p.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::PACKET_TOO_LARGE),
        "{got:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn server_keep_alive_and_maximum_qos_reported() {
    let broker = start_with(|c| {
        c.limits.server_keep_alive = Some(30);
        c.limits.maximum_qos = 1;
    })
    .await;
    let addr = broker.tcp_addr().unwrap();
    let (mut c, ack) = Client::connect(addr, V5, "c", true).await;
    // [MQTT-3.1.2-21] the client must use the Server Keep Alive.
    assert_eq!(ack.properties.server_keep_alive, Some(30));
    assert_eq!(ack.properties.maximum_qos, Some(1));
    let s = c.subscribe("q", QoS::ExactlyOnce).await;
    assert_eq!(s.reason_codes, vec![ReasonCode::GRANTED_QOS_1]);
    c.send(Packet::Publish(publish_packet(
        "q",
        b"m",
        QoS::ExactlyOnce,
        1,
    )))
    .await;
    let got = c.expect_closed().await;
    assert!(
        matches!(got.last(), Some(Packet::Disconnect(d)) if d.reason == ReasonCode::QOS_NOT_SUPPORTED),
        "{got:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn session_expiry_zero_and_nonzero() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (c, _) = Client::connect(addr, V5, "e0", false).await;
    c.disconnect().await;
    let (c, ack) = Client::connect(addr, V5, "e0", false).await;
    assert!(
        !ack.session_present,
        "session expiry 0 ends the session with the connection"
    );
    c.disconnect().await;
    let mut conn = connect_packet(V5, "e60", false);
    conn.properties.session_expiry_interval = Some(60);
    let (mut c, _) = Client::connect_with(addr, conn.clone()).await;
    c.subscribe("se", QoS::AtLeastOnce).await;
    c.disconnect().await;
    let (mut p, _) = Client::connect(addr, V5, "p", true).await;
    p.publish(publish_packet("se", b"queued", QoS::AtLeastOnce, 1))
        .await;
    // [MQTT-3.1.2-23] / [MQTT-3.1.2-5] kept and resumed.
    let (mut c, ack) = Client::connect_with(addr, conn).await;
    assert!(ack.session_present);
    assert_eq!(&c.recv_publish().await.payload[..], b"queued");
    broker.shutdown().await;
}

fn will_connect(id: &str, delay: u32, expiry: u32) -> Connect {
    let mut c = connect_packet(V5, id, false);
    c.properties.session_expiry_interval = Some(expiry);
    let properties = Properties {
        will_delay_interval: Some(delay),
        user_properties: vec![("k".into(), "v".into())],
        ..Default::default()
    };
    c.will = Some(Will {
        topic: format!("will/{id}"),
        payload: Bytes::from_static(b"w"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: properties.into(),
    });
    c
}

#[tokio::test]
async fn will_delay_cancelled_by_reconnect_and_published_otherwise() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut w, _) = Client::connect(addr, V5, "watch", true).await;
    w.subscribe("will/#", QoS::AtMostOnce).await;
    let (c, _) = Client::connect_with(addr, will_connect("back", 1, 60)).await;
    drop(c);
    // [MQTT-3.1.3-9] reconnecting before the delay cancels the will.
    let (c2, ack) = Client::connect_with(addr, will_connect("back", 1, 60)).await;
    assert!(ack.session_present);
    let (c3, _) = Client::connect_with(addr, will_connect("gone", 2, 60)).await;
    drop(c3);
    let got = w.recv_publish().await;
    assert_eq!(got.topic, "will/gone");
    assert_eq!(
        got.properties.user_properties,
        vec![("k".into(), "v".into())]
    );
    assert_eq!(got.properties.will_delay_interval, None);
    // "back" published nothing, although its 1 s delay passed before the 2 s of "gone".
    w.expect_nothing().await;
    c2.disconnect().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn disconnect_with_will_message_publishes_will() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut w, _) = Client::connect(addr, V5, "watch", true).await;
    w.subscribe("will/#", QoS::AtMostOnce).await;
    let (mut c, _) = Client::connect_with(addr, will_connect("x04", 0, 0)).await;
    c.send(Packet::Disconnect(Disconnect {
        reason: ReasonCode::DISCONNECT_WITH_WILL_MESSAGE,
        properties: Default::default(),
    }))
    .await;
    assert_eq!(w.recv_publish().await.topic, "will/x04");
    // Any reason other than 0x00 keeps the will too ([MQTT-3.1.2-10]).
    let (mut c, _) = Client::connect_with(addr, will_connect("x80", 0, 0)).await;
    c.send(Packet::Disconnect(Disconnect {
        reason: ReasonCode::UNSPECIFIED_ERROR,
        properties: Default::default(),
    }))
    .await;
    assert_eq!(w.recv_publish().await.topic, "will/x80");
    let (mut c, _) = Client::connect_with(addr, will_connect("x00", 0, 0)).await;
    c.send(Packet::Disconnect(Disconnect::default())).await;
    // [MQTT-3.1.2-10] a normal DISCONNECT removes the will.
    w.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn malformed_packet_gets_disconnect_with_reason_then_close() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut c, _) = Client::connect(addr, V5, "bad", true).await;
    // PUBLISH with QoS 3.
    c.send_raw(&Builder::new(0x36).utf8(b"t").u16(1).properties(&[]).build())
        .await;
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::MALFORMED_PACKET && d.properties.reason_string.is_some()),
        "{got:?}"
    );
    // 3.1.1: just closed.
    let (mut c, _) = Client::connect(addr, V4, "bad4", true).await;
    c.send_raw(&Builder::new(0x36).utf8(b"t").u16(1).build())
        .await;
    assert!(c.expect_closed().await.is_empty());
    // Wildcard in a topic name: 0x90 in 5.
    let (mut c, _) = Client::connect(addr, V5, "bad5", true).await;
    c.send_raw(&Builder::new(0x30).utf8(b"a/+").properties(&[]).build())
        .await;
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::TOPIC_NAME_INVALID),
        "{got:?}"
    );
    // The broker still serves others.
    let (mut ok, _) = Client::connect(addr, V5, "ok", true).await;
    ok.send(Packet::PingReq).await;
    assert_eq!(ok.recv().await, Packet::PingResp);
    broker.shutdown().await;
}

#[tokio::test]
async fn shutdown_sends_server_shutting_down() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut c, _) = Client::connect(addr, V5, "c", true).await;
    let shut = tokio::spawn(broker.shutdown());
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::SERVER_SHUTTING_DOWN),
        "{got:?}"
    );
    tokio::time::timeout(WAIT, shut).await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn retain_unavailable_and_will_beyond_capabilities() {
    let broker = start_with(|c| {
        c.limits.retain_available = false;
        c.limits.maximum_qos = 1;
    })
    .await;
    let addr = broker.tcp_addr().unwrap();
    let (mut c, ack) = Client::connect(addr, V5, "c", true).await;
    assert_eq!(ack.properties.retain_available, Some(0));
    let mut m = publish_packet("r", b"x", QoS::AtMostOnce, 0);
    m.retain = true;
    c.send(Packet::Publish(m)).await;
    let got = c.expect_closed().await;
    // [MQTT-3.2.2-14] retain when Retain Available is 0: DISCONNECT 0x9A.
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::RETAIN_NOT_SUPPORTED),
        "{got:?}"
    );
    for (qos, retain, code) in [
        (QoS::AtMostOnce, true, ReasonCode::RETAIN_NOT_SUPPORTED),
        (QoS::ExactlyOnce, false, ReasonCode::QOS_NOT_SUPPORTED),
    ] {
        let mut conn = will_connect("w", 0, 0);
        if let Some(w) = conn.will.as_mut() {
            w.qos = qos;
            w.retain = retain;
        }
        let mut c = Client::open(addr, V5).await;
        c.send(Packet::Connect(Box::new(conn))).await;
        let got = c.expect_closed().await;
        // [MQTT-3.2.2-12] / [MQTT-3.2.2-13] a will beyond the server's capabilities.
        assert!(
            matches!(got.as_slice(), [Packet::ConnAck(a)] if a.code == code),
            "{got:?}"
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn topics_with_too_many_levels_are_refused_not_fatal() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut c, _) = Client::connect(addr, V5, "deep", true).await;
    let deep = "a/".repeat(30_000) + "z";
    let s = c.subscribe(&deep, QoS::AtMostOnce).await;
    assert_eq!(s.reason_codes, vec![ReasonCode::TOPIC_FILTER_INVALID]);
    let mut m = publish_packet("x", b"d", QoS::AtLeastOnce, 1);
    m.topic = deep.into();
    assert_eq!(c.publish(m).await, ReasonCode::TOPIC_NAME_INVALID);
    c.send(Packet::PingReq).await;
    assert_eq!(c.recv().await, Packet::PingResp);
    broker.shutdown().await;
}

#[tokio::test]
async fn optional_features_switched_off_are_reported_and_refused() {
    let broker = start_with(|c| {
        c.limits.wildcard_subscriptions = false;
        c.limits.shared_subscriptions = false;
        c.limits.subscription_identifiers = false;
    })
    .await;
    let addr = broker.tcp_addr().unwrap();
    let (mut c, ack) = Client::connect(addr, V5, "c", true).await;
    let p = &ack.properties;
    assert_eq!(p.wildcard_subscription_available, Some(0));
    assert_eq!(p.shared_subscription_available, Some(0));
    assert_eq!(p.subscription_identifier_available, Some(0));
    let s = subscribe_many(
        &mut c,
        None,
        vec![
            sub_with("a/+", QoS::AtMostOnce, |_| {}),
            sub_with("$share/g/a", QoS::AtMostOnce, |_| {}),
            sub_with("a/b", QoS::AtMostOnce, |_| {}),
        ],
    )
    .await;
    assert_eq!(
        s.reason_codes,
        vec![
            ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
            ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
            ReasonCode::SUCCESS
        ]
    );
    let mut props = Properties::default();
    props.subscription_identifiers.push(5);
    c.send(Packet::Subscribe(Subscribe {
        packet_id: 9,
        properties: props.into(),
        subscriptions: vec![sub_with("x", QoS::AtMostOnce, |_| {})],
    }))
    .await;
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED),
        "{got:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn response_information_only_when_requested() {
    let broker = start_with(|c| c.response_information = Some("replies/".into())).await;
    let addr = broker.tcp_addr().unwrap();
    let mut conn = connect_packet(V5, "asker", true);
    conn.properties.request_response_information = Some(1);
    let (_a, ack) = Client::connect_with(addr, conn).await;
    assert_eq!(
        ack.properties.response_information.as_deref(),
        Some("replies/asker")
    );
    // [MQTT-3.1.2-28] not requested: not returned.
    let (_b, ack) = Client::connect(addr, V5, "quiet", true).await;
    assert_eq!(ack.properties.response_information, None);
    broker.shutdown().await;
}

//! Core broker behaviour over real sockets: CONNECT, publish/subscribe at every QoS, wildcards,
//! retained messages, sessions, keep alive, wills, takeover, bad first packets.
#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use reference_broker::codec::*;
use support::*;

#[tokio::test]
async fn connack_v311_and_v5_capabilities() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (_c, ack) = Client::connect(addr, V4, "a", true).await;
    assert!(!ack.session_present);
    assert!(ack.properties.is_empty(), "no properties under 3.1.1");
    let (_c5, ack) = Client::connect(addr, V5, "b", true).await;
    let p = &ack.properties;
    // Flags reported truthfully: everything is supported by default.
    assert_eq!(p.retain_available, Some(1));
    assert_eq!(p.wildcard_subscription_available, Some(1));
    assert_eq!(p.shared_subscription_available, Some(1));
    assert_eq!(p.subscription_identifier_available, Some(1));
    assert_eq!(p.maximum_qos, None, "absent means QoS 2");
    assert!(p.receive_maximum.is_some() && p.maximum_packet_size.is_some());
    broker.shutdown().await;
}

#[tokio::test]
async fn publish_subscribe_all_qos_levels_both_versions() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    for (i, version) in [V4, V5].into_iter().enumerate() {
        let (mut sub, _) = Client::connect(addr, version, &format!("sub{i}"), true).await;
        let ack = sub.subscribe("q/+", QoS::ExactlyOnce).await;
        assert_eq!(ack.reason_codes, vec![ReasonCode::GRANTED_QOS_2]);
        let (mut publ, _) = Client::connect(addr, version, &format!("pub{i}"), true).await;
        for (n, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
            .into_iter()
            .enumerate()
        {
            let reason = publ
                .publish(publish_packet("q/x", b"hello", qos, 10 + n as u16))
                .await;
            assert!(reason.is_success());
            let got = sub.recv_publish().await;
            assert_eq!(got.qos, qos);
            assert_eq!(&got.payload[..], b"hello");
            assert_eq!(got.topic, "q/x");
            assert!(!got.retain && !got.dup);
            if qos != QoS::AtMostOnce {
                assert_ne!(got.packet_id, 0);
            }
            sub.ack(&got).await;
        }
        sub.expect_nothing().await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn delivered_qos_is_the_minimum_of_published_and_granted() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut sub, _) = Client::connect(addr, V4, "s", true).await;
    sub.subscribe("t", QoS::AtLeastOnce).await;
    let (mut p, _) = Client::connect(addr, V4, "p", true).await;
    p.publish(publish_packet("t", b"x", QoS::ExactlyOnce, 1))
        .await;
    // [MQTT-3.8.4-6] (3.1.1) QoS downgraded to the granted QoS.
    let got = sub.recv_publish().await;
    assert_eq!(got.qos, QoS::AtLeastOnce);
    broker.shutdown().await;
}

#[tokio::test]
async fn wildcards_and_dollar_topics() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut sub, _) = Client::connect(addr, V4, "s", true).await;
    sub.subscribe("a/+/c", QoS::AtMostOnce).await;
    let (mut all, _) = Client::connect(addr, V4, "all", true).await;
    all.subscribe("#", QoS::AtMostOnce).await;
    let (mut p, _) = Client::connect(addr, V4, "p", true).await;
    p.publish(publish_packet("a/b/c", b"1", QoS::AtMostOnce, 0))
        .await;
    p.publish(publish_packet("a/b/d", b"2", QoS::AtMostOnce, 0))
        .await;
    p.publish(publish_packet("$SYS/x", b"3", QoS::AtMostOnce, 0))
        .await;
    assert_eq!(&sub.recv_publish().await.payload[..], b"1");
    sub.expect_nothing().await;
    assert_eq!(&all.recv_publish().await.payload[..], b"1");
    assert_eq!(&all.recv_publish().await.payload[..], b"2");
    // [MQTT-4.7.2-1] `#` does not match `$SYS/x`.
    all.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn overlapping_subscriptions_deliver_one_copy_at_max_qos() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut sub, _) = Client::connect(addr, V4, "s", true).await;
    sub.subscribe("o/#", QoS::AtMostOnce).await;
    sub.subscribe("o/+", QoS::AtLeastOnce).await;
    let (mut p, _) = Client::connect(addr, V4, "p", true).await;
    p.publish(publish_packet("o/x", b"1", QoS::ExactlyOnce, 1))
        .await;
    let got = sub.recv_publish().await;
    assert_eq!(got.qos, QoS::AtLeastOnce);
    sub.ack(&got).await;
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn unsubscribe_and_ping() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut sub, _) = Client::connect(addr, V5, "s", true).await;
    sub.subscribe("u", QoS::AtMostOnce).await;
    sub.send(Packet::Unsubscribe(Unsubscribe {
        packet_id: 9,
        properties: Default::default(),
        filters: vec!["u".into(), "never".into()],
    }))
    .await;
    match sub.recv().await {
        Packet::UnsubAck(u) => {
            assert_eq!(u.packet_id, 9);
            assert_eq!(
                u.reason_codes,
                vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED]
            );
        }
        other => panic!("{other:?}"),
    }
    let (mut p, _) = Client::connect(addr, V5, "p", true).await;
    let reason = p
        .publish(publish_packet("u", b"x", QoS::AtLeastOnce, 1))
        .await;
    assert_eq!(reason, ReasonCode::NO_MATCHING_SUBSCRIBERS);
    sub.expect_nothing().await;
    sub.send(Packet::PingReq).await;
    assert_eq!(sub.recv().await, Packet::PingResp);
    broker.shutdown().await;
}

#[tokio::test]
async fn retained_store_replace_delete() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut p, _) = Client::connect(addr, V4, "p", true).await;
    let mut m = publish_packet("r/1", b"first", QoS::AtLeastOnce, 1);
    m.retain = true;
    p.publish(m.clone()).await;
    m.payload = Bytes::from_static(b"second");
    m.packet_id = 2;
    p.publish(m.clone()).await;
    let (mut s, _) = Client::connect(addr, V4, "s", true).await;
    s.subscribe("r/#", QoS::AtLeastOnce).await;
    let got = s.recv_publish().await;
    // [MQTT-3.3.1-6] (3.1.1) retained message sent on subscribe with RETAIN 1.
    assert!(got.retain);
    assert_eq!(&got.payload[..], b"second", "replaced");
    s.ack(&got).await;
    s.expect_nothing().await;
    // A live subscriber gets RETAIN 0 ([MQTT-3.3.1-9] (3.1.1)).
    m.payload = Bytes::from_static(b"third");
    m.packet_id = 3;
    p.publish(m.clone()).await;
    let got = s.recv_publish().await;
    assert!(!got.retain);
    s.ack(&got).await;
    // Empty payload deletes ([MQTT-3.3.1-10] (3.1.1)), and is still forwarded.
    m.payload = Bytes::new();
    m.packet_id = 4;
    p.publish(m).await;
    let got = s.recv_publish().await;
    assert!(got.payload.is_empty());
    s.ack(&got).await;
    assert_eq!(broker.retained_messages(), 0);
    let (mut s2, _) = Client::connect(addr, V4, "s2", true).await;
    s2.subscribe("r/#", QoS::AtLeastOnce).await;
    s2.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn persistent_session_queues_offline_messages_v311() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut s, ack) = Client::connect(addr, V4, "persist", false).await;
    assert!(!ack.session_present);
    s.subscribe("off/#", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let (mut p, _) = Client::connect(addr, V4, "p", true).await;
    p.publish(publish_packet("off/1", b"q1", QoS::AtLeastOnce, 1))
        .await;
    p.publish(publish_packet("off/2", b"q0", QoS::AtMostOnce, 0))
        .await;
    p.publish(publish_packet("off/3", b"q2", QoS::ExactlyOnce, 2))
        .await;
    // [MQTT-3.1.2-4] (3.1.1) the session (subscriptions + queued QoS 1/2) is resumed.
    let (mut s, ack) = Client::connect(addr, V4, "persist", false).await;
    assert!(ack.session_present);
    let a = s.recv_publish().await;
    assert_eq!(&a.payload[..], b"q1");
    s.ack(&a).await;
    let b = s.recv_publish().await;
    assert_eq!(&b.payload[..], b"q2", "QoS 0 is not queued by default");
    s.ack(&b).await;
    s.expect_nothing().await;
    s.disconnect().await;
    // Clean session discards it.
    let (mut s, ack) = Client::connect(addr, V4, "persist", true).await;
    assert!(!ack.session_present);
    p.publish(publish_packet("off/4", b"x", QoS::AtLeastOnce, 3))
        .await;
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn unacknowledged_messages_are_redelivered_with_dup() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut s, _) = Client::connect(addr, V4, "dup", false).await;
    s.subscribe("d", QoS::ExactlyOnce).await;
    let (mut p, _) = Client::connect(addr, V4, "p", true).await;
    p.publish(publish_packet("d", b"1", QoS::AtLeastOnce, 1))
        .await;
    p.publish(publish_packet("d", b"2", QoS::ExactlyOnce, 2))
        .await;
    let first = s.recv_publish().await;
    let second = s.recv_publish().await;
    assert!(!first.dup && !second.dup);
    drop(s); // network loss, no acknowledgement
    let (mut s, ack) = Client::connect(addr, V4, "dup", false).await;
    assert!(ack.session_present);
    // [MQTT-4.4.0-1] resend with DUP 1 and the same packet identifiers.
    let r1 = s.recv_publish().await;
    let r2 = s.recv_publish().await;
    assert!(r1.dup && r2.dup);
    assert_eq!(
        (r1.packet_id, r2.packet_id),
        (first.packet_id, second.packet_id)
    );
    assert_eq!((&r1.payload[..], &r2.payload[..]), (&b"1"[..], &b"2"[..]));
    s.ack(&r1).await;
    s.ack(&r2).await;
    s.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn qos2_inbound_duplicate_delivered_once() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut s, _) = Client::connect(addr, V4, "s", true).await;
    s.subscribe("e", QoS::AtMostOnce).await;
    let (mut p, _) = Client::connect(addr, V4, "p", true).await;
    p.send(Packet::Publish(publish_packet(
        "e",
        b"once",
        QoS::ExactlyOnce,
        5,
    )))
    .await;
    assert!(matches!(p.recv().await, Packet::PubRec(r) if r.packet_id == 5));
    let mut again = publish_packet("e", b"once", QoS::ExactlyOnce, 5);
    again.dup = true;
    p.send(Packet::Publish(again)).await;
    assert!(matches!(p.recv().await, Packet::PubRec(r) if r.packet_id == 5));
    p.send(Packet::PubRel(PubResponse {
        packet_id: 5,
        ..Default::default()
    }))
    .await;
    assert!(matches!(p.recv().await, Packet::PubComp(r) if r.packet_id == 5));
    assert_eq!(&s.recv_publish().await.payload[..], b"once");
    // [MQTT-4.3.3-10] no duplicate onward delivery.
    s.expect_nothing().await;
    broker.shutdown().await;
}

fn with_will(mut c: Connect, topic: &str) -> Connect {
    c.will = Some(Will {
        topic: topic.into(),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    c
}

#[tokio::test]
async fn will_on_network_loss_not_on_disconnect() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut watcher, _) = Client::connect(addr, V4, "w", true).await;
    watcher.subscribe("will/#", QoS::AtLeastOnce).await;
    let (c, _) = Client::connect_with(
        addr,
        with_will(connect_packet(V4, "dies", true), "will/dies"),
    )
    .await;
    drop(c);
    // [MQTT-3.1.2-8] the will is published when the network connection is lost.
    let got = watcher.recv_publish().await;
    assert_eq!(got.topic, "will/dies");
    assert_eq!(&got.payload[..], b"gone");
    watcher.ack(&got).await;
    let (c, _) = Client::connect_with(
        addr,
        with_will(connect_packet(V4, "polite", true), "will/polite"),
    )
    .await;
    c.disconnect().await;
    // [MQTT-3.14.4-3] (3.1.1) DISCONNECT discards the will.
    watcher.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn keep_alive_timeout_closes_and_publishes_will() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut watcher, _) = Client::connect(addr, V5, "w", true).await;
    watcher.subscribe("will/#", QoS::AtMostOnce).await;
    let mut c = with_will(connect_packet(V5, "silent", true), "will/silent");
    c.keep_alive = 1;
    let (mut silent, _) = Client::connect_with(addr, c).await;
    let start = tokio::time::Instant::now();
    // [MQTT-3.1.2-22] (5) closed after 1.5 x keep alive without traffic, with DISCONNECT 0x8D.
    let got = silent.expect_closed().await;
    let elapsed = start.elapsed();
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::KEEP_ALIVE_TIMEOUT),
        "{got:?}"
    );
    assert!(
        elapsed >= std::time::Duration::from_millis(1400),
        "{elapsed:?}"
    );
    assert_eq!(watcher.recv_publish().await.topic, "will/silent");
    broker.shutdown().await;
}

#[tokio::test]
async fn first_packet_must_be_connect_and_only_once() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let mut c = Client::open(addr, V4).await;
    c.send(Packet::PingReq).await;
    // [MQTT-3.1.0-1] closed without CONNACK.
    assert!(c.expect_closed().await.is_empty());
    let (mut c, _) = Client::connect(addr, V5, "twice", true).await;
    c.send(Packet::Connect(Box::new(connect_packet(V5, "twice", true))))
        .await;
    // [MQTT-3.1.0-2] a second CONNECT is a Protocol Error.
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR),
        "{got:?}"
    );
    let (mut c, _) = Client::connect(addr, V4, "twice4", true).await;
    c.send(Packet::Connect(Box::new(connect_packet(
        V4, "twice4", true,
    ))))
    .await;
    assert!(c.expect_closed().await.is_empty());
    broker.shutdown().await;
}

#[tokio::test]
async fn unsupported_protocol_level_gets_connack_code() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    // Level 2 (unknown, below 5): 3.1.1 CONNACK 0x01 ([MQTT-3.1.2-2] (3.1.1)).
    let mut c = Client::open(addr, V4).await;
    let bytes = reference_broker::codec::raw::Builder::new(0x10)
        .utf8(b"MQTT")
        .u8(2)
        .u8(0x02)
        .u16(0)
        .utf8(b"x")
        .build();
    c.send_raw(&bytes).await;
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::ConnAck(a)] if a.code == reason::v3::UNACCEPTABLE_PROTOCOL_VERSION),
        "{got:?}"
    );
    // Level 6: also the 3.1.1 CONNACK 0x01, which every client version can read.
    let mut c = Client::open(addr, V4).await;
    let bytes = reference_broker::codec::raw::Builder::new(0x10)
        .utf8(b"MQTT")
        .u8(6)
        .u8(0x02)
        .u16(0)
        .properties(&[])
        .utf8(b"x")
        .build();
    c.send_raw(&bytes).await;
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::ConnAck(a)] if a.code == reason::v3::UNACCEPTABLE_PROTOCOL_VERSION),
        "{got:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn client_id_rules() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    // [MQTT-3.1.3-8] (3.1.1) zero-length id with Clean Session 0: CONNACK 0x02.
    let mut c = Client::open(addr, V4).await;
    c.send(Packet::Connect(Box::new(connect_packet(V4, "", false))))
        .await;
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::ConnAck(a)] if a.code == reason::v3::IDENTIFIER_REJECTED),
        "{got:?}"
    );
    // Zero-length id with Clean Session 1 is accepted.
    let (_c, _) = Client::connect(addr, V4, "", true).await;
    // [MQTT-3.2.2-16] (5) an assigned client identifier, unique.
    let (_a, ack1) = Client::connect(addr, V5, "", true).await;
    let (_b, ack2) = Client::connect(addr, V5, "", true).await;
    let id1 = ack1.properties.assigned_client_identifier.clone().unwrap();
    let id2 = ack2.properties.assigned_client_identifier.clone().unwrap();
    assert!(!id1.is_empty() && id1 != id2);
    broker.shutdown().await;
}

#[tokio::test]
async fn takeover_disconnects_old_connection() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut old, _) = Client::connect(addr, V5, "same", true).await;
    let (mut new, _) = Client::connect(addr, V5, "same", true).await;
    // [MQTT-3.1.4-3] the existing client gets DISCONNECT 0x8E and is closed.
    let got = old.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::SESSION_TAKEN_OVER),
        "{got:?}"
    );
    new.send(Packet::PingReq).await;
    assert_eq!(new.recv().await, Packet::PingResp);
    // 3.1.1: the old connection is just closed.
    let (mut old, _) = Client::connect(addr, V4, "same4", false).await;
    old.subscribe("keep", QoS::AtLeastOnce).await;
    let (_new, ack) = Client::connect(addr, V4, "same4", false).await;
    assert!(ack.session_present, "session handed over");
    assert!(old.expect_closed().await.is_empty());
    broker.shutdown().await;
}

#[tokio::test]
async fn offline_queue_is_bounded() {
    let broker = start_with(|c| c.limits.max_queued_messages = 3).await;
    let addr = broker.tcp_addr().unwrap();
    let (mut s, _) = Client::connect(addr, V4, "q", false).await;
    s.subscribe("bq", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let (mut p, _) = Client::connect(addr, V4, "p", true).await;
    for i in 0..5u16 {
        p.publish(publish_packet("bq", b"m", QoS::AtLeastOnce, i + 1))
            .await;
    }
    let (mut s, ack) = Client::connect(addr, V4, "q", false).await;
    assert!(ack.session_present);
    for _ in 0..3 {
        let m = s.recv_publish().await;
        s.ack(&m).await;
    }
    s.expect_nothing().await;
    assert_eq!(broker.stats().dropped_offline, 2);
    broker.shutdown().await;
}

#[tokio::test]
async fn connection_limit_enforced() {
    let broker = start_with(|c| c.limits.max_connections = 2).await;
    let addr = broker.tcp_addr().unwrap();
    let (_a, _) = Client::connect(addr, V4, "a", true).await;
    let (_b, _) = Client::connect(addr, V5, "b", true).await;
    let mut c = Client::open(addr, V5).await;
    c.send(Packet::Connect(Box::new(connect_packet(V5, "c", true))))
        .await;
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::ConnAck(a)] if a.code == ReasonCode::SERVER_BUSY),
        "{got:?}"
    );
    let mut c = Client::open(addr, V4).await;
    c.send(Packet::Connect(Box::new(connect_packet(V4, "d", true))))
        .await;
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::ConnAck(a)] if a.code == reason::v3::SERVER_UNAVAILABLE),
        "{got:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mqtt_3_1_clients_are_served() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let v3 = ProtocolVersion::V3_1;
    let (mut s, _) = Client::connect(addr, v3, "old-s", true).await;
    s.subscribe("v31/#", QoS::AtLeastOnce).await;
    let (mut p, _) = Client::connect(addr, V5, "new-p", true).await;
    p.publish(publish_packet("v31/x", b"hi", QoS::AtLeastOnce, 1))
        .await;
    let got = s.recv_publish().await;
    assert_eq!(&got.payload[..], b"hi");
    s.ack(&got).await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_subscriber_loses_no_qos1_message() {
    // A tiny channel: the connection task blocks on a full socket while the publisher keeps
    // going, so deliveries overflow the channel and must be parked, not dropped.
    let broker = start_with(|c| c.limits.channel_capacity = 4).await;
    let addr = broker.tcp_addr().unwrap();
    let (mut s, _) = Client::connect(addr, V4, "slow", true).await;
    s.subscribe("big", QoS::AtLeastOnce).await;
    let (mut p, _) = Client::connect(addr, V4, "fast", true).await;
    static BIG: [u8; 64 * 1024] = [7u8; 64 * 1024];
    const N: u16 = 300;
    for i in 1..=N {
        p.publish(publish_packet("big", &BIG, QoS::AtLeastOnce, i))
            .await;
    }
    for _ in 0..N {
        let m = s.recv_publish().await;
        assert_eq!(m.payload.len(), BIG.len());
        s.ack(&m).await;
    }
    s.expect_nothing().await;
    let stats = broker.stats();
    assert!(
        stats.parked > 0,
        "the overflow path was exercised: {stats:?}"
    );
    assert_eq!(stats.dropped_full, 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn subscription_and_retained_quotas() {
    let broker = start_with(|c| {
        c.limits.max_subscriptions_per_client = 2;
        c.limits.max_retained_messages = 1;
    })
    .await;
    let addr = broker.tcp_addr().unwrap();
    let (mut c, _) = Client::connect(addr, V5, "quota", true).await;
    c.subscribe("a", QoS::AtMostOnce).await;
    c.subscribe("b", QoS::AtMostOnce).await;
    // Re-subscribing to a held filter is not a new subscription.
    let again = c.subscribe("a", QoS::AtLeastOnce).await;
    assert_eq!(again.reason_codes, vec![ReasonCode::GRANTED_QOS_1]);
    let third = c.subscribe("c", QoS::AtMostOnce).await;
    assert_eq!(third.reason_codes, vec![ReasonCode::QUOTA_EXCEEDED]);
    let (mut c4, _) = Client::connect(addr, V4, "quota4", true).await;
    c4.subscribe("a", QoS::AtMostOnce).await;
    c4.subscribe("b", QoS::AtMostOnce).await;
    let third = c4.subscribe("c", QoS::AtMostOnce).await;
    assert_eq!(third.reason_codes, vec![reason::v3::SUBACK_FAILURE]);
    for topic in ["r1", "r2"] {
        let mut m = publish_packet(topic, b"x", QoS::AtLeastOnce, 1);
        m.retain = true;
        c.publish(m).await;
    }
    assert_eq!(
        broker.retained_messages(),
        1,
        "the second topic is not retained"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn order_preserved_per_topic_across_qos() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut s, _) = Client::connect(addr, V4, "ord-s", true).await;
    s.subscribe("ord", QoS::ExactlyOnce).await;
    let (mut p, _) = Client::connect(addr, V4, "ord-p", true).await;
    let payloads: Vec<String> = (0..60).map(|i| format!("{i:02}")).collect();
    for (i, text) in payloads.iter().enumerate() {
        let qos = QoS::from_u8((i % 3) as u8).unwrap();
        let id = if qos == QoS::AtMostOnce {
            0
        } else {
            i as u16 + 1
        };
        let mut m = publish_packet("ord", b"", qos, id);
        m.payload = Bytes::from(text.clone());
        p.publish(m).await;
    }
    let mut got = Vec::new();
    while got.len() < payloads.len() {
        match s.recv().await {
            Packet::Publish(m) => {
                got.push(String::from_utf8(m.payload.to_vec()).unwrap());
                let r = PubResponse {
                    packet_id: m.packet_id,
                    ..Default::default()
                };
                match m.qos {
                    QoS::AtMostOnce => {}
                    QoS::AtLeastOnce => s.send(Packet::PubAck(r)).await,
                    QoS::ExactlyOnce => s.send(Packet::PubRec(r)).await,
                }
            }
            Packet::PubRel(r) => s.send(Packet::PubComp(r)).await,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, payloads, "delivered in publication order");
    broker.shutdown().await;
}

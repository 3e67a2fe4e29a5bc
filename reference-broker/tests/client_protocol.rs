//! The full-protocol client against the reference broker, one test per feature: QoS flows,
//! retained messages, persistent sessions, wills, keep alive, topic aliases, flow control,
//! reconnect with DUP, the misbehaviour switches and typed errors.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use reference_broker::broker::auth::hash_password;
use reference_broker::broker::config::UserConfig;
use reference_broker::broker::{Broker, BrokerConfig, ListenerConfig, ListenerKind};
use reference_broker::client::{
    parse_url, Client, ClientError, ConnectOptions, Controls, Direction, Event, ReleaseOrder,
    TransportOptions,
};
use reference_broker::codec::{Packet, ProtocolVersion, Publish, QoS, ReasonCode, Will};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(5);

async fn broker() -> (Broker, String) {
    broker_with(|_| {}).await
}

async fn broker_with(edit: impl FnOnce(&mut BrokerConfig)) -> (Broker, String) {
    let mut config = BrokerConfig::default_tcp("127.0.0.1:0".parse().unwrap());
    edit(&mut config);
    let broker = Broker::bind(config).await.unwrap();
    let url = format!("mqtt://{}", broker.tcp_addr().unwrap());
    (broker, url)
}

fn opts(id: &str, version: ProtocolVersion) -> ConnectOptions {
    ConnectOptions::new(id).version(version)
}

fn message(topic: &str, payload: &str, qos: QoS) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: 0,
        properties: Default::default(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    }
}

#[tokio::test]
async fn qos_0_1_2_round_trip_in_both_versions() {
    let (broker, url) = broker().await;
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let mut sub = Client::connect(&url, opts("sub", version)).await.unwrap();
        let ack = sub
            .subscribe("sensor/+/temperature", QoS::ExactlyOnce)
            .await
            .unwrap();
        assert_eq!(ack.reason_codes, vec![ReasonCode::GRANTED_QOS_2]);
        let mut publisher = Client::connect(&url, opts("pub", version)).await.unwrap();
        for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
            .into_iter()
            .enumerate()
        {
            let reason = publisher
                .publish(
                    format!("sensor/{i}/temperature"),
                    format!("2{i}.5"),
                    qos,
                    false,
                )
                .await
                .unwrap();
            assert!(reason.is_success());
            let m = sub.recv_message(T).await.unwrap();
            assert_eq!(m.topic, format!("sensor/{i}/temperature"));
            assert_eq!(m.payload, format!("2{i}.5").as_bytes());
            assert_eq!(m.qos, qos);
        }
        // Nothing else for the subscriber.
        assert!(matches!(
            sub.recv_message(Duration::from_millis(100)).await,
            Err(ClientError::Timeout(..))
        ));
        let text = publisher.trace().to_string();
        assert!(text.contains("-> PUBREL"), "{text}");
        assert!(text.contains("<- PUBCOMP"), "{text}");
        publisher.disconnect().await.unwrap();
        sub.disconnect().await.unwrap();
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn retained_message_reaches_a_later_subscriber() {
    let (broker, url) = broker().await;
    let mut publisher = Client::connect(&url, ConnectOptions::new("p"))
        .await
        .unwrap();
    publisher
        .publish("sensor/1/temperature", "21.5", QoS::AtLeastOnce, true)
        .await
        .unwrap();
    let mut sub = Client::connect(&url, ConnectOptions::new("s"))
        .await
        .unwrap();
    sub.subscribe("sensor/+/temperature", QoS::AtLeastOnce)
        .await
        .unwrap();
    let m = sub.recv_message(T).await.unwrap();
    assert!(m.retain);
    assert_eq!(&m.payload[..], b"21.5");
    broker.shutdown().await;
}

#[tokio::test]
async fn persistent_session_gets_offline_messages() {
    let (broker, url) = broker().await;
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let id = format!("persistent-{}", version.level());
        let persistent = || {
            let o = opts(&id, version).clean_start(false);
            if version.is_v5() {
                o.session_expiry(300)
            } else {
                o
            }
        };
        let mut sub = Client::connect(&url, persistent()).await.unwrap();
        sub.subscribe("offline/t", QoS::AtLeastOnce).await.unwrap();
        sub.disconnect().await.unwrap();

        let mut publisher = Client::connect(&url, opts("p", version)).await.unwrap();
        for i in 0..3 {
            publisher
                .publish("offline/t", format!("m{i}"), QoS::AtLeastOnce, false)
                .await
                .unwrap();
        }
        let mut sub = Client::connect(&url, persistent()).await.unwrap();
        assert!(sub.connack().session_present);
        for i in 0..3 {
            let m = sub.recv_message(T).await.unwrap();
            assert_eq!(m.payload, format!("m{i}").as_bytes());
        }
        sub.disconnect().await.unwrap();
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn will_is_published_after_an_abrupt_close() {
    let (broker, url) = broker().await;
    let mut watcher = Client::connect(&url, ConnectOptions::new("w"))
        .await
        .unwrap();
    watcher
        .subscribe("sensor/1/status", QoS::AtLeastOnce)
        .await
        .unwrap();
    let will = Will {
        topic: "sensor/1/status".into(),
        payload: Bytes::from_static(b"offline"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    };
    let mut sensor = Client::connect(&url, ConnectOptions::new("sensor1").will(will))
        .await
        .unwrap();
    sensor.kill();
    let m = watcher.recv_message(T).await.unwrap();
    assert_eq!(&m.payload[..], b"offline");
    broker.shutdown().await;
}

#[tokio::test]
async fn keep_alive_sends_pingreq_and_gets_pingresp() {
    let (broker, url) = broker().await;
    let mut c = Client::connect(&url, ConnectOptions::new("ka").keep_alive(1))
        .await
        .unwrap();
    // The protocol is about time here: stay idle a little over one keep alive period.
    c.idle(Duration::from_millis(1300)).await.unwrap();
    let trace = c.trace();
    assert!(
        trace
            .packets(Direction::Sent)
            .any(|p| *p == Packet::PingReq),
        "{trace}"
    );
    assert!(
        trace
            .packets(Direction::Received)
            .any(|p| *p == Packet::PingResp),
        "{trace}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn refused_connection_names_the_reason_code() {
    let (broker, url) = broker_with(|c| {
        c.allow_anonymous = false;
        c.users.push(UserConfig {
            username: "alice".into(),
            password_hash: hash_password(b"secret", "salt"),
        });
    })
    .await;
    let err = Client::connect(&url, ConnectOptions::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Refused(code) if !code.is_success()),
        "{err}"
    );
    let err = Client::connect(
        &url,
        ConnectOptions::new("x").version(ProtocolVersion::V3_1_1),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ClientError::Refused(code) if code.0 == 5 || code.0 == 4),
        "{err}"
    );
    // Credentials from the URL are used.
    let with_creds = url.replace("mqtt://", "mqtt://alice:secret@");
    let c = Client::connect(&with_creds, ConnectOptions::new("x"))
        .await
        .unwrap();
    assert_eq!(c.connack().code, ReasonCode::SUCCESS);
    broker.shutdown().await;
}

#[tokio::test]
async fn broker_receive_maximum_is_respected() {
    let (broker, url) = broker_with(|c| c.limits.receive_maximum = 3).await;
    let mut c = Client::connect(&url, ConnectOptions::new("rm"))
        .await
        .unwrap();
    assert_eq!(c.state().limits().receive_maximum, 3);
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            c.start_publish(message("rm/t", &i.to_string(), QoS::AtLeastOnce))
                .await
                .unwrap(),
        );
        assert!(c.state().send_quota() <= 3);
    }
    for _ in 0..20 {
        c.wait_published(None, T).await.unwrap();
    }
    // Never more than 3 PUBLISH without PUBACK on the wire.
    let mut outstanding = 0i32;
    for e in c.trace().iter() {
        if let reference_broker::client::TraceEvent::Packet(p) = &e.event {
            match (e.direction, p) {
                (Direction::Sent, Packet::Publish(_)) => outstanding += 1,
                (Direction::Received, Packet::PubAck(_)) => outstanding -= 1,
                _ => {}
            }
            assert!(outstanding <= 3, "{}", c.trace());
        }
    }
    assert_eq!(outstanding, 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn broker_maximum_packet_size_is_respected() {
    let (broker, url) = broker_with(|c| c.limits.max_packet_size = 100).await;
    let mut c = Client::connect(&url, ConnectOptions::new("mps"))
        .await
        .unwrap();
    assert_eq!(c.state().limits().maximum_packet_size, Some(100));
    let err = c
        .publish("t", vec![0u8; 200], QoS::AtMostOnce, false)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Usage(_)), "{err}");
    // Still connected and usable.
    c.publish("t", "small", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    broker.shutdown().await;
}

#[tokio::test]
async fn topic_aliases_both_ways() {
    let (broker, url) = broker_with(|c| c.limits.topic_alias_maximum = 5).await;
    let mut sub = Client::connect(&url, ConnectOptions::new("s").topic_alias_maximum(5))
        .await
        .unwrap();
    sub.subscribe("alias/#", QoS::AtLeastOnce).await.unwrap();
    let mut publisher = Client::connect(&url, ConnectOptions::new("p"))
        .await
        .unwrap();
    assert_eq!(publisher.state().limits().topic_alias_maximum, 5);
    publisher.controls_mut().use_topic_aliases = true;
    for i in 0..3 {
        publisher
            .publish(
                "alias/long/topic/name",
                format!("{i}"),
                QoS::AtLeastOnce,
                false,
            )
            .await
            .unwrap();
    }
    for i in 0..3 {
        let m = sub.recv_message(T).await.unwrap();
        assert_eq!(m.topic, "alias/long/topic/name");
        assert_eq!(m.payload, format!("{i}").as_bytes());
    }
    let sent: Vec<Publish> = publisher
        .trace()
        .packets(Direction::Sent)
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(sent[0].topic, "alias/long/topic/name");
    assert_eq!(sent[0].properties.topic_alias, Some(1));
    assert_eq!(sent[1].topic, "");
    assert_eq!(sent[1].properties.topic_alias, Some(1));
    broker.shutdown().await;
}

#[tokio::test]
async fn reconnect_resends_unacknowledged_publish_with_dup() {
    let (broker, url) = broker().await;
    let mut sub = Client::connect(&url, ConnectOptions::new("s"))
        .await
        .unwrap();
    sub.subscribe("dup/t", QoS::ExactlyOnce).await.unwrap();
    let options = ConnectOptions::new("resender").session_expiry(300);
    let mut c = Client::connect(&url, options).await.unwrap();
    // Written, then the connection is cut before the PUBREC can be read.
    let id = c
        .start_publish(message("dup/t", "once", QoS::ExactlyOnce))
        .await
        .unwrap();
    c.kill();
    let ack = c.reconnect().await.unwrap();
    assert!(ack.session_present);
    let (done, reason) = c.wait_published(Some(id), T).await.unwrap();
    assert_eq!((done, reason), (id, ReasonCode::SUCCESS));
    let resent = c
        .trace()
        .packets(Direction::Sent)
        .filter(|p| matches!(p, Packet::Publish(p) if p.packet_id == id && p.dup))
        .count();
    assert_eq!(resent, 1, "{}", c.trace());
    // Exactly once for the subscriber.
    assert_eq!(&sub.recv_message(T).await.unwrap().payload[..], b"once");
    assert!(matches!(
        sub.recv_message(Duration::from_millis(200)).await,
        Err(ClientError::Timeout(..))
    ));
    broker.shutdown().await;
}

#[tokio::test]
async fn withheld_pubrel_is_resent_after_reconnect() {
    let (broker, url) = broker().await;
    let mut sub = Client::connect(&url, ConnectOptions::new("s"))
        .await
        .unwrap();
    sub.subscribe("rel/t", QoS::ExactlyOnce).await.unwrap();
    let controls = Controls {
        never_send_pubrel: true,
        ..Controls::default()
    };
    let mut c = Client::connect_with(
        &parse_url(&url).unwrap(),
        &TransportOptions::default(),
        ConnectOptions::new("holder").session_expiry(300),
        controls,
    )
    .await
    .unwrap();
    let id = c
        .start_publish(message("rel/t", "x", QoS::ExactlyOnce))
        .await
        .unwrap();
    let e = c.next_event(T).await.unwrap();
    assert!(matches!(e, Event::PubRec(r) if r.packet_id == id));
    assert!(matches!(
        c.wait_published(Some(id), Duration::from_millis(200)).await,
        Err(ClientError::Timeout(..))
    ));
    c.controls_mut().never_send_pubrel = false;
    c.kill();
    c.reconnect().await.unwrap();
    c.wait_published(Some(id), T).await.unwrap();
    let text = c.trace().to_string();
    assert!(text.contains("-- reconnect"), "{text}");
    assert_eq!(text.matches("-> PUBREL").count(), 1, "{text}");
    assert_eq!(&sub.recv_message(T).await.unwrap().payload[..], b"x");
    broker.shutdown().await;
}

#[tokio::test]
async fn held_acks_released_out_of_order_are_accepted() {
    let (broker, url) = broker().await;
    let mut sub = Client::connect(&url, ConnectOptions::new("s"))
        .await
        .unwrap();
    sub.subscribe("ooo/t", QoS::AtLeastOnce).await.unwrap();
    sub.controls_mut().hold_acks = true;
    let mut publisher = Client::connect(&url, ConnectOptions::new("p"))
        .await
        .unwrap();
    for i in 0..3 {
        publisher
            .publish("ooo/t", format!("{i}"), QoS::AtLeastOnce, false)
            .await
            .unwrap();
    }
    for _ in 0..3 {
        sub.recv_message(T).await.unwrap();
    }
    assert_eq!(sub.state().held_count(), 3);
    sub.release_held(ReleaseOrder::Reversed).await.unwrap();
    let acks: Vec<u16> = sub
        .trace()
        .packets(Direction::Sent)
        .filter_map(|p| match p {
            Packet::PubAck(r) => Some(r.packet_id),
            _ => None,
        })
        .collect();
    let mut sorted = acks.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(acks, sorted, "reversed order");
    // The broker is still happy: a new message arrives and nothing is redelivered.
    sub.controls_mut().hold_acks = false;
    publisher
        .publish("ooo/t", "after", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(&sub.recv_message(T).await.unwrap().payload[..], b"after");
    broker.shutdown().await;
}

#[tokio::test]
async fn close_by_broker_says_after_which_packet() {
    let (broker, url) = broker().await;
    let mut c = Client::connect(&url, ConnectOptions::new("bad"))
        .await
        .unwrap();
    // A second CONNECT is a protocol error: the broker closes.
    c.send_packet(Packet::Connect(Box::new(
        ConnectOptions::new("bad").to_packet(),
    )))
    .await
    .unwrap();
    let err = c.recv_message(T).await.unwrap_err();
    match &err {
        ClientError::Closed(text) => {
            assert!(text.contains("after we sent CONNECT"), "{text}");
            assert!(
                text.contains("waiting for an application message"),
                "{text}"
            );
        }
        other => panic!("expected Closed, got {other}"),
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn websocket_listener() {
    let mut config = BrokerConfig::default_tcp("127.0.0.1:0".parse().unwrap());
    config.listeners.push(ListenerConfig {
        kind: ListenerKind::Ws,
        bind: "127.0.0.1:0".parse().unwrap(),
        cert: None,
        key: None,
    });
    let broker = match Broker::bind(config).await {
        Ok(b) => b,
        Err(e) if e.to_string().contains("not available") => {
            eprintln!("SKIPPED websocket_listener: the reference broker has no WebSocket listener yet ({e})");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let url = format!("ws://{}", broker.addr_of(ListenerKind::Ws).unwrap());
    let mut c = Client::connect(&url, ConnectOptions::new("ws"))
        .await
        .unwrap();
    c.subscribe("ws/t", QoS::AtLeastOnce).await.unwrap();
    c.publish("ws/t", "hello", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(&c.recv_message(T).await.unwrap().payload[..], b"hello");
    broker.shutdown().await;
}

#[tokio::test]
async fn ten_thousand_qos2_messages_none_lost_or_duplicated() {
    const N: usize = 10_000;
    let (broker, url) = broker().await;
    let mut sub = Client::connect(&url, ConnectOptions::new("bulk-sub").receive_maximum(1000))
        .await
        .unwrap();
    sub.set_tracing(false);
    sub.subscribe("bulk/t", QoS::ExactlyOnce).await.unwrap();
    let receiver = tokio::spawn(async move {
        let mut seen = HashSet::new();
        let mut duplicates = 0;
        while seen.len() < N {
            let m = sub.recv_message(T).await.unwrap();
            assert_eq!(m.qos, QoS::ExactlyOnce);
            let i: usize = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
            if !seen.insert(i) {
                duplicates += 1;
            }
        }
        // Anything more would be a duplicate.
        match sub.recv_message(Duration::from_millis(200)).await {
            Err(ClientError::Timeout(..)) => {}
            other => panic!("unexpected extra message: {other:?}"),
        }
        (seen, duplicates)
    });
    let mut publisher = Client::connect(&url, ConnectOptions::new("bulk-pub"))
        .await
        .unwrap();
    publisher.set_tracing(false);
    let window = 200;
    let mut completed = 0;
    for i in 0..N {
        publisher
            .start_publish(message("bulk/t", &i.to_string(), QoS::ExactlyOnce))
            .await
            .unwrap();
        if i + 1 - completed > window {
            let (_, reason) = publisher.wait_published(None, T).await.unwrap();
            assert_eq!(reason, ReasonCode::SUCCESS);
            completed += 1;
        }
    }
    while completed < N {
        publisher.wait_published(None, T).await.unwrap();
        completed += 1;
    }
    let (seen, duplicates) = timeout(Duration::from_secs(120), receiver)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(duplicates, 0);
    assert_eq!(seen.len(), N);
    assert_eq!(publisher.state().in_flight(), 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn enhanced_authentication_challenge() {
    use reference_broker::broker::auth::{challenge_response, CHALLENGE_METHOD};
    use reference_broker::broker::config::ChallengeConfig;
    use reference_broker::codec::Auth;

    let (broker, url) = broker_with(|c| {
        c.challenge_auth = Some(ChallengeConfig {
            secret: "s3cret".into(),
        })
    })
    .await;
    let url = parse_url(&url).unwrap();
    let responder = |secret: &'static str| -> reference_broker::client::AuthResponder {
        Box::new(move |auth: &Auth| {
            let nonce = auth
                .properties
                .authentication_data
                .clone()
                .unwrap_or_default();
            let mut answer = Auth {
                reason: ReasonCode::CONTINUE_AUTHENTICATION,
                ..Default::default()
            };
            answer.properties.authentication_method = Some(CHALLENGE_METHOD.into());
            answer.properties.authentication_data =
                Some(Bytes::from(challenge_response(&nonce, secret)));
            answer
        })
    };
    let options = ConnectOptions::new("auth").authentication(CHALLENGE_METHOD, None);
    let c = Client::connect_with_auth(
        &url,
        &TransportOptions::default(),
        options.clone(),
        Controls::default(),
        Some(responder("s3cret")),
    )
    .await
    .unwrap();
    assert_eq!(c.connack().code, ReasonCode::SUCCESS);
    let text = c.trace().to_string();
    assert!(text.contains("<- AUTH reason=0x18"), "{text}");
    assert!(text.contains("-> AUTH reason=0x18"), "{text}");

    let err = Client::connect_with_auth(
        &url,
        &TransportOptions::default(),
        options.clone(),
        Controls::default(),
        Some(responder("wrong")),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ClientError::Refused(ReasonCode::NOT_AUTHORIZED)),
        "{err}"
    );

    let err = Client::connect(&format!("mqtt://{}", url.socket_addr()), options)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err}");
    broker.shutdown().await;
}

/// A scripted peer for what the reference broker never does: it answers CONNECT with the
/// given CONNACK bytes, then writes `then`, then reads until the client goes away and
/// returns everything the client sent after CONNECT.
async fn scripted(
    connack: &'static [u8],
    then: &'static [u8],
) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("mqtt://{}", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut head = [0u8; 2];
        s.read_exact(&mut head).await.unwrap();
        let mut body = vec![0u8; usize::from(head[1])];
        s.read_exact(&mut body).await.unwrap();
        s.write_all(connack).await.unwrap();
        s.write_all(then).await.unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        rest
    });
    (url, task)
}

#[tokio::test]
async fn missing_pingresp_is_a_keep_alive_timeout() {
    // CONNACK v5 success, no properties; the peer never answers PINGREQ.
    let (url, peer) = scripted(&[0x20, 0x03, 0x00, 0x00, 0x00], &[]).await;
    let mut c = Client::connect(&url, ConnectOptions::new("ka").keep_alive(1))
        .await
        .unwrap();
    // Keep alive is the subject: one period to send PINGREQ, one more to give up.
    let err = c.idle(Duration::from_secs(4)).await.unwrap_err();
    match &err {
        ClientError::Timeout(d, what) => {
            assert_eq!(*d, Duration::from_secs(1));
            assert!(what.contains("PINGRESP"), "{what}");
        }
        other => panic!("expected a keep alive timeout, got {other}"),
    }
    let sent = timeout(T, peer).await.unwrap().unwrap();
    assert_eq!(
        sent,
        [0xc0, 0x00],
        "exactly one PINGREQ, then the client hung up"
    );
}

#[tokio::test]
async fn broker_protocol_violation_gets_disconnect_0x82() {
    // CONNACK v5 success, then a PUBACK for a packet id the client never used.
    let (url, peer) = scripted(&[0x20, 0x03, 0x00, 0x00, 0x00], &[0x40, 0x02, 0x00, 0x07]).await;
    let mut c = Client::connect(&url, ConnectOptions::new("pv"))
        .await
        .unwrap();
    let err = c.recv_message(T).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Protocol(m) if m.contains("PUBACK")),
        "{err}"
    );
    let sent = timeout(T, peer).await.unwrap().unwrap();
    // DISCONNECT with reason 0x82 (Protocol Error); no properties, so no property length.
    assert_eq!(sent, [0xe0, 0x01, 0x82]);
}

#[tokio::test]
async fn v311_refusal_return_code() {
    // CONNACK 3.1.1: return code 2, identifier rejected.
    let (url, peer) = scripted(&[0x20, 0x02, 0x00, 0x02], &[]).await;
    let err = Client::connect(
        &url,
        ConnectOptions::new("r").version(ProtocolVersion::V3_1_1),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Refused(ReasonCode(2))), "{err}");
    assert!(err.to_string().contains("0x02"), "{err}");
    timeout(T, peer).await.unwrap().unwrap();
}

#[tokio::test]
async fn broker_disconnect_is_named_in_the_error() {
    // CONNACK v5 success, then DISCONNECT 0x8B (Server shutting down), then close.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("mqtt://{}", l.local_addr().unwrap());
    let peer = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, _) = l.accept().await.unwrap();
        let mut head = [0u8; 2];
        s.read_exact(&mut head).await.unwrap();
        let mut body = vec![0u8; usize::from(head[1])];
        s.read_exact(&mut body).await.unwrap();
        s.write_all(&[0x20, 0x03, 0x00, 0x00, 0x00]).await.unwrap();
        s.write_all(&[0xe0, 0x02, 0x8b, 0x00]).await.unwrap();
    });
    let mut c = Client::connect(&url, ConnectOptions::new("d"))
        .await
        .unwrap();
    let err = c.recv_message(T).await.unwrap_err();
    match &err {
        ClientError::Closed(text) => {
            assert!(text.contains("DISCONNECT reason 0x8B"), "{text}")
        }
        other => panic!("expected Closed, got {other}"),
    }
    timeout(T, peer).await.unwrap().unwrap();
}

#[tokio::test]
async fn delayed_puback_goes_out_after_the_delay() {
    let (broker, url) = broker().await;
    let mut sub = Client::connect(&url, ConnectOptions::new("slow"))
        .await
        .unwrap();
    sub.subscribe("slow/t", QoS::AtLeastOnce).await.unwrap();
    sub.controls_mut().ack_delay = Some(Duration::from_millis(300));
    let mut publisher = Client::connect(&url, ConnectOptions::new("p"))
        .await
        .unwrap();
    publisher
        .publish("slow/t", "x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let m = sub.recv_message(T).await.unwrap();
    // The PUBACK goes out only once the delay has passed while the client is serviced.
    assert_eq!(sub.state().held_count(), 1);
    sub.idle(Duration::from_millis(500)).await.unwrap();
    assert_eq!(sub.state().held_count(), 0);
    let trace = sub.trace();
    let rx = trace
        .iter()
        .find(|e| matches!(&e.event, reference_broker::client::TraceEvent::Packet(Packet::Publish(p)) if p.packet_id == m.packet_id))
        .unwrap()
        .at;
    let tx = trace
        .iter()
        .find(|e| matches!(&e.event, reference_broker::client::TraceEvent::Packet(Packet::PubAck(r)) if r.packet_id == m.packet_id))
        .unwrap()
        .at;
    assert!(tx - rx >= Duration::from_millis(300), "{trace}");
    broker.shutdown().await;
}

/// One clock for the client: tokio's paused time alone drives its keep alive. 30 s pass in
/// an instant, the client sends PINGREQ when its keep alive is due and the broker answers.
#[tokio::test(start_paused = true)]
async fn paused_tokio_time_drives_the_client_keep_alive() {
    let (_broker, url) = broker().await;
    let options = opts("paused", ProtocolVersion::V5).keep_alive(30);
    let mut client = Client::connect(&url, options).await.unwrap();
    let start = tokio::time::Instant::now();
    let event = client.next_event(Duration::from_secs(100)).await.unwrap();
    assert_eq!(event, Event::PingResp);
    // [MQTT-3.1.2-20] the PINGREQ went out once keep alive had passed, on tokio's clock.
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(30),
        "PINGREQ after {waited:?}"
    );
    assert!(waited < Duration::from_secs(31), "PINGREQ after {waited:?}");
    let sent: Vec<_> = client.trace().iter().map(|e| e.at).collect();
    assert!(sent.last().is_some_and(|at| *at >= Duration::from_secs(30)));
}

//! Authentication and authorisation over real sockets: users with hashed passwords, anonymous
//! access, ACL with %c / %u, the `challenge` enhanced authentication method.
#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use reference_broker::broker::auth::{challenge_response, hash_password, CHALLENGE_METHOD};
use reference_broker::broker::config::{AclAction, AclRule, ChallengeConfig, UserConfig};
use reference_broker::broker::Broker;
use reference_broker::codec::*;
use support::*;

async fn secured() -> Broker {
    start_with(|c| {
        c.allow_anonymous = false;
        c.users.push(UserConfig {
            username: "alice".into(),
            password_hash: hash_password(b"wonderland", "s4lt"),
        });
        c.acl.push(AclRule {
            username: Some("alice".into()),
            publish: vec!["clients/%c/#".into(), "users/%u".into()],
            subscribe: vec!["clients/+/#".into()],
            ..Default::default()
        });
    })
    .await
}

fn login(
    version: ProtocolVersion,
    id: &str,
    user: Option<&str>,
    pw: Option<&'static [u8]>,
) -> Connect {
    let mut c = connect_packet(version, id, true);
    c.username = user.map(Into::into);
    c.password = pw.map(Bytes::from_static);
    c
}

async fn refused(addr: std::net::SocketAddr, c: Connect) -> ReasonCode {
    let mut client = Client::open(addr, c.protocol).await;
    client.send(Packet::Connect(Box::new(c))).await;
    let got = client.expect_closed().await;
    match got.as_slice() {
        [Packet::ConnAck(a)] => a.code,
        other => panic!("expected one CONNACK, got {other:?}"),
    }
}

#[tokio::test]
async fn connect_authentication_codes() {
    let broker = secured().await;
    let addr = broker.tcp_addr().unwrap();
    Client::connect_with(addr, login(V5, "a", Some("alice"), Some(b"wonderland"))).await;
    Client::connect_with(addr, login(V4, "a4", Some("alice"), Some(b"wonderland"))).await;
    // Wrong password: 0x86 (5) / 4 (3.1.1).
    assert_eq!(
        refused(addr, login(V5, "b", Some("alice"), Some(b"nope"))).await,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
    assert_eq!(
        refused(addr, login(V4, "b", Some("alice"), Some(b"nope"))).await,
        reason::v3::BAD_USER_NAME_OR_PASSWORD
    );
    // Anonymous not allowed: 0x87 (5) / 5 (3.1.1).
    assert_eq!(
        refused(addr, login(V5, "c", None, None)).await,
        ReasonCode::NOT_AUTHORIZED
    );
    assert_eq!(
        refused(addr, login(V4, "c", None, None)).await,
        reason::v3::NOT_AUTHORIZED
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn acl_on_subscribe_and_publish() {
    let broker = secured().await;
    let addr = broker.tcp_addr().unwrap();
    let (mut c, _) =
        Client::connect_with(addr, login(V5, "c1", Some("alice"), Some(b"wonderland"))).await;
    let ok = c.subscribe("clients/c1/#", QoS::AtLeastOnce).await;
    assert_eq!(ok.reason_codes, vec![ReasonCode::GRANTED_QOS_1]);
    // SUBACK 0x87 for a forbidden filter (5).
    let denied = c.subscribe("secret/#", QoS::AtLeastOnce).await;
    assert_eq!(denied.reason_codes, vec![ReasonCode::NOT_AUTHORIZED]);
    // %c: own topic allowed, another client's refused with PUBACK 0x87 (5).
    let r = c
        .publish(publish_packet("clients/c1/x", b"ok", QoS::AtLeastOnce, 1))
        .await;
    assert_eq!(r, ReasonCode::SUCCESS);
    let got = c.recv_publish().await;
    assert_eq!(&got.payload[..], b"ok");
    c.ack(&got).await;
    let r = c
        .publish(publish_packet("clients/c2/x", b"no", QoS::AtLeastOnce, 2))
        .await;
    assert_eq!(r, ReasonCode::NOT_AUTHORIZED);
    c.expect_nothing().await;

    // 3.1.1: SUBACK 0x80, forbidden PUBLISH acknowledged but dropped.
    let (mut watcher, _) =
        Client::connect_with(addr, login(V4, "c2", Some("alice"), Some(b"wonderland"))).await;
    assert_eq!(
        watcher
            .subscribe("secret", QoS::AtMostOnce)
            .await
            .reason_codes,
        vec![reason::v3::SUBACK_FAILURE]
    );
    watcher.subscribe("clients/+/#", QoS::AtMostOnce).await;
    let (mut p, _) =
        Client::connect_with(addr, login(V4, "c3", Some("alice"), Some(b"wonderland"))).await;
    let r = p
        .publish(publish_packet(
            "clients/c1/y",
            b"forbidden",
            QoS::AtLeastOnce,
            1,
        ))
        .await;
    assert_eq!(r, ReasonCode::SUCCESS, "3.1.1 PUBACK has no reason code");
    watcher.expect_nothing().await;
    p.publish(publish_packet(
        "clients/c3/y",
        b"allowed",
        QoS::AtLeastOnce,
        2,
    ))
    .await;
    assert_eq!(&watcher.recv_publish().await.payload[..], b"allowed");
    broker.shutdown().await;
}

#[tokio::test]
async fn deny_rule_first_match_and_credentials_with_anonymous_access() {
    // Everything except test/nosubscribe, and no users: credentials are accepted.
    let broker = start_with(|c| {
        c.acl.push(AclRule {
            action: AclAction::Deny,
            subscribe: vec!["test/nosubscribe".into()],
            publish: vec!["private/%c/#".into()],
            ..Default::default()
        });
        c.acl.push(AclRule {
            publish: vec!["#".into()],
            subscribe: vec!["#".into()],
            ..Default::default()
        });
    })
    .await;
    let addr = broker.tcp_addr().unwrap();
    let (mut c, _) = Client::connect_with(addr, login(V5, "d1", Some("u"), Some(b"p"))).await;
    Client::connect_with(addr, login(V4, "d2", Some("u"), Some(b"p"))).await;
    let denied = c.subscribe("test/nosubscribe", QoS::AtLeastOnce).await;
    assert_eq!(denied.reason_codes, vec![ReasonCode::NOT_AUTHORIZED]);
    let ok = c.subscribe("test/other", QoS::AtLeastOnce).await;
    assert_eq!(ok.reason_codes, vec![ReasonCode::GRANTED_QOS_1]);
    let r = c
        .publish(publish_packet("private/d1/x", b"no", QoS::AtLeastOnce, 1))
        .await;
    assert_eq!(r, ReasonCode::NOT_AUTHORIZED);
    let r = c
        .publish(publish_packet("test/other", b"yes", QoS::AtLeastOnce, 2))
        .await;
    assert_eq!(r, ReasonCode::SUCCESS);
    assert_eq!(&c.recv_publish().await.payload[..], b"yes");
    broker.shutdown().await;
}

#[tokio::test]
async fn enhanced_authentication_challenge() {
    let broker = start_with(|c| {
        c.challenge_auth = Some(ChallengeConfig {
            secret: "s3cret".into(),
        })
    })
    .await;
    let addr = broker.tcp_addr().unwrap();
    for (secret, ok) in [("s3cret", true), ("wrong", false)] {
        let mut c = Client::open(addr, V5).await;
        let mut conn = connect_packet(V5, "ea", true);
        conn.properties.authentication_method = Some(CHALLENGE_METHOD.into());
        c.send(Packet::Connect(Box::new(conn))).await;
        // [MQTT-4.12.0-2] AUTH 0x18 with the challenge.
        let nonce = match c.recv().await {
            Packet::Auth(a) => {
                assert_eq!(a.reason, ReasonCode::CONTINUE_AUTHENTICATION);
                assert_eq!(
                    a.properties.authentication_method.as_deref(),
                    Some(CHALLENGE_METHOD)
                );
                a.properties.authentication_data.clone().unwrap()
            }
            other => panic!("expected AUTH, got {other:?}"),
        };
        let mut reply = Auth {
            reason: ReasonCode::CONTINUE_AUTHENTICATION,
            properties: Default::default(),
        };
        reply.properties.authentication_method = Some(CHALLENGE_METHOD.into());
        reply.properties.authentication_data =
            Some(Bytes::from(challenge_response(&nonce, secret)));
        c.send(Packet::Auth(reply)).await;
        match c.recv().await {
            Packet::ConnAck(a) if ok => {
                assert_eq!(a.code, ReasonCode::SUCCESS);
                assert_eq!(
                    a.properties.authentication_method.as_deref(),
                    Some(CHALLENGE_METHOD)
                );
                reauthenticate(&mut c, secret).await;
            }
            Packet::ConnAck(a) => assert_eq!(a.code, ReasonCode::NOT_AUTHORIZED),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }
    // [MQTT-4.12.0-1] an unknown method: CONNACK 0x8C.
    let mut conn = connect_packet(V5, "eb", true);
    conn.properties.authentication_method = Some("SCRAM-SHA-1".into());
    assert_eq!(
        refused(addr, conn).await,
        ReasonCode::BAD_AUTHENTICATION_METHOD
    );
    broker.shutdown().await;
}

/// [MQTT-4.12.1-1] re-authentication after CONNACK: AUTH 0x19, challenge, answer, AUTH 0x00.
async fn reauthenticate(c: &mut Client, secret: &str) {
    let mut start = Auth {
        reason: ReasonCode::RE_AUTHENTICATE,
        properties: Default::default(),
    };
    start.properties.authentication_method = Some(CHALLENGE_METHOD.into());
    c.send(Packet::Auth(start)).await;
    let nonce = match c.recv().await {
        Packet::Auth(a) if a.reason == ReasonCode::CONTINUE_AUTHENTICATION => {
            a.properties.authentication_data.clone().unwrap()
        }
        other => panic!("expected AUTH 0x18, got {other:?}"),
    };
    let mut reply = Auth {
        reason: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: Default::default(),
    };
    reply.properties.authentication_method = Some(CHALLENGE_METHOD.into());
    reply.properties.authentication_data = Some(Bytes::from(challenge_response(&nonce, secret)));
    c.send(Packet::Auth(reply)).await;
    assert!(matches!(c.recv().await, Packet::Auth(a) if a.reason == ReasonCode::SUCCESS));
}

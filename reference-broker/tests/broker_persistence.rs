//! On-disk persistence (`persistence = "path"`): persistent sessions (subscriptions, queued
//! and in-flight QoS 1 messages) and retained messages survive a stop and a new bind; clean
//! sessions and brokers without persistence keep nothing.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use reference_broker::broker::{Broker, BrokerConfig};
use reference_broker::codec::*;
use support::*;

async fn bind(store: Option<&Path>) -> Broker {
    let mut config = BrokerConfig::default_tcp("127.0.0.1:0".parse().unwrap());
    config.persistence = store.map(Path::to_path_buf);
    Broker::bind(config).await.unwrap()
}

/// A persistent 3.1.1 subscriber with one message in flight (not acknowledged) and one queued
/// while offline, plus a retained message; then the broker stops.
async fn leave_state_behind(broker: Broker) {
    let addr = broker.tcp_addr().unwrap();
    let (mut sub, ack) = Client::connect(addr, V4, "keeper", false).await;
    assert!(!ack.session_present);
    sub.subscribe("p/#", QoS::AtLeastOnce).await;
    let (mut publ, _) = Client::connect(addr, V4, "pub", true).await;
    publ.publish(publish_packet("p/1", b"in-flight", QoS::AtLeastOnce, 1))
        .await;
    let first = sub.recv_publish().await;
    assert_eq!(&first.payload[..], b"in-flight");
    // No PUBACK: the message stays in flight.
    sub.disconnect().await;
    publ.publish(publish_packet("p/2", b"queued", QoS::AtLeastOnce, 2))
        .await;
    let mut retained = publish_packet("r/t", b"kept", QoS::AtLeastOnce, 3);
    retained.retain = true;
    publ.publish(retained).await;
    publ.disconnect().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn sessions_and_retained_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("sessions.redb");
    leave_state_behind(bind(Some(&store)).await).await;

    let broker = bind(Some(&store)).await;
    let addr = broker.tcp_addr().unwrap();
    // [MQTT-3.1.2-4] the session is resumed.
    let (mut sub, ack) = Client::connect(addr, V4, "keeper", false).await;
    assert!(ack.session_present);
    // [MQTT-4.4.0-1] the unacknowledged message is re-sent with DUP, then the queued one.
    let again = sub.recv_publish().await;
    assert_eq!((&again.payload[..], again.dup), (&b"in-flight"[..], true));
    sub.ack(&again).await;
    let queued = sub.recv_publish().await;
    assert_eq!(&queued.payload[..], b"queued");
    sub.ack(&queued).await;
    // The subscription itself survived: a new message is routed to it.
    let (mut publ, _) = Client::connect(addr, V4, "pub", true).await;
    publ.publish(publish_packet("p/3", b"fresh", QoS::AtLeastOnce, 4))
        .await;
    let fresh = sub.recv_publish().await;
    assert_eq!(&fresh.payload[..], b"fresh");
    sub.ack(&fresh).await;
    // [MQTT-3.3.1-5] the retained message too.
    let (mut late, _) = Client::connect(addr, V4, "late", true).await;
    late.subscribe("r/t", QoS::AtLeastOnce).await;
    let r = late.recv_publish().await;
    assert!(r.retain);
    assert_eq!(&r.payload[..], b"kept");
    broker.shutdown().await;
}

#[tokio::test]
async fn without_persistence_a_restart_keeps_nothing() {
    leave_state_behind(bind(None).await).await;
    let broker = bind(None).await;
    let addr = broker.tcp_addr().unwrap();
    let (mut sub, ack) = Client::connect(addr, V4, "keeper", false).await;
    assert!(!ack.session_present);
    sub.expect_nothing().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn clean_sessions_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("sessions.redb");
    let broker = bind(Some(&store)).await;
    let addr = broker.tcp_addr().unwrap();
    let (mut c, _) = Client::connect(addr, V4, "clean", true).await;
    c.subscribe("c/#", QoS::AtLeastOnce).await;
    c.disconnect().await;
    broker.shutdown().await;
    let broker = bind(Some(&store)).await;
    let (_c, ack) = Client::connect(broker.tcp_addr().unwrap(), V4, "clean", false).await;
    assert!(!ack.session_present);
    broker.shutdown().await;
}

#[tokio::test]
async fn an_unusable_store_is_a_bind_error() {
    let dir = tempfile::tempdir().unwrap();
    // A directory is not a database file.
    let mut config = BrokerConfig::default_tcp("127.0.0.1:0".parse().unwrap());
    config.persistence = Some(dir.path().to_path_buf());
    let err = Broker::bind(config).await.unwrap_err();
    assert!(err.to_string().contains("session store"), "{err}");
}

//! Timers with paused (virtual) time: keep alive, will delay, session expiry, message expiry
//! and the CONNECT timeout, over in-memory pipes so that tokio's clock only moves when every
//! task is idle. Durations are checked exactly, with no real waiting.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use reference_broker::broker::Broker;
use reference_broker::codec::*;
use support::*;
use tokio::time::Instant;

/// Bound for waits in virtual time: long, and free.
const HOUR: Duration = Duration::from_secs(3600);

async fn broker() -> Broker {
    // No listener at all: every client is an in-memory pipe.
    start_with(|c| c.listeners.clear()).await
}

async fn connect(b: &Broker, c: Connect) -> Client {
    Client::pipe(b, c.protocol).handshake(c).await.0
}

#[tokio::test(start_paused = true)]
async fn keep_alive_fires_at_exactly_one_and_a_half_periods() {
    let b = broker().await;
    let mut c = connect_packet(V5, "ka", true);
    c.keep_alive = 10;
    let mut c = connect(&b, c).await;
    let start = Instant::now();
    c.send(Packet::PingReq).await;
    assert_eq!(c.recv().await, Packet::PingResp);
    let got = c.expect_closed_within(HOUR).await;
    // [MQTT-3.1.2-22] 15 s after the last packet, DISCONNECT 0x8D.
    assert_eq!(start.elapsed().as_secs(), 15);
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::KEEP_ALIVE_TIMEOUT)
    );
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn connect_timeout_is_virtual_too() {
    let b = broker().await;
    let mut c = Client::pipe(&b, V4);
    let start = Instant::now();
    assert!(c.expect_closed_within(HOUR).await.is_empty());
    assert_eq!(start.elapsed().as_secs(), 10, "default CONNECT timeout");
    b.shutdown().await;
}

fn with_will(id: &str, delay: u32, expiry: u32) -> Connect {
    let mut c = connect_packet(V5, id, false);
    c.properties.session_expiry_interval = Some(expiry);
    c.will = Some(Will {
        topic: format!("will/{id}"),
        payload: Bytes::from_static(b"w"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties {
            will_delay_interval: Some(delay),
            ..Default::default()
        }
        .into(),
    });
    c
}

#[tokio::test(start_paused = true)]
async fn will_delay_and_its_cancellation() {
    let b = broker().await;
    let mut w = connect(&b, connect_packet(V5, "watch", true)).await;
    w.subscribe("will/#", QoS::AtMostOnce).await;
    let start = Instant::now();
    drop(connect(&b, with_will("late", 30, 3600)).await);
    drop(connect(&b, with_will("back", 30, 3600)).await);
    tokio::time::sleep(Duration::from_secs(29)).await;
    // [MQTT-3.1.3-9] a new connection within the delay cancels the will.
    let _back = connect(&b, with_will("back", 30, 3600)).await;
    let got = w.recv_publish().await;
    assert_eq!(got.topic, "will/late");
    assert_eq!(start.elapsed().as_secs(), 30);
    // Nothing from "back", however long we wait.
    assert!(w.recv_within(HOUR).await.is_none());
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn will_delay_longer_than_session_fires_at_session_end() {
    let b = broker().await;
    let mut w = connect(&b, connect_packet(V5, "watch", true)).await;
    w.subscribe("will/#", QoS::AtMostOnce).await;
    let start = Instant::now();
    drop(connect(&b, with_will("short-session", 600, 20)).await);
    let got = w.recv_within(HOUR).await;
    assert!(matches!(got, Some(Packet::Publish(p)) if p.topic == "will/short-session"));
    assert_eq!(start.elapsed().as_secs(), 20);
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn session_expiry_exact() {
    let b = broker().await;
    let mut c = connect_packet(V5, "exp", false);
    c.properties.session_expiry_interval = Some(100);
    connect(&b, c.clone()).await.disconnect().await;
    tokio::time::sleep(Duration::from_secs(99)).await;
    let (again, ack) = Client::pipe(&b, V5).handshake(c.clone()).await;
    assert!(ack.session_present, "still there after 99 s");
    again.disconnect().await;
    tokio::time::sleep(Duration::from_secs(101)).await;
    let (_c, ack) = Client::pipe(&b, V5).handshake(c).await;
    assert!(!ack.session_present, "expired after 100 s");
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn queued_message_expiry_counts_down_while_offline() {
    let b = broker().await;
    let mut c = connect_packet(V5, "off", false);
    c.properties.session_expiry_interval = Some(3600);
    let mut s = connect(&b, c.clone()).await;
    s.subscribe("t", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let mut p = connect(&b, connect_packet(V5, "p", true)).await;
    let mut m = publish_packet("t", b"60s", QoS::AtLeastOnce, 1);
    m.properties.message_expiry_interval = Some(60);
    p.publish(m).await;
    let mut m = publish_packet("t", b"10s", QoS::AtLeastOnce, 2);
    m.properties.message_expiry_interval = Some(10);
    p.publish(m).await;
    tokio::time::sleep(Duration::from_secs(25)).await;
    let (mut s, _) = Client::pipe(&b, V5).handshake(c).await;
    let got = s.recv_publish().await;
    // [MQTT-3.3.2-6] 60 - 25 = 35 s left; [MQTT-3.3.2-5] the 10 s one expired offline.
    assert_eq!(&got.payload[..], b"60s");
    assert_eq!(got.properties.message_expiry_interval, Some(35));
    s.ack(&got).await;
    assert!(s.recv_within(Duration::from_secs(1)).await.is_none());
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn server_keep_alive_is_enforced() {
    let b = start_with(|c| {
        c.listeners.clear();
        c.limits.server_keep_alive = Some(4);
    })
    .await;
    // The client asks for no keep alive at all; the server imposes 4 s.
    let (mut c, ack) = Client::pipe(&b, V5)
        .handshake(connect_packet(V5, "ska", true))
        .await;
    assert_eq!(ack.properties.server_keep_alive, Some(4));
    let start = Instant::now();
    let got = c.expect_closed_within(HOUR).await;
    assert_eq!(start.elapsed(), Duration::from_secs(6));
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::KEEP_ALIVE_TIMEOUT)
    );
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn keep_alive_ceiling_caps_only_larger_or_zero_requests() {
    let b = start_with(|c| {
        c.listeners.clear();
        c.limits.max_keep_alive = Some(10);
    })
    .await;
    // [MQTT-3.2.2-22] under the ceiling: no Server Keep Alive, the client's 2 s holds.
    let mut low = connect_packet(V5, "low", true);
    low.keep_alive = 2;
    let (mut c, ack) = Client::pipe(&b, V5).handshake(low).await;
    assert_eq!(ack.properties.server_keep_alive, None);
    let start = Instant::now();
    c.expect_closed_within(HOUR).await;
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    // Above the ceiling, and 0 (none): Server Keep Alive 10, enforced ([MQTT-3.2.2-21]).
    for (id, asked) in [("high", 60), ("zero", 0)] {
        let mut p = connect_packet(V5, id, true);
        p.keep_alive = asked;
        let (mut c, ack) = Client::pipe(&b, V5).handshake(p).await;
        assert_eq!(ack.properties.server_keep_alive, Some(10), "asked {asked}");
        let start = Instant::now();
        c.expect_closed_within(HOUR).await;
        assert_eq!(start.elapsed(), Duration::from_secs(15), "asked {asked}");
    }
    // 3.1.1 has no Server Keep Alive: the client's value holds.
    let mut v4 = connect_packet(V4, "v4", true);
    v4.keep_alive = 20;
    let (mut c, _) = Client::pipe(&b, V4).handshake(v4).await;
    let start = Instant::now();
    c.expect_closed_within(HOUR).await;
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn will_published_after_protocol_error() {
    let b = broker().await;
    let mut w = connect(&b, connect_packet(V5, "watch", true)).await;
    w.subscribe("will/#", QoS::AtMostOnce).await;
    let mut c = connect(&b, with_will("rude", 0, 0)).await;
    // A second CONNECT is a protocol error: DISCONNECT 0x82, close, will published.
    c.send(Packet::Connect(Box::new(connect_packet(V5, "rude", true))))
        .await;
    let got = c.expect_closed().await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR)
    );
    assert_eq!(w.recv_publish().await.topic, "will/rude");
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn client_that_stops_reading_is_dropped_after_write_timeout() {
    let b = broker().await;
    let mut w = connect(&b, connect_packet(V5, "watch", true)).await;
    w.subscribe("will/#", QoS::AtMostOnce).await;
    let mut stuck = connect(&b, with_will("stuck", 0, 0)).await;
    stuck.subscribe("flood", QoS::AtMostOnce).await;
    let mut p = connect(&b, connect_packet(V5, "p", true)).await;
    static CHUNK: [u8; 8 * 1024] = [1u8; 8 * 1024];
    let start = Instant::now();
    // More than the 64 KiB pipe holds: the broker's write to "stuck" blocks.
    for _ in 0..32 {
        p.publish(publish_packet("flood", &CHUNK, QoS::AtMostOnce, 0))
            .await;
    }
    let got = w.recv_within(HOUR).await;
    assert!(matches!(got, Some(Packet::Publish(m)) if m.topic == "will/stuck"));
    // Default write timeout: 60 s without progress.
    assert_eq!(start.elapsed().as_secs(), 60);
    b.shutdown().await;
}

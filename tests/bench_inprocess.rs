//! Short bench runs against the in-process reference broker (exact counts, no timing
//! assertions), and against a black-hole broker to show that losses are detected.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::BytesMut;
use mqtt_conformance::bench::{run, BenchArgs, BenchReport, Pattern};
use reference_broker::codec::{
    encode, ConnAck, Decoder, Packet, ProtocolVersion, PubResponse, ReasonCode, SubAck,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const LIMIT: Duration = Duration::from_secs(60);

async fn bench(args: BenchArgs) -> BenchReport {
    let args = BenchArgs {
        no_progress: true,
        ..args
    };
    tokio::time::timeout(LIMIT, run(args))
        .await
        .expect("bench run timed out")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_fan_in_delivers_every_message_once_to_every_subscriber() {
    let r = bench(BenchArgs {
        pubs: 2,
        subs: 2,
        count: Some(200),
        qos: vec![1],
        ..BenchArgs::default()
    })
    .await;
    assert_eq!(r.sent, 200);
    // Fan-in: every subscriber hears every publisher.
    assert_eq!(r.expected, 400);
    assert_eq!(r.received, r.expected);
    assert_eq!(r.lost, 0);
    assert_eq!(r.duplicated, 0);
    assert_eq!(r.foreign, 0);
    assert_eq!(r.per_qos.len(), 1);
    assert_eq!(r.per_qos[0].qos, 1);
    assert!(r.p50_us <= r.p99_us && r.p99_us <= r.max_us);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_pairwise_sent_equals_received() {
    let r = bench(BenchArgs {
        pubs: 2,
        subs: 2,
        count: Some(200),
        qos: vec![1],
        pattern: Pattern::Pairwise,
        ..BenchArgs::default()
    })
    .await;
    assert_eq!(r.sent, 200);
    assert_eq!(r.received, 200);
    assert_eq!(r.lost, 0);
    assert_eq!(r.duplicated, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_qos_fan_out_is_counted_per_qos_over_mqtt_3_1_1() {
    let r = bench(BenchArgs {
        pubs: 3,
        subs: 3,
        count: Some(300),
        qos: vec![0, 1, 2],
        pattern: Pattern::FanOut,
        protocol: ProtocolVersion::V3_1_1,
        inflight: 8,
        ..BenchArgs::default()
    })
    .await;
    assert_eq!(r.sent, 300);
    let by_qos: Vec<(u8, u64, u64, u64)> = r
        .per_qos
        .iter()
        .map(|l| (l.qos, l.sent, l.expected, l.lost + l.duplicated))
        .collect();
    assert_eq!(
        by_qos,
        vec![(0, 100, 300, 0), (1, 100, 300, 0), (2, 100, 300, 0)]
    );
    assert_eq!(r.received, 900);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_held_and_memory_is_sampled() {
    let r = bench(BenchArgs {
        pubs: 1,
        subs: 1,
        idle: 100,
        count: Some(50),
        qos: vec![1],
        ..BenchArgs::default()
    })
    .await;
    assert_eq!(r.idle, 100);
    assert_eq!(r.received, 50);
    assert!(r.rss_max_kib.unwrap() > 0);
    assert!(r.rss_connected_kib.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_at_a_steady_rate_loses_nothing() {
    let r = bench(BenchArgs {
        pubs: 2,
        subs: 1,
        qos: vec![1, 2],
        rate: 200.0,
        soak: Some(Duration::from_millis(500)),
        sample_every: Duration::from_millis(100),
        ..BenchArgs::default()
    })
    .await;
    assert!(r.sent > 0);
    assert_eq!(r.lost, 0);
    assert_eq!(r.soak_passed, Some(true));
    assert!(!r.rss.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_has_the_agreed_fields() {
    let r = bench(BenchArgs {
        count: Some(10),
        ..BenchArgs::default()
    })
    .await;
    let mut out = Vec::new();
    r.write_json(&mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    for key in [
        "sent",
        "received",
        "lost",
        "duplicated",
        "msgs_per_sec",
        "p50_us",
        "p99_us",
        "max_us",
        "connect_ms",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["sent"], 10);
    let mut table = Vec::new();
    r.write_table(&mut table).unwrap();
    assert!(String::from_utf8(table).unwrap().contains("lost"));
}

/// A broker that acknowledges everything and delivers nothing.
async fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                let mut dec = Decoder::new(1 << 20);
                let mut version = ProtocolVersion::V5;
                loop {
                    while let Ok(Some(p)) = dec.decode(&mut buf) {
                        let reply = match p {
                            Packet::Connect(c) => {
                                version = c.protocol;
                                Some(Packet::ConnAck(ConnAck::default()))
                            }
                            Packet::Subscribe(s) => Some(Packet::SubAck(SubAck {
                                packet_id: s.packet_id,
                                properties: Default::default(),
                                reason_codes: vec![ReasonCode(1); s.subscriptions.len()],
                            })),
                            Packet::Publish(p) if p.packet_id != 0 => {
                                Some(Packet::PubAck(PubResponse {
                                    packet_id: p.packet_id,
                                    ..Default::default()
                                }))
                            }
                            Packet::Disconnect(_) => return,
                            _ => None,
                        };
                        if let Some(reply) = reply {
                            let mut out = BytesMut::new();
                            encode(&reply, version, &mut out).unwrap();
                            if sock.write_all(&out).await.is_err() {
                                return;
                            }
                        }
                    }
                    match sock.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    format!("mqtt://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_drops_messages_fails_the_soak() {
    let url = black_hole().await;
    let r = bench(BenchArgs {
        broker: Some(url),
        pubs: 1,
        subs: 2,
        qos: vec![1],
        rate: 200.0,
        soak: Some(Duration::from_millis(300)),
        drain: Duration::from_millis(200),
        ..BenchArgs::default()
    })
    .await;
    assert!(r.sent > 0);
    assert_eq!(r.received, 0);
    assert_eq!(r.lost, 2 * r.sent);
    assert_eq!(r.soak_passed, Some(false));
}

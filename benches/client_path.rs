//! Which connection path can the load generator use without being the bottleneck? The same
//! workload (1 publisher, 1 subscriber, in-process reference broker) driven by the reference
//! `Client` (full state machine, tracing off) and by the bench's lean path (socket + codec).
//!
//! Run: `cargo bench -p mqtt-conformance --bench client_path` (env `CLIENT_PATH_N`, default
//! 50000 messages per QoS).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqtt_conformance::bench::{run, BenchArgs};
use reference_broker::broker::{Broker, BrokerConfig};
use reference_broker::client::{Client, ConnectOptions};
use reference_broker::codec::{ProtocolVersion, Publish, QoS};

const WINDOW: usize = 20;

async fn reference_client(url: &str, qos: QoS, n: u64) -> f64 {
    let options = |id: &str| ConnectOptions::new(id).version(ProtocolVersion::V5);
    let mut sub = Client::connect(url, options("path-sub")).await.unwrap();
    sub.set_tracing(false);
    sub.subscribe("path/ref", qos).await.unwrap();
    let mut publisher = Client::connect(url, options("path-pub")).await.unwrap();
    publisher.set_tracing(false);
    let receiver = tokio::spawn(async move {
        for _ in 0..n {
            sub.recv_message(Duration::from_secs(10)).await.unwrap();
        }
        Instant::now()
    });
    let start = Instant::now();
    let mut in_flight = 0;
    for i in 0..n {
        let publish = Publish {
            dup: false,
            qos,
            retain: false,
            topic: "path/ref".into(),
            packet_id: 0,
            properties: Default::default(),
            payload: Bytes::from(vec![(i % 251) as u8; 64]),
        };
        publisher.start_publish(publish).await.unwrap();
        if qos != QoS::AtMostOnce {
            in_flight += 1;
            if in_flight >= WINDOW {
                publisher
                    .wait_published(None, Duration::from_secs(10))
                    .await
                    .unwrap();
                in_flight -= 1;
            }
        }
    }
    for _ in 0..in_flight {
        publisher
            .wait_published(None, Duration::from_secs(10))
            .await
            .unwrap();
    }
    let end = tokio::time::timeout(Duration::from_secs(60), receiver)
        .await
        .unwrap()
        .unwrap();
    n as f64 / end.duration_since(start).as_secs_f64()
}

async fn lean(url: &str, qos: QoS, n: u64) -> f64 {
    let r = run(BenchArgs {
        broker: Some(url.to_string()),
        pubs: 1,
        subs: 1,
        count: Some(n),
        qos: vec![qos.as_u8()],
        inflight: WINDOW as u16,
        protocol: ProtocolVersion::V5,
        no_progress: true,
        ..BenchArgs::default()
    })
    .await
    .unwrap();
    assert_eq!(r.lost, 0);
    r.msgs_per_sec
}

fn main() {
    let n: u64 = std::env::var("CLIENT_PATH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let broker = Broker::bind(BrokerConfig::default_tcp(SocketAddr::from((
            [127, 0, 0, 1],
            0,
        ))))
        .await
        .unwrap();
        let url = format!("mqtt://{}", broker.tcp_addr().unwrap());
        println!("{n} messages of 64 B, 1 publisher -> 1 subscriber, in-process broker");
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            let r = reference_client(&url, qos, n).await;
            let l = lean(&url, qos, n).await;
            println!(
                "QoS {}: reference client {:>9.0} msg/s, lean path {:>9.0} msg/s ({:.2}x)",
                qos.as_u8(),
                r,
                l,
                l / r
            );
        }
        broker.shutdown().await;
    });
}

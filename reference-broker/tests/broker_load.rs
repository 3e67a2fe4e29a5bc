//! Load: 1,000 concurrent clients (half 3.1.1, half 5) publish QoS 1 and QoS 2 messages around a
//! ring and receive one broadcast each; every message must arrive exactly once.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reference_broker::codec::*;
use support::*;
use tokio::sync::Barrier;

const CLIENTS: usize = 1000;
const PER_CLIENT: u16 = 5;

async fn run_client(
    addr: std::net::SocketAddr,
    i: usize,
    barrier: Arc<Barrier>,
) -> HashSet<String> {
    let version = if i % 2 == 0 { V4 } else { V5 };
    let (mut c, _) = Client::connect(addr, version, &format!("load-{i}"), true).await;
    c.send(Packet::Subscribe(Subscribe {
        packet_id: 1,
        properties: Default::default(),
        subscriptions: vec![
            Subscription {
                filter: format!("load/{i}"),
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    ..Default::default()
                },
            },
            Subscription {
                filter: "all/#".into(),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    ..Default::default()
                },
            },
        ],
    }))
    .await;
    assert!(
        matches!(c.recv().await, Packet::SubAck(s) if s.reason_codes.iter().all(|r| r.is_success()))
    );
    barrier.wait().await;
    let target = (i + 1) % CLIENTS;
    let mut pending: HashMap<u16, QoS> = HashMap::new();
    for seq in 0..PER_CLIENT {
        let qos = if seq % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        let id = seq + 1;
        pending.insert(id, qos);
        c.send(Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: format!("load/{target}").into(),
            packet_id: id,
            properties: Default::default(),
            payload: Bytes::from(format!("{i}:{seq}")),
        }))
        .await;
    }
    if i == 0 {
        pending.insert(100, QoS::AtLeastOnce);
        c.send(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "all/broadcast".into(),
            packet_id: 100,
            properties: Default::default(),
            payload: Bytes::from_static(b"broadcast"),
        }))
        .await;
    }
    let mut received = HashSet::new();
    let mut duplicates = 0;
    let mut open_qos2: HashSet<u16> = HashSet::new();
    let expected = usize::from(PER_CLIENT) + 1;
    while !(pending.is_empty() && received.len() + duplicates >= expected && open_qos2.is_empty()) {
        match c.recv().await {
            Packet::Publish(p) => {
                if !received.insert(String::from_utf8(p.payload.to_vec()).unwrap()) {
                    duplicates += 1;
                }
                let r = PubResponse {
                    packet_id: p.packet_id,
                    ..Default::default()
                };
                match p.qos {
                    QoS::AtMostOnce => {}
                    QoS::AtLeastOnce => c.send(Packet::PubAck(r)).await,
                    QoS::ExactlyOnce => {
                        open_qos2.insert(p.packet_id);
                        c.send(Packet::PubRec(r)).await;
                    }
                }
            }
            Packet::PubRel(r) => {
                assert!(open_qos2.remove(&r.packet_id));
                c.send(Packet::PubComp(r)).await;
            }
            Packet::PubAck(a) => assert_eq!(pending.remove(&a.packet_id), Some(QoS::AtLeastOnce)),
            Packet::PubRec(r) => {
                assert_eq!(pending.get(&r.packet_id), Some(&QoS::ExactlyOnce));
                c.send(Packet::PubRel(PubResponse {
                    packet_id: r.packet_id,
                    ..Default::default()
                }))
                .await;
            }
            Packet::PubComp(r) => assert_eq!(pending.remove(&r.packet_id), Some(QoS::ExactlyOnce)),
            other => panic!("client {i}: unexpected {other:?}"),
        }
    }
    assert_eq!(duplicates, 0, "client {i} got duplicates");
    c.disconnect().await;
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_clients_no_lost_qos1_qos2_message() {
    let broker = start().await;
    let addr = broker.tcp_addr().unwrap();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| tokio::spawn(run_client(addr, i, Arc::clone(&barrier))))
        .collect();
    let results = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(tasks))
        .await
        .expect("load test finished in time");
    for (i, r) in results.into_iter().enumerate() {
        let got = r.unwrap();
        let from = (i + CLIENTS - 1) % CLIENTS;
        let mut expected: HashSet<String> =
            (0..PER_CLIENT).map(|seq| format!("{from}:{seq}")).collect();
        expected.insert("broadcast".into());
        assert_eq!(got, expected, "client {i}");
    }
    let elapsed = started.elapsed();
    println!(
        "{CLIENTS} clients, {} messages delivered in {elapsed:?}",
        CLIENTS * (usize::from(PER_CLIENT) + 1)
    );
    let stats = broker.stats();
    assert_eq!(stats.dropped_full, 0);
    broker.shutdown().await;
}

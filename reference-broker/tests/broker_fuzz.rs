//! Robustness: at least 100,000 random and mutated frames from a seeded generator thrown at a
//! running broker over many connections, then a normal client must still be served, no
//! connection task may have panicked and every fuzz connection must be gone.
//!
//! Set `FUZZ_SEED` to replay a run; the seed in use is printed.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use reference_broker::codec::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FRAMES: usize = 100_000;
const WORKERS: usize = 8;

static PANICS: AtomicUsize = AtomicUsize::new(0);

const TOPICS: &[&str] = &["f/a", "f/b/c", "f", "$SYS/x", "f/b", "other/1/2/3", "f//x"];
const FILTERS: &[&str] = &[
    "f/#",
    "+/+",
    "#",
    "f/a",
    "$share/g/f/+",
    "$share/h/#",
    "f/+/c",
    "$SYS/#",
    "other/+/2/#",
];

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn qos(rng: &mut StdRng) -> QoS {
    QoS::from_u8(rng.random_range(0..3u8)).unwrap()
}

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let len = rng.random_range(0..=max);
    (0..len).map(|_| rng.random::<u8>()).collect()
}

fn random_props(rng: &mut StdRng, v5: bool) -> Properties {
    let mut p = Properties::default();
    if !v5 {
        return p;
    }
    if rng.random_bool(0.2) {
        p.message_expiry_interval = Some(rng.random_range(0..5));
    }
    if rng.random_bool(0.2) {
        p.topic_alias = Some(rng.random_range(1..=10));
    }
    if rng.random_bool(0.2) {
        p.user_properties.push(("k".into(), "v".into()));
    }
    if rng.random_bool(0.1) {
        p.payload_format_indicator = Some(1);
    }
    p
}

fn connect(rng: &mut StdRng, worker: usize, version: ProtocolVersion) -> Connect {
    let mut c = connect_packet(
        version,
        &format!("fz-{worker}-{}", rng.random_range(0..4)),
        rng.random_bool(0.7),
    );
    c.keep_alive = rng.random_range(0..120);
    if rng.random_bool(0.3) {
        c.will = Some(Will {
            topic: pick(rng, TOPICS).replace('$', "d"),
            payload: Bytes::from(random_bytes(rng, 16)),
            qos: qos(rng),
            retain: rng.random_bool(0.3),
            properties: Default::default(),
        });
    }
    if version.is_v5() && rng.random_bool(0.3) {
        c.properties.session_expiry_interval = Some(rng.random_range(0..10));
        c.properties.receive_maximum = Some(rng.random_range(1..20));
        c.properties.topic_alias_maximum = Some(rng.random_range(0..5));
    }
    c
}

/// A valid packet, though not necessarily a sensible one at this point of the session.
fn valid_packet(rng: &mut StdRng, worker: usize, version: ProtocolVersion) -> Packet {
    let v5 = version.is_v5();
    let id = rng.random_range(1..=20u16);
    let resp = |rng: &mut StdRng| PubResponse {
        packet_id: id,
        reason: if v5 && rng.random_bool(0.2) {
            ReasonCode(0x80)
        } else {
            ReasonCode::SUCCESS
        },
        properties: Default::default(),
    };
    match rng.random_range(0..100) {
        0..=44 => {
            let q = qos(rng);
            let props = random_props(rng, v5);
            Packet::Publish(Publish {
                dup: q != QoS::AtMostOnce && rng.random_bool(0.2),
                qos: q,
                retain: rng.random_bool(0.2),
                topic: if rng.random_bool(0.02) {
                    // Deep topics: the broker must refuse them without risking its stack.
                    ("d/".repeat(rng.random_range(150..400)) + "x").into()
                } else {
                    pick(rng, TOPICS).into()
                },
                packet_id: if q == QoS::AtMostOnce { 0 } else { id },
                properties: props.into(),
                payload: Bytes::from(random_bytes(rng, 48)),
            })
        }
        45..=59 => {
            let deep = "d/".repeat(rng.random_range(150..400)) + "#";
            let filter = if rng.random_bool(0.02) {
                deep.as_str()
            } else {
                pick(rng, FILTERS)
            };
            let mut s = subscribe_packet(id, filter, qos(rng));
            let o = &mut s.subscriptions[0].options;
            if v5 {
                o.no_local = rng.random_bool(0.2);
                o.retain_as_published = rng.random_bool(0.3);
                o.retain_handling = match rng.random_range(0..3) {
                    0 => RetainHandling::SendAtSubscribe,
                    1 => RetainHandling::SendIfNew,
                    _ => RetainHandling::DoNotSend,
                };
                if rng.random_bool(0.3) {
                    s.properties
                        .subscription_identifiers
                        .push(rng.random_range(1..100));
                }
            }
            Packet::Subscribe(s)
        }
        60..=66 => Packet::Unsubscribe(Unsubscribe {
            packet_id: id,
            properties: Default::default(),
            filters: vec![pick(rng, FILTERS).into()],
        }),
        67..=71 => Packet::PubAck(resp(rng)),
        72..=76 => Packet::PubRec(resp(rng)),
        77..=81 => Packet::PubRel(PubResponse {
            packet_id: id,
            ..Default::default()
        }),
        82..=86 => Packet::PubComp(resp(rng)),
        87..=94 => Packet::PingReq,
        95 => Packet::Connect(Box::new(connect(rng, worker, version))),
        96 => Packet::Disconnect(Disconnect {
            reason: if v5 && rng.random_bool(0.5) {
                ReasonCode::DISCONNECT_WITH_WILL_MESSAGE
            } else {
                ReasonCode::SUCCESS
            },
            properties: Default::default(),
        }),
        97 if v5 => Packet::Auth(Auth {
            reason: ReasonCode::CONTINUE_AUTHENTICATION,
            properties: Properties {
                authentication_method: Some("challenge".into()),
                ..Default::default()
            }
            .into(),
        }),
        98 => Packet::PingResp,
        _ => Packet::SubAck(SubAck {
            packet_id: id,
            properties: Default::default(),
            reason_codes: vec![ReasonCode::SUCCESS],
        }),
    }
}

fn encode_packet(p: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(p, version, &mut out).unwrap();
    out.to_vec()
}

fn mutate(rng: &mut StdRng, mut frame: Vec<u8>) -> Vec<u8> {
    match rng.random_range(0..9) {
        0 if !frame.is_empty() => {
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..frame.len());
                frame[i] ^= 1 << rng.random_range(0..8);
            }
        }
        1 if !frame.is_empty() => {
            let i = rng.random_range(0..frame.len());
            frame[i] = rng.random();
        }
        2 if frame.len() > 1 => frame.truncate(rng.random_range(1..frame.len())),
        3 => frame.extend(random_bytes(rng, 16)),
        4 if frame.len() > 1 => {
            // Rewrite the remaining length with a random variable byte integer.
            let mut vbi = random_bytes(rng, 4);
            if vbi.is_empty() {
                vbi.push(0);
            }
            frame.splice(1..2, vbi);
        }
        5 if !frame.is_empty() => {
            let i = rng.random_range(0..frame.len());
            frame.insert(i, rng.random());
        }
        6 => {
            // First byte: any packet type with any flags.
            if let Some(b) = frame.first_mut() {
                *b = rng.random();
            }
        }
        7 => frame = vec![rng.random(), 0xFF, 0xFF, 0xFF, 0x7F],
        _ => frame = random_bytes(rng, 64),
    }
    frame
}

/// One fuzz connection; returns the number of frames written before the broker closed it.
async fn one_connection(
    rng: &mut StdRng,
    addr: std::net::SocketAddr,
    worker: usize,
    budget: usize,
) -> usize {
    let version = if rng.random_bool(0.5) { V5 } else { V4 };
    let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let closed = Arc::new(AtomicBool::new(false));
    let reader = {
        let closed = Arc::clone(&closed);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match tokio::time::timeout(Duration::from_secs(30), rd.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(_)) => {}
                }
            }
            closed.store(true, Ordering::SeqCst);
        })
    };
    let mut frames = Vec::new();
    let first = encode_packet(
        &Packet::Connect(Box::new(connect(rng, worker, version))),
        version,
    );
    frames.push(if rng.random_bool(0.1) {
        mutate(rng, first)
    } else {
        first
    });
    let per_conn = rng.random_range(1..300).min(budget);
    for _ in 1..per_conn {
        let frame = encode_packet(&valid_packet(rng, worker, version), version);
        frames.push(if rng.random_bool(0.25) {
            mutate(rng, frame)
        } else {
            frame
        });
    }
    let mut sent = 0;
    for batch in frames.chunks(8) {
        if closed.load(Ordering::SeqCst) {
            break;
        }
        let bytes: Vec<u8> = batch.concat();
        match tokio::time::timeout(WAIT, wr.write_all(&bytes)).await {
            Ok(Ok(())) => sent += batch.len(),
            Ok(Err(_)) => break,
            Err(_) => panic!("broker stopped reading: write blocked for {WAIT:?}"),
        }
    }
    drop(wr);
    tokio::time::timeout(Duration::from_secs(35), reader)
        .await
        .unwrap()
        .unwrap();
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_100k_random_and_mutated_frames() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_2026);
    println!("FUZZ_SEED={seed}");
    let broker = start_with(|c| {
        c.limits.max_packet_size = 64 * 1024;
        c.limits.connect_timeout_secs = 2;
    })
    .await;
    let addr = broker.tcp_addr().unwrap();
    let total = Arc::new(AtomicUsize::new(0));
    let connections = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let total = Arc::clone(&total);
        let connections = Arc::clone(&connections);
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(worker as u64));
            while total.load(Ordering::SeqCst) < FRAMES {
                let budget = FRAMES.saturating_sub(total.load(Ordering::SeqCst)).max(1);
                let sent = one_connection(&mut rng, addr, worker, budget).await;
                total.fetch_add(sent.max(1), Ordering::SeqCst);
                connections.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    tokio::time::timeout(Duration::from_secs(240), futures::future::join_all(tasks))
        .await
        .expect("fuzz run finished in time")
        .into_iter()
        .for_each(|r| r.unwrap());
    let total = total.load(Ordering::SeqCst);
    println!(
        "{total} frames over {} connections",
        connections.load(Ordering::SeqCst)
    );
    assert!(total >= FRAMES);

    // A normal client is still served.
    let (mut sub, _) = Client::connect(addr, V5, "after-sub", true).await;
    sub.subscribe("after/t", QoS::ExactlyOnce).await;
    let (mut publ, _) = Client::connect(addr, V4, "after-pub", true).await;
    publ.publish(publish_packet(
        "after/t",
        b"still alive",
        QoS::ExactlyOnce,
        1,
    ))
    .await;
    let got = sub.recv_publish().await;
    assert_eq!(&got.payload[..], b"still alive");
    sub.ack(&got).await;
    sub.disconnect().await;
    publ.disconnect().await;

    // Every fuzz connection has been cleaned up (bounded wait).
    tokio::time::timeout(WAIT, broker.until_no_clients())
        .await
        .expect("connections leaked");
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a task panicked");
    broker.shutdown().await;
}

//! Each toxic's effect on live connections, through the embedded engine.
#![allow(clippy::unwrap_used)]

mod fault_common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fault_common::*;
use mqtt_conformance::fault::{EmbeddedInjector, FaultInjector, Stream, Toxic, ToxicKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

async fn proxy_to_echo() -> (EmbeddedInjector, SocketAddr) {
    let faults = EmbeddedInjector::new();
    let listen = faults.create_proxy("p", echo_server().await).await.unwrap();
    (faults, listen)
}

async fn add(faults: &EmbeddedInjector, kind: ToxicKind, stream: Stream) {
    faults
        .add_toxic("p", &Toxic::new(kind, stream))
        .await
        .unwrap();
}

#[tokio::test]
async fn removing_latency_delivers_the_bytes_it_held() {
    let (faults, listen) = proxy_to_echo().await;
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"warm").await;
    let latency = ToxicKind::Latency {
        latency: 3000,
        jitter: 0,
    };
    add(&faults, latency, Stream::Downstream).await;
    let sent = Instant::now();
    stream.write_all(b"in flight").await.unwrap();
    assert_silent(&mut stream, Duration::from_millis(100)).await;
    faults.heal("p").await.unwrap();
    assert_eq!(read_n(&mut stream, 9).await, b"in flight");
    assert!(sent.elapsed() < Duration::from_millis(3000));
}

#[tokio::test]
async fn latency_with_jitter_stays_within_bounds() {
    let (faults, listen) = proxy_to_echo().await;
    let mut stream = connect(listen).await;
    let latency = ToxicKind::Latency {
        latency: 200,
        jitter: 50,
    };
    add(&faults, latency, Stream::Upstream).await;
    let sent = Instant::now();
    assert_echo(&mut stream, b"jittery").await;
    let elapsed = sent.elapsed();
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
}

#[tokio::test]
async fn bandwidth_limits_the_rate_of_large_chunks() {
    let (faults, listen) = proxy_to_echo().await;
    let mut stream = connect(listen).await;
    add(
        &faults,
        ToxicKind::Bandwidth { rate: 10 },
        Stream::Downstream,
    )
    .await;
    // 5000 bytes at 10 KB/s: five 100 ms slices, the last one sent after 400 ms.
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 256) as u8).collect();
    let sent = Instant::now();
    assert_echo(&mut stream, &data).await;
    let elapsed = sent.elapsed();
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
}

#[tokio::test]
async fn timeout_closes_the_connection_after_its_delay() {
    let (faults, listen) = proxy_to_echo().await;
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"up").await;
    let added = Instant::now();
    add(
        &faults,
        ToxicKind::Timeout { timeout: 300 },
        Stream::Upstream,
    )
    .await;
    stream.write_all(b"dropped").await.unwrap();
    let (received, ended) = read_to_end(&mut stream).await;
    assert!(received.is_empty(), "{received:?}");
    ended.unwrap();
    assert!(added.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn slow_close_delays_the_end_of_the_stream() {
    let (faults, listen) = proxy_to_echo().await;
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"up").await;
    add(
        &faults,
        ToxicKind::SlowClose { delay: 300 },
        Stream::Downstream,
    )
    .await;
    let closed = Instant::now();
    // The echo server ends its side when ours ends.
    stream.shutdown().await.unwrap();
    let (received, ended) = read_to_end(&mut stream).await;
    assert!(received.is_empty());
    ended.unwrap();
    assert!(closed.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn toxicity_zero_never_applies() {
    let (faults, listen) = proxy_to_echo().await;
    let never =
        Toxic::new(ToxicKind::LimitData { bytes: 1 }, Stream::Downstream).with_toxicity(0.0);
    faults.add_toxic("p", &never).await.unwrap();
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, &[42u8; 100]).await;
}

#[tokio::test]
async fn upstream_limit_data_cuts_mid_packet() {
    // An upstream that reports everything it received before the end.
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = server.local_addr().unwrap();
    let (report, received) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = server.accept().await.unwrap();
        let mut data = Vec::new();
        let _ = socket.read_to_end(&mut data).await;
        let _ = report.send(data);
    });
    let faults = EmbeddedInjector::new();
    let listen = faults.create_proxy("p", upstream).await.unwrap();
    add(&faults, ToxicKind::LimitData { bytes: 5 }, Stream::Upstream).await;
    let mut stream = connect(listen).await;
    // A PUBLISH cut after 5 of its bytes.
    stream
        .write_all(&[
            0x30, 0x0a, 0x00, 0x03, b'a', b'/', b'b', b'h', b'e', b'y', b'!', b'!',
        ])
        .await
        .unwrap();
    let data = tokio::time::timeout(PATIENCE, received)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data, [0x30, 0x0a, 0x00, 0x03, b'a']);
    let (_, ended) = read_to_end(&mut stream).await;
    ended.unwrap();
}

#[tokio::test]
async fn a_downstream_blackhole_leaves_upstream_data_flowing() {
    // An upstream that reports the first 5 bytes it receives, then answers.
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = server.local_addr().unwrap();
    let (report, received) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = server.accept().await.unwrap();
        let mut data = [0u8; 5];
        socket.read_exact(&mut data).await.unwrap();
        let _ = report.send(data);
        socket.write_all(b"answer").await.unwrap();
        // Hold the socket open until the client goes.
        let _ = socket.read_to_end(&mut Vec::new()).await;
    });
    let faults = EmbeddedInjector::new();
    let listen = faults.create_proxy("p", upstream).await.unwrap();
    add(&faults, ToxicKind::blackhole(), Stream::Downstream).await;
    let mut stream = connect(listen).await;
    stream.write_all(b"hello").await.unwrap();
    let data = tokio::time::timeout(PATIENCE, received)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&data, b"hello");
    assert_silent(&mut stream, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_slow_link_pushes_back_on_the_sender() {
    // An upstream that tries to send 24 MiB at once and reports whether it managed.
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = server.local_addr().unwrap();
    let (report, finished) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = server.accept().await.unwrap();
        let data = vec![7u8; 24 << 20];
        let wrote = tokio::time::timeout(Duration::from_millis(500), socket.write_all(&data)).await;
        let _ = report.send(wrote.is_ok());
    });
    let faults = EmbeddedInjector::new();
    let listen = faults.create_proxy("p", upstream).await.unwrap();
    add(
        &faults,
        ToxicKind::Bandwidth { rate: 1 },
        Stream::Downstream,
    )
    .await;
    let _client = connect(listen).await;
    let finished = tokio::time::timeout(PATIENCE, finished)
        .await
        .unwrap()
        .unwrap();
    // The proxy reads ahead a bounded amount (256 KiB), far less than 24 MiB plus what the
    // kernel buffers: the sender must still be blocked.
    assert!(!finished, "the proxy swallowed 24 MiB behind a 1 KB/s link");
}

#[tokio::test]
async fn extreme_attributes_hold_data_without_breaking_the_proxy() {
    let (faults, listen) = proxy_to_echo().await;
    let mut stream = connect(listen).await;
    let max = u64::MAX;
    for kind in [
        ToxicKind::Latency {
            latency: max,
            jitter: max,
        },
        ToxicKind::Bandwidth { rate: max },
        ToxicKind::Slicer {
            average_size: max,
            size_variation: max - 1,
            delay: 0,
        },
        ToxicKind::SlowClose { delay: max },
    ] {
        add(&faults, kind, Stream::Downstream).await;
    }
    add(
        &faults,
        ToxicKind::LimitData { bytes: max },
        Stream::Upstream,
    )
    .await;
    stream.write_all(b"held").await.unwrap();
    assert_silent(&mut stream, Duration::from_millis(100)).await;
    // A panic in the relay would have closed the connection; healing frees the held bytes.
    faults.heal("p").await.unwrap();
    assert_eq!(read_n(&mut stream, 4).await, b"held");
}

#[tokio::test]
async fn a_proxy_without_toxics_adds_little_to_a_round_trip() {
    let (_faults, listen) = proxy_to_echo().await;
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"warm").await;
    let started = Instant::now();
    for _ in 0..200 {
        assert_echo(&mut stream, b"ping").await;
    }
    // About 0.1 ms each here; a zero-length timer sleep per chunk once made it 3 ms.
    let average = started.elapsed() / 200;
    assert!(average < Duration::from_millis(2), "{average:?}");
}

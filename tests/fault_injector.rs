//! The `FaultInjector` trait, run identically on its two implementations: the in-process engine
//! and a Toxiproxy server reached over HTTP with `toxiproxy_rust` (here: the embedded API).
#![allow(clippy::unwrap_used)]

mod fault_common;

use std::time::{Duration, Instant};

use fault_common::*;
use mqtt_conformance::fault::{
    serve, EmbeddedInjector, FaultError, FaultInjector, ServerHandle, Stream, Toxic, ToxicKind,
    ToxiproxyInjector,
};
use tokio::io::AsyncWriteExt;

/// Both backends; the server handle keeps the HTTP one alive.
async fn backends() -> (Vec<(&'static str, Box<dyn FaultInjector>)>, ServerHandle) {
    let (api, server) = serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let backends: Vec<(&'static str, Box<dyn FaultInjector>)> = vec![
        ("embedded", Box::new(EmbeddedInjector::new())),
        ("toxiproxy", Box::new(ToxiproxyInjector::new(api))),
    ];
    (backends, server)
}

#[tokio::test]
async fn toxics_are_added_listed_removed_and_healed() {
    let (backends, _server) = backends().await;
    for (backend, faults) in backends {
        let echo = echo_server().await;
        let listen = faults.create_proxy("link", echo).await.unwrap();
        let mut stream = connect(listen).await;
        assert_echo(&mut stream, b"plain").await;

        let latency = Toxic::new(
            ToxicKind::Latency {
                latency: 200,
                jitter: 0,
            },
            Stream::Upstream,
        );
        let slicer = Toxic::new(
            ToxicKind::Slicer {
                average_size: 2,
                size_variation: 1,
                delay: 10,
            },
            Stream::Downstream,
        )
        .named("chop");
        faults.add_toxic("link", &latency).await.unwrap();
        faults.add_toxic("link", &slicer).await.unwrap();
        assert_eq!(
            faults.toxics("link").await.unwrap(),
            [latency.clone(), slicer.clone()],
            "{backend}"
        );
        let started = Instant::now();
        assert_echo(&mut stream, b"sliced and delayed").await;
        assert!(started.elapsed() >= Duration::from_millis(200), "{backend}");

        let duplicate = faults.add_toxic("link", &latency).await;
        assert!(
            matches!(duplicate, Err(FaultError::ToxicExists { .. })),
            "{backend}: {duplicate:?}"
        );

        faults
            .remove_toxic("link", "latency_upstream")
            .await
            .unwrap();
        assert_eq!(faults.toxics("link").await.unwrap(), [slicer], "{backend}");
        let missing = faults.remove_toxic("link", "latency_upstream").await;
        assert!(
            matches!(missing, Err(FaultError::ToxicNotFound { .. })),
            "{backend}: {missing:?}"
        );

        faults
            .add_toxic(
                "link",
                &Toxic::new(ToxicKind::LimitData { bytes: 1 }, Stream::Downstream),
            )
            .await
            .unwrap();
        faults.heal("link").await.unwrap();
        assert!(faults.toxics("link").await.unwrap().is_empty(), "{backend}");
        assert_echo(&mut stream, b"healed, nothing limited").await;

        faults.delete_proxy("link").await.unwrap();
        let gone = faults.toxics("link").await;
        assert!(
            matches!(gone, Err(FaultError::ProxyNotFound(_))),
            "{backend}: {gone:?}"
        );
    }
}

#[tokio::test]
async fn blackhole_keeps_the_socket_open_and_passes_nothing() {
    let (backends, _server) = backends().await;
    for (backend, faults) in backends {
        let listen = faults
            .create_proxy("hole", echo_server().await)
            .await
            .unwrap();
        let mut stream = connect(listen).await;
        assert_echo(&mut stream, b"before").await;
        faults
            .add_toxic(
                "hole",
                &Toxic::new(ToxicKind::blackhole(), Stream::Downstream),
            )
            .await
            .unwrap();
        stream.write_all(b"into the void").await.unwrap();
        assert_silent(&mut stream, Duration::from_millis(300)).await;
        faults.heal("hole").await.unwrap();
        let (received, ended) = read_to_end(&mut stream).await;
        assert!(received.is_empty(), "{backend}: {received:?}");
        ended.unwrap();
        let mut stream = connect(listen).await;
        assert_echo(&mut stream, b"after").await;
        faults.delete_proxy("hole").await.unwrap();
    }
}

#[tokio::test]
async fn disabling_cuts_and_enabling_restores() {
    let (backends, _server) = backends().await;
    for (backend, faults) in backends {
        let listen = faults
            .create_proxy("cut", echo_server().await)
            .await
            .unwrap();
        let mut stream = connect(listen).await;
        assert_echo(&mut stream, b"up").await;
        faults.set_enabled("cut", false).await.unwrap();
        let (received, ended) = read_to_end(&mut stream).await;
        assert!(received.is_empty(), "{backend}");
        ended.unwrap();
        faults.set_enabled("cut", true).await.unwrap();
        let mut stream = connect(listen).await;
        assert_echo(&mut stream, b"up again").await;
        faults.delete_proxy("cut").await.unwrap();
    }
}

#[tokio::test]
async fn reset_peer_resets_after_the_delay() {
    let (backends, _server) = backends().await;
    for (backend, faults) in backends {
        let listen = faults
            .create_proxy("rst", echo_server().await)
            .await
            .unwrap();
        let mut stream = connect(listen).await;
        assert_echo(&mut stream, b"alive").await;
        let toxic = faults
            .reset_peer("rst", Stream::Upstream, Duration::from_millis(200))
            .await
            .unwrap();
        assert_eq!(toxic.name, "reset_peer_upstream");
        assert_eq!(faults.toxics("rst").await.unwrap(), [toxic], "{backend}");
        // Armed, but nothing happens until data flows on its stream.
        assert_silent(&mut stream, Duration::from_millis(100)).await;
        let started = Instant::now();
        stream.write_all(b"trigger").await.unwrap();
        assert_reset(&mut stream).await;
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(200),
            "{backend}: {elapsed:?}"
        );
        faults.delete_proxy("rst").await.unwrap();
    }
}

#[tokio::test]
async fn a_change_the_server_refuses_is_an_error() {
    let (api, _server) = serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let faults = ToxiproxyInjector::new(api);
    faults.create_proxy("p", echo_server().await).await.unwrap();
    // Passes the client-side checks, but the server refuses it (size_variation must be below
    // average_size); toxiproxy_rust ignores the 400, the read-back catches it.
    let bad = Toxic::new(
        ToxicKind::Slicer {
            average_size: 4,
            size_variation: 4,
            delay: 0,
        },
        Stream::Downstream,
    );
    let refused = faults.add_toxic("p", &bad).await;
    assert!(
        matches!(refused, Err(FaultError::Refused(_))),
        "{refused:?}"
    );
    assert!(faults.toxics("p").await.unwrap().is_empty());
    let missing = faults.set_enabled("nope", false).await;
    assert!(
        matches!(missing, Err(FaultError::ProxyNotFound(_))),
        "{missing:?}"
    );
}

#[tokio::test]
async fn an_unreachable_toxiproxy_is_an_error_not_a_panic() {
    // A port that was free a moment ago: nothing listens there.
    let api = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let faults = ToxiproxyInjector::new(api);
    let result = faults.create_proxy("p", api).await;
    assert!(
        matches!(result, Err(FaultError::Toxiproxy { .. })),
        "{result:?}"
    );
}

//! Scenario fault steps (`Fault`) applied through both injector backends.
#![allow(clippy::unwrap_used)]

mod fault_common;

use std::time::Duration;

use fault_common::*;
use mqtt_conformance::fault::{
    serve, Direction, EmbeddedInjector, Fault, FaultInjector, ServerHandle, Stream, ToxicKind,
    ToxiproxyInjector,
};
use tokio::io::AsyncWriteExt;

async fn backends() -> (Vec<Box<dyn FaultInjector>>, ServerHandle) {
    let (api, server) = serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let backends: Vec<Box<dyn FaultInjector>> = vec![
        Box::new(EmbeddedInjector::new()),
        Box::new(ToxiproxyInjector::new(api)),
    ];
    (backends, server)
}

#[tokio::test]
async fn cut_drops_the_link_and_the_client_may_reconnect() {
    let (backends, _server) = backends().await;
    for faults in backends {
        let listen = faults.create_proxy("c", echo_server().await).await.unwrap();
        let mut stream = connect(listen).await;
        assert_echo(&mut stream, b"hi").await;
        assert!(Fault::Cut.apply(&*faults, "c").await.unwrap().is_empty());
        let (_, ended) = read_to_end(&mut stream).await;
        ended.unwrap();
        let mut stream = connect(listen).await;
        assert_echo(&mut stream, b"again").await;
        faults.delete_proxy("c").await.unwrap();
    }
}

#[tokio::test]
async fn down_refuses_reconnections_until_heal() {
    let (backends, _server) = backends().await;
    for faults in backends {
        let listen = faults.create_proxy("d", echo_server().await).await.unwrap();
        let mut stream = connect(listen).await;
        assert_echo(&mut stream, b"hi").await;
        Fault::Down.apply(&*faults, "d").await.unwrap();
        let (_, ended) = read_to_end(&mut stream).await;
        ended.unwrap();
        assert!(tokio::net::TcpStream::connect(listen).await.is_err());
        Fault::Heal.apply(&*faults, "d").await.unwrap();
        let mut stream = connect(listen).await;
        assert_echo(&mut stream, b"back").await;
        faults.delete_proxy("d").await.unwrap();
    }
}

#[tokio::test]
async fn toxic_faults_act_on_their_directions_and_replace_their_kind() {
    let (backends, _server) = backends().await;
    for faults in backends {
        let listen = faults.create_proxy("t", echo_server().await).await.unwrap();
        let slow = Fault::Latency {
            delay: Duration::from_millis(500),
            jitter: Duration::ZERO,
            direction: Direction::Both,
        };
        let added = slow.apply(&*faults, "t").await.unwrap();
        let names: Vec<&str> = added.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["latency_upstream", "latency_downstream"]);
        let faster = Fault::Latency {
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(5),
            direction: Direction::Down,
        };
        faster.apply(&*faults, "t").await.unwrap();
        let toxics = faults.toxics("t").await.unwrap();
        assert_eq!(toxics.len(), 2);
        let down = toxics
            .iter()
            .find(|t| t.stream == Stream::Downstream)
            .unwrap();
        assert_eq!(
            down.kind,
            ToxicKind::Latency {
                latency: 20,
                jitter: 5
            }
        );

        let blackhole = Fault::Blackhole(Direction::Up);
        let added = blackhole.apply(&*faults, "t").await.unwrap();
        assert_eq!(added[0].name, "timeout_upstream");
        let mut stream = connect(listen).await;
        stream.write_all(b"swallowed").await.unwrap();
        assert_silent(&mut stream, Duration::from_millis(200)).await;
        Fault::Heal.apply(&*faults, "t").await.unwrap();
        assert!(faults.toxics("t").await.unwrap().is_empty());
        faults.delete_proxy("t").await.unwrap();
    }
}

#[tokio::test]
async fn reset_peer_step_resets_on_the_next_packet() {
    let (backends, _server) = backends().await;
    for faults in backends {
        let listen = faults.create_proxy("r", echo_server().await).await.unwrap();
        let mut stream = connect(listen).await;
        assert_echo(&mut stream, b"ok").await;
        let reset = Fault::ResetPeer {
            after: Duration::ZERO,
            direction: Direction::Up,
        };
        reset.apply(&*faults, "r").await.unwrap();
        stream.write_all(b"PUBLISH").await.unwrap();
        assert_reset(&mut stream).await;
        faults.delete_proxy("r").await.unwrap();
    }
}

#[test]
fn faults_read_well_in_traces() {
    let slicer = Fault::Slicer {
        average_size: 1,
        size_variation: 0,
        delay: Duration::from_micros(100),
        direction: Direction::Up,
    };
    assert_eq!(slicer.to_string(), "slicer 1±0 bytes every 100µs up");
    let bandwidth = Fault::Bandwidth {
        kb_per_s: 2,
        direction: Direction::Both,
    };
    assert_eq!(bandwidth.to_string(), "bandwidth 2 KB/s both ways");
    assert_eq!(Fault::Cut.to_string(), "cut");
}

//! Soak with network faults (`bench --soak --faults`) against the reference broker: a few
//! seconds of steady QoS 1 and QoS 2 load while cuts, resets, latency, bandwidth limits,
//! slicing, data limits and outages come and go on every client's link. The verdict is exact
//! (every message counted by sequence number); no timing is asserted.
//!
//! Its own test binary, and one soak at a time: the soak samples this process's memory, which
//! other tests running in parallel would disturb.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mqtt_conformance::bench::soak::schedule;
use mqtt_conformance::bench::{run, BenchArgs, BenchReport};
use reference_broker::broker::{Broker, BrokerConfig};

/// Bound on one soak run (3 s of load, then healing and draining).
const LIMIT: Duration = Duration::from_secs(90);

/// Two QoS 1 and QoS 2 publishers, two subscribers, 400 messages/s, 3 s, a fault change
/// every 150 ms.
fn args() -> BenchArgs {
    BenchArgs {
        pubs: 2,
        subs: 2,
        qos: vec![1, 2],
        rate: 400.0,
        soak: Some(Duration::from_secs(3)),
        faults: true,
        fault_every: Duration::from_millis(150),
        sample_every: Duration::from_millis(100),
        drain: Duration::from_secs(2),
        no_progress: true,
        ..BenchArgs::default()
    }
}

/// One soak at a time in this process.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn soak(args: BenchArgs) -> BenchReport {
    let _alone = SERIAL.lock().await;
    tokio::time::timeout(LIMIT, run(args))
        .await
        .expect("soak timed out")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_faults_loses_no_qos1_or_qos2_message() {
    let r = soak(args()).await;
    let faults = r.faults.clone().unwrap();
    // 3 s at two steps (fault, pause) of 150 ms: every kind of fault at least once.
    let kinds = schedule::rotation().len();
    assert_eq!(faults.applied.len(), kinds, "{:?}", faults.applied);
    assert_eq!(faults.errors, 0);
    assert!(faults.reconnects > 0, "links were cut: {faults:?}");
    assert!(
        faults.resent > 0,
        "a publisher's write was lost (reset_peer) and sent again: {faults:?}"
    );
    assert_eq!(faults.unacked, 0);
    assert!(r.sent > 0);
    assert_eq!(r.lost, 0, "{:?}", r.per_qos);
    assert_eq!(
        r.duplicated_qos2(),
        0,
        "QoS 2 exactly once: {:?}",
        r.per_qos
    );
    let memory = r.memory.clone().unwrap();
    assert!(memory.passed, "{memory:?}");
    assert_eq!(r.soak_passed, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_drops_offline_messages_fails_the_soak() {
    // One message per offline session: a subscriber taken down for a while loses messages,
    // as the specification allows a broker to; the soak must see it.
    let mut config = BrokerConfig::default_tcp("127.0.0.1:0".parse().unwrap());
    config.limits.max_queued_messages = 1;
    let broker = Broker::bind(config).await.unwrap();
    let url = format!("mqtt://{}", broker.tcp_addr().unwrap());
    let r = soak(BenchArgs {
        broker: Some(url),
        pubs: 1,
        subs: 1,
        qos: vec![1],
        ..args()
    })
    .await;
    assert!(broker.stats().dropped_offline > 0, "{:?}", broker.stats());
    assert!(r.lost > 0);
    assert_eq!(r.soak_passed, Some(false));
    broker.shutdown().await;
}

//! Run hygiene: a case that fails or runs out of time after publishing a retained message
//! leaves no retained message on the broker (the runner clears it over a fresh connection),
//! and the verdict is the case's own.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use mqtt_conformance::run::{self, CaseResult, RunConfig, Selection, Verdict};
use mqtt_conformance::suite;
use reference_broker::broker::{Broker, BrokerConfig};
use reference_broker::client::{Client, ConnectOptions, TransportOptions};
use reference_broker::codec::QoS;

/// Publishes retained messages (one through a raw `send`), then waits for a PINGRESP it
/// never asked for: a failure at step 5.
const FAILS: &str = "name: leaves-retained-fails\nversions: [\"3.1.1\", \"5\"]\nclients: {a: {}}\nsteps:\n  - connect: {client: a}\n  - publish: {client: a, topic: kept/one, payload: left, qos: 1, retain: true}\n  - publish: {client: a, topic: kept/two, payload: left, qos: 0, retain: true}\n  - send: {client: a, packet: publish, topic: kept/raw, payload: left, retain: true}\n  - expect: {client: a, packet: pingresp, within: 200ms}\n";

/// Publishes a retained message, then outlives its time budget.
const TIMES_OUT: &str = "name: leaves-retained-times-out\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - connect: {client: a}\n  - publish: {client: a, topic: kept/slow, payload: left, qos: 1, retain: true}\n  - sleep: 30s\n";

async fn run_against(url: &str) -> Vec<CaseResult> {
    let root = common::temp_root(&[
        (
            "suites/s.yaml",
            "name: s\nscenarios: [\"scenarios/**/*.yaml\"]\n",
        ),
        ("scenarios/x/fails.yaml", FAILS),
        ("scenarios/x/slow.yaml", TIMES_OUT),
    ]);
    let (s, errors) = suite::load(&root.path().join("suites/s.yaml"), root.path()).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let plan = run::plan(&[s], &Selection::default(), None, "reference");
    let cfg = RunConfig {
        transport: TransportOptions {
            connect_timeout: Some(Duration::from_secs(2)),
            ..TransportOptions::default()
        },
        ..RunConfig::new(url, 4, Duration::from_secs(2))
    };
    tokio::time::timeout(Duration::from_secs(30), run::execute(plan, cfg, |_| {}))
        .await
        .expect("the run finishes")
}

/// Every retained message under `mqttc/` that a new subscriber receives, the control
/// message this function retains itself included (so that the check is seen to work).
async fn retained_under_mqttc(url: &str) -> Vec<String> {
    let mut c = Client::connect(url, ConnectOptions::new("checker"))
        .await
        .unwrap();
    c.publish("mqttc/control", "c", QoS::AtLeastOnce, true)
        .await
        .unwrap();
    c.subscribe("mqttc/#", QoS::AtMostOnce).await.unwrap();
    // A live message after the SUBSCRIBE: the retained ones come before it.
    c.publish("mqttc/marker", "m", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let mut topics = Vec::new();
    loop {
        let p = c.recv_message(Duration::from_secs(5)).await.unwrap();
        if &*p.topic == "mqttc/marker" {
            break;
        }
        topics.push(p.topic.to_string());
    }
    c.publish("mqttc/control", "", QoS::AtLeastOnce, true)
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    topics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_timed_out_cases_leave_no_retained_message() {
    let broker = Broker::bind(BrokerConfig::default_tcp("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let url = format!("mqtt://{}", broker.tcp_addr().unwrap());
    let results = run_against(&url).await;
    assert_eq!(results.len(), 3);
    for r in &results {
        let expected = if r.case == "leaves-retained-fails" {
            matches!(r.verdict, Verdict::Fail { .. })
        } else {
            matches!(r.verdict, Verdict::Timeout { .. })
        };
        assert!(expected, "{} [{}]: {:?}", r.case, r.version, r.verdict);
        assert!(r.notes.is_empty(), "{:?}", r.notes);
    }
    assert_eq!(retained_under_mqttc(&url).await, ["mqttc/control"]);
}

//! The cases follow what an MQTT 5 CONNACK announces: against a reference broker that imposes
//! a Server Keep Alive of 1 s (on every client, or only above a ceiling as Mosquitto's
//! `max_keepalive` does), the cases built on another keep alive are skipped with the announced
//! value as the reason, and the others pass because the runner's clients keep the imposed keep
//! alive themselves (MQTT-3.2.2-21, MQTT-3.1.2-20). Likewise a broker that grants no session
//! beyond its connection (Session Expiry Interval 0 in the CONNACK) skips the cases that
//! expected one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod scripted;

use std::time::Duration;

use mqtt_conformance::run::{self, CaseResult, RunConfig, Selection, Verdict};
use mqtt_conformance::scenario::Version;
use mqtt_conformance::suite;
use mqtt_conformance::sut::{self, RunningTarget};
use reference_broker::broker::BrokerConfig;
use scripted::{connack_v5, After, ScriptedBroker};

/// Cases that time a keep alive of 2 s themselves.
const TIMED: &[&str] = &[
    "keepalive-timeout-closes-and-publishes-will",
    "fault-keepalive-under-latency",
];

/// Cases that time a keep alive of 1 s themselves: a Server Keep Alive of 1 changes nothing.
const TIMED_ONE: &[&str] = &[
    "keepalive-any-packet-resets-timer",
    "fault-will-on-half-open-keepalive",
];

/// Cases that leave a client silent for longer than 1.5 s while they wait on another one.
const SILENT: &[&str] = &[
    "will-delay-cancelled-by-reconnect",
    "will-delay-interval",
    "session-expiry-elapses",
];

fn config() -> BrokerConfig {
    BrokerConfig::default_tcp(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
}

async fn broker(server_keep_alive: Option<u16>, max_keep_alive: Option<u16>) -> RunningTarget {
    let mut cfg = config();
    cfg.limits.server_keep_alive = server_keep_alive;
    cfg.limits.max_keep_alive = max_keep_alive;
    sut::start_reference(cfg).await.unwrap()
}

/// Plan the repository's suites against `target` and run the runs of `cases`.
async fn run_cases(target: &RunningTarget, cases: &[&str]) -> Vec<CaseResult> {
    common::run_repo_cases(
        target,
        cases,
        Duration::from_secs(20),
        Duration::from_secs(120),
    )
    .await
}

/// One line per run, for assertion messages.
fn summary(results: &[CaseResult]) -> String {
    results
        .iter()
        .map(|r| format!("{} {}: {:?}", r.case, r.version, r.verdict))
        .collect::<Vec<_>>()
        .join("\n")
}

fn verdict<'a>(results: &'a [CaseResult], case: &str, version: Version) -> &'a Verdict {
    &results
        .iter()
        .find(|r| r.case == case && r.version == version)
        .unwrap_or_else(|| panic!("no run of {case} {version}:\n{}", summary(results)))
        .verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_keep_alive_of_one_second_skips_the_timed_cases_and_fails_none() {
    let target = broker(Some(1), None).await;
    let cases: Vec<&str> = TIMED
        .iter()
        .chain(TIMED_ONE)
        .chain(SILENT)
        .chain(&["keepalive-zero-is-off"])
        .copied()
        .collect();
    let results = run_cases(&target, &cases).await;
    target.shutdown().await;
    let text = summary(&results);
    assert!(
        results.iter().all(|r| !r.verdict.is_failure()),
        "false alarms:\n{text}"
    );
    for case in TIMED.iter().chain(&["keepalive-zero-is-off"]) {
        match verdict(&results, case, Version::V5) {
            Verdict::Skipped { reason } => assert!(
                reason.contains("Server Keep Alive 1") && reason.contains("MQTT-3.2.2-21"),
                "{case}: {reason}"
            ),
            other => panic!("{case} 5 is not skipped: {other:?}\n{text}"),
        }
    }
    // MQTT 3.1.1 has no Server Keep Alive: the timed cases run and pass there.
    for case in TIMED.iter().chain(TIMED_ONE) {
        assert!(
            matches!(verdict(&results, case, Version::V311), Verdict::Pass),
            "{case} 3.1.1:\n{text}"
        );
    }
    // Clients left silent for seconds kept the connection by pinging of their own accord;
    // the cases built on the 1 s the broker announces run and judge its timer.
    for case in SILENT.iter().chain(TIMED_ONE) {
        assert!(
            matches!(verdict(&results, case, Version::V5), Verdict::Pass),
            "{case} 5:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_ceiling_overrides_only_the_clients_above_it() {
    // Server Keep Alive 1 only for clients asking for more than 1 s, or for 0.
    let target = broker(None, Some(1)).await;
    let results = run_cases(
        &target,
        &[
            "keepalive-any-packet-resets-timer",
            "keepalive-zero-is-off",
            "will-delay-cancelled-by-reconnect",
        ],
    )
    .await;
    target.shutdown().await;
    let text = summary(&results);
    // Keep Alive 1 is kept as asked: the case runs, and the broker's timer is judged.
    assert!(
        matches!(
            verdict(&results, "keepalive-any-packet-resets-timer", Version::V5),
            Verdict::Pass
        ),
        "{text}"
    );
    assert!(
        matches!(
            verdict(&results, "keepalive-zero-is-off", Version::V5),
            Verdict::Skipped { reason } if reason.contains("Server Keep Alive 1 (the client asked for 0")
        ),
        "{text}"
    );
    assert!(
        matches!(
            verdict(&results, "will-delay-cancelled-by-reconnect", Version::V5),
            Verdict::Pass
        ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_expiry_granted_as_zero_skips_the_cases_that_expect_a_session() {
    let mut cfg = config();
    cfg.limits.max_session_expiry = 0;
    let target = sut::start_reference(cfg).await.unwrap();
    let cases = [
        "session-resumed-by-client-id",
        "will-delay-interval",
        "will-delay-cancelled-by-reconnect",
        "session-expiry-elapses",
        "ix-will-v5-drop-wd30-sei60",
        "ix-session-v5-cs0-sei60-disconnect-q1",
    ];
    let results = run_cases(&target, &cases).await;
    target.shutdown().await;
    let text = summary(&results);
    assert!(
        results.iter().all(|r| !r.verdict.is_failure()),
        "false alarms:\n{text}"
    );
    for case in cases {
        assert!(
            matches!(
                verdict(&results, case, Version::V5),
                Verdict::Skipped { reason } if reason.contains("Session Expiry Interval") && reason.contains("3.2.2.3.2")
            ),
            "{case}:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_above_the_announced_maximum_packet_size_is_not_sent() {
    let mut cfg = config();
    cfg.limits.max_packet_size = 256;
    let target = sut::start_reference(cfg).await.unwrap();
    let results = run_cases(&target, &["properties-maximum-packet-size-respected"]).await;
    target.shutdown().await;
    let text = summary(&results);
    assert!(
        matches!(
            verdict(&results, "properties-maximum-packet-size-respected", Version::V5),
            // The plan skips it from the probe's CONNACK (run/limits.rs); a connection whose
            // own CONNACK announces less than the probe's would be stopped at the publish step.
            Verdict::Skipped { reason } if reason.contains("Maximum Packet Size") && reason.contains("256")
        ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_connack_announces_a_smaller_maximum_packet_size_is_not_sent_more() {
    // Maximum Packet Size 64 (property 0x27) in the CONNACK of every connection; no probe:
    // the publish step itself must stop before sending what the client must not.
    let broker =
        ScriptedBroker::start(|_| (connack_v5(0, &[0x27, 0, 0, 0, 64]), After::Hold)).await;
    let big = format!(
        "name: big\nversions: [\"5\"]\nclients: {{a: {{}}}}\nsteps:\n  - connect: {{client: a}}\n  - publish: {{client: a, topic: t, payload: {}}}\n",
        "x".repeat(80)
    );
    let small = "name: small\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - connect: {client: a}\n  - publish: {client: a, topic: t, payload: x}\n";
    let root = common::temp_root(&[
        (
            "suites/s.yaml",
            "name: s\nscenarios: [\"scenarios/**/*.yaml\"]\n",
        ),
        ("scenarios/x/big.yaml", &big),
        ("scenarios/x/small.yaml", small),
    ]);
    let (s, errors) = suite::load(&root.path().join("suites/s.yaml"), root.path()).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let plan = run::plan(&[s], &Selection::default(), None, "scripted");
    let cfg = RunConfig::new(&broker.url, 2, Duration::from_secs(5));
    let results = tokio::time::timeout(Duration::from_secs(30), run::execute(plan, cfg, |_| {}))
        .await
        .expect("the run finishes");
    let text = summary(&results);
    assert!(
        matches!(
            verdict(&results, "big", Version::V5),
            Verdict::Skipped { reason } if reason.contains("Maximum Packet Size 64") && reason.contains("MQTT-3.2.2-15")
        ),
        "{text}"
    );
    assert!(
        matches!(verdict(&results, "small", Version::V5), Verdict::Pass),
        "{text}"
    );
}

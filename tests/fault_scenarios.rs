//! Fault steps in scenarios, end to end against the in-process reference broker: a case with
//! fault steps needs a fault injector and says so clearly without one; `restart_broker` is
//! skipped on targets that cannot restart; faults appear in the packet trace timeline.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use mqtt_conformance::run::link::SharedInjector;
use mqtt_conformance::run::{self, CaseResult, RunConfig, Selection, Verdict};
use mqtt_conformance::suite;
use mqtt_conformance::sut::{self, RestartSupport, TargetSpec};

const WILL_ON_CUT: &str = r#"
name: will-on-cut
spec: {"5": [MQTT-3.1.2-8]}
versions: ["5"]
clients:
  dev: {will: {topic: w, payload: gone, qos: 1}}
  watcher: {}
steps:
  - connect: {client: watcher}
  - subscribe: {client: watcher, filters: [{filter: w, qos: 1}]}
  - connect: {client: dev}
  - cut: {client: dev}
  - expect: {client: watcher, topic: w, payload: gone}
"#;

const RESTART: &str = r#"
name: restart
spec: {"5": [MQTT-3.1.2-5]}
versions: ["5"]
clients:
  a: {}
steps:
  - connect: {client: a}
  - restart_broker: {}
  - connect: {client: a}
"#;

const RESTART_SESSION: &str = r#"
name: restart-session
spec: {"5": [MQTT-3.1.2-5], "3.1.1": [MQTT-3.1.2-4]}
versions: ["3.1.1", "5"]
clients:
  pub: {}
  sub: {clean_start: false, properties: {session_expiry_interval: 300}}
steps:
  - connect: {client: sub}
  - subscribe: {client: sub, filters: [{filter: q, qos: 1}]}
  - disconnect: {client: sub}
  - connect: {client: pub}
  - publish: {client: pub, topic: q, payload: kept, qos: 1}
  - restart_broker: {}
  - connect: {client: sub, expect: {session_present: true}}
  - expect: {client: sub, topic: q, payload: kept, qos: 1}
"#;

async fn run_case(
    case: &str,
    faults: Option<SharedInjector>,
    restart: Option<RestartSupport>,
) -> Vec<CaseResult> {
    let dir = common::temp_root(&[common::ALL_SUITE, ("scenarios/case.yaml", case)]);
    let root = dir.path();
    let mut suites = Vec::new();
    for f in suite::resolve(root, &[]).unwrap() {
        let (s, errors) = suite::load(&f, root).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        suites.push(s);
    }
    let target = sut::start(&TargetSpec::Reference).await.unwrap();
    let plan = run::plan(&suites, &Selection::default(), None, "reference");
    let cfg = RunConfig {
        faults,
        restart,
        ..RunConfig::new(&target.url, 2, Duration::from_secs(10))
    };
    let results = tokio::time::timeout(Duration::from_secs(30), run::execute(plan, cfg, |_| {}))
        .await
        .unwrap();
    target.shutdown().await;
    results
}

#[tokio::test]
async fn a_fault_step_without_a_fault_injector_is_a_harness_error() {
    let results = run_case(WILL_ON_CUT, None, None).await;
    assert_eq!(results.len(), 1);
    // Our side cannot run the step: a harness error, never a broker failure.
    let Verdict::Error { failure } = &results[0].verdict else {
        panic!("expected a harness error, got {:?}", results[0].verdict);
    };
    assert_eq!(failure.step, Some(4));
    assert!(
        failure.message.contains("no fault injector") && failure.message.contains("cut"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn a_cut_through_the_embedded_proxy_publishes_the_will_and_is_traced() {
    let results = run_case(WILL_ON_CUT, Some(SharedInjector::embedded()), None).await;
    assert!(
        matches!(results[0].verdict, Verdict::Pass),
        "{:?}",
        results[0].verdict
    );
    // A failing variant shows the fault in the trace of the client it hit.
    let failing = WILL_ON_CUT.replace("payload: gone}\n", "payload: other, within: 300ms}\n");
    let results = run_case(&failing, Some(SharedInjector::embedded()), None).await;
    let Verdict::Fail { failure } = &results[0].verdict else {
        panic!("expected a failure, got {:?}", results[0].verdict);
    };
    let dev = failure.traces.iter().find(|t| t.client == "dev").unwrap();
    assert!(
        dev.lines.iter().any(|l| l.contains("# fault: cut")),
        "{:?}",
        dev.lines
    );
}

#[tokio::test]
async fn restart_broker_is_skipped_when_the_target_cannot_restart() {
    let results = run_case(RESTART, None, None).await;
    assert!(
        matches!(&results[0].verdict, Verdict::Skipped { reason } if reason == "target cannot restart"),
        "{:?}",
        results[0].verdict
    );
    let results = run_case(RESTART, None, Some(RestartSupport::default())).await;
    assert!(
        matches!(results[0].verdict, Verdict::Pass),
        "{:?}",
        results[0].verdict
    );
}

#[tokio::test]
async fn sessions_survive_restart_broker_only_with_persistence() {
    let results = run_case(RESTART_SESSION, None, Some(RestartSupport::persistent())).await;
    assert_eq!(results.len(), 2);
    for r in &results {
        assert!(matches!(r.verdict, Verdict::Pass), "{:?}", r.verdict);
    }
    let results = run_case(RESTART_SESSION, None, Some(RestartSupport::default())).await;
    for r in &results {
        let Verdict::Fail { failure } = &r.verdict else {
            panic!(
                "a broker without persistence cannot keep the session: {:?}",
                r.verdict
            );
        };
        assert!(
            failure.message.contains("session_present"),
            "{}",
            failure.message
        );
    }
}

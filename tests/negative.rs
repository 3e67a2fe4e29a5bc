//! The runner must fail cases whose expectations a conforming broker does not meet: a case
//! that passes whatever the broker does is a defect. Each case below is wrong on purpose and
//! runs against the reference broker.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use mqtt_conformance::run::{CaseResult, Verdict};

const HEAD: &str = "versions: [\"5\"]\nclients: {a: {}, b: {}}\nsteps:\n  - connect: {client: a}\n  - connect: {client: b}\n";

fn case(name: &str, steps: &str) -> String {
    format!("name: {name}\n{HEAD}{steps}")
}

fn find<'a>(results: &'a [CaseResult], name: &str) -> &'a CaseResult {
    results.iter().find(|r| r.case == name).unwrap()
}

/// The verdict must be Fail at `step` with `needle` in the failure text.
fn assert_fails(results: &[CaseResult], name: &str, step: usize, needle: &str) {
    let r = find(results, name);
    let Verdict::Fail { failure } = &r.verdict else {
        panic!("{name}: expected a failure, got {:?}", r.verdict)
    };
    assert_eq!(failure.step, Some(step), "{name}: {}", failure.headline());
    let text = format!(
        "{} {:?} {:?}",
        failure.message, failure.expected, failure.received
    );
    assert!(text.contains(needle), "{name}: {text:?} lacks {needle:?}");
    assert!(
        failure.traces.iter().any(|t| !t.lines.is_empty()),
        "{name}: the failure carries the traces"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_expectations_fail_at_the_right_step() {
    let cases = [
        case("wrong-payload", "  - subscribe: {client: b, filters: [{filter: t, qos: 0}]}\n  - publish: {client: a, topic: t, payload: sent}\n  - expect: {client: b, topic: t, payload: other}\n"),
        case("wrong-qos", "  - subscribe: {client: b, filters: [{filter: t, qos: 1}]}\n  - publish: {client: a, topic: t, payload: x, qos: 1}\n  - expect: {client: b, topic: t, qos: 0}\n"),
        case("wrong-retain", "  - subscribe: {client: b, filters: [{filter: t, qos: 0}]}\n  - publish: {client: a, topic: t, payload: x}\n  - expect: {client: b, topic: t, retain: true}\n"),
        case("nothing-but-something", "  - subscribe: {client: b, filters: [{filter: t, qos: 0}]}\n  - publish: {client: a, topic: t, payload: x}\n  - expect_nothing: {client: b, for: 300ms, packet: publish}\n"),
        case("never-delivered", "  - subscribe: {client: b, filters: [{filter: t, qos: 0}]}\n  - publish: {client: a, topic: other, payload: x}\n  - expect: {client: b, topic: other, within: 200ms}\n"),
        case("close-that-never-comes", "  - expect_close: {client: a, within: 200ms}\n"),
        case("wrong-suback", "  - subscribe: {client: b, filters: [{filter: t, qos: 1}], expect: [2]}\n"),
        case("wrong-session-present", "  - connect: {client: a, expect: {session_present: true}}\n"),
        case("wrong-connack-code", "  - connect: {client: a, expect: {code: not_authorized}}\n"),
        case("wrong-property", "  - subscribe: {client: b, filters: [{filter: t, qos: 0}]}\n  - publish: {client: a, topic: t, payload: x, properties: {content_type: text}}\n  - expect: {client: b, topic: t, properties: {content_type: json}}\n"),
        case("absent-but-present", "  - subscribe: {client: b, filters: [{filter: t, qos: 0}]}\n  - publish: {client: a, topic: t, payload: x, properties: {content_type: text}}\n  - expect: {client: b, topic: t, absent: [content_type]}\n"),
        case("wrong-puback-reason", "  - publish: {client: a, topic: nobody, payload: x, qos: 1, expect: {reason: 0x97}}\n"),
        case("wrong-unsuback", "  - unsubscribe: {client: b, filters: [never], expect: [success]}\n"),
    ];
    let mut files: Vec<(String, String)> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("scenarios/neg/{i}.yaml"), c.clone()))
        .collect();
    files.push((common::ALL_SUITE.0.into(), common::ALL_SUITE.1.into()));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let root = common::temp_root(&refs);
    let results =
        common::run_root(root.path(), "reference", Duration::from_secs(10), false, 16).await;
    assert_eq!(results.len(), cases.len());
    assert_fails(&results, "wrong-payload", 5, "payload");
    assert_fails(&results, "wrong-qos", 5, "qos");
    assert_fails(&results, "wrong-retain", 5, "retain");
    assert_fails(&results, "nothing-but-something", 5, "a packet arrived");
    assert_fails(&results, "never-delivered", 5, "nothing matching arrived");
    assert_fails(&results, "close-that-never-comes", 3, "still open");
    assert_fails(&results, "wrong-suback", 3, "SUBACK codes differ");
    assert_fails(&results, "wrong-session-present", 3, "session_present");
    assert_fails(&results, "wrong-connack-code", 3, "code");
    assert_fails(&results, "wrong-property", 5, "properties.content_type");
    assert_fails(&results, "absent-but-present", 5, "properties.content_type");
    assert_fails(&results, "wrong-puback-reason", 3, "reason differs");
    assert_fails(&results, "wrong-unsuback", 3, "UNSUBACK codes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_skips_deviations_and_fail_fast() {
    let suite = "name: all\nscenarios: [\"scenarios/**/*.yaml\"]\ndeviations:\n  reference:\n    - {case: fail-wrong-payload, version: \"5\", statement: MQTT-3.3.1-5, reason: documented}\n";
    let slow = "name: too-slow\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - connect: {client: a}\n  - sleep: 3s\n";
    let needs = "name: needs-websocket\nversions: [\"5\"]\nrequires: [websocket]\nclients: {a: {}}\nsteps:\n  - connect: {client: a}\n";
    let root = common::temp_root(&[
        ("suites/all.yaml", suite),
        ("scenarios/x/fail.yaml", common::FAILING),
        ("scenarios/x/slow.yaml", slow),
        ("scenarios/x/needs.yaml", needs),
    ]);
    let results = common::run_root(
        root.path(),
        "reference",
        Duration::from_millis(800),
        false,
        4,
    )
    .await;
    assert!(
        matches!(find(&results, "too-slow").verdict, Verdict::Timeout { .. }),
        "{:?}",
        find(&results, "too-slow").verdict
    );
    match &find(&results, "needs-websocket").verdict {
        Verdict::Skipped { reason } => assert!(reason.contains("websocket"), "{reason}"),
        other => panic!("expected skipped, got {other:?}"),
    }
    match &find(&results, "fail-wrong-payload").verdict {
        Verdict::Deviation { deviation, failure } => {
            assert_eq!(deviation.statement, "MQTT-3.3.1-5");
            assert_eq!(failure.step, Some(4));
        }
        other => panic!("expected a deviation, got {other:?}"),
    }
    // The deviation is documented for the reference broker only.
    let other = common::run_root(
        root.path(),
        "mosquitto",
        Duration::from_millis(800),
        false,
        4,
    )
    .await;
    assert!(matches!(
        find(&other, "fail-wrong-payload").verdict,
        Verdict::Fail { .. }
    ));
    // Results come in plan order whatever the completion order.
    let indices: Vec<usize> = results.iter().map(|r| r.index).collect();
    let mut sorted = indices.clone();
    sorted.sort_unstable();
    assert_eq!(indices, sorted);

    // --fail-fast with one job: after the first failure nothing else starts.
    let ff = common::temp_root(&[
        common::ALL_SUITE,
        ("scenarios/a/1.yaml", common::FAILING),
        ("scenarios/a/2.yaml", common::PASSING),
    ]);
    let results = common::run_root(ff.path(), "reference", Duration::from_secs(5), true, 1).await;
    assert!(
        matches!(results[0].verdict, Verdict::Fail { .. }),
        "{:?}",
        results[0].verdict
    );
    for r in &results[1..] {
        match &r.verdict {
            Verdict::Skipped { reason } => assert!(reason.contains("fail-fast")),
            other => panic!("expected skipped after fail-fast, got {other:?}"),
        }
    }
}

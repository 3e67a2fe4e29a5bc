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
        case("wrong-suback", "  - subscribe: {client: b, filters: [{filter: t, qos: 1}], expect: [0]}\n"),
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
    let suite = "name: all\nscenarios: [\"scenarios/**/*.yaml\"]\ndeviations:\n  reference:\n    - {case: fail-wrong-payload, version: \"5\", statement: MQTT-3.3.1-5, step: 4, kind: packet-differs, reason: documented}\n";
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

/// A case with its own clients (the shared HEAD has none with special options).
fn own(name: &str, clients: &str, steps: &str) -> String {
    format!("name: {name}\nversions: [\"5\"]\nclients: {clients}\nsteps:\n{steps}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharpened_runner_features_fail_on_mismatches() {
    let sub = "  - subscribe: {client: b, filters: [{filter: t, qos: 0}]}\n  - publish: {client: a, topic: t, payload: x, qos: 1}\n";
    let cases = [
        // expect_one_of: no alternative matches (wrong payload / wrong client).
        case("one-of-none", &format!("{sub}  - expect_one_of: {{within: 300ms, alternatives: [[{{client: b, topic: t, payload: y}}], [{{client: a, topic: t, payload: x}}]]}}\n")),
        // expect_one_of: an alternative needs two copies, only one comes.
        case("one-of-partial", &format!("{sub}  - expect_one_of: {{within: 300ms, alternatives: [[{{client: b, payload: x}}, {{client: b, payload: x}}]]}}\n")),
        // expect_one_of: a wrong subscription identifier.
        case("one-of-wrong-id", "  - subscribe: {client: b, filters: [{filter: t, qos: 0}], properties: {subscription_identifier: 7}}\n  - publish: {client: a, topic: t, payload: x, qos: 1}\n  - expect_one_of: {within: 300ms, alternatives: [[{client: b, properties: {subscription_identifiers: [8]}}], [{client: b, absent: [subscription_identifiers]}]]}\n"),
        // or_close: the broker neither closes nor refuses (it grants the filter).
        case("one-of-or-close-granted", "  - send: {client: a, packet: subscribe, packet_id: 1, filters: [{filter: t, qos: 0}]}\n  - expect_one_of: {within: 300ms, or_close: [a], alternatives: [[{client: a, packet: suback, codes: [0x8F]}]]}\n"),
        // packet_id_from: two unacknowledged deliveries cannot share an identifier.
        own("saved-id-differs", "{a: {}, b: {auto_ack: false}}", "  - connect: {client: a}\n  - connect: {client: b}\n  - subscribe: {client: b, filters: [{filter: t, qos: 1}]}\n  - publish: {client: a, topic: t, payload: one, qos: 1}\n  - expect: {client: b, payload: one, save_id: m}\n  - publish: {client: a, topic: t, payload: two, qos: 1}\n  - expect: {client: b, payload: two, packet_id_from: m}\n"),
        // present: a property that is not there.
        case("present-but-absent", &format!("{sub}  - expect: {{client: b, topic: t, present: [content_type]}}\n")),
        // present on CONNACK: a client with an id gets no Assigned Client Identifier.
        case("connack-present-but-absent", "  - connect: {client: a, expect: {present: [assigned_client_identifier]}}\n"),
        // allow_before: a PINGRESP arrives before the close of a malformed PINGREQ.
        case("allow-before-violated", "  - send_raw: {client: a, hex: \"c0 00 c1 00\"}\n  - expect_close: {client: a, allow_before: [disconnect]}\n"),
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
    assert_fails(&results, "one-of-none", 5, "no alternative matched");
    assert_fails(&results, "one-of-partial", 5, "no alternative matched");
    assert_fails(&results, "one-of-wrong-id", 5, "no alternative matched");
    assert_fails(
        &results,
        "one-of-or-close-granted",
        4,
        "no alternative matched",
    );
    assert_fails(&results, "saved-id-differs", 7, "packet_id");
    assert_fails(&results, "present-but-absent", 5, "present (any value)");
    assert_fails(
        &results,
        "connack-present-but-absent",
        3,
        "present (any value)",
    );
    assert_fails(&results, "allow-before-violated", 4, "before the close");
}

#[test]
fn packet_id_from_must_name_a_saved_id() {
    let text = own(
        "unsaved",
        "{a: {}}",
        "  - connect: {client: a}\n  - send: {client: a, packet: puback, packet_id_from: nope}\n",
    );
    let err =
        mqtt_conformance::scenario::parse_str(&text, std::path::Path::new("scenarios/x/u.yaml"))
            .unwrap_err();
    assert!(err.to_string().contains("packet_id_from: nope"), "{err}");
}

/// Run `case` (MQTT 5) against a scripted broker that answers any CONNECT with `reply`.
async fn against_script(case: &str, reply: &'static [u8]) -> Result<(), String> {
    use mqtt_conformance::run::interp::{CaseEnv, Interpreter, Outcome};
    use mqtt_conformance::run::prefix::Prefixer;
    use mqtt_conformance::scenario::Version;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 256];
        let _ = sock.read(&mut buf).await.unwrap();
        sock.write_all(reply).await.unwrap();
        // Keep the connection open until the client goes.
        let _ = sock.read(&mut buf).await;
    });
    let scenario = mqtt_conformance::scenario::parse_str(case, std::path::Path::new("s/x.yaml"))
        .unwrap()
        .remove(0)
        .scenario;
    let env = CaseEnv {
        url: format!("mqtt://127.0.0.1:{port}"),
        transport: Default::default(),
        credentials: None,
        version: Version::V5,
        prefix: Prefixer::identity(),
        deadline: tokio::time::Instant::now() + Duration::from_secs(5),
        faults: None,
        broker: None,
    };
    let result = Interpreter::new(&scenario, env).run().await;
    server.abort();
    result.map_err(|o| match o {
        Outcome::Fail(f) | Outcome::Timeout(f) | Outcome::Error(f) => {
            format!("step {:?}: {} {:?}", f.step, f.message, f.received)
        }
        Outcome::NotApplicable(why) => format!("not applicable: {why}"),
    })
}

#[tokio::test]
async fn inbound_topic_alias_above_the_maximum_fails() {
    // CONNACK success, then PUBLISH "x" with Topic Alias 5 (the client announced none).
    const REPLY: &[u8] = &[
        0x20, 0x03, 0x00, 0x00, 0x00, 0x30, 0x08, 0x00, 0x01, b'x', 0x03, 0x23, 0x00, 0x05, b'y',
    ];
    let case = "name: c\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - connect: {client: a}\n  - expect: {client: a, topic: x}\n";
    let err = against_script(case, REPLY).await.unwrap_err();
    assert!(err.contains("Topic Alias"), "{err}");
    assert!(err.starts_with("step Some(2)"), "{err}");
    // The same PUBLISH passes for a client that announced Topic Alias Maximum 5.
    let ok = "name: c\nversions: [\"5\"]\nclients: {a: {properties: {topic_alias_maximum: 5}}}\nsteps:\n  - connect: {client: a}\n  - expect: {client: a, topic: x, payload: y}\n";
    against_script(ok, REPLY).await.unwrap();
}

#[tokio::test]
async fn a_disconnect_followed_by_a_packet_fails_allow_before() {
    // CONNACK success, DISCONNECT 0x80, then a PINGRESP after it; then the script closes.
    const REPLY: &[u8] = &[
        0x20, 0x03, 0x00, 0x00, 0x00, 0xE0, 0x02, 0x80, 0x00, 0xD0, 0x00,
    ];
    let case = "name: c\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - connect: {client: a}\n  - expect_close: {client: a, within: 1s, allow_before: [disconnect, pingresp]}\n";
    let err = against_script(case, REPLY).await.unwrap_err();
    assert!(err.contains("after the DISCONNECT"), "{err}");
}

#[tokio::test]
async fn a_packet_above_the_announced_maximum_fails() {
    // CONNACK success with a 19-byte Reason String: 27 bytes in all.
    const REPLY: &[u8] = &[
        0x20, 0x19, 0x00, 0x00, 0x16, 0x1F, 0x00, 0x13, b'a', b'b', b'c', b'd', b'e', b'f', b'g',
        b'h', b'i', b'j', b'k', b'l', b'm', b'n', b'o', b'p', b'q', b'r', b's',
    ];
    let tight = "name: c\nversions: [\"5\"]\nclients: {a: {properties: {maximum_packet_size: 26}}}\nsteps:\n  - connect: {client: a}\n";
    let err = against_script(tight, REPLY).await.unwrap_err();
    assert!(err.contains("Maximum Packet Size"), "{err}");
    // The same CONNACK is accepted by a client that announced 27 bytes.
    let roomy = tight.replace("26", "27");
    against_script(&roomy, REPLY).await.unwrap();
}

//! Brokers that misbehave on purpose: one that floods PUBLISH packets after its CONNACK, one
//! that sends garbage, one that announces a 256 MiB packet, and one that stays silent. Each
//! must end the affected case with a verdict that says what happened (not a hang, not a crash),
//! with traces that stay bounded.
#![allow(clippy::unwrap_used)]

mod common;
mod scripted;

use std::time::Duration;

use mqtt_conformance::run::interp::{CaseEnv, Interpreter, Outcome};
use mqtt_conformance::run::prefix::Prefixer;
use mqtt_conformance::run::Failure;
use mqtt_conformance::scenario::Version;
use reference_broker::codec::{Connect, ProtocolVersion};
use scripted::{connack_v311, connack_v5, After, ScriptedBroker};

/// A case that connects, subscribes and waits for one message.
const CASE: &str = "name: c\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - connect: {client: a}\n  - subscribe: {client: a, filters: [{filter: t, qos: 0}]}\n  - expect: {client: a, topic: t}\n";

/// A CONNACK accepting `c`, in the form of its version.
fn accept(c: &Connect) -> Vec<u8> {
    if c.protocol == ProtocolVersion::V5 {
        connack_v5(0, &[])
    } else {
        connack_v311(0)
    }
}

/// A QoS 0 PUBLISH of "hi" on topic `x`, for the version of `c`.
fn publish(c: &Connect) -> Vec<u8> {
    if c.protocol == ProtocolVersion::V5 {
        vec![0x30, 0x06, 0x00, 0x01, b'x', 0x00, b'h', b'i']
    } else {
        vec![0x30, 0x05, 0x00, 0x01, b'x', b'h', b'i']
    }
}

/// A fixed header announcing a PUBLISH of 268,435,455 bytes (the largest Remaining Length).
const CLAIM: [u8; 5] = [0x30, 0xFF, 0xFF, 0xFF, 0x7F];

/// The broker scripts of this file, by name.
async fn hostile(kind: &str) -> ScriptedBroker {
    match kind {
        "flood" => ScriptedBroker::start(|c| (accept(c), After::Flood(publish(c)))).await,
        "garbage" => {
            ScriptedBroker::start(|c| (accept(c), After::Flood(vec![0x00, 0xDE, 0xAD, 0xBE]))).await
        }
        "claim" => {
            ScriptedBroker::start(|c| {
                let mut bytes = accept(c);
                bytes.extend_from_slice(&CLAIM);
                (bytes, After::Flood(vec![0u8; 1024]))
            })
            .await
        }
        "silent" => ScriptedBroker::start(|_| (Vec::new(), After::Hold)).await,
        "silent-after-connack" => ScriptedBroker::start(|c| (accept(c), After::Hold)).await,
        other => panic!("no script {other}"),
    }
}

/// Run [`CASE`] (MQTT 5) against `url`; the failure it ends with.
async fn fails_against(url: &str) -> Failure {
    // Bounded (in `run_case`): a hang here is the defect under test.
    match run_case(CASE, url).await {
        Err(Outcome::Fail(f)) => f,
        Err(Outcome::Timeout(f) | Outcome::Error(f)) => panic!("not a broker verdict: {f:?}"),
        Err(Outcome::NotApplicable(why)) => panic!("not a broker verdict: {why}"),
        Ok(()) => panic!("the case passed against a hostile broker"),
    }
}

/// The failure text: message, expected and received.
fn text(f: &Failure) -> String {
    format!("{} | {:?} | {:?}", f.message, f.expected, f.received)
}

/// No client trace holds more than the first and last kept entries plus a few headers.
fn assert_bounded(f: &Failure) {
    for t in &f.traces {
        assert!(
            t.lines.len()
                <= reference_broker::client::TRACE_HEAD + reference_broker::client::TRACE_TAIL + 4,
            "{} lines in {}'s trace",
            t.lines.len(),
            t.client
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_ends_the_case_as_a_flood_with_a_bounded_trace() {
    let broker = hostile("flood").await;
    let f = fails_against(&broker.url).await;
    assert_eq!(f.step, Some(2), "{}", text(&f));
    assert!(
        f.message.starts_with("broker floods: 2000 packets unread"),
        "{}",
        text(&f)
    );
    assert!(text(&f).contains("2000 PUBLISH"), "{}", text(&f));
    assert_bounded(&f);
    let lines = &f.traces[0].lines;
    assert!(
        lines.iter().any(|l| l.contains("packets/events not kept")),
        "{lines:#?}"
    );
    // The first packets and the last ones are both there.
    assert!(lines.iter().any(|l| l.contains("CONNACK")), "{lines:#?}");
    assert!(
        lines.last().unwrap().contains("PUBLISH"),
        "{:?}",
        lines.last()
    );
}

#[tokio::test]
async fn garbage_ends_the_case_as_a_malformed_packet() {
    let broker = hostile("garbage").await;
    let f = fails_against(&broker.url).await;
    assert_eq!(f.step, Some(2), "{}", text(&f));
    assert!(
        f.message.contains("the broker sent a malformed packet"),
        "{}",
        text(&f)
    );
    assert_bounded(&f);
}

/// Run `case` (MQTT 5) against `url`: its outcome.
async fn run_case(case: &str, url: &str) -> Result<(), Outcome> {
    let scenario = mqtt_conformance::scenario::parse_str(case, std::path::Path::new("s/x.yaml"))
        .unwrap()
        .remove(0)
        .scenario;
    let env = CaseEnv {
        url: url.to_string(),
        transport: Default::default(),
        credentials: None,
        version: Version::V5,
        prefix: Prefixer::identity(),
        deadline: tokio::time::Instant::now() + Duration::from_secs(20),
        faults: None,
        broker: None,
    };
    tokio::time::timeout(
        Duration::from_secs(30),
        Interpreter::new(&scenario, env).run(),
    )
    .await
    .expect("the case ends")
}

/// A case that only checks that the broker closes the connection after its CONNACK.
const CLOSE_CASE: &str = "name: c\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - connect: {client: a}\n  - expect_close: {client: a, within: 1s}\n";

/// A broker that accepts the CONNECT, sends `extra`, then does `after`.
async fn connack_then(extra: &'static [u8], after: After) -> ScriptedBroker {
    ScriptedBroker::start(move |c| {
        let mut bytes = accept(c);
        bytes.extend_from_slice(extra);
        (bytes, after.clone())
    })
    .await
}

/// [`CLOSE_CASE`] fails at its `expect_close` against `broker`, with a message holding `what`.
async fn close_case_fails(broker: &ScriptedBroker, what: &str) {
    match run_case(CLOSE_CASE, &broker.url).await {
        Err(Outcome::Fail(f)) => {
            assert_eq!(f.step, Some(2), "{}", text(&f));
            assert!(f.message.contains(what), "{}", text(&f));
        }
        other => panic!("expected a failure saying {what:?}: {other:?}"),
    }
}

#[tokio::test]
async fn bytes_that_do_not_decode_before_a_close_do_not_fail_expect_close() {
    // An echoed SUBACK with Packet Identifier 0 and no codes stands for what real brokers
    // send before closing; a reserved packet type (0x00) is enough to be undecodable.
    const UNDECODABLE: &[u8] = &[0x00, 0xDE, 0xAD, 0xBE];
    let closes = connack_then(UNDECODABLE, After::Close).await;
    if let Err(o) = run_case(CLOSE_CASE, &closes.url).await {
        panic!("the close was not accepted: {o:?}");
    }
    // A broker that keeps the connection open still fails.
    close_case_fails(&connack_then(UNDECODABLE, After::Hold).await, "still open").await;
    // After an MQTT 5 DISCONNECT nothing more may come (MQTT-3.14.4-1), not even a stray byte.
    let stray = connack_then(&[0xE0, 0x01, 0x81, 0x00], After::Close).await;
    close_case_fails(&stray, "MQTT-3.14.4-1").await;
}

#[tokio::test]
async fn a_256_mib_claim_is_refused_unread() {
    let broker = hostile("claim").await;
    let f = fails_against(&broker.url).await;
    assert_eq!(f.step, Some(2), "{}", text(&f));
    assert!(
        f.message
            .contains("announced a packet of 268435460 bytes, more than any case publishes"),
        "{}",
        text(&f)
    );
    assert_bounded(&f);
}

#[tokio::test]
async fn a_claim_above_the_announced_maximum_quotes_the_maximum() {
    let broker = hostile("claim").await;
    let case = CASE.replace("{a: {}}", "{a: {properties: {maximum_packet_size: 1000}}}");
    let scenario = mqtt_conformance::scenario::parse_str(&case, std::path::Path::new("s/x.yaml"))
        .unwrap()
        .remove(0)
        .scenario;
    let env = CaseEnv {
        url: broker.url.clone(),
        transport: Default::default(),
        credentials: None,
        version: Version::V5,
        prefix: Prefixer::identity(),
        deadline: tokio::time::Instant::now() + Duration::from_secs(20),
        faults: None,
        broker: None,
    };
    let Err(Outcome::Fail(f)) = Interpreter::new(&scenario, env).run().await else {
        panic!("expected a failure")
    };
    assert!(
        f.message
            .contains("larger than the client's Maximum Packet Size"),
        "{}",
        text(&f)
    );
    assert!(
        text(&f).contains("packets of at most 1000 bytes"),
        "{}",
        text(&f)
    );
}

#[tokio::test]
async fn silence_ends_the_case_when_its_wait_runs_out() {
    for (kind, step) in [("silent", 1), ("silent-after-connack", 2)] {
        let broker = hostile(kind).await;
        let f = fails_against(&broker.url).await;
        assert_eq!(f.step, Some(step), "{kind}: {}", text(&f));
        assert!(
            f.message.contains("nothing matching arrived within"),
            "{kind}: {}",
            text(&f)
        );
    }
}

/// `run` against each hostile broker ends (exit 1, each case with a verdict) and its JSON
/// report says why.
#[test]
fn a_run_against_each_hostile_broker_ends_with_verdicts() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (kind, needle) in [
        ("flood", "broker floods"),
        ("garbage", "malformed packet"),
        ("claim", "announced a packet of"),
        ("silent-after-connack", "nothing matching arrived"),
    ] {
        let broker = rt.block_on(hostile(kind));
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("r.json");
        let root = env!("CARGO_MANIFEST_DIR");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"))
            .args(["--root", root, "run", "--broker", &broker.url])
            .args(["--filter", "subscribe", "--protocol", "5", "--no-junit"])
            .args(["--no-html", "--quiet", "--timeout", "10s", "--json-report"])
            .arg(&json)
            .output()
            .unwrap();
        let (stdout, stderr) = common::text(&out);
        assert_eq!(out.status.code(), Some(1), "{kind}: {stdout}\n{stderr}");
        let report = std::fs::read_to_string(&json).unwrap();
        assert!(
            report.contains(needle),
            "{kind}: {needle} not in the report"
        );
        drop(broker);
    }
}

/// A broker that answers no CONNECT at all leaves nothing to run: exit 2 with the probe's
/// finding, not a green run of skipped cases.
#[test]
fn a_run_against_a_broker_that_never_answers_is_an_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let broker = rt.block_on(hostile("silent"));
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"))
        .args([
            "--root",
            env!("CARGO_MANIFEST_DIR"),
            "run",
            "--broker",
            &broker.url,
        ])
        .args([
            "--filter",
            "subscribe",
            "--no-junit",
            "--no-html",
            "--json-report",
        ])
        .arg(dir.path().join("r.json"))
        .output()
        .unwrap();
    let (stdout, stderr) = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("nothing can run"), "{stderr}");
    assert!(stderr.contains("no answer within"), "{stderr}");
}

/// A fault injector whose proxies come up but whose every later call fails, as a Toxiproxy
/// that dies in the middle of a run.
struct DyingProxy(mqtt_conformance::fault::EmbeddedInjector);

#[async_trait::async_trait]
impl mqtt_conformance::fault::FaultInjector for DyingProxy {
    async fn create_proxy(
        &self,
        name: &str,
        upstream: std::net::SocketAddr,
    ) -> Result<std::net::SocketAddr, mqtt_conformance::fault::FaultError> {
        self.0.create_proxy(name, upstream).await
    }
    async fn add_toxic(
        &self,
        _: &str,
        _: &mqtt_conformance::fault::Toxic,
    ) -> Result<(), mqtt_conformance::fault::FaultError> {
        Err(gone())
    }
    async fn remove_toxic(
        &self,
        _: &str,
        _: &str,
    ) -> Result<(), mqtt_conformance::fault::FaultError> {
        Err(gone())
    }
    async fn heal(&self, _: &str) -> Result<(), mqtt_conformance::fault::FaultError> {
        Err(gone())
    }
    async fn set_enabled(
        &self,
        _: &str,
        _: bool,
    ) -> Result<(), mqtt_conformance::fault::FaultError> {
        Err(gone())
    }
    async fn toxics(
        &self,
        _: &str,
    ) -> Result<Vec<mqtt_conformance::fault::Toxic>, mqtt_conformance::fault::FaultError> {
        Err(gone())
    }
    async fn delete_proxy(&self, name: &str) -> Result<(), mqtt_conformance::fault::FaultError> {
        self.0.delete_proxy(name).await
    }
}

fn gone() -> mqtt_conformance::fault::FaultError {
    mqtt_conformance::fault::FaultError::Toxiproxy {
        server: "127.0.0.1:8474".into(),
        message: "connection refused".into(),
    }
}

/// A fault proxy that fails mid-run makes the case a harness error (not a broker failure)
/// and the run incomplete (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_proxy_failing_mid_run_is_a_harness_error() {
    use mqtt_conformance::run::{self, RunConfig, RunEvent, Selection, Verdict};
    use mqtt_conformance::sut::{self, TargetSpec};
    use std::sync::Arc;

    let case = "name: cut-mid-run\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - connect: {client: a}\n  - cut: {client: a}\n";
    let root = common::temp_root(&[common::ALL_SUITE, ("scenarios/f/cut.yaml", case)]);
    let mut suites = Vec::new();
    for f in mqtt_conformance::suite::resolve(root.path(), &[]).unwrap() {
        suites.push(mqtt_conformance::suite::load(&f, root.path()).unwrap().0);
    }
    let target = sut::start(&TargetSpec::Reference).await.unwrap();
    let transport = reference_broker::client::TransportOptions::default();
    let run_id = run::new_run_id();
    let (caps, _) = sut::probe(&target, &transport, &run_id).await.unwrap();
    let plan = run::plan(&suites, &Selection::default(), Some(&caps), "reference");
    let cfg = RunConfig {
        run_id,
        transport,
        faults: Some(run::link::SharedInjector(Arc::new(DyingProxy(
            mqtt_conformance::fault::EmbeddedInjector::new(),
        )))),
        ..RunConfig::new(&target.url, 1, Duration::from_secs(10))
    };
    let mut incomplete = Vec::new();
    let results = run::execute(plan, cfg, |e| {
        if let RunEvent::Incomplete { reason } = e {
            incomplete.push(reason.clone());
        }
    })
    .await;
    target.shutdown().await;
    let Verdict::Error { failure } = &results[0].verdict else {
        panic!("expected a harness error: {:?}", results[0].verdict)
    };
    assert!(!results[0].verdict.is_failure());
    assert!(
        failure.message.contains("the fault proxy failed"),
        "{}",
        failure.message
    );
    assert_eq!(incomplete.len(), 1, "{incomplete:?}");
    assert!(incomplete[0].contains("harness error"), "{incomplete:?}");
}

/// Not a test: the peak memory (RSS) of a whole `run` against each hostile broker, measured
/// with `/usr/bin/time -v` and printed (`cargo test --test hostile_broker -- --ignored
/// --nocapture peak_memory`). Kept out of the default run: it takes minutes and measures.
#[test]
#[ignore]
fn peak_memory_of_whole_runs_against_hostile_brokers() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kinds = std::env::var("HOSTILE_KINDS")
        .unwrap_or_else(|_| "flood,garbage,claim,silent-after-connack,silent".into());
    for kind in kinds.split(',') {
        let broker = rt.block_on(hostile(kind));
        let dir = tempfile::tempdir().unwrap();
        let root = env!("CARGO_MANIFEST_DIR");
        let begun = std::time::Instant::now();
        let out = std::process::Command::new("/usr/bin/time")
            .arg("-v")
            .arg(env!("CARGO_BIN_EXE_mqtt-conformance"))
            .args(["--root", root, "run", "--broker", &broker.url])
            .args(["--no-junit", "--no-html", "--quiet", "--json-report"])
            .arg(dir.path().join("r.json"))
            .output()
            .unwrap();
        let (stdout, stderr) = common::text(&out);
        let rss = stderr
            .lines()
            .find(|l| l.contains("Maximum resident set size"))
            .unwrap_or("no RSS line")
            .trim()
            .to_string();
        let summary = stdout
            .lines()
            .rev()
            .find(|l| l.contains("run(s)") || l.contains("passed") || l.contains("failed"))
            .unwrap_or("")
            .to_string();
        println!(
            "{kind}: exit {:?}, {:.1}s, {rss}; {summary}",
            out.status.code(),
            begun.elapsed().as_secs_f64()
        );
        drop(broker);
    }
}

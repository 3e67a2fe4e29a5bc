//! Documented deviations excuse how a case fails, not the case: against scripted brokers, a
//! deviation matches only its step and kind; a failure of another kind (a closed connection,
//! a broker that is not there) stays a failure and says why it is not excused.
#![allow(clippy::unwrap_used)]

mod common;
mod scripted;

use std::time::Duration;

use mqtt_conformance::run::{self, CaseResult, RunConfig, Selection, Verdict};
use mqtt_conformance::suite;
use reference_broker::client::TransportOptions;
use scripted::{connack_v5, After, ScriptedBroker};

/// Step 3 waits for a PINGRESP the scripted broker never sends.
const CASE: &str = "name: pingresp\nversions: [\"5\"]\nspec: {\"5\": [MQTT-3.12.4-1]}\nclients: {a: {}}\nsteps:\n  - connect: {client: a}\n  - send: {client: a, packet: pingreq}\n  - expect: {client: a, packet: pingresp, within: 300ms}\n";

fn manifest(step: usize, kind: &str) -> String {
    format!(
        "name: s\nscenarios: [\"scenarios/**/*.yaml\"]\ndeviations:\n  scripted:\n    - {{case: pingresp, statement: MQTT-3.12.4-1, step: {step}, kind: {kind}, reason: documented}}\n"
    )
}

async fn run_against(url: &str, manifest: &str) -> CaseResult {
    let root = common::temp_root(&[("suites/s.yaml", manifest), ("scenarios/x/c.yaml", CASE)]);
    let (s, errors) = suite::load(&root.path().join("suites/s.yaml"), root.path()).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let plan = run::plan(&[s], &Selection::default(), None, "scripted");
    let cfg = RunConfig {
        transport: TransportOptions {
            connect_timeout: Some(Duration::from_secs(2)),
            ..TransportOptions::default()
        },
        ..RunConfig::new(url, 1, Duration::from_secs(5))
    };
    let mut results =
        tokio::time::timeout(Duration::from_secs(30), run::execute(plan, cfg, |_| {}))
            .await
            .expect("the run finishes");
    results.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deviation_excuses_its_step_and_kind_only() {
    // The broker accepts and then ignores everything: the PINGRESP is missing at step 3.
    let silent = ScriptedBroker::start(|_| (connack_v5(0, &[]), After::Hold)).await;
    let r = run_against(&silent.url, &manifest(3, "missing-packet")).await;
    assert!(
        matches!(r.verdict, Verdict::Deviation { .. }),
        "{:?}",
        r.verdict
    );
    for (step, kind) in [(3, "unexpected-packet"), (2, "missing-packet")] {
        let r = run_against(&silent.url, &manifest(step, kind)).await;
        let Verdict::Fail { failure } = &r.verdict else {
            panic!("{step} {kind}: {:?}", r.verdict)
        };
        assert!(failure.not_excused.is_some(), "{failure:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_is_never_excused() {
    // The broker closes right after its CONNACK: step 3 sees the close, not a missing packet.
    let closing = ScriptedBroker::start(|_| (connack_v5(0, &[]), After::Close)).await;
    let r = run_against(&closing.url, &manifest(3, "missing-packet")).await;
    let Verdict::Fail { failure } = &r.verdict else {
        panic!("{:?}", r.verdict)
    };
    assert_eq!(
        failure.kind,
        Some(mqtt_conformance::scenario::Observation::ConnectionClosed)
    );
    let why = failure.not_excused.as_deref().unwrap_or_default();
    assert!(why.contains("connection-closed"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_not_there_is_never_a_deviation() {
    // A port nobody listens on: "Connection refused" at step 1, then the broker counts as
    // gone. Either way the documented deviation does not turn it into an expected one.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("mqtt://{}", listener.local_addr().unwrap());
    drop(listener);
    let r = run_against(&url, &manifest(3, "missing-packet")).await;
    assert!(
        !matches!(r.verdict, Verdict::Deviation { .. } | Verdict::Pass),
        "{:?}",
        r.verdict
    );
}

#[test]
fn deviations_of_kinds_never_excused_or_of_missing_steps_do_not_load() {
    for (step, kind, needle) in [
        (3, "connection-closed", "never excused"),
        (3, "timeout", "never excused"),
        (9, "missing-packet", "the case has 3 steps"),
    ] {
        let root = common::temp_root(&[
            ("suites/s.yaml", &manifest(step, kind)),
            ("scenarios/x/c.yaml", CASE),
        ]);
        let e = suite::load(&root.path().join("suites/s.yaml"), root.path()).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
    }
}

/// Step 2 waits, at SHOULD level, for a PINGRESP nobody asked for; the MUST steps after it
/// hold on the reference broker.
const WARNED: &str = "name: warned\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - connect: {client: a}\n  - expect: {client: a, packet: pingresp, within: 100ms, level: should, statement: MQTT-4.13.1-1}\n  - send: {client: a, packet: pingreq}\n  - expect: {client: a, packet: pingresp}\n";

#[test]
fn warnings_are_shown_apart_and_fail_only_strict_runs() {
    let root = common::temp_root(&[common::ALL_SUITE, ("scenarios/x/w.yaml", WARNED)]);
    let out = common::cli(
        root.path(),
        &[
            "run",
            "--junit",
            "out/junit.xml",
            "--no-html",
            "--json-report",
            "out/r.json",
        ],
    );
    let (stdout, stderr) = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("WARN all / warned [5]"), "{stdout}");
    assert!(
        stdout.contains(
            "step 2 (expect): nothing matching arrived within 100ms [missing-packet, SHOULD level]"
        ),
        "{stdout}"
    );
    // The statement is quoted so that the judgement can be checked.
    assert!(stdout.contains("    MQTT-4.13.1-1: \""), "{stdout}");
    let total = stdout.lines().find(|l| l.starts_with("total")).unwrap();
    assert_eq!(
        total.split_whitespace().skip(1).collect::<Vec<_>>(),
        ["0", "1", "0", "0", "0"],
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.path().join("out/r.json")).unwrap())
            .unwrap();
    assert_eq!(json["summary"]["warnings"], 1);
    assert_eq!(json["results"][0]["verdict"], "warning");
    assert_eq!(json["results"][0]["warnings"][0]["kind"], "missing-packet");
    let xml = std::fs::read_to_string(root.path().join("out/junit.xml")).unwrap();
    assert!(xml.contains("WARNING MQTT-4.13.1-1 (SHOULD level"), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    if let Ok(lint) = std::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(common::repo().join("tests/data/junit-4.xsd"))
        .arg(root.path().join("out/junit.xml"))
        .output()
    {
        assert!(
            lint.status.success(),
            "xmllint: {}",
            String::from_utf8_lossy(&lint.stderr)
        );
    }

    let strict = common::cli(root.path(), &["run", "--strict", "--no-junit", "--no-html"]);
    assert_eq!(strict.status.code(), Some(1), "{:?}", common::text(&strict));
}

#[test]
fn an_unknown_broker_name_is_a_usage_error() {
    let root = common::temp_root(&[
        ("suites/s.yaml", &manifest(3, "missing-packet")),
        ("scenarios/x/c.yaml", CASE),
    ]);
    let out = common::cli(
        root.path(),
        &["run", "--no-junit", "--no-html", "--broker-name", "scriptd"],
    );
    let (stdout, stderr) = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("known names"), "{stderr}");
    assert!(stderr.contains("scripted"), "{stderr}");
    assert!(stderr.contains("mosquitto"), "{stderr}");
}

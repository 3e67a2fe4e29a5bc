//! Helpers shared by the integration tests: project roots in temporary directories, running
//! suites against the in-process reference broker, running the binary.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use mqtt_conformance::run::{self, CaseResult, RunConfig, Selection};
use mqtt_conformance::suite;
use mqtt_conformance::sut::{self, RunningTarget, TargetSpec};
use reference_broker::client::TransportOptions;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A project root in a temporary directory holding `files` (path, content).
pub fn temp_root(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

/// Load every suite of `root` (panicking on invalid files) and run it against a fresh
/// in-process reference broker.
pub async fn run_root(
    root: &Path,
    broker_name: &str,
    timeout: Duration,
    fail_fast: bool,
    jobs: usize,
) -> Vec<CaseResult> {
    let mut suites = Vec::new();
    for f in suite::resolve(root, &[]).unwrap() {
        let (s, errors) = suite::load(&f, root).unwrap();
        assert!(errors.is_empty(), "invalid scenario files: {errors:?}");
        suites.push(s);
    }
    let target = sut::start(&TargetSpec::Reference).await.unwrap();
    let transport = TransportOptions::default();
    let run_id = run::new_run_id();
    let (caps, _) = sut::probe(&target, &transport, &run_id).await.unwrap();
    let plan = run::plan(&suites, &Selection::default(), Some(&caps), broker_name);
    let cfg = RunConfig {
        fail_fast,
        run_id,
        transport,
        faults: Some(run::link::SharedInjector::embedded()),
        restart: Some(sut::RestartSupport::persistent()),
        ..RunConfig::new(&target.url, jobs, timeout)
    };
    let results = tokio::time::timeout(Duration::from_secs(120), run::execute(plan, cfg, |_| {}))
        .await
        .expect("the run finishes");
    target.shutdown().await;
    results
}

/// Plan the repository's suites against `target` (probed, its profile applied) and run the
/// runs whose case name is in `cases` (all when empty), each within `case_timeout` and the
/// whole within `run_timeout`.
pub async fn run_repo_cases(
    target: &RunningTarget,
    cases: &[&str],
    case_timeout: Duration,
    run_timeout: Duration,
) -> Vec<CaseResult> {
    let root = repo();
    let mut suites = Vec::new();
    for f in suite::resolve(&root, &[]).unwrap() {
        suites.push(suite::load(&f, &root).unwrap().0);
    }
    let transport = TransportOptions::default();
    let run_id = run::new_run_id();
    let (caps, _) = sut::probe(target, &transport, &run_id).await.unwrap();
    let plan: Vec<_> = run::plan(&suites, &Selection::default(), Some(&caps), &target.name)
        .into_iter()
        .filter(|p| cases.is_empty() || cases.contains(&p.case.scenario.name.as_str()))
        .enumerate()
        .map(|(i, mut p)| {
            p.index = i;
            p
        })
        .collect();
    let cfg = RunConfig {
        run_id,
        credentials: target.credentials.clone(),
        transport,
        faults: Some(run::link::SharedInjector::embedded()),
        topic_root: target.profile.acl.topic_root.clone(),
        ..RunConfig::new(&target.url, 16, case_timeout)
    };
    tokio::time::timeout(run_timeout, run::execute(plan, cfg, |_| {}))
        .await
        .expect("the run finishes")
}

/// Run the binary with `args` in `dir`.
pub fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// stdout and stderr as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A suite manifest selecting every scenario under `scenarios/`.
pub const ALL_SUITE: (&str, &str) = (
    "suites/all.yaml",
    "name: all\nscenarios: [\"scenarios/**/*.yaml\"]\n",
);

/// A case that passes on any conforming broker.
pub const PASSING: &str = r#"
name: pass-roundtrip
spec: {"3.1.1": [MQTT-3.8.4-1], "5": [MQTT-3.8.4-1]}
versions: ["3.1.1", "5"]
clients: {a: {}}
steps:
  - connect: {client: a}
  - subscribe: {client: a, filters: [{filter: t, qos: 1}]}
  - publish: {client: a, topic: t, payload: x, qos: 1}
  - expect: {client: a, topic: t, payload: x}
"#;

/// A case that fails on any conforming broker (wrong payload expected).
pub const FAILING: &str = r#"
name: fail-wrong-payload
spec: {"5": [MQTT-3.3.1-5]}
versions: ["5"]
clients: {a: {}}
steps:
  - connect: {client: a}
  - subscribe: {client: a, filters: [{filter: t, qos: 0}]}
  - publish: {client: a, topic: t, payload: sent}
  - expect: {client: a, topic: t, payload: other}
"#;

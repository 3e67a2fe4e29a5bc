//! The container path, proven with no registry: a `FROM scratch` image holding the
//! `reference-broker` binary (built by cargo here) and the libraries `ldd` lists is built
//! locally, started through the same testcontainers code as the EMQX preset
//! (`sut::container::start`), and judged by the suites. Without a Docker daemon these
//! tests print why they are skipped (on stderr, uncaptured); with
//! `MQTT_CONFORMANCE_REQUIRE_DOCKER=1` a missing daemon fails them instead.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mqtt_conformance::report::console;
use mqtt_conformance::run::{self, CaseResult, RunConfig, Selection, Verdict};
use mqtt_conformance::suite;
use mqtt_conformance::sut::container::ContainerSpec;
use mqtt_conformance::sut::{self, engine, local_image, TargetSpec};
use reference_broker::client::TransportOptions;
use tokio::sync::OnceCell;

const IMAGE: &str = "mqtt-conformance/reference-broker:local-test";

/// Say why a Docker test is skipped, past the test harness's capture; fail instead when CI
/// requires Docker.
fn skip(test: &str, reason: &str) {
    if std::env::var("MQTT_CONFORMANCE_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
        panic!("{test} needs Docker (MQTT_CONFORMANCE_REQUIRE_DOCKER=1): {reason}");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: needs Docker: {reason}");
}

/// Build `reference-broker` with cargo and return the executable cargo reports.
fn reference_broker_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "-p",
            "reference-broker",
            "--bin",
            "reference-broker",
            "--message-format=json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo build -p reference-broker failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "reference-broker")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo reports the reference-broker executable")
}

static BUILT: OnceCell<()> = OnceCell::const_new();

/// One runtime for every test here: testcontainers shares one Docker client across the
/// process, and a client must not outlive the runtime its connections were made on.
fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// The engine is there and the local image is built (once per test binary), or why not.
async fn local_image() -> Result<(), String> {
    engine::ensure().await.map_err(|e| e.to_string())?;
    BUILT
        .get_or_init(|| async {
            let binary = reference_broker_binary();
            let args = ["--listen".to_string(), "0.0.0.0:1883".to_string()];
            tokio::time::timeout(
                Duration::from_secs(180),
                local_image::build(&binary, &args, 1883, IMAGE),
            )
            .await
            .expect("the image builds within 3 minutes")
            .unwrap();
        })
        .await;
    Ok(())
}

fn spec() -> ContainerSpec {
    ContainerSpec {
        // The reference broker documents no deviations.
        name: "reference".into(),
        startup_timeout: Duration::from_secs(30),
        ..ContainerSpec::image(IMAGE, 1883)
    }
}

/// Run the named suites against a running target and return the results.
async fn run_suites(
    root: &Path,
    names: &[&str],
    target: &sut::RunningTarget,
    jobs: usize,
) -> Vec<CaseResult> {
    let wanted: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut suites = Vec::new();
    for f in suite::resolve(root, &wanted).unwrap() {
        let (s, errors) = suite::load(&f, root).unwrap();
        assert!(errors.is_empty(), "invalid scenario files: {errors:?}");
        suites.push(s);
    }
    let transport = TransportOptions {
        connect_timeout: Some(Duration::from_secs(5)),
        ..TransportOptions::default()
    };
    let run_id = run::new_run_id();
    let (caps, _) = sut::probe(target, &transport, &run_id).await.unwrap();
    let plan = run::plan(&suites, &Selection::default(), Some(&caps), &target.name);
    // A container cannot be restarted by a case (yet): restart_broker cases are skipped.
    let cfg = RunConfig {
        run_id,
        transport,
        faults: Some(run::link::SharedInjector::embedded()),
        ..RunConfig::new(&target.url, jobs, Duration::from_secs(15))
    };
    tokio::time::timeout(Duration::from_secs(240), run::execute(plan, cfg, |_| {}))
        .await
        .expect("the run finishes within 4 minutes")
}

fn assert_all_pass(results: &[CaseResult]) {
    assert!(!results.is_empty(), "no case ran");
    let bad: Vec<_> = results
        .iter()
        .filter(|r| !matches!(r.verdict, Verdict::Pass | Verdict::Skipped { .. }))
        .cloned()
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} runs did not pass:\n{}",
        bad.len(),
        results.len(),
        console::render(&bad, Duration::ZERO)
    );
    assert!(results.iter().any(|r| matches!(r.verdict, Verdict::Pass)));
}

async fn container_is_gone(id: &str) -> bool {
    let docker = testcontainers::core::client::docker_client_instance()
        .await
        .unwrap();
    match docker.inspect_container(id, None).await {
        Err(testcontainers::bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }) => true,
        Err(e) => panic!("inspecting {id}: {e}"),
        Ok(_) => false,
    }
}

#[test]
fn every_suite_passes_against_the_reference_broker_in_a_local_container() {
    rt().block_on(async {
        if let Err(reason) = local_image().await {
            return skip(
                "every_suite_passes_against_the_reference_broker_in_a_local_container",
                &reason,
            );
        }
        let target = sut::start(&TargetSpec::Container(spec())).await.unwrap();
        assert!(target.url.starts_with("mqtt://"), "{}", target.url);
        let root = common::repo();
        let results = run_suites(&root, &["smoke", "mqtt-3.1.1", "mqtt-5"], &target, 16).await;
        target.shutdown().await;
        assert_all_pass(&results);
        for suite in ["smoke", "mqtt-3.1.1", "mqtt-5"] {
            let n = results.iter().filter(|r| r.suite == suite).count();
            assert!(n > 0, "suite {suite} ran no case");
        }
    })
}

#[test]
fn the_container_is_removed_after_shutdown() {
    rt().block_on(async {
        if let Err(reason) = local_image().await {
            return skip("the_container_is_removed_after_shutdown", &reason);
        }
        let running = sut::container::start(&spec()).await.unwrap();
        let id = running.id().to_string();
        assert!(!container_is_gone(&id).await, "the container runs");
        running.stop().await;
        assert!(container_is_gone(&id).await, "the container was removed");
    })
}

#[test]
fn a_broker_that_never_accepts_mqtt_is_not_ready_and_is_removed() {
    rt().block_on(async {
        if let Err(reason) = local_image().await {
            return skip(
                "a_broker_that_never_accepts_mqtt_is_not_ready_and_is_removed",
                &reason,
            );
        }
        // MQTT is asked for on a port nothing listens on inside the container.
        let spec = ContainerSpec {
            startup_timeout: Duration::from_secs(3),
            ..ContainerSpec::image(IMAGE, 1999)
        };
        let err = sut::container::start(&spec).await.unwrap_err();
        assert!(
            matches!(
                err,
                sut::container::ContainerError::NotReady { .. }
                    | sut::container::ContainerError::Start { .. }
            ),
            "{err}"
        );
        let docker = testcontainers::core::client::docker_client_instance()
            .await
            .unwrap();
        let mut filters = std::collections::HashMap::new();
        filters.insert("ancestor".to_string(), vec![IMAGE.to_string()]);
        filters.insert("expose".to_string(), vec!["1999/tcp".to_string()]);
        let left = docker
            .list_containers(Some(
                testcontainers::bollard::query_parameters::ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap();
        assert!(left.is_empty(), "containers left behind: {left:?}");
    })
}

#[test]
fn the_cli_runs_the_smoke_suite_in_a_local_container() {
    rt().block_on(async {
        if let Err(reason) = local_image().await {
            return skip("the_cli_runs_the_smoke_suite_in_a_local_container", &reason);
        }
        let dir = tempfile::tempdir().unwrap();
        let junit = dir.path().join("junit.xml");
        let root = common::repo();
        let out = tokio::task::spawn_blocking(move || {
            common::cli(
                &root,
                &[
                    "run",
                    "--image",
                    IMAGE,
                    "--port",
                    "1883",
                    "--broker-name",
                    "reference",
                    "--suite",
                    "smoke",
                    "--junit",
                    junit.to_str().unwrap(),
                ],
            )
        })
        .await
        .unwrap();
        let (stdout, stderr) = common::text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
        assert!(xml.contains("<testsuite"), "{xml}");
        assert!(!xml.contains("<failure"), "{xml}");
    })
}

#[test]
fn an_image_that_cannot_be_pulled_exits_2_in_one_line() {
    rt().block_on(async {
        if let Err(reason) = engine::ensure().await {
            return skip(
                "an_image_that_cannot_be_pulled_exits_2_in_one_line",
                &reason.to_string(),
            );
        }
        let root = common::repo();
        let out = tokio::task::spawn_blocking(move || {
            common::cli(
                &root,
                &[
                    "run",
                    "--image",
                    "mqtt-conformance.invalid/no-such-broker:0",
                    "--suite",
                    "smoke",
                    "--no-junit",
                ],
            )
        })
        .await
        .unwrap();
        let (stdout, stderr) = common::text(&out);
        assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("cannot pull image mqtt-conformance.invalid/no-such-broker:0"),
            "{stderr}"
        );
    })
}

#[test]
fn no_docker_daemon_exits_2_in_one_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"))
        .current_dir(common::repo())
        .env(
            "DOCKER_HOST",
            "unix:///nonexistent/mqtt-conformance/docker.sock",
        )
        .args([
            "run",
            "--container",
            "emqx",
            "--suite",
            "smoke",
            "--no-junit",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no Docker daemon"), "{stderr}");
}

#[test]
fn the_fault_suite_runs_through_a_containerised_link() {
    rt().block_on(async {
        let root = common::repo();
        let manifest = root.join("suites/faults.yaml");
        if !root.join("scenarios/faults").is_dir() || !manifest.is_file() {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED the_fault_suite_runs_through_a_containerised_link: no scenarios/faults/ \
             and suites/faults.yaml in this tree"
            );
            return;
        }
        if let Err(reason) = local_image().await {
            return skip("the_fault_suite_runs_through_a_containerised_link", &reason);
        }
        let target = sut::start(&TargetSpec::Container(spec())).await.unwrap();
        let results = run_suites(&root, &["faults"], &target, 8).await;
        target.shutdown().await;
        assert_all_pass(&results);
    })
}

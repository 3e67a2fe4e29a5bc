//! The binary with faults: `toxiproxy --listen` serves the Toxiproxy API standalone, and
//! `run --toxiproxy URL` drives the fault steps of a suite through it.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child on drop, so a failing assertion leaves no server behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn run_drives_fault_steps_through_a_standalone_toxiproxy_server() {
    let mut server = Child(
        Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"))
            .args(["toxiproxy", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let api = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no API address in {line:?}"))
        .to_string();
    let started = Instant::now();
    let out = common::cli(
        &common::repo(),
        &[
            "run",
            "--suite",
            "faults",
            "--filter",
            "fault-will-on-cut",
            "--no-junit",
            "--json",
            "--toxiproxy",
            &api,
        ],
    );
    let (stdout, stderr) = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // Both versions ran (and passed: exit 0) through the server's proxies.
    assert_eq!(
        stdout.matches("\"fault-will-on-cut\"").count(),
        2,
        "{stdout}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_bad_toxiproxy_url_is_a_usage_error() {
    let dir = common::temp_root(&[common::ALL_SUITE, ("scenarios/a.yaml", common::PASSING)]);
    let out = common::cli(
        dir.path(),
        &["run", "--no-junit", "--toxiproxy", "https://h:8474/x"],
    );
    let (_, stderr) = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--toxiproxy"), "{stderr}");
}

#[test]
fn an_unreachable_toxiproxy_is_a_harness_error_not_broker_failures() {
    let fault_case = r#"
name: cut-case
spec: {"5": [MQTT-3.1.2-8]}
versions: ["5"]
clients: {a: {}}
steps:
  - connect: {client: a}
  - cut: {client: a}
"#;
    let dir = common::temp_root(&[
        common::ALL_SUITE,
        ("scenarios/a.yaml", common::PASSING),
        ("scenarios/b.yaml", fault_case),
    ]);
    // Nothing listens on port 1: the run stops before any case, with exit code 2 (our side),
    // instead of failing the fault cases against the broker.
    let out = common::cli(
        dir.path(),
        &["run", "--no-junit", "--toxiproxy", "http://127.0.0.1:1"],
    );
    let (stdout, stderr) = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("cannot reach the Toxiproxy API at 127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

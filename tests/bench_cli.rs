//! The `bench` subcommand end to end: the binary against its in-process reference broker.
#![allow(clippy::unwrap_used)]

use std::process::Output;
use std::time::Duration;

use tokio::process::Command;

/// Run the binary with `args`, killed if it takes longer than a minute.
async fn bench(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"))
        .arg("bench")
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("bench did not finish in 60 s")
        .unwrap()
}

#[tokio::test]
async fn bench_json_prints_one_object_with_exact_counts() {
    let out = bench(&[
        "--pubs",
        "2",
        "--subs",
        "2",
        "--count",
        "200",
        "--qos",
        "2",
        "--pattern",
        "pairwise",
        "--json",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sent"], 200);
    assert_eq!(v["received"], 200);
    assert_eq!(v["lost"], 0);
    assert_eq!(v["duplicated"], 0);
    assert!(v["p99_us"].as_u64().unwrap() >= v["p50_us"].as_u64().unwrap());
}

#[tokio::test]
async fn bench_refuses_a_payload_too_small_for_the_stamp() {
    let out = bench(&["--payload", "4", "--count", "1"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--payload"));
}

#[tokio::test]
async fn faults_need_a_soak() {
    let out = bench(&["--faults", "--count", "1"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--soak"));
}

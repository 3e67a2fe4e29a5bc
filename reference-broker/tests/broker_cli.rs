//! The `reference-broker` binary: `--listen 127.0.0.1:0` prints `listening on ADDR`, serves
//! MQTT there, and exits cleanly on SIGTERM.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Stdio;

use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn binary_listens_prints_address_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reference-broker"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let addr: std::net::SocketAddr = line.strip_prefix("listening on ").unwrap().parse().unwrap();
    assert_ne!(addr.port(), 0);
    let (mut c, _) = Client::connect(addr, V4, "cli", true).await;
    c.send(reference_broker::codec::Packet::PingReq).await;
    assert_eq!(c.recv().await, reference_broker::codec::Packet::PingResp);
    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(c.expect_closed().await.is_empty());
}

#[tokio::test]
async fn hash_password_subcommand() {
    let out = Command::new(env!("CARGO_BIN_EXE_reference-broker"))
        .args(["hash-password", "pw", "--salt", "abc"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(reference_broker::broker::auth::verify_password(
        b"pw",
        hash.trim()
    ));
}

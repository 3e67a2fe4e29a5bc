//! The embedded Toxiproxy-compatible server, driven over HTTP by `toxiproxy_rust` itself.
#![allow(clippy::unwrap_used)]

mod fault_common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fault_common::*;
use mqtt_conformance::fault::{serve, ServerHandle};
use tokio::io::AsyncWriteExt;
use toxiproxy_rust::client::Client;
use toxiproxy_rust::proxy::{Proxy, ProxyPack};

/// Starts the API on port 0 and a proxy `name` to a fresh echo server; returns the API
/// address, the proxy's listen address and the server handle.
async fn setup(name: &'static str) -> (SocketAddr, SocketAddr, ServerHandle) {
    let echo = echo_server().await;
    let (api, handle) = serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let listen = blocking(api, move |client| {
        let proxies = client
            .populate(vec![ProxyPack::new(
                name.into(),
                "127.0.0.1:0".into(),
                echo.to_string(),
            )])
            .unwrap();
        assert_eq!(proxies.len(), 1);
        assert_eq!(proxies[0].proxy_pack.upstream, echo.to_string());
        proxies[0].proxy_pack.listen.clone()
    })
    .await;
    let listen: SocketAddr = listen.parse().unwrap();
    assert_ne!(
        listen.port(),
        0,
        "port 0 must be reported as the bound port"
    );
    (api, listen, handle)
}

/// Runs a `toxiproxy_rust` call on a blocking thread (it panics on a runtime thread).
async fn blocking<T: Send + 'static>(
    api: SocketAddr,
    op: impl FnOnce(&Client) -> T + Send + 'static,
) -> T {
    tokio::time::timeout(
        PATIENCE,
        tokio::task::spawn_blocking(move || op(&Client::new(api))),
    )
    .await
    .expect("toxiproxy call timed out")
    .unwrap()
}

fn proxy(client: &Client, name: &str) -> Proxy {
    client.find_proxy(name).unwrap()
}

#[tokio::test]
async fn populate_reports_bound_port_and_data_passes() {
    let (api, listen, _server) = setup("p").await;
    let (version, all) = blocking(api, |client| {
        (client.version().unwrap(), client.all().unwrap())
    })
    .await;
    assert!(version.contains("version"), "{version}");
    assert_eq!(all.len(), 1);
    assert_eq!(all["p"].proxy_pack.listen, listen.to_string());
    assert!(all["p"].proxy_pack.enabled);

    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"hello through the proxy").await;
}

#[tokio::test]
async fn latency_delays_data_and_shows_in_the_api() {
    let (api, listen, _server) = setup("lat").await;
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"warm-up").await;

    let toxics = blocking(api, |client| {
        let proxy = proxy(client, "lat");
        proxy.with_latency("downstream".into(), 300, 0, 1.0);
        proxy.toxics().unwrap()
    })
    .await;
    assert_eq!(toxics.len(), 1);
    assert_eq!(toxics[0].name, "latency_downstream");
    assert_eq!(toxics[0].r#type, "latency");
    assert_eq!(toxics[0].stream, "downstream");
    assert_eq!(toxics[0].attributes["latency"], 300);
    assert_eq!(toxics[0].attributes["jitter"], 0);

    // The existing connection is affected too.
    let started = Instant::now();
    assert_echo(&mut stream, b"slow").await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < PATIENCE, "{elapsed:?}");
}

#[tokio::test]
async fn limit_data_closes_after_n_bytes() {
    let (api, listen, _server) = setup("limit").await;
    blocking(api, |client| {
        proxy(client, "limit").with_limit_data("downstream".into(), 10, 1.0);
    })
    .await;
    let mut stream = connect(listen).await;
    let sent: Vec<u8> = (0..32).collect();
    stream.write_all(&sent).await.unwrap();
    let (received, _ended) = read_to_end(&mut stream).await;
    assert_eq!(received, &sent[..10]);
}

#[tokio::test]
async fn slicer_delivers_everything_in_order() {
    let (api, listen, _server) = setup("slice").await;
    blocking(api, |client| {
        let proxy = proxy(client, "slice");
        proxy.with_slicer("upstream".into(), 1, 0, 10, 1.0);
        proxy.with_slicer("downstream".into(), 3, 2, 10, 1.0);
        assert_eq!(proxy.toxics().unwrap().len(), 2);
    })
    .await;
    let mut stream = connect(listen).await;
    let sent: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    assert_echo(&mut stream, &sent).await;
}

#[tokio::test]
async fn timeout_zero_blackholes_and_heal_restores() {
    let (api, listen, _server) = setup("hole").await;
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"before").await;

    blocking(api, |client| {
        proxy(client, "hole").with_timeout("upstream".into(), 0, 1.0);
    })
    .await;
    stream.write_all(b"lost").await.unwrap();
    assert_silent(&mut stream, Duration::from_millis(300)).await;

    let left = blocking(api, |client| {
        let proxy = proxy(client, "hole");
        proxy.delete_all_toxics().unwrap();
        proxy.toxics().unwrap()
    })
    .await;
    assert!(left.is_empty());
    // As in Toxiproxy, removing the timeout closes the connections it held (the bytes it dropped
    // would leave a hole in their streams); new connections pass data again.
    let (received, ended) = read_to_end(&mut stream).await;
    assert!(received.is_empty(), "{received:?}");
    ended.unwrap();
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"after").await;
}

#[tokio::test]
async fn delete_all_toxics_removes_downstream_ones_too() {
    let (api, listen, _server) = setup("heal").await;
    let left = blocking(api, |client| {
        let proxy = proxy(client, "heal");
        proxy.with_latency("upstream".into(), 10, 0, 1.0);
        proxy.with_limit_data("downstream".into(), 4, 1.0);
        proxy.with_slow_close("downstream".into(), 10, 1.0);
        assert_eq!(proxy.toxics().unwrap().len(), 3);
        proxy.delete_all_toxics().unwrap();
        proxy.toxics().unwrap()
    })
    .await;
    assert!(left.is_empty(), "{left:?}");
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"more than four bytes").await;
}

#[tokio::test]
async fn disable_cuts_connections_and_refuses_new_ones() {
    let (api, listen, _server) = setup("cut").await;
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"up").await;

    let enabled = blocking(api, |client| {
        proxy(client, "cut").disable().unwrap();
        proxy(client, "cut").proxy_pack.enabled
    })
    .await;
    assert!(!enabled);
    let (received, ended) = read_to_end(&mut stream).await;
    assert!(received.is_empty());
    ended.unwrap();
    let refused = tokio::time::timeout(PATIENCE, tokio::net::TcpStream::connect(listen))
        .await
        .unwrap();
    assert!(refused.is_err(), "a disabled proxy must refuse connections");

    blocking(api, |client| proxy(client, "cut").enable().unwrap()).await;
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"up again").await;
}

#[tokio::test]
async fn reset_peer_resets_the_connection() {
    let (api, listen, _server) = setup("rst").await;
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"alive").await;
    // toxiproxy_rust has no reset_peer: a raw request, as a Toxiproxy user would send it.
    let status = tokio::task::spawn_blocking(move || {
        reqwest::blocking::Client::new()
            .post(format!("http://{api}/proxies/rst/toxics"))
            .body(r#"{"type":"reset_peer","stream":"downstream","attributes":{"timeout":0}}"#)
            .send()
            .unwrap()
            .status()
    })
    .await
    .unwrap();
    assert!(status.is_success(), "{status}");
    // The toxic waits for data on its stream: the echo of this write triggers it.
    stream.write_all(b"trigger").await.unwrap();
    let (received, ended) = read_to_end(&mut stream).await;
    assert!(received.is_empty(), "the triggering chunk must be dropped");
    assert_eq!(
        ended.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset
    );

    // New connections are reset too, until the toxic is removed.
    let mut stream = connect(listen).await;
    stream.write_all(b"trigger").await.unwrap();
    assert_reset(&mut stream).await;
    blocking(api, |client| {
        proxy(client, "rst").delete_all_toxics().unwrap()
    })
    .await;
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"healed").await;
}

#[tokio::test]
async fn reset_endpoint_enables_and_heals_every_proxy() {
    let (api, listen, _server) = setup("r").await;
    let state = blocking(api, |client| {
        let proxy = proxy(client, "r");
        proxy.with_timeout("downstream".into(), 0, 1.0);
        proxy.disable().unwrap();
        client.reset().unwrap();
        client.find_proxy("r").unwrap().proxy_pack
    })
    .await;
    assert!(state.enabled);
    assert!(state.toxics.is_empty());
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"clean").await;
}

#[tokio::test]
async fn errors_carry_toxiproxy_status_codes() {
    let (api, _listen, _server) = setup("e").await;
    let statuses = tokio::task::spawn_blocking(move || {
        let http = reqwest::blocking::Client::new();
        let url = |path: &str| format!("http://{api}{path}");
        let proxy = r#"{"name":"e","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"}"#;
        let latency = r#"{"type":"latency","attributes":{"latency":1}}"#;
        vec![
            http.get(url("/proxies/nope")).send().unwrap().status(),
            http.post(url("/proxies"))
                .body(proxy)
                .send()
                .unwrap()
                .status(),
            http.post(url("/proxies/e/toxics"))
                .body(r#"{"type":"no_such_toxic"}"#)
                .send()
                .unwrap()
                .status(),
            http.post(url("/proxies/e/toxics"))
                .body(latency)
                .send()
                .unwrap()
                .status(),
            http.post(url("/proxies/e/toxics"))
                .body(latency)
                .send()
                .unwrap()
                .status(),
            http.delete(url("/proxies/e/toxics/latency_downstream"))
                .send()
                .unwrap()
                .status(),
            http.delete(url("/proxies/e/toxics/latency_downstream"))
                .send()
                .unwrap()
                .status(),
        ]
    })
    .await
    .unwrap();
    let codes: Vec<u16> = statuses.iter().map(|s| s.as_u16()).collect();
    assert_eq!(codes, [404, 409, 400, 200, 409, 204, 404]);
}

#[tokio::test]
async fn shutdown_closes_proxies_and_the_api() {
    let (api, listen, server) = setup("s").await;
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"x").await;
    tokio::time::timeout(PATIENCE, server.shutdown())
        .await
        .unwrap()
        .unwrap();
    let (_, ended) = read_to_end(&mut stream).await;
    ended.unwrap();
    assert!(tokio::net::TcpStream::connect(listen).await.is_err());
    assert!(tokio::net::TcpStream::connect(api).await.is_err());
}

#[tokio::test]
async fn toxic_update_merges_attributes_and_applies_live() {
    let (api, listen, _server) = setup("u").await;
    let mut stream = connect(listen).await;
    blocking(api, |client| {
        proxy(client, "u").with_latency("downstream".into(), 3000, 0, 1.0);
    })
    .await;
    let (status, body) = tokio::task::spawn_blocking(move || {
        let response = reqwest::blocking::Client::new()
            .post(format!("http://{api}/proxies/u/toxics/latency_downstream"))
            .body(r#"{"attributes":{"latency":10}}"#)
            .send()
            .unwrap();
        (response.status(), response.text().unwrap())
    })
    .await
    .unwrap();
    assert!(status.is_success(), "{status} {body}");
    let toxics = blocking(api, |client| proxy(client, "u").toxics().unwrap()).await;
    assert_eq!(toxics.len(), 1);
    assert_eq!(toxics[0].attributes["latency"], 10);
    assert_eq!(toxics[0].attributes["jitter"], 0);
    let started = Instant::now();
    assert_echo(&mut stream, b"fast again").await;
    assert!(started.elapsed() < Duration::from_millis(3000));
}

#[tokio::test]
async fn run_until_serves_until_the_signal() {
    let (api, listen, server) = setup("sig").await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run_until(stopped));
    let version = blocking(api, |client| client.version().unwrap()).await;
    assert!(version.contains("version"));
    stop.send(()).unwrap();
    tokio::time::timeout(PATIENCE, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(listen).await.is_err());
    assert!(tokio::net::TcpStream::connect(api).await.is_err());
}

#[tokio::test]
async fn proxies_created_disabled_refuse_and_cannot_move() {
    let (api, _listen, _server) = setup("base").await;
    let echo = echo_server().await;
    let (created, moved, listen) = tokio::task::spawn_blocking(move || {
        let http = reqwest::blocking::Client::new();
        let body = format!(
            r#"{{"name":"off","listen":"127.0.0.1:0","upstream":"{echo}","enabled":false}}"#
        );
        let created = http
            .post(format!("http://{api}/proxies"))
            .body(body)
            .send()
            .unwrap();
        let status = created.status().as_u16();
        let proxy: serde_json::Value = created.json().unwrap();
        let moved = http
            .post(format!("http://{api}/proxies/off"))
            .body(r#"{"upstream":"127.0.0.1:1"}"#)
            .send()
            .unwrap()
            .status()
            .as_u16();
        (status, moved, proxy["listen"].as_str().unwrap().to_owned())
    })
    .await
    .unwrap();
    assert_eq!(created, 201);
    assert_eq!(moved, 400);
    let listen: SocketAddr = listen.parse().unwrap();
    assert_ne!(listen.port(), 0);
    assert!(tokio::net::TcpStream::connect(listen).await.is_err());
    blocking(api, |client| proxy(client, "off").enable().unwrap()).await;
    let mut stream = connect(listen).await;
    assert_echo(&mut stream, b"on").await;
}

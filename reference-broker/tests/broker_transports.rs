//! TLS, WebSocket and WebSocket-over-TLS listeners from configuration, exercised with the
//! reference client, plus the TOML configuration path and the CONNECT timeout.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use reference_broker::broker::{Broker, BrokerConfig, ListenerConfig, ListenerKind};
use reference_broker::client::{Connection, Received, TransportOptions};
use reference_broker::codec::*;
use support::*;

struct CertFiles {
    _dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn cert_files(name: &str) -> CertFiles {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("rb-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    CertFiles {
        _dir: dir,
        cert,
        key,
    }
}

async fn round_trip(url: &str) {
    let options = TransportOptions {
        insecure_tls: true,
        ..Default::default()
    };
    let mut c = Connection::open(url, &options).await.unwrap();
    c.set_version(ProtocolVersion::V5);
    c.send(&Packet::Connect(Box::new(connect_packet(V5, "t", true))))
        .await
        .unwrap();
    let wait = Duration::from_secs(5);
    assert!(
        matches!(c.recv(wait).await.unwrap(), Received::Packet(Packet::ConnAck(a)) if a.code == ReasonCode::SUCCESS)
    );
    c.send(&Packet::Subscribe(subscribe_packet(
        1,
        "tr/#",
        QoS::AtLeastOnce,
    )))
    .await
    .unwrap();
    assert!(matches!(
        c.recv(wait).await.unwrap(),
        Received::Packet(Packet::SubAck(_))
    ));
    c.send(&Packet::Publish(publish_packet(
        "tr/x",
        b"over the wire",
        QoS::AtLeastOnce,
        2,
    )))
    .await
    .unwrap();
    let mut got_ack = false;
    let mut got_msg = false;
    while !(got_ack && got_msg) {
        match c.recv(wait).await.unwrap() {
            Received::Packet(Packet::PubAck(a)) if a.packet_id == 2 => got_ack = true,
            Received::Packet(Packet::Publish(p)) => {
                assert_eq!(&p.payload[..], b"over the wire");
                got_msg = true;
                c.send(&Packet::PubAck(PubResponse {
                    packet_id: p.packet_id,
                    ..Default::default()
                }))
                .await
                .unwrap();
            }
            other => panic!("{url}: unexpected {other:?}"),
        }
    }
    c.send(&Packet::Disconnect(Disconnect::default()))
        .await
        .unwrap();
}

#[tokio::test]
async fn tls_ws_and_wss_listeners() {
    let files = cert_files("all");
    let mut config = BrokerConfig::default_tcp("127.0.0.1:0".parse().unwrap());
    for kind in [ListenerKind::Tls, ListenerKind::Ws, ListenerKind::Wss] {
        config.listeners.push(ListenerConfig {
            kind,
            bind: "127.0.0.1:0".parse().unwrap(),
            cert: Some(files.cert.clone()),
            key: Some(files.key.clone()),
        });
    }
    let broker = Broker::bind(config).await.unwrap();
    assert_eq!(broker.local_addrs().len(), 4);
    let tls = broker.addr_of(ListenerKind::Tls).unwrap();
    let ws = broker.addr_of(ListenerKind::Ws).unwrap();
    let wss = broker.addr_of(ListenerKind::Wss).unwrap();
    round_trip(&format!("mqtts://127.0.0.1:{}", tls.port())).await;
    round_trip(&format!("ws://127.0.0.1:{}/mqtt", ws.port())).await;
    round_trip(&format!("wss://127.0.0.1:{}/mqtt", wss.port())).await;
    // A WebSocket handshake without the `mqtt` subprotocol is refused.
    let mut raw = tokio::net::TcpStream::connect(ws).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    raw.write_all(
        b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(WAIT, raw.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 400"));
    broker.shutdown().await;
}

#[tokio::test]
async fn tls_listener_without_key_is_an_error() {
    let mut config = BrokerConfig::default_tcp("127.0.0.1:0".parse().unwrap());
    config.listeners[0].kind = ListenerKind::Tls;
    assert!(Broker::bind(config).await.is_err());
}

#[tokio::test]
async fn config_from_toml_file() {
    let files = cert_files("toml");
    let path = files.cert.with_file_name("broker.toml");
    std::fs::write(
        &path,
        format!(
            "[[listener]]\nbind = \"127.0.0.1:0\"\n\n[[listener]]\nkind = \"tls\"\nbind = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\n\n[limits]\nmaximum_qos = 1\n",
            files.cert, files.key
        ),
    )
    .unwrap();
    let config = BrokerConfig::from_file(&path).unwrap();
    let broker = Broker::bind(config).await.unwrap();
    let (_c, ack) = Client::connect(broker.tcp_addr().unwrap(), V5, "c", true).await;
    assert_eq!(ack.properties.maximum_qos, Some(1));
    broker.shutdown().await;
}

#[tokio::test]
async fn silent_socket_closed_after_connect_timeout() {
    let broker = start_with(|c| c.limits.connect_timeout_secs = 1).await;
    let mut c = Client::open(broker.tcp_addr().unwrap(), V4).await;
    // Nothing sent: closed without any packet.
    assert!(c.expect_closed().await.is_empty());
    broker.shutdown().await;
}

//! The packet-level client connection against a scripted in-test peer that speaks raw bytes,
//! so these tests depend on neither the broker nor a real network.
#![allow(clippy::unwrap_used, clippy::result_large_err)]

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use reference_broker::client::{
    ClientError, Connection, Direction, Received, TraceEvent, TransportOptions,
};
use reference_broker::codec::{
    ConnAck, Connect, Packet, ProtocolVersion, PubResponse, Publish, QoS, ReasonCode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(5);

/// CONNACK, 3.1.1, accepted.
const CONNACK_OK: &[u8] = &[0x20, 0x02, 0x00, 0x00];
/// PUBLISH QoS 1 topic "t" id 1 payload "21.5".
const PUBLISH_Q1: &[u8] = &[
    0x32, 0x09, 0x00, 0x01, b't', 0x00, 0x01, b'2', b'1', b'.', b'5',
];

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("mqtt://{}", l.local_addr().unwrap());
    (l, url)
}

/// Read one whole MQTT packet as bytes (fixed header parsed by hand).
async fn read_packet(s: &mut TcpStream) -> Vec<u8> {
    let mut out = vec![s.read_u8().await.unwrap()];
    let mut len = 0usize;
    let mut shift = 0;
    loop {
        let b = s.read_u8().await.unwrap();
        out.push(b);
        len |= ((b & 0x7f) as usize) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0; len];
    s.read_exact(&mut body).await.unwrap();
    out.extend(body);
    out
}

fn connect(version: ProtocolVersion) -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 60,
        client_id: "a".into(),
        will: None,
        username: None,
        password: None,
        properties: Default::default(),
    }))
}

async fn recv_packet(c: &mut Connection) -> Packet {
    match c.recv(T).await.unwrap() {
        Received::Packet(p) => p,
        Received::Closed => panic!("closed; trace:\n{}", c.trace()),
    }
}

#[tokio::test]
async fn connect_connack_publish_exchange_and_trace_text() {
    let (l, url) = listener().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let connect = read_packet(&mut s).await;
        s.write_all(CONNACK_OK).await.unwrap();
        s.write_all(PUBLISH_Q1).await.unwrap();
        let puback = read_packet(&mut s).await;
        (connect, puback)
    });
    let mut c = Connection::open(&url, &TransportOptions::default())
        .await
        .unwrap();
    c.send(&connect(ProtocolVersion::V3_1_1)).await.unwrap();
    assert_eq!(c.version(), ProtocolVersion::V3_1_1);
    assert_eq!(
        recv_packet(&mut c).await,
        Packet::ConnAck(ConnAck {
            session_present: false,
            code: ReasonCode::SUCCESS,
            properties: Default::default(),
        })
    );
    let Packet::Publish(p) = recv_packet(&mut c).await else {
        panic!("expected PUBLISH")
    };
    assert_eq!(
        (&*p.topic, p.qos, p.packet_id, &p.payload[..]),
        ("t", QoS::AtLeastOnce, 1, &b"21.5"[..])
    );
    c.send(&Packet::PubAck(PubResponse {
        packet_id: 1,
        ..Default::default()
    }))
    .await
    .unwrap();
    let (connect_bytes, puback_bytes) = timeout(T, peer).await.unwrap().unwrap();
    // 3.1.1 CONNECT: name "MQTT", level 4, flags clean session, keep alive 60, id "a".
    assert_eq!(
        connect_bytes,
        [0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'a']
    );
    assert_eq!(puback_bytes, [0x40, 0x02, 0x00, 0x01]);
    assert_eq!(recv_closed(&mut c).await, Received::Closed);

    let text = c.trace().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    let bodies: Vec<&str> = lines
        .iter()
        .map(|l| l.split_once("  ").unwrap().1)
        .collect();
    assert_eq!(
        bodies,
        [
            "-> CONNECT v3.1.1 client_id=\"a\" clean_session keep_alive=60",
            "<- CONNACK session_present=0 reason=0x00 (Success)",
            "<- PUBLISH topic=\"t\" qos=1 id=1 retain=0 dup=0 payload=\"21.5\" (4 B)",
            "-> PUBACK id=1",
            "<- closed by broker",
        ]
    );
    for l in &lines {
        assert!(l.starts_with("+0.") && l.contains("s  "), "{l}");
    }
}

async fn recv_closed(c: &mut Connection) -> Received {
    c.recv(T).await.unwrap()
}

#[tokio::test]
async fn split_delivery_survives_a_timed_out_recv() {
    let (l, url) = listener().await;
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let peer = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        s.write_all(&PUBLISH_Q1[..5]).await.unwrap();
        s.flush().await.unwrap();
        go_rx.await.unwrap();
        s.write_all(&PUBLISH_Q1[5..]).await.unwrap();
        s.write_all(CONNACK_OK).await.unwrap();
        s
    });
    let mut c = Connection::open(&url, &TransportOptions::default())
        .await
        .unwrap();
    // Only half a packet is there: the recv times out, and its bytes must not be lost.
    let r = c.recv(Duration::from_millis(100)).await;
    assert!(matches!(r, Err(ClientError::Timeout(..))), "{r:?}");
    // Cancel a recv from outside too, as select! would.
    assert!(timeout(Duration::from_millis(20), c.recv_any())
        .await
        .is_err());
    go_tx.send(()).unwrap();
    let Packet::Publish(p) = recv_packet(&mut c).await else {
        panic!("expected PUBLISH")
    };
    assert_eq!(&p.payload[..], b"21.5");
    assert!(matches!(recv_packet(&mut c).await, Packet::ConnAck(_)));
    drop(timeout(T, peer).await.unwrap().unwrap());
}

#[tokio::test]
async fn byte_by_byte_delivery() {
    let (l, url) = listener().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        for b in PUBLISH_Q1 {
            s.write_all(&[*b]).await.unwrap();
            s.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
    });
    let mut c = Connection::open(&url, &TransportOptions::default())
        .await
        .unwrap();
    assert!(matches!(recv_packet(&mut c).await, Packet::Publish(_)));
    assert_eq!(recv_closed(&mut c).await, Received::Closed);
    timeout(T, peer).await.unwrap().unwrap();
}

#[tokio::test]
async fn close_and_reset_are_reported_as_closed() {
    let (l, url) = listener().await;
    let peer = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        drop(s); // FIN
        let (s, _) = l.accept().await.unwrap();
        s.set_zero_linger().unwrap();
        drop(s); // RST
    });
    for _ in 0..2 {
        let mut c = Connection::open(&url, &TransportOptions::default())
            .await
            .unwrap();
        assert_eq!(recv_closed(&mut c).await, Received::Closed);
        // Reported again, recorded once.
        assert_eq!(recv_closed(&mut c).await, Received::Closed);
        let closes = c
            .trace()
            .iter()
            .filter(|e| matches!(e.event, TraceEvent::Closed(_)))
            .count();
        assert_eq!(closes, 1, "{}", c.trace());
        assert!(c.trace().to_string().contains("<- closed by broker"));
        assert!(!c.is_open());
        let err = c.send_raw(&[0xc0, 0x00]).await.unwrap_err();
        assert!(matches!(err, ClientError::Closed(_)), "{err}");
    }
    timeout(T, peer).await.unwrap().unwrap();
}

#[tokio::test]
async fn close_with_partial_packet_names_the_leftover_bytes() {
    let (l, url) = listener().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        s.write_all(&[0x32, 0x09, 0x00]).await.unwrap();
    });
    let mut c = Connection::open(&url, &TransportOptions::default())
        .await
        .unwrap();
    assert_eq!(recv_closed(&mut c).await, Received::Closed);
    let text = c.trace().to_string();
    assert!(
        text.contains("closed by broker with 3 undecoded bytes: 32 09 00"),
        "{text}"
    );
    timeout(T, peer).await.unwrap().unwrap();
}

#[tokio::test]
async fn timeout_when_the_peer_is_silent() {
    let (l, url) = listener().await;
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let peer = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        done_rx.await.unwrap();
        drop(s);
    });
    let mut c = Connection::open(&url, &TransportOptions::default())
        .await
        .unwrap();
    let err = c.recv(Duration::from_millis(50)).await.unwrap_err();
    match &err {
        ClientError::Timeout(d, what) => {
            assert_eq!(*d, Duration::from_millis(50));
            assert!(what.contains("packet"));
        }
        other => panic!("expected timeout, got {other}"),
    }
    assert!(err.to_string().starts_with("timed out after 50ms"));
    done_tx.send(()).unwrap();
    assert_eq!(recv_closed(&mut c).await, Received::Closed);
    timeout(T, peer).await.unwrap().unwrap();
}

#[tokio::test]
async fn raw_bytes_go_out_unchanged_and_are_traced() {
    let (l, url) = listener().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut got = [0u8; 5];
        s.read_exact(&mut got).await.unwrap();
        got
    });
    let mut c = Connection::open(&url, &TransportOptions::default())
        .await
        .unwrap();
    // A PUBLISH with QoS 3: invalid on purpose.
    c.send_raw(&[0x36, 0x03, 0x00, 0x01, b'x']).await.unwrap();
    assert_eq!(
        timeout(T, peer).await.unwrap().unwrap(),
        [0x36, 0x03, 0x00, 0x01, b'x']
    );
    let e = &c.trace().iter().next().unwrap();
    assert_eq!(e.direction, Direction::Sent);
    assert_eq!(
        e.event,
        TraceEvent::Raw(Bytes::from_static(&[0x36, 0x03, 0x00, 0x01, b'x']))
    );
    assert!(c.trace().to_string().contains("-> raw 5 B: 36 03 00 01 78"));
}

#[tokio::test]
async fn malformed_input_is_a_decode_error_in_the_trace() {
    let (l, url) = listener().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        // Packet type 0 is reserved.
        s.write_all(&[0x00, 0x00]).await.unwrap();
        s
    });
    let mut c = Connection::open(&url, &TransportOptions::default())
        .await
        .unwrap();
    let err = c.recv(T).await.unwrap_err();
    assert!(matches!(err, ClientError::Decode(_)), "{err}");
    let text = c.trace().to_string();
    assert!(text.contains("<- raw 2 B: 00 00"), "{text}");
    assert!(text.contains("decode error"), "{text}");
    drop(timeout(T, peer).await.unwrap().unwrap());
}

#[tokio::test]
async fn v5_connack_properties_are_decoded_and_listed() {
    let (l, url) = listener().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let connect = read_packet(&mut s).await;
        // CONNACK v5: session present, success, properties: receive maximum 10 (0x21),
        // topic alias maximum 5 (0x22).
        s.write_all(&[
            0x20, 0x09, 0x01, 0x00, 0x06, 0x21, 0x00, 0x0a, 0x22, 0x00, 0x05,
        ])
        .await
        .unwrap();
        (connect, s)
    });
    let mut c = Connection::open(&url, &TransportOptions::default())
        .await
        .unwrap();
    c.send(&connect(ProtocolVersion::V5)).await.unwrap();
    let Packet::ConnAck(ack) = recv_packet(&mut c).await else {
        panic!("expected CONNACK")
    };
    assert!(ack.session_present);
    assert_eq!(ack.properties.receive_maximum, Some(10));
    assert_eq!(ack.properties.topic_alias_maximum, Some(5));
    let (connect_bytes, _s) = timeout(T, peer).await.unwrap().unwrap();
    assert_eq!(connect_bytes[8], 5, "protocol level 5");
    let text = c.trace().to_string();
    assert!(
        text.contains("-> CONNECT v5 client_id=\"a\" clean_start keep_alive=60"),
        "{text}"
    );
    assert!(
        text.contains(
            "<- CONNACK session_present=1 reason=0x00 (Success) [receive_maximum=10 topic_alias_maximum=5]"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn abort_resets_the_connection() {
    let (l, url) = listener().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = [0u8; 16];
        s.read(&mut buf).await
    });
    let c = Connection::open(&url, &TransportOptions::default())
        .await
        .unwrap();
    c.abort();
    let r = timeout(T, peer).await.unwrap().unwrap();
    // SO_LINGER 0: the peer sees a reset, not an orderly EOF.
    assert_eq!(
        r.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
}

#[tokio::test]
async fn kill_keeps_the_trace() {
    let (l, url) = listener().await;
    let peer = tokio::spawn(async move { l.accept().await.unwrap() });
    let mut c = Connection::open(&url, &TransportOptions::default())
        .await
        .unwrap();
    c.note("fault: cut");
    c.kill();
    assert!(!c.is_open());
    let text = c.trace().to_string();
    assert!(text.contains("-- fault: cut"), "{text}");
    assert!(text.contains("-> closed abruptly by client"), "{text}");
    drop(timeout(T, peer).await.unwrap().unwrap());
}

#[tokio::test]
async fn connect_error_and_bad_url_are_typed() {
    // Bind then drop to get a port nobody listens on.
    let (l, url) = listener().await;
    drop(l);
    let err = Connection::open(&url, &TransportOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    let err = Connection::open("http://x", &TransportOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidUrl { .. }), "{err}");
}

#[tokio::test]
async fn websocket_transport_with_mqtt_subprotocol() {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_tungstenite::tungstenite::Message;

    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", l.local_addr().unwrap());
    let peer = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut seen = (String::new(), String::new());
        let mut ws = tokio_tungstenite::accept_hdr_async(s, |req: &Request, mut resp: Response| {
            seen.0 = req.uri().path().to_string();
            seen.1 = req
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
            Ok(resp)
        })
        .await
        .unwrap();
        let first = ws.next().await.unwrap().unwrap();
        // One packet split over two WebSocket messages.
        ws.send(Message::Binary(Bytes::from_static(&CONNACK_OK[..1])))
            .await
            .unwrap();
        ws.send(Message::Binary(Bytes::from_static(&CONNACK_OK[1..])))
            .await
            .unwrap();
        ws.close(None).await.unwrap();
        (first, seen)
    });
    let mut c = Connection::open(&url, &TransportOptions::default())
        .await
        .unwrap();
    c.send(&connect(ProtocolVersion::V3_1_1)).await.unwrap();
    assert!(matches!(recv_packet(&mut c).await, Packet::ConnAck(_)));
    assert_eq!(recv_closed(&mut c).await, Received::Closed);
    let (first, (path, proto)) = timeout(T, peer).await.unwrap().unwrap();
    assert_eq!(path, "/mqtt");
    assert_eq!(proto, "mqtt");
    match first {
        Message::Binary(b) => assert_eq!(b[0], 0x10, "a CONNECT in a binary frame"),
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

#[tokio::test]
async fn send_all_pipelines_in_one_write() {
    let (l, url) = listener().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        (read_packet(&mut s).await, read_packet(&mut s).await)
    });
    let mut c = Connection::open(&url, &TransportOptions::default())
        .await
        .unwrap();
    c.set_version(ProtocolVersion::V3_1_1);
    let publish = |id: u16| {
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "t".into(),
            packet_id: id,
            properties: Default::default(),
            payload: Bytes::from_static(b"x"),
        })
    };
    c.send_all(&[publish(2), publish(1)]).await.unwrap();
    let (a, b) = timeout(T, peer).await.unwrap().unwrap();
    assert_eq!(&a[5..7], &[0, 2]);
    assert_eq!(&b[5..7], &[0, 1]);
    assert_eq!(c.trace().packets(Direction::Sent).count(), 2);
}

#[tokio::test]
async fn raw_mode_reads_exact_bytes_and_the_close() {
    let (l, url) = listener().await;
    let peer = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut got = [0u8; 2];
        s.read_exact(&mut got).await.unwrap();
        // Not a valid packet: answered as raw bytes anyway, then the close.
        s.write_all(&[0xff, 0x01, 0x02]).await.unwrap();
        got
    });
    let mut c = Connection::open(&url, &TransportOptions::default())
        .await
        .unwrap();
    c.send_raw(&[0xf0, 0x00]).await.unwrap();
    let mut got = Vec::new();
    while let Some(b) = c.recv_bytes(T).await.unwrap() {
        got.extend_from_slice(&b);
    }
    assert_eq!(got, [0xff, 0x01, 0x02]);
    assert_eq!(timeout(T, peer).await.unwrap().unwrap(), [0xf0, 0x00]);
    let text = c.trace().to_string();
    assert!(text.contains("-> raw 2 B: f0 00"), "{text}");
    assert!(text.contains("<- raw"), "{text}");
    assert!(text.contains("<- closed by broker"), "{text}");
    assert_eq!(c.recv_bytes(Duration::from_millis(10)).await.unwrap(), None);
}

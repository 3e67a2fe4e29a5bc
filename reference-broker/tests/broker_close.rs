//! Graceful close over real sockets: a peer that keeps writing after the broker has decided to
//! close still reads the broker's last packet (DISCONNECT with its reason code, a refusal
//! CONNACK) instead of a connection reset.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reference_broker::broker::auth::hash_password;
use reference_broker::broker::config::UserConfig;
use reference_broker::codec::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Upper bound of a whole exchange.
const LIMIT: Duration = Duration::from_secs(20);
/// PUBLISHes (1 KiB each) the peer writes after CONNECT, whatever the broker answers: far
/// more than the broker reads before it decides to close, and more than the socket buffers
/// hold, yet little to read within the broker's drain time.
const WRITES: usize = 2_000;

fn frame(p: &Packet) -> BytesMut {
    let mut b = BytesMut::new();
    encode(p, V5, &mut b).unwrap();
    b
}

/// Send `first`, then [`WRITES`] QoS 2 PUBLISHes (answering each PUBREC with PUBREL, as a
/// well-behaved sender would); returns every packet read until the broker closed, and how
/// many PUBLISHes were written before a write failed. A broker that closes with unread input
/// resets the connection, and the peer's next write fails (EPIPE / ECONNRESET).
async fn flood(addr: std::net::SocketAddr, first: Connect) -> (Vec<Packet>, usize) {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let (rel_tx, mut rel_rx) = mpsc::unbounded_channel::<u16>();
    let writer = tokio::spawn(async move {
        if wr
            .write_all(&frame(&Packet::Connect(Box::new(first))))
            .await
            .is_err()
        {
            return 0;
        }
        let payload = Bytes::from(vec![b'x'; 1024]);
        let mut written = 0;
        for n in 0..WRITES {
            let mut out = BytesMut::new();
            while let Ok(id) = rel_rx.try_recv() {
                out.extend_from_slice(&frame(&Packet::PubRel(PubResponse {
                    packet_id: id,
                    reason: ReasonCode::SUCCESS,
                    properties: Default::default(),
                })));
            }
            let mut p = publish_packet("flood", b"", QoS::ExactlyOnce, (n % 60_000) as u16 + 1);
            p.payload = payload.clone();
            out.extend_from_slice(&frame(&Packet::Publish(p)));
            if wr.write_all(&out).await.is_err() {
                break;
            }
            written += 1;
        }
        written
    });
    let mut decoder = Decoder::with_version(V5, 1 << 24);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let read = async {
        loop {
            while let Ok(Some(p)) = decoder.decode(&mut buf) {
                if let Packet::PubRec(r) = &p {
                    let _ = rel_tx.send(r.packet_id);
                }
                got.push(p);
            }
            match rd.read_buf(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    };
    let outcome = tokio::time::timeout(LIMIT, read).await.unwrap();
    let written = tokio::time::timeout(LIMIT, writer).await.unwrap().unwrap();
    assert!(
        outcome.is_ok(),
        "read error {outcome:?} after {} packets: {:?}",
        got.len(),
        got.last()
    );
    (got, written)
}

#[tokio::test]
async fn a_peer_still_writing_reads_disconnect_receive_maximum_exceeded() {
    let broker = start_with(|c| c.limits.receive_maximum = 4).await;
    let addr = broker.tcp_addr().unwrap();
    let (got, written) = flood(addr, connect_packet(V5, "flood", true)).await;
    // [MQTT-3.3.4-9] more QoS 2 PUBLISHes awaiting PUBREL than Receive Maximum: 0x93.
    assert!(
        matches!(got.last(), Some(Packet::Disconnect(d)) if d.reason == ReasonCode::RECEIVE_MAXIMUM_EXCEEDED),
        "last packet {:?} of {}",
        got.last(),
        got.len()
    );
    // The peer went on writing after the DISCONNECT, and none of its writes failed.
    assert_eq!(
        written, WRITES,
        "a write failed: the broker reset the connection"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn a_peer_still_writing_reads_its_refusal_connack() {
    let broker = start_with(|c| {
        c.users.push(UserConfig {
            username: "alice".into(),
            password_hash: hash_password(b"right", "salt"),
        });
    })
    .await;
    let addr = broker.tcp_addr().unwrap();
    let mut connect = connect_packet(V5, "intruder", true);
    connect.username = Some("alice".into());
    connect.password = Some(Bytes::from_static(b"wrong"));
    let (got, written) = flood(addr, connect).await;
    assert_eq!(
        written, WRITES,
        "a write failed: the broker reset the connection"
    );
    assert!(
        matches!(got.as_slice(), [Packet::ConnAck(a)] if a.code == ReasonCode::BAD_USER_NAME_OR_PASSWORD),
        "{got:?}"
    );
    broker.shutdown().await;
}

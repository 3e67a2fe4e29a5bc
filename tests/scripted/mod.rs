//! Scripted brokers for tests: tiny TCP servers on 127.0.0.1 that answer a CONNECT with bytes
//! chosen by the test, then behave as told (hold the connection, close it, flood, ...), so the
//! harness can be tested against brokers that misbehave or lack features.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use reference_broker::codec::{
    encode, Connect, Decoder, Packet, ProtocolVersion, PubResponse, ReasonCode, SubAck,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the scripted broker does after its answer to CONNECT.
#[derive(Debug, Clone)]
pub enum After {
    /// Close the connection.
    Close,
    /// Keep the connection open, read and ignore everything.
    Hold,
    /// Send these bytes over and over until the client goes away.
    Flood(Vec<u8>),
    /// A broker of one connection: SUBSCRIBE is granted (at most QoS 1) unless its filter has
    /// more than this many levels (then SUBACK 0x80); a PUBLISH is acknowledged at QoS 1 and
    /// sent back when this connection subscribed to its topic (no wildcards).
    Echo(usize),
}

/// The answer to one CONNECT: bytes to send, then what to do.
pub type Script = dyn Fn(&Connect) -> (Vec<u8>, After) + Send + Sync;

/// A scripted broker listening on 127.0.0.1, port 0; stopped when dropped.
pub struct ScriptedBroker {
    /// `mqtt://127.0.0.1:PORT`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedBroker {
    /// Start a broker that answers every CONNECT with `script`.
    pub async fn start(
        script: impl Fn(&Connect) -> (Vec<u8>, After) + Send + Sync + 'static,
    ) -> ScriptedBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("mqtt://{}", listener.local_addr().unwrap());
        let script: Arc<Script> = Arc::new(script);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let script = script.clone();
                tokio::spawn(serve(stream, script));
            }
        });
        ScriptedBroker { url, task }
    }
}

async fn serve(mut stream: TcpStream, script: Arc<Script>) {
    let mut buf = BytesMut::with_capacity(1024);
    let mut decoder = Decoder::new(1 << 20);
    let connect = loop {
        match decoder.decode(&mut buf) {
            Ok(Some(Packet::Connect(c))) => break c,
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => {}
        }
        match tokio::time::timeout(Duration::from_secs(10), stream.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    };
    let (answer, after) = script(&connect);
    if stream.write_all(&answer).await.is_err() {
        return;
    }
    match after {
        After::Echo(max_levels) => {
            echo(stream, buf, decoder, connect.protocol, max_levels).await;
        }
        After::Close => {
            let _ = stream.shutdown().await;
        }
        After::Hold => {
            let mut sink = [0u8; 4096];
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_secs(30), stream.read(&mut sink)).await
            {
                if n == 0 {
                    break;
                }
            }
        }
        After::Flood(bytes) => {
            let chunk: Vec<u8> = bytes.iter().copied().cycle().take(64 * 1024).collect();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while tokio::time::Instant::now() < deadline {
                if stream.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// CONNACK bytes: MQTT 3.1.1 form (`20 02 flags code`).
pub fn connack_v311(code: u8) -> Vec<u8> {
    vec![0x20, 0x02, 0x00, code]
}

/// CONNACK bytes, MQTT 5 form with a property block given as raw bytes.
pub fn connack_v5(code: u8, properties: &[u8]) -> Vec<u8> {
    let mut v = vec![
        0x20,
        u8::try_from(3 + properties.len()).unwrap(),
        0x00,
        code,
    ];
    v.push(u8::try_from(properties.len()).unwrap());
    v.extend_from_slice(properties);
    v
}

/// The [`After::Echo`] broker on one connection.
async fn echo(
    mut stream: TcpStream,
    mut buf: BytesMut,
    mut decoder: Decoder,
    version: ProtocolVersion,
    max_levels: usize,
) {
    decoder.set_version(version);
    let mut subscribed: Vec<String> = Vec::new();
    loop {
        let packet = loop {
            match decoder.decode(&mut buf) {
                Ok(Some(p)) => break p,
                Ok(None) => {}
                Err(_) => return,
            }
            match tokio::time::timeout(Duration::from_secs(30), stream.read_buf(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
        };
        let mut out = Vec::new();
        match packet {
            Packet::Subscribe(s) => {
                let codes = s
                    .subscriptions
                    .iter()
                    .map(|sub| {
                        if sub.filter.split('/').count() > max_levels {
                            ReasonCode(0x80)
                        } else {
                            subscribed.push(sub.filter.clone());
                            ReasonCode((sub.options.qos as u8).min(1))
                        }
                    })
                    .collect();
                out.push(Packet::SubAck(SubAck {
                    packet_id: s.packet_id,
                    properties: Default::default(),
                    reason_codes: codes,
                }));
            }
            Packet::Publish(mut p) => {
                if p.qos as u8 > 0 {
                    out.push(Packet::PubAck(PubResponse {
                        packet_id: p.packet_id,
                        ..PubResponse::default()
                    }));
                }
                if subscribed.iter().any(|f| **f == *p.topic) {
                    p.qos = reference_broker::codec::QoS::AtMostOnce;
                    p.packet_id = 0;
                    out.push(Packet::Publish(p));
                }
            }
            Packet::Disconnect(_) => return,
            _ => {}
        }
        let mut bytes = BytesMut::new();
        for p in &out {
            encode(p, version, &mut bytes).unwrap();
        }
        if stream.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

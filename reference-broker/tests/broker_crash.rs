//! Crash safety of persistence: the broker BINARY with `persistence` on, under QoS 1 and QoS 2
//! load, killed with SIGKILL at random moments and restarted, several rounds. Afterwards every
//! message the broker acknowledged (PUBACK, PUBREC) has reached the persistent subscriber,
//! and no QoS 2 message reached it twice. The seed is printed; `CRASH_SEED` replays a run.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reference_broker::codec::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// Bound of every single wait (a packet, a connection, the broker starting).
const WAIT: Duration = Duration::from_secs(10);
/// Crash rounds before the final check.
const ROUNDS: usize = 5;
/// PUBLISHes the publisher keeps unacknowledged.
const WINDOW: usize = 16;
const TOPIC: &str = "crash/t";

/// A tiny xorshift generator: the test needs random moments, not quality.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A broker configuration in `dir`: persistence there, one TCP listener on a free port.
fn persistent_config(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("broker.toml");
    let text = format!(
        "persistence = {:?}\n[limits]\nmax_queued_messages = 1000000\n[[listener]]\nbind = \"127.0.0.1:0\"\n",
        dir.join("store.redb")
    );
    std::fs::write(&config, text).unwrap();
    config
}

async fn start_broker(config: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reference-broker"))
        .arg("--config")
        .arg(config)
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
    let addr = line.strip_prefix("listening on ").unwrap().parse().unwrap();
    (child, addr)
}

/// A raw MQTT 5 connection whose errors are values: the broker may die at any moment.
struct Conn {
    stream: TcpStream,
    decoder: Decoder,
    buf: BytesMut,
}

type Io<T> = Result<T, String>;

impl Conn {
    async fn open(addr: SocketAddr, id: &str, clean: bool) -> Io<(Conn, bool)> {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .map_err(|_| "connect timeout".to_string())?
            .map_err(|e| e.to_string())?;
        let mut c = Conn {
            stream,
            decoder: Decoder::with_version(ProtocolVersion::V5, 1 << 20),
            buf: BytesMut::new(),
        };
        let mut connect = support::connect_packet(ProtocolVersion::V5, id, clean);
        connect.properties.session_expiry_interval = Some(3600);
        c.send(&Packet::Connect(Box::new(connect))).await?;
        match c.recv().await? {
            Packet::ConnAck(a) if a.code == ReasonCode::SUCCESS => Ok((c, a.session_present)),
            other => Err(format!("expected CONNACK 0, got {other:?}")),
        }
    }

    async fn send(&mut self, p: &Packet) -> Io<()> {
        let mut out = BytesMut::new();
        encode(p, ProtocolVersion::V5, &mut out).map_err(|e| e.to_string())?;
        self.stream.write_all(&out).await.map_err(|e| e.to_string())
    }

    async fn recv(&mut self) -> Io<Packet> {
        loop {
            if let Some(p) = self
                .decoder
                .decode(&mut self.buf)
                .map_err(|e| e.to_string())?
            {
                return Ok(p);
            }
            let n = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .map_err(|_| "receive timeout".to_string())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed".into());
            }
        }
    }
}

fn ack(packet_id: u16) -> PubResponse {
    PubResponse {
        packet_id,
        reason: ReasonCode::SUCCESS,
        properties: Default::default(),
    }
}

/// The publisher's client state, kept across connections as a client must.
#[derive(Default)]
struct Publisher {
    next: u64,
    /// Packet id -> (message number, PUBREL sent).
    unacked: BTreeMap<u16, (u64, bool)>,
    /// Message numbers the broker acknowledged (PUBACK, or PUBREC for QoS 2).
    acked: HashSet<u64>,
}

fn publish(n: u64, packet_id: u16, dup: bool) -> Packet {
    Packet::Publish(Publish {
        dup,
        qos: if n % 2 == 0 {
            QoS::ExactlyOnce
        } else {
            QoS::AtLeastOnce
        },
        retain: false,
        topic: TOPIC.into(),
        packet_id,
        properties: Default::default(),
        payload: Bytes::from(n.to_string()),
    })
}

impl Publisher {
    fn free_id(&self) -> u16 {
        (1..=u16::MAX)
            .find(|id| !self.unacked.contains_key(id))
            .unwrap()
    }

    /// Resend what is unacknowledged, then publish until `limit` messages exist or the
    /// connection breaks. Ok once everything is acknowledged and `limit` is reached.
    async fn run(&mut self, addr: SocketAddr, limit: u64) -> Io<()> {
        let (mut c, present) = Conn::open(addr, "pub", self.next == 0).await?;
        if self.next > 0 && !present {
            return Err("publisher session lost".into());
        }
        // [MQTT-4.4.0-1] resend unacknowledged PUBLISH (DUP) and PUBREL, in order.
        for (&id, &(n, released)) in &self.unacked {
            let p = if released {
                Packet::PubRel(ack(id))
            } else {
                publish(n, id, true)
            };
            c.send(&p).await?;
        }
        loop {
            while self.unacked.len() < WINDOW && self.next < limit {
                let id = self.free_id();
                self.unacked.insert(id, (self.next, false));
                c.send(&publish(self.next, id, false)).await?;
                self.next += 1;
            }
            if self.unacked.is_empty() {
                return Ok(());
            }
            match c.recv().await? {
                Packet::PubAck(a) => {
                    if let Some((n, _)) = self.unacked.remove(&a.packet_id) {
                        self.acked.insert(n);
                    }
                }
                Packet::PubRec(a) => {
                    if let Some(entry) = self.unacked.get_mut(&a.packet_id) {
                        self.acked.insert(entry.0);
                        entry.1 = true;
                    }
                    c.send(&Packet::PubRel(ack(a.packet_id))).await?;
                }
                Packet::PubComp(a) => {
                    self.unacked.remove(&a.packet_id);
                }
                other => return Err(format!("publisher got {other:?}")),
            }
        }
    }
}

/// The subscriber's client state: what was delivered to the application, and the QoS 2
/// packet ids received and not yet released (a resend of those is not a new message).
#[derive(Default)]
struct Subscriber {
    subscribed: bool,
    got: HashMap<u64, usize>,
    held: HashSet<u16>,
}

impl Subscriber {
    /// Receive until the connection breaks, or until `want` is all received.
    /// `ready` is told once the subscription exists.
    async fn run(
        &mut self,
        addr: SocketAddr,
        want: Option<&HashSet<u64>>,
        mut ready: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Io<()> {
        let (mut c, present) = Conn::open(addr, "sub", !self.subscribed).await?;
        if self.subscribed && !present {
            return Err("subscriber session lost".into());
        }
        if self.subscribed {
            ready.take().map(|r| r.send(()));
        }
        if !self.subscribed {
            let sub = Subscribe {
                packet_id: 1,
                properties: Default::default(),
                subscriptions: vec![Subscription {
                    filter: TOPIC.into(),
                    options: SubscriptionOptions {
                        qos: QoS::ExactlyOnce,
                        ..Default::default()
                    },
                }],
            };
            c.send(&Packet::Subscribe(sub)).await?;
        }
        loop {
            if want.is_some_and(|w| w.iter().all(|n| self.got.contains_key(n))) {
                return Ok(());
            }
            match c.recv().await? {
                Packet::SubAck(_) => {
                    self.subscribed = true;
                    ready.take().map(|r| r.send(()));
                }
                Packet::Publish(p) => {
                    let n: u64 = std::str::from_utf8(&p.payload).unwrap().parse().unwrap();
                    match p.qos {
                        QoS::ExactlyOnce => {
                            // A known id before PUBREL is a resend, not a new message.
                            if self.held.insert(p.packet_id) {
                                *self.got.entry(n).or_default() += 1;
                            }
                            c.send(&Packet::PubRec(ack(p.packet_id))).await?;
                        }
                        _ => {
                            *self.got.entry(n).or_default() += 1;
                            c.send(&Packet::PubAck(ack(p.packet_id))).await?;
                        }
                    }
                }
                Packet::PubRel(r) => {
                    self.held.remove(&r.packet_id);
                    c.send(&Packet::PubComp(ack(r.packet_id))).await?;
                }
                other => return Err(format!("subscriber got {other:?}")),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_qos1_and_qos2_load_loses_and_duplicates_nothing() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let config = persistent_config(dir.path());
    let publisher = Arc::new(tokio::sync::Mutex::new(Publisher::default()));
    let subscriber = Arc::new(tokio::sync::Mutex::new(Subscriber::default()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    // Round 0 subscribes; then the subscriber is online in even rounds and offline (its
    // messages queued in the stored session) in odd ones.
    for round in 0..ROUNDS {
        let (mut child, addr) = start_broker(&config).await;
        let online = round % 2 == 0;
        let (ready, subscribed) = tokio::sync::oneshot::channel();
        let sub = online.then(|| {
            let s = Arc::clone(&subscriber);
            tokio::spawn(async move { s.lock().await.run(addr, None, Some(ready)).await })
        });
        if round == 0 {
            // The subscription exists before the first message.
            tokio::time::timeout(WAIT, subscribed)
                .await
                .unwrap()
                .unwrap();
        }
        let p = Arc::clone(&publisher);
        let publishing = tokio::spawn(async move { p.lock().await.run(addr, u64::MAX).await });
        let delay = Duration::from_millis(100 + rng.next() % 500);
        tokio::time::sleep(delay).await;
        // SIGKILL: no shutdown, no final save.
        child.start_kill().unwrap();
        tokio::time::timeout(WAIT, child.wait())
            .await
            .unwrap()
            .unwrap();
        let ended = tokio::time::timeout(WAIT * 2, publishing)
            .await
            .unwrap()
            .unwrap();
        if let Err(e) = ended {
            if e.contains("session lost") || e.contains("got") {
                errors.lock().unwrap().push(format!("round {round}: {e}"));
            }
        }
        if let Some(sub) = sub {
            let ended = tokio::time::timeout(WAIT * 2, sub).await.unwrap().unwrap();
            if let Err(e) = ended {
                if e.contains("session lost") || e.contains("got") {
                    errors.lock().unwrap().push(format!("round {round}: {e}"));
                }
            }
        }
        let p = publisher.lock().await;
        println!(
            "round {round}: killed after {delay:?}, {} published, {} acknowledged, subscriber {}",
            p.next,
            p.acked.len(),
            if online { "online" } else { "offline" }
        );
    }
    assert!(
        errors.lock().unwrap().is_empty(),
        "{:?}",
        errors.lock().unwrap()
    );
    // Final round: the publisher completes what it had in flight, the subscriber drains.
    let (child, addr) = start_broker(&config).await;
    let mut p = publisher.lock().await;
    let limit = p.next;
    p.run(addr, limit).await.unwrap();
    let acked = p.acked.clone();
    assert!(acked.len() > 100, "too little load: {}", acked.len());
    let mut s = subscriber.lock().await;
    let drained = s.run(addr, Some(&acked), None).await;
    let lost: Vec<u64> = acked
        .iter()
        .filter(|n| !s.got.contains_key(n))
        .copied()
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost (e.g. {:?}), {drained:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let dup: Vec<(u64, usize)> = s
        .got
        .iter()
        .filter(|(n, c)| *n % 2 == 0 && **c > 1)
        .map(|(n, c)| (*n, *c))
        .collect();
    assert!(dup.is_empty(), "QoS 2 messages delivered twice: {dup:?}");
    println!(
        "{} acknowledged, {} received, none lost, no QoS 2 duplicate",
        acked.len(),
        s.got.len()
    );
    drop(child);
}

/// Whether the Mosquitto command-line clients are installed.
fn mosquitto_clients() -> bool {
    ["mosquitto_pub", "mosquitto_sub"].iter().all(|c| {
        std::process::Command::new(c)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })
}

/// Run a Mosquitto client to completion (bounded); its exit status and standard output.
async fn mosquitto(program: &str, addr: SocketAddr, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &addr.port().to_string(),
            "-V",
            "mqttv5",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(WAIT * 2, out).await {
        Ok(Ok(o)) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into(),
        ),
        _ => (false, String::new()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_mosquitto_clients_loses_and_duplicates_nothing() {
    if !mosquitto_clients() {
        println!("skipped: mosquitto_pub / mosquitto_sub not installed (Debian mosquitto-clients)");
        return;
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let config = persistent_config(dir.path());
    let session = [
        "-c", "-i", "msub", "-q", "2", "-t", "mcrash/t", "-x", "3600",
    ];
    let mut acked = Vec::new();
    let mut n = 0u64;
    for round in 0..3 {
        let (mut child, addr) = start_broker(&config).await;
        if round == 0 {
            // The persistent subscription, then the subscriber goes away (-E).
            let (ok, _) = mosquitto("mosquitto_sub", addr, &[&session[..], &["-E"]].concat()).await;
            assert!(ok, "mosquitto_sub could not subscribe");
        }
        // One mosquitto_pub per message; it exits 0 once PUBACK / PUBCOMP arrived. The broker
        // is killed after a random number of them, while one is in flight.
        let kill_after = 5 + rng.next() % 20;
        let mut running = Vec::new();
        for i in 0..kill_after + 4 {
            let qos = if n % 2 == 0 { "2" } else { "1" };
            let m = n.to_string();
            let id = format!("mpub{n}");
            n += 1;
            running.push((
                m.clone(),
                tokio::spawn(async move {
                    mosquitto(
                        "mosquitto_pub",
                        addr,
                        &["-q", qos, "-t", "mcrash/t", "-m", &m, "-i", &id],
                    )
                    .await
                    .0
                }),
            ));
            if i == kill_after {
                child.start_kill().unwrap();
            } else if i < kill_after {
                // Sequential before the kill: each acknowledged before the next starts.
                let (m, task) = running.pop().unwrap();
                if task.await.unwrap() {
                    acked.push(m);
                }
            }
        }
        tokio::time::timeout(WAIT, child.wait())
            .await
            .unwrap()
            .unwrap();
        for (m, task) in running {
            if task.await.unwrap() {
                acked.push(m);
            }
        }
        println!("round {round}: {} acknowledged so far", acked.len());
    }
    let (_child, addr) = start_broker(&config).await;
    let (_, out) = mosquitto(
        "mosquitto_sub",
        addr,
        &[&session[..], &["-W", "3"]].concat(),
    )
    .await;
    let mut got: HashMap<&str, usize> = HashMap::new();
    for line in out.lines() {
        *got.entry(line).or_default() += 1;
    }
    let lost: Vec<&String> = acked
        .iter()
        .filter(|m| !got.contains_key(m.as_str()))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let dup: Vec<_> = got
        .iter()
        .filter(|(m, c)| m.parse::<u64>().is_ok_and(|n| n % 2 == 0) && **c > 1)
        .collect();
    assert!(dup.is_empty(), "QoS 2 delivered twice: {dup:?}");
    assert!(acked.len() >= 15, "too little load: {}", acked.len());
    println!(
        "mosquitto clients: {} acknowledged, all received once",
        acked.len()
    );
}

//! A soak subscriber that survives faults: it acknowledges every delivery, resumes its
//! session after each reconnection (subscribing again only if the broker lost the session),
//! and keeps QoS 2's exactly-once promise on its side: a PUBLISH whose packet identifier
//! awaits PUBREL is a resend, not a new message.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use reference_broker::codec::{encode, Packet, ProtocolVersion, QoS};
use reference_broker::protocol::InboundAcks;

use super::session::{goodbye, Beat, Durable, Liveness};
use crate::bench::conn::Lean;
use crate::bench::payload;
use crate::bench::subscriber::SubOutcome;
use crate::bench::tracker::Tracker;
use crate::bench::{new_histogram, BenchError, Counters};

/// How long a reconnection may take before the subscriber gives up (it also stops when told).
const RECONNECT_FOR: Duration = Duration::from_secs(24 * 3600);

/// What a soak subscriber subscribes to.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Topic filter.
    pub filter: String,
    /// Maximum QoS.
    pub qos: QoS,
    /// Handshake timeout of SUBSCRIBE.
    pub timeout: Duration,
}

/// The subscriber's state, kept across connections.
struct State {
    outcome: SubOutcome,
    origin: Instant,
    /// [MQTT-4.3.3-2] QoS 2 packet identifiers whose PUBREC was sent and PUBREL not received.
    awaiting_rel: InboundAcks,
    /// The session holds the subscription (SUBACK received since the session began).
    subscribed: bool,
}

/// Receive until `stop`, reconnecting through `durable` whenever the link fails; returns what
/// was received and the number of reconnections. `first` is connected and subscribed.
pub async fn run(
    mut durable: Durable,
    first: Lean,
    sub: Subscription,
    publishers: usize,
    origin: Instant,
    mut stop: watch::Receiver<bool>,
    counters: Arc<Counters>,
) -> Result<(SubOutcome, u64), BenchError> {
    let mut state = State {
        outcome: SubOutcome {
            tracker: Tracker::new(publishers),
            latency: new_histogram(),
            foreign: 0,
        },
        origin,
        awaiting_rel: InboundAcks::new(),
        subscribed: true,
    };
    let mut next = Some(first);
    loop {
        let mut lean = match next.take() {
            Some(lean) => lean,
            None => {
                let reconnect = async {
                    let mut lean = durable.connect(Instant::now() + RECONNECT_FOR).await?;
                    if !lean.connack.session_present {
                        // The broker lost the session: its QoS 2 state and the subscription.
                        state.awaiting_rel.clear();
                        state.subscribed = false;
                    }
                    if !state.subscribed {
                        lean.subscribe(&sub.filter, sub.qos, sub.timeout).await?;
                        state.subscribed = true;
                    }
                    Ok::<_, BenchError>(lean)
                };
                tokio::select! {
                    r = reconnect => match r {
                        Ok(lean) => lean,
                        Err(e @ BenchError::Refused(..)) => return Err(e),
                        Err(_) => continue,
                    },
                    () = stopped(&mut stop) => break,
                }
            }
        };
        if serve(&mut lean, &mut state, &mut stop, &counters).await? {
            let _ = lean.send(&goodbye()).await;
            break;
        }
    }
    Ok((state.outcome, durable.reconnects))
}

/// Drive one connection; true when told to stop, false when the link failed.
async fn serve(
    lean: &mut Lean,
    state: &mut State,
    stop: &mut watch::Receiver<bool>,
    counters: &Counters,
) -> Result<bool, BenchError> {
    let version = lean.version;
    let mut out = BytesMut::with_capacity(4096);
    let mut live = Liveness::new(Instant::now());
    loop {
        let Lean {
            stream,
            read_buf,
            decoder,
            ..
        } = &mut *lean;
        let (mut rd, mut wr) = stream.split();
        tokio::select! {
            biased;
            read = rd.read_buf(read_buf) => {
                match read {
                    Ok(0) | Err(_) => return Ok(false),
                    Ok(_) => live.received(Instant::now()),
                }
                while let Some(p) = decoder.decode(read_buf).map_err(|e| {
                    BenchError::Protocol(format!("broker sent a malformed packet: {e}"))
                })? {
                    if !state.on_packet(p, &mut out, version, counters)? {
                        return Ok(false);
                    }
                }
            }
            written = wr.write_buf(&mut out), if !out.is_empty() => match written {
                Ok(0) | Err(_) => return Ok(false),
                Ok(_) => live.sent(Instant::now()),
            },
            () = tokio::time::sleep_until(live.deadline().into()) => match live.poll(Instant::now()) {
                Beat::Dead => return Ok(false),
                Beat::Ping => {
                    push(&mut out, &Packet::PingReq, version)?;
                    live.sent(Instant::now());
                }
                Beat::Idle => {}
            },
            () = stopped(stop) => {
                // Acknowledge what was received before leaving.
                let _ = wr.write_all(&out).await;
                return Ok(true);
            }
        }
    }
}

impl State {
    /// Handle one packet; false when the broker ends the connection.
    fn on_packet(
        &mut self,
        packet: Packet,
        out: &mut BytesMut,
        version: ProtocolVersion,
        counters: &Counters,
    ) -> Result<bool, BenchError> {
        // [MQTT-4.3.2-2] PUBACK for QoS 1; [MQTT-4.3.3-2] PUBREC for QoS 2, and until PUBREL
        // the same identifier is the same message; PUBREL frees it, answered with PUBCOMP.
        let acked = self.awaiting_rel.acknowledge(&packet, version);
        if let Some(reply) = &acked.reply {
            push(out, reply, version)?;
        }
        match packet {
            Packet::Publish(publish) => {
                if acked.fresh {
                    self.record(&publish.payload, counters);
                }
            }
            Packet::PubRel(_) => {}
            Packet::PingResp => {}
            Packet::Disconnect(_) => return Ok(false),
            other => {
                return Err(BenchError::Protocol(format!(
                    "soak subscriber got an unexpected {:?}",
                    other.packet_type()
                )))
            }
        }
        Ok(true)
    }

    fn record(&mut self, body: &[u8], counters: &Counters) {
        let now_ns = self.origin.elapsed().as_nanos() as u64;
        counters.received.fetch_add(1, Ordering::Relaxed);
        let Some(stamp) = payload::read(body) else {
            self.outcome.foreign += 1;
            return;
        };
        match self
            .outcome
            .tracker
            .record(stamp.publisher as usize, stamp.seq)
        {
            Some(true) => {
                counters.unique.fetch_add(1, Ordering::Relaxed);
                counters
                    .last_delivery_ns
                    .fetch_max(now_ns, Ordering::Relaxed);
                let us = now_ns.saturating_sub(stamp.sent_ns) / 1000;
                self.outcome.latency.saturating_record(us.max(1));
            }
            Some(false) => {}
            None => self.outcome.foreign += 1,
        }
    }
}

/// Resolve once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn push(out: &mut BytesMut, packet: &Packet, version: ProtocolVersion) -> Result<(), BenchError> {
    encode(packet, version, out).map_err(|e| BenchError::Protocol(e.to_string()))
}

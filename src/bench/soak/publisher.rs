//! A soak publisher that survives faults: paced stamped publishes, a window of QoS 1/2
//! messages in flight, and after each reconnection the unacknowledged ones again (PUBLISH
//! with DUP and the same packet identifier, or PUBREL once PUBREC arrived).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use reference_broker::codec::{encode, Packet, ProtocolVersion, PubResponse, Publish, QoS};
use reference_broker::protocol::PacketIds;

use super::session::{goodbye, Beat, Durable, Liveness};
use crate::bench::conn::Lean;
use crate::bench::payload::{self, Stamp};
use crate::bench::publisher::PubJob;
use crate::bench::{BenchError, Counters};

/// Bytes waiting to be written above which no new message is started.
const OUT_HIGH: usize = 64 * 1024;
/// A publisher more than this behind its schedule (a fault held it up) skips the missed
/// slots instead of bursting to catch up.
const MAX_LAG: Duration = Duration::from_secs(1);

/// What a soak publisher did.
#[derive(Debug, Clone, Copy, Default)]
pub struct PubOutcome {
    /// Messages published (distinct sequence numbers).
    pub sent: u64,
    /// PUBLISHes and PUBRELs sent again after a reconnection.
    pub resent: u64,
    /// QoS 1/2 messages never acknowledged (the publisher gave up).
    pub unacked: u64,
    /// Reconnections.
    pub reconnects: u64,
}

/// A QoS 1/2 message not yet acknowledged.
#[derive(Debug)]
struct InFlight {
    publish: Publish,
    /// PUBREC received: PUBREL is what goes again.
    released: bool,
}

/// The publisher's state, kept across connections.
struct State {
    job: PubJob,
    inflight: VecDeque<InFlight>,
    seq: u64,
    ids: PacketIds,
    due: Instant,
    interval: Duration,
    deadline: Instant,
    resent: u64,
    scratch: BytesMut,
}

/// How one connection ended.
enum End {
    /// Publishing is over and every message acknowledged.
    Done,
    /// The link failed: reconnect.
    Lost,
    /// `give_up` passed.
    GaveUp,
}

/// Publish from `start` to `deadline` at the job's rate (soak mode always has one), then
/// finish the acknowledgement flows, reconnecting through `durable` whenever the link fails;
/// stop trying at `give_up`.
pub async fn run(
    mut durable: Durable,
    first: Lean,
    job: PubJob,
    start: Instant,
    deadline: Instant,
    give_up: Instant,
    counters: Arc<Counters>,
) -> Result<PubOutcome, BenchError> {
    let interval = Duration::from_secs_f64(1.0 / job.rate.unwrap_or(1000.0).max(1e-3));
    let mut state = State {
        job,
        inflight: VecDeque::new(),
        seq: 0,
        ids: PacketIds::new(),
        due: start,
        interval,
        deadline,
        resent: 0,
        scratch: BytesMut::new(),
    };
    let mut next = Some(first);
    loop {
        let mut lean = match next.take() {
            Some(lean) => lean,
            None => match durable.connect(give_up).await {
                Ok(lean) => lean,
                Err(e) => {
                    tracing::warn!(publisher = state.job.index, error = %e, "gave up reconnecting");
                    break;
                }
            },
        };
        let mut out = BytesMut::new();
        if durable.reconnects > 0 {
            state.resend(lean.connack.session_present, &mut out, lean.version)?;
        }
        match serve(&mut lean, &mut state, out, give_up, &counters).await? {
            End::Done => {
                let _ = lean.send(&goodbye()).await;
                break;
            }
            End::Lost => continue,
            End::GaveUp => break,
        }
    }
    Ok(PubOutcome {
        sent: state.seq,
        resent: state.resent,
        unacked: state.inflight.len() as u64,
        reconnects: durable.reconnects,
    })
}

impl State {
    /// After a reconnection: everything unacknowledged goes again, in order. Without a
    /// session the broker forgot its QoS 2 state; a PUBREC already received means it had the
    /// message, so the flow counts as complete.
    fn resend(
        &mut self,
        session_present: bool,
        out: &mut BytesMut,
        version: ProtocolVersion,
    ) -> Result<(), BenchError> {
        if !session_present {
            self.inflight.retain(|m| !m.released);
        }
        for m in &self.inflight {
            let packet = if m.released {
                // [MQTT-4.4.0-1] resend PUBREL for a released QoS 2 message.
                Packet::PubRel(ack(m.publish.packet_id))
            } else {
                // [MQTT-4.4.0-1] [MQTT-3.3.1-1] resend PUBLISH with DUP 1, same packet id.
                let mut again = m.publish.clone();
                again.dup = true;
                Packet::Publish(again)
            };
            push(out, &packet, version)?;
            self.resent += 1;
        }
        Ok(())
    }

    fn publishing(&self, now: Instant) -> bool {
        now < self.deadline
    }

    fn may_publish(&self, now: Instant, window: usize) -> bool {
        self.publishing(now) && (self.job.qos == QoS::AtMostOnce || self.inflight.len() < window)
    }

    fn publish_next(
        &mut self,
        out: &mut BytesMut,
        version: ProtocolVersion,
        counters: &Counters,
    ) -> Result<(), BenchError> {
        let now = Instant::now();
        let packet_id = if self.job.qos == QoS::AtMostOnce {
            0
        } else {
            self.free_id()?
        };
        let payload = payload::build(
            Stamp {
                publisher: self.job.index,
                seq: self.seq,
                sent_ns: self.job.origin.elapsed().as_nanos() as u64,
            },
            self.job.payload,
            &mut self.scratch,
        );
        let publish = Publish {
            dup: false,
            qos: self.job.qos,
            retain: false,
            topic: self.job.topic.clone().into(),
            packet_id,
            properties: Default::default(),
            payload,
        };
        push(out, &Packet::Publish(publish.clone()), version)?;
        if self.job.qos != QoS::AtMostOnce {
            self.inflight.push_back(InFlight {
                publish,
                released: false,
            });
        }
        self.seq += 1;
        counters.sent.fetch_add(1, Ordering::Relaxed);
        self.due += self.interval;
        if self.due + MAX_LAG < now {
            self.due = now;
        }
        Ok(())
    }

    /// [MQTT-2.3.1-2] a packet identifier not used by a message in flight.
    fn free_id(&mut self) -> Result<u16, BenchError> {
        let inflight = &self.inflight;
        self.ids
            .next(|id| inflight.iter().any(|m| m.publish.packet_id == id))
            .ok_or_else(|| BenchError::Protocol("all 65,535 packet identifiers in flight".into()))
    }

    /// Handle one packet from the broker; false when it ends the connection.
    fn on_packet(
        &mut self,
        packet: Packet,
        out: &mut BytesMut,
        version: ProtocolVersion,
        counters: &Counters,
    ) -> Result<bool, BenchError> {
        let position = |id: u16, released: bool, inflight: &VecDeque<InFlight>| {
            inflight
                .iter()
                .position(|m| m.publish.packet_id == id && m.released == released)
        };
        match packet {
            // [MQTT-4.3.2-1] a QoS 1 flow ends with PUBACK.
            Packet::PubAck(a) if self.job.qos == QoS::AtLeastOnce => {
                if let Some(i) = position(a.packet_id, false, &self.inflight) {
                    self.inflight.remove(i);
                    counters.acked.fetch_add(1, Ordering::Relaxed);
                }
            }
            // [MQTT-4.3.3-1] answer PUBREC with PUBREL; the flow ends with PUBCOMP.
            Packet::PubRec(r) if self.job.qos == QoS::ExactlyOnce => {
                if r.reason.0 >= 0x80 {
                    if let Some(i) = position(r.packet_id, false, &self.inflight) {
                        self.inflight.remove(i);
                        counters.refused.fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    if let Some(i) = position(r.packet_id, false, &self.inflight) {
                        self.inflight[i].released = true;
                    }
                    push(out, &Packet::PubRel(ack(r.packet_id)), version)?;
                }
            }
            Packet::PubComp(c) if self.job.qos == QoS::ExactlyOnce => {
                if let Some(i) = position(c.packet_id, true, &self.inflight) {
                    self.inflight.remove(i);
                    counters.acked.fetch_add(1, Ordering::Relaxed);
                }
            }
            Packet::PingResp => {}
            Packet::Disconnect(_) => return Ok(false),
            other => {
                return Err(BenchError::Protocol(format!(
                    "soak publisher got an unexpected {:?}",
                    other.packet_type()
                )))
            }
        }
        Ok(true)
    }
}

/// Drive one connection until it fails, the work is done, or `give_up`.
async fn serve(
    lean: &mut Lean,
    state: &mut State,
    mut out: BytesMut,
    give_up: Instant,
    counters: &Counters,
) -> Result<End, BenchError> {
    // [MQTT-3.3.4-7] never more unacknowledged QoS 1/2 PUBLISHes than Receive Maximum.
    let window = match lean.connack.properties.receive_maximum {
        Some(max) if lean.version.is_v5() => state.job.inflight.min(max.max(1)),
        _ => state.job.inflight,
    };
    let window = usize::from(window);
    let version = lean.version;
    let mut live = Liveness::new(Instant::now());
    loop {
        let now = Instant::now();
        if !state.publishing(now) && state.inflight.is_empty() && out.is_empty() {
            return Ok(End::Done);
        }
        if now >= give_up {
            return Ok(End::GaveUp);
        }
        let can_publish = state.may_publish(now, window) && out.len() < OUT_HIGH;
        let wake = if state.publishing(now) {
            state.deadline
        } else {
            give_up
        };
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
                    Ok(0) | Err(_) => return Ok(End::Lost),
                    Ok(_) => live.received(Instant::now()),
                }
                let mut packets = Vec::new();
                while let Some(p) = decoder.decode(read_buf).map_err(|e| {
                    BenchError::Protocol(format!("broker sent a malformed packet: {e}"))
                })? {
                    packets.push(p);
                }
                for p in packets {
                    if !state.on_packet(p, &mut out, version, counters)? {
                        return Ok(End::Lost);
                    }
                }
            }
            written = wr.write_buf(&mut out), if !out.is_empty() => match written {
                Ok(0) | Err(_) => return Ok(End::Lost),
                Ok(_) => live.sent(Instant::now()),
            },
            () = tokio::time::sleep_until(state.due.into()), if can_publish => {
                state.publish_next(&mut out, version, counters)?;
            }
            () = tokio::time::sleep_until(live.deadline().into()) => match live.poll(Instant::now()) {
                Beat::Dead => return Ok(End::Lost),
                Beat::Ping => {
                    push(&mut out, &Packet::PingReq, version)?;
                    live.sent(Instant::now());
                }
                Beat::Idle => {}
            },
            () = tokio::time::sleep_until(wake.into()) => {}
        }
    }
}

fn ack(packet_id: u16) -> PubResponse {
    PubResponse {
        packet_id,
        ..PubResponse::default()
    }
}

fn push(out: &mut BytesMut, packet: &Packet, version: ProtocolVersion) -> Result<(), BenchError> {
    encode(packet, version, out).map_err(|e| BenchError::Protocol(e.to_string()))
}

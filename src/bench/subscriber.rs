//! One subscriber: reads deliveries, acknowledges them per QoS, and records sequence numbers
//! (losses, duplicates) and end-to-end latency until told to stop.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use reference_broker::codec::{encode, Packet};
use reference_broker::protocol::InboundAcks;

use super::conn::Lean;
use super::payload;
use super::tracker::Tracker;
use super::{new_histogram, BenchError, Counters};

/// What a subscriber saw.
#[derive(Debug)]
pub struct SubOutcome {
    /// Deliveries per publisher.
    pub tracker: Tracker,
    /// End-to-end latency in microseconds.
    pub latency: Histogram<u64>,
    /// Deliveries whose payload is not a bench payload of this run.
    pub foreign: u64,
}

/// Receive until `stop` turns true (or the broker closes the connection).
pub async fn run(
    mut lean: Lean,
    publishers: usize,
    origin: Instant,
    mut stop: watch::Receiver<bool>,
    counters: Arc<Counters>,
) -> Result<SubOutcome, BenchError> {
    let mut tracker = Tracker::new(publishers);
    let mut latency = new_histogram();
    let mut foreign = 0u64;
    let mut out = BytesMut::with_capacity(4096);
    let version = lean.version;
    let mut acks = InboundAcks::new();
    loop {
        let mut received = 0u64;
        let mut unique = 0u64;
        let now_ns = origin.elapsed().as_nanos() as u64;
        while let Some(p) = lean
            .decoder
            .decode(&mut lean.read_buf)
            .map_err(|e| BenchError::Protocol(format!("broker sent a malformed packet: {e}")))?
        {
            // [MQTT-4.3.2-2] PUBACK for QoS 1, [MQTT-4.3.3-2] PUBREC for QoS 2 and PUBCOMP
            // for PUBREL.
            if let Some(reply) = acks.acknowledge(&p, version).reply {
                push(&mut out, reply, version)?;
            }
            match p {
                Packet::Publish(publish) => {
                    received += 1;
                    let Some(stamp) = payload::read(&publish.payload) else {
                        foreign += 1;
                        continue;
                    };
                    match tracker.record(stamp.publisher as usize, stamp.seq) {
                        Some(true) => {
                            unique += 1;
                            let us = now_ns.saturating_sub(stamp.sent_ns) / 1000;
                            latency.saturating_record(us.max(1));
                        }
                        Some(false) => {}
                        None => foreign += 1,
                    }
                }
                Packet::PubRel(_) | Packet::PingResp => {}
                other => {
                    return Err(BenchError::Protocol(format!(
                        "subscriber got an unexpected {:?}",
                        other.packet_type()
                    )))
                }
            }
        }
        if received > 0 {
            counters.received.fetch_add(received, Ordering::Relaxed);
            counters.unique.fetch_add(unique, Ordering::Relaxed);
            counters
                .last_delivery_ns
                .fetch_max(now_ns, Ordering::Relaxed);
        }
        if !out.is_empty() {
            lean.stream
                .write_all(&out)
                .await
                .map_err(|e| BenchError::Io("acknowledge deliveries".into(), e))?;
            out.clear();
        }
        // read_buf is cancel safe, so the stop signal never loses bytes already read.
        let n = tokio::select! {
            n = lean.stream.read_buf(&mut lean.read_buf) => {
                n.map_err(|e| BenchError::Io("read deliveries".into(), e))?
            }
            _ = stop.wait_for(|s| *s) => break,
        };
        if n == 0 {
            break;
        }
    }
    let _ = lean.send(&Packet::Disconnect(Default::default())).await;
    Ok(SubOutcome {
        tracker,
        latency,
        foreign,
    })
}

fn push(
    out: &mut BytesMut,
    packet: Packet,
    version: reference_broker::codec::ProtocolVersion,
) -> Result<(), BenchError> {
    encode(&packet, version, out).map_err(|e| BenchError::Protocol(e.to_string()))
}

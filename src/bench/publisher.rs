//! One publisher: paces and pipelines PUBLISH packets carrying stamped payloads, keeps at
//! most a window of QoS 1/2 messages in flight, and completes their acknowledgement flows.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, Semaphore};

use reference_broker::codec::{
    encode, Decoder, Packet, ProtocolVersion, PubResponse, Publish, QoS,
};
use reference_broker::protocol::PacketIds;

use super::conn::Lean;
use super::payload::{self, Stamp};
use super::{BenchError, Counters};

/// Publishes written in one `write_all` at most.
const BATCH: usize = 64;

/// What one publisher does.
#[derive(Debug, Clone)]
pub struct PubJob {
    /// Publisher index (in the payload).
    pub index: u32,
    /// Topic.
    pub topic: String,
    /// QoS.
    pub qos: QoS,
    /// Payload size.
    pub payload: usize,
    /// Messages to send, or `None` to run until `deadline`.
    pub count: Option<u64>,
    /// Messages per second (None: unlimited).
    pub rate: Option<f64>,
    /// Window of unacknowledged QoS 1/2 messages.
    pub inflight: u16,
    /// Clock origin of the payload timestamps.
    pub origin: Instant,
    /// How long to wait for the last acknowledgements.
    pub ack_timeout: Duration,
}

/// Run one publisher until its count or `deadline`; returns the number of messages sent.
pub async fn run(
    lean: Lean,
    job: PubJob,
    start: Instant,
    deadline: Option<Instant>,
    counters: Arc<Counters>,
) -> Result<u64, BenchError> {
    let version = lean.version;
    // [MQTT-3.3.4-7] [MQTT-4.9.0-1] never more unacknowledged QoS 1/2 PUBLISH than the
    // server's Receive Maximum.
    let window = match lean.connack.properties.receive_maximum {
        Some(max) if version.is_v5() => job.inflight.min(max.max(1)),
        _ => job.inflight,
    };
    let Lean {
        stream,
        read_buf,
        decoder,
        ..
    } = lean;
    let (rd, mut wr) = stream.into_split();
    let permits = Arc::new(Semaphore::new(usize::from(window)));
    let (rel_tx, mut rel_rx) = mpsc::unbounded_channel::<u16>();
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(false);
    let (total_tx, total_rx) = tokio::sync::watch::channel(None::<u64>);
    let reader = tokio::spawn(read_acks(
        rd,
        read_buf,
        decoder,
        job.qos,
        permits.clone(),
        rel_tx,
        total_rx,
        done_tx,
        counters.clone(),
    ));

    let mut out = BytesMut::with_capacity(BATCH * (job.payload + 64));
    let mut scratch = BytesMut::new();
    let mut seq: u64 = 0;
    let mut ids = PacketIds::new();
    let interval = job.rate.map(|r| Duration::from_secs_f64(1.0 / r));
    let topic: Arc<str> = job.topic.as_str().into();
    'publishing: loop {
        if job.count.is_some_and(|n| seq >= n) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if let Some(every) = interval {
            let due = start + every.mul_f64(seq as f64);
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let mut in_batch = 0;
        while in_batch < BATCH {
            if job.count.is_some_and(|n| seq >= n) {
                break;
            }
            if job.qos != QoS::AtMostOnce {
                // Wait for a window slot; meanwhile send the PUBRELs the reader asks for.
                let permit = if in_batch == 0 {
                    loop {
                        tokio::select! {
                            p = permits.acquire() => break p.ok(),
                            Some(id) = rel_rx.recv() => {
                                push(&mut out, &pubrel(id), version)?;
                                flush(&mut wr, &mut out).await?;
                            }
                        }
                    }
                } else {
                    permits.try_acquire().ok()
                };
                match permit {
                    Some(p) => p.forget(),
                    None if in_batch == 0 => break 'publishing, // the reader stopped
                    None => break,
                }
            }
            while let Ok(id) = rel_rx.try_recv() {
                push(&mut out, &pubrel(id), version)?;
            }
            let packet_id = if job.qos == QoS::AtMostOnce {
                0
            } else {
                // [MQTT-4.3.2-1] unused identifiers without a table of them: the window is
                // far below 65,535, so the identifier handed out 65,535 publishes ago is acked.
                ids.next(|_| false)
                    .ok_or_else(|| BenchError::Protocol("no packet identifier left".into()))?
            };
            let body: Bytes = payload::build(
                Stamp {
                    publisher: job.index,
                    seq,
                    sent_ns: job.origin.elapsed().as_nanos() as u64,
                },
                job.payload,
                &mut scratch,
            );
            let publish = Packet::Publish(Publish {
                dup: false,
                qos: job.qos,
                retain: false,
                topic: topic.to_string().into(),
                packet_id,
                properties: Default::default(),
                payload: body,
            });
            push(&mut out, &publish, version)?;
            seq += 1;
            in_batch += 1;
            if interval.is_some() {
                break;
            }
        }
        flush(&mut wr, &mut out).await?;
        counters.sent.fetch_add(in_batch as u64, Ordering::Relaxed);
    }
    let sent = seq;
    let _ = total_tx.send(Some(sent));
    if job.qos != QoS::AtMostOnce {
        // Finish the flows: PUBRELs until every message is acknowledged.
        let wait = async {
            loop {
                tokio::select! {
                    _ = async { let _ = done_rx.wait_for(|d| *d).await; } => break,
                    Some(id) = rel_rx.recv() => {
                        push(&mut out, &pubrel(id), version)?;
                        flush(&mut wr, &mut out).await?;
                    }
                }
            }
            Ok::<(), BenchError>(())
        };
        match tokio::time::timeout(job.ack_timeout, wait).await {
            Ok(r) => r?,
            Err(_) => {
                tracing::warn!(publisher = job.index, "not every publish was acknowledged")
            }
        }
    }
    // A normal DISCONNECT so the broker drops the session quietly.
    let _ = push(&mut out, &Packet::Disconnect(Default::default()), version);
    let _ = flush(&mut wr, &mut out).await;
    if reader.is_finished() {
        if let Ok(Err(e)) = reader.await {
            return Err(e);
        }
    } else {
        reader.abort();
    }
    Ok(sent)
}

fn pubrel(id: u16) -> Packet {
    Packet::PubRel(PubResponse {
        packet_id: id,
        ..PubResponse::default()
    })
}

fn push(out: &mut BytesMut, packet: &Packet, version: ProtocolVersion) -> Result<(), BenchError> {
    encode(packet, version, out).map_err(|e| BenchError::Protocol(e.to_string()))
}

async fn flush(wr: &mut OwnedWriteHalf, out: &mut BytesMut) -> Result<(), BenchError> {
    if out.is_empty() {
        return Ok(());
    }
    wr.write_all(out)
        .await
        .map_err(|e| BenchError::Io("publish".into(), e))?;
    out.clear();
    Ok(())
}

/// Read acknowledgements: free window slots, ask the writer for PUBRELs, and signal when
/// all `total` messages are acknowledged.
#[allow(clippy::too_many_arguments)]
async fn read_acks(
    mut rd: OwnedReadHalf,
    mut buf: BytesMut,
    mut decoder: Decoder,
    qos: QoS,
    permits: Arc<Semaphore>,
    rel_tx: mpsc::UnboundedSender<u16>,
    mut total: tokio::sync::watch::Receiver<Option<u64>>,
    done: tokio::sync::watch::Sender<bool>,
    counters: Arc<Counters>,
) -> Result<(), BenchError> {
    let mut acked: u64 = 0;
    loop {
        while let Some(p) = decoder
            .decode(&mut buf)
            .map_err(|e| BenchError::Protocol(format!("broker sent a malformed packet: {e}")))?
        {
            match p {
                // [MQTT-4.3.2-1] a QoS 1 flow ends with PUBACK.
                Packet::PubAck(_) if qos == QoS::AtLeastOnce => acked += 1,
                // [MQTT-4.3.3-1] answer PUBREC with PUBREL, the flow ends with PUBCOMP.
                Packet::PubRec(r) if qos == QoS::ExactlyOnce => {
                    if r.reason.0 >= 0x80 {
                        acked += 1; // refused: the flow ends here
                        counters.refused.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let _ = rel_tx.send(r.packet_id);
                        continue;
                    }
                }
                Packet::PubComp(_) if qos == QoS::ExactlyOnce => acked += 1,
                Packet::PingResp => continue,
                other => {
                    return Err(BenchError::Protocol(format!(
                        "publisher got an unexpected {:?}",
                        other.packet_type()
                    )))
                }
            }
            counters.acked.fetch_add(1, Ordering::Relaxed);
            permits.add_permits(1);
            if total.borrow().is_some_and(|t| acked >= t) {
                let _ = done.send(true);
            }
        }
        if total.borrow().is_some_and(|t| acked >= t) {
            let _ = done.send(true);
        }
        // read_buf is cancel safe: nothing read is lost when the total arrives first.
        let n = tokio::select! {
            n = rd.read_buf(&mut buf) => {
                n.map_err(|e| BenchError::Io("read acknowledgements".into(), e))?
            }
            changed = total.changed() => {
                if changed.is_err() {
                    permits.close();
                    return Ok(());
                }
                continue;
            }
        };
        if n == 0 {
            permits.close();
            return Ok(());
        }
    }
}

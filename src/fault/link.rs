//! One direction of one proxied connection: reads chunks, applies the proxy's current toxics to
//! them, writes them on. Toxics change while data flows, without losing a byte in transit.
//!
//! Semantics follow Toxiproxy's toxics (`toxics/*.go`):
//! - `latency`: each chunk leaves `latency ± jitter` ms after it arrived (pipelined: chunks
//!   arriving during the delay wait only their own delay);
//! - `bandwidth`: at most `rate` KB/s, in slices of `rate × 100` bytes;
//! - `slicer`: chunks cut to `average_size ± size_variation` bytes, `delay` µs apart;
//! - `limit_data`: `bytes` bytes pass on this stream, then the connection is closed (FIN);
//! - `slow_close`: the end of the stream is passed on `delay` ms late;
//! - `timeout`: data is dropped; after `timeout` ms (never if 0) the connection is closed; removing
//!   the toxic closes the connections it held, as Toxiproxy's `Cleanup` does (the bytes dropped
//!   meanwhile would leave a hole in the stream);
//! - `reset_peer`: the next chunk (or the end) is dropped and `timeout` ms later the connection is
//!   reset (RST).
//!
//! Differences from Toxiproxy: toxics act in a fixed order (reset_peer, timeout, limit_data,
//! latency, bandwidth, slicer) rather than the order they were added; `timeout` counts from the
//! moment the toxic reaches the connection (Toxiproxy restarts it at each chunk); toxicity is
//! drawn once per toxic and connection.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::{sleep, sleep_until, Instant};

use super::{Stream, Toxic, ToxicKind};

/// Read size, as Toxiproxy's 32 KiB copy buffer.
const CHUNK: usize = 32 * 1024;
/// Chunks read ahead of the writer (Toxiproxy's latency buffer): lets latency pipeline.
const READ_AHEAD: usize = 1024;
/// Bytes read ahead of the writer at most, so that a slow link pushes back on the sender.
const READ_AHEAD_BYTES: usize = 256 * 1024;
/// Bandwidth is paced in slices of this many milliseconds' worth of data, as in Toxiproxy.
const BANDWIDTH_SLICE_MS: u64 = 100;

/// The proxy's toxics, as every link of it sees them.
pub(crate) type ToxicList = Arc<Vec<Toxic>>;

/// How one direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkEnd {
    /// The source ended; the end was passed on as a half-close.
    Eof,
    /// A toxic closes the connection (limit reached, timeout).
    Close,
    /// A `reset_peer` fired: the connection must be reset.
    Reset,
}

struct Chunk {
    data: Bytes,
    arrived: Instant,
    /// Its share of the read-ahead budget, returned when the chunk is written or dropped.
    _budget: OwnedSemaphorePermit,
}

/// Copies `src` to `dst` through the toxics of `stream` until the source ends or a toxic ends
/// the connection. Errors are I/O errors on either side.
pub(crate) async fn run<R, W>(
    src: &mut R,
    dst: &mut W,
    stream: Stream,
    toxics: watch::Receiver<ToxicList>,
) -> io::Result<LinkEnd>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (chunks, inbox) = mpsc::channel(READ_AHEAD);
    let reader = read_chunks(src, chunks, Arc::new(Semaphore::new(READ_AHEAD_BYTES)));
    let writer = Writer::new(stream, toxics).run(inbox, dst);
    tokio::pin!(reader, writer);
    let mut reader_done = false;
    loop {
        tokio::select! {
            read = &mut reader, if !reader_done => {
                // A read error ends the stream like an EOF, as in Toxiproxy.
                if let Err(err) = read {
                    tracing::debug!(%err, %stream, "proxy source failed");
                }
                reader_done = true;
            }
            end = &mut writer => return end,
        }
    }
}

async fn read_chunks<R: AsyncRead + Unpin>(
    src: &mut R,
    chunks: mpsc::Sender<Chunk>,
    budget: Arc<Semaphore>,
) -> io::Result<()> {
    loop {
        let Ok(mut room) = Arc::clone(&budget).acquire_many_owned(CHUNK as u32).await else {
            return Ok(());
        };
        let mut buf = BytesMut::with_capacity(CHUNK);
        let n = src.read_buf(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        // Keep the permits for the bytes read; the rest go back to the budget.
        let used = room.split(n).unwrap_or(room);
        let chunk = Chunk {
            data: buf.freeze(),
            arrived: Instant::now(),
            _budget: used,
        };
        if chunks.send(chunk).await.is_err() {
            return Ok(());
        }
    }
}

/// The toxics of this stream that apply to this connection, by effect.
#[derive(Debug, Default)]
struct Active {
    reset_after: Option<Duration>,
    /// Timeout toxics: name and deadline (None: never closes).
    timeouts: Vec<(String, Option<Instant>)>,
    /// limit_data toxics: name and limit.
    limits: Vec<(String, u64)>,
    /// Latency and jitter, summed over latency toxics.
    latency: Vec<(u64, u64)>,
    /// The lowest bandwidth limit in KB/s.
    rate: Option<u64>,
    /// average_size, size_variation, delay of the first slicer.
    slicer: Option<(u64, u64, u64)>,
    slow_close: Duration,
}

impl Active {
    fn blackholed(&self) -> bool {
        !self.timeouts.is_empty()
    }

    fn timeout_deadline(&self) -> Option<Instant> {
        self.timeouts.iter().filter_map(|(_, at)| *at).min()
    }
}

struct Writer {
    stream: Stream,
    toxics: watch::Receiver<ToxicList>,
    /// Whether each toxic applies to this connection (toxicity, drawn once).
    applies: HashMap<String, bool>,
    /// When each toxic reached this connection (for `timeout`).
    since: HashMap<String, Instant>,
    /// Bytes passed under each limit_data toxic.
    passed: HashMap<String, u64>,
    /// Timeout toxics seen active, to close when one is removed.
    holding: Vec<String>,
}

impl Writer {
    fn new(stream: Stream, toxics: watch::Receiver<ToxicList>) -> Self {
        Self {
            stream,
            toxics,
            applies: HashMap::new(),
            since: HashMap::new(),
            passed: HashMap::new(),
            holding: Vec::new(),
        }
    }

    /// Reads the current toxics of this stream; `None` when a timeout toxic that held this
    /// connection was removed (the connection must close).
    fn active(&mut self) -> Option<Active> {
        let list = Arc::clone(&self.toxics.borrow_and_update());
        let now = Instant::now();
        let mut active = Active::default();
        for toxic in list.iter().filter(|t| t.stream == self.stream) {
            let applies = *self
                .applies
                .entry(toxic.name.clone())
                .or_insert_with(|| rand::random::<f32>() < toxic.toxicity);
            if !applies {
                continue;
            }
            let since = *self.since.entry(toxic.name.clone()).or_insert(now);
            match toxic.kind {
                ToxicKind::ResetPeer { timeout } => {
                    let after = Duration::from_millis(timeout);
                    active.reset_after = Some(active.reset_after.map_or(after, |a| a.min(after)));
                }
                ToxicKind::Timeout { timeout } => {
                    let deadline = (timeout > 0)
                        .then(|| since.checked_add(Duration::from_millis(timeout)))
                        .flatten();
                    active.timeouts.push((toxic.name.clone(), deadline));
                }
                ToxicKind::LimitData { bytes } => active.limits.push((toxic.name.clone(), bytes)),
                ToxicKind::Latency { latency, jitter } => active.latency.push((latency, jitter)),
                ToxicKind::Bandwidth { rate } if rate > 0 => {
                    active.rate = Some(active.rate.map_or(rate, |r| r.min(rate)));
                }
                ToxicKind::Bandwidth { .. } => {}
                ToxicKind::Slicer {
                    average_size,
                    size_variation,
                    delay,
                } => {
                    active
                        .slicer
                        .get_or_insert((average_size.max(1), size_variation, delay));
                }
                ToxicKind::SlowClose { delay } => {
                    active.slow_close = active.slow_close.max(Duration::from_millis(delay));
                }
            }
        }
        // Forget toxics that are gone, so a toxic re-added later is drawn anew.
        self.applies
            .retain(|name, _| list.iter().any(|t| &t.name == name));
        self.since
            .retain(|name, _| list.iter().any(|t| &t.name == name));
        self.passed
            .retain(|name, _| list.iter().any(|t| &t.name == name));
        let released = self
            .holding
            .iter()
            .any(|name| !active.timeouts.iter().any(|(held, _)| held == name));
        if released {
            return None;
        }
        self.holding = active
            .timeouts
            .iter()
            .map(|(name, _)| name.clone())
            .collect();
        Some(active)
    }

    async fn run<W: AsyncWrite + Unpin>(
        mut self,
        mut inbox: mpsc::Receiver<Chunk>,
        dst: &mut W,
    ) -> io::Result<LinkEnd> {
        loop {
            let Some(active) = self.active() else {
                return Ok(LinkEnd::Close);
            };
            let deadline = active.timeout_deadline();
            tokio::select! {
                chunk = inbox.recv() => {
                    let end = match chunk {
                        Some(chunk) => self.pass(chunk, dst).await?,
                        None => self.finish(dst).await?,
                    };
                    if let Some(end) = end {
                        return Ok(end);
                    }
                }
                changed = self.toxics.changed() => {
                    if changed.is_err() {
                        // The proxy is gone.
                        return Ok(LinkEnd::Close);
                    }
                }
                () = sleep_until_or_never(deadline) => return Ok(LinkEnd::Close),
            }
        }
    }

    /// The source ended.
    async fn finish<W: AsyncWrite + Unpin>(&mut self, dst: &mut W) -> io::Result<Option<LinkEnd>> {
        let Some(active) = self.active() else {
            return Ok(Some(LinkEnd::Close));
        };
        if let Some(after) = active.reset_after {
            pause(after).await;
            return Ok(Some(LinkEnd::Reset));
        }
        pause(active.slow_close).await;
        dst.shutdown().await?;
        Ok(Some(LinkEnd::Eof))
    }

    /// Passes one chunk through the toxics; `Some` ends the link.
    async fn pass<W: AsyncWrite + Unpin>(
        &mut self,
        chunk: Chunk,
        dst: &mut W,
    ) -> io::Result<Option<LinkEnd>> {
        let Some(mut active) = self.active() else {
            return Ok(Some(LinkEnd::Close));
        };
        if let Some(after) = active.reset_after {
            pause(after).await;
            return Ok(Some(LinkEnd::Reset));
        }
        if active.blackholed() {
            return Ok(None);
        }
        let mut data = chunk.data;
        if let Some(remaining) = self.remaining(&active) {
            data.truncate(usize::try_from(remaining).unwrap_or(usize::MAX));
        }

        // Latency, re-planned if the toxics change meanwhile (a removed latency frees the chunk).
        let jitters: Vec<i64> = active
            .latency
            .iter()
            .map(|&(_, jitter)| draw_jitter(jitter))
            .collect();
        while !active.latency.is_empty() {
            let delay = active
                .latency
                .iter()
                .zip(&jitters)
                .map(|(&(latency, _), &jitter)| {
                    i64::try_from(latency)
                        .unwrap_or(i64::MAX)
                        .saturating_add(jitter)
                })
                .fold(0i64, i64::saturating_add);
            let delay = Duration::from_millis(u64::try_from(delay).unwrap_or(0));
            let due = chunk.arrived.checked_add(delay).unwrap_or_else(far_future);
            if due <= Instant::now() {
                break;
            }
            tokio::select! {
                () = sleep_until(due) => break,
                changed = self.toxics.changed() => {
                    if changed.is_err() {
                        return Ok(Some(LinkEnd::Close));
                    }
                    let Some(now) = self.active() else {
                        return Ok(Some(LinkEnd::Close));
                    };
                    if let Some(after) = now.reset_after {
                        pause(after).await;
                        return Ok(Some(LinkEnd::Reset));
                    }
                    if now.blackholed() {
                        return Ok(None);
                    }
                    active = now;
                    if active.latency.len() != jitters.len() {
                        break;
                    }
                }
            }
        }

        // Bandwidth and slicer: written piece by piece, each with the toxics of the moment.
        while !data.is_empty() {
            let Some(now) = self.active() else {
                return Ok(Some(LinkEnd::Close));
            };
            let mut size = data.len();
            if let Some((average, variation, _)) = now.slicer {
                let slice = draw_slice(average, variation);
                size = size.min(usize::try_from(slice.max(1)).unwrap_or(usize::MAX));
            }
            if let Some(rate) = now.rate {
                // Slices of 100 ms worth of data, as Toxiproxy.
                let slice =
                    usize::try_from(rate.saturating_mul(BANDWIDTH_SLICE_MS)).unwrap_or(usize::MAX);
                size = size.min(slice.max(1));
            }
            let piece = data.split_to(size);
            dst.write_all(&piece).await?;
            self.count(&now, piece.len());
            active = now;
            let mut pause = Duration::ZERO;
            if let Some(rate) = active.rate {
                // `rate` KB/s is `rate` bytes per millisecond.
                let micros = (piece.len() as u64).saturating_mul(1000) / rate;
                pause += Duration::from_micros(micros);
            }
            if let (Some((_, _, delay)), false) = (active.slicer, data.is_empty()) {
                pause += Duration::from_micros(delay);
            }
            if !pause.is_zero() {
                sleep(pause).await;
            }
        }
        match self.remaining(&active) {
            Some(0) => Ok(Some(LinkEnd::Close)),
            _ => Ok(None),
        }
    }

    /// Bytes still allowed by the tightest limit_data toxic.
    fn remaining(&self, active: &Active) -> Option<u64> {
        active
            .limits
            .iter()
            .map(|(name, limit)| limit.saturating_sub(*self.passed.get(name).unwrap_or(&0)))
            .min()
    }

    fn count(&mut self, active: &Active, bytes: usize) {
        for (name, _) in &active.limits {
            *self.passed.entry(name.clone()).or_insert(0) += bytes as u64;
        }
    }
}

/// A slice size in `average ± variation` (never 0).
fn draw_slice(average: u64, variation: u64) -> u64 {
    let low = average.saturating_sub(variation).max(1);
    if variation == 0 {
        low
    } else {
        low.saturating_add(rand::thread_rng().gen_range(0..=variation.saturating_mul(2)))
    }
}

fn draw_jitter(jitter: u64) -> i64 {
    let jitter = i64::try_from(jitter).unwrap_or(i64::MAX / 2);
    if jitter == 0 {
        0
    } else {
        rand::thread_rng().gen_range(-jitter..=jitter)
    }
}

/// Sleeps for `duration`, not at all when it is zero: a zero sleep still waits for the next
/// timer tick (about 1 ms), which added 3 ms to every round trip through the proxy (measured).
async fn pause(duration: Duration) {
    if !duration.is_zero() {
        sleep(duration).await;
    }
}

/// A deadline that never comes in practice (a year away), for delays too long to represent.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

async fn sleep_until_or_never(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

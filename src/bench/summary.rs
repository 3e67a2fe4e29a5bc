//! From what a run measured to its [`BenchReport`]: the drain phase (waiting for the expected
//! deliveries), per-QoS counts, latency, throughput and the soak verdict. Shared by the plain
//! run and the soak with faults.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reference_broker::codec::{ProtocolVersion, QoS};

use super::memory::{self, MemoryCheck};
use super::progress::Progress;
use super::subscriber::SubOutcome;
use super::{new_histogram, BenchReport, Counters, FaultSummary, Plan, QosLine, RssSample};

/// Handshake times of the connections opened before publishing.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ConnectTimes {
    /// Mean, milliseconds.
    pub mean_ms: f64,
    /// Slowest, milliseconds.
    pub max_ms: f64,
    /// Time to open them all, milliseconds.
    pub total_ms: f64,
}

impl ConnectTimes {
    /// Summarise the handshake `times`; `total` is the whole connect phase.
    pub fn of(times: &[Duration], total: Duration) -> ConnectTimes {
        let ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
        ConnectTimes {
            mean_ms: if ms.is_empty() {
                0.0
            } else {
                ms.iter().sum::<f64>() / ms.len() as f64
            },
            max_ms: ms.iter().copied().fold(0.0, f64::max),
            total_ms: total.as_secs_f64() * 1e3,
        }
    }
}

/// Everything a run measured.
pub(crate) struct Measured {
    /// What the run was against (for the report).
    pub target: String,
    /// Messages each publisher sent (distinct sequence numbers).
    pub sent_by_pub: Vec<u64>,
    /// What each subscriber saw, in subscriber order.
    pub outcomes: Vec<SubOutcome>,
    /// The run's clock origin.
    pub origin: Instant,
    /// First publish.
    pub start: Instant,
    /// Last publish written.
    pub publish_end: Instant,
    /// Handshakes.
    pub connect: ConnectTimes,
    /// Whose memory was sampled.
    pub rss_of: String,
    /// Memory samples.
    pub rss: Vec<RssSample>,
    /// Sample with every connection open.
    pub rss_connected_kib: Option<u64>,
    /// Faults applied (soak with faults).
    pub faults: Option<FaultSummary>,
}

/// Deliveries the subscriptions call for, given what each publisher sent.
pub(crate) fn expected(plan: &Plan, sent_by_pub: &[u64]) -> u64 {
    (0..plan.args.subs)
        .map(|j| {
            (0..plan.args.pubs)
                .filter(|&i| plan.routes(i, j))
                .map(|i| sent_by_pub.get(i).copied().unwrap_or(0))
                .sum::<u64>()
        })
        .sum()
}

/// Wait until `expected` distinct deliveries arrived, or `drain` passed without a new one.
pub(crate) async fn drain(
    counters: &Counters,
    expected: u64,
    drain: Duration,
    progress: &mut Progress,
    connections: usize,
) {
    let mut last_unique = counters.unique.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    loop {
        let unique = counters.unique.load(Ordering::Relaxed);
        if unique != last_unique {
            last_unique = unique;
            last_change = Instant::now();
        }
        if unique >= expected || last_change.elapsed() >= drain {
            return;
        }
        tick.tick().await;
        progress.update(
            "draining",
            counters.sent.load(Ordering::Relaxed),
            unique,
            connections,
        );
    }
}

/// The report of a run.
pub(crate) fn summarise(plan: &Plan, counters: &Counters, m: Measured) -> BenchReport {
    let a = &plan.args;
    let mut latency = new_histogram();
    let mut per_qos: Vec<QosLine> = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .iter()
        .filter(|q| plan.pub_qos.contains(q))
        .map(|q| QosLine {
            qos: q.as_u8(),
            publishers: plan.pub_qos.iter().filter(|p| *p == q).count(),
            sent: (0..a.pubs)
                .filter(|&i| plan.pub_qos[i] == *q)
                .map(|i| m.sent_by_pub[i])
                .sum(),
            expected: 0,
            received: 0,
            lost: 0,
            duplicated: 0,
        })
        .collect();
    let mut foreign = 0;
    for (j, outcome) in m.outcomes.iter().enumerate() {
        let _ = latency.add(&outcome.latency);
        foreign += outcome.foreign;
        for (i, (&sent_i, qos)) in m.sent_by_pub.iter().zip(&plan.pub_qos).enumerate() {
            let Some(line) = per_qos.iter_mut().find(|l| l.qos == qos.as_u8()) else {
                continue;
            };
            let got = outcome.tracker.unique(i);
            line.received += got;
            line.duplicated += outcome.tracker.duplicates(i);
            if plan.routes(i, j) {
                line.expected += sent_i;
                line.lost += sent_i.saturating_sub(got);
            }
        }
    }
    let sent: u64 = m.sent_by_pub.iter().sum();
    let received: u64 = per_qos.iter().map(|l| l.received).sum();
    let lost: u64 = per_qos.iter().map(|l| l.lost).sum();
    let duplicated: u64 = per_qos.iter().map(|l| l.duplicated).sum();
    let publish_s = m.publish_end.duration_since(m.start).as_secs_f64();
    let last_delivery =
        m.origin + Duration::from_nanos(counters.last_delivery_ns.load(Ordering::Relaxed));
    let deliver_s = last_delivery
        .saturating_duration_since(m.start)
        .as_secs_f64();
    let per_sec = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    let memory = plan.soak.then(|| soak_memory(plan, &m)).flatten();
    let soak_passed = plan.soak.then(|| {
        let delivered = per_qos
            .iter()
            .all(|l| l.qos == 0 || (l.lost == 0 && (l.qos < 2 || l.duplicated == 0)));
        delivered && memory.as_ref().is_none_or(|c| c.passed)
    });
    let rss_max_kib = m.rss.iter().map(|s| s.kib).max();
    BenchReport {
        target: m.target,
        pubs: a.pubs,
        subs: a.subs,
        idle: a.idle,
        session_expiry: a.session_expiry,
        pattern: a.pattern,
        payload: a.payload,
        protocol: match a.protocol {
            ProtocolVersion::V5 => "5".into(),
            ProtocolVersion::V3_1_1 => "3.1.1".into(),
            ProtocolVersion::V3_1 => "3.1".into(),
        },
        sent,
        received,
        expected: per_qos.iter().map(|l| l.expected).sum(),
        lost,
        duplicated,
        foreign,
        refused: counters.refused.load(Ordering::Relaxed),
        publish_s,
        deliver_s,
        sent_per_sec: per_sec(sent, publish_s),
        msgs_per_sec: per_sec(received, deliver_s),
        p50_us: latency.value_at_quantile(0.50),
        p90_us: latency.value_at_quantile(0.90),
        p99_us: latency.value_at_quantile(0.99),
        max_us: latency.max(),
        connect_ms: m.connect.mean_ms,
        connect_max_ms: m.connect.max_ms,
        connect_total_ms: m.connect.total_ms,
        per_qos,
        rss_of: m.rss_of,
        rss: m.rss,
        rss_max_kib,
        rss_connected_kib: m.rss_connected_kib,
        memory,
        faults: m.faults,
        soak_passed,
    }
}

/// The memory verdict of a soak: warm-up is the first quarter of the soak, counted from the
/// first publish.
fn soak_memory(plan: &Plan, m: &Measured) -> Option<MemoryCheck> {
    let soak = plan.args.soak?;
    let warmup_end = m.start.saturating_duration_since(m.origin) + soak / 4;
    memory::check(
        &m.rss,
        warmup_end.as_secs_f64(),
        plan.args.rss_growth,
        plan.args.rss_cap,
    )
}

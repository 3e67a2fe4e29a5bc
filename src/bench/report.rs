//! The bench result ([`BenchReport`]) and its two renderings: the final table and one JSON
//! object.

use std::io::{self, Write};

use std::collections::BTreeMap;

use serde::Serialize;

use super::args::Pattern;
use super::memory::MemoryCheck;

/// Deliveries of the publishers of one QoS.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QosLine {
    /// The QoS.
    pub qos: u8,
    /// Publishers with this QoS.
    pub publishers: usize,
    /// Messages published.
    pub sent: u64,
    /// Deliveries the subscriptions call for (sent x matching subscribers).
    pub expected: u64,
    /// Distinct deliveries received.
    pub received: u64,
    /// Expected deliveries never received.
    pub lost: u64,
    /// Deliveries received more than once.
    pub duplicated: u64,
}

/// One memory sample.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RssSample {
    /// Seconds since the start of the run.
    pub at_s: f64,
    /// Resident memory in KiB.
    pub kib: u64,
}

/// Up to `points` samples spread evenly over the run, as `t=12s 8.1MiB` items.
pub fn rss_timeline(samples: &[RssSample], points: usize) -> String {
    if samples.is_empty() || points == 0 {
        return String::new();
    }
    let step = samples.len().div_ceil(points).max(1);
    let mut picked: Vec<&RssSample> = samples.iter().step_by(step).collect();
    if let Some(last) = samples.last() {
        if picked.last().is_none_or(|p| !std::ptr::eq(*p, last)) {
            picked.push(last);
        }
    }
    picked
        .iter()
        .map(|s| format!("t={:.0}s {:.1}MiB", s.at_s, s.kib as f64 / 1024.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the fault schedule of a soak with faults did, and how the clients coped.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FaultSummary {
    /// Faults applied, by kind (`cut`, `latency`, ...).
    pub applied: BTreeMap<String, u64>,
    /// Faults the proxy engine refused (should stay 0).
    pub errors: u64,
    /// Reconnections of publishers and subscribers.
    pub reconnects: u64,
    /// Publishes and PUBRELs sent again after a reconnection.
    pub resent: u64,
    /// QoS 1/2 publishes still unacknowledged when the publishers gave up.
    pub unacked: u64,
}

/// The outcome of a bench run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BenchReport {
    /// Broker URL (credentials removed), or `reference (in-process)`.
    pub target: String,
    /// Publishers.
    pub pubs: usize,
    /// Subscribers.
    pub subs: usize,
    /// Idle connections held.
    pub idle: usize,
    /// Session Expiry Interval of publishers and subscribers (0: clean sessions).
    pub session_expiry: u32,
    /// Topic pattern.
    pub pattern: Pattern,
    /// Payload bytes.
    pub payload: usize,
    /// Protocol version (`3.1.1` or `5`).
    pub protocol: String,
    /// Messages published.
    pub sent: u64,
    /// Distinct deliveries received (over all subscribers).
    pub received: u64,
    /// Deliveries expected (sent x matching subscribers).
    pub expected: u64,
    /// Expected deliveries never received.
    pub lost: u64,
    /// Duplicate deliveries.
    pub duplicated: u64,
    /// Deliveries that were not bench payloads of this run.
    pub foreign: u64,
    /// QoS 2 publishes the broker refused in PUBREC.
    pub refused: u64,
    /// Publish phase in seconds (first publish to last publish written).
    pub publish_s: f64,
    /// Delivery phase in seconds (first publish to the last delivery counted).
    pub deliver_s: f64,
    /// Published messages per second.
    pub sent_per_sec: f64,
    /// Received (distinct) messages per second.
    pub msgs_per_sec: f64,
    /// End-to-end latency percentiles, microseconds.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest latency.
    pub max_us: u64,
    /// Mean connection time (TCP connect + CONNACK), milliseconds.
    pub connect_ms: f64,
    /// Slowest connection, milliseconds.
    pub connect_max_ms: f64,
    /// Time to open every connection, milliseconds.
    pub connect_total_ms: f64,
    /// Per-QoS breakdown.
    pub per_qos: Vec<QosLine>,
    /// Whose memory was sampled: `broker pid N`, `self (in-process broker)`, or `none`.
    pub rss_of: String,
    /// Memory samples.
    pub rss: Vec<RssSample>,
    /// Largest sample, KiB.
    pub rss_max_kib: Option<u64>,
    /// Sample with every connection open, before publishing started, KiB.
    pub rss_connected_kib: Option<u64>,
    /// Soak mode: the memory verdict (none when no sample was taken after warm-up).
    pub memory: Option<MemoryCheck>,
    /// Soak with faults: what the fault schedule did.
    pub faults: Option<FaultSummary>,
    /// Soak mode: whether no QoS 1/2 message was lost or (QoS 2) duplicated, and memory
    /// stayed within its bound.
    pub soak_passed: Option<bool>,
}

impl BenchReport {
    /// Lost QoS 1 and 2 deliveries.
    pub fn lost_reliable(&self) -> u64 {
        self.per_qos
            .iter()
            .filter(|l| l.qos > 0)
            .map(|l| l.lost)
            .sum()
    }

    /// Print the report as one JSON object and a newline.
    pub fn write_json(&self, w: &mut impl Write) -> io::Result<()> {
        serde_json::to_writer(&mut *w, self)?;
        writeln!(w)
    }

    /// Print the final table.
    pub fn write_table(&self, w: &mut impl Write) -> io::Result<()> {
        writeln!(
            w,
            "bench against {}: {} pubs, {} subs, {} idle, {:?}, {} B payload, MQTT {}",
            self.target, self.pubs, self.subs, self.idle, self.pattern, self.payload, self.protocol
        )?;
        writeln!(
            w,
            "{:<5} {:>5} {:>12} {:>12} {:>12} {:>10} {:>10}",
            "QoS", "pubs", "sent", "expected", "received", "lost", "dup"
        )?;
        for l in &self.per_qos {
            writeln!(
                w,
                "{:<5} {:>5} {:>12} {:>12} {:>12} {:>10} {:>10}",
                l.qos, l.publishers, l.sent, l.expected, l.received, l.lost, l.duplicated
            )?;
        }
        writeln!(
            w,
            "{:<5} {:>5} {:>12} {:>12} {:>12} {:>10} {:>10}",
            "all", self.pubs, self.sent, self.expected, self.received, self.lost, self.duplicated
        )?;
        writeln!(
            w,
            "throughput  sent {:.0} msg/s over {:.2} s, received {:.0} msg/s over {:.2} s",
            self.sent_per_sec, self.publish_s, self.msgs_per_sec, self.deliver_s
        )?;
        writeln!(
            w,
            "latency     p50 {} us, p90 {} us, p99 {} us, max {} us",
            self.p50_us, self.p90_us, self.p99_us, self.max_us
        )?;
        writeln!(
            w,
            "connect     mean {:.2} ms, max {:.2} ms, all {} in {:.0} ms",
            self.connect_ms,
            self.connect_max_ms,
            self.pubs + self.subs + self.idle,
            self.connect_total_ms
        )?;
        if let Some(max) = self.rss_max_kib {
            write!(
                w,
                "memory      {}: max {:.1} MiB",
                self.rss_of,
                max as f64 / 1024.0
            )?;
            if let Some(c) = self.rss_connected_kib {
                write!(
                    w,
                    ", {:.1} MiB with all connections open",
                    c as f64 / 1024.0
                )?;
            }
            writeln!(w, " ({} samples)", self.rss.len())?;
            if self.rss.len() > 2 {
                writeln!(w, "memory over time  {}", rss_timeline(&self.rss, 10))?;
            }
        }
        if self.foreign > 0 || self.refused > 0 {
            writeln!(
                w,
                "note        {} foreign deliveries, {} QoS 2 publishes refused",
                self.foreign, self.refused
            )?;
        }
        if let Some(f) = &self.faults {
            let applied: Vec<String> = f.applied.iter().map(|(k, n)| format!("{k} {n}")).collect();
            writeln!(
                w,
                "faults      applied {} ({}), {} refused; {} reconnects, {} resent, {} unacked",
                f.applied.values().sum::<u64>(),
                applied.join(", "),
                f.errors,
                f.reconnects,
                f.resent,
                f.unacked
            )?;
        }
        if let Some(m) = &self.memory {
            writeln!(
                w,
                "memory check  after warm-up ({:.1} s): baseline {:.1} MiB, max {:.1} MiB, bound {:.1} MiB over {} samples: {}",
                m.warmup_end_s,
                m.baseline_kib as f64 / 1024.0,
                m.max_kib as f64 / 1024.0,
                m.bound_kib as f64 / 1024.0,
                m.samples,
                if m.passed { "ok" } else { "EXCEEDED" }
            )?;
        }
        if let Some(passed) = self.soak_passed {
            let bad = self.lost_reliable() + self.duplicated_qos2();
            let verdict = match (passed, bad) {
                (true, _) => "passed: no QoS 1/2 message lost, memory bounded".to_string(),
                (false, 0) => "FAILED: memory grew beyond its bound".to_string(),
                (false, n) => format!("FAILED: {n} QoS 1/2 deliveries lost or duplicated"),
            };
            writeln!(w, "soak        {verdict}")?;
        }
        Ok(())
    }

    /// Duplicate QoS 2 deliveries (exactly once broken).
    pub fn duplicated_qos2(&self) -> u64 {
        self.per_qos
            .iter()
            .filter(|l| l.qos == 2)
            .map(|l| l.duplicated)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_keeps_first_and_last_sample() {
        let samples: Vec<RssSample> = (0..25)
            .map(|i| RssSample {
                at_s: i as f64,
                kib: 1024 * (i + 1),
            })
            .collect();
        let line = rss_timeline(&samples, 5);
        assert!(line.starts_with("t=0s 1.0MiB"), "{line}");
        assert!(line.ends_with("t=24s 25.0MiB"), "{line}");
        assert_eq!(line.matches("MiB").count(), 6);
        assert_eq!(rss_timeline(&[], 5), "");
    }
}

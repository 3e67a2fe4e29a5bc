//! The `bench` command line ([`BenchArgs`]) and its checked form ([`Plan`]): what to run,
//! validated before any socket opens.

use std::time::Duration;

use reference_broker::codec::{ProtocolVersion, QoS};

use super::conn::SessionOpts;
use super::BenchError;

/// How publishers' topics map to subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// Each publisher on its own topic `…/in/<i>`; every subscriber subscribes to `…/in/+`.
    FanIn,
    /// Every publisher on the one topic `…/out`; every subscriber subscribes to it.
    FanOut,
    /// Publisher `i` on `…/pair/<i>`; subscriber `j` subscribes to `…/pair/<j mod N>`.
    Pairwise,
}

/// Options of `mqtt-conformance bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// External broker URL (mqtt://[user:pass@]host:port); default: the in-process
    /// reference broker on 127.0.0.1, port 0.
    #[arg(long)]
    pub broker: Option<String>,
    /// PID of the external broker process, to sample its resident memory (VmRSS).
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Session Expiry Interval in seconds of the publishers' and subscribers' sessions. Above
    /// 0 they are persistent sessions (3.1.1: Clean Session 0), whose QoS 1/2 state a broker
    /// with persistence stores before it acknowledges: this measures what durability costs.
    /// 0 (default): clean sessions that end with the connection. Idle connections stay clean.
    #[arg(long, default_value_t = 0)]
    pub session_expiry: u32,
    /// Number of publishers.
    #[arg(long, short = 'p', default_value_t = 1)]
    pub pubs: usize,
    /// Number of subscribers.
    #[arg(long, short = 's', default_value_t = 1)]
    pub subs: usize,
    /// Extra connections that only CONNECT and stay idle (memory per connection).
    #[arg(long, default_value_t = 0)]
    pub idle: usize,
    /// QoS of the publishers, comma-separated (assigned to publishers round robin).
    #[arg(long, short = 'q', value_delimiter = ',', default_value = "0",
          value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: Vec<u8>,
    /// Payload size in bytes (at least 20: publisher, sequence number, send time).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Topic pattern.
    #[arg(long, value_enum, default_value_t = Pattern::FanIn)]
    pub pattern: Pattern,
    /// Total publish rate in messages per second, split over the publishers (0: as fast as
    /// the broker accepts).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Total number of messages, split over the publishers (default: run for --duration).
    #[arg(long, short = 'n', conflicts_with = "soak")]
    pub count: Option<u64>,
    /// How long publishers publish (when --count is not given).
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Soak mode: publish at a steady rate (--rate, default 1000/s) for this long, sample
    /// memory, then fail if a QoS 1/2 message was lost (QoS 2: or duplicated) or memory
    /// grew beyond the bound (--rss-growth, --rss-cap).
    #[arg(long, value_parser = parse_duration)]
    pub soak: Option<Duration>,
    /// Soak with network faults: every client connects through its own proxy of an embedded
    /// Toxiproxy-compatible engine; cuts, resets, latency, bandwidth limits, slicing and data
    /// limits come and go on a schedule; clients reconnect to their persistent session and
    /// publishers resend unacknowledged messages with DUP.
    #[arg(long, requires = "soak")]
    pub faults: bool,
    /// With --faults: how long each fault lasts, and each pause between two faults.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub fault_every: Duration,
    /// Soak memory bound: after warm-up (the first quarter of the soak), every sample must
    /// stay below the first sample after warm-up times this factor, plus 16 MiB.
    #[arg(long, default_value_t = 1.5)]
    pub rss_growth: f64,
    /// Soak memory bound: an absolute cap on every sample after warm-up, MiB.
    #[arg(long)]
    pub rss_cap: Option<u64>,
    /// Connections opened per second (0: as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub connect_rate: f64,
    /// QoS 1/2 messages in flight per publisher (capped by the broker's Receive Maximum).
    #[arg(long, default_value_t = 64)]
    pub inflight: u16,
    /// MQTT version: 3.1.1 or 5.
    #[arg(long, default_value = "5", value_parser = parse_protocol)]
    pub protocol: ProtocolVersion,
    /// After the last publish, how long to wait without a new delivery before counting the
    /// missing messages as lost.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Timeout of one connection handshake and of one subscribe.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Memory sampling period (soak and --broker-pid).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub sample_every: Duration,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// No live progress line.
    #[arg(long)]
    pub no_progress: bool,
}

impl Default for BenchArgs {
    fn default() -> Self {
        BenchArgs {
            broker: None,
            broker_pid: None,
            session_expiry: 0,
            pubs: 1,
            subs: 1,
            idle: 0,
            qos: vec![0],
            payload: 64,
            pattern: Pattern::FanIn,
            rate: 0.0,
            count: None,
            duration: Duration::from_secs(10),
            soak: None,
            faults: false,
            fault_every: Duration::from_secs(2),
            rss_growth: 1.5,
            rss_cap: None,
            connect_rate: 0.0,
            inflight: 64,
            protocol: ProtocolVersion::V5,
            drain: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(10),
            sample_every: Duration::from_secs(1),
            json: false,
            no_progress: false,
        }
    }
}

/// When publishers stop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this many messages per publisher (index -> count is `per_publisher(i)`).
    Count(u64),
    /// After this long.
    Duration(Duration),
}

/// The checked workload.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The arguments it came from.
    pub args: BenchArgs,
    /// QoS of each publisher.
    pub pub_qos: Vec<QoS>,
    /// Highest QoS published (the subscriptions' maximum QoS).
    pub max_qos: QoS,
    /// When to stop publishing.
    pub stop: Stop,
    /// Messages per second per publisher (None: unlimited).
    pub rate_per_pub: Option<f64>,
    /// True in soak mode.
    pub soak: bool,
}

/// Smallest payload: publisher index (4 bytes), sequence number (8), send time (8).
pub const MIN_PAYLOAD: usize = 20;

impl Plan {
    /// Check the arguments.
    pub fn new(mut args: BenchArgs) -> Result<Plan, BenchError> {
        let bad = |m: String| Err(BenchError::Usage(m));
        if args.payload < MIN_PAYLOAD {
            return bad(format!(
                "--payload must be at least {MIN_PAYLOAD} bytes (got {})",
                args.payload
            ));
        }
        if args.qos.is_empty() {
            return bad("--qos needs at least one value".into());
        }
        if args.pubs > 0 && args.subs == 0 && args.idle == 0 {
            // Publishing into the void is allowed but measures nothing end to end.
            tracing::warn!("no subscribers: only the publish side is measured");
        }
        if !(args.rate.is_finite() && args.rate >= 0.0) {
            return bad(format!("--rate must be >= 0 (got {})", args.rate));
        }
        if !(args.connect_rate.is_finite() && args.connect_rate >= 0.0) {
            return bad(format!(
                "--connect-rate must be >= 0 (got {})",
                args.connect_rate
            ));
        }
        if args.inflight == 0 {
            return bad("--inflight must be at least 1".into());
        }
        if args.pattern == Pattern::Pairwise && args.subs > 0 && args.pubs == 0 {
            return bad("--pattern pairwise needs at least one publisher".into());
        }
        let soak = args.soak.is_some();
        if args.faults && !soak {
            return bad("--faults needs --soak".into());
        }
        if args.fault_every.is_zero() {
            return bad("--fault-every must be above 0".into());
        }
        if !(args.rss_growth.is_finite() && args.rss_growth >= 1.0) {
            return bad(format!(
                "--rss-growth must be >= 1 (got {})",
                args.rss_growth
            ));
        }
        if let Some(d) = args.soak {
            args.duration = d;
            if args.rate == 0.0 {
                args.rate = 1000.0;
            }
        }
        let stop = match args.count {
            Some(n) if args.pubs > 0 => Stop::Count(n),
            Some(_) => Stop::Count(0),
            None => Stop::Duration(args.duration),
        };
        let pub_qos: Vec<QoS> = (0..args.pubs)
            .map(|i| QoS::from_u8(args.qos[i % args.qos.len()]).unwrap_or(QoS::AtMostOnce))
            .collect();
        let max_qos = args
            .qos
            .iter()
            .filter_map(|q| QoS::from_u8(*q))
            .max()
            .unwrap_or(QoS::AtMostOnce);
        let rate_per_pub = (args.rate > 0.0 && args.pubs > 0).then(|| args.rate / args.pubs as f64);
        Ok(Plan {
            args,
            pub_qos,
            max_qos,
            stop,
            rate_per_pub,
            soak,
        })
    }

    /// Messages publisher `i` sends under a count limit (the total split evenly, the first
    /// publishers taking the remainder).
    pub fn count_for(&self, i: usize) -> Option<u64> {
        match self.stop {
            Stop::Count(total) => {
                let n = self.args.pubs as u64;
                let base = total / n;
                Some(base + u64::from((i as u64) < total % n))
            }
            Stop::Duration(_) => None,
        }
    }

    /// The topic publisher `i` publishes to, under the run prefix.
    pub fn pub_topic(&self, prefix: &str, i: usize) -> String {
        match self.args.pattern {
            Pattern::FanIn => format!("{prefix}/in/{i}"),
            Pattern::FanOut => format!("{prefix}/out"),
            Pattern::Pairwise => format!("{prefix}/pair/{i}"),
        }
    }

    /// The session publishers and subscribers ask for (`--session-expiry`).
    pub fn session(&self) -> SessionOpts {
        match self.args.session_expiry {
            0 => SessionOpts::CLEAN,
            // MQTT 5: a new session that outlives the connection; 3.1.1: Clean Session 0.
            secs => SessionOpts {
                clean_start: self.args.protocol.is_v5(),
                expiry: Some(secs),
            },
        }
    }

    /// The filter subscriber `j` subscribes to.
    pub fn sub_filter(&self, prefix: &str, j: usize) -> String {
        match self.args.pattern {
            Pattern::FanIn => format!("{prefix}/in/+"),
            Pattern::FanOut => format!("{prefix}/out"),
            Pattern::Pairwise => format!("{prefix}/pair/{}", j % self.args.pubs.max(1)),
        }
    }

    /// Whether subscriber `j` receives publisher `i`'s messages.
    pub fn routes(&self, i: usize, j: usize) -> bool {
        match self.args.pattern {
            Pattern::FanIn | Pattern::FanOut => true,
            Pattern::Pairwise => j % self.args.pubs.max(1) == i,
        }
    }
}

/// Parse `500ms`, `10s`, `5m`, `1h` (a fraction is allowed).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        return Err(format!(
            "{text:?} is not a duration like 500ms, 10s, 5m or 1h"
        ));
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=31_536_000.0).contains(&(v * scale)) => {
            Ok(Duration::from_secs_f64(v * scale))
        }
        _ => Err(format!(
            "{text:?} is not a duration like 500ms, 10s, 5m or 1h"
        )),
    }
}

/// Parse `3.1.1` / `4` or `5` / `5.0`.
pub fn parse_protocol(text: &str) -> Result<ProtocolVersion, String> {
    match text.trim() {
        "3.1.1" | "4" | "311" => Ok(ProtocolVersion::V3_1_1),
        "5" | "5.0" => Ok(ProtocolVersion::V5),
        other => Err(format!("{other:?} is not a protocol version (3.1.1 or 5)")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn count_is_split_evenly() {
        let plan = Plan::new(BenchArgs {
            pubs: 3,
            count: Some(10),
            ..BenchArgs::default()
        })
        .unwrap();
        let counts: Vec<_> = (0..3).map(|i| plan.count_for(i).unwrap()).collect();
        assert_eq!(counts, vec![4, 3, 3]);
    }

    #[test]
    fn pairwise_routes_one_publisher_per_subscriber() {
        let plan = Plan::new(BenchArgs {
            pubs: 2,
            subs: 4,
            pattern: Pattern::Pairwise,
            ..BenchArgs::default()
        })
        .unwrap();
        assert!(plan.routes(1, 3) && !plan.routes(0, 3));
        assert_eq!(plan.sub_filter("b", 3), plan.pub_topic("b", 1));
    }

    #[test]
    fn small_payload_is_refused() {
        let r = Plan::new(BenchArgs {
            payload: 8,
            ..BenchArgs::default()
        });
        assert!(matches!(r, Err(BenchError::Usage(_))));
    }
}

//! Load generator (`mqtt-conformance bench`): N publishers and M subscribers against a
//! broker, counting every message by sequence number (losses, duplicates per QoS) and timing
//! it end to end (HDR histogram), plus idle connections and memory sampling for soak runs.
//!
//! Connections use the lean path in [`conn`] (socket + reference codec), not the reference
//! client: it is 1.6x-4.5x faster and uses a fraction of the broker's CPU (figures in
//! [`conn`]).
//!
//! Phases: connect (subscribers, which subscribe, then publishers, then idle connections, at
//! `--connect-rate`), publish (every publisher from the same instant, until `--count` or
//! `--duration`), drain (until every expected delivery arrived, or `--drain` passed without
//! one), report. Payloads carry publisher, sequence number and send time ([`payload`]), so
//! losses and duplicates are exact ([`tracker`]) and latency is end to end.
//!
//! `--soak` judges the run: no QoS 1/2 message lost, no QoS 2 message duplicated, memory
//! within its bound after warm-up ([`memory`]). `--soak --faults` runs the clients through
//! proxies whose links fail on a schedule, with persistent sessions and resends ([`soak`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), mqtt_conformance::bench::BenchError> {
//! use mqtt_conformance::bench::{run, BenchArgs};
//! let report = run(BenchArgs { pubs: 2, subs: 2, count: Some(200), qos: vec![1], ..BenchArgs::default() }).await?;
//! assert_eq!(report.lost, 0);
//! # Ok(()) }
//! ```

mod args;
pub mod conn;
pub mod memory;
pub mod payload;
mod progress;
pub mod publisher;
mod report;
mod sampler;
pub mod soak;
pub mod subscriber;
mod summary;
pub mod system;
pub mod tracker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use tokio::sync::watch;

use reference_broker::broker::{Broker, BrokerConfig};

pub use args::{parse_duration, BenchArgs, Pattern, Plan, Stop};
pub use report::{BenchReport, FaultSummary, QosLine, RssSample};

use conn::{Endpoint, Lean, SessionOpts};
use progress::Progress;
use sampler::Sampler;
use summary::{ConnectTimes, Measured};

/// Handshakes in progress at once.
const CONNECT_CONCURRENCY: usize = 256;

/// Why a bench run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Invalid options.
    #[error("{0}")]
    Usage(String),
    /// The in-process reference broker failed to start.
    #[error("the reference broker failed to start: {0}")]
    Broker(String),
    /// A socket operation failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The broker refused a connection (CONNACK code).
    #[error("broker refused {0} with code 0x{1:02x}")]
    Refused(String, u8),
    /// The broker broke the protocol or sent something unexpected.
    #[error("{0}")]
    Protocol(String),
    /// The embedded proxy engine refused a proxy (soak with faults).
    #[error("fault injection: {0}")]
    Fault(#[from] crate::fault::FaultError),
    /// A handshake did not finish in time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    /// Not enough file descriptors for the connections asked for.
    #[error("{needed} file descriptors needed but the limit is {limit} (raise the hard limit: ulimit -Hn)")]
    FdLimit {
        /// Descriptors needed.
        needed: u64,
        /// The soft limit after raising it.
        limit: u64,
    },
}

/// Live totals shared by the connection tasks.
#[derive(Debug, Default)]
pub struct Counters {
    /// Publishes written.
    pub sent: AtomicU64,
    /// QoS 1/2 publishes whose flow completed.
    pub acked: AtomicU64,
    /// QoS 2 publishes refused in PUBREC.
    pub refused: AtomicU64,
    /// Deliveries read (duplicates included).
    pub received: AtomicU64,
    /// Distinct deliveries.
    pub unique: AtomicU64,
    /// Time of the latest delivery, nanoseconds since the run's clock origin.
    pub last_delivery_ns: AtomicU64,
}

/// A latency histogram from 1 us to 1 hour with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds: this cannot fail.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// The `bench` subcommand: start a runtime, run, print the table (or `--json`) on stdout.
/// Exit code 1 when a soak failed (a QoS 1/2 message lost, a QoS 2 message duplicated, or
/// memory beyond its bound), else 0.
pub fn run_cli(args: BenchArgs) -> Result<std::process::ExitCode, BenchError> {
    let json = args.json;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Io("start the async runtime".into(), e))?;
    let report = runtime.block_on(run(args))?;
    let mut out = std::io::stdout().lock();
    let printed = if json {
        report.write_json(&mut out)
    } else {
        report.write_table(&mut out)
    };
    printed.map_err(|e| BenchError::Io("print the report".into(), e))?;
    Ok(std::process::ExitCode::from(
        if report.soak_passed == Some(false) {
            crate::exit::FAILURES
        } else {
            crate::exit::SUCCESS
        },
    ))
}

/// What the run connects to.
enum Target {
    InProcess(Broker),
    External,
}

/// Run the workload described by `args` and report what happened.
pub async fn run(args: BenchArgs) -> Result<BenchReport, BenchError> {
    let plan = Plan::new(args)?;
    let a = &plan.args;
    let connections = (a.pubs + a.subs + a.idle) as u64;
    let in_process = a.broker.is_none();
    let needed = connections * if in_process { 2 } else { 1 } + 64;
    let limit = system::raise_fd_limit();
    if limit < needed {
        return Err(BenchError::FdLimit { needed, limit });
    }

    let (target, url, shown) = match &a.broker {
        None => {
            let addr = SocketAddr::from(([127, 0, 0, 1], 0));
            let broker = Broker::bind(BrokerConfig::default_tcp(addr))
                .await
                .map_err(|e| BenchError::Broker(e.to_string()))?;
            let bound = broker
                .tcp_addr()
                .ok_or_else(|| BenchError::Broker("no TCP listener".into()))?;
            (
                Target::InProcess(broker),
                format!("mqtt://{bound}"),
                "reference (in-process)".to_string(),
            )
        }
        Some(url) => (Target::External, url.clone(), redact(url)),
    };
    let result = if plan.args.faults {
        soak::run(&plan, &url, shown, in_process).await
    } else {
        run_against(&plan, &url, shown, in_process).await
    };
    if let Target::InProcess(broker) = target {
        broker.shutdown().await;
    }
    result
}

/// A tag unique to this run, for client ids and topics.
fn run_id() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    )
}

fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        (None, Some((_, host))) => host.to_string(),
        _ => url.to_string(),
    }
}

/// Open `count` connections named `{prefix}{i}`, paced by the connect rate, at most
/// [`CONNECT_CONCURRENCY`] at once; subscribers also subscribe. Returns them in index
/// order with their handshake times.
#[allow(clippy::too_many_arguments)]
async fn open_many(
    ep: &Endpoint,
    count: usize,
    name: &str,
    session: SessionOpts,
    subscribe: Option<(&Plan, &str)>,
    pacing: Option<Duration>,
    scheduled: &AtomicUsize,
    opened: &AtomicUsize,
    origin: Instant,
) -> Result<Vec<(Lean, Duration)>, BenchError> {
    let mut results: Vec<(usize, Lean, Duration)> = futures::stream::iter(0..count)
        .map(|i| {
            let slot = scheduled.fetch_add(1, Ordering::Relaxed);
            async move {
                if let Some(every) = pacing {
                    tokio::time::sleep_until((origin + every.mul_f64(slot as f64)).into()).await;
                }
                let (mut lean, took) =
                    Lean::connect_with(ep, format!("{name}{i}"), 0, session).await?;
                if let Some((plan, prefix)) = subscribe {
                    let filter = plan.sub_filter(prefix, i);
                    lean.subscribe(&filter, plan.max_qos, ep.timeout).await?;
                }
                opened.fetch_add(1, Ordering::Relaxed);
                Ok::<_, BenchError>((i, lean, took))
            }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    results.sort_by_key(|(i, _, _)| *i);
    Ok(results.into_iter().map(|(_, l, t)| (l, t)).collect())
}

async fn run_against(
    plan: &Plan,
    url: &str,
    shown: String,
    in_process: bool,
) -> Result<BenchReport, BenchError> {
    let a = &plan.args;
    let ep = Endpoint::from_url(url, a.protocol, a.connect_timeout)?;
    let origin = Instant::now();
    let run_id = run_id();
    let prefix = format!("bench/{run_id}");
    let mut progress = Progress::new(!a.no_progress && !a.json);
    let sampler = Sampler::start(plan, in_process, origin);
    let counters = Arc::new(Counters::default());

    // Connect: subscribers (subscribed), then publishers, then idle connections.
    progress.phase("connecting");
    let pacing = (a.connect_rate > 0.0).then(|| Duration::from_secs_f64(1.0 / a.connect_rate));
    let scheduled = AtomicUsize::new(0);
    let opened = AtomicUsize::new(0);
    let connect_started = Instant::now();
    let connecting = async {
        let subs = open_many(
            &ep,
            a.subs,
            &format!("b{run_id}s"),
            plan.session(),
            Some((plan, &prefix)),
            pacing,
            &scheduled,
            &opened,
            connect_started,
        )
        .await?;
        let pubs = open_many(
            &ep,
            a.pubs,
            &format!("b{run_id}p"),
            plan.session(),
            None,
            pacing,
            &scheduled,
            &opened,
            connect_started,
        )
        .await?;
        let idle = open_many(
            &ep,
            a.idle,
            &format!("b{run_id}i"),
            SessionOpts::CLEAN,
            None,
            pacing,
            &scheduled,
            &opened,
            connect_started,
        )
        .await?;
        Ok::<_, BenchError>((subs, pubs, idle))
    };
    let (subs, pubs, idle) = progress
        .during("connecting", connecting, || {
            (0, 0, opened.load(Ordering::Relaxed))
        })
        .await?;
    let connect_total = connect_started.elapsed();
    let times: Vec<Duration> = subs
        .iter()
        .chain(pubs.iter())
        .chain(idle.iter())
        .map(|(_, t)| *t)
        .collect();
    let connect = ConnectTimes::of(&times, connect_total);
    let rss_connected_kib = sampler.sample_now(origin);

    // Publish: subscribers first, then every publisher from the same instant.
    let (stop_tx, stop_rx) = watch::channel(false);
    let sub_tasks: Vec<_> = subs
        .into_iter()
        .map(|(lean, _)| {
            tokio::spawn(subscriber::run(
                lean,
                a.pubs,
                origin,
                stop_rx.clone(),
                counters.clone(),
            ))
        })
        .collect();
    let start = Instant::now();
    let deadline = match plan.stop {
        Stop::Duration(d) => Some(start + d),
        Stop::Count(_) => None,
    };
    let ack_timeout = a.drain.max(Duration::from_secs(1)) + a.connect_timeout;
    let pub_tasks: Vec<_> = pubs
        .into_iter()
        .enumerate()
        .map(|(i, (lean, _))| {
            let job = publisher::PubJob {
                index: i as u32,
                topic: plan.pub_topic(&prefix, i),
                qos: plan.pub_qos[i],
                payload: a.payload,
                count: plan.count_for(i),
                rate: plan.rate_per_pub,
                inflight: a.inflight,
                origin,
                ack_timeout,
            };
            tokio::spawn(publisher::run(lean, job, start, deadline, counters.clone()))
        })
        .collect();
    let total_conns = opened.load(Ordering::Relaxed);
    let hold = (a.pubs == 0).then_some(deadline).flatten();
    let publishing = async {
        let results = futures::future::join_all(pub_tasks).await;
        // No publisher: hold the connections for the duration (idle-memory runs).
        if let Some(until) = hold {
            tokio::time::sleep_until(until.into()).await;
        }
        results
    };
    let pub_results = progress
        .during("publishing", publishing, || {
            (
                counters.sent.load(Ordering::Relaxed),
                counters.unique.load(Ordering::Relaxed),
                total_conns,
            )
        })
        .await;
    let publish_end = Instant::now();
    let mut sent_by_pub = Vec::with_capacity(pub_results.len());
    let mut first_error = None;
    for r in pub_results {
        match r {
            Ok(Ok(n)) => sent_by_pub.push(n),
            Ok(Err(e)) => {
                sent_by_pub.push(0);
                first_error.get_or_insert(e);
            }
            Err(join) => {
                sent_by_pub.push(0);
                first_error.get_or_insert(BenchError::Protocol(format!(
                    "publisher task failed: {join}"
                )));
            }
        }
    }
    if let Some(e) = first_error {
        progress.finish();
        let _ = stop_tx.send(true);
        return Err(e);
    }

    // Drain: wait for the expected deliveries, or for `drain` without a new one.
    let expected = summary::expected(plan, &sent_by_pub);
    summary::drain(&counters, expected, a.drain, &mut progress, total_conns).await;
    let _ = stop_tx.send(true);
    progress.finish();

    let mut outcomes = Vec::with_capacity(sub_tasks.len());
    for t in sub_tasks {
        match t.await {
            Ok(Ok(o)) => outcomes.push(o),
            Ok(Err(e)) => return Err(e),
            Err(join) => {
                return Err(BenchError::Protocol(format!(
                    "subscriber task failed: {join}"
                )))
            }
        }
    }
    drop(idle);
    let (rss_of, rss) = sampler.finish().await;
    Ok(summary::summarise(
        plan,
        &counters,
        Measured {
            target: shown,
            sent_by_pub,
            outcomes,
            origin,
            start,
            publish_end,
            connect,
            rss_of,
            rss,
            rss_connected_kib,
            faults: None,
        },
    ))
}

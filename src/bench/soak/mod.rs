//! Soak with network faults (`bench --soak D --faults`): every publisher and subscriber
//! connects through its own proxy of the embedded Toxiproxy-compatible engine
//! ([`crate::fault`]); faults come and go on a schedule ([`schedule`]); clients reconnect to
//! their persistent session ([`session`]), publishers resend what was not acknowledged with
//! DUP ([`publisher`]), subscribers keep QoS 2 exactly once on their side ([`subscriber`]).
//! Once the soak is over every fault is healed, the publishers finish their flows, and the
//! run is judged like any soak: no QoS 1/2 message lost, no QoS 2 message duplicated, memory
//! within its bound ([`super::memory`]).

pub mod publisher;
pub mod schedule;
pub mod session;
pub mod subscriber;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::fault::{EmbeddedInjector, FaultInjector};

use super::conn::{Endpoint, Lean};
use super::progress::Progress;
use super::publisher::PubJob;
use super::sampler::Sampler;
use super::summary::{self, ConnectTimes, Measured};
use super::{open_many, run_id, BenchError, BenchReport, Counters, FaultSummary, Plan};
use session::Durable;
use subscriber::Subscription;

/// A client connected through its proxy, before the load starts.
struct Ready {
    durable: Durable,
    lean: Lean,
}

/// Run a soak with faults against the broker at `url`.
pub(crate) async fn run(
    plan: &Plan,
    url: &str,
    target: String,
    in_process: bool,
) -> Result<BenchReport, BenchError> {
    let a = &plan.args;
    let ep = Endpoint::from_url(url, a.protocol, a.connect_timeout)?;
    let upstream = resolve(&ep.addr).await?;
    let faults = Arc::new(EmbeddedInjector::new());
    let origin = Instant::now();
    let run_id = run_id();
    let prefix = format!("bench/{run_id}");
    let mut progress = Progress::new(!a.no_progress && !a.json);
    let sampler = Sampler::start(plan, in_process, origin);
    let counters = Arc::new(Counters::default());

    // Connect through the proxies: subscribers (subscribed), then publishers; idle
    // connections go straight to the broker.
    progress.phase("connecting");
    let connect_started = Instant::now();
    let mut times = Vec::new();
    let mut proxies = Vec::new();
    let mut subs = Vec::with_capacity(a.subs);
    for j in 0..a.subs {
        let sub = Subscription {
            filter: plan.sub_filter(&prefix, j),
            qos: plan.max_qos,
            timeout: a.connect_timeout,
        };
        let mut ready = open(&faults, &ep, upstream, &format!("sub{j}"), &run_id, plan).await?;
        ready
            .lean
            .subscribe(&sub.filter, sub.qos, sub.timeout)
            .await?;
        times.push(connect_started.elapsed());
        proxies.push(format!("sub{j}"));
        subs.push((ready, sub));
    }
    let mut pubs = Vec::with_capacity(a.pubs);
    for i in 0..a.pubs {
        let t = Instant::now();
        pubs.push(open(&faults, &ep, upstream, &format!("pub{i}"), &run_id, plan).await?);
        times.push(t.elapsed());
        proxies.push(format!("pub{i}"));
    }
    let (scheduled, opened) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let idle = open_many(
        &ep,
        a.idle,
        &format!("b{run_id}i"),
        super::conn::SessionOpts::CLEAN,
        None,
        None,
        &scheduled,
        &opened,
        connect_started,
    )
    .await?;
    times.extend(idle.iter().map(|(_, t)| *t));
    let connect = ConnectTimes::of(&times, connect_started.elapsed());
    let rss_connected_kib = sampler.sample_now(origin);

    // Soak: subscribers, the fault schedule and publishers from the same instant.
    let (stop_tx, stop_rx) = watch::channel(false);
    let sub_tasks: Vec<_> = subs
        .into_iter()
        .map(|(ready, sub)| {
            tokio::spawn(subscriber::run(
                ready.durable,
                ready.lean,
                sub,
                a.pubs,
                origin,
                stop_rx.clone(),
                counters.clone(),
            ))
        })
        .collect();
    let start = Instant::now();
    let deadline = start + a.soak.unwrap_or(a.duration);
    // Time to finish the flows once the faults are healed.
    let give_up =
        deadline + a.drain.max(Duration::from_secs(1)) + a.connect_timeout + a.fault_every;
    let schedule = tokio::spawn(schedule::run(
        Arc::clone(&faults),
        proxies,
        a.fault_every,
        deadline,
    ));
    let pub_tasks: Vec<_> = pubs
        .into_iter()
        .enumerate()
        .map(|(i, ready)| {
            let job = PubJob {
                index: i as u32,
                topic: plan.pub_topic(&prefix, i),
                qos: plan.pub_qos[i],
                payload: a.payload,
                count: None,
                rate: plan.rate_per_pub,
                inflight: a.inflight,
                origin,
                ack_timeout: give_up.saturating_duration_since(start),
            };
            tokio::spawn(publisher::run(
                ready.durable,
                ready.lean,
                job,
                start,
                deadline,
                give_up,
                counters.clone(),
            ))
        })
        .collect();
    let total_conns = a.pubs + a.subs + a.idle;
    let publishing = futures::future::join_all(pub_tasks);
    let pub_results = progress
        .during("soaking with faults", publishing, || {
            (
                counters.sent.load(Ordering::Relaxed),
                counters.unique.load(Ordering::Relaxed),
                total_conns,
            )
        })
        .await;
    let publish_end = Instant::now();
    let log = schedule
        .await
        .map_err(|e| BenchError::Protocol(format!("fault schedule failed: {e}")))?;
    let mut summary = FaultSummary {
        applied: log.applied,
        errors: log.errors,
        ..FaultSummary::default()
    };
    let mut sent_by_pub = Vec::with_capacity(pub_results.len());
    for r in pub_results {
        let outcome = r
            .map_err(|e| BenchError::Protocol(format!("publisher task failed: {e}")))?
            .inspect_err(|_| {
                let _ = stop_tx.send(true);
            })?;
        sent_by_pub.push(outcome.sent);
        summary.resent += outcome.resent;
        summary.unacked += outcome.unacked;
        summary.reconnects += outcome.reconnects;
    }

    let expected = summary::expected(plan, &sent_by_pub);
    summary::drain(&counters, expected, a.drain, &mut progress, total_conns).await;
    let _ = stop_tx.send(true);
    progress.finish();
    let mut outcomes = Vec::with_capacity(sub_tasks.len());
    for t in sub_tasks {
        let (outcome, reconnects) = t
            .await
            .map_err(|e| BenchError::Protocol(format!("subscriber task failed: {e}")))??;
        summary.reconnects += reconnects;
        outcomes.push(outcome);
    }
    drop(idle);
    let (rss_of, rss) = sampler.finish().await;
    Ok(summary::summarise(
        plan,
        &counters,
        Measured {
            target,
            sent_by_pub,
            outcomes,
            origin,
            start,
            publish_end,
            connect,
            rss_of,
            rss,
            rss_connected_kib,
            faults: Some(summary),
        },
    ))
}

/// Create proxy `name` in front of the broker and connect client `b{run_id}{name}` through it.
async fn open(
    faults: &EmbeddedInjector,
    ep: &Endpoint,
    upstream: SocketAddr,
    name: &str,
    run_id: &str,
    plan: &Plan,
) -> Result<Ready, BenchError> {
    let listen = faults.create_proxy(name, upstream).await?;
    let proxied = Endpoint {
        addr: listen.to_string(),
        ..ep.clone()
    };
    let mut durable = Durable::new(proxied, format!("b{run_id}{name}"));
    let lean = durable
        .connect(Instant::now() + plan.args.connect_timeout)
        .await?;
    Ok(Ready { durable, lean })
}

async fn resolve(addr: &str) -> Result<SocketAddr, BenchError> {
    tokio::net::lookup_host(addr)
        .await
        .map_err(|e| BenchError::Io(format!("resolve {addr}"), e))?
        .next()
        .ok_or_else(|| BenchError::Usage(format!("{addr} resolves to no address")))
}

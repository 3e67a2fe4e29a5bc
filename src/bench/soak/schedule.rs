//! The fault schedule of a soak with faults: which fault hits which client's proxy, and the
//! task that applies each one for a period, heals it, and pauses for a period.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fault::{Direction, EmbeddedInjector, Fault};

/// The faults, in the order they are applied.
pub fn rotation() -> Vec<Fault> {
    vec![
        // The link drops (FIN both ways); the client reconnects at once.
        Fault::Cut,
        Fault::Latency {
            delay: Duration::from_millis(40),
            jitter: Duration::from_millis(20),
            direction: Direction::Both,
        },
        // The client's next write is lost, then the connection is reset (RST).
        Fault::ResetPeer {
            after: Duration::from_millis(20),
            direction: Direction::Up,
        },
        Fault::Bandwidth {
            kb_per_s: 16,
            direction: Direction::Both,
        },
        // Packets arrive in pieces of about 32 bytes.
        Fault::Slicer {
            average_size: 32,
            size_variation: 16,
            delay: Duration::from_micros(500),
            direction: Direction::Both,
        },
        // Every connection is closed after 2 KiB each way, mid-packet if need be.
        Fault::LimitData {
            bytes: 2048,
            direction: Direction::Both,
        },
        // The link drops and reconnections are refused until the fault is healed.
        Fault::Down,
    ]
}

/// The short name of a fault's kind, as the report counts them.
pub fn kind(fault: &Fault) -> &'static str {
    match fault {
        Fault::Cut => "cut",
        Fault::Down => "down",
        Fault::Blackhole(_) => "blackhole",
        Fault::Latency { .. } => "latency",
        Fault::Bandwidth { .. } => "bandwidth",
        Fault::Slicer { .. } => "slicer",
        Fault::LimitData { .. } => "limit_data",
        Fault::SlowClose { .. } => "slow_close",
        Fault::ResetPeer { .. } => "reset_peer",
        Fault::Heal => "heal",
    }
}

/// Step `k` of the schedule over `clients` proxies: the client hit and the fault. The faults
/// go round in order; each round starts one client further, so every client meets every
/// fault.
pub fn step(k: usize, clients: usize) -> (usize, Fault) {
    let faults = rotation();
    let fault = faults[k % faults.len()].clone();
    (
        ((k % faults.len()) + k / faults.len()) % clients.max(1),
        fault,
    )
}

/// What the schedule did.
#[derive(Debug, Default, Clone)]
pub struct FaultLog {
    /// Faults applied, by kind.
    pub applied: BTreeMap<String, u64>,
    /// Faults (or heals) the engine refused.
    pub errors: u64,
}

/// Until `until`: pause `every`, apply the next fault to its client's proxy, wait `every`,
/// heal it. Every proxy is healed at the end.
pub async fn run(
    faults: Arc<EmbeddedInjector>,
    proxies: Vec<String>,
    every: Duration,
    until: Instant,
) -> FaultLog {
    let mut log = FaultLog::default();
    let mut k = 0;
    while pause(every, until).await {
        let (target, fault) = step(k, proxies.len());
        k += 1;
        let Some(proxy) = proxies.get(target) else {
            break;
        };
        match fault.apply(faults.as_ref(), proxy).await {
            Ok(_) => *log.applied.entry(kind(&fault).to_string()).or_default() += 1,
            Err(e) => {
                tracing::warn!(%proxy, %fault, error = %e, "fault not applied");
                log.errors += 1;
            }
        }
        let more = pause(every, until).await;
        heal(&faults, proxy, &mut log).await;
        if !more {
            break;
        }
    }
    for proxy in &proxies {
        heal(&faults, proxy, &mut log).await;
    }
    log
}

/// Sleep `every`, or until `until`; false once `until` is reached.
async fn pause(every: Duration, until: Instant) -> bool {
    let wake = (Instant::now() + every).min(until);
    tokio::time::sleep_until(wake.into()).await;
    Instant::now() < until
}

async fn heal(faults: &EmbeddedInjector, proxy: &str, log: &mut FaultLog) {
    if let Err(e) = Fault::Heal.apply(faults, proxy).await {
        tracing::warn!(%proxy, error = %e, "proxy not healed");
        log.errors += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_client_meets_every_fault() {
        let faults = rotation().len();
        for clients in 1..=5 {
            let mut met = HashSet::new();
            for k in 0..faults * clients {
                let (target, fault) = step(k, clients);
                assert!(target < clients);
                met.insert((target, kind(&fault)));
            }
            assert_eq!(met.len(), faults * clients, "{clients} clients");
        }
    }
}

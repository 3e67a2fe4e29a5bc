//! Running cases: plan, execute in parallel with a bounded time per case, and emit events
//! with verdicts in a stable order. Nothing here prints.

mod context;
pub mod events;
mod inbox;
pub mod interp;
pub mod link;
pub mod liveness;
pub mod matcher;
pub mod plan;
pub mod prefix;
pub mod qos_cap;
pub mod setup;
mod steps;
pub mod trace;
pub mod verdict;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use reference_broker::client::TransportOptions;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

pub use crate::run_id::new_run_id;
pub use events::RunEvent;
pub use plan::{plan, PlannedRun, Selection};
pub use setup::{prepare, Prepared, RunOptions};
pub use verdict::{CaseResult, ClientTrace, Failure, Verdict};

use crate::suite::Deviation;
use crate::sut::{CaseBroker, RestartSupport};
pub use interp::Outcome;
use interp::{CaseEnv, Interpreter};
use prefix::Prefixer;

/// How to execute a plan.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Cases at once.
    pub jobs: usize,
    /// Time budget of one case execution.
    pub case_timeout: Duration,
    /// Stop starting cases after the first failure.
    pub fail_fast: bool,
    /// Executions per case (to expose flaky cases).
    pub repeat: u32,
    /// Identifies this run in prefixes.
    pub run_id: String,
    /// Broker URL.
    pub url: String,
    /// Broker URL without credentials.
    pub display_url: String,
    /// Target credentials for clients that set none.
    pub credentials: Option<(String, String)>,
    /// Transport options.
    pub transport: TransportOptions,
    /// Puts proxies in front of the broker for cases with fault steps (none: those fail).
    pub faults: Option<link::SharedInjector>,
    /// Whether cases may restart the broker (none: `restart_broker` cases are skipped).
    pub restart: Option<RestartSupport>,
    /// First topic levels of every case's topics (a profile's ACL root; none: `mqttc`).
    pub topic_root: Option<String>,
}

/// The reason a case that restarts the broker cannot run on this target.
pub const CANNOT_RESTART: &str = "target cannot restart";

async fn attempt(run: &PlannedRun, cfg: &RunConfig, execution: usize) -> Result<(), Outcome> {
    // A case that restarts the broker gets a broker of its own, so the cases beside it are
    // not disturbed.
    let broker = match (&cfg.restart, run.case.scenario.restarts_broker()) {
        (Some(support), true) => match CaseBroker::start(support).await {
            Ok(b) => Some(Arc::new(tokio::sync::Mutex::new(b))),
            Err(e) => {
                return Err(Outcome::Fail(Failure::general(format!(
                    "cannot start the broker of this case: {e}"
                ))))
            }
        },
        _ => None,
    };
    let url = match &broker {
        Some(b) => b.lock().await.url(),
        None => cfg.url.clone(),
    };
    let result = attempt_on(run, cfg, execution, url, broker.clone()).await;
    if let Some(b) = broker {
        if let Ok(b) = Arc::try_unwrap(b) {
            b.into_inner().stop().await;
        }
    }
    result
}

async fn attempt_on(
    run: &PlannedRun,
    cfg: &RunConfig,
    execution: usize,
    url: String,
    broker: Option<Arc<tokio::sync::Mutex<CaseBroker>>>,
) -> Result<(), Outcome> {
    let env = CaseEnv {
        faults: cfg.faults.as_ref().map(|f| Arc::clone(&f.0)),
        broker,
        url,
        transport: cfg.transport.clone(),
        credentials: cfg.credentials.clone(),
        version: run.version,
        prefix: Prefixer::rooted(
            cfg.topic_root.as_deref().unwrap_or("mqttc"),
            &cfg.run_id,
            execution,
            &run.case.scenario.name,
        ),
        deadline: Instant::now() + cfg.case_timeout,
    };
    let interp = Interpreter::new(&run.case.scenario, env);
    // The interpreter enforces the deadline per step and keeps the traces; this outer bound
    // only guards against a step that ignores cancellation.
    match tokio::time::timeout(cfg.case_timeout + Duration::from_secs(1), interp.run()).await {
        Ok(result) => result,
        Err(_) => Err(Outcome::Timeout(Failure::general(format!(
            "the case did not finish within {:?}",
            cfg.case_timeout
        )))),
    }
}

/// The verdict of `attempts` executions of one run (all pass, all fail, or flaky).
pub fn aggregate(attempts: Vec<Result<(), Outcome>>, deviation: Option<&Deviation>) -> Verdict {
    let total = u32::try_from(attempts.len()).unwrap_or(u32::MAX);
    let mut passed = 0;
    let mut first_failure = None;
    for a in attempts {
        match a {
            Ok(()) => passed += 1,
            Err(outcome) => {
                first_failure.get_or_insert(outcome);
            }
        }
    }
    let Some(outcome) = first_failure else {
        return Verdict::Pass;
    };
    let (failure, timeout) = match outcome {
        Outcome::Fail(f) => (f, false),
        Outcome::Timeout(f) => (f, true),
    };
    match (deviation, passed) {
        (Some(d), 0) => Verdict::Deviation {
            deviation: d.clone(),
            failure,
        },
        (_, 0) if timeout => Verdict::Timeout { failure },
        (_, 0) => Verdict::Fail { failure },
        _ => Verdict::Flaky {
            passed,
            failed: total - passed,
            failure,
        },
    }
}

async fn execute_one(run: &PlannedRun, cfg: &RunConfig) -> (Verdict, u32) {
    if let Some(reason) = &run.skip {
        return (
            Verdict::Skipped {
                reason: reason.clone(),
            },
            0,
        );
    }
    if cfg.restart.is_none() && run.case.scenario.restarts_broker() {
        return (
            Verdict::Skipped {
                reason: CANNOT_RESTART.to_string(),
            },
            0,
        );
    }
    let repeat = cfg.repeat.max(1);
    let mut attempts = Vec::new();
    for r in 0..repeat {
        let execution = run.index * repeat as usize + r as usize;
        attempts.push(attempt(run, cfg, execution).await);
    }
    (aggregate(attempts, run.deviation.as_ref()), repeat)
}

/// The reason of the runs that did not start because the broker had gone away.
const BROKER_GONE: &str = "the broker went away";
/// The reason of the runs that failed while the broker went away.
const BROKER_GONE_DURING: &str = "the broker went away during this case";

/// When `verdict` carries a failure and the broker no longer accepts connections, the run is
/// cut short: `Some` (with the one [`RunEvent::Incomplete`] for the case that found it first).
/// A failure seen while the broker is gone is not evidence against it: it becomes "not run".
async fn broker_loss(
    verdict: &Verdict,
    run: &PlannedRun,
    cfg: &RunConfig,
    gone: &OnceLock<String>,
) -> Option<Option<RunEvent>> {
    verdict.failure()?;
    if gone.get().is_some() {
        return Some(None);
    }
    let why = liveness::gone(&cfg.url).await?;
    let reason = format!(
        "the broker {} went away during {} [{}] ({why}); the cases after it were not run",
        cfg.display_url, run.case.scenario.name, run.version
    );
    let first = gone.set(reason.clone()).is_ok();
    Some(first.then_some(RunEvent::Incomplete { reason }))
}

/// Execute `runs` with at most `cfg.jobs` at once. Events go to `on_event` as they happen;
/// the returned results (also in the final [`RunEvent::Finished`]) are in plan order.
pub async fn execute(
    runs: Vec<PlannedRun>,
    cfg: RunConfig,
    mut on_event: impl FnMut(&RunEvent),
) -> Vec<CaseResult> {
    let started = Instant::now();
    on_event(&RunEvent::Started {
        total: runs.len(),
        target: cfg.display_url.clone(),
    });
    let cfg = Arc::new(cfg);
    let permits = Arc::new(Semaphore::new(cfg.jobs.max(1)));
    let stop = Arc::new(AtomicBool::new(false));
    // Set once, by the first case that finds the broker gone; later cases are not run.
    let gone = Arc::new(OnceLock::<String>::new());
    let (tx, mut rx) = mpsc::unbounded_channel::<RunEvent>();
    let total = runs.len();
    // Longest first (stable): the wall time is then close to the longest case, not to the
    // longest case plus whatever ran before it.
    let mut runs = runs;
    runs.sort_by_key(|r| std::cmp::Reverse(plan::estimated_duration(&r.case, r.version)));
    // The dispatcher takes a permit before it starts a case, so cases start in this order and
    // a --fail-fast stop is seen by every case that has not started yet.
    tokio::spawn(async move {
        for run in runs {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (cfg, stop, gone, tx) = (cfg.clone(), stop.clone(), gone.clone(), tx.clone());
            tokio::spawn(async move {
                let begin = SystemTime::now();
                let clock = Instant::now();
                let (verdict, attempts) = if stop.load(Ordering::SeqCst) {
                    (
                        Verdict::not_run("--fail-fast stopped the run after a failure"),
                        0,
                    )
                } else if gone.get().is_some() {
                    (Verdict::not_run(BROKER_GONE), 0)
                } else {
                    let _ = tx.send(RunEvent::CaseStarted {
                        index: run.index,
                        case: run.case.scenario.name.clone(),
                        version: run.version,
                    });
                    let (verdict, attempts) = execute_one(&run, &cfg).await;
                    match broker_loss(&verdict, &run, &cfg, &gone).await {
                        Some(incomplete) => {
                            if let Some(event) = incomplete {
                                let _ = tx.send(event);
                            }
                            (Verdict::not_run(BROKER_GONE_DURING), attempts)
                        }
                        None => (verdict, attempts),
                    }
                };
                if cfg.fail_fast && verdict.is_failure() {
                    stop.store(true, Ordering::SeqCst);
                }
                // The next case may start only once the stop flag is set.
                drop(permit);
                let result = CaseResult {
                    index: run.index,
                    suite: run.suite.clone(),
                    feature: run.case.feature.clone(),
                    case: run.case.scenario.name.clone(),
                    version: run.version,
                    file: run.case.file.clone(),
                    statements: run.case.scenario.statements(run.version).to_vec(),
                    tags: run.case.scenario.tags.clone(),
                    verdict,
                    started: begin,
                    duration: clock.elapsed(),
                    attempts,
                };
                let _ = tx.send(RunEvent::CaseFinished(Box::new(result)));
            });
        }
    });
    let mut results = Vec::with_capacity(total);
    while let Some(event) = rx.recv().await {
        on_event(&event);
        if let RunEvent::CaseFinished(result) = event {
            results.push(*result);
        }
    }
    results.sort_by_key(|r| r.index);
    on_event(&RunEvent::Finished {
        results: results.clone(),
        elapsed: started.elapsed(),
    });
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::result_large_err)]
    fn fail() -> Result<(), Outcome> {
        Err(Outcome::Fail(Failure::general("no")))
    }

    #[test]
    fn repetitions_aggregate_into_pass_fail_flaky_or_deviation() {
        assert!(matches!(
            aggregate(vec![Ok(()), Ok(())], None),
            Verdict::Pass
        ));
        assert!(matches!(
            aggregate(vec![fail(), fail()], None),
            Verdict::Fail { .. }
        ));
        assert!(matches!(
            aggregate(vec![Ok(()), fail(), Ok(())], None),
            Verdict::Flaky {
                passed: 2,
                failed: 1,
                ..
            }
        ));
        let timeout = Err(Outcome::Timeout(Failure::general("slow")));
        assert!(matches!(
            aggregate(vec![timeout], None),
            Verdict::Timeout { .. }
        ));
        let d = Deviation {
            case: "c".into(),
            version: None,
            statement: "MQTT-1".into(),
            reason: "r".into(),
        };
        assert!(matches!(
            aggregate(vec![fail()], Some(&d)),
            Verdict::Deviation { .. }
        ));
        // A documented case that sometimes passes is flaky, not a deviation.
        assert!(matches!(
            aggregate(vec![fail(), Ok(())], Some(&d)),
            Verdict::Flaky { .. }
        ));
    }
}

//! Running cases: plan, execute in parallel with a bounded time per case, and emit events
//! with verdicts in a stable order. Nothing here prints.

pub mod cleanup;
mod context;
pub mod events;
mod inbox;
pub mod interp;
pub mod limits;
pub mod link;
pub mod liveness;
pub mod matcher;
pub mod needs;
pub mod plan;
pub mod prefix;
pub mod qos_cap;
mod sessions;
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
pub use verdict::{CaseResult, ClientTrace, Failure, Verdict, Warning};

use crate::suite::Deviation;
use crate::sut::{CaseBroker, RestartSupport};
pub use interp::{Attempt, Outcome};
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

impl RunConfig {
    /// A config for `url` that asks for nothing optional: one execution per case, no fail-fast,
    /// no credentials, the default transport, no fault proxies, no restarts, the default topic
    /// root, a fresh run id. Callers (the run's setup, the selftest, tests) change what they
    /// need with struct update syntax instead of spelling out every field again.
    pub fn new(url: &str, jobs: usize, case_timeout: Duration) -> RunConfig {
        RunConfig {
            jobs,
            case_timeout,
            fail_fast: false,
            repeat: 1,
            run_id: new_run_id(),
            url: url.to_string(),
            display_url: crate::redact::redact_url(url),
            credentials: None,
            transport: TransportOptions::default(),
            faults: None,
            restart: None,
            topic_root: None,
        }
    }
}

/// The reason a case that restarts the broker cannot run on this target.
pub const CANNOT_RESTART: &str = "target cannot restart";

async fn attempt(run: &PlannedRun, cfg: &RunConfig, execution: usize) -> Attempt {
    // A case that restarts the broker gets a broker of its own, so the cases beside it are
    // not disturbed.
    let broker = match (&cfg.restart, run.case.scenario.restarts_broker()) {
        (Some(support), true) => match CaseBroker::start(support).await {
            Ok(b) => Some(Arc::new(tokio::sync::Mutex::new(b))),
            Err(e) => {
                return Attempt {
                    result: Err(Outcome::Fail(Failure::general(format!(
                        "cannot start the broker of this case: {e}"
                    )))),
                    warnings: Vec::new(),
                    notes: Vec::new(),
                }
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

/// The time budget of one execution of `run`: the run's, or the case's own when larger.
pub fn case_budget(run: &PlannedRun, cfg: &RunConfig) -> Duration {
    run.case
        .scenario
        .timeout
        .map_or(cfg.case_timeout, |t| t.0.max(cfg.case_timeout))
}

async fn attempt_on(
    run: &PlannedRun,
    cfg: &RunConfig,
    execution: usize,
    url: String,
    broker: Option<Arc<tokio::sync::Mutex<CaseBroker>>>,
) -> Attempt {
    let budget = case_budget(run, cfg);
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
        deadline: Instant::now() + budget,
    };
    let own_broker = env.broker.is_some();
    let cleanup = cleanup::Target {
        url: &env.url,
        transport: &cfg.transport,
        credentials: cfg.credentials.as_ref(),
        version: run.version,
        client_id: env.prefix.client_id("retained-cleanup", None),
    };
    let interp = Interpreter::new(&run.case.scenario, env.clone());
    let retained = interp.retained_topics();
    // The interpreter enforces the deadline per step and keeps the traces; this outer bound
    // only guards against a step that ignores cancellation.
    let mut attempt =
        match tokio::time::timeout(budget + Duration::from_secs(1), interp.execute()).await {
            Ok(attempt) => attempt,
            Err(_) => Attempt {
                result: Err(Outcome::Timeout(Failure::general(format!(
                    "the case did not finish within {budget:?}"
                )))),
                warnings: Vec::new(),
                notes: Vec::new(),
            },
        };
    // Whatever the outcome, the retained messages the case left are removed (a broker of
    // the case's own is discarded with them). A failed cleanup is a note: the verdict stands.
    if !own_broker {
        if let Err(note) = cleanup::clear(cleanup, &retained.topics()).await {
            attempt.notes.push(note);
        }
    }
    attempt
}

/// What the attempts of one run conclude: the verdict, the warnings of the attempt reported,
/// and the documented deviation that no longer happens (the run passed).
#[derive(Debug)]
pub struct Aggregate {
    /// The verdict.
    pub verdict: Verdict,
    /// Warnings of the failing attempt reported, else of the first attempt with warnings.
    pub warnings: Vec<Warning>,
    /// The deviation of a run that passed: stale.
    pub stale: Option<Deviation>,
    /// The notes of every attempt (a retained message that could not be cleared).
    pub notes: Vec<String>,
}

/// The verdict of `attempts` executions of one run (all pass, all fail, or flaky). A
/// documented deviation turns a failure into [`Verdict::Deviation`] only when it matches how
/// the case failed (step and kind); otherwise the failure says why it is not excused.
pub fn aggregate(attempts: Vec<Attempt>, deviation: Option<&Deviation>) -> Aggregate {
    let total = u32::try_from(attempts.len()).unwrap_or(u32::MAX);
    let mut passed = 0;
    let mut first_failure = None;
    let mut warnings = Vec::new();
    for a in attempts {
        match a.result {
            Ok(()) => {
                passed += 1;
                if warnings.is_empty() && first_failure.is_none() {
                    warnings = a.warnings;
                }
            }
            // A harness error in any attempt makes the whole run an error; an allowed
            // refusal in any attempt leaves nothing to judge.
            Err(outcome @ (Outcome::Error(_) | Outcome::NotApplicable(_))) => {
                warnings = a.warnings;
                first_failure = Some(outcome);
            }
            Err(outcome) => {
                if first_failure.is_none() {
                    warnings = a.warnings;
                    first_failure = Some(outcome);
                }
            }
        }
    }
    let Some(outcome) = first_failure else {
        let verdict = if warnings.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Warning
        };
        return Aggregate {
            verdict,
            warnings,
            stale: deviation.cloned(),
            notes: Vec::new(),
        };
    };
    let (mut failure, timeout) = match outcome {
        Outcome::Fail(f) => (f, false),
        Outcome::Timeout(f) => (f, true),
        Outcome::NotApplicable(reason) => {
            return Aggregate {
                verdict: Verdict::Skipped { reason },
                warnings: Vec::new(),
                stale: None,
                notes: Vec::new(),
            }
        }
        // The harness failed: no verdict on the broker (not a deviation, not flaky).
        Outcome::Error(failure) => {
            return Aggregate {
                verdict: Verdict::Error { failure },
                warnings,
                stale: None,
                notes: Vec::new(),
            }
        }
    };
    let excused = match deviation {
        Some(d) => {
            let kind = if timeout {
                Some(crate::scenario::Observation::Timeout)
            } else {
                failure.kind
            };
            match d.excuses(failure.step, failure.statement.as_deref(), kind) {
                Ok(()) => Some(d),
                Err(why) => {
                    failure.not_excused = Some(why);
                    None
                }
            }
        }
        None => None,
    };
    let verdict = match (excused, passed) {
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
    };
    Aggregate {
        verdict,
        warnings,
        stale: None,
        notes: Vec::new(),
    }
}

/// A run that did not execute.
fn skipped(reason: String) -> (Aggregate, u32) {
    let verdict = Verdict::Skipped { reason };
    (
        Aggregate {
            verdict,
            warnings: Vec::new(),
            stale: None,
            notes: Vec::new(),
        },
        0,
    )
}

async fn execute_one(run: &PlannedRun, cfg: &RunConfig) -> (Aggregate, u32) {
    if let Some(reason) = &run.skip {
        return skipped(reason.clone());
    }
    if cfg.restart.is_none() && run.case.scenario.restarts_broker() {
        return skipped(CANNOT_RESTART.to_string());
    }
    let repeat = cfg.repeat.max(1);
    let mut attempts = Vec::new();
    for r in 0..repeat {
        let execution = run.index * repeat as usize + r as usize;
        attempts.push(attempt(run, cfg, execution).await);
    }
    let mut notes: Vec<String> = Vec::new();
    for note in attempts.iter().flat_map(|a| a.notes.iter()) {
        if !notes.contains(note) {
            notes.push(note.clone());
        }
    }
    let mut outcome = aggregate(attempts, run.deviation.as_ref());
    outcome.notes = notes;
    (outcome, repeat)
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
    if matches!(verdict, Verdict::Error { .. }) {
        return None;
    }
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

/// The result of `run` with `verdict`.
fn result_of(
    run: &PlannedRun,
    verdict: Verdict,
    started: SystemTime,
    duration: Duration,
    attempts: u32,
) -> CaseResult {
    CaseResult {
        index: run.index,
        suite: run.suite.clone(),
        feature: run.case.feature.clone(),
        case: run.case.scenario.name.clone(),
        version: run.version,
        file: run.case.file.clone(),
        statements: run.case.scenario.statements(run.version).to_vec(),
        tags: run.case.scenario.tags.clone(),
        verdict,
        started,
        duration,
        attempts,
        warnings: Vec::new(),
        stale_deviation: None,
        notes: Vec::new(),
    }
}

/// The result of a planned run that did not run because the whole run stopped (`why`, for
/// example "interrupted by Ctrl-C"), so reports list it as not run instead of leaving it out.
pub fn not_run_result(run: &PlannedRun, why: &str) -> CaseResult {
    result_of(
        run,
        Verdict::not_run(why),
        SystemTime::now(),
        Duration::ZERO,
        0,
    )
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
    // Set once, by the first harness error: the run is then incomplete (exit 2).
    let harness_error = Arc::new(OnceLock::<()>::new());
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
            let harness_error = harness_error.clone();
            tokio::spawn(async move {
                let begin = SystemTime::now();
                let clock = Instant::now();
                let not_run = |why: &str| Aggregate {
                    verdict: Verdict::not_run(why),
                    warnings: Vec::new(),
                    stale: None,
                    notes: Vec::new(),
                };
                let (outcome, attempts) = if stop.load(Ordering::SeqCst) {
                    (not_run("--fail-fast stopped the run after a failure"), 0)
                } else if gone.get().is_some() {
                    (not_run(BROKER_GONE), 0)
                } else {
                    let _ = tx.send(RunEvent::CaseStarted {
                        index: run.index,
                        case: run.case.scenario.name.clone(),
                        version: run.version,
                    });
                    let (outcome, attempts) = execute_one(&run, &cfg).await;
                    match broker_loss(&outcome.verdict, &run, &cfg, &gone).await {
                        Some(incomplete) => {
                            if let Some(event) = incomplete {
                                let _ = tx.send(event);
                            }
                            (not_run(BROKER_GONE_DURING), attempts)
                        }
                        None => (outcome, attempts),
                    }
                };
                let Aggregate {
                    verdict,
                    warnings,
                    stale,
                    notes,
                } = outcome;
                if let (Verdict::Error { failure }, true) =
                    (&verdict, harness_error.set(()).is_ok())
                {
                    let _ = tx.send(RunEvent::Incomplete {
                        reason: format!(
                            "harness error in {} [{}]: {}; the cases with this verdict say \
                             nothing about the broker",
                            run.case.scenario.name, run.version, failure.message
                        ),
                    });
                }
                if cfg.fail_fast && verdict.is_failure() {
                    stop.store(true, Ordering::SeqCst);
                }
                // The next case may start only once the stop flag is set.
                drop(permit);
                let mut result = result_of(&run, verdict, begin, clock.elapsed(), attempts);
                result.warnings = warnings;
                result.stale_deviation = stale;
                result.notes = notes;
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
mod tests;

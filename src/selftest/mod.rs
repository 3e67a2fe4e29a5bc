//! Selftest: the suites run in-process against every broker variant (an allowed choice: every
//! case must pass) and every deliberate defect (a broken MUST: some case must fail), which
//! measures the suites' own sharpness (the mutation score).
//!
//! Speed: subjects run several at once, each with its cases in parallel; a defect first runs
//! only the cases that cite a statement it breaks and runs the rest only when those miss it.
//! A case that fails on the baseline (the default broker) proves nothing and is left out of
//! every subject; a failure counts only when the case fails again when run alone (timing
//! cases on a loaded machine): once more for a defect, twice more for a variant or the
//! baseline, and a variant's failures once more in a run of their own after all subjects.

pub mod report;
pub mod subject;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reference_broker::client::TransportOptions;

use crate::run::link::SharedInjector;
use crate::run::{self, PlannedRun, RunConfig, Selection};
use crate::scenario::Version;
use crate::suite::Suite;
use crate::sut::{self, RestartSupport};
pub use subject::{Kind, Subject};

/// How to run a selftest.
#[derive(Debug, Clone)]
pub struct Options {
    /// Subjects (brokers) at once.
    pub subjects_at_once: usize,
    /// Cases at once within one subject.
    pub jobs: usize,
    /// Time budget of one case execution.
    pub case_timeout: Duration,
    /// Only subjects whose name contains this (the baseline always runs).
    pub filter: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Options {
            subjects_at_once: 2 * cores,
            jobs: 6,
            case_timeout: Duration::from_secs(10),
            filter: None,
        }
    }
}

/// Why a selftest could not run.
#[derive(Debug, thiserror::Error)]
pub enum SelftestError {
    /// A named variant's TOML is invalid.
    #[error(transparent)]
    Variant(#[from] subject::VariantError),
    /// A broker did not start or answer.
    #[error("{subject}: {source}")]
    Target {
        /// The subject.
        subject: String,
        /// Cause.
        source: sut::TargetError,
    },
}

/// The outcome of one subject.
#[derive(Debug, Clone)]
pub struct SubjectResult {
    /// The subject.
    pub subject: Subject,
    /// Failing runs, as `case [version]`, sorted.
    pub failing: Vec<String>,
    /// Why each failing run failed: the step and the message.
    pub why: std::collections::BTreeMap<String, String>,
    /// Runs executed (skipped ones not counted).
    pub executed: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// A case under a version: `case [version]`.
fn label(case: &str, version: Version) -> String {
    format!("{case} [{}]", version.label())
}

/// The whole selftest: the baseline first, then every other subject.
pub async fn run(
    suites: &[Suite],
    opts: &Options,
) -> Result<(Vec<SubjectResult>, Duration), SelftestError> {
    let started = Instant::now();
    let mut subjects = subject::all()?.into_iter();
    let Some(baseline) = subjects.next() else {
        return Ok((Vec::new(), started.elapsed()));
    };
    let base = run_subject(suites, baseline, opts, &BTreeSet::new(), None).await?;
    let excluded: BTreeSet<String> = base.failing.iter().cloned().collect();
    let wanted: Vec<Subject> = subjects
        .filter(|s| opts.filter.as_deref().is_none_or(|f| s.name.contains(f)))
        .collect();
    let excluded = Arc::new(excluded);
    let mut results: Vec<SubjectResult> = futures::stream::iter(wanted)
        .map(|s| {
            let excluded = Arc::clone(&excluded);
            async move { run_subject(suites, s, opts, &excluded, None).await }
        })
        .buffer_unordered(opts.subjects_at_once.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    // A variant's failures get one more run of their own once every other subject is done, so
    // that a timing case is not judged while the machine runs several brokers at once.
    for r in results.iter_mut() {
        if matches!(r.subject.kind, Kind::Defect { .. }) || r.failing.is_empty() {
            continue;
        }
        let only: BTreeSet<String> = r.failing.iter().cloned().collect();
        let again = run_subject(suites, r.subject.clone(), opts, &excluded, Some(&only)).await?;
        r.failing.retain(|l| again.failing.contains(l));
        r.why.retain(|l, _| again.failing.contains(l));
    }
    results.sort_by(|a, b| a.subject.name.cmp(&b.subject.name));
    results.insert(0, base);
    Ok((results, started.elapsed()))
}

/// Whether `run` cites a statement that `subject` (a defect) breaks.
fn observes(run: &PlannedRun, subject: &Subject) -> bool {
    let Kind::Defect { statements, .. } = &subject.kind else {
        return true;
    };
    let broken = match run.version {
        Version::V311 => &statements.0,
        Version::V5 => &statements.1,
    };
    run.case
        .scenario
        .statements(run.version)
        .iter()
        .any(|s| broken.contains(s))
}

async fn run_subject(
    suites: &[Suite],
    subject: Subject,
    opts: &Options,
    excluded: &BTreeSet<String>,
    only: Option<&BTreeSet<String>>,
) -> Result<SubjectResult, SelftestError> {
    let started = Instant::now();
    let fail = |source| SelftestError::Target {
        subject: subject.name.clone(),
        source,
    };
    let target = sut::start_reference(subject.config.clone())
        .await
        .map_err(fail)?;
    let transport = TransportOptions {
        connect_timeout: Some(Duration::from_secs(5)),
        ..TransportOptions::default()
    };
    let run_id = crate::run_id::new_run_id();
    let (caps, _) = match sut::probe(&target, &transport, &run_id).await {
        Ok(c) => c,
        Err(e) => {
            target.shutdown().await;
            return Err(fail(e));
        }
    };
    let mut seen = BTreeSet::new();
    let plan: Vec<PlannedRun> = run::plan(suites, &Selection::default(), Some(&caps), "reference")
        .into_iter()
        .filter(|r| r.skip.is_none())
        .filter(|r| {
            let l = label(&r.case.scenario.name, r.version);
            let wanted = only.is_none_or(|o| o.contains(&l));
            wanted && !excluded.contains(&l) && seen.insert(l)
        })
        .collect();
    let all = plan.clone();
    let (first, rest): (Vec<_>, Vec<_>) = plan.into_iter().partition(|r| observes(r, &subject));
    let cfg = RunConfig {
        run_id,
        display_url: format!("{} ({})", target.display_url(), subject.name),
        transport,
        faults: Some(SharedInjector::embedded()),
        restart: Some(RestartSupport {
            config: Some(Box::new(subject.config.clone())),
            ..RestartSupport::persistent()
        }),
        ..RunConfig::new(&target.url, opts.jobs, opts.case_timeout)
    };
    let mut failing = BTreeSet::new();
    let mut why = std::collections::BTreeMap::new();
    let mut executed = 0;
    for batch in [first, rest] {
        if batch.is_empty() || (!failing.is_empty() && matches!(subject.kind, Kind::Defect { .. }))
        {
            continue;
        }
        let results = run::execute(batch, cfg.clone(), |_| {}).await;
        for r in results {
            if !matches!(r.verdict, run::Verdict::Skipped { .. }) {
                executed += 1;
            }
            if r.verdict.is_failure() {
                let l = label(&r.case, r.version);
                if let Some(f) = r.verdict.failure() {
                    why.insert(l.clone(), format!("step {}: {}", f.step_text, f.message));
                }
                failing.insert(l);
            }
        }
    }
    // Timing cases can fail on a loaded machine: a failure counts only if the case fails again
    // on every confirmation run, one case at a time (for a variant: a false alarm, so it gets
    // more chances to pass; for a defect: a real catch).
    let confirmations = match subject.kind {
        Kind::Defect { .. } => 1,
        Kind::Baseline | Kind::Variant { .. } => 2,
    };
    let one_at_a_time = RunConfig {
        jobs: 1,
        ..cfg.clone()
    };
    for _ in 0..confirmations {
        if failing.is_empty() {
            break;
        }
        let again: Vec<PlannedRun> = all
            .iter()
            .filter(|r| failing.contains(&label(&r.case.scenario.name, r.version)))
            .cloned()
            .collect();
        let confirmed: BTreeSet<String> = run::execute(again, one_at_a_time.clone(), |_| {})
            .await
            .into_iter()
            .filter(|r| r.verdict.is_failure())
            .map(|r| label(&r.case, r.version))
            .collect();
        failing.retain(|l| confirmed.contains(l));
        why.retain(|l, _| confirmed.contains(l));
    }
    target.shutdown().await;
    Ok(SubjectResult {
        subject,
        failing: failing.into_iter().collect(),
        why,
        executed,
        elapsed: started.elapsed(),
    })
}

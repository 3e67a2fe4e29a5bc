//! The JSON report (`--json`): every result with its verdict and evidence, for machines.

use std::io::Write;

use serde::Serialize;

use super::{ReportError, Reporter};
use crate::run::{CaseResult, RunEvent};

/// Counts per verdict.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Passed.
    pub passed: usize,
    /// Passed every MUST, with a SHOULD-level warning (a failure only under `--strict`).
    pub warnings: usize,
    /// Failed (including timeouts and flaky cases).
    pub failed: usize,
    /// Documented deviations.
    pub deviations: usize,
    /// Skipped.
    pub skipped: usize,
    /// Documented deviations whose case passed: out of date.
    pub stale_deviations: usize,
    /// Harness errors (not counted against the broker).
    pub errors: usize,
}

impl Counts {
    /// Count `results`.
    pub fn of<'a>(results: impl IntoIterator<Item = &'a CaseResult>) -> Counts {
        let mut c = Counts::default();
        for r in results {
            if r.stale_deviation.is_some() {
                c.stale_deviations += 1;
            }
            match r.verdict {
                crate::run::Verdict::Pass => c.passed += 1,
                crate::run::Verdict::Warning => c.warnings += 1,
                crate::run::Verdict::Skipped { .. } => c.skipped += 1,
                crate::run::Verdict::Deviation { .. } => c.deviations += 1,
                crate::run::Verdict::Error { .. } => c.errors += 1,
                _ => c.failed += 1,
            }
        }
        c
    }
}

#[derive(Serialize)]
struct Document<'a> {
    target: &'a str,
    elapsed_ms: f64,
    summary: Counts,
    /// Why the run is incomplete (broker gone, Ctrl-C); absent for a complete run.
    #[serde(skip_serializing_if = "Option::is_none")]
    incomplete: Option<&'a str>,
    results: &'a [CaseResult],
}

/// Writes one JSON document when the run finishes.
pub struct JsonReporter<W: Write> {
    out: W,
    target: String,
    incomplete: Option<String>,
}

impl<W: Write> JsonReporter<W> {
    /// A reporter writing to `out`.
    pub fn new(out: W) -> Self {
        JsonReporter {
            out,
            target: String::new(),
            incomplete: None,
        }
    }
}

impl<W: Write> Reporter for JsonReporter<W> {
    fn report(&mut self, event: &RunEvent) -> Result<(), ReportError> {
        match event {
            RunEvent::Started { target, .. } => self.target = target.clone(),
            RunEvent::Incomplete { reason } => self.incomplete = Some(reason.clone()),
            RunEvent::Finished { results, elapsed } => {
                let doc = Document {
                    target: &self.target,
                    elapsed_ms: elapsed.as_secs_f64() * 1000.0,
                    summary: Counts::of(results),
                    incomplete: self.incomplete.as_deref(),
                    results,
                };
                serde_json::to_writer_pretty(&mut self.out, &doc)?;
                writeln!(self.out).map_err(|source| ReportError::Io {
                    path: "<stdout>".into(),
                    source,
                })?;
            }
            _ => {}
        }
        Ok(())
    }
}

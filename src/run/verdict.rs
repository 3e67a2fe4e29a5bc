//! Verdicts and results: what one case execution concluded, with the evidence for a failure.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::scenario::{Observation, Version};
use crate::suite::Deviation;

/// The packet trace of one client, rendered line by line.
#[derive(Debug, Clone, Serialize)]
pub struct ClientTrace {
    /// Client name in the case.
    pub client: String,
    /// One line per event, credentials redacted.
    pub lines: Vec<String>,
}

/// Why a case failed.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// 1-based index of the failed step (None: before any step).
    pub step: Option<usize>,
    /// The failed step, summarised.
    pub step_text: String,
    /// What went wrong.
    pub message: String,
    /// What the case expected.
    pub expected: Option<String>,
    /// What the broker did.
    pub received: Option<String>,
    /// Every client's trace.
    pub traces: Vec<ClientTrace>,
    /// How the step failed (None: outside any step, never excused by a deviation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Observation>,
    /// The statement the failed step says it checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// Why the documented deviation of this case does not excuse this failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_excused: Option<String>,
}

/// A SHOULD-level step that did not hold: the broker did something the specification allows,
/// but not what it recommends. Reported apart; fails the run only under `--strict`.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    /// 1-based index of the step.
    pub step: usize,
    /// The step, summarised.
    pub step_text: String,
    /// The statement the step checks (its own, else none).
    pub statement: Option<String>,
    /// How the step differed.
    pub kind: Observation,
    /// What differed.
    pub message: String,
    /// What the case recommends.
    pub expected: Option<String>,
    /// What the broker did.
    pub received: Option<String>,
}

impl Warning {
    /// One line: `step 3 (expect_close): message`.
    pub fn headline(&self) -> String {
        format!("step {} ({}): {}", self.step, self.step_text, self.message)
    }
}

impl Failure {
    /// A failure outside any step.
    pub fn general(message: impl Into<String>) -> Failure {
        Failure {
            step: None,
            step_text: String::new(),
            message: message.into(),
            expected: None,
            received: None,
            traces: Vec::new(),
            kind: None,
            statement: None,
            not_excused: None,
        }
    }

    /// One line: `step 3 (expect): message`.
    pub fn headline(&self) -> String {
        match self.step {
            Some(n) => format!("step {n} ({}): {}", self.step_text, self.message),
            None => self.message.clone(),
        }
    }
}

/// The verdict of a case under one version.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every step held.
    Pass,
    /// Every MUST held, but a SHOULD-level step did not (the warnings are in the result).
    Warning,
    /// A step did not hold.
    Fail {
        /// Evidence.
        failure: Failure,
    },
    /// The case did not finish within its time budget.
    Timeout {
        /// Evidence (the step running when time ran out).
        failure: Failure,
    },
    /// Not run.
    Skipped {
        /// Why.
        reason: String,
    },
    /// Failed as documented for this broker.
    Deviation {
        /// The documented deviation.
        deviation: Deviation,
        /// Evidence.
        failure: Failure,
    },
    /// The harness could not judge the case (its fault proxy failed, ...): a problem on our
    /// side, never counted against the broker.
    Error {
        /// Evidence (what failed in the harness).
        failure: Failure,
    },
    /// Passed and failed across repetitions.
    Flaky {
        /// Passing attempts.
        passed: u32,
        /// Failing attempts.
        failed: u32,
        /// Evidence of one failing attempt.
        failure: Failure,
    },
}

/// How the reason of a run that never started (or was cut short by the run stopping) begins:
/// `--fail-fast`, a broker that went away, Ctrl-C. Reports count these apart from skips.
pub const NOT_RUN: &str = "not run: ";

impl Verdict {
    /// A run that did not run because the run as a whole stopped; `why` says what stopped it.
    pub fn not_run(why: &str) -> Verdict {
        Verdict::Skipped {
            reason: format!("{NOT_RUN}{why}"),
        }
    }

    /// True for [`Verdict::not_run`] verdicts.
    pub fn is_not_run(&self) -> bool {
        matches!(self, Verdict::Skipped { reason } if reason.starts_with(NOT_RUN))
    }

    /// True when this verdict makes the run fail.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Verdict::Fail { .. } | Verdict::Timeout { .. } | Verdict::Flaky { .. }
        )
    }

    /// Short label for tables.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warning => "WARN",
            Verdict::Fail { .. } => "FAIL",
            Verdict::Timeout { .. } => "TIMEOUT",
            Verdict::Skipped { .. } => "skipped",
            Verdict::Deviation { .. } => "deviation",
            Verdict::Flaky { .. } => "FLAKY",
            Verdict::Error { .. } => "ERROR",
        }
    }

    /// The failure evidence, if any.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Verdict::Fail { failure }
            | Verdict::Timeout { failure }
            | Verdict::Deviation { failure, .. }
            | Verdict::Flaky { failure, .. }
            | Verdict::Error { failure } => Some(failure),
            _ => None,
        }
    }
}

/// The result of one planned run (a case under one version in one suite).
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Position in the plan (results are reported in this order).
    pub index: usize,
    /// Suite name.
    pub suite: String,
    /// Feature (first directory under `scenarios/`).
    pub feature: String,
    /// Case name.
    pub case: String,
    /// Protocol version.
    pub version: Version,
    /// Scenario file.
    pub file: PathBuf,
    /// Normative statements checked.
    pub statements: Vec<String>,
    /// Tags of the case (for filters in reports).
    pub tags: Vec<String>,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// When it started.
    #[serde(with = "system_time")]
    pub started: SystemTime,
    /// How long it took (all attempts).
    #[serde(with = "duration_ms", rename = "duration_ms")]
    pub duration: Duration,
    /// Attempts made (`--repeat`).
    pub attempts: u32,
    /// SHOULD-level steps that did not hold (of the attempt reported).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// A documented deviation of this case that no longer happens: the case passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_deviation: Option<Deviation>,
    /// What the runner could not do around the case (clear the retained messages it left):
    /// not part of the verdict, but a user of the broker should know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl CaseResult {
    /// Whether this result makes a `--strict` run fail: a failure, or a warning.
    pub fn fails_strict(&self) -> bool {
        self.verdict.is_failure() || matches!(self.verdict, Verdict::Warning)
    }

    /// `case [version]`, unique within a suite.
    pub fn display_name(&self) -> String {
        format!("{} [{}]", self.case, self.version)
    }
}

mod system_time {
    use std::time::{SystemTime, UNIX_EPOCH};

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        s.serialize_u64(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

mod duration_ms {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
}

//! The JSON report read back (`run --json` output, or a run's results turned into it): the
//! data model the HTML report and `compare` render, tolerant of verdict kinds and fields it
//! does not know, so new ones slot in.

use std::path::Path;

use serde::Deserialize;

use super::ReportError;
use crate::run::CaseResult;

/// One run of the suites against one broker.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Document {
    /// The broker, credentials redacted (`mqtt://127.0.0.1:1883 (mosquitto)`).
    #[serde(default)]
    pub target: String,
    /// Wall time of the run.
    #[serde(default)]
    pub elapsed_ms: f64,
    /// Every result, in plan order.
    #[serde(default)]
    pub results: Vec<ResultRow>,
}

/// One case under one version in one suite.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResultRow {
    /// Suite name.
    #[serde(default)]
    pub suite: String,
    /// Feature (first directory under `scenarios/`).
    #[serde(default)]
    pub feature: String,
    /// Case name.
    #[serde(default)]
    pub case: String,
    /// `3.1.1` or `5`.
    #[serde(default)]
    pub version: String,
    /// Scenario file.
    #[serde(default)]
    pub file: String,
    /// Normative statements the case checks.
    #[serde(default)]
    pub statements: Vec<String>,
    /// Tags of the case (when the report carries them).
    #[serde(default)]
    pub tags: Vec<String>,
    /// The verdict kind as written (`pass`, `fail`, `skipped`, `deviation`, ...).
    #[serde(default)]
    pub verdict: String,
    /// Why a case was skipped.
    #[serde(default)]
    pub reason: Option<String>,
    /// A documented deviation.
    #[serde(default)]
    pub deviation: Option<DeviationRow>,
    /// The evidence of a failure.
    #[serde(default)]
    pub failure: Option<FailureRow>,
    /// Duration of all attempts.
    #[serde(default)]
    pub duration_ms: f64,
    /// SHOULD-level steps that did not hold.
    #[serde(default)]
    pub warnings: Vec<WarningRow>,
    /// A documented deviation whose case passed (out of date).
    #[serde(default)]
    pub stale_deviation: Option<DeviationRow>,
}

/// A SHOULD-level step that did not hold.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WarningRow {
    /// 1-based step.
    #[serde(default)]
    pub step: usize,
    /// The step, summarised.
    #[serde(default)]
    pub step_text: String,
    /// The statement the step checks.
    #[serde(default)]
    pub statement: Option<String>,
    /// How it differed.
    #[serde(default)]
    pub kind: String,
    /// What differed.
    #[serde(default)]
    pub message: String,
    /// What the case recommends.
    #[serde(default)]
    pub expected: Option<String>,
    /// What the broker did.
    #[serde(default)]
    pub received: Option<String>,
}

/// A documented deviation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeviationRow {
    /// The statement the broker departs from.
    #[serde(default)]
    pub statement: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// Failure evidence.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FailureRow {
    /// 1-based failed step.
    #[serde(default)]
    pub step: Option<usize>,
    /// The step, summarised.
    #[serde(default)]
    pub step_text: String,
    /// What went wrong.
    #[serde(default)]
    pub message: String,
    /// What the case expected.
    #[serde(default)]
    pub expected: Option<String>,
    /// What the broker did.
    #[serde(default)]
    pub received: Option<String>,
    /// Every client's packet trace.
    #[serde(default)]
    pub traces: Vec<TraceRow>,
}

/// One client's packet trace.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TraceRow {
    /// Client name.
    #[serde(default)]
    pub client: String,
    /// One line per event.
    #[serde(default)]
    pub lines: Vec<String>,
}

impl ResultRow {
    /// `suite::case::vVERSION`, unique within a run (the libtest name).
    pub fn key(&self) -> String {
        format!("{}::{}::v{}", self.suite, self.case, self.version)
    }

    /// The verdict class for grouping: `pass`, `fail`, `deviation`, `skipped`, or the kind
    /// itself for kinds this version does not know (`warn`); timeouts and flaky runs fail.
    pub fn class(&self) -> &str {
        match self.verdict.as_str() {
            "timeout" | "flaky" => "fail",
            other => other,
        }
    }
}

impl Document {
    /// The document of a finished run (what `run --json` writes).
    pub fn of(target: &str, elapsed_ms: f64, results: &[CaseResult]) -> Result<Self, ReportError> {
        let value = serde_json::json!({
            "target": target,
            "elapsed_ms": elapsed_ms,
            "results": results,
        });
        Ok(serde_json::from_value(value)?)
    }

    /// Read a JSON report file.
    pub fn read(path: &Path) -> Result<Self, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| ReportError::Input {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

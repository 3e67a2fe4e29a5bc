//! The selftest's verdict: variant -> falsely failing cases (must be none), defect -> catching
//! cases (must be at least one), the mutation score and the statement coverage of the cases
//! that catch a defect; as JSON or as text.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::{Kind, SubjectResult};
use crate::coverage;
use crate::scenario::LoadedCase;
use crate::suite::Suite;

/// One variant's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct VariantLine {
    /// Variant name.
    pub name: String,
    /// What allows it.
    pub allowed_by: String,
    /// Cases that failed on it (each pinned one allowed behaviour).
    pub failing: Vec<String>,
    /// Why each failed.
    pub why: BTreeMap<String, String>,
    /// Runs executed.
    pub executed: usize,
    /// Seconds.
    pub seconds: f64,
}

/// One defect's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct DefectLine {
    /// Defect name.
    pub name: String,
    /// Broken statements by version.
    pub statements: BTreeMap<&'static str, Vec<String>>,
    /// What the broker does wrong.
    pub what: String,
    /// Interaction of two features.
    pub interaction: bool,
    /// Cases that failed on it.
    pub caught_by: Vec<String>,
    /// Runs executed.
    pub executed: usize,
    /// Seconds.
    pub seconds: f64,
}

/// Counts and details of one kind of subject.
#[derive(Debug, Clone, Serialize)]
pub struct Tally<T> {
    /// Subjects.
    pub total: usize,
    /// Variants passed (all cases pass) or defects caught (some case fails).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passed: Option<usize>,
    /// Defects caught.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caught: Option<usize>,
    /// Per subject.
    pub details: Vec<T>,
}

/// Statements covered by the cases that catch at least one defect, per version.
#[derive(Debug, Clone, Serialize)]
pub struct SharpCoverage {
    /// Statements of the version.
    pub total: usize,
    /// Cited by a case that caught a defect.
    pub covered: usize,
    /// Explained as unobservable.
    pub explained: usize,
    /// Percent of the statements covered or explained.
    pub percent: f64,
}

/// The whole selftest report (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Variants: all must pass.
    pub variants: Tally<VariantLine>,
    /// Defects: all must be caught.
    pub defects: Tally<DefectLine>,
    /// Caught defects / defects.
    pub mutation_score: f64,
    /// Defects in the interaction of two features.
    pub interaction_defects: usize,
    /// Cases failing on the default broker (left out of every subject).
    pub baseline_failures: Vec<String>,
    /// Coverage by cases that catch a defect.
    pub sharp_coverage: BTreeMap<&'static str, SharpCoverage>,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl Summary {
    /// True when every variant passed and every defect was caught, and the baseline passed.
    pub fn ok(&self) -> bool {
        self.variants.passed == Some(self.variants.total)
            && self.defects.caught == Some(self.defects.total)
            && self.baseline_failures.is_empty()
    }
}

/// Summarise the results; `root` holds `suites/spec` and `suites/unobservable.yaml`.
pub fn summarise(
    root: &Path,
    suites: &[Suite],
    results: &[SubjectResult],
    elapsed: Duration,
) -> Result<Summary, coverage::CoverageError> {
    let mut variants = Vec::new();
    let mut defects = Vec::new();
    let mut baseline_failures = Vec::new();
    for r in results {
        let seconds = r.elapsed.as_secs_f64();
        match &r.subject.kind {
            Kind::Baseline => baseline_failures = r.failing.clone(),
            Kind::Variant { allowed_by } => variants.push(VariantLine {
                name: r.subject.name.trim_start_matches("variant:").to_string(),
                allowed_by: allowed_by.clone(),
                failing: r.failing.clone(),
                why: r.why.clone(),
                executed: r.executed,
                seconds,
            }),
            Kind::Defect {
                statements,
                what,
                interaction,
            } => defects.push(DefectLine {
                name: r.subject.name.trim_start_matches("defect:").to_string(),
                statements: BTreeMap::from([
                    ("3.1.1", statements.0.clone()),
                    ("5", statements.1.clone()),
                ]),
                what: what.clone(),
                interaction: *interaction,
                caught_by: r.failing.clone(),
                executed: r.executed,
                seconds,
            }),
        }
    }
    let caught = defects.iter().filter(|d| !d.caught_by.is_empty()).count();
    let sharp: BTreeSet<&str> = defects
        .iter()
        .flat_map(|d| d.caught_by.iter())
        .filter_map(|l| l.rsplit_once(" [").map(|(case, _)| case))
        .collect();
    let mut cases: Vec<LoadedCase> = Vec::new();
    let mut seen = BTreeSet::new();
    for c in suites.iter().flat_map(|s| s.cases.iter()) {
        if sharp.contains(c.scenario.name.as_str()) && seen.insert(c.scenario.name.clone()) {
            cases.push(c.clone());
        }
    }
    let sharp_coverage = coverage::compute(root, &cases)?
        .into_iter()
        .map(|(v, c)| {
            let percent = if c.total == 0 {
                0.0
            } else {
                100.0 * (c.covered + c.explained) as f64 / c.total as f64
            };
            let line = SharpCoverage {
                total: c.total,
                covered: c.covered,
                explained: c.explained,
                percent: (percent * 10.0).round() / 10.0,
            };
            (v, line)
        })
        .collect();
    let score = if defects.is_empty() {
        0.0
    } else {
        caught as f64 / defects.len() as f64
    };
    Ok(Summary {
        variants: Tally {
            total: variants.len(),
            passed: Some(variants.iter().filter(|v| v.failing.is_empty()).count()),
            caught: None,
            details: variants,
        },
        interaction_defects: defects.iter().filter(|d| d.interaction).count(),
        defects: Tally {
            total: defects.len(),
            passed: None,
            caught: Some(caught),
            details: defects,
        },
        mutation_score: (score * 1000.0).round() / 1000.0,
        baseline_failures,
        sharp_coverage,
        seconds: (elapsed.as_secs_f64() * 10.0).round() / 10.0,
    })
}

/// Print the two matrices and the score as text.
pub fn print(out: &mut impl Write, s: &Summary) -> std::io::Result<()> {
    if !s.baseline_failures.is_empty() {
        writeln!(
            out,
            "baseline (default broker) FAILS, left out of every subject:"
        )?;
        for f in &s.baseline_failures {
            writeln!(out, "  {f}")?;
        }
    }
    writeln!(out, "variants -> failing cases (must be none)")?;
    for v in &s.variants.details {
        let verdict = if v.failing.is_empty() {
            "ok".to_string()
        } else {
            v.failing.join(", ")
        };
        writeln!(out, "  {:<40} {verdict}", v.name)?;
        for (case, why) in &v.why {
            writeln!(out, "      {case}: {why}")?;
        }
    }
    writeln!(out, "defects -> catching cases (must be at least one)")?;
    for d in &s.defects.details {
        let verdict = if d.caught_by.is_empty() {
            format!("MISSED ({})", d.what)
        } else {
            d.caught_by.join(", ")
        };
        writeln!(out, "  {:<40} {verdict}", d.name)?;
    }
    writeln!(
        out,
        "variants passed {}/{}; defects caught {}/{} (mutation score {:.1}%, {} interactions)",
        s.variants.passed.unwrap_or(0),
        s.variants.total,
        s.defects.caught.unwrap_or(0),
        s.defects.total,
        s.mutation_score * 100.0,
        s.interaction_defects
    )?;
    for (v, c) in &s.sharp_coverage {
        writeln!(
            out,
            "MQTT {v}: {} of {} statements cited by a case that catches a defect, {} explained ({:.1}%)",
            c.covered, c.total, c.explained, c.percent
        )?;
    }
    writeln!(out, "selftest took {:.1} s", s.seconds)
}

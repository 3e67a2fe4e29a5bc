//! Documented deviations: what one excuses (a failure at one step, of one kind), and whether
//! it fits the case it names, checked when a manifest or a profile is loaded so that a
//! deviation that could never apply (or could apply to the wrong failure) is an error then,
//! not a silent no-op or a false excuse during a run.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::scenario::{Observation, Scenario, Version};

/// A case that fails on a broker for a documented reason, and exactly how it fails: the
/// step and the kind of observation. It excuses that failure and no other (a failure at
/// another step, of another kind, a lost connection, a timeout or a harness error stays a
/// failure). Read from manifests (YAML) and broker profiles (TOML) alike.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    /// Case name.
    pub case: String,
    /// Version it applies to (every version the suite runs the case under when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    /// The normative statement the broker does not follow: one the case cites under each
    /// version the deviation applies to.
    pub statement: String,
    /// The step that fails: its 1-based index among the case's steps, or the statement
    /// that step cites (its `statement:` field).
    pub step: StepRef,
    /// How the step fails: unexpected-packet, missing-packet, connection-kept-open,
    /// wrong-reason-code, packet-differs or malformed-packet.
    pub kind: Observation,
    /// Why.
    pub reason: String,
}

/// Which step of a case a deviation is about.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum StepRef {
    /// 1-based index among the case's steps (as failure reports number them).
    Index(usize),
    /// The statement the step cites in its `statement:` field.
    Statement(String),
}

impl std::fmt::Display for StepRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepRef::Index(n) => write!(f, "step {n}"),
            StepRef::Statement(s) => write!(f, "the step citing {s}"),
        }
    }
}

/// The field of a deviation that does not fit its case (to point at it in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `case`
    Case,
    /// `version`
    Version,
    /// `statement`
    Statement,
    /// `step`
    Step,
    /// `kind`
    Kind,
}

impl Field {
    /// The field's name as written.
    pub fn name(self) -> &'static str {
        match self {
            Field::Case => "case",
            Field::Version => "version",
            Field::Statement => "statement",
            Field::Step => "step",
            Field::Kind => "kind",
        }
    }
}

/// Why a deviation cannot apply: the field at fault and what is wrong with it.
pub type Misfit = (Field, String);

fn list(versions: &[Version]) -> String {
    versions
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Deviation {
    /// Whether this deviation excuses a failure at 1-based `step` (which cites
    /// `step_statement`) observed as `kind`; `Err` says why not.
    pub fn excuses(
        &self,
        step: Option<usize>,
        step_statement: Option<&str>,
        kind: Option<Observation>,
    ) -> Result<(), String> {
        let Some(kind) = kind.filter(|k| k.excusable()) else {
            return Err(format!(
                "a failure of kind {} is never excused by a documented deviation",
                kind.map_or("outside any step", Observation::name)
            ));
        };
        let at_step = match (&self.step, step) {
            (StepRef::Index(n), Some(s)) => *n == s,
            (StepRef::Statement(id), _) => step_statement == Some(id.as_str()),
            (StepRef::Index(_), None) => false,
        };
        if !at_step || kind != self.kind {
            return Err(format!(
                "the documented deviation ({}) is a {} at {}; this failure is a {kind} at {}",
                self.statement,
                self.kind,
                self.step,
                step.map_or_else(|| "no step".to_string(), |s| format!("step {s}")),
            ));
        }
        Ok(())
    }

    /// Why this deviation cannot apply to `case`, run under `runs` (the versions its suite
    /// runs the case under): a version it is not run under, a kind never excused, a step the
    /// case does not have (under that version), a statement the case does not cite.
    pub fn check(&self, case: &Scenario, runs: &[Version]) -> Result<(), Misfit> {
        let covered: Vec<Version> = match self.version {
            Some(v) if runs.contains(&v) => vec![v],
            Some(v) => {
                return Err((
                    Field::Version,
                    format!("the case is not run under {v} (only under {})", list(runs)),
                ))
            }
            None if runs.is_empty() => {
                return Err((Field::Case, "the case is run under no version".into()))
            }
            None => runs.to_vec(),
        };
        if !self.kind.excusable() {
            return Err((
                Field::Kind,
                format!(
                    "kind {} is never excused (only {})",
                    self.kind,
                    Observation::ALL
                        .iter()
                        .filter(|k| k.excusable())
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let runs_under = |s: &crate::scenario::Step| s.only().is_none_or(|o| covered.contains(&o));
        match &self.step {
            StepRef::Index(n) if *n == 0 || *n > case.steps.len() => {
                return Err((
                    Field::Step,
                    format!(
                        "step {n}: the case has {} steps (numbered from 1)",
                        case.steps.len()
                    ),
                ))
            }
            StepRef::Index(n) if !case.steps.get(n - 1).is_some_and(runs_under) => {
                return Err((
                    Field::Step,
                    format!("step {n} is not run under {}", list(&covered)),
                ))
            }
            StepRef::Statement(id)
                if !case
                    .steps
                    .iter()
                    .any(|s| s.check().0 == Some(id) && runs_under(s)) =>
            {
                return Err((
                    Field::Step,
                    format!(
                        "no step of the case run under {} cites {id} in its statement field",
                        list(&covered)
                    ),
                ))
            }
            _ => {}
        }
        for v in covered {
            let cited = case.statements(v);
            if !cited.contains(&self.statement) {
                return Err((
                    Field::Statement,
                    format!(
                        "the case does not cite {} under {v} (it cites {}){}",
                        self.statement,
                        cited.join(", "),
                        if self.version.is_none() && runs.len() > 1 {
                            "; give the deviation a version"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
        Ok(())
    }
}

//! The plan: which case runs under which version in which suite, what is skipped and why, and
//! which failures are documented deviations. Built before any case runs.

use std::time::Duration;

use super::limits::{self, LimitFit};
use super::qos_cap::{self, QosFit};
use crate::scenario::{LoadedCase, Step, Version};
use crate::suite::{Deviation, Suite};
use crate::sut::Capabilities;

/// What the user selected on the command line.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Case name substring.
    pub filter: Option<String>,
    /// A case needs one of these tags (when non-empty).
    pub tags: Vec<String>,
    /// Only this version.
    pub protocol: Option<Version>,
    /// Cases whose name matches one of these (a glob with `*`/`?`, else a substring) are left
    /// out.
    pub exclude: Vec<String>,
    /// When set, only these (case, version) runs (`--rerun-failed`).
    pub only: Option<Vec<(String, Version)>>,
}

impl Selection {
    fn accepts(&self, case: &LoadedCase) -> bool {
        let name = case.scenario.name.as_str();
        self.filter.as_deref().is_none_or(|f| name.contains(f))
            && (self.tags.is_empty() || self.tags.iter().any(|t| case.scenario.tags.contains(t)))
            && !self.exclude.iter().any(|p| name_matches(p, name))
    }

    fn accepts_run(&self, case: &LoadedCase, version: Version) -> bool {
        self.protocol.is_none_or(|p| p == version)
            && self.only.as_ref().is_none_or(|only| {
                only.iter()
                    .any(|(n, v)| *n == case.scenario.name && *v == version)
            })
    }
}

/// `pattern` as a glob (`*`, `?`) when it has one, else as a substring of `name`.
fn name_matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return name.contains(pattern);
    }
    globset::Glob::new(pattern).is_ok_and(|g| g.compile_matcher().is_match(name))
}

/// One case under one version in one suite.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// Position in the plan.
    pub index: usize,
    /// Suite name.
    pub suite: String,
    /// The case.
    pub case: LoadedCase,
    /// Version.
    pub version: Version,
    /// A documented deviation for the target broker.
    pub deviation: Option<Deviation>,
    /// Why it will not run (requirements unmet).
    pub skip: Option<String>,
}

/// Plan every selected case of every suite, per version, in suite and file order.
pub fn plan(
    suites: &[Suite],
    selection: &Selection,
    caps: Option<&Capabilities>,
    broker: &str,
) -> Vec<PlannedRun> {
    let mut runs = Vec::new();
    for suite in suites {
        for case in suite.cases.iter().filter(|c| selection.accepts(c)) {
            for &version in Version::ALL
                .iter()
                .filter(|v| case.scenario.versions.contains(v))
            {
                if !selection.accepts_run(case, version) || !suite.runs_version(version) {
                    continue;
                }
                let mut skip = caps.and_then(|caps| {
                    if let Some(refusal) = caps.refusal(version) {
                        return Some(refusal.to_string());
                    }
                    case.scenario
                        .requires
                        .iter()
                        .find_map(|f| caps.unmet(*f, version))
                });
                let mut planned = case.clone();
                // Never above the broker's Maximum QoS: capped where the point survives.
                if let (None, Some(caps)) = (&skip, caps) {
                    match qos_cap::fit(case, version, caps.maximum_qos, &caps.maximum_qos_source) {
                        QosFit::Fits => {}
                        QosFit::Capped(c) => planned = *c,
                        QosFit::Skip(why) => skip = Some(why),
                    }
                }
                // Never more than the broker's limits allow: adapted or skipped with the reason.
                if let (None, Some(caps)) = (&skip, caps) {
                    match limits::fit(&planned, version, &caps.ceilings, &caps.topic_root) {
                        LimitFit::Fits => {}
                        LimitFit::Adapted(c) => planned = *c,
                        LimitFit::Skip(why) => skip = Some(why),
                    }
                }
                runs.push(PlannedRun {
                    index: runs.len(),
                    suite: suite.manifest.name.clone(),
                    case: planned,
                    version,
                    deviation: suite
                        .deviation(broker, &case.scenario.name, version)
                        .cloned(),
                    skip,
                });
            }
        }
    }
    runs
}

/// An estimate of a case's duration under `version`: the time its steps wait on purpose
/// (`sleep`, `expect_nothing`) and the longest they allow a close to take (`expect_close`
/// with `within`: the keep-alive cases wait for the broker's timer). The executor starts long
/// cases first so that they do not finish last.
pub fn estimated_duration(case: &LoadedCase, version: Version) -> Duration {
    case.scenario
        .steps
        .iter()
        .filter(|s| s.only().is_none_or(|v| v == version))
        .map(|s| match s {
            Step::Sleep(d) => d.duration().0,
            Step::ExpectNothing(e) => e.duration.0,
            Step::ExpectClose(e) => e.within.map_or(Duration::ZERO, |w| w.0),
            _ => Duration::ZERO,
        })
        .sum()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn waits_add_up_per_version() {
        let text = "name: c\nversions: [\"3.1.1\", \"5\"]\nclients: {a: {}}\nsteps:\n  - sleep: 1s\n  - sleep: {for: 2s, only: \"5\"}\n  - expect_nothing: {client: a, for: 500ms}\n";
        let case = crate::scenario::parse_str(text, std::path::Path::new("f.yaml"))
            .unwrap()
            .remove(0);
        assert_eq!(
            estimated_duration(&case, Version::V311),
            Duration::from_millis(1500)
        );
        assert_eq!(
            estimated_duration(&case, Version::V5),
            Duration::from_millis(3500)
        );
    }
}

//! The plan: which case runs under which version in which suite, what is skipped and why, and
//! which failures are documented deviations. Built before any case runs.

use crate::scenario::{LoadedCase, Version};
use crate::suite::{Deviation, Suite};
use crate::target::Capabilities;

/// What the user selected on the command line.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Case name substring.
    pub filter: Option<String>,
    /// A case needs one of these tags (when non-empty).
    pub tags: Vec<String>,
    /// Only this version.
    pub protocol: Option<Version>,
}

impl Selection {
    fn accepts(&self, case: &LoadedCase) -> bool {
        self.filter
            .as_deref()
            .is_none_or(|f| case.scenario.name.contains(f))
            && (self.tags.is_empty() || self.tags.iter().any(|t| case.scenario.tags.contains(t)))
    }
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
                if selection.protocol.is_some_and(|p| p != version) || !suite.runs_version(version)
                {
                    continue;
                }
                let skip = caps.and_then(|caps| {
                    if version == Version::V5 && !caps.v5 {
                        return Some("the broker does not accept MQTT 5".to_string());
                    }
                    case.scenario
                        .requires
                        .iter()
                        .find_map(|f| caps.unmet(*f, version))
                });
                runs.push(PlannedRun {
                    index: runs.len(),
                    suite: suite.manifest.name.clone(),
                    case: case.clone(),
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

//! Spec coverage: which normative statements the scenarios check, per version and section,
//! and which are explained as not observable on a broker.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::scenario::{LoadedCase, Version};

/// One normative statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// `MQTT-3.3.1-5`.
    pub id: String,
    /// Its text.
    pub text: String,
}

/// A statement that a broker test cannot observe, with the reason.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Unobservable {
    /// Statement id.
    pub id: String,
    /// Why it cannot be observed.
    pub reason: String,
}

/// Why coverage cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// `unobservable.yaml` is invalid.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Parse a statements file: `## MQTT-x` headings followed by text.
pub fn parse_statements(text: &str) -> Vec<Statement> {
    let mut out: Vec<Statement> = Vec::new();
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("## ") {
            if id.trim().starts_with("MQTT-") {
                out.push(Statement {
                    id: id.trim().to_string(),
                    text: String::new(),
                });
                continue;
            }
        }
        if let Some(last) = out.last_mut() {
            if !line.trim().is_empty() {
                if !last.text.is_empty() {
                    last.text.push(' ');
                }
                last.text.push_str(line.trim());
            }
        }
    }
    out
}

/// The section of a statement: `MQTT-3.3.1-5` -> `3.3`.
pub fn section(id: &str) -> String {
    let body = id.trim_start_matches("MQTT-");
    let number = body.split('-').next().unwrap_or(body);
    number.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// A sort key that orders sections numerically (`3.2` before `3.10`).
pub fn section_key(section: &str) -> Vec<u32> {
    section
        .split('.')
        .map(|p| p.parse().unwrap_or(u32::MAX))
        .collect()
}

/// Counts for a version or a section.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Statements.
    pub total: usize,
    /// Checked by at least one scenario.
    pub covered: usize,
    /// Not covered but explained as unobservable.
    pub explained: usize,
}

/// Coverage of one version.
#[derive(Debug, Clone, Serialize)]
pub struct VersionCoverage {
    /// Statements.
    pub total: usize,
    /// Covered.
    pub covered: usize,
    /// Explained.
    pub explained: usize,
    /// Per section.
    pub sections: BTreeMap<String, Counts>,
    /// Neither covered nor explained.
    pub uncovered: Vec<String>,
    /// Ids cited by scenarios that are not statements of this version.
    pub unknown: Vec<String>,
}

/// The statements files, relative to the project root.
pub fn statements_file(root: &Path, version: Version) -> std::path::PathBuf {
    root.join("suites/spec").join(match version {
        Version::V311 => "mqtt-v3.1.1-statements.md",
        Version::V5 => "mqtt-v5.0-statements.md",
    })
}

/// The normative statements of `version` as shipped in the binary (`suites/spec/`), for
/// quoting in failure reports and checking cited IDs without a checkout.
pub fn shipped_statements(version: Version) -> &'static [Statement] {
    static V311: std::sync::OnceLock<Vec<Statement>> = std::sync::OnceLock::new();
    static V5: std::sync::OnceLock<Vec<Statement>> = std::sync::OnceLock::new();
    match version {
        Version::V311 => V311.get_or_init(|| {
            parse_statements(include_str!("../suites/spec/mqtt-v3.1.1-statements.md"))
        }),
        Version::V5 => V5.get_or_init(|| {
            parse_statements(include_str!("../suites/spec/mqtt-v5.0-statements.md"))
        }),
    }
}

/// The shipped statement `id` of `version`, if it exists.
pub fn statement(version: Version, id: &str) -> Option<&'static Statement> {
    shipped_statements(version).iter().find(|s| s.id == id)
}

/// The label used in coverage output: `3.1.1` or `5.0`.
pub fn label(version: Version) -> &'static str {
    match version {
        Version::V311 => "3.1.1",
        Version::V5 => "5.0",
    }
}

/// Read `suites/unobservable.yaml` (missing file: nothing explained).
pub fn read_unobservable(
    root: &Path,
) -> Result<BTreeMap<Version, Vec<Unobservable>>, CoverageError> {
    let path = root.join("suites/unobservable.yaml");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => return Err(CoverageError::Io { path, source }),
    };
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    serde_saphyr::from_str::<Option<BTreeMap<Version, Vec<Unobservable>>>>(&text)
        .map(Option::unwrap_or_default)
        .map_err(|e| CoverageError::Syntax {
            path,
            message: e.to_string(),
        })
}

/// Coverage of every version by `cases`.
pub fn compute(
    root: &Path,
    cases: &[LoadedCase],
) -> Result<BTreeMap<&'static str, VersionCoverage>, CoverageError> {
    let unobservable = read_unobservable(root)?;
    let mut out = BTreeMap::new();
    for version in Version::ALL {
        let path = statements_file(root, version);
        let text =
            std::fs::read_to_string(&path).map_err(|source| CoverageError::Io { path, source })?;
        let statements = parse_statements(&text);
        let ids: BTreeSet<&str> = statements.iter().map(|s| s.id.as_str()).collect();
        let cited: BTreeSet<&str> = cases
            .iter()
            .filter(|c| c.scenario.versions.contains(&version))
            .flat_map(|c| c.scenario.statements(version).iter().map(String::as_str))
            .collect();
        let explained: BTreeSet<&str> = unobservable
            .get(&version)
            .map(|l| l.iter().map(|u| u.id.as_str()).collect())
            .unwrap_or_default();
        let mut cov = VersionCoverage {
            total: statements.len(),
            covered: 0,
            explained: 0,
            sections: BTreeMap::new(),
            uncovered: Vec::new(),
            unknown: cited
                .iter()
                .filter(|c| !ids.contains(*c))
                .map(|c| c.to_string())
                .collect(),
        };
        for s in &statements {
            let entry = cov.sections.entry(section(&s.id)).or_default();
            entry.total += 1;
            if cited.contains(s.id.as_str()) {
                entry.covered += 1;
                cov.covered += 1;
            } else if explained.contains(s.id.as_str()) {
                entry.explained += 1;
                cov.explained += 1;
            } else {
                cov.uncovered.push(s.id.clone());
            }
        }
        out.insert(label(version), cov);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn statements_and_sections_parse() {
        let s = parse_statements(
            "# t\n\nintro\n\n## MQTT-3.3.1-5\nA MUST.\nmore\n\n## MQTT-4.7.1-2\nB.\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].text, "A MUST. more");
        assert_eq!(section(&s[0].id), "3.3");
        assert_eq!(section("MQTT-1.5.4-1"), "1.5");
        let mut names = vec!["3.10", "3.2", "4.1"];
        names.sort_by_key(|n| section_key(n));
        assert_eq!(names, vec!["3.2", "3.10", "4.1"]);
    }

    #[test]
    fn shipped_statement_files_have_the_published_counts() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (v, n) in [(Version::V311, 140), (Version::V5, 251)] {
            let text = std::fs::read_to_string(statements_file(root, v)).unwrap_or_default();
            assert_eq!(parse_statements(&text).len(), n, "{v}");
        }
    }
}

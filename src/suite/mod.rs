//! Suite manifests (`suites/*.yaml`): a name, the scenarios selected by path glob and tag,
//! and the deviations documented per broker.

mod deviation;
mod spans;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSetBuilder};
use serde::Deserialize;

use crate::scenario::{load_file, yaml_error, LoadError, LoadedCase, Scenario, Version};
pub use deviation::{Deviation, Field, Misfit, StepRef};

/// Tag selection of a suite.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagFilter {
    /// A case needs at least one of these (when non-empty).
    #[serde(default)]
    pub include: Vec<String>,
    /// A case with any of these is left out.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl TagFilter {
    /// Whether a case with `tags` is selected.
    pub fn accepts(&self, tags: &[String]) -> bool {
        (self.include.is_empty() || self.include.iter().any(|t| tags.contains(t)))
            && !self.exclude.iter().any(|t| tags.contains(t))
    }
}

/// A suite manifest as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Suite name (the JUnit testsuite name).
    pub name: String,
    /// What the suite is for.
    #[serde(default)]
    pub description: String,
    /// Path globs of scenario files, relative to the project root.
    pub scenarios: Vec<String>,
    /// Path globs of scenario files to leave out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Tag selection.
    #[serde(default)]
    pub tags: TagFilter,
    /// Versions this suite runs (default: every version a case lists).
    #[serde(default)]
    pub versions: Option<Vec<Version>>,
    /// Known deviations per broker name.
    #[serde(default)]
    pub deviations: BTreeMap<String, Vec<Deviation>>,
}

/// A loaded suite: its manifest and the cases it selects, in file order.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The manifest.
    pub manifest: Manifest,
    /// The manifest file.
    pub path: PathBuf,
    /// Selected cases.
    pub cases: Vec<LoadedCase>,
}

impl Suite {
    /// Whether this suite runs cases under `version`.
    pub fn runs_version(&self, version: Version) -> bool {
        self.manifest.runs_version(version)
    }

    /// The broker names this suite documents deviations for.
    pub fn brokers(&self) -> impl Iterator<Item = &str> {
        self.manifest.deviations.keys().map(String::as_str)
    }

    /// The documented deviation of `case` under `version` on `broker`, if any.
    pub fn deviation(&self, broker: &str, case: &str, version: Version) -> Option<&Deviation> {
        self.manifest
            .deviations
            .get(broker)?
            .iter()
            .find(|d| d.case == case && d.version.is_none_or(|v| v == version))
    }
}

impl Manifest {
    /// Whether this suite runs cases under `version`.
    pub fn runs_version(&self, version: Version) -> bool {
        self.versions.as_ref().is_none_or(|v| v.contains(&version))
    }

    /// The versions this suite runs `case` under, oldest first.
    pub fn versions_of(&self, case: &Scenario) -> Vec<Version> {
        Version::ALL
            .iter()
            .copied()
            .filter(|v| case.versions.contains(v) && self.runs_version(*v))
            .collect()
    }
}

/// Why a suite cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The manifest cannot be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The manifest does not parse.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// Line.
        line: u64,
        /// Column.
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// A glob is invalid.
    #[error("{file}: invalid glob {glob:?}: {message}")]
    Glob {
        /// The file.
        file: PathBuf,
        /// The glob.
        glob: String,
        /// What is wrong.
        message: String,
    },
    /// Two selected cases share a name.
    #[error("{file}: case name {name:?} is used twice (in {first} and {second})")]
    DuplicateCase {
        /// The manifest.
        file: PathBuf,
        /// The name.
        name: String,
        /// First file.
        first: String,
        /// Second file.
        second: String,
    },
    /// A deviation names a case the suite does not have.
    #[error("{file}:{line}:{column}: deviation for {broker} names unknown case {case:?}")]
    UnknownDeviation {
        /// The manifest.
        file: PathBuf,
        /// 1-based line of the deviation's `case` (0 if unknown).
        line: u32,
        /// 1-based column.
        column: u32,
        /// Broker.
        broker: String,
        /// Case.
        case: String,
    },
    /// A deviation cannot apply to the case it names.
    #[error("{file}:{line}:{column}: deviation for {broker} of case {case:?}: {message}")]
    InvalidDeviation {
        /// The manifest.
        file: PathBuf,
        /// 1-based line of the field at fault (0 if unknown).
        line: u32,
        /// 1-based column.
        column: u32,
        /// Broker.
        broker: String,
        /// Case.
        case: String,
        /// The field at fault and what is wrong with it (`step: ...`).
        message: String,
    },
    /// No suite manifest found.
    #[error("no suite named {0:?} (looked for suites/<name>.yaml and the name in each manifest)")]
    NotFound(String),
}

/// The manifests in `<root>/suites/`, sorted by file name.
pub fn discover(root: &Path) -> Result<Vec<PathBuf>, SuiteError> {
    let dir = root.join("suites");
    let entries = std::fs::read_dir(&dir).map_err(|source| SuiteError::Io {
        file: dir.clone(),
        source,
    })?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .filter(|p| p.file_stem().is_some_and(|s| s != "unobservable"))
        .collect();
    out.sort();
    Ok(out)
}

/// Every broker name the manifests in `<root>/suites/` document deviations for (manifests
/// that do not parse are left out: loading them reports the error).
pub fn deviation_brokers(root: &Path) -> Result<std::collections::BTreeSet<String>, SuiteError> {
    Ok(discover(root)?
        .iter()
        .filter_map(|f| read_manifest(f).ok())
        .flat_map(|m| m.deviations.into_keys())
        .collect())
}

/// Read a manifest.
pub fn read_manifest(file: &Path) -> Result<Manifest, SuiteError> {
    let text = std::fs::read_to_string(file).map_err(|source| SuiteError::Io {
        file: file.into(),
        source,
    })?;
    serde_saphyr::from_str(&text).map_err(|e| {
        let at = yaml_error::locate(&e, &text);
        SuiteError::Syntax {
            file: file.into(),
            line: at.line,
            column: at.column,
            message: at.message,
        }
    })
}

/// Every file under `dir`, recursively, sorted.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Load a suite: read its manifest, select scenario files by glob (relative to `root`), load
/// them and keep the cases its tags select. Invalid scenario files are returned beside the
/// suite so that the other cases can still run.
pub fn load(file: &Path, root: &Path) -> Result<(Suite, Vec<LoadError>), SuiteError> {
    let manifest = read_manifest(file)?;
    let set = glob_set(file, &manifest.scenarios)?;
    let excluded = glob_set(file, &manifest.exclude)?;
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for path in walk(&root.join("scenarios")) {
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        if !set.is_match(rel)
            || excluded.is_match(rel)
            || !rel.extension().is_some_and(|e| e == "yaml" || e == "yml")
        {
            continue;
        }
        match load_file(rel_or_abs(root, rel).as_path()) {
            Ok(loaded) => {
                for case in loaded {
                    if !manifest.tags.accepts(&case.scenario.tags) {
                        continue;
                    }
                    let here = case.file.display().to_string();
                    if let Some(first) = seen.insert(case.scenario.name.clone(), here.clone()) {
                        return Err(SuiteError::DuplicateCase {
                            file: file.into(),
                            name: case.scenario.name.clone(),
                            first,
                            second: here,
                        });
                    }
                    cases.push(case);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    let by_name: BTreeMap<&str, &Scenario> = cases
        .iter()
        .map(|c| (c.scenario.name.as_str(), &*c.scenario))
        .collect();
    if errors.is_empty() {
        check_deviations(file, &manifest, &by_name)?;
    }
    Ok((
        Suite {
            manifest,
            path: file.into(),
            cases,
        },
        errors,
    ))
}

/// Every deviation of `manifest` names a case of the suite and fits it (see
/// [`Deviation::check`]); the error points at the field at fault in the manifest.
fn check_deviations(
    file: &Path,
    manifest: &Manifest,
    cases: &BTreeMap<&str, &Scenario>,
) -> Result<(), SuiteError> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let spans = spans::deviations(&text);
    for (broker, list) in &manifest.deviations {
        for (i, d) in list.iter().enumerate() {
            let at = |field: Field| spans.locate(broker, i, field);
            let Some(case) = cases.get(d.case.as_str()) else {
                let (line, column) = at(Field::Case);
                return Err(SuiteError::UnknownDeviation {
                    file: file.into(),
                    line,
                    column,
                    broker: broker.clone(),
                    case: d.case.clone(),
                });
            };
            if let Err((field, message)) = d.check(case, &manifest.versions_of(case)) {
                let (line, column) = at(field);
                return Err(SuiteError::InvalidDeviation {
                    file: file.into(),
                    line,
                    column,
                    broker: broker.clone(),
                    case: d.case.clone(),
                    message: format!("{}: {message}", field.name()),
                });
            }
        }
    }
    Ok(())
}

fn glob_set(file: &Path, globs: &[String]) -> Result<globset::GlobSet, SuiteError> {
    let mut builder = GlobSetBuilder::new();
    for g in globs {
        let glob = Glob::new(g).map_err(|e| SuiteError::Glob {
            file: file.into(),
            glob: g.clone(),
            message: e.to_string(),
        })?;
        builder.add(glob);
    }
    builder.build().map_err(|e| SuiteError::Glob {
        file: file.into(),
        glob: globs.join(", "),
        message: e.to_string(),
    })
}

/// Paths are shown relative to the root when the root is the working directory.
fn rel_or_abs(root: &Path, rel: &Path) -> PathBuf {
    if root == Path::new(".") || root.as_os_str().is_empty() {
        rel.to_path_buf()
    } else {
        root.join(rel)
    }
}

/// Resolve `--suite` values (a manifest path, or a suite name) to manifest files.
pub fn resolve(root: &Path, wanted: &[String]) -> Result<Vec<PathBuf>, SuiteError> {
    let all = discover(root)?;
    if wanted.is_empty() {
        return Ok(all);
    }
    let mut out = Vec::new();
    for w in wanted {
        let as_path = PathBuf::from(w);
        if as_path.is_file() {
            out.push(as_path);
            continue;
        }
        let by_stem = all
            .iter()
            .find(|p| p.file_stem().is_some_and(|s| s == w.as_str()));
        let found = match by_stem {
            Some(p) => Some(p.clone()),
            None => all
                .iter()
                .find(|p| read_manifest(p).is_ok_and(|m| &m.name == w))
                .cloned(),
        };
        out.push(found.ok_or_else(|| SuiteError::NotFound(w.clone()))?);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CASE: &str = "name: NAME\nversions: [\"5\"]\nspec: {\"5\": [MQTT-1]}\ntags: [TAG]\nclients: {a: {}}\nsteps: [{connect: {client: a}}]\n";

    fn root(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        dir
    }

    fn case(name: &str, tag: &str) -> String {
        CASE.replace("NAME", name).replace("TAG", tag)
    }

    #[test]
    fn globs_exclusions_and_tags_select_cases() {
        let manifest = "name: s\nscenarios: [\"scenarios/**/*.yaml\"]\nexclude: [\"scenarios/skip/**\"]\nversions: [\"5\"]\ntags: {exclude: [slow]}\ndeviations:\n  mosquitto: [{case: a, statement: MQTT-1, step: 1, kind: wrong-reason-code, reason: r}]\n";
        let (a, b, c, d) = (
            case("a", "x"),
            case("b", "slow"),
            case("c", "x"),
            case("d", "x"),
        );
        let dir = root(&[
            ("suites/s.yaml", manifest),
            ("scenarios/f/a.yaml", &a),
            ("scenarios/f/b.yaml", &b),
            ("scenarios/skip/c.yaml", &c),
            ("scenarios/f/d.txt", &d),
        ]);
        let (suite, errors) = load(&dir.path().join("suites/s.yaml"), dir.path()).unwrap();
        assert!(errors.is_empty());
        let names: Vec<&str> = suite
            .cases
            .iter()
            .map(|c| c.scenario.name.as_str())
            .collect();
        assert_eq!(names, vec!["a"]);
        assert!(suite.deviation("mosquitto", "a", Version::V5).is_some());
        assert!(suite.deviation("reference", "a", Version::V5).is_none());
        assert!(suite.runs_version(Version::V5));
        assert!(!suite.runs_version(Version::V311));
    }

    #[test]
    fn duplicate_names_and_unknown_deviations_are_errors() {
        let a = case("a", "x");
        let dir = root(&[
            ("suites/s.yaml", "name: s\nscenarios: [\"scenarios/**\"]\n"),
            ("scenarios/f/a.yaml", &a),
            ("scenarios/g/a.yaml", &a),
        ]);
        let e = load(&dir.path().join("suites/s.yaml"), dir.path()).unwrap_err();
        assert!(matches!(e, SuiteError::DuplicateCase { .. }), "{e}");
        let dir = root(&[
            ("suites/s.yaml", "name: s\nscenarios: [\"scenarios/**\"]\ndeviations: {m: [{case: zz, statement: S, step: 1, kind: missing-packet, reason: r}]}\n"),
            ("scenarios/f/a.yaml", &a),
        ]);
        let e = load(&dir.path().join("suites/s.yaml"), dir.path()).unwrap_err();
        assert!(
            e.to_string()
                .contains("s.yaml:3:25: deviation for m names unknown case \"zz\""),
            "{e}"
        );
        let dir = root(&[("suites/s.yaml", "name: s\nscenario: []\n")]);
        let e = load(&dir.path().join("suites/s.yaml"), dir.path()).unwrap_err();
        assert!(
            e.to_string()
                .contains("s.yaml:2:1: unknown field `scenario`"),
            "{e}"
        );
    }

    #[rstest::rstest]
    #[case::version_not_run(
        "version: \"3.1.1\", statement: MQTT-1, step: 1, kind: missing-packet",
        "7:26: deviation for m of case \"a\": version: the case is not run under 3.1.1"
    )]
    #[case::step_out_of_range(
        "statement: MQTT-1, step: 2, kind: missing-packet",
        "7:42: deviation for m of case \"a\": step: step 2: the case has 1 steps"
    )]
    #[case::step_statement_not_cited(
        "statement: MQTT-1, step: MQTT-9, kind: missing-packet",
        "step: no step of the case run under 5 cites MQTT-9"
    )]
    #[case::kind_never_excused(
        "statement: MQTT-1, step: 1, kind: timeout",
        "7:51: deviation for m of case \"a\": kind: kind timeout is never excused"
    )]
    #[case::statement_not_cited("statement: MQTT-2, step: 1, kind: missing-packet", "7:28: deviation for m of case \"a\": statement: the case does not cite MQTT-2 under 5 (it cites MQTT-1)")]
    fn a_deviation_that_cannot_apply_is_a_load_error_at_its_field(
        #[case] fields: &str,
        #[case] expected: &str,
    ) {
        let a = case("a", "x");
        let manifest = format!(
            "name: s\nscenarios: [\"scenarios/**\"]\ndeviations:\n  m:\n    - {{case: a, statement: MQTT-1, step: 1, kind: missing-packet, reason: ok}}\n    # the second one is wrong\n    - {{case: a, {fields}, reason: r}}\n"
        );
        let dir = root(&[("suites/s.yaml", &manifest), ("scenarios/f/a.yaml", &a)]);
        let e = load(&dir.path().join("suites/s.yaml"), dir.path()).unwrap_err();
        assert!(e.to_string().contains(expected), "{e}");
    }

    #[test]
    fn the_shipped_manifests_deviations_all_fit_their_cases() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for f in discover(root).unwrap() {
            if let Err(e) = load(&f, root) {
                panic!("{e}");
            }
        }
    }
}

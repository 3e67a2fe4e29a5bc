//! One libtest trial per case and version, for `cargo test` and `cargo nextest`.
//!
//! A broker project adds `mqtt-conformance` as a dev-dependency and writes one test target
//! with `harness = false`:
//!
//! ```no_run
//! // tests/conformance.rs
//! fn main() -> std::process::ExitCode {
//!     mqtt_conformance::trials::Conformance::from_env()
//!         .broker("mqtt://127.0.0.1:1883", "my-broker")
//!         .main()
//! }
//! ```
//!
//! Every case of every bundled suite then becomes a test named `suite::case::vVERSION`
//! (`mqtt-5::retain-delivered-to-new-subscriber::v5`): `cargo test -- retain` filters,
//! `--list` lists, `--skip` and `--exact` work, and nextest runs each case as its own test.
//! A failing test prints the console report's failure block (statements, failed step,
//! expected vs received, every client's packet trace). A case the broker cannot run (a
//! feature it lacks) is reported as ignored at runtime, with the reason.
//!
//! The broker is started (bundled) or probed (external) once per test process, when the first
//! selected case runs, so `--list` never touches the network.

mod session;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use crate::run::{self, CaseResult, PlannedRun, Selection, Verdict};
use crate::scenario::Version;
use crate::suite::{self, Suite};
use crate::sut::TargetSpec;
pub use session::Session;

/// The environment variable naming an external broker (`mqtt://[user:pass@]host:port`);
/// unset: the bundled reference broker, in-process.
pub const BROKER_ENV: &str = "MQTT_CONFORMANCE_BROKER";
/// The environment variable naming the broker for the suites' documented deviations.
pub const BROKER_NAME_ENV: &str = "MQTT_CONFORMANCE_BROKER_NAME";
/// The environment variable overriding where `suites/` and `scenarios/` are read from.
pub const ROOT_ENV: &str = "MQTT_CONFORMANCE_ROOT";
/// The environment variable naming a broker profile (TOML, like `run --profile`).
pub const PROFILE_ENV: &str = "MQTT_CONFORMANCE_PROFILE";

/// Why the trials cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TrialsError {
    /// A suite manifest is missing or invalid.
    #[error(transparent)]
    Suite(#[from] suite::SuiteError),
    /// Scenario files failed to load.
    #[error("invalid scenario files:\n{0}")]
    Scenarios(String),
    /// No suite manifest was found.
    #[error("no suite manifests under {0}")]
    NoSuites(PathBuf),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The broker profile cannot be used.
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
}

/// The directory holding the suites and scenarios that ship with this crate (they are in
/// the published package, so a dependent crate needs no checkout of this repository).
pub fn bundled_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The libtest name of a planned run: `suite::case::v5` or `suite::case::v3.1.1`.
pub fn trial_name(suite: &str, case: &str, version: Version) -> String {
    format!("{suite}::{case}::v{}", version.label())
}

/// Which suites run against which broker, as libtest trials.
#[derive(Debug, Clone)]
pub struct Conformance {
    root: PathBuf,
    suites: Vec<String>,
    target: TargetSpec,
    profile: Option<PathBuf>,
    case_timeout: Duration,
    default_threads: usize,
}

impl Default for Conformance {
    fn default() -> Self {
        Conformance {
            root: bundled_root(),
            suites: Vec::new(),
            target: TargetSpec::Reference,
            profile: None,
            case_timeout: Duration::from_secs(15),
            // The same default as `mqtt-conformance run`.
            default_threads: run::setup::default_jobs(),
        }
    }
}

impl Conformance {
    /// Every bundled suite against the bundled reference broker.
    pub fn new() -> Self {
        Conformance::default()
    }

    /// Like [`Conformance::new`], then applies `MQTT_CONFORMANCE_BROKER`,
    /// `MQTT_CONFORMANCE_BROKER_NAME`, `MQTT_CONFORMANCE_PROFILE` and `MQTT_CONFORMANCE_ROOT`
    /// when set.
    pub fn from_env() -> Self {
        let mut c = Conformance::new();
        if let Some(root) = std::env::var_os(ROOT_ENV) {
            c.root = PathBuf::from(root);
        }
        if let Ok(url) = std::env::var(BROKER_ENV) {
            let name = std::env::var(BROKER_NAME_ENV).unwrap_or_else(|_| "external".into());
            c.target = TargetSpec::External { url, name };
        }
        if let Some(profile) = std::env::var_os(PROFILE_ENV) {
            c.profile = Some(PathBuf::from(profile));
        }
        c
    }

    /// Use the broker profile at `path` (TOML, like `run --profile`): credentials, declared
    /// features and limits, ACL topic root, deviations.
    pub fn profile(mut self, path: impl Into<PathBuf>) -> Self {
        self.profile = Some(path.into());
        self
    }

    /// Test an external broker at `url`; `name` selects the suites' documented deviations.
    /// An environment `MQTT_CONFORMANCE_BROKER` read by [`Conformance::from_env`] is replaced.
    pub fn broker(mut self, url: &str, name: &str) -> Self {
        self.target = TargetSpec::External {
            url: url.into(),
            name: name.into(),
        };
        self
    }

    /// Only these suites (names or manifest paths); default: every suite.
    pub fn suites(mut self, names: &[&str]) -> Self {
        self.suites = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Read `suites/` and `scenarios/` from `root` instead of the bundled copy.
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = root.into();
        self
    }

    /// Time budget of one case (default 15 s).
    pub fn case_timeout(mut self, timeout: Duration) -> Self {
        self.case_timeout = timeout;
        self
    }

    fn load(&self) -> Result<Vec<Suite>, TrialsError> {
        let files = suite::resolve(&self.root, &self.suites)?;
        if files.is_empty() {
            return Err(TrialsError::NoSuites(self.root.join("suites")));
        }
        let mut suites = Vec::new();
        let mut invalid = Vec::new();
        for f in files {
            let (s, errors) = suite::load(&f, &self.root)?;
            invalid.extend(errors.iter().map(ToString::to_string));
            suites.push(s);
        }
        if !invalid.is_empty() {
            return Err(TrialsError::Scenarios(invalid.join("\n")));
        }
        Ok(suites)
    }

    /// One trial per case and version, sharing one [`Session`] (started by the first trial
    /// that runs; call [`Session::shutdown`] after the run).
    pub fn trials(&self) -> Result<(Vec<Trial>, Arc<Session>), TrialsError> {
        let suites = self.load()?;
        let profile = match self.profile.as_deref() {
            Some(path) => {
                let profile = crate::profile::Profile::load(path)?;
                profile.check_deviations(path, &self.root)?;
                Some(profile)
            }
            None => None,
        };
        let plan = run::plan(&suites, &Selection::default(), None, "");
        let session = Arc::new(Session::new(
            suites,
            self.target.clone(),
            profile,
            self.case_timeout,
        )?);
        let trials = plan
            .iter()
            .map(|p| {
                let name = trial_name(&p.suite, &p.case.scenario.name, p.version);
                let session = Arc::clone(&session);
                let key = name.clone();
                Trial::ignorable_test(name, move || execute(&session, &key))
            })
            .collect();
        Ok((ordered(trials, &plan), session))
    }

    /// The whole test binary: parse libtest's arguments, run the selected cases (in
    /// parallel: 12 per core unless `--test-threads` says otherwise), stop the broker, and
    /// return the exit code.
    pub fn main(self) -> ExitCode {
        let mut args = Arguments::from_args();
        if args.test_threads.is_none() {
            args.test_threads = Some(self.default_threads);
        }
        let (trials, session) = match self.trials() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("mqtt-conformance: {e}");
                return ExitCode::from(101);
            }
        };
        let conclusion = libtest_mimic::run(&args, trials);
        session.shutdown();
        conclusion.exit_code()
    }
}

/// Longest cases first (as `mqtt-conformance run` does), so the wall time is close to the
/// longest case.
fn ordered(trials: Vec<Trial>, plan: &[PlannedRun]) -> Vec<Trial> {
    let mut paired: Vec<(Duration, Trial)> = plan
        .iter()
        .map(|p| run::plan::estimated_duration(&p.case, p.version))
        .zip(trials)
        .collect();
    paired.sort_by_key(|(d, _)| std::cmp::Reverse(*d));
    paired.into_iter().map(|(_, t)| t).collect()
}

fn execute(session: &Session, name: &str) -> Result<Completion, Failed> {
    completion(&session.run(name).map_err(Failed::from)?)
}

/// The libtest outcome of a result: a pass or a documented deviation completes, a skip is
/// ignored with its reason, anything else fails with the console report's failure block.
pub fn completion(result: &CaseResult) -> Result<Completion, Failed> {
    match &result.verdict {
        Verdict::Pass => Ok(Completion::Completed),
        Verdict::Warning => {
            print!("{}", crate::report::console::warning_block(result, false));
            Ok(Completion::Completed)
        }
        Verdict::Skipped { reason } => Ok(Completion::ignored_with(reason)),
        Verdict::Deviation { deviation, .. } => {
            println!(
                "documented deviation of this broker: {} {}",
                deviation.statement, deviation.reason
            );
            Ok(Completion::Completed)
        }
        _ => Err(Failed::from(crate::report::console::failure_block(
            result, false,
        ))),
    }
}

//! The broker session behind the trials of one test process: started on first use, shared
//! by every trial, stopped after the run.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::{trial_name, TrialsError};
use crate::profile::Profile;
use crate::run::{self, CaseResult, PlannedRun, Prepared, RunConfig, RunOptions, Selection};
use crate::suite::Suite;
use crate::sut::{self, RunningTarget, TargetSpec};

/// The started broker, the plan against its capabilities, and how to run one case.
struct Started {
    target: Mutex<Option<RunningTarget>>,
    runs: HashMap<String, PlannedRun>,
    cfg: RunConfig,
}

/// What the trials of one process share: the async runtime, the suites, and the broker,
/// which the first trial that runs starts (bundled) or probes (external).
pub struct Session {
    runtime: tokio::runtime::Runtime,
    suites: Vec<Suite>,
    spec: TargetSpec,
    profile: Option<Profile>,
    case_timeout: Duration,
    started: OnceLock<Result<Started, String>>,
}

impl Session {
    pub(super) fn new(
        suites: Vec<Suite>,
        spec: TargetSpec,
        profile: Option<Profile>,
        case_timeout: Duration,
    ) -> Result<Session, TrialsError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(TrialsError::Runtime)?;
        Ok(Session {
            runtime,
            suites,
            spec,
            profile,
            case_timeout,
            started: OnceLock::new(),
        })
    }

    async fn start(&self) -> Result<Started, String> {
        let mut target = sut::start(&self.spec).await.map_err(|e| e.to_string())?;
        let mut suites = self.suites.clone();
        if let Some(profile) = &self.profile {
            // A name from MQTT_CONFORMANCE_BROKER_NAME wins over the profile's.
            let explicit = !matches!(target.name.as_str(), "external" | "reference");
            target.use_profile(profile.clone(), explicit);
            target.profile.add_deviations(&mut suites, &target.name);
        }
        let mut options = RunOptions::new(self.case_timeout);
        // libtest runs the trials in parallel, one case each.
        options.jobs = 1;
        let prepared =
            run::prepare(&target, &self.spec, &suites, &Selection::default(), options).await;
        let Prepared { plan, cfg } = match prepared {
            Ok(p) => p,
            Err(e) => {
                target.shutdown().await;
                return Err(e.to_string());
            }
        };
        let runs = plan
            .into_iter()
            .map(|p| (trial_name(&p.suite, &p.case.scenario.name, p.version), p))
            .collect();
        Ok(Started {
            target: Mutex::new(Some(target)),
            runs,
            cfg,
        })
    }

    /// Run the case named `name` (a [`trial_name`]); an error says why it could not run at
    /// all (the broker did not start or answer, or no such case).
    pub fn run(&self, name: &str) -> Result<CaseResult, String> {
        let started = self
            .started
            .get_or_init(|| self.runtime.block_on(self.start()))
            .as_ref()
            .map_err(|e| format!("cannot reach the broker under test: {e}"))?;
        let planned = started
            .runs
            .get(name)
            .ok_or_else(|| format!("no case named {name} in the plan"))?
            .clone();
        let results =
            self.runtime
                .block_on(run::execute(vec![planned], started.cfg.clone(), |_| {}));
        results
            .into_iter()
            .next()
            .ok_or_else(|| format!("{name} produced no result"))
    }

    /// Stop the bundled broker (if one was started).
    pub fn shutdown(&self) {
        let Some(Ok(started)) = self.started.get() else {
            return;
        };
        let target = match started.target.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(target) = target {
            self.runtime.block_on(target.shutdown());
        }
    }
}

//! The setup every run shares, `mqtt-conformance run` and the libtest trials alike: probe the
//! started broker, plan the selected cases against what it supports, and say how to execute
//! them. One copy, so the two ways of running the suites cannot drift apart.

use std::time::Duration;

use reference_broker::client::TransportOptions;

use super::link::SharedInjector;
use super::{plan, PlannedRun, RunConfig, Selection};
use crate::suite::Suite;
use crate::sut::{self, RestartSupport, RunningTarget, TargetError, TargetSpec};

/// Cases at once by default: they mostly wait on the network (the bundled run spends about
/// 1.7 s of CPU in 10 s at 8 per core), so 12 per core.
pub fn default_jobs() -> usize {
    12 * std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// How to execute a run, apart from what the broker decides (its URL, name, capabilities).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Cases at once.
    pub jobs: usize,
    /// Time budget of one case execution.
    pub case_timeout: Duration,
    /// Stop starting cases after the first failure.
    pub fail_fast: bool,
    /// Executions per case.
    pub repeat: u32,
    /// How clients (the probe's included) connect.
    pub transport: TransportOptions,
    /// Proxies for the fault steps.
    pub faults: SharedInjector,
}

impl RunOptions {
    /// One execution per case, [`default_jobs`] at once, a 5 s connect timeout and the
    /// embedded fault engine.
    pub fn new(case_timeout: Duration) -> RunOptions {
        RunOptions {
            jobs: default_jobs(),
            case_timeout,
            fail_fast: false,
            repeat: 1,
            transport: TransportOptions {
                connect_timeout: Some(Duration::from_secs(5)),
                ..TransportOptions::default()
            },
            faults: SharedInjector::embedded(),
        }
    }
}

/// The plan of a run against a probed broker, and how to execute it.
#[derive(Debug)]
pub struct Prepared {
    /// The selected runs, with the broker's missing features turned into skips.
    pub plan: Vec<PlannedRun>,
    /// What [`super::execute`] needs.
    pub cfg: RunConfig,
}

/// Probe `target` (started from `spec`), plan `selection` of `suites` against what it
/// supports and build the run's config. The caller still owns the target: on an error it
/// shuts it down.
pub async fn prepare(
    target: &RunningTarget,
    spec: &TargetSpec,
    suites: &[Suite],
    selection: &Selection,
    options: RunOptions,
) -> Result<Prepared, TargetError> {
    let run_id = super::new_run_id();
    let (caps, _) = sut::probe(target, &options.transport, &run_id).await?;
    let plan = plan(suites, selection, Some(&caps), &target.name);
    let cfg = RunConfig {
        fail_fast: options.fail_fast,
        repeat: options.repeat,
        run_id,
        display_url: format!("{} ({})", target.display_url(), target.name),
        credentials: target.credentials.clone(),
        transport: options.transport,
        faults: Some(options.faults),
        // Only the in-process reference broker can be restarted by a case.
        restart: matches!(spec, TargetSpec::Reference).then(RestartSupport::persistent),
        topic_root: target.profile.acl.topic_root.clone(),
        ..RunConfig::new(&target.url, options.jobs, options.case_timeout)
    };
    Ok(Prepared { plan, cfg })
}

//! `run`: load and select the cases, start or reach the broker, probe it, run the plan and
//! write the reports; Ctrl-C ends with the partial reports.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mqtt_conformance::exit;
use mqtt_conformance::fault;
use mqtt_conformance::profile::Profile;
use mqtt_conformance::report::{
    console::{ConsoleReporter, ConsoleStyle},
    html::HtmlReporter,
    json::JsonReporter,
    junit::JunitReporter,
    Reporters,
};
use mqtt_conformance::run::link::SharedInjector;
use mqtt_conformance::run::{self, CaseResult, Prepared, RunEvent, RunOptions, Selection};
use mqtt_conformance::scenario::Version;
use mqtt_conformance::sut::{self, TargetSpec};

use super::args::RunArgs;
use crate::load_suites;

/// The fault injector of a run: a real Toxiproxy at `url` (`http://host:8474`), or the
/// embedded engine.
async fn fault_injector(url: Option<&str>) -> anyhow::Result<SharedInjector> {
    let Some(url) = url else {
        return Ok(SharedInjector::embedded());
    };
    let authority = url
        .strip_prefix("http://")
        .unwrap_or(url)
        .trim_end_matches('/');
    if authority.contains('/') || url.starts_with("https://") {
        anyhow::bail!("--toxiproxy {url:?}: expected http://host:port");
    }
    let api = tokio::net::lookup_host(authority)
        .await
        .with_context(|| format!("--toxiproxy {url:?}: cannot resolve {authority}"))?
        .next()
        .with_context(|| format!("--toxiproxy {url:?}: {authority} resolves to nothing"))?;
    // An unreachable proxy is our problem, not the broker's: say so before any case runs.
    match tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(api)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            anyhow::bail!("--toxiproxy {url:?}: cannot reach the Toxiproxy API at {api}: {e}")
        }
        Err(_) => anyhow::bail!("--toxiproxy {url:?}: the Toxiproxy API at {api} does not answer"),
    }
    Ok(SharedInjector(Arc::new(fault::ToxiproxyInjector::new(api))))
}

/// Why the runs a Ctrl-C cut short were not run.
const INTERRUPTED: &str = "interrupted by Ctrl-C";

/// The `run` subcommand.
pub(crate) async fn run_suites(
    root: &Path,
    toxiproxy: Option<&str>,
    args: RunArgs,
) -> anyhow::Result<ExitCode> {
    // Listening from the start, so that a Ctrl-C at any time ends here, not in the default
    // handler (which would write nothing).
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let faults = fault_injector(toxiproxy).await?;
    let (mut suites, invalid) = load_suites(root, &args.suite)?;
    let profile = run_profile(&args, root)?;
    if let Some(name) = &args.broker_name {
        check_broker_name(root, name, profile.as_ref())?;
    }
    let only = if args.rerun_failed {
        let failed = last_failures(&args.json_report)?;
        if failed.is_empty() {
            println!(
                "no failures in {}: nothing to re-run",
                args.json_report.display()
            );
            return Ok(ExitCode::from(exit::SUCCESS));
        }
        Some(failed)
    } else {
        None
    };
    let selection = Selection {
        filter: args.filter.clone(),
        tags: args.tags.clone(),
        protocol: args.protocol,
        exclude: args.exclude.clone(),
        only,
    };
    // Nothing selected is a mistake (a typo in --filter), not a pass: say so before starting
    // a broker.
    if run::plan(&suites, &selection, None, "").is_empty() {
        anyhow::bail!("nothing selected: {}", describe(&args));
    }
    let mut reporters = Reporters::default();
    let mut written = Vec::new();
    if !args.no_junit {
        reporters.push(Box::new(JunitReporter::create(args.junit.clone())?));
        written.push(args.junit.clone());
    }
    reporters.push(Box::new(JsonReporter::new(json_file(&args.json_report)?)));
    written.push(args.json_report.clone());
    if !args.no_html {
        let path = args.html.clone().unwrap_or_else(|| {
            args.junit
                .parent()
                .unwrap_or(Path::new("."))
                .join("report.html")
        });
        reporters.push(Box::new(HtmlReporter::new(path.clone())));
        written.push(path);
    }
    if args.json {
        reporters.push(Box::new(JsonReporter::new(std::io::stdout())));
    } else {
        use std::io::IsTerminal;
        let style = ConsoleStyle {
            progress: !args.quiet && std::io::stderr().is_terminal(),
            quiet: args.quiet,
            color: args.color.enabled(),
        };
        reporters.push(Box::new(ConsoleReporter::new(std::io::stdout(), style)));
    }
    let spec = target_spec(&args)?;
    let started_here = !matches!(spec, TargetSpec::External { .. });
    let mut target = tokio::select! {
        biased;
        _ = &mut ctrl_c => {
            eprintln!("interrupted while starting the broker");
            return Ok(ExitCode::from(exit::INTERRUPTED));
        }
        started = sut::start(&spec) => started?,
    };
    if let (false, Some(name)) = (
        matches!(spec, TargetSpec::External { .. }),
        &args.broker_name,
    ) {
        target.name = name.clone();
    }
    if let Some(profile) = profile {
        target.use_profile(profile, args.broker_name.is_some());
        target.profile.add_deviations(&mut suites, &target.name);
    }
    let mut options = RunOptions::new(args.timeout);
    options.transport.insecure_tls = args.insecure;
    options.transport.ca_file = args.ca_file.clone();
    options.jobs = args.jobs.unwrap_or(options.jobs);
    options.fail_fast = args.fail_fast;
    options.repeat = args.repeat;
    options.faults = faults;
    let Prepared { plan, cfg } =
        match run::prepare(&target, &spec, &suites, &selection, options).await {
            Ok(p) => p,
            Err(e) => {
                target.shutdown().await;
                return Err(e.into());
            }
        };
    // A broker that answers no CONNECT at all (silent, closing, refusing every version) would
    // skip every case and exit 0 with nothing tested: that is an error, with the probe's words.
    if !plan.is_empty() && plan.iter().all(|r| r.skip.is_some()) {
        let mut reasons: Vec<&str> = Vec::new();
        for r in plan.iter().filter_map(|r| r.skip.as_deref()) {
            if !reasons.contains(&r) {
                reasons.push(r);
            }
        }
        target.shutdown().await;
        anyhow::bail!(
            "nothing can run on {}: every selected case is skipped ({})",
            cfg.display_url,
            reasons
                .iter()
                .take(3)
                .copied()
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    // What the reports list, as not run, for the runs a Ctrl-C leaves unfinished.
    let unfinished: Vec<CaseResult> = plan
        .iter()
        .map(|r| run::not_run_result(r, INTERRUPTED))
        .collect();
    let clock = std::time::Instant::now();
    let mut finished: Vec<CaseResult> = Vec::new();
    let mut incomplete = false;
    let interrupted = tokio::select! {
        biased;
        _ = &mut ctrl_c => true,
        _ = run::execute(plan, cfg, |e| {
            match e {
                RunEvent::CaseFinished(r) => finished.push((**r).clone()),
                RunEvent::Incomplete { .. } => incomplete = true,
                _ => {}
            }
            reporters.event(e);
        }) => false,
    };
    if interrupted {
        // The runs that finished are reported with their verdicts, the others as not run
        // ("interrupted"), and every report says the run is incomplete.
        let done: std::collections::HashSet<usize> = finished.iter().map(|r| r.index).collect();
        finished.extend(unfinished.into_iter().filter(|r| !done.contains(&r.index)));
        finished.sort_by_key(|r| r.index);
        reporters.event(&RunEvent::Incomplete {
            reason: INTERRUPTED.into(),
        });
        reporters.event(&RunEvent::Finished {
            results: finished.clone(),
            elapsed: clock.elapsed(),
        });
    }
    target.shutdown().await;
    let written_ok = reporters.finish();
    std::io::stdout().flush().ok();
    written_ok?;
    let paths: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    if args.json {
        eprintln!("reports: {}", paths.join(", "));
    } else {
        println!("reports: {}", paths.join(", "));
    }
    if interrupted {
        eprintln!(
            "interrupted{}",
            if started_here {
                "; the broker this run started was stopped"
            } else {
                ""
            }
        );
    }
    if invalid > 0 {
        eprintln!("{invalid} invalid scenario file(s) were not run");
    }
    Ok(exit::for_run(exit::RunEnd {
        failures: finished.iter().any(|r| {
            if args.strict {
                r.fails_strict()
            } else {
                r.verdict.is_failure()
            }
        }),
        invalid_files: invalid > 0,
        incomplete,
        interrupted,
    }))
}

/// `--broker-name` must name a broker that some manifest documents deviations for, a
/// container preset, a default name, or go with a profile that documents deviations: a
/// misspelt name would silently excuse nothing.
fn check_broker_name(root: &Path, name: &str, profile: Option<&Profile>) -> anyhow::Result<()> {
    // A profile's deviations apply under the name the run uses.
    if profile.is_some_and(|p| !p.deviations.is_empty() || p.broker.as_deref() == Some(name)) {
        return Ok(());
    }
    let mut known = mqtt_conformance::suite::deviation_brokers(root)?;
    known.extend(sut::presets::NAMES.iter().map(|n| n.to_string()));
    known.extend(["reference".to_string(), "external".to_string()]);
    if known.contains(name) {
        return Ok(());
    }
    anyhow::bail!(
        "--broker-name {name:?} names no broker with documented deviations and no preset; known names: {}",
        known.into_iter().collect::<Vec<_>>().join(", ")
    )
}

/// The profile of the run: `--profile FILE`, else the shipped one of a `--container` preset.
/// Its deviations must fit the cases they name (checked against every suite under `root`).
fn run_profile(args: &RunArgs, root: &Path) -> anyhow::Result<Option<Profile>> {
    if let Some(path) = &args.profile {
        let profile = Profile::load(path)?;
        profile.check_deviations(path, root)?;
        return Ok(Some(profile));
    }
    let preset = args
        .container
        .as_deref()
        .map(|c| c.split_once(':').map_or(c, |(name, _)| name));
    let Some(name) = preset else {
        return Ok(None);
    };
    Ok(match mqtt_conformance::profile::preset(name) {
        Some(p) => {
            let profile = p?;
            let file = Path::new("profiles").join(format!("{name}.toml"));
            profile.check_deviations(&file, root)?;
            Some(profile)
        }
        None => None,
    })
}

/// The broker the run is about, from `--broker`, `--container` or `--image`.
fn target_spec(args: &RunArgs) -> anyhow::Result<TargetSpec> {
    Ok(match (&args.broker, &args.container) {
        (Some(url), _) => {
            // A malformed URL is bad input, not an unreachable broker.
            reference_broker::client::parse_url(url).map_err(|e| {
                anyhow::anyhow!("--broker: {e} (accepted: mqtt://, mqtts://, ws://, wss://, tcp://, ssl://, tls://, or host:port)")
            })?;
            TargetSpec::External {
                url: url.clone(),
                name: args
                    .broker_name
                    .clone()
                    .unwrap_or_else(|| "external".into()),
            }
        }
        (None, Some(name)) => {
            TargetSpec::Container(sut::presets::preset(name).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown container preset {name:?} (one of {}; or --image IMAGE --port PORT)",
                    sut::presets::NAMES.join(", ")
                )
            })?)
        }
        (None, None) => match &args.image {
            Some(image) => {
                TargetSpec::Container(sut::container::ContainerSpec::image(image, args.port))
            }
            None => TargetSpec::Reference,
        },
    })
}

/// The selection flags, for a "nothing selected" message.
fn describe(args: &RunArgs) -> String {
    let mut parts = Vec::new();
    if !args.suite.is_empty() {
        parts.push(format!("--suite {}", args.suite.join(",")));
    }
    if let Some(f) = &args.filter {
        parts.push(format!("--filter {f:?}"));
    }
    if !args.tags.is_empty() {
        parts.push(format!("--tags {}", args.tags.join(",")));
    }
    if let Some(p) = args.protocol {
        parts.push(format!("--protocol {p}"));
    }
    for e in &args.exclude {
        parts.push(format!("--exclude {e:?}"));
    }
    if args.rerun_failed {
        parts.push("--rerun-failed".into());
    }
    if parts.is_empty() {
        "the suites hold no case".into()
    } else {
        format!("no case matches {} (see `list`)", parts.join(" "))
    }
}

/// The JSON report file, created (with its directory) before the run.
fn json_file(path: &Path) -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(std::io::BufWriter::new(file))
}

/// The (case, version) runs that failed, timed out or were flaky in the JSON report at `path`.
pub(crate) fn last_failures(path: &Path) -> anyhow::Result<Vec<(String, Version)>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "--rerun-failed reads the last JSON report, {}; run once without it first",
            path.display()
        )
    })?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON report", path.display()))?;
    let results = doc["results"]
        .as_array()
        .with_context(|| format!("{} has no results", path.display()))?;
    let mut out = Vec::new();
    for r in results {
        let failed = matches!(
            r["verdict"].as_str(),
            Some("fail" | "timeout" | "flaky" | "error")
        );
        let (Some(case), Some(version)) = (
            r["case"].as_str(),
            r["version"].as_str().and_then(Version::parse),
        ) else {
            continue;
        };
        if failed && !out.iter().any(|(c, v)| c == case && *v == version) {
            out.push((case.to_string(), version));
        }
    }
    Ok(out)
}

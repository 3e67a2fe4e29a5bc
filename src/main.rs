//! The `mqtt-conformance` command line: parse the arguments, call the library, map the
//! outcome to an exit code (see `exit`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use mqtt_conformance::fault;
use mqtt_conformance::report::{
    compare, console::ConsoleReporter, html::HtmlReporter, json::JsonReporter,
    junit::JunitReporter, Reporters,
};
use mqtt_conformance::run::link::SharedInjector;
use mqtt_conformance::run::{self, RunConfig, Selection};
use mqtt_conformance::scenario::{self, Dur, Version};
use mqtt_conformance::suite::{self, Suite};
use mqtt_conformance::sut::{self, RestartSupport, TargetSpec};
use mqtt_conformance::{coverage, exit};
use reference_broker::client::TransportOptions;

/// Conformance test suite for MQTT brokers (3.1.1 and 5.0).
#[derive(Parser)]
#[command(name = "mqtt-conformance", version, about)]
struct Cli {
    /// Project root holding `suites/` and `scenarios/`.
    #[arg(long, global = true, default_value = ".")]
    root: PathBuf,
    /// A real Toxiproxy's API (`http://host:8474`) for the fault steps, instead of the
    /// embedded proxy engine.
    #[arg(long, global = true, value_name = "URL")]
    toxiproxy: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run suites against a broker (default: every suite, in-process reference broker).
    Run(RunArgs),
    /// List suites and cases, or the spec coverage.
    List(ListArgs),
    /// Check scenario files (typed model and suites/schema.json) and suite manifests.
    Validate {
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of scenario files (as committed in suites/schema.json).
    Schema,
    /// Run the embedded Toxiproxy-compatible server standalone (HTTP API on --listen) until
    /// Ctrl-C.
    Toxiproxy {
        /// Address of the HTTP API.
        #[arg(long, default_value = "127.0.0.1:8474")]
        listen: std::net::SocketAddr,
    },
    /// Load a broker: N publishers, M subscribers; throughput, losses, latency, memory.
    Bench(mqtt_conformance::bench::BenchArgs),
    /// Compare runs of several brokers (JSON reports of `run --json`; `LABEL=PATH` names a
    /// broker, reports with one label are merged): totals per suite, and every case run whose
    /// verdicts differ.
    Compare(CompareArgs),
    /// Publish messages by hand (like mosquitto_pub).
    Pub(mqtt_conformance::pubsub::PubArgs),
    /// Subscribe and print messages by hand (like mosquitto_sub).
    Sub(mqtt_conformance::pubsub::SubArgs),
    /// Build a local `FROM scratch` broker image from a binary and the libraries `ldd` lists
    /// (nothing is pulled), for `run --image`.
    BuildImage(BuildImageArgs),
}

#[derive(Args)]
struct CompareArgs {
    /// JSON reports, `PATH` or `LABEL=PATH`.
    #[arg(required = true)]
    runs: Vec<String>,
    /// Also write the HTML matrix (brokers by case and by statement) to PATH.
    #[arg(long, value_name = "PATH")]
    html: Option<PathBuf>,
    /// Print the Markdown table (the README compatibility table) instead of text.
    #[arg(long)]
    markdown: bool,
}

#[derive(Args)]
struct BuildImageArgs {
    /// The broker executable.
    #[arg(long)]
    binary: PathBuf,
    /// Image reference to tag, IMAGE:TAG.
    #[arg(long)]
    tag: String,
    /// Port the image exposes.
    #[arg(long, default_value_t = 1883)]
    port: u16,
    /// Arguments of the broker in the image.
    #[arg(last = true)]
    args: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    /// Suite name or manifest path (repeatable); default: every suite in suites/.
    #[arg(long)]
    suite: Vec<String>,
    /// External broker URL: `mqtt://[user:pass@]host:port`, `mqtts://`, `ws://`, `wss://`.
    #[arg(long, conflicts_with = "container")]
    broker: Option<String>,
    /// Broker name for the deviations of the suites (default: reference, or external).
    #[arg(long)]
    broker_name: Option<String>,
    /// A broker in a container, started with testcontainers: a preset NAME[:TAG] (emqx,
    /// mosquitto, hivemq, nanomq, vernemq). Needs a Docker daemon; removed after the run.
    #[arg(long, conflicts_with = "image")]
    container: Option<String>,
    /// Any broker image IMAGE[:TAG], started like --container, MQTT on --port.
    #[arg(long, conflicts_with = "broker")]
    image: Option<String>,
    /// Container port of the MQTT listener of --image.
    #[arg(long, default_value_t = 1883, requires = "image")]
    port: u16,
    /// Cases run at once (default: 8 per core; cases mostly wait on the network).
    #[arg(long)]
    jobs: Option<usize>,
    /// Only cases whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Only cases with one of these tags (comma-separated).
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Only this protocol version.
    #[arg(long, value_parser = parse_version)]
    protocol: Option<Version>,
    /// Stop starting cases after the first failure.
    #[arg(long)]
    fail_fast: bool,
    /// Run each case N times; mixed results are reported as flaky.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeat: u32,
    /// Time budget of one case execution.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// JUnit XML report path.
    #[arg(long, default_value = "reports/junit.xml")]
    junit: PathBuf,
    /// Write no JUnit report.
    #[arg(long, conflicts_with = "junit")]
    no_junit: bool,
    /// Self-contained HTML report path (default: report.html beside the JUnit file).
    #[arg(long, value_name = "PATH")]
    html: Option<PathBuf>,
    /// Write no HTML report.
    #[arg(long, conflicts_with = "html")]
    no_html: bool,
    /// Print the results as JSON on stdout instead of the console report.
    #[arg(long)]
    json: bool,
    /// Skip TLS certificate verification.
    #[arg(long)]
    insecure: bool,
    /// CA certificate (PEM) to trust for mqtts/wss.
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

#[derive(Args)]
struct ListArgs {
    /// Show which normative statements the scenarios cover, per spec section.
    #[arg(long)]
    coverage: bool,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

fn parse_version(s: &str) -> Result<Version, String> {
    Version::parse(s).ok_or_else(|| format!("{s:?} is not a protocol version (3.1.1 or 5)"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    Dur::parse(s)
        .map(|d| d.0)
        .ok_or_else(|| format!("{s:?} is not a duration like 10s or 500ms"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::from(exit::SUCCESS);
            }
            eprintln!("error: {e:#}");
            ExitCode::from(exit::USAGE)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => {
            async_runtime()?.block_on(run_suites(&cli.root, cli.toxiproxy.as_deref(), args))
        }
        Command::Toxiproxy { listen } => async_runtime()?.block_on(async {
            let (addr, server) = fault::serve(listen)
                .await
                .with_context(|| format!("cannot serve the Toxiproxy API on {listen}"))?;
            println!("toxiproxy API listening on http://{addr} (Ctrl-C stops it)");
            std::io::stdout().flush().ok();
            server.run_until(tokio::signal::ctrl_c()).await?;
            anyhow::Ok(ExitCode::from(exit::SUCCESS))
        }),
        Command::List(args) => list(&cli.root, &args),
        Command::Validate { paths } => validate(&cli.root, &paths),
        Command::BuildImage(args) => {
            async_runtime()?.block_on(sut::local_image::build(
                &args.binary,
                &args.args,
                args.port,
                &args.tag,
            ))?;
            println!("built {}", args.tag);
            Ok(ExitCode::from(exit::SUCCESS))
        }
        Command::Schema => {
            std::io::stdout().write_all(scenario::schema::json_schema_text().as_bytes())?;
            Ok(ExitCode::from(exit::SUCCESS))
        }
        Command::Bench(args) => Ok(mqtt_conformance::bench::run_cli(args)?),
        Command::Compare(args) => compare_runs(&args),
        Command::Pub(args) => {
            async_runtime()?.block_on(mqtt_conformance::pubsub::run_pub(args))?;
            Ok(ExitCode::from(exit::SUCCESS))
        }
        Command::Sub(args) => {
            async_runtime()?.block_on(mqtt_conformance::pubsub::run_sub(args))?;
            Ok(ExitCode::from(exit::SUCCESS))
        }
    }
}

/// The multi-threaded tokio runtime the async subcommands run on.
fn async_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Load the suites; invalid scenario files are printed and remembered.
fn load_suites(root: &Path, wanted: &[String]) -> anyhow::Result<(Vec<Suite>, usize)> {
    let files = suite::resolve(root, wanted)?;
    if files.is_empty() {
        anyhow::bail!("no suite manifests in {}", root.join("suites").display());
    }
    let mut suites = Vec::new();
    let mut invalid = 0;
    for f in files {
        let (s, errors) = suite::load(&f, root)?;
        for e in &errors {
            eprintln!("invalid scenario: {e}");
        }
        invalid += errors.len();
        suites.push(s);
    }
    Ok((suites, invalid))
}

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
    Ok(SharedInjector(Arc::new(fault::ToxiproxyInjector::new(api))))
}

async fn run_suites(
    root: &Path,
    toxiproxy: Option<&str>,
    args: RunArgs,
) -> anyhow::Result<ExitCode> {
    let faults = fault_injector(toxiproxy).await?;
    let (suites, invalid) = load_suites(root, &args.suite)?;
    let spec = match (&args.broker, &args.container) {
        (Some(url), _) => TargetSpec::External {
            url: url.clone(),
            name: args
                .broker_name
                .clone()
                .unwrap_or_else(|| "external".into()),
        },
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
    };
    let mut target = tokio::select! {
        started = sut::start(&spec) => started?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted while starting the broker"),
    };
    if let (TargetSpec::Container(_), Some(name)) = (&spec, &args.broker_name) {
        target.name = name.clone();
    }
    if let (TargetSpec::Reference, Some(name)) = (&spec, &args.broker_name) {
        target.name = name.clone();
    }
    let transport = TransportOptions {
        insecure_tls: args.insecure,
        ca_file: args.ca_file.clone(),
        connect_timeout: Some(Duration::from_secs(5)),
        ..TransportOptions::default()
    };
    let run_id = run::new_run_id();
    let caps = match sut::probe(&target, &transport, &run_id).await {
        Ok(c) => c,
        Err(e) => {
            target.shutdown().await;
            return Err(e.into());
        }
    };
    let selection = Selection {
        filter: args.filter.clone(),
        tags: args.tags.clone(),
        protocol: args.protocol,
    };
    let plan = run::plan(&suites, &selection, Some(&caps), &target.name);
    let jobs = args
        .jobs
        .unwrap_or_else(|| 8 * std::thread::available_parallelism().map_or(2, |n| n.get()));
    let cfg = RunConfig {
        jobs,
        case_timeout: args.timeout,
        fail_fast: args.fail_fast,
        repeat: args.repeat,
        run_id,
        url: target.url.clone(),
        display_url: format!("{} ({})", target.display_url(), target.name),
        credentials: target.credentials.clone(),
        transport,
        faults: Some(faults),
        // Only the in-process reference broker can be restarted by a case.
        restart: matches!(spec, TargetSpec::Reference).then(RestartSupport::persistent),
    };
    let mut reporters = Reporters::default();
    if args.json {
        reporters.push(Box::new(JsonReporter::new(std::io::stdout())));
    } else {
        reporters.push(Box::new(ConsoleReporter::new(std::io::stdout(), true)));
    }
    if !args.no_junit {
        reporters.push(Box::new(JunitReporter::new(args.junit.clone())));
    }
    if !args.no_html {
        let path = args.html.clone().unwrap_or_else(|| {
            args.junit
                .parent()
                .unwrap_or(Path::new("."))
                .join("report.html")
        });
        reporters.push(Box::new(HtmlReporter::new(path)));
    }
    let results = tokio::select! {
        results = run::execute(plan, cfg, |e| reporters.event(e)) => results,
        _ = tokio::signal::ctrl_c() => {
            target.shutdown().await;
            anyhow::bail!("interrupted; the broker was stopped");
        }
    };
    target.shutdown().await;
    reporters.finish()?;
    std::io::stdout().flush().ok();
    let failed = results.iter().any(|r| r.verdict.is_failure());
    if invalid > 0 {
        eprintln!("{invalid} invalid scenario file(s) were not run");
    }
    Ok(exit::for_run(failed, invalid > 0))
}

fn compare_runs(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    let columns = compare::load(&args.runs)?;
    if let Some(path) = &args.html {
        mqtt_conformance::report::html::write_file(path, &compare::html(&columns))?;
    }
    let text = if args.markdown {
        compare::markdown(&columns)
    } else {
        compare::text(&columns)
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(ExitCode::from(exit::SUCCESS))
}

fn list(root: &Path, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if args.coverage {
        let mut cases = Vec::new();
        let mut invalid = 0;
        for f in suite::walk(&root.join("scenarios")) {
            if !f.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                continue;
            }
            match scenario::load_file(&f) {
                Ok(c) => cases.extend(c),
                Err(e) => {
                    eprintln!("invalid scenario: {e}");
                    invalid += 1;
                }
            }
        }
        let cov = coverage::compute(root, &cases)?;
        if args.json {
            serde_json::to_writer_pretty(&mut out, &cov)?;
            writeln!(out)?;
        } else {
            for (version, c) in &cov {
                writeln!(
                    out,
                    "MQTT {version}: {} statements, {} covered, {} explained as unobservable, {} open",
                    c.total,
                    c.covered,
                    c.explained,
                    c.uncovered.len()
                )?;
                let mut sections: Vec<_> = c.sections.iter().collect();
                sections.sort_by_key(|(name, _)| coverage::section_key(name));
                for (section, s) in sections {
                    writeln!(
                        out,
                        "  {section:<6} {:>3} total {:>3} covered {:>3} explained",
                        s.total, s.covered, s.explained
                    )?;
                }
                if !c.uncovered.is_empty() {
                    writeln!(out, "  open: {}", c.uncovered.join(", "))?;
                }
                if !c.unknown.is_empty() {
                    writeln!(
                        out,
                        "  cited but not statements of {version}: {}",
                        c.unknown.join(", ")
                    )?;
                }
            }
        }
        return Ok(ExitCode::from(if invalid > 0 {
            exit::USAGE
        } else {
            exit::SUCCESS
        }));
    }
    let (suites, invalid) = load_suites(root, &[])?;
    if args.json {
        let doc: Vec<serde_json::Value> = suites
            .iter()
            .map(|s| {
                serde_json::json!({
                    "suite": s.manifest.name,
                    "cases": s.cases.iter().map(|c| serde_json::json!({
                        "name": c.scenario.name,
                        "feature": c.feature,
                        "file": c.file,
                        "versions": c.scenario.versions,
                        "tags": c.scenario.tags,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        for s in &suites {
            writeln!(out, "{} ({} cases)", s.manifest.name, s.cases.len())?;
            for c in &s.cases {
                let versions: Vec<&str> = c
                    .scenario
                    .versions
                    .iter()
                    .filter(|v| s.runs_version(**v))
                    .map(|v| v.label())
                    .collect();
                if versions.is_empty() {
                    continue;
                }
                writeln!(
                    out,
                    "  {:<40} [{}] {}",
                    c.scenario.name,
                    versions.join(", "),
                    c.file.display()
                )?;
            }
        }
    }
    Ok(ExitCode::from(if invalid > 0 {
        exit::USAGE
    } else {
        exit::SUCCESS
    }))
}

fn validate(root: &Path, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(
                suite::walk(p)
                    .into_iter()
                    .filter(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml")),
            );
        } else {
            files.push(p.clone());
        }
    }
    let schema_path = root.join("suites/schema.json");
    let schema = match std::fs::read_to_string(&schema_path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", schema_path.display()))?,
        Err(_) => scenario::schema::json_schema(),
    };
    let validator = scenario::schema::SchemaValidator::new(&schema).map_err(|e| {
        anyhow::anyhow!("{} is not a valid JSON Schema: {e}", schema_path.display())
    })?;
    let mut bad = 0;
    for f in &files {
        let is_manifest = f
            .parent()
            .and_then(|d| d.file_name())
            .is_some_and(|n| n == "suites");
        let result = if f.file_name().is_some_and(|n| n == "unobservable.yaml") {
            continue;
        } else if is_manifest {
            suite::load(f, root)
                .map_err(|e| e.to_string())
                .and_then(|(s, errs)| match errs.first() {
                    Some(e) => Err(e.to_string()),
                    None => Ok(format!(
                        "suite {} ({} cases)",
                        s.manifest.name,
                        s.cases.len()
                    )),
                })
        } else {
            scenario::load_file(f)
                .map_err(|e| e.to_string())
                .and_then(|cases| {
                    let text = std::fs::read_to_string(f).unwrap_or_default();
                    let violations = validator.check(&text, f);
                    if violations.is_empty() {
                        Ok(format!("{} case(s)", cases.len()))
                    } else {
                        Err(violations
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("\n"))
                    }
                })
        };
        match result {
            Ok(what) => println!("ok {}: {what}", f.display()),
            Err(e) => {
                eprintln!("{e}");
                bad += 1;
            }
        }
    }
    if bad > 0 {
        eprintln!("{bad} of {} file(s) invalid", files.len());
        return Ok(ExitCode::from(exit::USAGE));
    }
    Ok(ExitCode::from(exit::SUCCESS))
}

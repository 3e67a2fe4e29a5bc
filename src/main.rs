//! The `mqtt-conformance` command line: parse the arguments, call the library, map the
//! outcome to an exit code (see `exit`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand};
use mqtt_conformance::fault;
use mqtt_conformance::report::{
    compare,
    console::{ConsoleReporter, ConsoleStyle},
    html::HtmlReporter,
    json::JsonReporter,
    junit::JunitReporter,
    Reporters,
};
use mqtt_conformance::run::link::SharedInjector;
use mqtt_conformance::run::{self, CaseResult, RunConfig, RunEvent, Selection};
use mqtt_conformance::scenario::{self, Dur, Version};
use mqtt_conformance::suite::{self, Suite};
use mqtt_conformance::sut::{self, RestartSupport, TargetSpec};
use mqtt_conformance::{coverage, exit, selftest};
use reference_broker::client::TransportOptions;

/// Conformance test suite for MQTT brokers (3.1.1 and 5.0).
#[derive(Parser)]
#[command(name = "mqtt-conformance", version, about)]
struct Cli {
    /// Project root holding `suites/` and `scenarios/` (default: the current directory when it
    /// has `suites/`, else the suites that ship with this binary).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
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
    /// Learn what a broker accepts and announces (each MQTT version, the MQTT 5 CONNACK,
    /// credentials) and print it as a table.
    Probe(ProbeArgs),
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
    /// Print a shell completion script, generated from the same model as --help.
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from the same model as --help
    /// (`mqtt-conformance man > mqtt-conformance.1`).
    Man,
    /// Run the suites in-process against every broker variant (all must pass) and every
    /// deliberate defect (each must be caught): the suites' mutation score.
    Selftest(SelftestArgs),
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
struct SelftestArgs {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Only variants and defects whose name contains this (e.g. `defect:will`).
    #[arg(long)]
    filter: Option<String>,
    /// Brokers judged at once (default: 2 per core).
    #[arg(long)]
    subjects: Option<usize>,
    /// Cases at once per broker.
    #[arg(long, default_value_t = 6)]
    jobs: usize,
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
    /// Leave out cases whose name matches (a glob with `*`/`?`, else a substring); repeatable.
    #[arg(long, value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Only the runs that failed in the last JSON report (--json-report).
    #[arg(long)]
    rerun_failed: bool,
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
    /// JSON report path (read by --rerun-failed).
    #[arg(long, default_value = "reports/results.json")]
    json_report: PathBuf,
    /// Print the results as JSON on stdout instead of the console report.
    #[arg(long)]
    json: bool,
    /// Only failures and the totals on the console.
    #[arg(short, long)]
    quiet: bool,
    /// Colour the verdicts: auto (a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,
    /// Skip TLS certificate verification.
    #[arg(long)]
    insecure: bool,
    /// CA certificate (PEM) to trust for mqtts/wss.
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

/// When to colour the console.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to colour output going to stdout.
    fn enabled(self) -> bool {
        use std::io::IsTerminal;
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        }
    }
}

#[derive(Args)]
struct ProbeArgs {
    /// Broker URL: `mqtt://[user:pass@]host:port`, `mqtts://`, `ws://`, `wss://`.
    url: String,
    /// Print the findings as JSON.
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
            eprintln!("error: {}", error_text(&e));
            ExitCode::from(exit::USAGE)
        }
    }
}

/// The error and its causes, each said once: a cause whose text its parent already quotes
/// is not repeated (`Connection refused: Connection refused`).
fn error_text(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if parts.iter().any(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// The project root: `--root`, else the current directory when it has `suites/`, else the
/// checkout this binary was built from, else beside the executable (an installed copy with
/// `share/mqtt-conformance/`). Commands then work outside a checkout.
fn project_root(given: Option<PathBuf>) -> PathBuf {
    if let Some(root) = given {
        return root;
    }
    let has_suites = |d: &Path| d.join("suites").is_dir();
    if has_suites(Path::new(".")) {
        return PathBuf::from(".");
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if has_suites(&built) {
        return built;
    }
    let beside_exe = std::env::current_exe().ok().and_then(|exe| {
        exe.ancestors()
            .skip(1)
            .flat_map(|d| [d.to_path_buf(), d.join("share/mqtt-conformance")])
            .find(|d| has_suites(d))
    });
    beside_exe.unwrap_or_else(|| PathBuf::from("."))
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let root = project_root(cli.root);
    let cli = Cli {
        root: Some(root.clone()),
        ..cli
    };
    let root = root.as_path();
    match cli.command {
        Command::Run(args) => {
            async_runtime()?.block_on(run_suites(root, cli.toxiproxy.as_deref(), args))
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
        Command::List(args) => list(root, &args),
        Command::Probe(args) => async_runtime()?.block_on(probe(args)),
        Command::Validate { paths } => validate(root, &paths),
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
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(
                shell,
                &mut command,
                "mqtt-conformance",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::from(exit::SUCCESS))
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(ExitCode::from(exit::SUCCESS))
        }
        Command::Selftest(args) => async_runtime()?.block_on(selftest(root, args)),
        Command::Bench(args) => Ok(mqtt_conformance::bench::run_cli(args)?),
        Command::Compare(args) => compare_runs(&args),
        Command::Pub(args) => Ok(pubsub_exit(
            "pub",
            async_runtime()?.block_on(mqtt_conformance::pubsub::run_pub(args)),
        )),
        Command::Sub(args) => Ok(pubsub_exit(
            "sub",
            async_runtime()?.block_on(mqtt_conformance::pubsub::run_sub(args)),
        )),
    }
}

/// The exit code of `pub`/`sub`, with the error (reason codes by name) on stderr.
fn pubsub_exit(
    command: &str,
    result: Result<(), mqtt_conformance::pubsub::PubSubError>,
) -> ExitCode {
    match result {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err(e) => {
            let code = e.exit_code();
            eprintln!("{command}: {}", error_text(&anyhow::Error::new(e)));
            ExitCode::from(code)
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
    let files = suite::resolve(root, wanted).with_context(|| no_suites_hint(root))?;
    if files.is_empty() {
        anyhow::bail!(
            "no suite manifests in {} ({})",
            root.join("suites").display(),
            no_suites_hint(root)
        );
    }
    let mut suites = Vec::new();
    let mut invalid = 0;
    for f in files {
        let (s, errors) = suite::load(&f, root)?;
        for e in &errors {
            eprintln!("invalid scenario: {e}");
        }
        if s.cases.is_empty() && errors.is_empty() {
            anyhow::bail!(
                "suite {} ({}): its scenario globs match no file under {}",
                s.manifest.name,
                f.display(),
                root.join("scenarios").display()
            );
        }
        invalid += errors.len();
        suites.push(s);
    }
    Ok((suites, invalid))
}

/// Where suites are looked for, and how to point elsewhere.
fn no_suites_hint(root: &Path) -> String {
    format!(
        "looked in {}; give --root DIR, the directory holding suites/ and scenarios/",
        root.display()
    )
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

async fn run_suites(
    root: &Path,
    toxiproxy: Option<&str>,
    args: RunArgs,
) -> anyhow::Result<ExitCode> {
    // Listening from the start, so that a Ctrl-C at any time ends here, not in the default
    // handler (which would write nothing).
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let faults = fault_injector(toxiproxy).await?;
    let (suites, invalid) = load_suites(root, &args.suite)?;
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
    let transport = TransportOptions {
        insecure_tls: args.insecure,
        ca_file: args.ca_file.clone(),
        connect_timeout: Some(Duration::from_secs(5)),
        ..TransportOptions::default()
    };
    let run_id = run::new_run_id();
    let caps = match sut::probe(&target, &transport, &run_id).await {
        Ok((c, _)) => c,
        Err(e) => {
            target.shutdown().await;
            return Err(e.into());
        }
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
        // The runs that finished are reported; the others are simply absent, and every
        // report says the run is incomplete.
        finished.sort_by_key(|r| r.index);
        reporters.event(&RunEvent::Incomplete {
            reason: "interrupted by Ctrl-C".into(),
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
        failures: finished.iter().any(|r| r.verdict.is_failure()),
        invalid_files: invalid > 0,
        incomplete,
        interrupted,
    }))
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
fn last_failures(path: &Path) -> anyhow::Result<Vec<(String, Version)>> {
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
        let failed = matches!(r["verdict"].as_str(), Some("fail" | "timeout" | "flaky"));
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

async fn selftest(root: &Path, args: SelftestArgs) -> anyhow::Result<ExitCode> {
    let (suites, invalid) = load_suites(root, &[])?;
    if invalid > 0 {
        anyhow::bail!("{invalid} invalid scenario file(s): fix them before a selftest");
    }
    let mut opts = selftest::Options {
        jobs: args.jobs,
        filter: args.filter,
        ..selftest::Options::default()
    };
    if let Some(n) = args.subjects {
        opts.subjects_at_once = n;
    }
    let (results, elapsed) = selftest::run(&suites, &opts).await?;
    let summary = selftest::report::summarise(root, &suites, &results, elapsed)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        selftest::report::print(&mut out, &summary)?;
    }
    Ok(ExitCode::from(if summary.ok() {
        exit::SUCCESS
    } else {
        exit::FAILURES
    }))
}

/// The `probe` subcommand: discovery only, printed as a table (or JSON).
async fn probe(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let (url, credentials) = sut::split_credentials(&args.url);
    let transport = TransportOptions {
        insecure_tls: args.insecure,
        ca_file: args.ca_file.clone(),
        connect_timeout: Some(Duration::from_secs(5)),
        ..TransportOptions::default()
    };
    let run_id = run::new_run_id();
    let found = sut::probe::discover(&url, &transport, &run_id, credentials.as_ref()).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &found)?;
        writeln!(out)?;
    } else {
        writeln!(out, "probe of {}", found.url)?;
        let rows = found.rows();
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (what, finding) in rows {
            writeln!(out, "  {what:<width$}  {finding}")?;
        }
    }
    Ok(ExitCode::from(exit::SUCCESS))
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

/// A suite manifest: every invalid scenario it selects, and a selection that is empty.
fn validate_manifest(f: &Path, root: &Path) -> Result<String, Vec<String>> {
    let (s, errors) = suite::load(f, root).map_err(|e| vec![e.to_string()])?;
    if !errors.is_empty() {
        return Err(errors.iter().map(ToString::to_string).collect());
    }
    if s.cases.is_empty() {
        return Err(vec![format!(
            "{}: suite {} selects no case (its scenario globs match no file under {})",
            f.display(),
            s.manifest.name,
            root.join("scenarios").display()
        )]);
    }
    Ok(format!(
        "suite {} ({} cases)",
        s.manifest.name,
        s.cases.len()
    ))
}

/// A scenario file: the typed model's error, every schema violation, and every cited
/// statement ID that is not a statement of its version.
fn validate_scenario(
    f: &Path,
    validator: &scenario::schema::SchemaValidator,
) -> Result<String, Vec<String>> {
    let text = std::fs::read_to_string(f).map_err(|e| vec![format!("{}: {e}", f.display())])?;
    let mut errors: Vec<String> = Vec::new();
    let loaded = scenario::load_file(f);
    if let Err(e) = &loaded {
        errors.push(e.to_string());
    }
    // Generated cases are checked as generated: the schema sees each expanded document.
    let parts = scenario::matrix::expand(&text, f).unwrap_or_default();
    for v in parts.iter().flat_map(|p| validator.check(&p.text, f)) {
        let v = v.to_string();
        if !errors.contains(&v) {
            errors.push(v);
        }
    }
    let cases = loaded.unwrap_or_default();
    for case in &cases {
        for (version, ids) in &case.scenario.spec {
            for id in ids {
                if coverage::statement(*version, id).is_none() {
                    errors.push(format!(
                        "{}: case {}: {id} is not a normative statement of MQTT {version} (see suites/spec/)",
                        f.display(),
                        case.scenario.name
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(format!("{} case(s)", cases.len()))
    } else {
        Err(errors)
    }
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
    if files.is_empty() {
        anyhow::bail!("nothing to validate: no .yaml file in the paths given");
    }
    let mut bad = 0;
    for f in &files {
        if f.file_name().is_some_and(|n| n == "unobservable.yaml") {
            continue;
        }
        let is_manifest = f
            .parent()
            .and_then(|d| d.file_name())
            .is_some_and(|n| n == "suites");
        let result = if is_manifest {
            validate_manifest(f, root)
        } else {
            validate_scenario(f, &validator)
        };
        match result {
            Ok(what) => println!("ok {}: {what}", f.display()),
            Err(errors) => {
                for e in &errors {
                    eprintln!("{e}");
                }
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

//! The command-line model: every subcommand and flag, parsed by clap (also the source of the
//! completions and the man page).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mqtt_conformance::scenario::{Dur, Version};

/// Conformance test suite for MQTT brokers (3.1.1 and 5.0).
#[derive(Parser)]
#[command(name = "mqtt-conformance", version, about)]
pub(crate) struct Cli {
    /// Project root holding `suites/` and `scenarios/` (default: the current directory when it
    /// has `suites/`, else the suites that ship with this binary).
    #[arg(long, global = true)]
    pub(crate) root: Option<PathBuf>,
    /// A real Toxiproxy's API (`http://host:8474`) for the fault steps, instead of the
    /// embedded proxy engine.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) toxiproxy: Option<String>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
    /// Print the JSON Schema of scenario files (as committed in suites/schema.json), or with
    /// --profile of broker profiles (profiles/schema.json).
    Schema {
        /// The schema of broker profiles instead.
        #[arg(long)]
        profile: bool,
    },
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
pub(crate) struct CompareArgs {
    /// JSON reports, `PATH` or `LABEL=PATH`.
    #[arg(required = true)]
    pub(crate) runs: Vec<String>,
    /// Also write the HTML matrix (brokers by case and by statement) to PATH.
    #[arg(long, value_name = "PATH")]
    pub(crate) html: Option<PathBuf>,
    /// Print the Markdown table (the README compatibility table) instead of text.
    #[arg(long)]
    pub(crate) markdown: bool,
}

#[derive(Args)]
pub(crate) struct SelftestArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Only variants and defects whose name contains this (e.g. `defect:will`).
    #[arg(long)]
    pub(crate) filter: Option<String>,
    /// Brokers judged at once (default: 2 per core).
    #[arg(long)]
    pub(crate) subjects: Option<usize>,
    /// Cases at once per broker.
    #[arg(long, default_value_t = 6)]
    pub(crate) jobs: usize,
}

#[derive(Args)]
pub(crate) struct BuildImageArgs {
    /// The broker executable.
    #[arg(long)]
    pub(crate) binary: PathBuf,
    /// Image reference to tag, IMAGE:TAG.
    #[arg(long)]
    pub(crate) tag: String,
    /// Port the image exposes.
    #[arg(long, default_value_t = 1883)]
    pub(crate) port: u16,
    /// Arguments of the broker in the image.
    #[arg(last = true)]
    pub(crate) args: Vec<String>,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Suite name or manifest path (repeatable); default: every suite in suites/.
    #[arg(long)]
    pub(crate) suite: Vec<String>,
    /// External broker URL: `mqtt://[user:pass@]host:port`, `mqtts://`, `ws://`, `wss://`.
    #[arg(long, conflicts_with = "container")]
    pub(crate) broker: Option<String>,
    /// Broker name for the deviations of the suites (default: reference, or external).
    #[arg(long)]
    pub(crate) broker_name: Option<String>,
    /// A broker in a container, started with testcontainers: a preset NAME[:TAG] (emqx,
    /// mosquitto, hivemq, nanomq, vernemq). Needs a Docker daemon; removed after the run.
    #[arg(long, conflicts_with = "image")]
    pub(crate) container: Option<String>,
    /// Any broker image IMAGE[:TAG], started like --container, MQTT on --port.
    #[arg(long, conflicts_with = "broker")]
    pub(crate) image: Option<String>,
    /// Broker profile (TOML, see profiles/example.toml): credentials for every connection,
    /// declared features and limits, ACL topic root, deviations. Default with --container:
    /// the preset's shipped profile.
    #[arg(long, value_name = "FILE")]
    pub(crate) profile: Option<PathBuf>,
    /// Container port of the MQTT listener of --image.
    #[arg(long, default_value_t = 1883, requires = "image")]
    pub(crate) port: u16,
    /// Cases run at once (default: 12 per core; cases mostly wait on the network).
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Only cases whose name contains this.
    #[arg(long)]
    pub(crate) filter: Option<String>,
    /// Leave out cases whose name matches (a glob with `*`/`?`, else a substring); repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub(crate) exclude: Vec<String>,
    /// Only the runs that failed in the last JSON report (--json-report).
    #[arg(long)]
    pub(crate) rerun_failed: bool,
    /// Only cases with one of these tags (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) tags: Vec<String>,
    /// Only this protocol version.
    #[arg(long, value_parser = parse_version)]
    pub(crate) protocol: Option<Version>,
    /// Stop starting cases after the first failure.
    #[arg(long)]
    pub(crate) fail_fast: bool,
    /// Warnings (a SHOULD-level step that did not hold) fail the run too (exit 1).
    #[arg(long)]
    pub(crate) strict: bool,
    /// Run each case N times; mixed results are reported as flaky.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) repeat: u32,
    /// Time budget of one case execution.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// JUnit XML report path.
    #[arg(long, default_value = "reports/junit.xml")]
    pub(crate) junit: PathBuf,
    /// Write no JUnit report.
    #[arg(long, conflicts_with = "junit")]
    pub(crate) no_junit: bool,
    /// Self-contained HTML report path (default: report.html beside the JUnit file).
    #[arg(long, value_name = "PATH")]
    pub(crate) html: Option<PathBuf>,
    /// Write no HTML report.
    #[arg(long, conflicts_with = "html")]
    pub(crate) no_html: bool,
    /// JSON report path (read by --rerun-failed).
    #[arg(long, default_value = "reports/results.json")]
    pub(crate) json_report: PathBuf,
    /// Print the results as JSON on stdout instead of the console report.
    #[arg(long)]
    pub(crate) json: bool,
    /// Only failures and the totals on the console.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Colour the verdicts: auto (a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) color: ColorChoice,
    /// Skip TLS certificate verification.
    #[arg(long)]
    pub(crate) insecure: bool,
    /// CA certificate (PEM) to trust for mqtts/wss.
    #[arg(long)]
    pub(crate) ca_file: Option<PathBuf>,
}

/// When to colour the console.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to colour output going to stdout.
    pub(crate) fn enabled(self) -> bool {
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
pub(crate) struct ProbeArgs {
    /// Broker URL: `mqtt://[user:pass@]host:port`, `mqtts://`, `ws://`, `wss://`.
    pub(crate) url: String,
    /// Write what the probe learnt as a broker profile (TOML) to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) write_profile: Option<PathBuf>,
    /// A broker profile whose credentials and ACL topic root the probe uses.
    #[arg(long, value_name = "FILE")]
    pub(crate) profile: Option<PathBuf>,
    /// Print the findings as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Skip TLS certificate verification.
    #[arg(long)]
    pub(crate) insecure: bool,
    /// CA certificate (PEM) to trust for mqtts/wss.
    #[arg(long)]
    pub(crate) ca_file: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct ListArgs {
    /// Show which normative statements the scenarios cover, per spec section.
    #[arg(long)]
    pub(crate) coverage: bool,
    /// JSON output.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn parse_version(s: &str) -> Result<Version, String> {
    Version::parse(s).ok_or_else(|| format!("{s:?} is not a protocol version (3.1.1 or 5)"))
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    Dur::parse(s)
        .map(|d| d.0)
        .ok_or_else(|| format!("{s:?} is not a duration like 10s or 500ms"))
}

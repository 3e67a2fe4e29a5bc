//! The `mqtt-conformance` command line: parse the arguments, call the library, map the
//! outcome to an exit code (see `exit`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use mqtt_conformance::exit;
use mqtt_conformance::fault;
use mqtt_conformance::scenario;
use mqtt_conformance::suite::{self, Suite};
use mqtt_conformance::sut;

mod cli;

use cli::args::{Cli, Command};

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
        Command::Run(args) => async_runtime()?.block_on(cli::run_cmd::run_suites(
            root,
            cli.toxiproxy.as_deref(),
            args,
        )),
        Command::Toxiproxy { listen } => async_runtime()?.block_on(async {
            let (addr, server) = fault::serve(listen)
                .await
                .with_context(|| format!("cannot serve the Toxiproxy API on {listen}"))?;
            println!("toxiproxy API listening on http://{addr} (Ctrl-C stops it)");
            std::io::stdout().flush().ok();
            server.run_until(tokio::signal::ctrl_c()).await?;
            anyhow::Ok(ExitCode::from(exit::SUCCESS))
        }),
        Command::List(args) => cli::commands::list(root, &args),
        Command::Probe(args) => async_runtime()?.block_on(cli::commands::probe(args)),
        Command::Validate { paths } => cli::commands::validate(root, &paths),
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
        Command::Schema { profile } => {
            let text = if profile {
                mqtt_conformance::profile::json_schema_text()
            } else {
                scenario::schema::json_schema_text()
            };
            std::io::stdout().write_all(text.as_bytes())?;
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
        Command::Selftest(args) => async_runtime()?.block_on(cli::commands::selftest(root, args)),
        Command::Bench(args) => Ok(mqtt_conformance::bench::run_cli(args)?),
        Command::Compare(args) => cli::commands::compare_runs(&args),
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
pub(crate) fn load_suites(root: &Path, wanted: &[String]) -> anyhow::Result<(Vec<Suite>, usize)> {
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

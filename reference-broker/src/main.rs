//! The `reference-broker` binary: parse the command line, start the broker, wait for Ctrl-C or
//! SIGTERM, shut down cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use reference_broker::broker::{auth, Broker, BrokerConfig, ListenerConfig, ListenerKind};

/// The reference MQTT 3.1.1 / 5.0 broker of mqtt-conformance.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TCP address to listen on (port 0 picks a free port); repeatable.
    #[arg(long)]
    listen: Vec<SocketAddr>,
    /// TOML configuration file (listeners, users, ACL, limits).
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the hash of a password for the `password_hash` field of a `[[user]]`.
    HashPassword {
        /// The password.
        password: String,
        /// Salt (default: random).
        #[arg(long)]
        salt: Option<String>,
    },
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reference-broker: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::HashPassword { password, salt }) = cli.command {
        let salt = salt.unwrap_or_else(|| {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u8(0);
            format!("{:016x}", h.finish())
        });
        println!("{}", auth::hash_password(password.as_bytes(), &salt));
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut config = match &cli.config {
        Some(path) => BrokerConfig::from_file(path)?,
        None if cli.listen.is_empty() => {
            BrokerConfig::default_tcp(SocketAddr::from(([127, 0, 0, 1], 1883)))
        }
        None => {
            let mut c = BrokerConfig::default_tcp(cli.listen[0]);
            c.listeners.clear();
            c
        }
    };
    for addr in &cli.listen {
        config.listeners.push(ListenerConfig {
            kind: ListenerKind::Tcp,
            bind: *addr,
            cert: None,
            key: None,
        });
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        let broker = Broker::bind(config).await?;
        for addr in broker.local_addrs() {
            println!("listening on {addr}");
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        wait_for_signal().await?;
        tracing::info!("shutting down");
        broker.shutdown().await;
        Ok(())
    })
}

#[cfg(unix)]
async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot wait for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> anyhow::Result<()> {
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")
}

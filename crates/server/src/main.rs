//! `causerie`: the XMPP server.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Causerie, a federated XMPP server for companies.
#[derive(Parser, Debug)]
#[command(name = "causerie", version, about)]
struct Args {
    /// Configuration file (default: ./causerie.toml if present, else built-in defaults).
    #[arg(long, short = 'c', value_name = "PATH")]
    config: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let (config, path) = match causerie_config::Config::discover(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("causerie: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    causerie_server::init_logging(&config.log.level);
    match path {
        Some(p) => tracing::info!(config = %p.display(), "configuration loaded"),
        None => tracing::info!("no configuration file, using defaults"),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("causerie: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("causerie: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: causerie_config::Config) -> anyhow::Result<()> {
    // The start-up error's message already holds its cause's (`database: …`, `TLS: …`):
    // printed as a chain, each cause would appear twice.
    let running = match causerie_server::start(&config).await {
        Ok(r) => r,
        Err(e) => anyhow::bail!("start-up failed: {e}"),
    };
    wait_for_signal(&running).await?;
    running.shutdown().await;
    Ok(())
}

/// Waits for SIGTERM or SIGINT. SIGHUP, the usual "reload" signal, reads the compliance rules
/// file again at once (a running server also notices changes by itself within
/// `compliance.reload_secs`) and the shared roster groups from the database (changed offline);
/// the rest of the configuration is read at start only.
async fn wait_for_signal(running: &causerie_server::Running) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    loop {
        tokio::select! {
            _ = term.recv() => {
                tracing::info!("SIGTERM received");
                return Ok(());
            }
            _ = int.recv() => {
                tracing::info!("SIGINT received");
                return Ok(());
            }
            _ = hup.recv() => {
                tracing::info!("SIGHUP received: reading the compliance rules and shared groups again");
                // The outcome (rules in force, or the problems and the rules kept) is logged
                // and audited by the reload itself.
                let _ = running.compliance.reload();
                // Data changed in the database while the server ran without telling it
                // (`causeriectl --offline`): the shared roster groups.
                match running.core.reload_all().await {
                    Ok(()) => tracing::info!("shared roster groups read again"),
                    Err(e) => tracing::warn!(error = %e, "reload failed; the data in force stays"),
                }
            }
        }
    }
}

//! `casino`: the developer CLI.
//!
//! - `casino bench vault|concierge|room`: benchmarks (see the README's Performance section).
//! - `casino probe chat`: the customer-chat probe (`--serve ADDR` for Prometheus).
//!
//! `up`, `sim` and `fault` arrive with their issue; until then they say so instead of pretending.

use casino::{bench, probe};

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "casino",
    about = "Run, exercise and measure the casino platform",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum ProbeTarget {
    /// Customer chat round trip: log in, connect like a browser, send, wait for the echo.
    Chat(probe::Args),
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        target: bench::Target,
    },
    /// Run the whole platform locally (not implemented yet).
    Up,
    /// Drive synthetic players against a running stack (not implemented yet).
    Sim,
    /// Inject faults into a stack started by `casino up` (not implemented yet).
    Fault,
    /// Synthetic probes.
    Probe {
        #[command(subcommand)]
        target: ProbeTarget,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("casino: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Bench { target } => bench::run(target).await.map(|()| 0),
            Command::Probe {
                target: ProbeTarget::Chat(args),
            } => probe::run(args).await,
            other => {
                let name = format!("{other:?}").to_lowercase();
                anyhow::bail!("`{name}` is not implemented yet")
            }
        }
    });
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(error) => {
            eprintln!("casino: {error:#}");
            ExitCode::FAILURE
        }
    }
}

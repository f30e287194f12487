//! `casino`: the developer CLI.
//!
//! - `casino bench vault`: the Vault bet-path benchmark (see the README's Performance section).
//!
//! `up`, `sim`, `fault` and `probe` arrive with their issues; until then they say so instead of pretending.

mod bench;

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
    /// Synthetic probes (not implemented yet).
    Probe,
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
            Command::Bench { target } => bench::run(target).await,
            other => {
                let name = format!("{other:?}").to_lowercase();
                anyhow::bail!("`{name}` is not implemented yet")
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("casino: {error:#}");
            ExitCode::FAILURE
        }
    }
}

//! `casino`: the developer CLI (see the library crate for what each command does).

use std::process::ExitCode;

use std::path::PathBuf;

use casino::{bench, fault, probe, sim, stack, up};
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
    /// Run the whole platform locally: Postgres, Kafka, the three services, the chat probe, Prometheus.
    Up(up::Args),
    /// Drive synthetic players against the stack `casino up` started.
    Sim {
        /// Run directory of the `casino up` to drive.
        #[arg(long, env = "CASINO_RUN_DIR", default_value = stack::DEFAULT_RUN_DIR)]
        run_dir: PathBuf,
        #[command(flatten)]
        args: sim::Args,
    },
    /// Inject a fault into the stack `casino up` started.
    Fault(fault::Args),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        target: bench::Target,
    },
    /// Synthetic probes.
    Probe {
        #[command(subcommand)]
        target: ProbeTarget,
    },
    /// Run one service in this process (how `casino up` starts them).
    #[command(hide = true)]
    Serve {
        /// vault, concierge or room-service.
        service: String,
    },
}

async fn run_sim(run_dir: &std::path::Path, args: &sim::Args) -> anyhow::Result<i32> {
    let stack = stack::StackInfo::load(run_dir)?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    let summary = sim::run(args, &stack, cancel).await?;
    summary.print();
    Ok(0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Serve { service } = &cli.command {
        // The service's own main: settings, telemetry, runtime, signals, graceful shutdown, exit code.
        up::serve(service);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("casino: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Fault(args) => fault::run(args).await,
            Command::Sim { run_dir, args } => run_sim(&run_dir, &args).await,
            Command::Bench { target } => bench::run(target).await.map(|()| 0),
            Command::Probe {
                target: ProbeTarget::Chat(args),
            } => probe::run(args).await,
            Command::Serve { .. } => unreachable!("handled before the runtime starts"),
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

//! `casino`: the developer CLI (see the library crate for what each command does).

use std::process::ExitCode;

use casino::{bench, fault, probe, up};
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

//! `casino`: the developer CLI.
//!
//! Subcommands arrive with their issues: `up` (the whole platform locally), `sim` (synthetic players),
//! `fault` (fault injection), `probe chat` (the customer-chat probe) and `bench` (benchmarks). Until then
//! the binary says so instead of pretending.

use std::process::ExitCode;

const USAGE: &str = "usage: casino <command>

commands (being built; see the README's roadmap):
  up       run the whole platform locally
  sim      drive synthetic players against a running stack
  fault    inject faults into a stack started by `casino up`
  probe    synthetic probes (`casino probe chat`)
  bench    benchmarks (`casino bench vault|concierge|room`)";

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None | Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(command @ ("up" | "sim" | "fault" | "probe" | "bench")) => {
            eprintln!("casino: `{command}` is not implemented yet");
            ExitCode::from(2)
        }
        Some(other) => {
            eprintln!("casino: unknown command `{other}`\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

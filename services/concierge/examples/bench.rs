//! `casino bench concierge`, runnable from this crate:
//! `cargo run --release -p casino-concierge --example bench -- --events 200000`.
//!
//! The benchmark lives in `tools/casino/src/bench/concierge.rs` (the `casino` CLI's module); this example
//! compiles the same file so it can be built and run with Concierge's own dependencies.

#[path = "../../../tools/casino/src/bench/concierge.rs"]
mod concierge;

use clap::Parser as _;

/// Command line of the example: the benchmark's own arguments.
#[derive(Debug, clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: concierge::Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    concierge::run(Cli::parse().args).await
}

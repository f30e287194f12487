//! `casino bench ...`: benchmarks that print what they measured and how.

pub mod concierge;
pub mod room;
pub mod stats;
pub mod vault;

use clap::Subcommand;

/// What to benchmark.
#[derive(Debug, Subcommand)]
pub enum Target {
    /// Signed bets over HTTP against Vault, and the same SQL done the naive way, in one run.
    Vault(vault::Args),
    /// A burst of bet events through Concierge into PostgreSQL, against a raw read of the same topic.
    Concierge(concierge::Args),
    /// Many sockets on Room-Service: connect rate, memory, fan-out, latency; the same against Node socket.io.
    Room(room::Args),
}

/// Run a benchmark.
pub async fn run(target: Target) -> anyhow::Result<()> {
    match target {
        Target::Vault(args) => vault::run(args).await,
        Target::Concierge(args) => concierge::run(args).await,
        Target::Room(args) => room::run(args).await,
    }
}

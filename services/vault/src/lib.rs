//! Vault: players and login, multi-currency wallets on a double-entry ledger, bets/wins/rollbacks from game
//! providers, deposits/withdrawals, exchange rates, bet limits and abuse signals (blueprint §4).
//!
//! Layout: [`config`] reads `VAULT_*` settings; [`startup`] builds the [`startup::Application`] (pool,
//! Kafka producer, health checks, routers) that `main` and the black-box tests run.

pub mod config;
pub mod startup;

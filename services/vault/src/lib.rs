//! Vault: players and login, multi-currency wallets on a double-entry ledger, bets/wins/rollbacks from game
//! providers, exchange rates, bet limits and abuse signals (blueprint §4).
//!
//! Layout:
//! - [`config`]: `VAULT_*` settings; [`startup`]: the [`startup::Application`] `main` and the tests run.
//! - [`domain`]: money and credentials as types that cannot hold invalid values.
//! - [`ledger`]: posting transfers, the outbox and its relay, currencies, the reconciler.
//! - [`routes`]: one module per resource (auth, wallet, games, admin, internal).
//! - [`payments`]: the payment provider trait and the sandbox PSP; `routes::payments` the payment flow.
//! - [`abuse`], [`players`], [`rates`], [`idempotency`]: the rules around the ledger.
//! - [`error`]: the one error type and its JSON answers.
//! - [`metrics`]: the series published at zero at start (alert rules and dashboards rely on them).

pub mod abuse;
pub mod config;
pub mod domain;
pub mod error;
pub mod idempotency;
pub mod ledger;
pub mod metrics;
pub mod payments;
pub mod players;
pub mod rates;
pub mod routes;
pub mod startup;
pub mod state;

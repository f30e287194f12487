//! Concierge: rewards from the bet stream (wagering volume, VIP points, leaderboards, levels).
//!
//! Concierge consumes `vault.transactions.v1` and `vault.players.v1` (group `concierge`), keeps its state
//! in its own PostgreSQL database and publishes level-ups on `concierge.rewards.v1` through an outbox.
//!
//! - [`config`]: `CONCIERGE_*` settings.
//! - [`domain`]: the rules as pure functions (levels, VIP points, leaderboard periods).
//! - [`processor`]: the batch handler that applies events exactly once in effect.
//! - [`db`]: versioned rule sets in the database.
//! - [`routes`]: the public API; [`error::ApiError`] its error body.
//! - [`housekeeping`]: forgetting old processed-event ids and published outbox rows. Level-ups are
//!   published by the shared relay of [`casino_messaging::outbox`].
//! - [`verifier`] and [`reconciler`]: the proofs that rewards are right.
//! - [`metrics`]: the metric names.
//! - [`startup`]: the [`startup::Application`] that `main` and the black-box tests run.

pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod housekeeping;
pub mod metrics;
pub mod processor;
pub mod reconciler;
pub mod routes;
pub mod startup;
pub mod verifier;

//! Concierge: rewards from the bet stream (wagering volume, VIP points, leaderboards, levels).
//!
//! Layout: [`config`] reads `CONCIERGE_*` settings; [`startup`] builds the [`startup::Application`] that
//! `main` and the black-box tests run. The service's domain arrives with its own issue; today it serves the
//! shared health, metrics and shutdown machinery on its database and Kafka.

pub mod config;
pub mod startup;

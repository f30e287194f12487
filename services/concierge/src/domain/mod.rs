//! The rules of rewards, as pure functions and validated types (no I/O).
//!
//! - [`money`]: [`money::EurAmount`], a non-negative EUR value.
//! - [`levels`]: the tier table ([`levels::LevelTable`]) and its validation.
//! - [`rules`]: a versioned [`rules::RuleSet`] (levels + VIP rates) and the award of one bet.
//! - [`board`]: leaderboards ([`board::Board`]) and their UTC periods.

pub mod board;
pub mod levels;
pub mod money;
pub mod rules;

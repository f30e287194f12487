//! `casino`: the developer CLI, as a library so its parts can be tested and reused.
//!
//! - [`up`]: `casino up` runs the whole platform locally (Postgres, the embedded Kafka broker, the three
//!   services as child processes, Prometheus with our rules, the chat probe) and a loopback control endpoint.
//! - [`fault`]: `casino fault ...` acts on that stack through the control endpoint.
//! - [`sim`]: `casino sim` drives synthetic players against a running stack.
//! - [`stack`]: the `stack.json` description `casino up` writes for the other commands.
//! - [`bench`]: `casino bench vault|concierge|room` (see the README's Performance section).
//! - [`probe`]: `casino probe chat`, the customer-chat probe.

pub mod bench;
pub mod fault;
pub mod probe;
pub mod sim;
pub mod stack;
pub mod up;

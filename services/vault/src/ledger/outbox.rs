//! Vault's transactional outbox: the shared implementation of `casino_messaging::outbox`.

pub use casino_messaging::outbox::{Relay, enqueue};

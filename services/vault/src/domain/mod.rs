//! Domain types whose constructors refuse invalid values.

pub mod credentials;
pub mod money;

//! HTTP routes, one module per resource.

pub mod admin;
pub mod auth;
pub mod games;
pub mod internal;
pub mod payments;
pub mod wallet;

//! The `casino-concierge` binary: see the library crate.

fn main() {
    casino_observability::service::main::<casino_concierge::startup::Application>(env!(
        "CARGO_PKG_VERSION"
    ));
}

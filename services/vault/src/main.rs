//! The `casino-vault` binary: see the library crate.

fn main() {
    casino_observability::service::main::<casino_vault::startup::Application>(env!(
        "CARGO_PKG_VERSION"
    ));
}

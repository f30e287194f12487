//! The `casino-room-service` binary: see the library crate.

fn main() {
    casino_observability::service::main::<casino_room_service::startup::Application>(env!(
        "CARGO_PKG_VERSION"
    ));
}

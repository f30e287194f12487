//! Room-Service: socket.io to the browser (balance pushes, level-ups, notifications, chat).
//!
//! Layout: [`config`] reads `ROOM_SERVICE_*` settings; [`startup`] builds the [`startup::Application`] that
//! `main` and the black-box tests run. The service's domain arrives with its own issue; today it serves the
//! shared health, metrics and shutdown machinery on its database and Kafka.

pub mod config;
pub mod startup;

//! Room-Service: socket.io for the browser — live balance and level-up pushes, persisted notifications
//! with read flags and offline catch-up, and chat — on socketioxide, Postgres (`room_service`) and Kafka.
//!
//! Layout:
//! - [`config`]: `ROOM_SERVICE_*` settings; [`startup`]: the [`startup::Application`] that `main` and the
//!   black-box tests run (routers, consumers, listener, shutdown).
//! - [`realtime`]: the socket.io namespace (handshake auth, chat events, notification cursors per socket,
//!   per-IP connection limit, disconnect-all at shutdown).
//! - [`consumers`]: the live Kafka consumer (own group per task), the notifications consumer (shared
//!   group), the Postgres `LISTEN` loop that pushes stored notifications to every task.
//! - [`chat`]: the send/delete flow; [`routes`]: the REST API; [`store`]: SQL; [`domain`]: pure rules.
//! - [`instance`]: this task's id (configured, the ECS task id, or random).
//! - [`client`]: a small Socket.IO v5 client over WebSocket (tests, `casino probe chat`, `casino bench room`).
//! - [`metrics`]: the `room_*` metric names; [`error`]: [`error::RoomError`].
//!
//! The protocol (events, payloads, acks, error codes) is described in the crate's README.

pub mod chat;
pub mod client;
pub mod config;
pub mod consumers;
pub mod domain;
pub mod error;
pub mod instance;
pub mod metrics;
pub mod realtime;
pub mod routes;
pub mod startup;
pub mod state;
pub mod store;

//! Postgres: notifications (with their `LISTEN/NOTIFY` signal) and chat. Runtime queries only.

pub mod chat;
pub mod notifications;

/// The service's migrations (`services/room-service/migrations`), run at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

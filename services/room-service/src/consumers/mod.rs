//! Background work: the live Kafka consumer (own group per task), the notifications Kafka consumer
//! (shared group) and the Postgres notification listener.

pub mod listener;
pub mod live;
pub mod notifications;

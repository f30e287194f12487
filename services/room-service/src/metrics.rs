//! Room-Service's business metrics (exact names from the issue; dashboards and alerts use them).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `room_sockets_connected` | gauge | |
//! | `room_socket_connections_total` | counter | `outcome`: `accepted`, `unauthorized`, `rate_limited`, `server_shutdown`, `auth_unavailable` |
//! | `room_socket_disconnects_total` | counter | `reason`: `server_shutdown`, `token_expired`, `client_disconnect`, `transport_close`, `transport_error`, `heartbeat_timeout`, `server_disconnect`, `packet_parsing_error`, `multiple_http_polling` |
//! | `room_messages_emitted_total` | counter (one per socket reached) | `event` |
//! | `room_messages_dropped_total` | counter (a socket's send buffer was full or closed) | `event` |
//! | `room_delivery_latency_seconds` | histogram: emit time minus the event's `occurred_at` | `event` |
//! | `room_chat_messages_total` | counter | `outcome`: `accepted`, `duplicate`, `rate_limited`, `too_long`, `empty`, `muted`, `invalid_room`, `not_joined`, `invalid`, `unavailable` |
//! | `room_notifications_stored_total` | counter | `type`: `level_up`, `big_win`, `account_locked`, `payment_succeeded`, `payment_failed` |
//! | `room_notifications_replayed_total` | counter | |
//! | `room_auth_failures_total` | counter (REST token refusals) | `reason` |
//! | `room_ecs_metadata_failures_total` | counter: the ECS task id could not be read at start (random id used) | `reason`: `unreachable`, `http_status`, `malformed` |

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Gauge: sockets connected to this task.
pub const SOCKETS_CONNECTED: &str = "room_sockets_connected";
/// Counter: connection attempts by outcome.
pub const CONNECTIONS: &str = "room_socket_connections_total";
/// Counter: disconnects by reason.
pub const DISCONNECTS: &str = "room_socket_disconnects_total";
/// Counter: messages emitted to sockets, by event.
pub const EMITTED: &str = "room_messages_emitted_total";
/// Counter: messages that could not be queued to a socket, by event.
pub const DROPPED: &str = "room_messages_dropped_total";
/// Histogram: emit time minus occurred_at, by event.
pub const DELIVERY_LATENCY: &str = "room_delivery_latency_seconds";
/// Counter: chat sends by outcome.
pub const CHAT_MESSAGES: &str = "room_chat_messages_total";
/// Counter: notifications stored, by type.
pub const NOTIFICATIONS_STORED: &str = "room_notifications_stored_total";
/// Counter: notifications sent to a reconnecting socket from the database.
pub const NOTIFICATIONS_REPLAYED: &str = "room_notifications_replayed_total";
/// Counter: REST requests refused for their token.
pub const AUTH_FAILURES: &str = "room_auth_failures_total";
/// Counter: the ECS task metadata could not be read at start.
pub const ECS_METADATA_FAILURES: &str = "room_ecs_metadata_failures_total";

/// Connection outcomes.
pub const CONNECTION_OUTCOMES: [&str; 5] = [
    "accepted",
    "unauthorized",
    "rate_limited",
    "server_shutdown",
    "auth_unavailable",
];
/// Chat outcomes.
pub const CHAT_OUTCOMES: [&str; 10] = [
    "accepted",
    "duplicate",
    "rate_limited",
    "too_long",
    "empty",
    "muted",
    "invalid_room",
    "not_joined",
    "invalid",
    "unavailable",
];
/// Disconnect reasons published at zero (alerts and dashboards use them).
pub const ZEROED_DISCONNECT_REASONS: [&str; 2] = ["server_shutdown", "token_expired"];
/// Events pushed to sockets.
pub const EVENTS: [&str; 10] = [
    "balance.updated",
    "level.up",
    "account.locked",
    "account.unlocked",
    "notification",
    "notifications.unread_count",
    "chat.message",
    "chat.message_deleted",
    "server.shutdown",
    "session.expired",
];

/// Describe the metrics and publish zeroes for the label values alerts rely on, so a rate over a series
/// that never moved is 0 rather than absent. Call after the recorder is installed.
pub fn describe() {
    metrics::describe_gauge!(SOCKETS_CONNECTED, "Sockets connected to this task");
    metrics::describe_counter!(CONNECTIONS, "Socket connection attempts by outcome");
    metrics::describe_counter!(DISCONNECTS, "Socket disconnects by reason");
    metrics::describe_counter!(
        EMITTED,
        "Messages queued to sockets, by event (one per socket)"
    );
    metrics::describe_counter!(
        DROPPED,
        "Messages that could not be queued to a socket, by event"
    );
    metrics::describe_histogram!(
        DELIVERY_LATENCY,
        metrics::Unit::Seconds,
        "Emit time minus the event's occurred_at"
    );
    metrics::describe_counter!(CHAT_MESSAGES, "Chat sends by outcome");
    metrics::describe_counter!(NOTIFICATIONS_STORED, "Notifications stored, by type");
    metrics::describe_counter!(
        NOTIFICATIONS_REPLAYED,
        "Notifications sent from the database to reconnecting sockets"
    );
    metrics::gauge!(SOCKETS_CONNECTED).increment(0.0);
    for outcome in CONNECTION_OUTCOMES {
        metrics::counter!(CONNECTIONS, "outcome" => outcome).increment(0);
    }
    metrics::describe_counter!(
        ECS_METADATA_FAILURES,
        "ECS task metadata not readable at start (a random instance id was used)"
    );
    for reason in ZEROED_DISCONNECT_REASONS {
        metrics::counter!(DISCONNECTS, "reason" => reason).increment(0);
    }
    for outcome in CHAT_OUTCOMES {
        metrics::counter!(CHAT_MESSAGES, "outcome" => outcome).increment(0);
    }
    for kind in crate::domain::notifications::TYPES {
        metrics::counter!(NOTIFICATIONS_STORED, "type" => kind).increment(0);
    }
    metrics::counter!(NOTIFICATIONS_REPLAYED).increment(0);
    for event in EVENTS {
        metrics::counter!(EMITTED, "event" => event).increment(0);
    }
    // Chat is the one topic Room-Service produces to.
    casino_messaging::describe_producer(&[casino_events::topics::ROOM_CHAT]);
}

/// Count `sockets` deliveries of `event` and, when any socket was reached, the delivery latency.
pub fn emitted(event: &'static str, sockets: usize, occurred_at: Option<DateTime<Utc>>) {
    if sockets == 0 {
        return;
    }
    metrics::counter!(EMITTED, "event" => event).increment(sockets as u64);
    if let Some(occurred_at) = occurred_at {
        metrics::histogram!(DELIVERY_LATENCY, "event" => event)
            .record(latency(occurred_at).as_secs_f64());
    }
}

/// A failed queueing of `event` to one socket.
pub fn dropped(event: &'static str) {
    metrics::counter!(DROPPED, "event" => event).increment(1);
}

/// Now minus `occurred_at` (zero if the clocks disagree the other way).
pub fn latency(occurred_at: DateTime<Utc>) -> Duration {
    (Utc::now() - occurred_at).to_std().unwrap_or_default()
}

/// One connection attempt with `outcome`.
pub fn connection(outcome: &'static str) {
    metrics::counter!(CONNECTIONS, "outcome" => outcome).increment(1);
}

/// One chat send with `outcome`.
pub fn chat(outcome: &'static str) {
    metrics::counter!(CHAT_MESSAGES, "outcome" => outcome).increment(1);
}

/// Notifications replayed from the database to a reconnecting socket.
pub fn counter_replayed(n: u64) {
    metrics::counter!(NOTIFICATIONS_REPLAYED).increment(n);
}

/// `n` failed queueings of `event`.
pub fn dropped_n(event: &'static str, n: u64) {
    metrics::counter!(DROPPED, "event" => event).increment(n);
}

/// Move the connected-sockets gauge.
pub fn gauge_connected(delta: f64) {
    metrics::gauge!(SOCKETS_CONNECTED).increment(delta);
}

/// One disconnect with `reason`.
pub fn disconnect(reason: &'static str) {
    metrics::counter!(DISCONNECTS, "reason" => reason).increment(1);
}

/// One notification of `kind` stored.
pub fn notification_stored(kind: &'static str) {
    metrics::counter!(NOTIFICATIONS_STORED, "type" => kind).increment(1);
}

/// The ECS task metadata could not be read (`reason`: `unreachable`, `http_status`, `malformed`).
pub fn ecs_metadata_failure(reason: &'static str) {
    metrics::counter!(ECS_METADATA_FAILURES, "reason" => reason).increment(1);
}

//! Sending and deleting chat messages: the rules, the database and `room.chat.v1`.
//!
//! A send runs in one transaction holding a per-player advisory lock, so the duplicate check and the
//! rate limit are exact even when the player's sockets are on several tasks: duplicate `client_msg_id` ->
//! the original message (acknowledged again, never broadcast twice); muted -> `muted`; five messages in
//! the last 10 s -> `rate_limited`. The message is inserted, published to `room.chat.v1` (keyed by room,
//! so every task sees one room's messages in the same order) and only then committed: a message that
//! could not be published is not stored, and the client may retry with the same `client_msg_id`.
//! Every task's live consumer then emits it to the sockets in that room, the sender's included.

use casino_events::{
    Envelope,
    payloads::{ChatMessage, ChatMessageDeleted, chat_types},
    topics,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    domain::chat::{
        ChatMessageView, ChatRefusal, normalize_text, validate_client_msg_id, validate_room,
    },
    error::RoomError,
    state::AppState,
    store::{self, chat::Deletion},
};

/// What a send did.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// Stored and published.
    Accepted(ChatMessageView),
    /// This `client_msg_id` was sent before: the original.
    Duplicate(ChatMessageView),
}

/// The producer name in envelopes.
pub const PRODUCER: &str = "room-service";

fn unavailable(error: impl std::fmt::Display) -> ChatRefusal {
    tracing::warn!(error = %error, "chat send failed on a dependency");
    ChatRefusal::Unavailable
}

fn truncate_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

async fn publish<T: serde::Serialize>(
    state: &AppState,
    room: &str,
    event: &Envelope<T>,
) -> anyhow::Result<()> {
    let headers = casino_messaging::trace::current_context_headers();
    state
        .chat_producer
        .send(topics::ROOM_CHAT, room, &event.to_vec(), &headers)
        .await?;
    Ok(())
}

/// Send `text` to `room` as `player` (the caller checked that the socket joined the room).
pub async fn send(
    state: &AppState,
    player: Uuid,
    room: &str,
    text: &str,
    client_msg_id: &str,
) -> Result<Sent, ChatRefusal> {
    validate_room(room)?;
    let text = normalize_text(text, state.chat.max_chars)?;
    validate_client_msg_id(client_msg_id)?;

    let mut tx = state.pool.begin().await.map_err(unavailable)?;
    store::chat::lock_player(&mut tx, player)
        .await
        .map_err(unavailable)?;
    if let Some(original) = store::chat::by_client_msg_id(&mut tx, player, client_msg_id)
        .await
        .map_err(unavailable)?
    {
        return Ok(Sent::Duplicate(original));
    }
    if let Some(until) = store::chat::muted_until(&mut tx, player)
        .await
        .map_err(unavailable)?
    {
        return Err(ChatRefusal::Muted { until });
    }
    let (recent, wait) = store::chat::recent(&mut tx, player, state.chat.rate_window)
        .await
        .map_err(unavailable)?;
    if recent >= i64::from(state.chat.rate_limit) {
        return Err(ChatRefusal::RateLimited {
            retry_after_ms: wait.as_millis() as u64,
        });
    }
    let message = store::chat::insert(&mut tx, Uuid::now_v7(), room, player, &text, client_msg_id)
        .await
        .map_err(unavailable)?;
    let mut event = Envelope::new(
        chat_types::MESSAGE_SENT,
        PRODUCER,
        Some(player),
        ChatMessage {
            message_id: message.message_id,
            room: room.to_owned(),
            player_id: player,
            text: message.text.clone(),
            client_msg_id: client_msg_id.to_owned(),
        },
    );
    event.occurred_at = truncate_millis(message.sent_at);
    publish(state, room, &event).await.map_err(unavailable)?;
    if let Err(error) = tx.commit().await {
        // Published but not stored: it was seen live and will be missing from the history.
        tracing::error!(error = %error, message_id = %message.message_id, room, "chat message published but not committed");
        return Err(ChatRefusal::Unavailable);
    }
    tracing::info!(player_id = %player, room, message_id = %message.message_id, "chat message accepted");
    Ok(Sent::Accepted(message))
}

/// Delete a message for everyone (staff): it leaves the history and connected clients get
/// `chat.message_deleted`. Deleting a deleted message again is a no-op.
pub async fn delete(state: &AppState, message_id: Uuid, staff: Uuid) -> Result<(), RoomError> {
    let mut tx = state.pool.begin().await?;
    match store::chat::soft_delete(&mut tx, message_id, staff).await? {
        Deletion::NotFound => Err(RoomError::not_found(
            "message_not_found",
            "no such chat message",
        )),
        Deletion::AlreadyDeleted => Ok(()),
        Deletion::Deleted { room } => {
            let event = Envelope::new(
                chat_types::MESSAGE_DELETED,
                PRODUCER,
                None,
                ChatMessageDeleted {
                    message_id,
                    room: room.clone(),
                },
            );
            publish(state, &room, &event)
                .await
                .map_err(RoomError::Unavailable)?;
            tx.commit().await?;
            tracing::info!(staff_id = %staff, message_id = %message_id, room, "chat message deleted");
            Ok(())
        }
    }
}

//! The live consumer: every task reads `vault.transactions.v1`, `concierge.rewards.v1`,
//! `vault.players.v1` and `room.chat.v1` in its own group (`room-service-live-<instance id>`, from the
//! latest offsets) and emits to the sockets connected to it. A bounded window of event ids makes a
//! redelivered event a no-op, so no socket sees a push twice.
//!
//! Live pushes are best effort by nature (a socket that is not connected now gets nothing; persisted
//! notifications are the durable path): a malformed event is logged and skipped here rather than
//! dead-lettered once per task (the notifications consumer dead-letters what it needs).

use std::sync::Mutex;

use casino_events::{
    Envelope,
    payloads::{
        ChatMessage, ChatMessageDeleted, LevelUp, PlayerLockChanged, TransferEvent, chat_types,
        player_types, reward_types,
    },
    topics,
};
use casino_messaging::{Handler, HandlerError, Incoming};
use serde_json::Value;
use socketioxide::SocketIo;
use tracing::Instrument as _;

use crate::{
    domain::{
        chat::ChatMessageView,
        live::{AccountStatus, BalanceUpdated, chat_room, player_room},
    },
    realtime::{dedupe::RecentIds, emit_to_room},
};

/// Topics of the live consumer.
pub const TOPICS: [&str; 4] = [
    topics::VAULT_TRANSACTIONS,
    topics::CONCIERGE_REWARDS,
    topics::VAULT_PLAYERS,
    topics::ROOM_CHAT,
];

/// Event ids remembered for de-duplication.
pub const DEDUPE_WINDOW: usize = 100_000;

const SUPPORTED_VERSIONS: &[u32] = &[1];

/// Emits live events to this task's sockets.
pub struct LiveHandler {
    io: SocketIo,
    recent: Mutex<RecentIds>,
}

impl LiveHandler {
    /// A handler emitting through `io`.
    pub fn new(io: SocketIo) -> Self {
        Self {
            io,
            recent: Mutex::new(RecentIds::new(DEDUPE_WINDOW)),
        }
    }

    fn first_time(&self, event: &Envelope<Value>) -> bool {
        self.recent
            .lock()
            .map(|mut recent| recent.first_time(event.event_id))
            .unwrap_or(true)
    }

    async fn dispatch(&self, topic: &str, event: Envelope<Value>) -> Result<(), String> {
        let occurred_at = Some(event.occurred_at);
        match (topic, event.event_type.as_str()) {
            (topics::VAULT_TRANSACTIONS, _) => {
                let event = event
                    .into_typed::<TransferEvent>(SUPPORTED_VERSIONS)
                    .map_err(|e| e.to_string())?;
                let player = event.player_id.ok_or("transfer event without player_id")?;
                let payload = BalanceUpdated::from_transfer(&event.data, event.occurred_at);
                emit_to_room(
                    &self.io,
                    player_room(player),
                    "balance.updated",
                    &payload,
                    occurred_at,
                )
                .await;
            }
            (topics::CONCIERGE_REWARDS, reward_types::LEVEL_UP) => {
                let event = event
                    .into_typed::<LevelUp>(SUPPORTED_VERSIONS)
                    .map_err(|e| e.to_string())?;
                let player = event.player_id.ok_or("level.up without player_id")?;
                emit_to_room(
                    &self.io,
                    player_room(player),
                    "level.up",
                    &event.data,
                    occurred_at,
                )
                .await;
            }
            (topics::VAULT_PLAYERS, kind @ (player_types::LOCKED | player_types::UNLOCKED)) => {
                let name = if kind == player_types::LOCKED {
                    "account.locked"
                } else {
                    "account.unlocked"
                };
                let event = event
                    .into_typed::<PlayerLockChanged>(SUPPORTED_VERSIONS)
                    .map_err(|e| e.to_string())?;
                let player = event.player_id.ok_or("player event without player_id")?;
                let payload = AccountStatus {
                    reason: event.data.reason,
                    at: event.occurred_at,
                };
                emit_to_room(&self.io, player_room(player), name, &payload, occurred_at).await;
            }
            (topics::ROOM_CHAT, chat_types::MESSAGE_SENT) => {
                let event = event
                    .into_typed::<ChatMessage>(SUPPORTED_VERSIONS)
                    .map_err(|e| e.to_string())?;
                let message = ChatMessageView {
                    message_id: event.data.message_id,
                    room: event.data.room,
                    player_id: event.data.player_id,
                    text: event.data.text,
                    client_msg_id: event.data.client_msg_id,
                    sent_at: event.occurred_at,
                };
                emit_to_room(
                    &self.io,
                    chat_room(&message.room),
                    "chat.message",
                    &message,
                    occurred_at,
                )
                .await;
            }
            (topics::ROOM_CHAT, chat_types::MESSAGE_DELETED) => {
                let event = event
                    .into_typed::<ChatMessageDeleted>(SUPPORTED_VERSIONS)
                    .map_err(|e| e.to_string())?;
                emit_to_room(
                    &self.io,
                    chat_room(&event.data.room),
                    "chat.message_deleted",
                    &event.data,
                    occurred_at,
                )
                .await;
            }
            _ => {}
        }
        Ok(())
    }
}

impl Handler for LiveHandler {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let event = match Envelope::from_slice(&message.payload) {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(topic = %message.topic, offset = message.offset, error = %error, "live event skipped: malformed");
                return Ok(());
            }
        };
        if !self.first_time(&event) {
            tracing::debug!(event_id = %event.event_id, "live event already delivered");
            return Ok(());
        }
        let event_id = event.event_id;
        let event_type = event.event_type.clone();
        let span = tracing::info_span!(
            "socket.emit",
            otel.name = %format!("emit {event_type}"),
            event = %event_type,
            event_id = %event_id,
            player_id = ?event.player_id,
        );
        if let Err(error) = self.dispatch(&message.topic, event).instrument(span).await {
            tracing::warn!(topic = %message.topic, event_id = %event_id, event = %event_type, error = %error, "live event skipped: malformed");
        }
        Ok(())
    }
}

//! Chat history and staff moderation.

use axum::{
    Json,
    extract::{
        Path, Query, State,
        rejection::{JsonRejection, QueryRejection},
    },
    http::StatusCode,
};
use casino_auth::extract::Staff;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    chat, domain::chat::validate_room, error::RoomError, routes::Caller, state::AppState, store,
};

/// Default page size of the history.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size of the history.
pub const MAX_LIMIT: i64 = 200;
/// Longest mute (30 days).
pub const MAX_MUTE_SECONDS: i64 = 30 * 24 * 3600;

/// Query of the history.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// Only messages older than this message id.
    #[serde(default)]
    pub before: Option<String>,
    /// Page size (1-200, default 50).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// `GET /api/v1/chat/{room}/messages?before=`: oldest first; `next_before` pages further back.
pub async fn history(
    State(state): State<AppState>,
    Caller(_claims): Caller,
    Path(room): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<Value>, RoomError> {
    let Query(query) = query.map_err(|e| RoomError::bad_request("invalid_query", e.body_text()))?;
    validate_room(&room).map_err(|r| RoomError::bad_request(r.code(), r.message()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(RoomError::bad_request(
            "invalid_query",
            format!("limit must be 1-{MAX_LIMIT}"),
        ));
    }
    let before =
        match query.before.as_deref().filter(|b| !b.is_empty()) {
            None => None,
            Some(before) => Some(before.parse::<Uuid>().map_err(|_| {
                RoomError::bad_request("invalid_query", "before must be a message id")
            })?),
        };
    let messages = store::chat::history(&state.pool, &room, before, limit).await?;
    let next_before = (messages.len() as i64 == limit)
        .then(|| messages.first().map(|m| m.message_id))
        .flatten();
    Ok(Json(
        json!({ "room": room, "messages": messages, "next_before": next_before }),
    ))
}

/// Body of a mute.
#[derive(Debug, Deserialize)]
pub struct MuteRequest {
    /// Who.
    pub player_id: Uuid,
    /// For how long (1 s to 30 days).
    pub duration_seconds: i64,
    /// Why (kept for audit).
    pub reason: String,
}

/// `POST /api/v1/chat/mutes`.
pub async fn mute(
    State(state): State<AppState>,
    Staff(staff): Staff,
    body: Result<Json<MuteRequest>, JsonRejection>,
) -> Result<Json<Value>, RoomError> {
    let Json(body) = body.map_err(|e| RoomError::bad_request("invalid_body", e.body_text()))?;
    if !(1..=MAX_MUTE_SECONDS).contains(&body.duration_seconds) {
        return Err(RoomError::bad_request(
            "invalid_duration",
            format!("duration_seconds must be 1-{MAX_MUTE_SECONDS}"),
        ));
    }
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(RoomError::bad_request(
            "invalid_reason",
            "a reason of 1-500 characters is required",
        ));
    }
    let until = Utc::now() + chrono::Duration::seconds(body.duration_seconds);
    store::chat::mute(&state.pool, body.player_id, until, staff.sub, reason).await?;
    tracing::info!(staff_id = %staff.sub, player_id = %body.player_id, muted_until = %until, reason, "player muted in chat");
    Ok(Json(
        json!({ "player_id": body.player_id, "muted_until": until }),
    ))
}

/// `DELETE /api/v1/chat/mutes/{player_id}`.
pub async fn unmute(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(player_id): Path<String>,
) -> Result<Json<Value>, RoomError> {
    let player_id: Uuid = player_id
        .parse()
        .map_err(|_| RoomError::not_found("player_not_found", "not a player id"))?;
    let unmuted = store::chat::unmute(&state.pool, player_id).await?;
    tracing::info!(staff_id = %staff.sub, player_id = %player_id, unmuted, "player unmuted in chat");
    Ok(Json(json!({ "player_id": player_id, "unmuted": unmuted })))
}

/// `DELETE /api/v1/chat/messages/{message_id}`: 204; connected clients get `chat.message_deleted`.
pub async fn delete_message(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(message_id): Path<String>,
) -> Result<StatusCode, RoomError> {
    let message_id: Uuid = message_id
        .parse()
        .map_err(|_| RoomError::not_found("message_not_found", "no such chat message"))?;
    chat::delete(&state, message_id, staff.sub).await?;
    Ok(StatusCode::NO_CONTENT)
}

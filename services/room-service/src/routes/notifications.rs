//! A player's notifications.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
};
use casino_auth::extract::Player;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{error::RoomError, state::AppState, store};

/// Default page size.
pub const DEFAULT_LIMIT: i64 = 20;
/// Largest page size.
pub const MAX_LIMIT: i64 = 100;

/// Query of the list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only unread ones.
    #[serde(default)]
    pub unread: Option<bool>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size (1-100, default 20).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// `GET /api/v1/notifications`: newest first; `next_cursor` is set when there may be more.
pub async fn list(
    State(state): State<AppState>,
    Player(claims): Player,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, RoomError> {
    let Query(query) = query.map_err(|e| RoomError::bad_request("invalid_query", e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(RoomError::bad_request(
            "invalid_query",
            format!("limit must be 1-{MAX_LIMIT}"),
        ));
    }
    let before = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(cursor) => Some(cursor.parse::<i64>().map_err(|_| {
            RoomError::bad_request("invalid_cursor", "cursor is not one this API returned")
        })?),
    };
    let notifications = store::notifications::list(
        &state.pool,
        claims.sub,
        query.unread.unwrap_or(false),
        before,
        limit,
    )
    .await?;
    let next_cursor = (notifications.len() as i64 == limit)
        .then(|| notifications.last().map(|n| n.id.to_string()))
        .flatten();
    Ok(Json(
        json!({ "notifications": notifications, "next_cursor": next_cursor }),
    ))
}

/// `POST /api/v1/notifications/{id}/read`.
pub async fn read_one(
    State(state): State<AppState>,
    Player(claims): Player,
    Path(id): Path<String>,
) -> Result<Json<Value>, RoomError> {
    let not_found = || RoomError::not_found("notification_not_found", "no such notification");
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let notification = store::notifications::mark_read(&state.pool, claims.sub, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(json!({ "notification": notification })))
}

/// `POST /api/v1/notifications/read-all`.
pub async fn read_all(
    State(state): State<AppState>,
    Player(claims): Player,
) -> Result<Json<Value>, RoomError> {
    let updated = store::notifications::mark_all_read(&state.pool, claims.sub).await?;
    Ok(Json(json!({ "updated": updated })))
}

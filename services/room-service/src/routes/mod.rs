//! The REST API on the public port (`/api/v1/...`).
//!
//! | method and path | who | what |
//! |---|---|---|
//! | `GET /api/v1/notifications?unread=true&cursor=&limit=` | player | own notifications, newest first, cursor-paged |
//! | `POST /api/v1/notifications/{id}/read` | player | mark one read (404 if not theirs) |
//! | `POST /api/v1/notifications/read-all` | player | mark all read |
//! | `GET /api/v1/chat/{room}/messages?before=&limit=` | any signed-in user | history, oldest first, paged backwards |
//! | `POST /api/v1/chat/mutes` | staff | mute a player for a duration |
//! | `DELETE /api/v1/chat/mutes/{player_id}` | staff | lift a mute |
//! | `DELETE /api/v1/chat/messages/{message_id}` | staff | delete a message for everyone |

pub mod chat;
pub mod notifications;

use axum::{
    Router,
    extract::FromRequestParts,
    http::request::Parts,
    routing::{delete, get, post},
};
use casino_auth::{
    AuthError,
    extract::{AuthRejection, bearer},
    jwt::Claims,
};

use crate::{metrics, state::AppState};

/// The public API router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/notifications", get(notifications::list))
        .route(
            "/api/v1/notifications/read-all",
            post(notifications::read_all),
        )
        .route(
            "/api/v1/notifications/{id}/read",
            post(notifications::read_one),
        )
        .route("/api/v1/chat/{room}/messages", get(chat::history))
        .route("/api/v1/chat/mutes", post(chat::mute))
        .route("/api/v1/chat/mutes/{player_id}", delete(chat::unmute))
        .route(
            "/api/v1/chat/messages/{message_id}",
            delete(chat::delete_message),
        )
        .with_state(state)
}

/// Any signed-in caller (player, staff or admin).
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl FromRequestParts<AppState> for Caller {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let outcome = match bearer(parts) {
            None => Err(AuthError::Missing),
            Some(token) => state.verifier.verify(token).await,
        };
        outcome.map(Caller).map_err(|error| {
            ::metrics::counter!(metrics::AUTH_FAILURES, "reason" => error.reason()).increment(1);
            tracing::info!(reason = error.reason(), path = %parts.uri.path(), "request not authorized");
            AuthRejection(error)
        })
    }
}

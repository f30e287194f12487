//! The API's errors: one enum, one JSON body (`{"error":{"code","message"}}`).
//!
//! 4xx answers say what is wrong in plain words; 5xx answers never show internals (the cause chain is
//! logged instead).

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use casino_observability::http::error_response;

use crate::domain::{board::UnknownBoard, levels::LevelTableError};

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input: a query parameter, path segment or JSON body (`code` names which).
    #[error("{message}")]
    BadRequest {
        /// `invalid_parameter`, `invalid_json`, ...
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// `PUT /api/v1/admin/levels` with a table that breaks the rules.
    #[error(transparent)]
    InvalidLevelTable(#[from] LevelTableError),
    /// A leaderboard that does not exist.
    #[error(transparent)]
    UnknownBoard(#[from] UnknownBoard),
    /// Concierge has never seen this player.
    #[error("no rewards known for player {0}")]
    PlayerNotFound(uuid::Uuid),
    /// The database is unreachable or saturated: worth retrying.
    #[error("the rewards database is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::InvalidLevelTable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::UnknownBoard(_) | ApiError::PlayerNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::InvalidLevelTable(_) => "invalid_level_table",
            ApiError::UnknownBoard(_) => "unknown_leaderboard",
            ApiError::PlayerNotFound(_) => "player_not_found",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                ApiError::Unavailable(error.into())
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        match error.downcast::<sqlx::Error>() {
            Ok(sql) => sql.into(),
            Err(other) => ApiError::Internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Unavailable(cause) => {
                tracing::warn!(
                    error = format!("{cause:#}"),
                    "request failed: database unavailable"
                )
            }
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed")
            }
            _ => {}
        }
        error_response(status, self.code(), self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_hide_their_cause() {
        let error =
            ApiError::Internal(anyhow::anyhow!("password=hunter2 in the connection string"));
        assert_eq!(error.to_string(), "internal error");
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let error: ApiError = sqlx::Error::PoolTimedOut.into();
        assert_eq!(
            (error.status(), error.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        );
    }

    #[test]
    fn client_errors_say_what_is_wrong() {
        let error: ApiError = LevelTableError::Empty.into();
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.code(), "invalid_level_table");
        assert!(error.to_string().contains("empty"));
    }
}

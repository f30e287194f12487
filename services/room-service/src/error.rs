//! Room-Service's error type: every refusal has a status, a stable code and a message; internals never leak.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use casino_observability::http::error_response;

/// What can go wrong in a Room-Service request (REST or socket).
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// A refusal the client can act on (4xx).
    #[error("{code}: {message}")]
    Refused {
        /// HTTP status.
        status: StatusCode,
        /// Stable code (`notification_not_found`).
        code: &'static str,
        /// For humans.
        message: String,
    },
    /// A dependency is unavailable (database or Kafka): 503, retry later.
    #[error("service unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// A bug or an unexpected failure: 500 with a generic body; the log has the cause chain.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl RoomError {
    /// A refusal.
    pub fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Refused {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::refused(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::refused(StatusCode::NOT_FOUND, code, message)
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            RoomError::Refused { code, .. } => code,
            RoomError::Unavailable(_) => "unavailable",
            RoomError::Internal(_) => "internal_error",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            RoomError::Refused { status, .. } => *status,
            RoomError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            RoomError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The public message (generic for 5xx).
    pub fn public_message(&self) -> String {
        match self {
            RoomError::Refused { message, .. } => message.clone(),
            RoomError::Unavailable(_) => "a dependency is unavailable, retry later".into(),
            RoomError::Internal(_) => "internal error".into(),
        }
    }
}

impl From<sqlx::Error> for RoomError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => RoomError::Unavailable(error.into()),
            other => RoomError::Internal(other.into()),
        }
    }
}

impl IntoResponse for RoomError {
    fn into_response(self) -> Response {
        match &self {
            RoomError::Refused { code, .. } => {
                tracing::info!(code = *code, "request refused");
            }
            RoomError::Unavailable(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "request failed: dependency unavailable"
                );
            }
            RoomError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "request failed");
            }
        }
        error_response(self.status(), self.code(), self.public_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeouts_are_unavailable_and_other_database_errors_internal() {
        assert_eq!(RoomError::from(sqlx::Error::PoolTimedOut).status(), 503);
        assert_eq!(RoomError::from(sqlx::Error::RowNotFound).status(), 500);
        assert_eq!(
            RoomError::from(sqlx::Error::RowNotFound).public_message(),
            "internal error"
        );
    }
}

//! Vault's error type: every refusal has a status, a stable code and a message; internals never leak.

use axum::{
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use casino_observability::http::error_response;
use serde::de::DeserializeOwned;

/// What can go wrong in a Vault request.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A refusal the client can act on (4xx).
    #[error("{code}: {message}")]
    Refused {
        /// HTTP status.
        status: StatusCode,
        /// Stable code (`insufficient_funds`).
        code: &'static str,
        /// For humans.
        message: String,
    },
    /// A dependency is unavailable (database pool exhausted or down): 503, retry later.
    #[error("service unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// A bug or an unexpected failure: 500 with a generic body; the log has the cause chain.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl VaultError {
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

    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::refused(StatusCode::CONFLICT, code, message)
    }

    /// 422: a valid request the rules refuse (insufficient funds, limits...).
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::refused(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::Refused { code, .. } => code,
            VaultError::Unavailable(_) => "unavailable",
            VaultError::Internal(_) => "internal_error",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            VaultError::Refused { status, .. } => *status,
            VaultError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            VaultError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The public message (generic for 5xx).
    pub fn public_message(&self) -> String {
        match self {
            VaultError::Refused { message, .. } => message.clone(),
            VaultError::Unavailable(_) => "temporarily unavailable, retry later".into(),
            VaultError::Internal(_) => "internal error".into(),
        }
    }

    /// Log the error once, at the right level, and count it.
    pub fn record(&self) {
        metrics::counter!("vault_request_errors_total", "code" => self.code()).increment(1);
        match self {
            VaultError::Refused { code, message, .. } => {
                tracing::info!(code, reason = %message, "request refused")
            }
            VaultError::Unavailable(error) => {
                let error: &(dyn std::error::Error + 'static) = error.as_ref();
                tracing::warn!(code = "unavailable", error, "dependency unavailable")
            }
            VaultError::Internal(error) => {
                let error: &(dyn std::error::Error + 'static) = error.as_ref();
                tracing::error!(code = "internal_error", error, "request failed")
            }
        }
    }
}

impl From<sqlx::Error> for VaultError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                VaultError::Unavailable(anyhow::Error::new(error).context("database"))
            }
            other => VaultError::Internal(anyhow::Error::new(other).context("database")),
        }
    }
}

impl From<anyhow::Error> for VaultError {
    fn from(error: anyhow::Error) -> Self {
        match error.downcast::<sqlx::Error>() {
            Ok(sqlx) => sqlx.into(),
            Err(error) => VaultError::Internal(error),
        }
    }
}

impl IntoResponse for VaultError {
    fn into_response(self) -> Response {
        self.record();
        error_response(self.status(), self.code(), self.public_message())
    }
}

/// Map an axum JSON rejection to a precise 4xx.
pub fn json_rejection(rejection: &JsonRejection) -> VaultError {
    match rejection {
        JsonRejection::JsonDataError(e) => VaultError::bad_request("invalid_body", e.body_text()),
        JsonRejection::JsonSyntaxError(e) => {
            VaultError::bad_request("malformed_json", e.body_text())
        }
        JsonRejection::MissingJsonContentType(_) => VaultError::refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send a JSON body with content-type: application/json",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            VaultError::refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is larger than 64 KiB",
            )
        }
        other => VaultError::bad_request("invalid_body", other.body_text()),
    }
}

/// A JSON body whose rejections are Vault errors (JSON error body, log line, metric).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = VaultError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(value)| ApiJson(value))
            .map_err(|rejection| json_rejection(&rejection))
    }
}

/// Parse a JSON body already read as bytes (the game API verifies signatures over the raw bytes first).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, VaultError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            VaultError::bad_request("malformed_json", format!("malformed JSON: {inner}"))
        } else {
            VaultError::bad_request("invalid_body", format!("{}: {inner}", e.path()))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| VaultError::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
    Ok(value)
}

//! `Idempotency-Key` for player, staff and internal calls that move money.
//!
//! The key's row is inserted in the request's own transaction: a concurrent duplicate waits for the first
//! to commit and then replays its answer; a refused request rolls back and leaves no row, so a retry is
//! evaluated afresh. The same key with a different request is `409 idempotency_conflict`.

use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use sqlx::PgConnection;

use crate::error::VaultError;

/// The `Idempotency-Key` header, required and bounded.
pub fn key_from(headers: &HeaderMap) -> Result<String, VaultError> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    if key.is_empty() || key.len() > 128 {
        return Err(VaultError::bad_request(
            "idempotency_key_required",
            "send an Idempotency-Key header (1 to 128 characters)",
        ));
    }
    Ok(key.to_owned())
}

/// Hash of a request's canonical JSON.
pub fn hash<T: Serialize>(request: &T) -> Vec<u8> {
    Sha256::digest(serde_json::to_vec(request).unwrap_or_default()).to_vec()
}

/// Claim `key` in `scope`; `Some(answer)` means replay it.
pub async fn claim(
    tx: &mut PgConnection,
    scope: &str,
    key: &str,
    request_hash: &[u8],
) -> Result<Option<(StatusCode, Value)>, VaultError> {
    let inserted = sqlx::query(
        "INSERT INTO api_idempotency (scope, key, request_hash, http_status, response)
         VALUES ($1, $2, $3, 0, '{}') ON CONFLICT DO NOTHING",
    )
    .bind(scope)
    .bind(key)
    .bind(request_hash)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(None);
    }
    let (stored_hash, status, response): (Vec<u8>, i16, Value) = sqlx::query_as(
        "SELECT request_hash, http_status, response FROM api_idempotency WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_one(&mut *tx)
    .await?;
    if stored_hash != request_hash {
        return Err(VaultError::conflict(
            "idempotency_conflict",
            "this Idempotency-Key was already used for a different request",
        ));
    }
    Ok(Some((
        StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK),
        response,
    )))
}

/// Store the answer for `key`.
pub async fn finish(
    tx: &mut PgConnection,
    scope: &str,
    key: &str,
    status: StatusCode,
    response: &Value,
) -> Result<(), VaultError> {
    sqlx::query(
        "UPDATE api_idempotency SET http_status = $3, response = $4 WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .bind(status.as_u16() as i16)
    .bind(response)
    .execute(tx)
    .await?;
    Ok(())
}

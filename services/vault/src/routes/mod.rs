//! HTTP routes, one module per resource.
//!
//! Each module owns its router. The helpers below are the checks and answers several resources share, kept
//! in one place so that the same question gets the same code, message and status everywhere.

pub mod admin;
pub mod auth;
pub mod games;
pub mod internal;
pub mod payments;
pub mod wallet;

use axum::extract::{
    Path, Query,
    rejection::{PathRejection, QueryRejection},
};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{
    domain::money::{CurrencyCode, DecimalInput, format_minor},
    error::VaultError,
    ledger::currencies::Currency,
    state::AppState,
};

/// The query string, or `400 invalid_query`. Handlers take the query as a `Result` and call this in their
/// body, so that authentication and path errors are still reported first.
pub(crate) fn parse_query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, VaultError> {
    query
        .map(|Query(query)| query)
        .map_err(|e| VaultError::bad_request("invalid_query", e.body_text()))
}

/// A player id from the path, or a JSON 400.
pub(crate) fn player_path(id: Result<Path<Uuid>, PathRejection>) -> Result<Uuid, VaultError> {
    id.map(|Path(id)| id)
        .map_err(|_| VaultError::bad_request("invalid_player_id", "the player id is not a UUID"))
}

/// `404 player_not_found`: an unknown id and a staff account (which holds no money) look the same.
pub(crate) fn unknown_player() -> VaultError {
    VaultError::not_found("player_not_found", "unknown player")
}

/// Refuse unless `player_id` is a player.
pub(crate) async fn require_player(state: &AppState, player_id: Uuid) -> Result<(), VaultError> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM players WHERE id = $1 AND role = 'player')",
    )
    .bind(player_id)
    .fetch_one(&state.pool)
    .await?;
    if exists {
        Ok(())
    } else {
        Err(unknown_player())
    }
}

/// Whether the player is locked; `None` when `player_id` is not a player.
pub(crate) async fn player_locked(
    state: &AppState,
    player_id: Uuid,
) -> Result<Option<bool>, VaultError> {
    Ok(
        sqlx::query_scalar("SELECT locked FROM players WHERE id = $1 AND role = 'player'")
            .bind(player_id)
            .fetch_optional(&state.pool)
            .await?,
    )
}

/// The EUR rate of `currency`. Without one no transfer can be valued, so the request is unavailable (503)
/// rather than refused.
pub(crate) fn eur_rate(state: &AppState, currency: &Currency) -> Result<Decimal, VaultError> {
    state.rates.rate(&currency.code).ok_or_else(|| {
        VaultError::Unavailable(anyhow::anyhow!("no exchange rate for {}", currency.code))
    })
}

/// `422 insufficient_funds`, telling the player the balance that did not cover the debit.
pub(crate) fn insufficient_funds(balance: i64, currency: &Currency) -> VaultError {
    VaultError::unprocessable(
        "insufficient_funds",
        format!(
            "the balance is {} {}",
            format_minor(balance, currency.exp()),
            currency.code
        ),
    )
}

/// The exponent of a currency code read from a stored row. Rows outlive configuration: a currency that
/// is no longer configured is shown with 2 decimals rather than failing the whole listing.
pub(crate) fn exponent_of(state: &AppState, currency: &str) -> u32 {
    CurrencyCode::parse(currency)
        .ok()
        .and_then(|c| state.currencies.get(&c).ok())
        .map(|c| c.exp())
        .unwrap_or(2)
}

/// Serialise an amount as the text the client sent: request hashes (idempotency) must see exactly what was
/// sent, not a normalised number.
pub(crate) fn decimal_as_text<S: serde::Serializer>(
    v: &DecimalInput,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.0)
}

/// A page read with `LIMIT limit + 1` (the extra row only tells whether another page follows): the rows to
/// show, and their last one when there is a next page (the next cursor is its key). `limit` is at least 1.
pub(crate) fn page<T>(rows: &[T], limit: i64) -> (&[T], Option<&T>) {
    let limit = limit as usize;
    let shown = &rows[..rows.len().min(limit)];
    let next = if rows.len() > limit {
        shown.last()
    } else {
        None
    };
    (shown, next)
}

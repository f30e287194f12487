//! The player's wallet and the currency list.

use axum::{
    Json, Router,
    extract::{Query, State},
    routing::get,
};
use casino_auth::extract::Player;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row as _;

use crate::{
    domain::money::{CurrencyCode, format_minor},
    error::VaultError,
    routes::{exponent_of, page, parse_query},
    state::AppState,
};

/// The wallet router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/wallet", get(wallet))
        .route("/api/v1/wallet/transfers", get(transfers))
        .route("/api/v1/currencies", get(currencies))
}

async fn wallet(
    State(state): State<AppState>,
    Player(claims): Player,
) -> Result<Json<Value>, VaultError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT currency, balance FROM accounts WHERE player_id = $1 ORDER BY currency",
    )
    .bind(claims.sub)
    .fetch_all(&state.pool)
    .await?;
    let balances: Vec<Value> = rows
        .into_iter()
        .map(|(currency, balance)| {
            let exponent = exponent_of(&state, &currency);
            json!({ "currency": currency, "balance": format_minor(balance, exponent), "balance_minor": balance })
        })
        .collect();
    Ok(Json(
        json!({ "player_id": claims.sub, "balances": balances }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransfersQuery {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    from: Option<DateTime<Utc>>,
    #[serde(default)]
    to: Option<DateTime<Utc>>,
}

async fn transfers(
    State(state): State<AppState>,
    Player(claims): Player,
    query: Result<Query<TransfersQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, VaultError> {
    let query = parse_query(query)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(VaultError::bad_request(
            "invalid_query",
            "limit must be between 1 and 200",
        ));
    }
    let before: Option<i64> =
        match &query.cursor {
            None => None,
            Some(cursor) => Some(cursor.parse().map_err(|_| {
                VaultError::bad_request("invalid_cursor", "the cursor is not valid")
            })?),
        };
    if let Some(kind) = &query.kind {
        kind.parse::<casino_events::payloads::TransferKind>()
            .map_err(|m| VaultError::bad_request("invalid_query", m))?;
    }
    let currency = match &query.currency {
        Some(c) => Some(
            CurrencyCode::parse(c)
                .map_err(|m| VaultError::bad_request("invalid_query", m))?
                .to_string(),
        ),
        None => None,
    };
    let rows = sqlx::query(
        "SELECT id, seq, kind, amount, currency, player_delta, balance_after, amount_eur, round_id, game_id,
                reference_transfer_id, created_at
         FROM transfers
         WHERE player_id = $1
           AND ($2::bigint IS NULL OR seq < $2)
           AND ($3::text IS NULL OR kind = $3)
           AND ($4::text IS NULL OR currency = $4)
           AND ($5::timestamptz IS NULL OR created_at >= $5)
           AND ($6::timestamptz IS NULL OR created_at < $6)
         ORDER BY seq DESC LIMIT $7",
    )
    .bind(claims.sub)
    .bind(before)
    .bind(&query.kind)
    .bind(&currency)
    .bind(query.from)
    .bind(query.to)
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let (shown, next) = page(&rows, limit);
    let items: Vec<Value> = shown
        .iter()
        .map(|row| {
            let currency: String = row.get("currency");
            let exponent = exponent_of(&state, &currency);
            json!({
                "id": row.get::<uuid::Uuid, _>("id"),
                "kind": row.get::<String, _>("kind"),
                "currency": currency,
                "amount": format_minor(row.get("amount"), exponent),
                "delta": format_minor(row.get("player_delta"), exponent),
                "balance_after": row.get::<Option<i64>, _>("balance_after").map(|b| format_minor(b, exponent)),
                "amount_eur": row.get::<Decimal, _>("amount_eur").round_dp(2).to_string(),
                "round_id": row.get::<Option<String>, _>("round_id"),
                "game_id": row.get::<Option<String>, _>("game_id"),
                "reference_transfer_id": row.get::<Option<uuid::Uuid>, _>("reference_transfer_id"),
                "created_at": row.get::<DateTime<Utc>, _>("created_at"),
            })
        })
        .collect();
    let next_cursor = next.map(|row| row.get::<i64, _>("seq").to_string());
    Ok(Json(json!({ "items": items, "next_cursor": next_cursor })))
}

async fn currencies(State(state): State<AppState>) -> Json<Value> {
    let rates = state.rates.all();
    let list: Vec<Value> = state
        .currencies
        .all()
        .into_iter()
        .map(|c| {
            let exponent = c.exp();
            json!({
                "code": c.code,
                "exponent": exponent,
                "enabled": c.enabled,
                "rate_eur": rates.get(&c.code).map(|r| r.to_string()),
                "min_deposit": format_minor(c.min_deposit, exponent),
                "max_deposit": format_minor(c.max_deposit, exponent),
                "min_withdrawal": format_minor(c.min_withdrawal, exponent),
                "max_withdrawal": format_minor(c.max_withdrawal, exponent),
                "daily_withdrawal_limit": format_minor(c.daily_withdrawal_limit, exponent),
            })
        })
        .collect();
    Json(json!({ "currencies": list }))
}

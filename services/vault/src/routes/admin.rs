//! Staff and admin operations: adjustments, bet limits, abuse signals, locking players.

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post, put},
};
use casino_auth::extract::Staff;
use casino_events::payloads::TransferKind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row as _;
use uuid::Uuid;

use crate::{
    domain::money::{
        AmountError, CurrencyCode, DecimalInput, format_minor, parse_signed_minor, to_eur,
    },
    error::{ApiJson, VaultError},
    idempotency,
    ledger::{Direction, PostError, Posting, currencies::amount_error},
    routes::{
        decimal_as_text, eur_rate, exponent_of, insufficient_funds, parse_query, player_path,
        require_player, unknown_player,
    },
    state::AppState,
};

/// The admin router (public port, staff or admin JWT).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/adjustments", post(adjust))
        .route("/api/v1/admin/limits", put(set_limit).get(list_limits))
        .route("/api/v1/admin/abuse-signals", get(abuse_signals))
        .route("/api/v1/admin/players/{id}/lock", post(lock))
        .route("/api/v1/admin/players/{id}/unlock", post(unlock))
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct AdjustmentRequest {
    player_id: Uuid,
    currency: CurrencyCode,
    /// Signed: positive credits the player, negative debits.
    #[serde(serialize_with = "decimal_as_text")]
    amount: DecimalInput,
    reason: String,
}

async fn adjust(
    State(state): State<AppState>,
    Staff(staff): Staff,
    headers: HeaderMap,
    ApiJson(request): ApiJson<AdjustmentRequest>,
) -> Result<(StatusCode, Json<Value>), VaultError> {
    let key = idempotency::key_from(&headers)?;
    let reason = request.reason.trim();
    if reason.is_empty() || reason.len() > 500 {
        return Err(VaultError::bad_request(
            "reason_required",
            "an adjustment needs a reason (1 to 500 characters)",
        ));
    }
    let currency = state.currencies.get(&request.currency)?;
    let amount = parse_signed_minor(&request.amount.0, &currency.code, currency.exp())
        .map_err(amount_error)?;
    if amount == 0 {
        return Err(VaultError::bad_request(
            "invalid_amount",
            "the amount must not be zero",
        ));
    }
    // The posting's size. The parser already refuses `i64::MIN` (whose magnitude has no i64); checked here
    // too rather than trusting it with a panic (debug) or a negative amount the database refuses (release).
    let magnitude = amount
        .checked_abs()
        .ok_or_else(|| amount_error(AmountError::TooLarge))?;
    require_player(&state, request.player_id).await?;
    let rate = eur_rate(&state, &currency)?;
    // Resolve the system account before the transaction (its creation uses another connection).
    state.ledger.system_account("house", &currency.code).await?;
    let mut tx = state.pool.begin().await?;
    if let Some((status, body)) =
        idempotency::claim(&mut tx, "adjustment", &key, &idempotency::hash(&request)).await?
    {
        return Ok((status, Json(body)));
    }
    let posting = Posting {
        kind: TransferKind::Adjustment,
        player_id: request.player_id,
        currency: currency.code.clone(),
        amount: magnitude,
        amount_eur: to_eur(magnitude, currency.exp(), rate),
        direction: if amount > 0 {
            Direction::CreditPlayer
        } else {
            Direction::DebitPlayer
        },
        counterparty: "house".into(),
        idempotency_key: format!("adjustment:{key}"),
        game: None,
        reference_transfer_id: None,
        round_closed: false,
        metadata: json!({ "reason": reason, "staff_id": staff.sub }),
    };
    let posted = match state.ledger.post(&mut tx, posting).await {
        Ok(posted) => posted,
        Err(PostError::InsufficientFunds { balance }) => {
            return Err(insufficient_funds(balance, &currency));
        }
        Err(PostError::Overflow) => {
            return Err(VaultError::unprocessable(
                "amount_too_large",
                "the balance would overflow",
            ));
        }
        Err(PostError::Duplicate) => {
            return Err(VaultError::conflict(
                "idempotency_conflict",
                "adjustment already posted",
            ));
        }
        Err(PostError::Db(e)) => return Err(e.into()),
    };
    let body = json!({
        "transfer_id": posted.transfer_id,
        "player_id": request.player_id,
        "currency": currency.code,
        "amount": format_minor(amount, currency.exp()),
        "balance": format_minor(posted.balance_after, currency.exp()),
    });
    idempotency::finish(&mut tx, "adjustment", &key, StatusCode::CREATED, &body).await?;
    tx.commit().await?;
    posted.record_metrics();
    tracing::info!(staff_id = %staff.sub, player_id = %request.player_id, transfer_id = %posted.transfer_id, reason, "adjustment posted");
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitRequest {
    /// A game id, or absent for the currency's default.
    #[serde(default)]
    game_id: Option<String>,
    currency: CurrencyCode,
    min_bet: DecimalInput,
    max_bet: DecimalInput,
}

async fn set_limit(
    State(state): State<AppState>,
    Staff(staff): Staff,
    ApiJson(request): ApiJson<LimitRequest>,
) -> Result<Json<Value>, VaultError> {
    let currency = state.currencies.get(&request.currency)?;
    let min = currency.parse_amount(&request.min_bet.0)?;
    let max = currency.parse_amount(&request.max_bet.0)?;
    if max < min {
        return Err(VaultError::bad_request(
            "invalid_limits",
            "max_bet must not be below min_bet",
        ));
    }
    let game = request.game_id.as_deref().map(str::trim).unwrap_or("*");
    if game.is_empty() || game.len() > 128 {
        return Err(VaultError::bad_request(
            "invalid_body",
            "game_id must be 1 to 128 characters",
        ));
    }
    sqlx::query(
        "INSERT INTO bet_limits (game_id, currency, min_bet, max_bet, updated_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (game_id, currency) DO UPDATE
         SET min_bet = EXCLUDED.min_bet, max_bet = EXCLUDED.max_bet, updated_by = EXCLUDED.updated_by, updated_at = now()",
    )
    .bind(game)
    .bind(&currency.code)
    .bind(min)
    .bind(max)
    .bind(staff.sub)
    .execute(&state.pool)
    .await?;
    tracing::info!(staff_id = %staff.sub, game_id = game, currency = %currency.code, min, max, "bet limit set");
    Ok(Json(json!({
        "game_id": game,
        "currency": currency.code,
        "min_bet": format_minor(min, currency.exp()),
        "max_bet": format_minor(max, currency.exp()),
    })))
}

async fn list_limits(
    State(state): State<AppState>,
    Staff(_): Staff,
) -> Result<Json<Value>, VaultError> {
    let rows = sqlx::query(
        "SELECT game_id, currency, min_bet, max_bet FROM bet_limits ORDER BY currency, game_id",
    )
    .fetch_all(&state.pool)
    .await?;
    let limits: Vec<Value> = rows
        .iter()
        .map(|row| {
            let currency: String = row.get("currency");
            let exp = exponent_of(&state, &currency);
            json!({
                "game_id": row.get::<String, _>("game_id"),
                "currency": currency,
                "min_bet": format_minor(row.get("min_bet"), exp),
                "max_bet": format_minor(row.get("max_bet"), exp),
            })
        })
        .collect();
    Ok(Json(json!({ "limits": limits })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalsQuery {
    #[serde(default)]
    player_id: Option<Uuid>,
    #[serde(default)]
    signal: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

async fn abuse_signals(
    State(state): State<AppState>,
    Staff(_): Staff,
    query: Result<Query<SignalsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, VaultError> {
    let query = parse_query(query)?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let rows = sqlx::query(
        "SELECT id, player_id, signal, details, created_at FROM abuse_signals
         WHERE ($1::uuid IS NULL OR player_id = $1) AND ($2::text IS NULL OR signal = $2)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(query.player_id)
    .bind(&query.signal)
    .bind(limit)
    .fetch_all(&state.pool)
    .await?;
    let signals: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "id": row.get::<i64, _>("id"),
                "player_id": row.get::<Option<Uuid>, _>("player_id"),
                "signal": row.get::<String, _>("signal"),
                "details": row.get::<Value, _>("details"),
                "created_at": row.get::<chrono::DateTime<chrono::Utc>, _>("created_at"),
            })
        })
        .collect();
    Ok(Json(json!({ "signals": signals })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockRequest {
    reason: String,
}

async fn lock(
    State(state): State<AppState>,
    Staff(staff): Staff,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
    ApiJson(request): ApiJson<LockRequest>,
) -> Result<Json<Value>, VaultError> {
    let id = player_path(id)?;
    let reason = request.reason.trim();
    if reason.is_empty() {
        return Err(VaultError::bad_request(
            "reason_required",
            "locking needs a reason",
        ));
    }
    let changed = crate::players::lock(&state.pool, id, reason, &staff.sub.to_string()).await;
    lock_answer(id, true, changed)
}

async fn unlock(
    State(state): State<AppState>,
    Staff(staff): Staff,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
    ApiJson(request): ApiJson<LockRequest>,
) -> Result<Json<Value>, VaultError> {
    let id = player_path(id)?;
    let changed = crate::players::unlock(
        &state.pool,
        id,
        request.reason.trim(),
        &staff.sub.to_string(),
    )
    .await;
    lock_answer(id, false, changed)
}

/// The answer of a lock or unlock: the state the player is now in, and whether this call changed it
/// (repeating one is not an error).
fn lock_answer(
    id: Uuid,
    locked: bool,
    changed: Result<bool, sqlx::Error>,
) -> Result<Json<Value>, VaultError> {
    match changed {
        Ok(changed) => Ok(Json(
            json!({ "player_id": id, "locked": locked, "changed": changed }),
        )),
        Err(sqlx::Error::RowNotFound) => Err(unknown_player()),
        Err(e) => Err(e.into()),
    }
}

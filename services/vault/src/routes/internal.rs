//! Service-to-service API on the admin port (`Authorization: Bearer <VAULT_INTERNAL_TOKEN>`).
//!
//! - `POST /internal/v1/credits`: an idempotent credit from another service (bonus, jackpot payout).
//! - `GET /internal/v1/players/{id}/wagering?from=&to=`: wagered/won totals in EUR over `[from, to)` (bets
//!   minus rollbacks, each by its own time), for Concierge's reconciliation.
//! - `GET /internal/v1/wagering/players?from=&to=&cursor=&limit=`: the players with wagering activity (a
//!   bet or a rollback) in `[from, to)`, ordered by id and paginated, so Concierge's reconciliation also
//!   checks players whose every event it missed.

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use casino_events::payloads::TransferKind;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

use crate::{
    domain::money::{CurrencyCode, DecimalInput, format_minor, to_eur},
    error::{ApiJson, VaultError},
    idempotency,
    ledger::{Direction, PostError, Posting},
    routes::{decimal_as_text, eur_rate, page, parse_query, player_path, require_player},
    state::AppState,
};

/// The internal router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/internal/v1/credits", post(credit))
        .route("/internal/v1/players/{id}/wagering", get(wagering))
        .route("/internal/v1/wagering/players", get(wagering_players))
}

/// Longest window `GET /internal/v1/wagering/players` accepts (Concierge's windows divide a day).
pub const MAX_WAGERING_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(7);
/// Page size of `GET /internal/v1/wagering/players` when `limit` is not given, and the largest allowed.
pub const WAGERING_PLAYERS_PAGE: (i64, i64) = (1000, 10_000);

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), VaultError> {
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let expected = state.settings.common.internal_token.as_bytes();
    if presented.as_bytes().ct_eq(expected).into() {
        Ok(())
    } else {
        metrics::counter!("vault_auth_failures_total", "reason" => "bad_internal_token")
            .increment(1);
        Err(VaultError::refused(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid internal token is required",
        ))
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct CreditRequest {
    player_id: Uuid,
    currency: CurrencyCode,
    #[serde(serialize_with = "decimal_as_text")]
    amount: DecimalInput,
    kind: TransferKind,
    idempotency_key: String,
    reason: String,
}

async fn credit(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<CreditRequest>,
) -> Result<(StatusCode, Json<Value>), VaultError> {
    authorize(&state, &headers)?;
    let counterparty = match request.kind {
        TransferKind::Bonus => "bonus",
        TransferKind::JackpotPayout => "jackpot",
        _ => {
            return Err(VaultError::bad_request(
                "invalid_kind",
                "internal credits are bonus or jackpot_payout",
            ));
        }
    };
    let key = request.idempotency_key.trim();
    if key.is_empty() || key.len() > 128 {
        return Err(VaultError::bad_request(
            "idempotency_key_required",
            "idempotency_key must be 1 to 128 characters",
        ));
    }
    let currency = state.currencies.get(&request.currency)?;
    let amount = currency.parse_amount(&request.amount.0)?;
    let rate = eur_rate(&state, &currency)?;
    require_player(&state, request.player_id).await?;
    // Resolve the system account before the transaction (its creation uses another connection).
    state
        .ledger
        .system_account(counterparty, &currency.code)
        .await?;
    let mut tx = state.pool.begin().await?;
    if let Some((status, body)) = idempotency::claim(
        &mut tx,
        "internal-credit",
        key,
        &idempotency::hash(&request),
    )
    .await?
    {
        return Ok((status, Json(body)));
    }
    let posting = Posting {
        kind: request.kind,
        player_id: request.player_id,
        currency: currency.code.clone(),
        amount,
        amount_eur: to_eur(amount, currency.exp(), rate),
        direction: Direction::CreditPlayer,
        counterparty: counterparty.into(),
        idempotency_key: format!("internal:{key}"),
        game: None,
        reference_transfer_id: None,
        round_closed: false,
        metadata: json!({ "reason": request.reason }),
    };
    let posted = state
        .ledger
        .post(&mut tx, posting)
        .await
        .map_err(|e| match e {
            PostError::Overflow => {
                VaultError::unprocessable("amount_too_large", "the balance would overflow")
            }
            PostError::Duplicate => {
                VaultError::conflict("idempotency_conflict", "credit already posted")
            }
            PostError::InsufficientFunds { .. } => {
                VaultError::Internal(anyhow::anyhow!("a credit cannot lack funds"))
            }
            PostError::Db(e) => e.into(),
        })?;
    let body = json!({
        "transfer_id": posted.transfer_id,
        "balance": format_minor(posted.balance_after, currency.exp()),
        "currency": currency.code,
    });
    idempotency::finish(&mut tx, "internal-credit", key, StatusCode::CREATED, &body).await?;
    tx.commit().await?;
    posted.record_metrics();
    Ok((StatusCode::CREATED, Json(body)))
}

/// A wagering window `[from, to)` must not be empty.
fn check_window(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), VaultError> {
    if to <= from {
        return Err(VaultError::bad_request(
            "invalid_query",
            "`to` must be after `from`",
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WageringQuery {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

async fn wagering(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
    query: Result<Query<WageringQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, VaultError> {
    authorize(&state, &headers)?;
    let id = player_path(id)?;
    let query = parse_query(query)?;
    check_window(query.from, query.to)?;
    // Each transfer counts in the window of its own time: a bet adds its EUR value when placed, a
    // rollback subtracts the rolled-back bet's value when it happens. Closed windows never change, which is
    // what Concierge's reconciliation compares against.
    let (wagered, won, bets): (Option<Decimal>, Option<Decimal>, i64) = sqlx::query_as(
        "SELECT
            COALESCE(sum(amount_eur) FILTER (WHERE kind = 'bet'), 0)
              - COALESCE(sum(amount_eur) FILTER (WHERE kind = 'rollback'), 0),
            sum(amount_eur) FILTER (WHERE kind = 'win'),
            count(*) FILTER (WHERE kind = 'bet') - count(*) FILTER (WHERE kind = 'rollback')
         FROM transfers
         WHERE player_id = $1 AND kind IN ('bet', 'win', 'rollback') AND created_at >= $2 AND created_at < $3",
    )
    .bind(id)
    .bind(query.from)
    .bind(query.to)
    .fetch_one(&state.pool)
    .await?;
    Ok(Json(json!({
        "player_id": id,
        "from": query.from,
        "to": query.to,
        "wagered_eur": wagered.unwrap_or_default().round_dp(8).normalize().to_string(),
        "won_eur": won.unwrap_or_default().round_dp(8).normalize().to_string(),
        "bets": bets,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WageringPlayersQuery {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// The players with a bet or a rollback in `[from, to)` (each transfer by its own time, like
/// [`wagering`]), ordered by id. `next_cursor` is `null` on the last page; otherwise pass it back as
/// `cursor` for the next one.
async fn wagering_players(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<WageringPlayersQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, VaultError> {
    authorize(&state, &headers)?;
    let query = parse_query(query)?;
    check_window(query.from, query.to)?;
    if query.to - query.from > MAX_WAGERING_WINDOW {
        return Err(VaultError::bad_request(
            "window_too_long",
            format!(
                "the window may span at most {} days",
                MAX_WAGERING_WINDOW.num_days()
            ),
        ));
    }
    let cursor = match query.cursor.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(raw.parse::<Uuid>().map_err(|_| {
            VaultError::bad_request("invalid_cursor", "`cursor` must be a `next_cursor` value")
        })?),
    };
    let (default_limit, max_limit) = WAGERING_PLAYERS_PAGE;
    let limit = match query.limit.as_deref() {
        None => default_limit,
        Some(raw) => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=max_limit).contains(l))
            .ok_or_else(|| {
                VaultError::bad_request(
                    "invalid_limit",
                    format!("`limit` must be a whole number from 1 to {max_limit}"),
                )
            })?,
    };
    // One more than the page, to know whether another page follows.
    let players: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT player_id FROM transfers
          WHERE kind IN ('bet', 'rollback') AND player_id IS NOT NULL
            AND created_at >= $1 AND created_at < $2
            AND ($3::uuid IS NULL OR player_id > $3)
          ORDER BY player_id
          LIMIT $4",
    )
    .bind(query.from)
    .bind(query.to)
    .bind(cursor)
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let (players, next) = page(&players, limit);
    let next_cursor = next.map(Uuid::to_string);
    Ok(Json(json!({
        "from": query.from,
        "to": query.to,
        "players": players,
        "next_cursor": next_cursor,
    })))
}

//! Deposits and withdrawals (issue "Vault payments").
//!
//! - `POST /api/v1/payments/deposits` {currency, amount, provider?} + `Idempotency-Key`: a `pending` payment,
//!   the provider asked, the redirect returned. The provider's signed webhook settles it: success credits the
//!   player from `psp:<provider>` exactly once however often it is retried; failure marks it `failed`. A
//!   pending deposit expires after `VAULT_PAYMENT_EXPIRY_SECONDS`; a late success is still credited and flagged.
//! - `POST /api/v1/payments/withdrawals` {currency, amount, provider?} + `Idempotency-Key`: the funds are held
//!   at once (player → `psp:<provider>`); above the currency's review threshold the payment waits in `review`
//!   for staff; otherwise the payout is requested. A failed payout (or a rejection) is reversed by a
//!   `withdrawal_reversal` transfer.
//! - `GET /api/v1/payments/{id}`, `GET /api/v1/payments?cursor=`: the player's own payments.
//! - `POST /api/v1/payments/webhooks/{provider}`: the providers' callbacks.
//! - Staff: `GET /api/v1/admin/withdrawals?status=review`, `POST /api/v1/admin/withdrawals/{id}/approve|reject`,
//!   `PUT /api/v1/admin/payments/sandbox` (the sandbox PSP's latency and failure rate).

use std::time::Duration;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State, rejection::PathRejection},
    http::{HeaderMap, StatusCode},
    routing::{get, post, put},
};
use casino_auth::extract::{Player, Staff};
use casino_events::{
    Envelope,
    payloads::{PaymentEvent, TransferKind, payment_types},
    topics,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool, Row as _};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    abuse::Signal,
    domain::money::{CurrencyCode, DecimalInput, format_minor, to_eur},
    error::{ApiJson, VaultError},
    idempotency,
    ledger::{self, PostError, Posting, currencies::Currency, outbox},
    payments::{Behaviour, Direction, PaymentOrder, WebhookError, WebhookStatus},
    routes::{
        decimal_as_text, eur_rate, exponent_of, insufficient_funds, page, parse_query,
        player_locked, unknown_player,
    },
    state::AppState,
};

/// The payments router (public port).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/payments/deposits", post(deposit))
        .route("/api/v1/payments/withdrawals", post(withdraw))
        .route("/api/v1/payments", get(list))
        .route("/api/v1/payments/{id}", get(show))
        .route("/api/v1/payments/webhooks/{provider}", post(webhook))
        .route("/api/v1/admin/withdrawals", get(review_queue))
        .route("/api/v1/admin/withdrawals/{id}/approve", post(approve))
        .route("/api/v1/admin/withdrawals/{id}/reject", post(reject))
        .route(
            "/api/v1/admin/payments/sandbox",
            put(sandbox).get(sandbox_table),
        )
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PaymentRequest {
    currency: CurrencyCode,
    #[serde(serialize_with = "decimal_as_text")]
    amount: DecimalInput,
    #[serde(default)]
    provider: Option<String>,
}

/// What a payment's `Idempotency-Key` stands for. Deposits and withdrawals share the player's key space
/// (`payment:{player}`), so the direction is part of the request: the same key and body sent to the other
/// endpoint is another request (`409 idempotency_conflict`), never a replay of the first.
#[derive(Debug, Serialize)]
struct Fingerprint<'a> {
    direction: Direction,
    request: &'a PaymentRequest,
}

/// `423 player_locked` for a withdrawal.
fn no_withdrawals_locked() -> VaultError {
    VaultError::refused(
        StatusCode::LOCKED,
        "player_locked",
        "the account is locked: no withdrawals",
    )
}

/// A payment row.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Payment {
    id: Uuid,
    player_id: Uuid,
    direction: String,
    provider: String,
    currency: String,
    amount: i64,
    amount_eur: Decimal,
    status: String,
    provider_reference: Option<String>,
    redirect_url: Option<String>,
    failure_reason: Option<String>,
    flagged: bool,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

const FINAL: [&str; 5] = ["succeeded", "failed", "expired", "reversed", "rejected"];

impl Payment {
    fn direction(&self) -> Direction {
        if self.direction == "deposit" {
            Direction::Deposit
        } else {
            Direction::Withdrawal
        }
    }

    fn view(&self, state: &AppState) -> Value {
        let exponent = exponent_of(state, &self.currency);
        json!({
            "id": self.id,
            "direction": self.direction,
            "provider": self.provider,
            "currency": self.currency,
            "amount": format_minor(self.amount, exponent),
            "status": self.status,
            "provider_reference": self.provider_reference,
            "redirect_url": self.redirect_url,
            "failure_reason": self.failure_reason,
            "flagged": self.flagged,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        })
    }
}

async fn load(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<Payment>, sqlx::Error> {
    let sql = if lock {
        "SELECT * FROM payments WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT * FROM payments WHERE id = $1"
    };
    sqlx::query_as::<_, Payment>(sql)
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Record a status change: the row, its history, its event (all in `tx`).
async fn set_status(
    tx: &mut PgConnection,
    payment: &Payment,
    status: &str,
    reason: Option<&str>,
    flag: Option<&str>,
) -> Result<(), sqlx::Error> {
    let finished = FINAL.contains(&status);
    sqlx::query(
        "UPDATE payments SET status = $2, updated_at = now(),
             finished_at = CASE WHEN $3 THEN now() ELSE finished_at END,
             failure_reason = COALESCE($4, failure_reason),
             flagged = flagged OR $5, flag_reason = COALESCE($6, flag_reason)
         WHERE id = $1",
    )
    .bind(payment.id)
    .bind(status)
    .bind(finished)
    .bind(reason)
    .bind(flag.is_some())
    .bind(flag)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO payment_events (payment_id, status, details) VALUES ($1, $2, $3)")
        .bind(payment.id)
        .bind(status)
        .bind(json!({ "reason": reason, "flag": flag }))
        .execute(&mut *tx)
        .await?;
    let event_type = match (status, payment.direction()) {
        ("pending", _) => payment_types::PENDING,
        ("review", _) => payment_types::IN_REVIEW,
        ("succeeded", _) => payment_types::SUCCEEDED,
        ("expired", _) => payment_types::EXPIRED,
        ("reversed" | "rejected", _) => payment_types::REVERSED,
        _ => payment_types::FAILED,
    };
    let event = Envelope::new(
        event_type,
        "vault",
        Some(payment.player_id),
        PaymentEvent {
            payment_id: payment.id,
            direction: payment.direction.clone(),
            status: status.to_owned(),
            currency: payment.currency.clone(),
            amount: payment.amount,
            amount_eur: payment.amount_eur,
            provider: payment.provider.clone(),
            reason: reason.map(str::to_owned),
            flagged: payment.flagged || flag.is_some(),
        },
    );
    outbox::enqueue(tx, topics::VAULT_PAYMENTS, &event).await?;
    tracing::info!(payment_id = %payment.id, player_id = %payment.player_id, direction = %payment.direction,
        provider = %payment.provider, currency = %payment.currency, status, reason, flag, "payment status changed");
    Ok(())
}

/// Metrics of a payment that reached a final status (call after commit).
fn record_final(payment: &Payment, status: &str) {
    use rust_decimal::prelude::ToPrimitive as _;
    metrics::counter!("vault_payments_total", "direction" => payment.direction.clone(),
        "currency" => payment.currency.clone(), "provider" => payment.provider.clone(), "status" => status.to_owned())
    .increment(1);
    let elapsed = (Utc::now() - payment.created_at).num_milliseconds().max(0) as f64 / 1000.0;
    metrics::histogram!("vault_payment_duration_seconds", "direction" => payment.direction.clone(),
        "provider" => payment.provider.clone())
    .record(elapsed);
    if status == "succeeded" {
        let eur = payment.amount_eur.to_f64().unwrap_or(0.0);
        let name = if payment.direction == "deposit" {
            "vault_deposit_amount_eur_total"
        } else {
            "vault_withdrawal_amount_eur_total"
        };
        metrics::gauge!(name, "currency" => payment.currency.clone()).increment(eur);
    }
}

fn pick_provider(state: &AppState, requested: Option<&str>) -> Result<String, VaultError> {
    match requested {
        Some(name) => {
            let name = name.trim().to_ascii_lowercase();
            if state.providers.contains_key(&name) {
                Ok(name)
            } else {
                Err(VaultError::bad_request(
                    "unknown_provider",
                    format!("no payment provider named {name:?}"),
                ))
            }
        }
        None => {
            let mut names: Vec<&String> = state.providers.keys().collect();
            names.sort();
            names.first().map(|n| (*n).clone()).ok_or_else(|| {
                VaultError::unprocessable(
                    "no_payment_provider",
                    "no payment provider is configured",
                )
            })
        }
    }
}

fn check_amount(currency: &Currency, amount: i64, direction: Direction) -> Result<(), VaultError> {
    let (min, max) = match direction {
        Direction::Deposit => (currency.min_deposit, currency.max_deposit),
        Direction::Withdrawal => (currency.min_withdrawal, currency.max_withdrawal),
    };
    let exp = currency.exp();
    if amount < min {
        return Err(VaultError::unprocessable(
            "amount_below_minimum",
            format!(
                "the minimum {} is {} {}",
                direction.as_str(),
                format_minor(min, exp),
                currency.code
            ),
        ));
    }
    if amount > max {
        return Err(VaultError::unprocessable(
            "amount_above_maximum",
            format!(
                "the maximum {} is {} {}",
                direction.as_str(),
                format_minor(max, exp),
                currency.code
            ),
        ));
    }
    Ok(())
}

fn order(state: &AppState, payment: &Payment) -> PaymentOrder {
    PaymentOrder {
        payment_id: payment.id,
        direction: payment.direction(),
        currency: payment.currency.clone(),
        amount: payment.amount,
        webhook_url: format!(
            "{}/api/v1/payments/webhooks/{}",
            state.psp_urls.public(),
            payment.provider
        ),
    }
}

/// Ask the provider; store its reference, or fail the payment (reversing a withdrawal's hold).
async fn initiate(state: &AppState, payment: &Payment) -> Result<Payment, VaultError> {
    let provider = state
        .providers
        .get(&payment.provider)
        .cloned()
        .ok_or_else(|| {
            VaultError::Internal(anyhow::anyhow!("provider {} vanished", payment.provider))
        })?;
    let order = order(state, payment);
    let initiated = match payment.direction() {
        Direction::Deposit => provider.initiate_deposit(&order).await,
        Direction::Withdrawal => provider.initiate_payout(&order).await,
    };
    match initiated {
        Ok(initiated) => {
            sqlx::query("UPDATE payments SET provider_reference = $2, redirect_url = $3, updated_at = now() WHERE id = $1")
                .bind(payment.id)
                .bind(&initiated.reference)
                .bind(&initiated.redirect_url)
                .execute(&state.pool)
                .await?;
            let mut conn = state.pool.acquire().await?;
            Ok(load(&mut conn, payment.id, false)
                .await?
                .unwrap_or_else(|| payment.clone()))
        }
        Err(error) => {
            tracing::error!(payment_id = %payment.id, provider = %payment.provider, error = %format!("{error:#}"),
                "payment provider unreachable");
            metrics::counter!("vault_payment_provider_errors_total", "provider" => payment.provider.clone()).increment(1);
            let reason = "provider_unavailable";
            let failed = settle_failure(state, payment.id, reason, "pending").await?;
            Ok(failed.unwrap_or_else(|| payment.clone()))
        }
    }
}

async fn deposit(
    State(state): State<AppState>,
    Player(claims): Player,
    headers: HeaderMap,
    ApiJson(request): ApiJson<PaymentRequest>,
) -> Result<(StatusCode, Json<Value>), VaultError> {
    create(state, claims.sub, headers, request, Direction::Deposit).await
}

async fn withdraw(
    State(state): State<AppState>,
    Player(claims): Player,
    headers: HeaderMap,
    ApiJson(request): ApiJson<PaymentRequest>,
) -> Result<(StatusCode, Json<Value>), VaultError> {
    create(state, claims.sub, headers, request, Direction::Withdrawal).await
}

async fn create(
    state: AppState,
    player_id: Uuid,
    headers: HeaderMap,
    request: PaymentRequest,
    direction: Direction,
) -> Result<(StatusCode, Json<Value>), VaultError> {
    let key = idempotency::key_from(&headers)?;
    let currency = state.currencies.enabled(&request.currency)?;
    let amount = currency.parse_amount(&request.amount.0)?;
    check_amount(&currency, amount, direction)?;
    let provider = pick_provider(&state, request.provider.as_deref())?;
    // A first look without a lock, for the refusal's precedence over the later checks; a withdrawal reads
    // `locked` again under the player's row lock below.
    match player_locked(&state, player_id).await? {
        None => return Err(unknown_player()),
        Some(true) if direction == Direction::Withdrawal => return Err(no_withdrawals_locked()),
        _ => {}
    }
    let rate = eur_rate(&state, &currency)?;
    let amount_eur = to_eur(amount, currency.exp(), rate);
    let scope = format!("payment:{player_id}");
    // Resolve the PSP's account before the transaction: its creation must not wait for a second connection
    // while this transaction holds one.
    state
        .ledger
        .system_account(&format!("psp:{provider}"), &currency.code)
        .await?;

    let mut tx = state.pool.begin().await?;
    let fingerprint = idempotency::hash(&Fingerprint {
        direction,
        request: &request,
    });
    if let Some((status, body)) = idempotency::claim(&mut tx, &scope, &key, &fingerprint).await? {
        return Ok((status, Json(body)));
    }
    let id = Uuid::now_v7();
    let mut hold = None;
    let status = if direction == Direction::Withdrawal {
        // Serialise a player's withdrawals so the daily limit check cannot race, and read `locked` under the
        // row lock `players::lock` takes too: a lock committed since the first look refuses the withdrawal
        // here, and a lock still to come waits for this transaction (the hold is then already booked).
        let locked: Option<bool> =
            sqlx::query_scalar("SELECT locked FROM players WHERE id = $1 FOR UPDATE")
                .bind(player_id)
                .fetch_optional(&mut *tx)
                .await?;
        match locked {
            None => return Err(unknown_player()),
            Some(true) => return Err(no_withdrawals_locked()),
            Some(false) => {}
        }
        let today: Option<i64> = sqlx::query_scalar(
            "SELECT sum(amount)::bigint FROM payments
             WHERE player_id = $1 AND direction = 'withdrawal' AND currency = $2
               AND status NOT IN ('failed', 'reversed', 'rejected') AND created_at >= date_trunc('day', now())",
        )
        .bind(player_id)
        .bind(&currency.code)
        .fetch_one(&mut *tx)
        .await?;
        if today.unwrap_or(0) + amount > currency.daily_withdrawal_limit {
            return Err(VaultError::unprocessable(
                "daily_limit_exceeded",
                format!(
                    "the daily withdrawal limit is {} {}",
                    format_minor(currency.daily_withdrawal_limit, currency.exp()),
                    currency.code
                ),
            ));
        }
        let posting = Posting {
            kind: TransferKind::Withdrawal,
            player_id,
            currency: currency.code.clone(),
            amount,
            amount_eur,
            direction: ledger::Direction::DebitPlayer,
            counterparty: format!("psp:{provider}"),
            idempotency_key: format!("withdrawal:{id}"),
            game: None,
            reference_transfer_id: None,
            round_closed: false,
            metadata: json!({ "payment_id": id }),
        };
        match state.ledger.post(&mut tx, posting).await {
            Ok(posted) => hold = Some(posted),
            Err(PostError::InsufficientFunds { balance }) => {
                return Err(insufficient_funds(balance, &currency));
            }
            Err(other) => return Err(ledger_failure(other)),
        }
        if amount > currency.review_threshold {
            "review"
        } else {
            "pending"
        }
    } else {
        "pending"
    };
    sqlx::query(
        "INSERT INTO payments (id, player_id, direction, provider, currency, amount, amount_eur, status,
                               hold_transfer_id, idempotency_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(player_id)
    .bind(direction.as_str())
    .bind(&provider)
    .bind(&currency.code)
    .bind(amount)
    .bind(amount_eur)
    .bind(status)
    .bind(hold.as_ref().map(|h| h.transfer_id))
    .bind(&key)
    .execute(&mut *tx)
    .await?;
    let payment = load(&mut tx, id, false)
        .await?
        .ok_or_else(|| VaultError::Internal(anyhow::anyhow!("payment vanished")))?;
    set_status(&mut tx, &payment, status, None, None).await?;
    // The idempotent answer is the payment as created; later reads show its progress.
    let created = payment.view(&state);
    idempotency::finish(&mut tx, &scope, &key, StatusCode::CREATED, &created).await?;
    tx.commit().await?;
    if let Some(hold) = &hold {
        hold.record_metrics();
    }
    let payment = if status == "pending" {
        initiate(&state, &payment).await?
    } else {
        payment
    };
    Ok((StatusCode::CREATED, Json(payment.view(&state))))
}

/// Fail a pending payment: a deposit becomes `failed`; a withdrawal's hold is reversed (`reversed`).
/// Returns the updated payment, or `None` when it was already final.
async fn settle_failure(
    state: &AppState,
    id: Uuid,
    reason: &str,
    from: &str,
) -> Result<Option<Payment>, VaultError> {
    warm_psp_account(state, id).await?;
    let mut tx = state.pool.begin().await?;
    let Some(payment) = load(&mut tx, id, true).await? else {
        return Ok(None);
    };
    // Only from the status the caller saw: a staff rejection must not return the funds of a withdrawal
    // that an approval moved to `pending` (its payout is already requested) in the meantime.
    if payment.status != from {
        return Ok(None);
    }
    let final_status = if payment.direction() == Direction::Withdrawal {
        let status = if reason == "rejected_by_staff" {
            "rejected"
        } else {
            "reversed"
        };
        reverse_hold(state, &mut tx, &payment, reason).await?;
        status
    } else {
        "failed"
    };
    set_status(&mut tx, &payment, final_status, Some(reason), None).await?;
    tx.commit().await?;
    record_final(&payment, final_status);
    let mut conn = state.pool.acquire().await?;
    Ok(load(&mut conn, id, false).await?)
}

/// A ledger refusal the player cannot act on: deposits and reversals credit the player, and a payment's
/// postings happen once under its row lock, so anything but a database error is an internal error.
fn ledger_failure(error: PostError) -> VaultError {
    match error {
        PostError::Db(e) => VaultError::from(e),
        other => VaultError::Internal(other.into()),
    }
}

async fn reverse_hold(
    state: &AppState,
    tx: &mut PgConnection,
    payment: &Payment,
    reason: &str,
) -> Result<(), VaultError> {
    let hold: Option<Uuid> =
        sqlx::query_scalar("SELECT hold_transfer_id FROM payments WHERE id = $1")
            .bind(payment.id)
            .fetch_one(&mut *tx)
            .await?;
    let posting = Posting {
        kind: TransferKind::WithdrawalReversal,
        player_id: payment.player_id,
        currency: payment.currency.clone(),
        amount: payment.amount,
        amount_eur: payment.amount_eur,
        direction: ledger::Direction::CreditPlayer,
        counterparty: format!("psp:{}", payment.provider),
        idempotency_key: format!("withdrawal-reversal:{}", payment.id),
        game: None,
        reference_transfer_id: hold,
        round_closed: false,
        metadata: json!({ "payment_id": payment.id, "reason": reason }),
    };
    let posted = state
        .ledger
        .post(tx, posting)
        .await
        .map_err(ledger_failure)?;
    sqlx::query("UPDATE payments SET settle_transfer_id = $2 WHERE id = $1")
        .bind(payment.id)
        .bind(posted.transfer_id)
        .execute(&mut *tx)
        .await?;
    posted.record_metrics();
    Ok(())
}

async fn webhook(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, VaultError> {
    let fail = |reason: &'static str| {
        metrics::counter!("vault_payment_webhook_failures_total", "provider" => provider.clone(), "reason" => reason)
            .increment(1);
    };
    let Some(psp) = state.providers.get(&provider).cloned() else {
        fail("unknown_provider");
        return Err(VaultError::not_found(
            "unknown_provider",
            "unknown payment provider",
        ));
    };
    let event = match psp.verify_webhook(&headers, &body, Utc::now().timestamp()) {
        Ok(event) => event,
        Err(error) => {
            fail(error.reason());
            if let WebhookError::Signature(_) = error {
                state
                    .abuse
                    .record(&state.pool, None, Signal::SignatureFailure, json!({ "provider": provider, "source": "payment_webhook", "reason": error.reason() }))
                    .await;
                return Err(VaultError::refused(
                    StatusCode::UNAUTHORIZED,
                    error.reason(),
                    "webhook signature refused",
                ));
            }
            return Err(VaultError::bad_request("invalid_body", error.to_string()));
        }
    };
    warm_psp_account(&state, event.payment_id).await?;
    let mut tx = state.pool.begin().await?;
    let first = sqlx::query("INSERT INTO psp_webhooks (provider, event_id, payment_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(&provider)
        .bind(&event.event_id)
        .bind(event.payment_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    let Some(payment) = load(&mut tx, event.payment_id, true).await? else {
        fail("unknown_payment");
        return Err(VaultError::not_found(
            "payment_not_found",
            "unknown payment",
        ));
    };
    if payment.provider != provider
        || payment.amount != event.amount
        || payment.currency != event.currency
    {
        fail("mismatch");
        tracing::error!(payment_id = %payment.id, provider = %provider, "webhook does not match the payment (provider, amount or currency)");
        return Err(VaultError::unprocessable(
            "payment_mismatch",
            "the webhook does not match the payment",
        ));
    }
    if !first {
        tracing::info!(payment_id = %payment.id, event_id = %event.event_id, "duplicate webhook ignored");
        return Ok(Json(
            json!({ "status": "duplicate", "payment_status": payment.status }),
        ));
    }
    let outcome = match (payment.direction(), event.status, payment.status.as_str()) {
        // Money received must be credited, even late (flagged for a look).
        (Direction::Deposit, WebhookStatus::Succeeded, "pending" | "expired" | "failed") => {
            let flag =
                (payment.status != "pending").then(|| format!("success after {}", payment.status));
            let currency = state.currencies.get(
                &CurrencyCode::parse(&payment.currency)
                    .map_err(|m| VaultError::Internal(anyhow::anyhow!(m)))?,
            )?;
            let posting = Posting {
                kind: TransferKind::Deposit,
                player_id: payment.player_id,
                currency: currency.code.clone(),
                amount: payment.amount,
                amount_eur: payment.amount_eur,
                direction: ledger::Direction::CreditPlayer,
                counterparty: format!("psp:{provider}"),
                idempotency_key: format!("deposit:{}", payment.id),
                game: None,
                reference_transfer_id: None,
                round_closed: false,
                metadata: json!({ "payment_id": payment.id, "reference": event.reference }),
            };
            let posted = state
                .ledger
                .post(&mut tx, posting)
                .await
                .map_err(ledger_failure)?;
            sqlx::query("UPDATE payments SET settle_transfer_id = $2, provider_reference = COALESCE(provider_reference, $3) WHERE id = $1")
                .bind(payment.id)
                .bind(posted.transfer_id)
                .bind(&event.reference)
                .execute(&mut *tx)
                .await?;
            set_status(&mut tx, &payment, "succeeded", None, flag.as_deref()).await?;
            if let Some(flag) = &flag {
                tracing::warn!(payment_id = %payment.id, flag, "late deposit success credited and flagged");
                metrics::counter!("vault_payments_flagged_total", "direction" => "deposit", "provider" => provider.clone(), "currency" => payment.currency.clone()).increment(1);
            }
            Some(("succeeded", Some(posted)))
        }
        (Direction::Deposit, WebhookStatus::Failed, "pending") => {
            set_status(
                &mut tx,
                &payment,
                "failed",
                event.reason.as_deref().or(Some("declined")),
                None,
            )
            .await?;
            Some(("failed", None))
        }
        (Direction::Withdrawal, WebhookStatus::Succeeded, "pending") => {
            set_status(&mut tx, &payment, "succeeded", None, None).await?;
            Some(("succeeded", None))
        }
        // The PSP paid out after the held funds went back to the player (a payout request that failed on
        // our side but reached the PSP): the money left twice. Nothing can be taken back automatically
        // (the balance may be spent); flag it loudly for staff.
        (Direction::Withdrawal, WebhookStatus::Succeeded, "reversed" | "rejected") => {
            let flag = format!(
                "payout succeeded after the withdrawal was {}",
                payment.status
            );
            sqlx::query(
                "UPDATE payments SET flagged = true, flag_reason = $2, updated_at = now() WHERE id = $1",
            )
            .bind(payment.id)
            .bind(&flag)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO payment_events (payment_id, status, details) VALUES ($1, $2, $3)",
            )
            .bind(payment.id)
            .bind(&payment.status)
            .bind(json!({ "flag": flag, "event_id": event.event_id }))
            .execute(&mut *tx)
            .await?;
            tracing::error!(payment_id = %payment.id, player_id = %payment.player_id, amount = payment.amount,
                currency = %payment.currency, provider = %provider, flag, "payout succeeded after the funds were returned");
            metrics::counter!("vault_payments_flagged_total", "direction" => "withdrawal", "provider" => provider.clone(), "currency" => payment.currency.clone()).increment(1);
            tx.commit().await?;
            return Ok(Json(
                json!({ "status": "flagged", "payment_status": payment.status }),
            ));
        }
        (Direction::Withdrawal, WebhookStatus::Failed, "pending") => {
            reverse_hold(
                &state,
                &mut tx,
                &payment,
                event.reason.as_deref().unwrap_or("payout_failed"),
            )
            .await?;
            set_status(
                &mut tx,
                &payment,
                "reversed",
                event.reason.as_deref().or(Some("payout_failed")),
                None,
            )
            .await?;
            Some(("reversed", None))
        }
        _ => {
            tracing::warn!(payment_id = %payment.id, status = %payment.status, result = ?event.status, "webhook for a settled payment ignored");
            None
        }
    };
    tx.commit().await?;
    match outcome {
        Some((status, posted)) => {
            if let Some(posted) = posted {
                posted.record_metrics();
            }
            record_final(&payment, status);
            Ok(Json(
                json!({ "status": "processed", "payment_status": status }),
            ))
        }
        None => Ok(Json(
            json!({ "status": "ignored", "payment_status": payment.status }),
        )),
    }
}

/// Make sure the payment's `psp:<provider>` account exists (outside any transaction).
async fn warm_psp_account(state: &AppState, id: Uuid) -> Result<(), VaultError> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT provider, currency FROM payments WHERE id = $1")
            .bind(id)
            .fetch_optional(&state.pool)
            .await?;
    if let Some((provider, currency)) = row {
        state
            .ledger
            .system_account(&format!("psp:{provider}"), &currency)
            .await?;
    }
    Ok(())
}

fn payment_path(id: Result<Path<Uuid>, PathRejection>) -> Result<Uuid, VaultError> {
    id.map(|Path(id)| id)
        .map_err(|_| VaultError::bad_request("invalid_payment_id", "the payment id is not a UUID"))
}

async fn show(
    State(state): State<AppState>,
    Player(claims): Player,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<Value>, VaultError> {
    let id = payment_path(id)?;
    let mut conn = state.pool.acquire().await?;
    match load(&mut conn, id, false).await? {
        // Another player's payment is as unknown as a missing one.
        Some(payment) if payment.player_id == claims.sub => Ok(Json(payment.view(&state))),
        _ => Err(no_such_payment()),
    }
}

fn no_such_payment() -> VaultError {
    VaultError::not_found("payment_not_found", "no such payment")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    cursor: Option<Uuid>,
    #[serde(default)]
    limit: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    Player(claims): Player,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, VaultError> {
    let query = parse_query(query)?;
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    // Ids are UUID v7 (time-ordered): the cursor is the last id seen.
    let rows: Vec<Payment> = sqlx::query_as(
        "SELECT * FROM payments WHERE player_id = $1 AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
    )
    .bind(claims.sub)
    .bind(query.cursor)
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let (shown, next) = page(&rows, limit);
    let items: Vec<Value> = shown.iter().map(|p| p.view(&state)).collect();
    let next = next.map(|p| p.id);
    Ok(Json(json!({ "items": items, "next_cursor": next })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    #[serde(default)]
    status: Option<String>,
}

async fn review_queue(
    State(state): State<AppState>,
    Staff(_): Staff,
    query: Result<Query<QueueQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, VaultError> {
    let query = parse_query(query)?;
    let status = query.status.unwrap_or_else(|| "review".into());
    let rows: Vec<Payment> = sqlx::query_as(
        "SELECT * FROM payments WHERE direction = 'withdrawal' AND status = $1 ORDER BY created_at LIMIT 500",
    )
    .bind(&status)
    .fetch_all(&state.pool)
    .await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|p| {
            let mut view = p.view(&state);
            view["player_id"] = json!(p.player_id);
            view
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// A withdrawal awaiting a staff decision (`lock`: held until the caller's transaction ends), or why not.
async fn load_in_review(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Payment, VaultError> {
    let payment = load(conn, id, lock).await?.ok_or_else(no_such_payment)?;
    if payment.status != "review" {
        return Err(VaultError::conflict(
            "not_in_review",
            format!("the payment is {}", payment.status),
        ));
    }
    Ok(payment)
}

async fn approve(
    State(state): State<AppState>,
    Staff(staff): Staff,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<Value>, VaultError> {
    let id = payment_path(id)?;
    let mut tx = state.pool.begin().await?;
    let payment = load_in_review(&mut tx, id, true).await?;
    set_status(&mut tx, &payment, "pending", Some("approved"), None).await?;
    tx.commit().await?;
    tracing::info!(payment_id = %id, staff_id = %staff.sub, "withdrawal approved");
    let mut conn = state.pool.acquire().await?;
    let payment = load(&mut conn, id, false).await?.unwrap_or(payment);
    drop(conn);
    let payment = initiate(&state, &payment).await?;
    Ok(Json(payment.view(&state)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectRequest {
    reason: String,
}

async fn reject(
    State(state): State<AppState>,
    Staff(staff): Staff,
    id: Result<Path<Uuid>, PathRejection>,
    ApiJson(request): ApiJson<RejectRequest>,
) -> Result<Json<Value>, VaultError> {
    let id = payment_path(id)?;
    if request.reason.trim().is_empty() {
        return Err(VaultError::bad_request(
            "reason_required",
            "a rejection needs a reason",
        ));
    }
    {
        // A first look without a lock, for a precise refusal; `settle_failure` re-reads it under its lock.
        let mut conn = state.pool.acquire().await?;
        load_in_review(&mut conn, id, false).await?;
    }
    let payment = settle_failure(&state, id, "rejected_by_staff", "review")
        .await?
        .ok_or_else(|| {
            VaultError::conflict("not_in_review", "the payment is no longer in review")
        })?;
    tracing::info!(payment_id = %id, staff_id = %staff.sub, reason = %request.reason.trim(), "withdrawal rejected");
    Ok(Json(payment.view(&state)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SandboxRequest {
    #[serde(default)]
    provider: Option<String>,
    currency: CurrencyCode,
    #[serde(default)]
    direction: Option<Direction>,
    failure_rate: f64,
    #[serde(default)]
    latency_ms: Option<u64>,
}

async fn sandbox(
    State(state): State<AppState>,
    Staff(staff): Staff,
    ApiJson(request): ApiJson<SandboxRequest>,
) -> Result<Json<Value>, VaultError> {
    if !(0.0..=1.0).contains(&request.failure_rate) {
        return Err(VaultError::bad_request(
            "invalid_failure_rate",
            "failure_rate must be between 0 and 1",
        ));
    }
    if let Some(provider) = &request.provider
        && !state.providers.contains_key(provider)
    {
        return Err(VaultError::bad_request(
            "unknown_provider",
            format!("no payment provider named {provider:?}"),
        ));
    }
    let currency = state.currencies.get(&request.currency)?;
    let behaviour = Behaviour {
        failure_rate: request.failure_rate,
        latency_ms: request
            .latency_ms
            .unwrap_or(Behaviour::default().latency_ms)
            .min(60_000),
    };
    state.sandbox.set(
        request.provider.clone(),
        &currency.code,
        request.direction,
        behaviour,
    );
    tracing::warn!(staff_id = %staff.sub, provider = ?request.provider, currency = %currency.code,
        direction = ?request.direction, failure_rate = behaviour.failure_rate, latency_ms = behaviour.latency_ms,
        "sandbox psp behaviour changed");
    Ok(Json(json!({ "behaviour": state.sandbox.table() })))
}

async fn sandbox_table(State(state): State<AppState>, Staff(_): Staff) -> Json<Value> {
    Json(json!({ "behaviour": state.sandbox.table() }))
}

/// Expire deposits pending longer than `expiry`, and keep `vault_payments_pending{direction, currency}` and
/// `vault_withdrawals_in_review` current.
pub async fn run_payment_tasks(state: AppState, expiry: Duration, stop: CancellationToken) {
    let mut ticker =
        tokio::time::interval(Duration::from_secs(5).min(expiry.max(Duration::from_millis(200))));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {
                if let Err(error) = expire(&state, expiry).await {
                    tracing::warn!(error = %error, "could not expire pending deposits");
                }
                if let Err(error) = gauges(&state.pool).await {
                    tracing::warn!(error = %error, "could not measure pending payments");
                }
            }
        }
    }
}

async fn expire(state: &AppState, expiry: Duration) -> Result<(), VaultError> {
    let stale: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM payments WHERE direction = 'deposit' AND status = 'pending'
           AND created_at < now() - make_interval(secs => $1) LIMIT 500",
    )
    .bind(expiry.as_secs_f64())
    .fetch_all(&state.pool)
    .await?;
    for id in stale {
        let mut tx = state.pool.begin().await?;
        let Some(payment) = load(&mut tx, id, true).await? else {
            continue;
        };
        if payment.status != "pending" {
            continue;
        }
        set_status(
            &mut tx,
            &payment,
            "expired",
            Some("no result from the provider in time"),
            None,
        )
        .await?;
        tx.commit().await?;
        record_final(&payment, "expired");
    }
    Ok(())
}

async fn gauges(pool: &PgPool) -> Result<(), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.code AS currency, d.direction,
                (SELECT count(*) FROM payments p WHERE p.currency = c.code AND p.direction = d.direction AND p.status = 'pending') AS pending
         FROM currencies c CROSS JOIN (VALUES ('deposit'), ('withdrawal')) AS d(direction)",
    )
    .fetch_all(pool)
    .await?;
    for row in rows {
        metrics::gauge!("vault_payments_pending", "direction" => row.get::<String, _>("direction"),
            "currency" => row.get::<String, _>("currency"))
        .set(row.get::<i64, _>("pending") as f64);
    }
    let review: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payments WHERE direction = 'withdrawal' AND status = 'review'",
    )
    .fetch_one(pool)
    .await?;
    metrics::gauge!("vault_withdrawals_in_review").set(review as f64);
    Ok(())
}

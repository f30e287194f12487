//! The seamless-wallet game API (server-to-server, HMAC-signed by the game provider).
//!
//! `POST /api/v1/games/{balance,bet,win,rollback}` with headers `x-casino-provider`,
//! `x-casino-timestamp`, `x-casino-signature`. Idempotent by (provider, transaction id): the first answer is
//! stored and replayed for the same request; the same id with another request is `409
//! idempotency_conflict`. Every answer, errors included, carries the player's balance. Rules:
//! - a rollback of an unknown bet stores a tombstone and answers `bet_not_found`; the bet arriving later is
//!   refused with `already_rolled_back`;
//! - a duplicate rollback returns the first answer; a win after its bet was rolled back is refused
//!   (`already_rolled_back`); a rollback after the round was settled is refused (`round_settled`);
//! - a rollback must name its bet's round, and a win's `bet_transaction_id` must be a bet of the same player
//!   in the win's round (`round_mismatch` otherwise); a win for a round without an accepted bet is
//!   `round_not_found`. A win's `round_not_found` and `bet_not_found` are not stored: the win may have
//!   overtaken its bet, and its retry after the bet is decided afresh;
//! - bets need a game session of the player (`POST /api/v1/games/sessions`); wins and rollbacks do not;
//! - a win of zero (how providers close a lost round) is checked, claimed and answered like any win, and
//!   settles the round with `close_round`, but posts no transfer (no outbox event): `transfer_id` is null.
//!
//! Also here: `POST /api/v1/games/sessions` (player JWT) creating the session a provider presents with bets.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use casino_auth::{
    extract::Player,
    signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER},
};
use casino_events::payloads::TransferKind;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::{PgConnection, Row as _};
use uuid::Uuid;

use crate::{
    abuse::Signal,
    domain::money::{CurrencyCode, DecimalInput, format_minor, to_eur},
    error::{ApiJson, VaultError, parse_json},
    ledger::{
        Direction, GameRef, Ledger, PostError, Posting, bets::PreparedBet, currencies::Currency,
    },
    routes::{decimal_as_text, eur_rate, player_locked, unknown_player},
    state::AppState,
};

/// Header naming the calling game provider.
pub const PROVIDER_HEADER: &str = "x-casino-provider";

/// The game API router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/games/balance", post(balance))
        .route("/api/v1/games/bet", post(bet))
        .route("/api/v1/games/win", post(win))
        .route("/api/v1/games/rollback", post(rollback))
        .route("/api/v1/games/sessions", post(create_session))
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct BalanceRequest {
    player_id: Uuid,
    currency: CurrencyCode,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct BetRequest {
    transaction_id: String,
    round_id: String,
    game_id: String,
    #[serde(default)]
    game_category: Option<String>,
    player_id: Uuid,
    currency: CurrencyCode,
    #[serde(serialize_with = "decimal_as_text")]
    amount: DecimalInput,
    #[serde(skip_serializing)]
    session_token: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct WinRequest {
    transaction_id: String,
    round_id: String,
    game_id: String,
    player_id: Uuid,
    currency: CurrencyCode,
    #[serde(serialize_with = "decimal_as_text")]
    amount: DecimalInput,
    #[serde(default)]
    close_round: bool,
    #[serde(default)]
    bet_transaction_id: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {
    transaction_id: String,
    round_id: String,
    #[serde(default)]
    game_id: Option<String>,
    player_id: Uuid,
    currency: CurrencyCode,
    bet_transaction_id: String,
}

/// A win or a rollback, for the steps they share (claiming the transaction id, remembering a final refusal).
trait Settlement: Serialize {
    /// The transaction id it claims, the player and the round.
    fn claim_ids(&self) -> (&str, Uuid, &str);
}

impl Settlement for WinRequest {
    fn claim_ids(&self) -> (&str, Uuid, &str) {
        (&self.transaction_id, self.player_id, &self.round_id)
    }
}

impl Settlement for RollbackRequest {
    fn claim_ids(&self) -> (&str, Uuid, &str) {
        (&self.transaction_id, self.player_id, &self.round_id)
    }
}

/// An answer of the game API: status + JSON, with the balance attached to errors.
struct GameAnswer {
    status: StatusCode,
    body: Value,
}

impl IntoResponse for GameAnswer {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// Context of one game API call, for metrics and error answers.
struct Call<'a> {
    state: &'a AppState,
    operation: &'static str,
    provider: String,
}

impl Call<'_> {
    fn count(&self, outcome: &str) {
        metrics::counter!("vault_game_requests_total",
            "operation" => self.operation, "outcome" => outcome.to_owned())
        .increment(1);
    }

    /// An error answer with the player's current balance (when player and currency are known).
    async fn refuse(&self, error: VaultError, player: Option<(Uuid, &Currency)>) -> GameAnswer {
        error.record();
        self.count(error.code());
        // Best effort: the refusal goes out even when the balance cannot be read.
        let mut balance = None;
        if let Some((player_id, currency)) = player
            && let Ok(mut conn) = self.state.pool.acquire().await
            && let Ok(amount) = Ledger::balance(&mut conn, player_id, &currency.code).await
        {
            balance = Some((amount, currency));
        }
        GameAnswer {
            status: error.status(),
            body: refusal_body(&error, balance),
        }
    }
}

impl<'a> Call<'a> {
    fn new(state: &'a AppState, operation: &'static str, headers: &HeaderMap) -> Self {
        Self {
            state,
            operation,
            provider: provider_of(headers),
        }
    }

    /// What every game API call does first: read the body, check the signature, parse it, find the
    /// currency. Any failure is already the answer (`Err`, which handlers return as it is).
    async fn open<T: DeserializeOwned>(
        &self,
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
        currency_of: impl Fn(&T) -> &CurrencyCode,
    ) -> Result<(T, Currency), GameAnswer> {
        let body = match body {
            Ok(body) => body,
            Err(rejection) => return Err(self.refuse(body_rejection(&rejection), None).await),
        };
        if let Err(error) = authenticate(self, headers, &body).await {
            return Err(self.refuse(error, None).await);
        }
        let request: T = match parse_json(&body) {
            Ok(request) => request,
            Err(error) => return Err(self.refuse(error, None).await),
        };
        match self.state.currencies.get(currency_of(&request)) {
            Ok(currency) => Ok((request, currency)),
            Err(error) => Err(self.refuse(error, None).await),
        }
    }

    /// Store the accepted answer on the claimed transaction id, commit, count: the end of a win or rollback.
    async fn accept(
        &self,
        tx: sqlx::Transaction<'_, sqlx::Postgres>,
        transaction_id: &str,
        posted: crate::ledger::Posted,
        currency: &Currency,
    ) -> Result<GameAnswer, sqlx::Error> {
        let answer = self
            .accept_answer(
                tx,
                transaction_id,
                Some(posted.transfer_id),
                posted.balance_after,
                currency,
            )
            .await?;
        posted.record_metrics();
        Ok(answer)
    }

    /// Store the `ok` answer (`transfer_id` null when nothing was posted) on the claimed transaction id,
    /// commit, count the request. Transfer metrics are the caller's.
    async fn accept_answer(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        transaction_id: &str,
        transfer_id: Option<Uuid>,
        balance: i64,
        currency: &Currency,
    ) -> Result<GameAnswer, sqlx::Error> {
        let body = ok_body(transaction_id, transfer_id, balance, currency);
        finish(
            &mut tx,
            &self.provider,
            transaction_id,
            transfer_id,
            StatusCode::OK,
            &body,
        )
        .await?;
        tx.commit().await?;
        self.count("ok");
        Ok(GameAnswer {
            status: StatusCode::OK,
            body,
        })
    }

    /// Claim the request's transaction id (as this call's operation) in a new transaction, and hand that
    /// transaction over; or the answer, when the id is taken (a replay, or an idempotency conflict). The
    /// house account is resolved first: creating it takes another connection, which must not be awaited
    /// while the transaction holds one.
    async fn begin_claimed<T: Settlement>(
        &self,
        request: &T,
        hash: &[u8],
        currency: &Currency,
    ) -> Result<Claimed, sqlx::Error> {
        let (transaction_id, player_id, round_id) = request.claim_ids();
        self.state
            .ledger
            .system_account("house", &currency.code)
            .await?;
        let mut tx = self.state.pool.begin().await?;
        match claim(
            &mut tx,
            &self.provider,
            transaction_id,
            self.operation,
            hash,
            player_id,
            round_id,
        )
        .await?
        {
            Claim::New => Ok(Claimed::Ours(tx)),
            Claim::Replay(status, body) => {
                Ok(Claimed::Answered(replayed(self, status, body).await))
            }
            Claim::Tombstone | Claim::Conflict => {
                drop(tx);
                Ok(Claimed::Answered(
                    conflict(self, player_id, currency, transaction_id).await,
                ))
            }
        }
    }

    /// The answer of a win or rollback; a final refusal is remembered for retries of the same request.
    async fn conclude<T: Settlement>(
        &self,
        outcome: Result<GameAnswer, Refusal>,
        request: &T,
        currency: &Currency,
    ) -> GameAnswer {
        match outcome {
            Ok(answer) => answer,
            Err((error, remember)) => {
                let (transaction_id, player_id, round_id) = request.claim_ids();
                let answer = self.refuse(error, Some((player_id, currency))).await;
                if remember {
                    remember_refusal(
                        self.state,
                        &self.provider,
                        transaction_id,
                        self.operation,
                        &request_hash(request),
                        player_id,
                        round_id,
                        &answer,
                    )
                    .await;
                }
                answer
            }
        }
    }
}

/// What [`Call::begin_claimed`] found.
enum Claimed {
    /// The id is ours: go on in this transaction.
    Ours(sqlx::Transaction<'static, sqlx::Postgres>),
    /// The id was taken: this is the answer.
    Answered(GameAnswer),
}

/// Why a win or rollback was refused, and whether the refusal is final: a final one is stored under the
/// transaction id and replayed to retries of the same request; a transient one is not, so a retry is
/// evaluated afresh.
type Refusal = (VaultError, bool);

fn transient(error: VaultError) -> Refusal {
    (error, false)
}

fn fin(error: VaultError) -> Refusal {
    (error, true)
}

/// A database error is transient.
fn db(error: sqlx::Error) -> Refusal {
    transient(error.into())
}

/// Verify the provider's signature over the raw body; count and record failures.
async fn authenticate(call: &Call<'_>, headers: &HeaderMap, body: &[u8]) -> Result<(), VaultError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(secret) = call.state.settings.game_providers.get(&call.provider) else {
        metrics::counter!("vault_auth_failures_total", "reason" => "unknown_provider").increment(1);
        return Err(VaultError::refused(
            StatusCode::UNAUTHORIZED,
            "unknown_provider",
            "unknown game provider",
        ));
    };
    let now = chrono::Utc::now().timestamp();
    match signature::verify(
        secret.as_bytes(),
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        body,
        now,
    ) {
        Ok(()) => Ok(()),
        Err(error) => {
            metrics::counter!("vault_auth_failures_total", "reason" => error.reason()).increment(1);
            call.state
                .abuse
                .record(
                    &call.state.pool,
                    None,
                    Signal::SignatureFailure,
                    json!({ "provider": call.provider, "operation": call.operation, "reason": error.reason() }),
                )
                .await;
            Err(VaultError::refused(
                StatusCode::UNAUTHORIZED,
                error.reason(),
                format!("request signature refused: {error}"),
            ))
        }
    }
}

fn body_rejection(rejection: &BytesRejection) -> VaultError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        VaultError::refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than 64 KiB",
        )
    } else {
        VaultError::bad_request("invalid_body", rejection.body_text())
    }
}

fn provider_of(headers: &HeaderMap) -> String {
    headers
        .get(PROVIDER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The request's ids, `(field name, value)`, each 1 to 128 printable characters; the first bad one is named.
fn check_ids(ids: [(&str, &str); 3]) -> Result<(), VaultError> {
    for (name, value) in ids {
        if value.is_empty() || value.len() > 128 || value.chars().any(|c| c.is_control()) {
            return Err(VaultError::bad_request(
                "invalid_body",
                format!("{name} must be 1 to 128 printable characters"),
            ));
        }
    }
    Ok(())
}

fn request_hash<T: Serialize>(request: &T) -> Vec<u8> {
    Sha256::digest(serde_json::to_vec(request).unwrap_or_default()).to_vec()
}

/// The `ok` answer of a win or rollback (bets answer from SQL in the same shape); `transfer_id` is null for
/// a win of zero, which posts nothing.
fn ok_body(
    transaction_id: &str,
    transfer_id: Option<Uuid>,
    balance: i64,
    currency: &Currency,
) -> Value {
    json!({
        "status": "ok",
        "transaction_id": transaction_id,
        "transfer_id": transfer_id,
        "balance": format_minor(balance, currency.exp()),
        "currency": currency.code,
    })
}

/// The body of a refusal, with the player's balance when it is known (providers show it after any call).
fn refusal_body(error: &VaultError, balance: Option<(i64, &Currency)>) -> Value {
    let mut body = json!({ "error": { "code": error.code(), "message": error.public_message() } });
    if let Some((balance, currency)) = balance {
        body["balance"] = json!(format_minor(balance, currency.exp()));
        body["currency"] = json!(currency.code);
    }
    body
}

/// Outcome of claiming a (provider, transaction id).
enum Claim {
    /// Ours: go on.
    New,
    /// A previous identical request: replay its answer.
    Replay(StatusCode, Value),
    /// The id is a tombstone (its bet was rolled back before it arrived).
    Tombstone,
    /// The id was used for a different request.
    Conflict,
}

/// Insert the idempotency row for this request inside `tx` (blocking on a concurrent identical request
/// until it commits), or report what already holds the id.
async fn claim(
    tx: &mut PgConnection,
    provider: &str,
    transaction_id: &str,
    operation: &str,
    hash: &[u8],
    player_id: Uuid,
    round_id: &str,
) -> Result<Claim, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO game_transactions (provider, transaction_id, operation, request_hash, player_id, round_id,
                                        http_status, response)
         VALUES ($1, $2, $3, $4, $5, $6, 0, '{}') ON CONFLICT DO NOTHING",
    )
    .bind(provider)
    .bind(transaction_id)
    .bind(operation)
    .bind(hash)
    .bind(player_id)
    .bind(round_id)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::New);
    }
    let row = sqlx::query(
        "SELECT operation, request_hash, http_status, response FROM game_transactions
         WHERE provider = $1 AND transaction_id = $2",
    )
    .bind(provider)
    .bind(transaction_id)
    .fetch_one(&mut *tx)
    .await?;
    let existing_op: String = row.get("operation");
    if existing_op == "tombstone" {
        return Ok(Claim::Tombstone);
    }
    let existing_hash: Vec<u8> = row.get("request_hash");
    if existing_op == operation && existing_hash == hash {
        let status: i16 = row.get("http_status");
        let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
        return Ok(Claim::Replay(status, row.get("response")));
    }
    Ok(Claim::Conflict)
}

/// Store the final answer on the claimed row.
async fn finish(
    tx: &mut PgConnection,
    provider: &str,
    transaction_id: &str,
    transfer_id: Option<Uuid>,
    status: StatusCode,
    body: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE game_transactions SET transfer_id = $3, http_status = $4, response = $5
         WHERE provider = $1 AND transaction_id = $2",
    )
    .bind(provider)
    .bind(transaction_id)
    .bind(transfer_id)
    .bind(status.as_u16() as i16)
    .bind(body)
    .execute(tx)
    .await?;
    Ok(())
}

/// Remember a refusal so that a retry of the same request gets the same answer (outside the request
/// transaction, which was rolled back).
#[allow(clippy::too_many_arguments)]
async fn remember_refusal(
    state: &AppState,
    provider: &str,
    transaction_id: &str,
    operation: &str,
    hash: &[u8],
    player_id: Uuid,
    round_id: &str,
    answer: &GameAnswer,
) {
    let stored = sqlx::query(
        "INSERT INTO game_transactions (provider, transaction_id, operation, request_hash, player_id, round_id,
                                        http_status, response)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(provider)
    .bind(transaction_id)
    .bind(operation)
    .bind(hash)
    .bind(player_id)
    .bind(round_id)
    .bind(answer.status.as_u16() as i16)
    .bind(&answer.body)
    .execute(&state.pool)
    .await;
    if let Err(error) = stored {
        tracing::warn!(provider, transaction_id, error = %error, "could not store a game API refusal");
    }
}

async fn replayed(call: &Call<'_>, status: StatusCode, body: Value) -> GameAnswer {
    call.count(
        body["error"]["code"]
            .as_str()
            .map(|c| c.to_owned())
            .as_deref()
            .unwrap_or("ok"),
    );
    tracing::info!(provider = %call.provider, operation = call.operation, "idempotent replay");
    GameAnswer { status, body }
}

async fn conflict(
    call: &Call<'_>,
    player_id: Uuid,
    currency: &Currency,
    transaction_id: &str,
) -> GameAnswer {
    call.state
        .abuse
        .record(
            &call.state.pool,
            Some(player_id),
            Signal::IdempotencyConflict,
            json!({ "provider": call.provider, "transaction_id": transaction_id, "operation": call.operation }),
        )
        .await;
    call.refuse(
        VaultError::conflict(
            "idempotency_conflict",
            format!("transaction {transaction_id} was already used for a different request"),
        ),
        Some((player_id, currency)),
    )
    .await
}

fn eur(
    state: &AppState,
    currency: &Currency,
    amount: i64,
) -> Result<rust_decimal::Decimal, VaultError> {
    Ok(to_eur(amount, currency.exp(), eur_rate(state, currency)?))
}

/// Refuse unless `player_id` is a player. Whether it is locked does not matter here: a locked player still
/// gets balances, wins and rollbacks (only new bets and sessions are refused).
async fn known_player(state: &AppState, player_id: Uuid) -> Result<(), VaultError> {
    match player_locked(state, player_id).await? {
        Some(_) => Ok(()),
        None => Err(unknown_player()),
    }
}

// The handlers answer `Err` when the call is refused before it could be carried out; both sides are
// complete answers.

async fn balance(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<GameAnswer, GameAnswer> {
    let call = Call::new(&state, "balance", &headers);
    let (request, currency) = call
        .open::<BalanceRequest>(&headers, body, |r| &r.currency)
        .await?;
    if let Err(error) = known_player(&state, request.player_id).await {
        return Err(call.refuse(error, None).await);
    }
    let balance = match state.pool.acquire().await {
        Ok(mut conn) => Ledger::balance(&mut conn, request.player_id, &currency.code).await,
        Err(error) => Err(error),
    };
    match balance {
        Ok(balance) => {
            call.count("ok");
            Ok(GameAnswer {
                status: StatusCode::OK,
                body: json!({ "status": "ok", "balance": format_minor(balance, currency.exp()), "currency": currency.code }),
            })
        }
        Err(error) => Err(call.refuse(error.into(), None).await),
    }
}

async fn bet(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<GameAnswer, GameAnswer> {
    let call = Call::new(&state, "bet", &headers);
    let (request, currency) = call
        .open::<BetRequest>(&headers, body, |r| &r.currency)
        .await?;
    match place_bet(&call, &request, &currency).await {
        Ok(answer) => Ok(answer),
        Err(error) => Err(call
            .refuse(error, Some((request.player_id, &currency)))
            .await),
    }
}

/// Validate and price the bet here; the database decides it in a batch (see [`crate::ledger::bets`]).
async fn place_bet(
    call: &Call<'_>,
    request: &BetRequest,
    currency: &Currency,
) -> Result<GameAnswer, VaultError> {
    let state = call.state;
    check_ids([
        ("transaction_id", &request.transaction_id),
        ("round_id", &request.round_id),
        ("game_id", &request.game_id),
    ])?;
    if !currency.enabled {
        return Err(VaultError::unprocessable(
            "currency_disabled",
            format!("{} is disabled", currency.code),
        ));
    }
    let amount = currency.parse_amount(&request.amount.0)?;
    let amount_eur = eur(state, currency, amount)?;
    let house_account = state.ledger.system_account("house", &currency.code).await?;
    state.abuse.note_bet(&state.pool, request.player_id).await;
    let occurred_at =
        chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis())
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let prepared = PreparedBet {
        provider: call.provider.clone(),
        transaction_id: request.transaction_id.clone(),
        request_hash: hex_string(&request_hash(request)),
        session_hash: hex_string(&Sha256::digest(request.session_token.as_bytes())),
        round_id: request.round_id.clone(),
        game_id: request.game_id.clone(),
        game_category: request.game_category.clone(),
        player_id: request.player_id,
        currency: currency.code.clone(),
        exponent: currency.exp(),
        amount,
        amount_eur,
        house_account,
        transfer_id: Uuid::now_v7(),
        event_id: Uuid::now_v7(),
        occurred_at,
        headers: casino_messaging::trace::current_context_headers(),
    };
    let outcome = state.bets.place(prepared).await?;
    let status =
        StatusCode::from_u16(outcome.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match outcome.code.as_str() {
        "ok" => {
            let posted = crate::ledger::Posted {
                transfer_id: outcome.transfer_id.unwrap_or_default(),
                balance_after: outcome.balance_after.unwrap_or_default(),
                created_at: chrono::Utc::now(),
                kind: TransferKind::Bet,
                currency: currency.code.clone(),
                amount_eur,
            };
            posted.record_metrics();
            tracing::info!(
                transfer_id = %posted.transfer_id,
                player_id = %request.player_id,
                kind = "bet",
                currency = %currency.code,
                amount,
                delta = -amount,
                balance_after = posted.balance_after,
                round_id = %request.round_id,
                "transfer posted"
            );
            call.count("ok");
            return Ok(GameAnswer {
                status,
                body: outcome.response,
            });
        }
        "replay" => return Ok(replayed(call, status, outcome.response).await),
        "bet_limit_exceeded" => {
            state
                .abuse
                .record(
                    &state.pool,
                    Some(request.player_id),
                    Signal::OverLimit,
                    json!({ "game_id": request.game_id, "currency": currency.code, "amount": amount }),
                )
                .await;
        }
        "insufficient_funds" => {
            state
                .abuse
                .note_insufficient_funds(&state.pool, request.player_id)
                .await
        }
        "idempotency_conflict" => {
            state
                .abuse
                .record(
                    &state.pool,
                    Some(request.player_id),
                    Signal::IdempotencyConflict,
                    json!({ "provider": call.provider, "transaction_id": request.transaction_id, "operation": "bet" }),
                )
                .await;
        }
        "invalid_session" => {
            metrics::counter!("vault_auth_failures_total", "reason" => "invalid_session")
                .increment(1);
        }
        _ => {}
    }
    let message = outcome.response["error"]["message"]
        .as_str()
        .unwrap_or_default();
    tracing::info!(code = %outcome.code, reason = message, player_id = %request.player_id, "request refused");
    metrics::counter!("vault_request_errors_total", "code" => outcome.code.clone()).increment(1);
    call.count(&outcome.code);
    Ok(GameAnswer {
        status,
        body: outcome.response,
    })
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn post_error(error: PostError) -> VaultError {
    match error {
        PostError::InsufficientFunds { .. } => {
            VaultError::unprocessable("insufficient_funds", "insufficient funds")
        }
        PostError::Overflow => {
            VaultError::unprocessable("amount_too_large", "the balance would overflow")
        }
        PostError::Duplicate => {
            VaultError::conflict("idempotency_conflict", "transfer already exists")
        }
        PostError::Db(error) => error.into(),
    }
}

async fn win(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<GameAnswer, GameAnswer> {
    let call = Call::new(&state, "win", &headers);
    let (request, currency) = call
        .open::<WinRequest>(&headers, body, |r| &r.currency)
        .await?;
    let outcome = settle_win(&call, &request, &currency).await;
    Ok(call.conclude(outcome, &request, &currency).await)
}

async fn settle_win(
    call: &Call<'_>,
    request: &WinRequest,
    currency: &Currency,
) -> Result<GameAnswer, Refusal> {
    let state = call.state;
    check_ids([
        ("transaction_id", &request.transaction_id),
        ("round_id", &request.round_id),
        ("game_id", &request.game_id),
    ])
    .map_err(transient)?;
    // Zero is a valid win: it is how a provider closes a lost round.
    let amount = currency
        .parse_win_amount(&request.amount.0)
        .map_err(transient)?;
    known_player(state, request.player_id)
        .await
        .map_err(transient)?;
    // A win of zero moves nothing, so it needs no exchange rate.
    let amount_eur = if amount > 0 {
        eur(state, currency, amount).map_err(transient)?
    } else {
        rust_decimal::Decimal::ZERO
    };
    let hash = request_hash(request);
    let mut tx = match call
        .begin_claimed(request, &hash, currency)
        .await
        .map_err(db)?
    {
        Claimed::Ours(tx) => tx,
        Claimed::Answered(answer) => return Ok(answer),
    };
    let round: Option<(String, Uuid, String)> = sqlx::query_as(
        "SELECT status, player_id, currency FROM rounds WHERE provider = $1 AND round_id = $2 FOR UPDATE",
    )
    .bind(&call.provider)
    .bind(&request.round_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    match round {
        // Transient: the win may have raced ahead of its bet's batch commit; a retry finds the round.
        None => return Err(transient(round_not_found(&request.round_id))),
        Some((status, _, _)) if status == "settled" => {
            return Err(fin(VaultError::unprocessable(
                "round_settled",
                format!("round {} is already settled", request.round_id),
            )));
        }
        Some((_, player, round_currency))
            if player != request.player_id || round_currency != currency.code =>
        {
            return Err(fin(VaultError::conflict(
                "round_mismatch",
                format!(
                    "round {} belongs to another player or currency",
                    request.round_id
                ),
            )));
        }
        Some(_) => {}
    }
    // A win after its bet was rolled back is refused: the named bet (which must be an accepted bet of this
    // player in this round), or every bet of the round (which must have had one).
    let rolled_back = if let Some(bet_id) = &request.bet_transaction_id {
        let bet: Option<BetRow> = sqlx::query_as(
            "SELECT operation, transfer_id, player_id, round_id FROM game_transactions
             WHERE provider = $1 AND transaction_id = $2",
        )
        .bind(&call.provider)
        .bind(bet_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        match bet {
            Some((op, ..)) if op == "tombstone" => true,
            Some((op, Some(transfer), player, round)) if op == "bet" => {
                if player != Some(request.player_id)
                    || round.as_deref() != Some(request.round_id.as_str())
                {
                    return Err(fin(VaultError::conflict(
                        "round_mismatch",
                        format!(
                            "bet {bet_id} belongs to another round or player than round {}",
                            request.round_id
                        ),
                    )));
                }
                sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM transfers WHERE kind = 'rollback' AND reference_transfer_id = $1)",
                )
                .bind(transfer)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?
            }
            // Transient: the bet may still be in a batch that has not committed yet.
            _ => {
                return Err(transient(VaultError::not_found(
                    "bet_not_found",
                    format!("bet {bet_id} is unknown"),
                )));
            }
        }
    } else {
        let (bets, rollbacks): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE kind = 'bet'), count(*) FILTER (WHERE kind = 'rollback')
             FROM transfers WHERE provider = $1 AND round_id = $2",
        )
        .bind(&call.provider)
        .bind(&request.round_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if bets == 0 {
            // The round was opened by a refused bet (insufficient funds): it never had a stake to win on.
            return Err(transient(round_not_found(&request.round_id)));
        }
        bets == rollbacks
    };
    if rolled_back {
        return Err(fin(VaultError::unprocessable(
            "already_rolled_back",
            "the bet of this win was rolled back",
        )));
    }
    if amount == 0 {
        // A lost round: nothing to post (a transfer is never zero, so no outbox event and no balance
        // push either), but the round closes and the answer is stored for replays like any win's.
        if request.close_round {
            settle_round(&mut tx, &call.provider, &request.round_id)
                .await
                .map_err(db)?;
        }
        let balance = Ledger::balance(&mut tx, request.player_id, &currency.code)
            .await
            .map_err(db)?;
        tracing::info!(
            provider = %call.provider,
            transaction_id = %request.transaction_id,
            player_id = %request.player_id,
            round_id = %request.round_id,
            close_round = request.close_round,
            balance,
            "win of zero: no transfer"
        );
        return call
            .accept_answer(tx, &request.transaction_id, None, balance, currency)
            .await
            .map_err(db);
    }
    let posting = Posting {
        kind: TransferKind::Win,
        player_id: request.player_id,
        currency: currency.code.clone(),
        amount,
        amount_eur,
        direction: Direction::CreditPlayer,
        counterparty: "house".into(),
        idempotency_key: format!("game:{}:{}", call.provider, request.transaction_id),
        game: Some(GameRef {
            provider: call.provider.clone(),
            round_id: request.round_id.clone(),
            game_id: request.game_id.clone(),
            game_category: None,
        }),
        reference_transfer_id: None,
        round_closed: request.close_round,
        metadata: json!({}),
    };
    let posted = state
        .ledger
        .post(&mut tx, posting)
        .await
        .map_err(|e| transient(post_error(e)))?;
    if request.close_round {
        settle_round(&mut tx, &call.provider, &request.round_id)
            .await
            .map_err(db)?;
    }
    call.accept(tx, &request.transaction_id, posted, currency)
        .await
        .map_err(db)
}

/// The `game_transactions` row a win or rollback names as its bet: operation, transfer (of an accepted bet),
/// player and round.
type BetRow = (String, Option<Uuid>, Option<Uuid>, Option<String>);

/// A win for a round without an accepted bet. Never stored as final: the win may have overtaken its bet.
fn round_not_found(round_id: &str) -> VaultError {
    VaultError::not_found("round_not_found", format!("round {round_id} has no bet"))
}

/// Mark a round settled (`close_round`): later bets, wins and rollbacks in it are `round_settled`.
async fn settle_round(
    tx: &mut PgConnection,
    provider: &str,
    round_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE rounds SET status = 'settled', settled_at = now() WHERE provider = $1 AND round_id = $2",
    )
    .bind(provider)
    .bind(round_id)
    .execute(tx)
    .await?;
    Ok(())
}

async fn rollback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<GameAnswer, GameAnswer> {
    let call = Call::new(&state, "rollback", &headers);
    let (request, currency) = call
        .open::<RollbackRequest>(&headers, body, |r| &r.currency)
        .await?;
    let outcome = roll_back(&call, &request, &currency).await;
    let answer = call.conclude(outcome, &request, &currency).await;
    if answer.status == StatusCode::OK {
        state
            .abuse
            .check_rollback_ratio(&state.pool, request.player_id)
            .await;
    }
    Ok(answer)
}

async fn roll_back(
    call: &Call<'_>,
    request: &RollbackRequest,
    currency: &Currency,
) -> Result<GameAnswer, Refusal> {
    let state = call.state;
    check_ids([
        ("transaction_id", &request.transaction_id),
        ("round_id", &request.round_id),
        ("bet_transaction_id", &request.bet_transaction_id),
    ])
    .map_err(transient)?;
    known_player(state, request.player_id)
        .await
        .map_err(transient)?;
    let hash = request_hash(request);
    let mut tx = match call
        .begin_claimed(request, &hash, currency)
        .await
        .map_err(db)?
    {
        Claimed::Ours(tx) => tx,
        Claimed::Answered(answer) => return Ok(answer),
    };
    // Find the bet; if it is unknown, leave a tombstone under its id (a concurrent bet insert makes the
    // tombstone insert wait and then conflict, and the second lookup finds the committed bet).
    let mut bet = None;
    for _ in 0..2 {
        bet = sqlx::query_as::<_, BetRow>(
            "SELECT operation, transfer_id, player_id, round_id FROM game_transactions
             WHERE provider = $1 AND transaction_id = $2 FOR UPDATE",
        )
        .bind(&call.provider)
        .bind(&request.bet_transaction_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if bet.is_some() {
            break;
        }
        let tombstone = json!({ "error": { "code": "already_rolled_back", "message": "this bet was rolled back before it arrived" } });
        let inserted = sqlx::query(
            "INSERT INTO game_transactions (provider, transaction_id, operation, request_hash, player_id, round_id,
                                            http_status, response)
             VALUES ($1, $2, 'tombstone', $3, $4, $5, 422, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&call.provider)
        .bind(&request.bet_transaction_id)
        .bind(&hash)
        .bind(request.player_id)
        .bind(&request.round_id)
        .bind(&tombstone)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if inserted.rows_affected() == 1 {
            tracing::info!(provider = %call.provider, bet_transaction_id = %request.bet_transaction_id,
                player_id = %request.player_id, "rollback of an unknown bet: tombstone recorded");
            // The tombstone and the rollback's own (refusal) answer commit together.
            let balance = Ledger::balance(&mut tx, request.player_id, &currency.code)
                .await
                .map_err(db)?;
            let error = VaultError::not_found(
                "bet_not_found",
                format!(
                    "bet {} is unknown; a later bet with this id will be refused",
                    request.bet_transaction_id
                ),
            );
            let body = refusal_body(&error, Some((balance, currency)));
            finish(
                &mut tx,
                &call.provider,
                &request.transaction_id,
                None,
                error.status(),
                &body,
            )
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            error.record();
            call.count(error.code());
            return Ok(GameAnswer {
                status: error.status(),
                body,
            });
        }
    }
    let (bet_transfer, bet_player, bet_round) = match bet {
        Some((op, Some(transfer), player, round)) if op == "bet" => (transfer, player, round),
        _ => {
            return Err(fin(VaultError::not_found(
                "bet_not_found",
                format!(
                    "bet {} is unknown or was refused",
                    request.bet_transaction_id
                ),
            )));
        }
    };
    if bet_player != Some(request.player_id) {
        return Err(fin(VaultError::conflict(
            "round_mismatch",
            "the bet belongs to another player",
        )));
    }
    // The round that matters is the bet's: the request must name it, and it is the one locked, checked and
    // booked (naming another round must not refund a bet whose round was settled, nor count the rollback in
    // a round it does not belong to).
    let Some(bet_round) = bet_round else {
        return Err(transient(VaultError::Internal(anyhow::anyhow!(
            "accepted bet {} has no round",
            request.bet_transaction_id
        ))));
    };
    if bet_round != request.round_id {
        return Err(fin(VaultError::conflict(
            "round_mismatch",
            format!(
                "bet {} was placed in another round than {}",
                request.bet_transaction_id, request.round_id
            ),
        )));
    }
    let round: Option<(String, Uuid, String)> = sqlx::query_as(
        "SELECT status, player_id, currency FROM rounds WHERE provider = $1 AND round_id = $2 FOR UPDATE",
    )
    .bind(&call.provider)
    .bind(&bet_round)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    match round {
        // An accepted bet opened (or joined) its round in the same commit: a missing round is a broken
        // ledger, never a pass.
        None => {
            return Err(transient(VaultError::Internal(anyhow::anyhow!(
                "round {bet_round} of accepted bet {} is missing",
                request.bet_transaction_id
            ))));
        }
        Some((status, _, _)) if status == "settled" => {
            return Err(fin(VaultError::unprocessable(
                "round_settled",
                format!("round {bet_round} is settled; its bets cannot be rolled back"),
            )));
        }
        Some((_, player, round_currency))
            if player != request.player_id || round_currency != currency.code =>
        {
            return Err(fin(VaultError::conflict(
                "round_mismatch",
                format!("round {bet_round} belongs to another player or currency"),
            )));
        }
        Some(_) => {}
    }
    let already: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM transfers WHERE kind = 'rollback' AND reference_transfer_id = $1)",
    )
    .bind(bet_transfer)
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    if already {
        return Err(fin(VaultError::unprocessable(
            "already_rolled_back",
            format!("bet {} was already rolled back", request.bet_transaction_id),
        )));
    }
    let bet_row = sqlx::query(
        "SELECT amount, currency, amount_eur, round_id, game_id, game_category FROM transfers WHERE id = $1",
    )
    .bind(bet_transfer)
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    let bet_currency: String = bet_row.get("currency");
    if bet_currency != currency.code {
        return Err(fin(VaultError::conflict(
            "round_mismatch",
            "the bet was placed in another currency",
        )));
    }
    let posting = Posting {
        kind: TransferKind::Rollback,
        player_id: request.player_id,
        currency: currency.code.clone(),
        amount: bet_row.get("amount"),
        // Reverse exactly what the bet recorded, whatever the rate is now.
        amount_eur: bet_row.get("amount_eur"),
        direction: Direction::CreditPlayer,
        counterparty: "house".into(),
        idempotency_key: format!("game:{}:{}", call.provider, request.transaction_id),
        game: Some(GameRef {
            provider: call.provider.clone(),
            round_id: bet_round,
            game_id: bet_row
                .get::<Option<String>, _>("game_id")
                .unwrap_or_default(),
            game_category: bet_row.get("game_category"),
        }),
        reference_transfer_id: Some(bet_transfer),
        round_closed: false,
        metadata: json!({ "bet_transaction_id": request.bet_transaction_id }),
    };
    let posted = state
        .ledger
        .post(&mut tx, posting)
        .await
        .map_err(|e| transient(post_error(e)))?;
    call.accept(tx, &request.transaction_id, posted, currency)
        .await
        .map_err(db)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionRequest {
    #[serde(default)]
    game_id: Option<String>,
}

async fn create_session(
    State(state): State<AppState>,
    Player(claims): Player,
    ApiJson(request): ApiJson<SessionRequest>,
) -> Result<(StatusCode, Json<Value>), VaultError> {
    match player_locked(&state, claims.sub).await? {
        None => return Err(VaultError::not_found("player_not_found", "unknown player")),
        Some(true) => {
            return Err(VaultError::refused(
                StatusCode::LOCKED,
                "player_locked",
                "the account is locked: no new game sessions",
            ));
        }
        Some(false) => {}
    }
    let token = crate::routes::auth::random_token();
    let expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(state.settings.game_session_ttl)
            .unwrap_or(chrono::Duration::hours(4));
    sqlx::query(
        "INSERT INTO game_sessions (token_hash, player_id, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(Sha256::digest(token.as_bytes()).to_vec())
    .bind(claims.sub)
    .bind(expires_at)
    .execute(&state.pool)
    .await?;
    tracing::info!(player_id = %claims.sub, game_id = ?request.game_id, "game session created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "session_token": token, "expires_at": expires_at })),
    ))
}

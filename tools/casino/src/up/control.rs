//! The loopback control endpoint of `casino up`, which `casino fault` calls. Every answer is JSON:
//! `{"message": "..."}` saying what was done, or `{"error": {"code", "message"}}` with a 4xx.
//!
//! | route | effect |
//! |---|---|
//! | `GET /v1/status` | the stack description and which processes run |
//! | `POST /v1/kafka/down` `{"for_seconds": 30}` | take the embedded broker down (back up after `for_seconds` when given) |
//! | `POST /v1/kafka/up` | bring it back |
//! | `POST /v1/processes/{name}/stop` / `start` | graceful stop / start (and wait for readiness) of one process |
//! | `POST /v1/corrupt-balance` `{"player": "<id or email>"}` | add 1.00 to a player's balance without a transfer |
//! | `POST /v1/psp-failure` `{"currency": "EUR", "rate": 1.0}` | sandbox PSP failure rate for a currency |

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Stack;

struct Failure(StatusCode, &'static str, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(json!({"error": {"code": self.1, "message": self.2}})),
        )
            .into_response()
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self(
            StatusCode::BAD_GATEWAY,
            "fault_failed",
            format!("{error:#}"),
        )
    }
}

type Answer = Result<Json<Value>, Failure>;

fn done(message: String) -> Answer {
    eprintln!("casino: fault: {message}");
    Ok(Json(json!({ "message": message })))
}

/// Serve the control endpoint on the reserved loopback address until `cancel`.
pub async fn serve(stack: Arc<Stack>, cancel: CancellationToken) {
    let addr = stack
        .info
        .control_url
        .trim_start_matches("http://")
        .to_owned();
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "casino: cannot serve the control endpoint on {addr}: {error}; `casino fault` will not work"
            );
            return;
        }
    };
    let app = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/kafka/down", post(kafka_down))
        .route("/v1/kafka/up", post(kafka_up))
        .route("/v1/processes/{name}/stop", post(stop_process))
        .route("/v1/processes/{name}/start", post(start_process))
        .route("/v1/corrupt-balance", post(corrupt_balance))
        .route("/v1/psp-failure", post(psp_failure))
        .with_state(stack);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await;
}

async fn status(State(stack): State<Arc<Stack>>) -> Json<Value> {
    let mut processes = stack.processes.lock().await;
    let running: Vec<Value> = processes
        .iter_mut()
        .map(|p| json!({"name": p.spec.name, "running": p.is_running(), "pid": p.pid()}))
        .collect();
    Json(json!({"stack": stack.info, "processes": running}))
}

#[derive(Debug, Deserialize, Default)]
struct KafkaDown {
    for_seconds: Option<u64>,
}

async fn kafka_down(State(stack): State<Arc<Stack>>, body: Option<Json<KafkaDown>>) -> Answer {
    let for_seconds = body.and_then(|Json(b)| b.for_seconds);
    if !stack.kafka.broker.is_embedded() {
        return Err(Failure(
            StatusCode::CONFLICT,
            "not_embedded",
            "Kafka faults need the embedded broker (the stack uses KAFKA_BROKERS)".into(),
        ));
    }
    stack.kafka.broker.broker_down()?;
    if let Some(seconds) = for_seconds {
        let stack = stack.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            match stack.kafka.broker.broker_up() {
                Ok(()) => eprintln!("casino: fault: the Kafka broker is back up after {seconds} s"),
                Err(error) => eprintln!("casino: fault: bringing Kafka back failed: {error:#}"),
            }
        });
        return done(format!(
            "the Kafka broker is down for {seconds} s (producers buffer, the outbox grows, consumers lag)"
        ));
    }
    done("the Kafka broker is down until `casino fault kafka-up`".into())
}

async fn kafka_up(State(stack): State<Arc<Stack>>) -> Answer {
    if !stack.kafka.broker.is_embedded() {
        return Err(Failure(
            StatusCode::CONFLICT,
            "not_embedded",
            "Kafka faults need the embedded broker (the stack uses KAFKA_BROKERS)".into(),
        ));
    }
    stack.kafka.broker.broker_up()?;
    done("the Kafka broker is up".into())
}

fn unknown_process(name: &str) -> Failure {
    Failure(
        StatusCode::NOT_FOUND,
        "unknown_process",
        format!(
            "no process named {name:?} (vault, concierge, room-service, chat-probe, prometheus)"
        ),
    )
}

async fn stop_process(State(stack): State<Arc<Stack>>, Path(name): Path<String>) -> Answer {
    let mut processes = stack.processes.lock().await;
    let process = processes
        .iter_mut()
        .find(|p| p.spec.name == name)
        .ok_or_else(|| unknown_process(&name))?;
    match process.stop().await {
        Some(status) => done(format!("{name} stopped gracefully ({status})")),
        None => done(format!("{name} was not running")),
    }
}

async fn start_process(State(stack): State<Arc<Stack>>, Path(name): Path<String>) -> Answer {
    let mut processes = stack.processes.lock().await;
    let process = processes
        .iter_mut()
        .find(|p| p.spec.name == name)
        .ok_or_else(|| unknown_process(&name))?;
    if process.is_running() {
        return done(format!("{name} is already running"));
    }
    process.restart(&stack.http).await?;
    done(format!(
        "{name} started and ready (pid {})",
        process.pid().unwrap_or_default()
    ))
}

#[derive(Debug, Deserialize)]
struct CorruptBalance {
    player: String,
}

/// A deliberate ledger break: the player's balance moves by 1.00 (100 minor units) with no transfer
/// behind it, which Vault's reconciler reports as a mismatch on its next pass.
async fn corrupt_balance(
    State(stack): State<Arc<Stack>>,
    Json(request): Json<CorruptBalance>,
) -> Answer {
    let url = {
        let database = stack.database.lock().await;
        match database.as_ref() {
            Some(database) => database.url("vault"),
            None => {
                return Err(Failure(
                    StatusCode::CONFLICT,
                    "stopping",
                    "the stack is stopping".into(),
                ));
            }
        }
    };
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .map_err(|e| anyhow::Error::new(e).context("connecting to the vault database"))?;
    let player = request.player.trim();
    let row: Option<(uuid::Uuid, String, i64)> = sqlx::query_as(
        "UPDATE accounts a SET balance = a.balance + 100
           FROM players p
          WHERE a.player_id = p.id AND a.currency = p.currency
            AND (p.id::text = $1 OR lower(p.email) = lower($1))
        RETURNING p.id, a.currency, a.balance",
    )
    .bind(player)
    .fetch_optional(&mut conn)
    .await
    .map_err(|e| anyhow::Error::new(e).context("changing the balance"))?;
    let Some((id, currency, balance)) = row else {
        return Err(Failure(
            StatusCode::NOT_FOUND,
            "unknown_player",
            format!("no player with id or email {player:?} (or no wallet in their currency yet)"),
        ));
    };
    done(format!(
        "player {id}: {currency} balance is now {balance} minor units, 100 more than its transfers say; \
         Vault's reconciler reports the mismatch on its next pass (vault_ledger_mismatches)"
    ))
}

#[derive(Debug, Deserialize)]
struct PspFailure {
    currency: String,
    rate: f64,
    provider: Option<String>,
    direction: Option<String>,
}

/// Set the sandbox PSP failure rate through Vault's staff endpoint, as an operator would.
async fn psp_failure(State(stack): State<Arc<Stack>>, Json(request): Json<PspFailure>) -> Answer {
    let vault = &stack.info.vault.public_url;
    let login = stack
        .http
        .post(format!("{vault}/api/v1/auth/login"))
        .json(&json!({"email": stack.info.admin.email, "password": stack.info.admin.password}))
        .send()
        .await
        .map_err(|e| anyhow::Error::new(e).context("logging in to Vault"))?;
    let login: Value = login.json().await.map_err(anyhow::Error::new)?;
    let token = login["access_token"].as_str().ok_or_else(|| {
        Failure(
            StatusCode::BAD_GATEWAY,
            "login_failed",
            format!("Vault refused the staff login: {login}"),
        )
    })?;
    let mut body = json!({"currency": request.currency, "failure_rate": request.rate});
    if let Some(provider) = &request.provider {
        body["provider"] = json!(provider);
    }
    if let Some(direction) = &request.direction {
        body["direction"] = json!(direction);
    }
    let response = stack
        .http
        .put(format!("{vault}/api/v1/admin/payments/sandbox"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| anyhow::Error::new(e).context("calling Vault"))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(Failure(
            StatusCode::BAD_REQUEST,
            "refused",
            format!("Vault refused it ({status}): {answer}"),
        ));
    }
    done(format!(
        "sandbox PSP failure rate for {} {} is now {} ({})",
        request.currency,
        request
            .direction
            .as_deref()
            .unwrap_or("deposits and withdrawals"),
        request.rate,
        request.provider.as_deref().unwrap_or("every provider"),
    ))
}

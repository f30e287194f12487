//! Payment providers: the [`PaymentProvider`] trait and the built-in sandbox PSP.
//!
//! The sandbox behaves like a real PSP: Vault calls it over HTTP (signed), it answers with a reference at
//! once, and later calls Vault's webhook back with a real signed HTTP request (retrying until Vault answers
//! 2xx), after a configurable latency and with a configurable failure rate per currency and direction
//! (`PUT /api/v1/admin/payments/sandbox`). The sandbox server is mounted on Vault's admin port under
//! `/sandbox/v1/{provider}/payments`, standing in for the PSP's own API; several sandbox providers can be
//! configured side by side (`VAULT_PSP_PROVIDERS=sandbox-a=secret,sandbox-b=secret`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use casino_auth::signature::{self, SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER};
use futures::future::BoxFuture;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// Deposit or withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Money in.
    Deposit,
    /// Money out.
    Withdrawal,
}

impl Direction {
    /// Name on the wire and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Deposit => "deposit",
            Direction::Withdrawal => "withdrawal",
        }
    }
}

/// What Vault asks a provider to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentOrder {
    /// Vault's payment id (the PSP's merchant reference).
    pub payment_id: Uuid,
    /// Deposit or payout.
    pub direction: Direction,
    /// Currency code.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// Where the PSP reports the result.
    pub webhook_url: String,
}

/// The provider's immediate answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Initiated {
    /// The PSP's id of the payment.
    pub reference: String,
    /// Where the player completes a deposit (a hosted payment page).
    pub redirect_url: Option<String>,
}

/// Final result reported by a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    /// Money moved.
    Succeeded,
    /// It did not.
    Failed,
}

/// A verified webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEvent {
    /// The PSP's delivery id (retries repeat it).
    pub event_id: String,
    /// Vault's payment id.
    pub payment_id: Uuid,
    /// The PSP's reference.
    pub reference: String,
    /// Result.
    pub status: WebhookStatus,
    /// Why it failed.
    #[serde(default)]
    pub reason: Option<String>,
    /// Minor units, as the PSP saw them.
    pub amount: i64,
    /// Currency, as the PSP saw it.
    pub currency: String,
}

/// Why a webhook was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WebhookError {
    /// Signature problems.
    #[error("{0}")]
    Signature(SignatureError),
    /// Not a webhook we understand.
    #[error("malformed webhook: {0}")]
    Malformed(String),
}

impl WebhookError {
    /// Bounded reason label.
    pub fn reason(&self) -> &'static str {
        match self {
            WebhookError::Signature(e) => e.reason(),
            WebhookError::Malformed(_) => "malformed",
        }
    }
}

/// A payment service provider.
pub trait PaymentProvider: Send + Sync {
    /// Its name (`psp:<name>` is its ledger account).
    fn name(&self) -> &str;
    /// Start a deposit.
    fn initiate_deposit<'a>(
        &'a self,
        order: &'a PaymentOrder,
    ) -> BoxFuture<'a, anyhow::Result<Initiated>>;
    /// Start a payout.
    fn initiate_payout<'a>(
        &'a self,
        order: &'a PaymentOrder,
    ) -> BoxFuture<'a, anyhow::Result<Initiated>>;
    /// Check a webhook's signature and parse it.
    fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<WebhookEvent, WebhookError>;
}

/// Base URLs known only once the listeners are bound (tests use port 0).
#[derive(Debug, Clone, Default)]
pub struct Urls(Arc<RwLock<(String, String)>>);

impl Urls {
    /// Set Vault's public base URL (webhooks) and the sandbox PSP's base URL (Vault's admin port).
    pub fn set(&self, public: String, sandbox: String) {
        if let Ok(mut urls) = self.0.write() {
            *urls = (public, sandbox);
        }
    }

    /// Vault's public base URL.
    pub fn public(&self) -> String {
        self.0.read().map(|u| u.0.clone()).unwrap_or_default()
    }

    /// The sandbox PSP's base URL.
    pub fn sandbox(&self) -> String {
        self.0.read().map(|u| u.1.clone()).unwrap_or_default()
    }
}

/// The HTTP client of either side of the sandbox. The timeout keeps a stuck peer from holding a payment
/// request (or a webhook delivery) forever.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a reqwest client with a timeout builds")
}

/// A JSON POST signed with `secret` over the exact body, as Vault and the PSP sign their calls to each other.
fn signed_post(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let timestamp = chrono::Utc::now().timestamp();
    http.post(url)
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(
            SIGNATURE_HEADER,
            signature::sign(secret.as_bytes(), timestamp, &body),
        )
        .body(body)
}

/// Check the signature headers of a call signed as [`signed_post`] does.
fn verify_signed(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    signature::verify(
        secret.as_bytes(),
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        body,
        now,
    )
}

/// Vault's client of one sandbox PSP.
pub struct SandboxProvider {
    name: String,
    secret: String,
    urls: Urls,
    http: reqwest::Client,
}

impl SandboxProvider {
    /// A client of sandbox provider `name`.
    pub fn new(name: &str, secret: &str, urls: Urls) -> Self {
        Self {
            name: name.to_owned(),
            secret: secret.to_owned(),
            urls,
            http: http_client(),
        }
    }

    async fn initiate(&self, order: &PaymentOrder) -> anyhow::Result<Initiated> {
        let body = serde_json::to_vec(order)?;
        let url = format!("{}/sandbox/v1/{}/payments", self.urls.sandbox(), self.name);
        let response = signed_post(&self.http, &url, &self.secret, body)
            .send()
            .await?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "the PSP answered {status}");
        Ok(response.json().await?)
    }
}

impl PaymentProvider for SandboxProvider {
    fn name(&self) -> &str {
        &self.name
    }
    fn initiate_deposit<'a>(
        &'a self,
        order: &'a PaymentOrder,
    ) -> BoxFuture<'a, anyhow::Result<Initiated>> {
        Box::pin(self.initiate(order))
    }
    fn initiate_payout<'a>(
        &'a self,
        order: &'a PaymentOrder,
    ) -> BoxFuture<'a, anyhow::Result<Initiated>> {
        Box::pin(self.initiate(order))
    }
    fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<WebhookEvent, WebhookError> {
        verify_signed(&self.secret, headers, body, now).map_err(WebhookError::Signature)?;
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))
    }
}

/// How the sandbox behaves for one (currency, direction).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Behaviour {
    /// Share of payments that fail, 0..=1.
    pub failure_rate: f64,
    /// Delay before the webhook.
    pub latency_ms: u64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            failure_rate: 0.0,
            latency_ms: 200,
        }
    }
}

type BehaviourKey = (Option<String>, String, Direction);

/// The sandbox PSP server: its providers' secrets and the behaviour table.
#[derive(Clone, Default)]
pub struct SandboxPsp {
    secrets: Arc<HashMap<String, String>>,
    behaviour: Arc<RwLock<HashMap<BehaviourKey, Behaviour>>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for SandboxPsp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxPsp").finish_non_exhaustive()
    }
}

impl SandboxPsp {
    /// A sandbox serving `secrets` (provider name → secret).
    pub fn new(secrets: HashMap<String, String>) -> Self {
        Self {
            secrets: Arc::new(secrets),
            behaviour: Arc::default(),
            http: http_client(),
        }
    }

    /// Set the behaviour for `currency` and `direction` (all directions when `None`), for one provider or all.
    pub fn set(
        &self,
        provider: Option<String>,
        currency: &str,
        direction: Option<Direction>,
        behaviour: Behaviour,
    ) {
        if let Ok(mut table) = self.behaviour.write() {
            for d in direction
                .map(|d| vec![d])
                .unwrap_or_else(|| vec![Direction::Deposit, Direction::Withdrawal])
            {
                table.insert((provider.clone(), currency.to_owned(), d), behaviour);
            }
        }
    }

    /// The behaviour that applies (provider-specific first, then any provider, then the default).
    pub fn behaviour(&self, provider: &str, currency: &str, direction: Direction) -> Behaviour {
        let table = self.behaviour.read();
        let Ok(table) = table else {
            return Behaviour::default();
        };
        table
            .get(&(Some(provider.to_owned()), currency.to_owned(), direction))
            .or_else(|| table.get(&(None, currency.to_owned(), direction)))
            .copied()
            .unwrap_or_default()
    }

    /// The whole table, for the admin endpoint.
    pub fn table(&self) -> Vec<Value> {
        self.behaviour
            .read()
            .map(|t| {
                t.iter()
                    .map(|((p, c, d), b)| json!({ "provider": p, "currency": c, "direction": d, "failure_rate": b.failure_rate, "latency_ms": b.latency_ms }))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The PSP's own API (mounted on Vault's admin port).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/sandbox/v1/{provider}/payments", post(accept))
            .with_state(self.clone())
    }

    async fn deliver(
        self,
        provider: String,
        secret: String,
        order: PaymentOrder,
        reference: String,
    ) {
        let behaviour = self.behaviour(&provider, &order.currency, order.direction);
        tokio::time::sleep(Duration::from_millis(behaviour.latency_ms)).await;
        let failed = rand::thread_rng().gen_bool(behaviour.failure_rate.clamp(0.0, 1.0));
        let event = WebhookEvent {
            event_id: format!("evt_{}", Uuid::new_v4().simple()),
            payment_id: order.payment_id,
            reference,
            status: if failed {
                WebhookStatus::Failed
            } else {
                WebhookStatus::Succeeded
            },
            reason: failed.then(|| match order.direction {
                Direction::Deposit => "declined_by_issuer".to_owned(),
                Direction::Withdrawal => "payout_rejected_by_bank".to_owned(),
            }),
            amount: order.amount,
            currency: order.currency.clone(),
        };
        let body = serde_json::to_vec(&event).unwrap_or_default();
        // Like a real PSP: retry the webhook until it is acknowledged (bounded here).
        for attempt in 0..8u32 {
            let sent = signed_post(&self.http, &order.webhook_url, &secret, body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => {
                    tracing::warn!(provider = %provider, payment_id = %order.payment_id,
                    status = %response.status(), attempt, "sandbox psp: webhook refused, retrying")
                }
                Err(error) => tracing::warn!(provider = %provider, payment_id = %order.payment_id,
                    error = %error, attempt, "sandbox psp: webhook failed, retrying"),
            }
            tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt.min(5)))).await;
        }
        tracing::error!(provider = %provider, payment_id = %order.payment_id, "sandbox psp: webhook abandoned");
    }
}

async fn accept(
    State(psp): State<SandboxPsp>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Initiated>, (StatusCode, Json<Value>)> {
    let refuse = |status: StatusCode, code: &str| {
        (
            status,
            Json(json!({ "error": { "code": code, "message": code } })),
        )
    };
    let secret = psp
        .secrets
        .get(&provider)
        .cloned()
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "unknown_provider"))?;
    verify_signed(&secret, &headers, &body, chrono::Utc::now().timestamp())
        .map_err(|_| refuse(StatusCode::UNAUTHORIZED, "bad_signature"))?;
    let order: PaymentOrder = serde_json::from_slice(&body)
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "invalid_body"))?;
    let reference = format!("sbx_{}", Uuid::new_v4().simple());
    let redirect_url = (order.direction == Direction::Deposit)
        .then(|| format!("https://sandbox-psp.invalid/{provider}/pay/{reference}"));
    tokio::spawn(
        psp.clone()
            .deliver(provider, secret, order, reference.clone()),
    );
    Ok(Json(Initiated {
        reference,
        redirect_url,
    }))
}

//! Requests to Vault, each timed and counted in [`Stats`] under its operation: JSON calls with an optional
//! bearer token and `Idempotency-Key`, and the seamless-wallet game API signed as the stack's game
//! provider (`x-casino-provider`, `x-casino-timestamp`, `x-casino-signature` = HMAC-SHA256 of
//! `"{timestamp}.{body}"`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use super::stats::{self, Stats};
use crate::stack::GameProvider;

/// An answer (or its absence).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status; 0 when there was no answer.
    pub status: u16,
    /// JSON body (`Null` when empty or not JSON).
    pub body: Value,
    /// The outcome label (`ok`, an error code, `http_5xx`, `transport_error`).
    pub outcome: String,
    /// What went wrong at the transport level, when it did.
    pub error: Option<String>,
}

impl Answer {
    /// 2xx.
    pub fn ok(&self) -> bool {
        self.outcome == stats::OK
    }

    /// A 5xx or no answer.
    pub fn server_error(&self) -> bool {
        stats::is_server_error(&self.outcome)
    }

    /// The string field `name` of a 2xx body (`access_token`, `id`); `None` for a refusal.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.body[name].as_str().filter(|_| self.ok())
    }

    /// One line for error messages.
    pub fn describe(&self) -> String {
        match &self.error {
            Some(error) => format!("no answer: {error}"),
            None => format!("HTTP {} {}", self.status, self.outcome),
        }
    }
}

/// Vault's public API.
#[derive(Debug, Clone)]
pub struct Vault {
    http: reqwest::Client,
    base: String,
    stats: Arc<Stats>,
    provider: GameProvider,
}

impl Vault {
    /// A client of the Vault at `base` (public URL).
    pub fn new(base: &str, stats: Arc<Stats>, provider: GameProvider) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            stats,
            provider,
        })
    }

    /// The public base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(&self, operation: &'static str, request: reqwest::RequestBuilder) -> Answer {
        let started = Instant::now();
        let answer = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(bytes) => {
                        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        Answer {
                            status,
                            outcome: stats::outcome_of(status, &body),
                            body,
                            error: None,
                        }
                    }
                    Err(error) => Answer {
                        status,
                        body: Value::Null,
                        outcome: stats::TRANSPORT_ERROR.to_owned(),
                        error: Some(error.to_string()),
                    },
                }
            }
            Err(error) => Answer {
                status: 0,
                body: Value::Null,
                outcome: stats::TRANSPORT_ERROR.to_owned(),
                error: Some(format!("{error:#}")),
            },
        };
        self.stats
            .record(operation, &answer.outcome, started.elapsed());
        answer
    }

    /// A JSON request to `path` (with `body` unless it is `Null`).
    pub async fn call(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        token: Option<&str>,
        idempotency_key: Option<&str>,
        body: &Value,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if !body.is_null() {
            request = request.json(body);
        }
        self.send(operation, request).await
    }

    /// `POST /api/v1/auth/register` a player with `currency` (counted as `register`); the id is
    /// `field("id")`.
    pub async fn register(&self, email: &str, password: &str, currency: &str) -> Answer {
        let body =
            serde_json::json!({ "email": email, "password": password, "currency": currency });
        self.call(
            "register",
            Method::POST,
            "/api/v1/auth/register",
            None,
            None,
            &body,
        )
        .await
    }

    /// `POST /api/v1/auth/login` (counted as `login`); the token is `field("access_token")`.
    pub async fn login(&self, email: &str, password: &str) -> Answer {
        let body = serde_json::json!({ "email": email, "password": password });
        self.call(
            "login",
            Method::POST,
            "/api/v1/auth/login",
            None,
            None,
            &body,
        )
        .await
    }

    /// `POST /api/v1/games/{operation}` signed as the game provider; `operation` is `bet`, `win`,
    /// `rollback` or `balance`.
    pub async fn game(&self, operation: &'static str, body: &Value) -> Answer {
        let raw = serde_json::to_vec(body).unwrap_or_default();
        let timestamp = chrono::Utc::now().timestamp();
        let signature =
            casino_auth::signature::sign(self.provider.secret.as_bytes(), timestamp, &raw);
        let request = self
            .http
            .post(format!("{}/api/v1/games/{operation}", self.base))
            .header("content-type", "application/json")
            .header("x-casino-provider", &self.provider.name)
            .header("x-casino-timestamp", timestamp.to_string())
            .header("x-casino-signature", signature)
            .body(raw);
        self.send(operation, request).await
    }
}

/// A decimal amount in major units (`"12.34"`) as minor units of a currency with `exponent` decimals.
pub fn parse_minor(value: &Value, exponent: u32) -> Option<i64> {
    use rust_decimal::prelude::ToPrimitive as _;
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let mut amount: rust_decimal::Decimal = text.trim().parse().ok()?;
    amount.rescale(exponent);
    amount.mantissa().to_i64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimal_amounts_become_minor_units() {
        assert_eq!(parse_minor(&json!("12.34"), 2), Some(1234));
        assert_eq!(parse_minor(&json!("12"), 2), Some(1200));
        assert_eq!(parse_minor(&json!("0.00001000"), 8), Some(1000));
        assert_eq!(parse_minor(&json!(1500), 0), Some(1500));
        assert_eq!(parse_minor(&json!(null), 2), None);
        assert_eq!(parse_minor(&json!("abc"), 2), None);
    }
}

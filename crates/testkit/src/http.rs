//! HTTP helpers for tests that drive a real Vault from another service's test suite.

use serde_json::Value;

/// POST JSON (with a bearer token when given), assert a 2xx, return the JSON answer.
pub async fn post_json(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> Value {
    let mut request = http.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .expect("the request reaches the server");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// A seamless-wallet call to Vault's game API as `provider` signs it with `secret`; asserts a 200.
pub async fn signed_game_call(
    http: &reqwest::Client,
    vault: &str,
    provider: &str,
    secret: &str,
    operation: &str,
    body: Value,
) -> Value {
    let raw = serde_json::to_vec(&body).expect("JSON serialises");
    let timestamp = chrono::Utc::now().timestamp();
    let response = http
        .post(format!("{vault}/api/v1/games/{operation}"))
        .header("content-type", "application/json")
        .header("x-casino-provider", provider)
        .header("x-casino-timestamp", timestamp.to_string())
        .header(
            "x-casino-signature",
            casino_auth::signature::sign(secret.as_bytes(), timestamp, &raw),
        )
        .body(raw)
        .send()
        .await
        .expect("the request reaches Vault");
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{answer}");
    answer
}

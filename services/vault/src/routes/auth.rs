//! Players and login: register, login, refresh (rotating, reuse detection), logout, staff creation, JWKS.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use casino_auth::{Role, extract::Admin};
use casino_events::{
    Envelope,
    payloads::{PlayerRegistered, player_types},
    topics,
};
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::{
    domain::{
        credentials::{Email, Password},
        money::CurrencyCode,
    },
    error::{ApiJson, VaultError},
    ledger::outbox,
    state::AppState,
};

/// Failed logins per email within [`THROTTLE_WINDOW_SECONDS`] before further attempts are refused.
pub const MAX_FAILED_LOGINS: i32 = 5;
/// Window of the login throttle.
pub const THROTTLE_WINDOW_SECONDS: i64 = 900;

/// The auth router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/admin/staff", post(create_staff))
        .route("/.well-known/jwks.json", get(jwks))
}

/// 32 random bytes, base64url: refresh tokens and game session tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Hash a password with argon2id, off the async threads.
pub async fn hash_password(password: String) -> Result<String, VaultError> {
    tokio::task::spawn_blocking(move || {
        use argon2::{Argon2, PasswordHasher as _, password_hash::SaltString};
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await
    .map_err(|e| VaultError::Internal(e.into()))?
    .map_err(VaultError::Internal)
}

/// Check a password against a stored hash, off the async threads.
async fn verify_password(password: String, hash: String) -> Result<bool, VaultError> {
    tokio::task::spawn_blocking(move || {
        use argon2::{Argon2, PasswordHash, PasswordVerifier as _};
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .map_err(|e| VaultError::Internal(e.into()))
}

/// A real hash of a random password, verified when the email is unknown so that both cases cost the same.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            use argon2::{Argon2, PasswordHasher as _, password_hash::SaltString};
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Argon2::default()
                .hash_password(random_token().as_bytes(), &salt)
                .map(|h| h.to_string())
                .unwrap_or_default()
        })
        .clone()
}

/// The email and password of a new account (players and staff follow the same rules).
fn new_credentials(email: &str, password: &str) -> Result<(Email, Password), VaultError> {
    let email = Email::parse(email).map_err(|m| VaultError::bad_request("invalid_email", m))?;
    let password = Password::parse_new(password, &email)
        .map_err(|m| VaultError::bad_request("weak_password", m))?;
    Ok((email, password))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    email: String,
    password: String,
    currency: CurrencyCode,
}

async fn register(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<Value>), VaultError> {
    let (email, password) = new_credentials(&request.email, &request.password)?;
    let currency = state.currencies.enabled(&request.currency)?;
    let id = create_account(&state, &email, &password, Role::Player, &currency.code).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "id": id, "email": email.as_str(), "role": "player", "currency": currency.code }),
        ),
    ))
}

/// Create a player or staff account (`player.registered` goes out through the outbox for players).
pub async fn create_account(
    state: &AppState,
    email: &Email,
    password: &Password,
    role: Role,
    currency: &str,
) -> Result<Uuid, VaultError> {
    let hash = hash_password(password.expose().to_owned()).await?;
    let id = Uuid::now_v7();
    let mut tx = state.pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO players (id, email, password_hash, role, currency) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(id)
    .bind(email.as_str())
    .bind(&hash)
    .bind(role.as_str())
    .bind(currency)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(VaultError::conflict(
            "email_taken",
            "this email is already registered",
        ));
    }
    if role == Role::Player {
        let event = Envelope::new(
            player_types::REGISTERED,
            "vault",
            Some(id),
            PlayerRegistered {
                currency: currency.to_owned(),
            },
        );
        outbox::enqueue(&mut tx, topics::VAULT_PLAYERS, &event).await?;
    }
    tx.commit().await?;
    metrics::counter!("vault_players_registered_total", "role" => role.as_str()).increment(1);
    tracing::info!(player_id = %id, role = role.as_str(), "account created");
    Ok(id)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
}

fn auth_failure(reason: &'static str) {
    metrics::counter!("vault_auth_failures_total", "reason" => reason).increment(1);
}

async fn login(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Json<Value>, VaultError> {
    let email = request.email.trim().to_lowercase();
    let throttled: Option<bool> = sqlx::query_scalar(
        "SELECT failures >= $2 FROM login_throttle
         WHERE email = $1 AND window_start > now() - make_interval(secs => $3)",
    )
    .bind(&email)
    .bind(MAX_FAILED_LOGINS)
    .bind(THROTTLE_WINDOW_SECONDS as f64)
    .fetch_optional(&state.pool)
    .await?;
    if throttled == Some(true) {
        auth_failure("throttled");
        return Err(VaultError::refused(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many failed logins; try again later",
        ));
    }
    let account: Option<(Uuid, String, String, bool, Option<String>)> = sqlx::query_as(
        "SELECT id, password_hash, role, locked, lock_reason FROM players WHERE email = $1",
    )
    .bind(&email)
    .fetch_optional(&state.pool)
    .await?;
    let hash = account
        .as_ref()
        .map(|a| a.1.clone())
        .unwrap_or_else(dummy_hash);
    let matches = verify_password(request.password, hash).await?;
    let Some((id, _, role, locked, lock_reason)) = account.filter(|_| matches) else {
        sqlx::query(
            "INSERT INTO login_throttle (email, failures, window_start) VALUES ($1, 1, now())
             ON CONFLICT (email) DO UPDATE SET
               failures = CASE WHEN login_throttle.window_start > now() - make_interval(secs => $2)
                               THEN login_throttle.failures + 1 ELSE 1 END,
               window_start = CASE WHEN login_throttle.window_start > now() - make_interval(secs => $2)
                               THEN login_throttle.window_start ELSE now() END",
        )
        .bind(&email)
        .bind(THROTTLE_WINDOW_SECONDS as f64)
        .execute(&state.pool)
        .await?;
        auth_failure("bad_credentials");
        return Err(VaultError::refused(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong email or password",
        ));
    };
    sqlx::query("DELETE FROM login_throttle WHERE email = $1")
        .bind(&email)
        .execute(&state.pool)
        .await?;
    let role = parse_role(&role)?;
    let mut body = issue_tokens(&state, id, role, Uuid::now_v7()).await?;
    // Locked players may sign in (to see their balance and why), but cannot bet or withdraw.
    body["locked"] = json!(locked);
    if locked {
        body["lock_reason"] = json!(lock_reason);
    }
    tracing::info!(player_id = %id, role = role.as_str(), "login");
    Ok(Json(body))
}

fn parse_role(role: &str) -> Result<Role, VaultError> {
    match role {
        "player" => Ok(Role::Player),
        "staff" => Ok(Role::Staff),
        "admin" => Ok(Role::Admin),
        other => Err(VaultError::Internal(anyhow::anyhow!(
            "unknown role {other} in the database"
        ))),
    }
}

async fn issue_tokens(
    state: &AppState,
    id: Uuid,
    role: Role,
    family: Uuid,
) -> Result<Value, VaultError> {
    let (access, claims) = state.signer.issue(id, role);
    let refresh = random_token();
    let expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(state.settings.refresh_token_ttl)
            .unwrap_or(chrono::Duration::days(30));
    sqlx::query(
        "INSERT INTO refresh_tokens (id, player_id, family_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(id)
    .bind(family)
    .bind(token_hash(&refresh))
    .bind(expires_at)
    .execute(&state.pool)
    .await?;
    Ok(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": claims.exp - claims.iat,
        "refresh_token": refresh,
        "player_id": id,
        "role": role.as_str(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

async fn refresh(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<Json<Value>, VaultError> {
    let mut tx = state.pool.begin().await?;
    let row: Option<(Uuid, Uuid, Uuid, bool, bool, bool, String)> = sqlx::query_as(
        "SELECT r.id, r.player_id, r.family_id, r.used_at IS NOT NULL, r.revoked_at IS NOT NULL,
                r.expires_at < now(), p.role
         FROM refresh_tokens r JOIN players p ON p.id = r.player_id
         WHERE r.token_hash = $1 FOR UPDATE OF r",
    )
    .bind(token_hash(&request.refresh_token))
    .fetch_optional(&mut *tx)
    .await?;
    let unauthorized = |reason: &'static str, message: &str| {
        auth_failure(reason);
        VaultError::refused(
            StatusCode::UNAUTHORIZED,
            "invalid_refresh_token",
            message.to_owned(),
        )
    };
    let Some((id, player, family, used, revoked, expired, role)) = row else {
        return Err(unauthorized(
            "unknown_refresh_token",
            "unknown refresh token",
        ));
    };
    if used {
        // A rotated token came back: someone holds a copy. Revoke the whole family.
        sqlx::query("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL")
            .bind(family)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::warn!(player_id = %player, family_id = %family, "refresh token reuse: family revoked");
        return Err(unauthorized(
            "refresh_token_reuse",
            "this refresh token was already used; sign in again",
        ));
    }
    if revoked {
        return Err(unauthorized(
            "revoked_refresh_token",
            "this refresh token was revoked; sign in again",
        ));
    }
    if expired {
        return Err(unauthorized(
            "expired_refresh_token",
            "this refresh token expired; sign in again",
        ));
    }
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let body = issue_tokens(&state, player, parse_role(&role)?, family).await?;
    Ok(Json(body))
}

async fn logout(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<StatusCode, VaultError> {
    let revoked = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now()
         WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) AND revoked_at IS NULL",
    )
    .bind(token_hash(&request.refresh_token))
    .execute(&state.pool)
    .await?;
    tracing::info!(revoked = revoked.rows_affected(), "logout");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaffRequest {
    email: String,
    password: String,
    #[serde(default = "staff_role")]
    role: Role,
}

fn staff_role() -> Role {
    Role::Staff
}

async fn create_staff(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ApiJson(request): ApiJson<StaffRequest>,
) -> Result<(StatusCode, Json<Value>), VaultError> {
    if request.role == Role::Player {
        return Err(VaultError::bad_request(
            "invalid_role",
            "staff accounts are staff or admin",
        ));
    }
    let (email, password) = new_credentials(&request.email, &request.password)?;
    let id = create_account(&state, &email, &password, request.role, "EUR").await?;
    tracing::info!(staff_id = %id, created_by = %admin.sub, role = request.role.as_str(), "staff account created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "email": email.as_str(), "role": request.role.as_str() })),
    ))
}

async fn jwks(State(state): State<AppState>) -> Json<Value> {
    Json(state.signer.jwks())
}

//! The public API (`/api/v1/...`): player rewards, the level table, leaderboards, staff endpoints.
//!
//! Player and staff tokens are Vault's EdDSA JWTs, verified with Vault's public key
//! ([`casino_auth::extract`]); refusals are 401/403 with the JSON error body and counted in
//! `concierge_auth_failures_total{reason}`.

pub mod admin;
pub mod leaderboards;
pub mod rewards;

use std::collections::HashMap;
use std::sync::Arc;

use axum::{
    Router,
    extract::{Query, rejection::QueryRejection},
    routing::{get, put},
};
use casino_auth::extract::{AuthState, TokenVerifier};
use sqlx::PgPool;

use crate::db::RulesCache;
use crate::error::ApiError;

/// What handlers share.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    rules: Arc<RulesCache>,
    auth: TokenVerifier,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

impl ApiState {
    /// State over `pool`, verifying tokens with `auth`.
    pub fn new(pool: PgPool, rules: Arc<RulesCache>, auth: TokenVerifier) -> Self {
        Self {
            inner: Arc::new(Inner { pool, rules, auth }),
        }
    }

    /// The database.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Rule sets.
    pub fn rules(&self) -> &RulesCache {
        &self.inner.rules
    }
}

impl AuthState for ApiState {
    fn token_verifier(&self) -> &TokenVerifier {
        &self.inner.auth
    }
    fn auth_failure_metric(&self) -> &'static str {
        crate::metrics::AUTH_FAILURES
    }
}

/// The public router.
pub fn public_router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/rewards/me", get(rewards::me))
        .route("/api/v1/levels", get(rewards::levels))
        .route("/api/v1/leaderboards/{board}", get(leaderboards::board))
        .route(
            "/api/v1/admin/players/{id}/rewards",
            get(admin::player_rewards),
        )
        .route("/api/v1/admin/levels", put(admin::replace_levels))
        .with_state(state)
}

/// Query parameters as a map, or a 400 in the JSON error format.
pub(crate) fn query_map(
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<HashMap<String, String>, ApiError> {
    query
        .map(|Query(map)| map)
        .map_err(|e| ApiError::bad_request("invalid_parameter", e.body_text()))
}

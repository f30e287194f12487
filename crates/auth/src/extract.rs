//! axum extractors that require a verified bearer token with a given role.
//!
//! Handlers take [`Player`], [`Staff`] (staff or admin) or [`Admin`]; the router's state implements
//! [`AuthState`]. A refused request gets 401 (`unauthorized`, `token_expired`) or 403 (`forbidden`) with the
//! JSON error body, one log line and one increment of the service's auth-failure counter.

use axum::{
    extract::FromRequestParts,
    http::{StatusCode, header::AUTHORIZATION, request::Parts},
    response::{IntoResponse, Response},
};
use casino_observability::http::error_response;

use crate::{
    AuthError, Role,
    jwt::{Claims, JwtVerifier, RemoteJwks},
};

/// Where keys come from.
#[derive(Debug, Clone)]
pub enum TokenVerifier {
    /// Keys in hand (Vault itself, tests).
    Local(JwtVerifier),
    /// Vault's JWKS over HTTP (Concierge, Room-Service).
    Remote(RemoteJwks),
}

impl TokenVerifier {
    /// Verify a token.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        match self {
            TokenVerifier::Local(verifier) => verifier.verify(token),
            TokenVerifier::Remote(remote) => remote.verify(token).await,
        }
    }
}

/// Implemented by a router state that can check tokens.
pub trait AuthState: Send + Sync {
    /// The verifier.
    fn token_verifier(&self) -> &TokenVerifier;
    /// The counter incremented (with a `reason` label) for each refusal, e.g. `vault_auth_failures_total`.
    fn auth_failure_metric(&self) -> &'static str;
}

/// A refused request.
#[derive(Debug)]
pub struct AuthRejection(pub AuthError);

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let status = match self.0 {
            AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            AuthError::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        };
        error_response(status, self.0.code(), self.0.to_string())
    }
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Verify the request's token and require `role`.
pub async fn authorize<S: AuthState>(
    parts: &Parts,
    state: &S,
    role: Role,
) -> Result<Claims, AuthRejection> {
    let outcome = match bearer(parts) {
        None => Err(AuthError::Missing),
        Some(token) => state.token_verifier().verify(token).await,
    }
    .and_then(|claims| {
        if claims.role.satisfies(role) {
            Ok(claims)
        } else {
            Err(AuthError::Forbidden(role.as_str()))
        }
    });
    outcome.map_err(|error| {
        metrics::counter!(state.auth_failure_metric(), "reason" => error.reason()).increment(1);
        tracing::info!(reason = error.reason(), path = %parts.uri.path(), required_role = role.as_str(), "request not authorized");
        AuthRejection(error)
    })
}

macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $role:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Claims);

        impl<S: AuthState> FromRequestParts<S> for $name {
            type Rejection = AuthRejection;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
                authorize(parts, state, $role).await.map($name)
            }
        }
    };
}

role_extractor!(
    /// A request by a player (their own resources only).
    Player,
    Role::Player
);
role_extractor!(
    /// A request by staff or an admin.
    Staff,
    Role::Staff
);
role_extractor!(
    /// A request by an admin.
    Admin,
    Role::Admin
);

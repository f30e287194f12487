//! Authentication shared by the services.
//!
//! - [`jwt`]: Vault issues short-lived EdDSA (Ed25519) access tokens (`sub`, `role`, `exp`, `iat`, `iss`,
//!   `jti`) and serves its public key as a JWKS; every service verifies them ([`jwt::JwtVerifier`] with a
//!   key in hand, [`jwt::RemoteJwks`] fetching Vault's `/.well-known/jwks.json`).
//! - [`extract`]: axum extractors [`extract::Player`], [`extract::Staff`], [`extract::Admin`] that turn
//!   a bearer token into verified claims or a 401/403 JSON error (counted and logged).
//! - [`signature`]: HMAC-SHA256 request signatures (game providers, payment webhooks): timestamp + body,
//!   constant-time comparison, stale timestamps refused.

pub mod extract;
pub mod jwt;
pub mod signature;

use serde::{Deserialize, Serialize};

/// Who a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A player: their own wallet, bets, rewards, sockets.
    Player,
    /// Casino staff: adjustments, limits, locks, reviews.
    Staff,
    /// Administrators: everything staff can, plus creating staff.
    Admin,
}

impl Role {
    /// The role's name on the wire and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Player => "player",
            Role::Staff => "staff",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may act where `required` is needed (admin ⊇ staff; players only as players).
    pub fn satisfies(self, required: Role) -> bool {
        match required {
            Role::Player => self == Role::Player,
            Role::Staff => matches!(self, Role::Staff | Role::Admin),
            Role::Admin => self == Role::Admin,
        }
    }
}

/// Why a request was not authenticated or not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No bearer token.
    #[error("missing bearer token")]
    Missing,
    /// Not a well-formed JWT.
    #[error("malformed token")]
    Malformed,
    /// Signature does not verify (forged, or another key).
    #[error("invalid token signature")]
    BadSignature,
    /// Past `exp`.
    #[error("token expired")]
    Expired,
    /// `kid` not among the known keys.
    #[error("unknown signing key")]
    UnknownKey,
    /// Wrong issuer or algorithm.
    #[error("token not issued by vault")]
    WrongIssuer,
    /// Valid token, insufficient role.
    #[error("this action needs the {0} role")]
    Forbidden(&'static str),
    /// The verifier could not get keys (Vault unreachable).
    #[error("token keys unavailable")]
    KeysUnavailable,
}

impl AuthError {
    /// The bounded `reason` label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Malformed => "malformed_token",
            AuthError::BadSignature => "bad_token_signature",
            AuthError::Expired => "expired_token",
            AuthError::UnknownKey => "unknown_key",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::Forbidden(_) => "forbidden",
            AuthError::KeysUnavailable => "keys_unavailable",
        }
    }

    /// The error code in the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Expired => "token_expired",
            AuthError::Forbidden(_) => "forbidden",
            AuthError::KeysUnavailable => "auth_unavailable",
            _ => "unauthorized",
        }
    }
}

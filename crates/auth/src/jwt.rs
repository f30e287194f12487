//! EdDSA JWTs and the JWKS that publishes the verifying key.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{AuthError, Role};

/// Issuer of every token.
pub const ISSUER: &str = "vault";

/// Tolerated clock difference between services when checking `exp`.
const LEEWAY_SECONDS: i64 = 5;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The player's or staff member's id.
    pub sub: Uuid,
    /// Their role.
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Issuer (`vault`).
    pub iss: String,
    /// Token id.
    pub jti: Uuid,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

/// Vault's token issuer.
#[derive(Clone)]
pub struct JwtSigner {
    key: SigningKey,
    kid: String,
    ttl: Duration,
}

impl std::fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSigner")
            .field("kid", &self.kid)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl JwtSigner {
    /// From a base64 (standard or URL-safe) 32-byte Ed25519 seed, as kept in the secret store.
    pub fn from_seed_base64(seed: &str, ttl: Duration) -> anyhow::Result<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(seed.trim())
            .or_else(|_| URL_SAFE_NO_PAD.decode(seed.trim().trim_end_matches('=')))
            .map_err(|_| anyhow::anyhow!("the signing key is not base64"))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the signing key must be a 32-byte Ed25519 seed"))?;
        Ok(Self::from_key(SigningKey::from_bytes(&seed), ttl))
    }

    /// A fresh random key (local runs and tests; tokens do not survive a restart).
    pub fn generate(ttl: Duration) -> Self {
        Self::from_key(SigningKey::generate(&mut rand::rngs::OsRng), ttl)
    }

    fn from_key(key: SigningKey, ttl: Duration) -> Self {
        // The key id is derived from the public key, so every Vault task with the same key agrees on it.
        let kid = URL_SAFE_NO_PAD.encode(&key.verifying_key().to_bytes()[..12]);
        Self { key, kid, ttl }
    }

    /// How long access tokens live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issue an access token for `sub` with `role`.
    pub fn issue(&self, sub: Uuid, role: Role) -> (String, Claims) {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub,
            role,
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
            iss: ISSUER.to_owned(),
            jti: Uuid::now_v7(),
        };
        (self.sign(&claims), claims)
    }

    /// Sign arbitrary claims (tests use this for expired tokens).
    pub fn sign(&self, claims: &Claims) -> String {
        let header = Header {
            alg: "EdDSA".into(),
            typ: "JWT".into(),
            kid: self.kid.clone(),
        };
        let encode = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
        let signing_input = format!(
            "{}.{}",
            encode(&serde_json::to_vec(&header).expect("header serialises")),
            encode(&serde_json::to_vec(claims).expect("claims serialise"))
        );
        let signature = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", encode(&signature.to_bytes()))
    }

    /// The JWKS document served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Value {
        json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": self.kid,
                "x": URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_bytes()),
            }]
        })
    }

    /// A verifier for this signer's tokens.
    pub fn verifier(&self) -> JwtVerifier {
        JwtVerifier {
            keys: vec![(self.kid.clone(), self.key.verifying_key())],
        }
    }
}

/// Verifies tokens against known public keys.
#[derive(Debug, Clone, Default)]
pub struct JwtVerifier {
    keys: Vec<(String, VerifyingKey)>,
}

impl JwtVerifier {
    /// Keys from a JWKS document (Ed25519 keys only; others are ignored).
    pub fn from_jwks(jwks: &Value) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        for key in jwks["keys"].as_array().into_iter().flatten() {
            if key["kty"] != "OKP" || key["crv"] != "Ed25519" {
                continue;
            }
            let kid = key["kid"].as_str().unwrap_or_default().to_owned();
            let x = URL_SAFE_NO_PAD
                .decode(key["x"].as_str().unwrap_or_default())
                .map_err(|_| anyhow::anyhow!("JWKS key {kid}: x is not base64url"))?;
            let x: [u8; 32] = x
                .try_into()
                .map_err(|_| anyhow::anyhow!("JWKS key {kid}: x is not 32 bytes"))?;
            let key = VerifyingKey::from_bytes(&x)
                .map_err(|_| anyhow::anyhow!("JWKS key {kid}: not an Ed25519 point"))?;
            keys.push((kid, key));
        }
        anyhow::ensure!(!keys.is_empty(), "the JWKS has no Ed25519 key");
        Ok(Self { keys })
    }

    /// Verify signature, algorithm, issuer and expiry; return the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| AuthError::Malformed);
        let header: Header =
            serde_json::from_slice(&decode(header)?).map_err(|_| AuthError::Malformed)?;
        if header.alg != "EdDSA" {
            return Err(AuthError::WrongIssuer);
        }
        let key = self
            .keys
            .iter()
            .find(|(kid, _)| *kid == header.kid)
            .map(|(_, key)| key)
            .ok_or(AuthError::UnknownKey)?;
        let signature: [u8; 64] = decode(signature)?
            .try_into()
            .map_err(|_| AuthError::Malformed)?;
        let signing_input = &token[..token.rfind('.').unwrap_or(0)];
        key.verify(signing_input.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| AuthError::BadSignature)?;
        let claims: Claims =
            serde_json::from_slice(&decode(payload)?).map_err(|_| AuthError::Malformed)?;
        if claims.iss != ISSUER {
            return Err(AuthError::WrongIssuer);
        }
        if claims.exp + LEEWAY_SECONDS < chrono::Utc::now().timestamp() {
            return Err(AuthError::Expired);
        }
        Ok(claims)
    }

    /// Whether a key with `kid` is known.
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == kid)
    }
}

/// Verifies tokens with keys fetched from Vault's JWKS URL, refetching (at most every 10 s) when a token
/// names an unknown key, so a Vault key rotation needs no restart elsewhere.
#[derive(Clone)]
pub struct RemoteJwks {
    url: String,
    http: reqwest::Client,
    state: Arc<RwLock<(JwtVerifier, Option<Instant>)>>,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// Keys from `url` (for example `http://vault:8080/.well-known/jwks.json`), fetched lazily.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .expect("a reqwest client with a timeout builds"),
            state: Arc::new(RwLock::new((JwtVerifier::default(), None))),
        }
    }

    /// Fetch the keys now.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let jwks: Value = self
            .http
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let verifier = JwtVerifier::from_jwks(&jwks)?;
        if let Ok(mut state) = self.state.write() {
            *state = (verifier, Some(Instant::now()));
        }
        Ok(())
    }

    /// Verify `token`, fetching keys first if needed.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let (verifier, fetched) = self
            .state
            .read()
            .map(|s| s.clone())
            .map_err(|_| AuthError::KeysUnavailable)?;
        match verifier.verify(token) {
            Err(AuthError::UnknownKey)
                if fetched.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) =>
            {
                if let Err(error) = self.refresh().await {
                    tracing::warn!(url = %self.url, error = %error, "fetching the JWKS failed");
                    return Err(if fetched.is_none() {
                        AuthError::KeysUnavailable
                    } else {
                        AuthError::UnknownKey
                    });
                }
                let verifier = self
                    .state
                    .read()
                    .map(|s| s.0.clone())
                    .map_err(|_| AuthError::KeysUnavailable)?;
                verifier.verify(token)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> JwtSigner {
        JwtSigner::generate(Duration::from_secs(900))
    }

    #[test]
    fn an_issued_token_verifies_with_the_published_jwks() {
        let signer = signer();
        let player = Uuid::now_v7();
        let (token, claims) = signer.issue(player, Role::Player);
        let verifier = JwtVerifier::from_jwks(&signer.jwks()).unwrap();
        let verified = verifier.verify(&token).unwrap();
        assert_eq!(verified, claims);
        assert_eq!(verified.sub, player);
        assert_eq!(verified.role, Role::Player);
        assert!(verified.exp > verified.iat);
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let (token, _) = signer().issue(Uuid::now_v7(), Role::Admin);
        let verifier = signer().verifier();
        assert_eq!(verifier.verify(&token), Err(AuthError::UnknownKey));
    }

    #[test]
    fn a_token_from_another_key_claiming_our_kid_is_refused() {
        let ours = signer();
        let forger = signer();
        let mut claims = ours.issue(Uuid::now_v7(), Role::Player).1;
        claims.role = Role::Admin;
        let forged = forger.sign(&claims);
        // Re-label the forger's token with our key id.
        let (_, rest) = forged.split_once('.').unwrap();
        let our_header = ours.sign(&claims).split_once('.').unwrap().0.to_owned();
        let forged = format!("{our_header}.{rest}");
        assert_eq!(
            ours.verifier().verify(&forged),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let signer = signer();
        let (token, mut claims) = signer.issue(Uuid::now_v7(), Role::Player);
        claims.role = Role::Admin;
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
        assert_eq!(
            signer.verifier().verify(&tampered),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn an_expired_token_is_refused() {
        let signer = signer();
        let (_, mut claims) = signer.issue(Uuid::now_v7(), Role::Player);
        claims.exp = chrono::Utc::now().timestamp() - 60;
        assert_eq!(
            signer.verifier().verify(&signer.sign(&claims)),
            Err(AuthError::Expired)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let verifier = signer().verifier();
        for token in ["", "abc", "a.b", "a.b.c.d", "!!.??.##"] {
            assert_eq!(verifier.verify(token), Err(AuthError::Malformed), "{token}");
        }
    }

    #[test]
    fn a_seed_round_trips_through_base64() {
        let seed = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let a = JwtSigner::from_seed_base64(&seed, Duration::from_secs(60)).unwrap();
        let b = JwtSigner::from_seed_base64(&seed, Duration::from_secs(60)).unwrap();
        let (token, _) = a.issue(Uuid::now_v7(), Role::Staff);
        assert!(
            b.verifier().verify(&token).is_ok(),
            "same seed, same key id"
        );
        assert!(JwtSigner::from_seed_base64("short", Duration::from_secs(60)).is_err());
    }

    #[test]
    fn roles_nest_for_staff_but_players_stay_players() {
        assert!(Role::Admin.satisfies(Role::Staff));
        assert!(Role::Staff.satisfies(Role::Staff));
        assert!(!Role::Player.satisfies(Role::Staff));
        assert!(!Role::Staff.satisfies(Role::Admin));
        assert!(!Role::Admin.satisfies(Role::Player));
    }
}

//! What every handler shares.

use std::collections::HashMap;
use std::sync::Arc;

use casino_auth::{
    extract::{AuthState, TokenVerifier},
    jwt::JwtSigner,
};
use sqlx::PgPool;

use crate::{
    abuse::AbuseDetector,
    config::Settings,
    ledger::{Ledger, bets::BetBatcher, currencies::CurrencyBook},
    payments::{PaymentProvider, SandboxPsp, Urls},
    rates::RatesCache,
};

/// Shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

/// The contents of [`AppState`].
pub struct Inner {
    /// Database.
    pub pool: PgPool,
    /// Posting transfers.
    pub ledger: Ledger,
    /// The batched bet path.
    pub bets: BetBatcher,
    /// Supported currencies.
    pub currencies: CurrencyBook,
    /// Exchange rates.
    pub rates: RatesCache,
    /// Issues access tokens.
    pub signer: JwtSigner,
    /// Verifies access tokens.
    pub verifier: TokenVerifier,
    /// Abuse signals and policy.
    pub abuse: AbuseDetector,
    /// Settings.
    pub settings: Settings,
    /// Payment providers by name.
    pub providers: HashMap<String, Arc<dyn PaymentProvider>>,
    /// The sandbox PSP (served on the admin port).
    pub sandbox: SandboxPsp,
    /// Base URLs the providers use (known once bound).
    pub psp_urls: Urls,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AuthState for AppState {
    fn token_verifier(&self) -> &TokenVerifier {
        &self.verifier
    }
    fn auth_failure_metric(&self) -> &'static str {
        "vault_auth_failures_total"
    }
}

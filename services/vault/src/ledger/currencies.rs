//! Supported currencies, read from the `currencies` table and kept in memory (refreshed periodically).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use sqlx::PgPool;

use crate::domain::money::{
    AmountError, CurrencyCode, parse_non_negative_minor, parse_positive_minor,
};
use crate::error::VaultError;

/// One currency and its rules.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Currency {
    /// Code.
    pub code: String,
    /// Decimals.
    pub exponent: i16,
    /// Accepting new money movements.
    pub enabled: bool,
    /// Minor units.
    pub min_deposit: i64,
    /// Minor units.
    pub max_deposit: i64,
    /// Minor units.
    pub min_withdrawal: i64,
    /// Minor units.
    pub max_withdrawal: i64,
    /// Minor units per UTC day.
    pub daily_withdrawal_limit: i64,
    /// Withdrawals above wait for staff review.
    pub review_threshold: i64,
}

impl Currency {
    /// Decimals as `u32`.
    pub fn exp(&self) -> u32 {
        self.exponent.max(0) as u32
    }

    /// Parse a positive decimal amount of this currency into minor units, as a 400 on failure.
    pub fn parse_amount(&self, raw: &str) -> Result<i64, VaultError> {
        parse_positive_minor(raw, &self.code, self.exp()).map_err(amount_error)
    }

    /// Parse a decimal amount of this currency that may be zero (a win paying nothing, which closes a lost
    /// round) into minor units, as a 400 on failure (negative or malformed: `invalid_amount`).
    pub fn parse_win_amount(&self, raw: &str) -> Result<i64, VaultError> {
        parse_non_negative_minor(raw, &self.code, self.exp()).map_err(amount_error)
    }
}

/// An amount refusal as a Vault error.
pub fn amount_error(error: AmountError) -> VaultError {
    VaultError::bad_request(error.code(), error.to_string())
}

/// The in-memory currency table.
#[derive(Clone, Default)]
pub struct CurrencyBook {
    inner: Arc<RwLock<BTreeMap<String, Currency>>>,
}

impl std::fmt::Debug for CurrencyBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrencyBook").finish_non_exhaustive()
    }
}

impl CurrencyBook {
    /// Reload from the database.
    pub async fn load(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let rows: Vec<Currency> = sqlx::query_as("SELECT * FROM currencies ORDER BY code")
            .fetch_all(pool)
            .await?;
        if let Ok(mut inner) = self.inner.write() {
            *inner = rows.into_iter().map(|c| (c.code.clone(), c)).collect();
        }
        Ok(())
    }

    /// Every currency.
    pub fn all(&self) -> Vec<Currency> {
        self.inner
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// A supported currency (enabled or not).
    pub fn get(&self, code: &CurrencyCode) -> Result<Currency, VaultError> {
        self.inner
            .read()
            .ok()
            .and_then(|m| m.get(code.as_str()).cloned())
            .ok_or_else(|| {
                VaultError::bad_request("unsupported_currency", format!("{code} is not supported"))
            })
    }

    /// A supported and enabled currency.
    pub fn enabled(&self, code: &CurrencyCode) -> Result<Currency, VaultError> {
        let currency = self.get(code)?;
        if !currency.enabled {
            return Err(VaultError::unprocessable(
                "currency_disabled",
                format!("{code} is disabled"),
            ));
        }
        Ok(currency)
    }
}

//! Money: currency codes, amounts in minor units, decimal input, EUR conversion.

use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy, prelude::ToPrimitive as _};
use serde::{Deserialize, Deserializer, de};

/// An ISO-4217-style code: 3 to 5 upper-case ASCII letters (`EUR`, `BTC`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct CurrencyCode(String);

impl CurrencyCode {
    /// Parse, accepting lower case (`eur` → `EUR`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let code = raw.trim().to_ascii_uppercase();
        if (3..=5).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(code))
        } else {
            Err(format!("{raw:?} is not a currency code"))
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CurrencyCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        CurrencyCode::parse(&raw).map_err(de::Error::custom)
    }
}

/// A decimal amount as sent by a client: a JSON string (`"10.50"`) or number (`10.5`). Kept as text until
/// the currency's exponent is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecimalInput(pub String);

impl<'de> Deserialize<'de> for DecimalInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Self(s)),
            serde_json::Value::Number(n) => Ok(Self(n.to_string())),
            other => Err(de::Error::custom(format!(
                "expected an amount as a string or number, got {other}"
            ))),
        }
    }
}

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a decimal number.
    #[error("{0:?} is not a decimal amount")]
    Malformed(String),
    /// Zero or negative where a positive amount is needed.
    #[error("the amount must be greater than zero")]
    NotPositive,
    /// Negative where zero or more is allowed (a win).
    #[error("the amount must not be negative")]
    Negative,
    /// More decimals than the currency has.
    #[error("{currency} amounts have at most {exponent} decimals")]
    TooPrecise {
        /// Currency.
        currency: String,
        /// Its exponent.
        exponent: u32,
    },
    /// Does not fit in 64-bit minor units.
    #[error("the amount is too large")]
    TooLarge,
}

impl AmountError {
    /// The error code on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            AmountError::Malformed(_) => "invalid_amount",
            AmountError::NotPositive => "invalid_amount",
            AmountError::Negative => "invalid_amount",
            AmountError::TooPrecise { .. } => "amount_too_precise",
            AmountError::TooLarge => "amount_too_large",
        }
    }
}

/// Parse a signed decimal into minor units for a currency with `exponent` decimals.
pub fn parse_signed_minor(raw: &str, currency: &str, exponent: u32) -> Result<i64, AmountError> {
    let trimmed = raw.trim();
    // Plain decimal notation only: no exponents, no spaces, no "+".
    let valid_chars = trimmed
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || c == '.' || (i == 0 && c == '-'));
    if trimmed.is_empty() || !valid_chars || trimmed.len() > 40 {
        return Err(AmountError::Malformed(raw.to_owned()));
    }
    let value = Decimal::from_str(trimmed).map_err(|_| {
        if trimmed.replace(['-', '.'], "").len() > 28 {
            AmountError::TooLarge
        } else {
            AmountError::Malformed(raw.to_owned())
        }
    })?;
    let value = value.normalize();
    if value.scale() > exponent {
        return Err(AmountError::TooPrecise {
            currency: currency.to_owned(),
            exponent,
        });
    }
    let minor = value
        .checked_mul(Decimal::from(10i64.pow(exponent)))
        .ok_or(AmountError::TooLarge)?;
    minor.to_i64().ok_or(AmountError::TooLarge)
}

/// Parse a strictly positive decimal into minor units.
pub fn parse_positive_minor(raw: &str, currency: &str, exponent: u32) -> Result<i64, AmountError> {
    let minor = parse_signed_minor(raw, currency, exponent)?;
    if minor <= 0 {
        return Err(AmountError::NotPositive);
    }
    Ok(minor)
}

/// Parse a decimal that may be zero but not negative (a win that pays nothing) into minor units. A sign is
/// refused even on zero (`"-0"`): a provider sending one has a bug worth seeing.
pub fn parse_non_negative_minor(
    raw: &str,
    currency: &str,
    exponent: u32,
) -> Result<i64, AmountError> {
    let minor = parse_signed_minor(raw, currency, exponent)?;
    if minor < 0 || raw.trim_start().starts_with('-') {
        return Err(AmountError::Negative);
    }
    Ok(minor)
}

/// Minor units as a decimal string with exactly `exponent` decimals (`1234`, 2 → `"12.34"`).
pub fn format_minor(minor: i64, exponent: u32) -> String {
    Decimal::from_i128_with_scale(minor as i128, exponent).to_string()
}

/// EUR value of `minor` units of a currency with `exponent` decimals at `rate` (EUR per unit), to 8
/// decimals, rounded half-even.
pub fn to_eur(minor: i64, exponent: u32, rate: Decimal) -> Decimal {
    (Decimal::from_i128_with_scale(minor as i128, exponent) * rate)
        .round_dp_with_strategy(8, RoundingStrategy::MidpointNearestEven)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_amounts_become_minor_units() {
        assert_eq!(parse_positive_minor("10.50", "EUR", 2), Ok(1050));
        assert_eq!(parse_positive_minor("10.5", "EUR", 2), Ok(1050));
        assert_eq!(parse_positive_minor("7", "JPY", 0), Ok(7));
        assert_eq!(parse_positive_minor("0.00000001", "BTC", 8), Ok(1));
        assert_eq!(
            parse_positive_minor("10.500", "EUR", 2),
            Ok(1050),
            "trailing zeros are not precision"
        );
        assert_eq!(parse_signed_minor("-2.25", "EUR", 2), Ok(-225));
    }

    #[test]
    fn invalid_amounts_are_refused_with_their_reason() {
        assert_eq!(
            parse_positive_minor("0", "EUR", 2),
            Err(AmountError::NotPositive)
        );
        assert_eq!(
            parse_positive_minor("-1", "EUR", 2),
            Err(AmountError::NotPositive)
        );
        assert_eq!(
            parse_positive_minor("1.001", "EUR", 2),
            Err(AmountError::TooPrecise {
                currency: "EUR".into(),
                exponent: 2
            })
        );
        assert_eq!(
            parse_positive_minor("1.5", "JPY", 0),
            Err(AmountError::TooPrecise {
                currency: "JPY".into(),
                exponent: 0
            })
        );
        assert_eq!(
            parse_positive_minor("99999999999999999999", "EUR", 2),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            parse_positive_minor("92233720368547758.08", "EUR", 2),
            Err(AmountError::TooLarge)
        );
        for garbage in ["", "abc", "1e5", "1,5", "+1", " ", "1.2.3", "NaN", "--1"] {
            assert!(
                matches!(
                    parse_positive_minor(garbage, "EUR", 2),
                    Err(AmountError::Malformed(_))
                ),
                "{garbage}"
            );
        }
    }

    #[test]
    fn zero_is_a_valid_non_negative_amount_but_negatives_and_garbage_are_not() {
        assert_eq!(parse_non_negative_minor("0", "EUR", 2), Ok(0));
        assert_eq!(parse_non_negative_minor("0.00", "EUR", 2), Ok(0));
        assert_eq!(parse_non_negative_minor("0", "JPY", 0), Ok(0));
        assert_eq!(parse_non_negative_minor("1.50", "EUR", 2), Ok(150));
        for negative in ["-0.01", "-5", "-0", "-0.00"] {
            assert_eq!(
                parse_non_negative_minor(negative, "EUR", 2),
                Err(AmountError::Negative),
                "{negative}"
            );
        }
        assert_eq!(AmountError::Negative.code(), "invalid_amount");
        assert_eq!(
            parse_non_negative_minor("0.001", "EUR", 2),
            Err(AmountError::TooPrecise {
                currency: "EUR".into(),
                exponent: 2
            })
        );
        for garbage in ["", "abc", "1e5", "+0", "--0", "0,0", "NaN"] {
            assert!(
                matches!(
                    parse_non_negative_minor(garbage, "EUR", 2),
                    Err(AmountError::Malformed(_))
                ),
                "{garbage}"
            );
        }
    }

    #[test]
    fn minor_units_format_with_the_currency_exponent() {
        assert_eq!(format_minor(1234, 2), "12.34");
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(0, 2), "0.00");
        assert_eq!(format_minor(7, 0), "7");
        assert_eq!(format_minor(1, 8), "0.00000001");
    }

    #[test]
    fn eur_values_use_the_rate_and_keep_eight_decimals() {
        assert_eq!(to_eur(1050, 2, Decimal::ONE), Decimal::new(1050, 2));
        assert_eq!(to_eur(1000, 0, Decimal::new(62, 4)).to_string(), "6.2000");
        assert_eq!(to_eur(1, 8, Decimal::from(58000)).to_string(), "0.00058000");
    }

    #[test]
    fn currency_codes_are_normalised_and_checked() {
        assert_eq!(CurrencyCode::parse("eur").unwrap().as_str(), "EUR");
        assert!(CurrencyCode::parse("EURO12").is_err());
        assert!(CurrencyCode::parse("E1R").is_err());
    }
}

//! Money: currency codes, amounts in minor units, decimal input, EUR conversion.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, de};
use serde_json::value::RawValue;

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
///
/// A number is kept exactly as written in the body, never converted through a float (`serde_json` without
/// `arbitrary_precision` reads fractions and large numbers as `f64`, which would accept `1e3` as 1000 and
/// round away digits past about 17): it is then validated like the same text in a string, so what is booked
/// is exactly what was sent (and signed), or it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecimalInput(pub String);

impl<'de> Deserialize<'de> for DecimalInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        let text = raw.get();
        if text.starts_with('"') {
            serde_json::from_str::<String>(text)
                .map(Self)
                .map_err(de::Error::custom)
        } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            Ok(Self(text.to_owned()))
        } else {
            Err(de::Error::custom(format!(
                "expected an amount as a string or number, got {text}"
            )))
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
///
/// Plain decimal notation only (an optional leading `-`, digits, at most one `.`; no exponent, `+` or inner
/// spaces; at most 40 characters). The text itself is checked and converted digit by digit: decimals are
/// counted as written (trailing zeros are not precision), so nothing is ever rounded (`rust_decimal` keeps
/// only 28 decimals and would round `"0.0099999999999999999999999999999"` to 0.01). The magnitude must fit
/// in an `i64` of minor units, so `i64::MIN` (whose magnitude does not) is `TooLarge` like its positive
/// counterpart.
pub fn parse_signed_minor(raw: &str, currency: &str, exponent: u32) -> Result<i64, AmountError> {
    let trimmed = raw.trim();
    let malformed = || AmountError::Malformed(raw.to_owned());
    if trimmed.is_empty() || trimmed.len() > 40 {
        return Err(malformed());
    }
    let (negative, unsigned) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !all_digits(fraction) || (whole.is_empty() && fraction.is_empty()) {
        return Err(malformed());
    }
    let fraction = fraction.trim_end_matches('0');
    let padding = (exponent as usize)
        .checked_sub(fraction.len())
        .ok_or_else(|| AmountError::TooPrecise {
            currency: currency.to_owned(),
            exponent,
        })?;
    let digits = whole
        .bytes()
        .chain(fraction.bytes())
        .chain(std::iter::repeat_n(b'0', padding));
    let mut magnitude: i64 = 0;
    for digit in digits {
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(digit - b'0')))
            .ok_or(AmountError::TooLarge)?;
    }
    Ok(if negative { -magnitude } else { magnitude })
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
    fn digits_beyond_what_a_decimal_holds_are_counted_not_rounded_away() {
        let too_precise = Err(AmountError::TooPrecise {
            currency: "EUR".into(),
            exponent: 2,
        });
        // More than 28 decimals: `Decimal::from_str` would round these to 0.01, 1.00 and 0.
        assert_eq!(
            parse_positive_minor("0.0099999999999999999999999999999", "EUR", 2),
            too_precise
        );
        assert_eq!(
            parse_positive_minor("1.00000000000000000000000000001", "EUR", 2),
            too_precise
        );
        assert_eq!(
            parse_positive_minor("0.00000000000000000000000000001", "EUR", 2),
            too_precise
        );
        assert_eq!(
            parse_positive_minor("20.00999999999999999999999999999", "EUR", 2),
            too_precise
        );
        // Zeros are still not precision, however many, and leading zeros are harmless.
        assert_eq!(
            parse_positive_minor("1.000000000000000000000000000000", "EUR", 2),
            Ok(100)
        );
        assert_eq!(parse_positive_minor("0007.50", "EUR", 2), Ok(750));
        assert_eq!(parse_positive_minor(".5", "EUR", 2), Ok(50));
        assert_eq!(parse_positive_minor("5.", "EUR", 2), Ok(500));
        for garbage in [".", "-", "-.", "1.2.3", "1-", "-.-1"] {
            assert!(
                matches!(
                    parse_signed_minor(garbage, "EUR", 2),
                    Err(AmountError::Malformed(_))
                ),
                "{garbage}"
            );
        }
        // The whole range, exactly.
        assert_eq!(
            parse_signed_minor("92233720368547758.07", "EUR", 2),
            Ok(i64::MAX)
        );
        assert_eq!(
            parse_signed_minor("12345678901234567.89", "EUR", 2),
            Ok(1_234_567_890_123_456_789)
        );
        assert_eq!(
            parse_positive_minor("92233720368.54775807", "BTC", 8),
            Ok(i64::MAX)
        );
        assert_eq!(
            parse_positive_minor("92233720368.54775808", "BTC", 8),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            parse_positive_minor("00000000000000000000000000000000001", "JPY", 0),
            Ok(1)
        );
        assert_eq!(
            parse_positive_minor("1000000000000000000000000000000000000", "JPY", 0),
            Err(AmountError::TooLarge)
        );
    }

    #[test]
    fn a_signed_amount_whose_magnitude_does_not_fit_is_too_large() {
        // i64::MIN minor units: its magnitude has no i64, so it cannot be booked as a debit of that size.
        assert_eq!(
            parse_signed_minor("-92233720368547758.08", "EUR", 2),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            parse_signed_minor("-9223372036854775808", "JPY", 0),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            parse_signed_minor("-92233720368547758.07", "EUR", 2),
            Ok(-i64::MAX)
        );
        assert_eq!(
            parse_signed_minor("-9223372036854775807", "JPY", 0),
            Ok(-i64::MAX)
        );
        assert_eq!(
            parse_signed_minor("-9223372036854775809", "JPY", 0),
            Err(AmountError::TooLarge)
        );
        assert_eq!(AmountError::TooLarge.code(), "amount_too_large");
    }

    #[derive(Debug, Deserialize)]
    struct Body {
        amount: DecimalInput,
    }

    /// The amount of `{"amount": <json>}` as read by `serde_json` (directly, and through
    /// `serde_path_to_error` as axum's `Json` and `error::parse_json` do).
    fn json_amount(json: &str) -> Result<String, String> {
        let body = format!(r#"{{"amount": {json} }}"#);
        let direct = serde_json::from_str::<Body>(&body).map(|b| b.amount.0);
        let mut de = serde_json::Deserializer::from_str(&body);
        let tracked = serde_path_to_error::deserialize::<_, Body>(&mut de).map(|b| b.amount.0);
        assert_eq!(
            direct.as_ref().map_err(ToString::to_string),
            tracked.as_ref().map_err(|e| e.inner().to_string()),
            "{json}"
        );
        direct.map_err(|e| e.to_string())
    }

    #[test]
    fn a_json_number_is_read_as_the_text_sent_not_through_a_float() {
        assert_eq!(json_amount("10").as_deref(), Ok("10"));
        assert_eq!(json_amount("10.5").as_deref(), Ok("10.5"));
        assert_eq!(json_amount("-5").as_deref(), Ok("-5"));
        assert_eq!(json_amount(r#""10.50""#).as_deref(), Ok("10.50"));
        assert_eq!(json_amount(r#""\u0031\u0030""#).as_deref(), Ok("10"));
        assert_eq!(
            parse_positive_minor(&json_amount("10").unwrap(), "EUR", 2),
            Ok(1000)
        );
        assert_eq!(
            parse_positive_minor(&json_amount("10.5").unwrap(), "EUR", 2),
            Ok(1050)
        );
        assert_eq!(
            parse_positive_minor(&json_amount("10.50").unwrap(), "EUR", 2),
            Ok(1050)
        );
        // An exponent is refused as a number just as it is as a string (a float would make it 1000).
        for exponent in ["1e3", "1E3", "1.5e2", "1e-2"] {
            assert!(
                matches!(
                    parse_positive_minor(&json_amount(exponent).unwrap(), "EUR", 2),
                    Err(AmountError::Malformed(_))
                ),
                "{exponent}"
            );
        }
        // Digits a float cannot hold are not rounded away (an f64 reads both as 10.0).
        assert_eq!(
            parse_positive_minor(&json_amount("10.000000000000000001").unwrap(), "EUR", 2),
            Err(AmountError::TooPrecise {
                currency: "EUR".into(),
                exponent: 2
            })
        );
        assert_eq!(
            parse_positive_minor(&json_amount("12345678901234567.89").unwrap(), "EUR", 2),
            Ok(1_234_567_890_123_456_789),
            "more significant digits than an f64 has, booked exactly"
        );
        // "-0" as a number is as negative as the string.
        assert_eq!(
            parse_non_negative_minor(&json_amount("-0").unwrap(), "EUR", 2),
            Err(AmountError::Negative)
        );
        for other in ["null", "true", "[1]", r#"{"v": 1}"#] {
            let error = json_amount(other).unwrap_err();
            assert!(
                error.contains("expected an amount as a string or number"),
                "{other}: {error}"
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

//! EUR amounts.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, Serializer};

/// A non-negative amount in EUR (the reporting currency), exact to whatever precision Vault sent.
/// On the wire it is a decimal string with at least two decimals (`"12.50"`), like every EUR value of the
/// platform; it is read from a string or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Deserialize)]
#[serde(try_from = "Decimal")]
pub struct EurAmount(Decimal);

/// Why a value is not an [`EurAmount`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("negative amount_eur {0}")]
pub struct NegativeAmount(pub Decimal);

impl EurAmount {
    /// Zero.
    pub const ZERO: EurAmount = EurAmount(Decimal::ZERO);

    /// The value.
    pub fn get(self) -> Decimal {
        self.0
    }

    /// `self + other`.
    pub fn plus(self, other: EurAmount) -> EurAmount {
        EurAmount(self.0 + other.0)
    }

    /// `self - other`, never below zero (a rollback cannot take back more than its bet added).
    pub fn minus(self, other: EurAmount) -> EurAmount {
        EurAmount((self.0 - other.0).max(Decimal::ZERO))
    }
}

impl TryFrom<Decimal> for EurAmount {
    type Error = NegativeAmount;
    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        if value.is_sign_negative() && !value.is_zero() {
            Err(NegativeAmount(value))
        } else {
            Ok(EurAmount(value.normalize()))
        }
    }
}

impl From<EurAmount> for Decimal {
    fn from(value: EurAmount) -> Self {
        value.0
    }
}

impl Serialize for EurAmount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::fmt::Display for EurAmount {
    /// At least two decimals (`12.50`, `1000.00`, `0.00012345`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut value = self.0;
        if value.scale() < 2 {
            value.rescale(2);
        }
        value.fmt(f)
    }
}

impl std::str::FromStr for EurAmount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value: Decimal = s
            .trim()
            .parse()
            .map_err(|_| format!("not a decimal amount: {s:?}"))?;
        EurAmount::try_from(value).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_amounts_are_refused_and_zero_is_fine() {
        assert!(EurAmount::try_from(Decimal::new(-1, 2)).is_err());
        assert_eq!(EurAmount::try_from(Decimal::ZERO).unwrap(), EurAmount::ZERO);
        assert_eq!("12.5".parse::<EurAmount>().unwrap().to_string(), "12.50");
        assert_eq!("1000".parse::<EurAmount>().unwrap().to_string(), "1000.00");
        assert_eq!("0.001".parse::<EurAmount>().unwrap().to_string(), "0.001");
        assert!("-3".parse::<EurAmount>().is_err());
        assert!("lots".parse::<EurAmount>().is_err());
    }

    #[test]
    fn subtraction_never_goes_below_zero() {
        let five: EurAmount = "5".parse().unwrap();
        let seven: EurAmount = "7".parse().unwrap();
        assert_eq!(five.minus(seven), EurAmount::ZERO);
        assert_eq!(seven.minus(five).to_string(), "2.00");
    }
}

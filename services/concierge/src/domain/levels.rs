//! Tiers (levels): ordered by a lifetime-wagering threshold in EUR, each with a VIP-points multiplier.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::money::EurAmount;

/// Most tiers a table may have (it also bounds the `level` metric label).
pub const MAX_TIERS: usize = 50;
/// Longest tier name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// One tier of a valid table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tier {
    /// Level number: 0 for the first tier, then 1, 2, ...
    pub level: u32,
    /// Display name (`Gold`).
    pub name: String,
    /// Lifetime wagering from which a player is at this level.
    pub threshold_eur: EurAmount,
    /// VIP-points multiplier of bets placed at this level.
    pub multiplier: Decimal,
}

/// A tier as staff submit it (`PUT /api/v1/admin/levels`), before validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    /// Display name.
    pub name: String,
    /// Lifetime-wagering threshold in EUR (a decimal string or number).
    pub threshold_eur: Decimal,
    /// VIP-points multiplier (a decimal string or number).
    pub multiplier: Decimal,
}

/// Why a level table is refused. The text is the API's error message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelTableError {
    /// No tiers at all.
    #[error("the level table is empty: it needs at least a first tier at 0 EUR")]
    Empty,
    /// More than [`MAX_TIERS`].
    #[error("the level table has {0} tiers; at most {MAX_TIERS} are allowed")]
    TooMany(usize),
    /// The first tier does not start at 0 EUR.
    #[error("the first tier ({name}) must start at 0 EUR, not {threshold}")]
    NoZeroTier {
        /// Its name.
        name: String,
        /// Its threshold.
        threshold: Decimal,
    },
    /// A threshold is not above the previous one.
    #[error(
        "thresholds must be strictly increasing: tier {index} ({name}) at {threshold} EUR is not above the previous tier at {previous} EUR"
    )]
    NotIncreasing {
        /// Position in the table (0-based).
        index: usize,
        /// Its name.
        name: String,
        /// Its threshold.
        threshold: Decimal,
        /// The previous tier's threshold.
        previous: Decimal,
    },
    /// A multiplier below zero.
    #[error("tier {index} ({name}) has a negative multiplier {multiplier}")]
    NegativeMultiplier {
        /// Position in the table (0-based).
        index: usize,
        /// Its name.
        name: String,
        /// The multiplier.
        multiplier: Decimal,
    },
    /// An empty or overlong name.
    #[error("tier {index} needs a name of 1 to {MAX_NAME_CHARS} characters")]
    BadName {
        /// Position in the table (0-based).
        index: usize,
    },
    /// Two tiers with the same name.
    #[error("tier name {0:?} is used twice")]
    DuplicateName(String),
}

/// A valid tier table: at least one tier, the first at 0 EUR, thresholds strictly increasing,
/// multipliers not negative, names unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelTable {
    tiers: Vec<Tier>,
}

/// Where a player stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress<'a> {
    /// The current tier.
    pub current: &'a Tier,
    /// The next tier, EUR still needed and percent of the way there (`None` at the top).
    pub next: Option<NextLevel<'a>>,
}

/// The way to the next tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextLevel<'a> {
    /// The next tier.
    pub tier: &'a Tier,
    /// Wagering still needed.
    pub remaining_eur: EurAmount,
    /// Share of the way from the current threshold to the next, in percent, rounded down to 2 decimals.
    pub progress_percent: Decimal,
}

impl LevelTable {
    /// Validate `specs` (in order: level 0 first).
    pub fn new(specs: Vec<TierSpec>) -> Result<Self, LevelTableError> {
        if specs.is_empty() {
            return Err(LevelTableError::Empty);
        }
        if specs.len() > MAX_TIERS {
            return Err(LevelTableError::TooMany(specs.len()));
        }
        let mut tiers: Vec<Tier> = Vec::with_capacity(specs.len());
        for (index, spec) in specs.into_iter().enumerate() {
            let name = spec.name.trim().to_owned();
            if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
                return Err(LevelTableError::BadName { index });
            }
            if tiers.iter().any(|t| t.name.eq_ignore_ascii_case(&name)) {
                return Err(LevelTableError::DuplicateName(name));
            }
            match tiers.last() {
                None if !spec.threshold_eur.is_zero() => {
                    return Err(LevelTableError::NoZeroTier {
                        name,
                        threshold: spec.threshold_eur,
                    });
                }
                Some(previous) if spec.threshold_eur <= previous.threshold_eur.get() => {
                    return Err(LevelTableError::NotIncreasing {
                        index,
                        name,
                        threshold: spec.threshold_eur,
                        previous: previous.threshold_eur.get(),
                    });
                }
                _ => {}
            }
            if spec.multiplier.is_sign_negative() && !spec.multiplier.is_zero() {
                return Err(LevelTableError::NegativeMultiplier {
                    index,
                    name,
                    multiplier: spec.multiplier,
                });
            }
            let threshold_eur = EurAmount::try_from(spec.threshold_eur).map_err(|_| {
                LevelTableError::NoZeroTier {
                    name: name.clone(),
                    threshold: spec.threshold_eur,
                }
            })?;
            tiers.push(Tier {
                level: index as u32,
                name,
                threshold_eur,
                multiplier: spec.multiplier.normalize(),
            });
        }
        Ok(Self { tiers })
    }

    /// The tiers, level 0 first.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// Tier number `level`.
    pub fn tier(&self, level: u32) -> Option<&Tier> {
        self.tiers.get(level as usize)
    }

    /// The tier of a player with `lifetime` wagering: the highest whose threshold it reaches.
    pub fn level_for(&self, lifetime: EurAmount) -> &Tier {
        let reached = self
            .tiers
            .partition_point(|tier| tier.threshold_eur <= lifetime);
        // The first tier is at 0, so at least one tier is always reached.
        &self.tiers[reached.saturating_sub(1)]
    }

    /// Current tier, next tier, EUR needed and progress for `lifetime` wagering.
    pub fn progress(&self, lifetime: EurAmount) -> Progress<'_> {
        let current = self.level_for(lifetime);
        let next = self.tier(current.level + 1).map(|tier| {
            let span = tier.threshold_eur.get() - current.threshold_eur.get();
            let done = lifetime.get() - current.threshold_eur.get();
            let percent = (done * Decimal::ONE_HUNDRED / span)
                .round_dp_with_strategy(2, RoundingStrategy::ToZero)
                .min(Decimal::ONE_HUNDRED);
            NextLevel {
                tier,
                remaining_eur: tier.threshold_eur.minus(lifetime),
                progress_percent: percent,
            }
        });
        Progress { current, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, threshold: &str, multiplier: &str) -> TierSpec {
        TierSpec {
            name: name.into(),
            threshold_eur: threshold.parse().unwrap(),
            multiplier: multiplier.parse().unwrap(),
        }
    }

    pub(crate) fn defaults() -> LevelTable {
        LevelTable::new(vec![
            spec("Bronze", "0", "1.0"),
            spec("Silver", "1000", "1.1"),
            spec("Gold", "10000", "1.25"),
            spec("Platinum", "50000", "1.5"),
            spec("Diamond", "250000", "2.0"),
        ])
        .unwrap()
    }

    fn eur(s: &str) -> EurAmount {
        s.parse().unwrap()
    }

    #[test]
    fn a_player_is_at_the_highest_tier_whose_threshold_they_reach() {
        let table = defaults();
        assert_eq!(table.level_for(eur("0")).name, "Bronze");
        assert_eq!(table.level_for(eur("999.99")).name, "Bronze");
        assert_eq!(table.level_for(eur("1000")).name, "Silver");
        assert_eq!(table.level_for(eur("49999.99")).name, "Gold");
        assert_eq!(table.level_for(eur("250000")).level, 4);
        assert_eq!(table.level_for(eur("9999999")).name, "Diamond");
    }

    #[test]
    fn progress_names_the_next_tier_the_eur_needed_and_the_percentage() {
        let table = defaults();
        let progress = table.progress(eur("5500"));
        assert_eq!(progress.current.name, "Silver");
        let next = progress.next.unwrap();
        assert_eq!(next.tier.name, "Gold");
        assert_eq!(next.remaining_eur, eur("4500"));
        assert_eq!(next.progress_percent, Decimal::from(50));
        // Rounded down: never 100% before the threshold.
        let almost = table.progress(eur("999.999")).next.unwrap();
        assert_eq!(almost.progress_percent.to_string(), "99.99");
        assert!(table.progress(eur("300000")).next.is_none());
    }

    #[test]
    fn invalid_tables_are_refused_with_a_clear_reason() {
        assert_eq!(LevelTable::new(vec![]), Err(LevelTableError::Empty));
        let no_zero = LevelTable::new(vec![spec("Bronze", "10", "1")]).unwrap_err();
        assert_eq!(
            no_zero.to_string(),
            "the first tier (Bronze) must start at 0 EUR, not 10"
        );
        let not_increasing = LevelTable::new(vec![
            spec("Bronze", "0", "1"),
            spec("Silver", "1000", "1.1"),
            spec("Gold", "1000", "1.2"),
        ])
        .unwrap_err();
        assert_eq!(
            not_increasing.to_string(),
            "thresholds must be strictly increasing: tier 2 (Gold) at 1000 EUR is not above the previous tier at 1000 EUR"
        );
        let negative = LevelTable::new(vec![spec("Bronze", "0", "-0.5")]).unwrap_err();
        assert!(matches!(
            negative,
            LevelTableError::NegativeMultiplier { index: 0, .. }
        ));
        let negative_threshold = LevelTable::new(vec![spec("Bronze", "-5", "1")]).unwrap_err();
        assert!(matches!(
            negative_threshold,
            LevelTableError::NoZeroTier { .. }
        ));
        let nameless = LevelTable::new(vec![spec("  ", "0", "1")]).unwrap_err();
        assert_eq!(nameless, LevelTableError::BadName { index: 0 });
        let twice = LevelTable::new(vec![spec("Gold", "0", "1"), spec("gold", "5", "1")]);
        assert!(matches!(twice, Err(LevelTableError::DuplicateName(_))));
        let many = (0..=MAX_TIERS)
            .map(|i| spec(&format!("L{i}"), &i.to_string(), "1"))
            .collect();
        assert!(matches!(
            LevelTable::new(many),
            Err(LevelTableError::TooMany(_))
        ));
    }

    #[test]
    fn a_zero_multiplier_is_allowed() {
        let table = LevelTable::new(vec![spec("Frozen", "0", "0")]).unwrap();
        assert!(table.tiers()[0].multiplier.is_zero());
    }
}

//! A versioned rule set and the award of one bet.
//!
//! Per bet: VIP points = `floor(amount_eur x rate(game category) x multiplier(level before the bet))`,
//! leaderboard points = `floor(amount_eur)` (1 point per EUR, rounded down like VIP points), and the
//! player's lifetime wagering grows by `amount_eur`, which may move them up one or more levels.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive as _;
use serde::Serialize;

use super::{levels::LevelTable, money::EurAmount};

/// Levels and VIP rates of one version. Immutable: a change is a new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    /// Version number (1 = the defaults seeded by the migration).
    pub version: i32,
    /// The tier table.
    pub levels: LevelTable,
    /// VIP points per EUR for each game category (lowercase).
    pub rates: BTreeMap<String, Decimal>,
    /// VIP points per EUR for a category without a rate of its own (or none at all).
    pub default_rate: Decimal,
}

/// The inputs of one bet's award (all stored with the award).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BetInput<'a> {
    /// The stake in EUR.
    pub amount_eur: EurAmount,
    /// Game category as Vault sent it.
    pub game_category: Option<&'a str>,
    /// The player's lifetime wagering before this bet.
    pub lifetime_before: EurAmount,
}

/// What one bet earns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Award {
    /// Rule version used.
    pub rule_version: i32,
    /// VIP rate applied.
    pub rate: Decimal,
    /// Whether the category had a rate of its own (otherwise the default rate applied).
    pub category_known: bool,
    /// Level before the bet (its multiplier applies).
    pub level_before: u32,
    /// Multiplier applied.
    pub multiplier: Decimal,
    /// VIP points earned.
    pub vip_points: i64,
    /// Leaderboard points earned.
    pub leaderboard_points: i64,
    /// Lifetime wagering after the bet.
    pub lifetime_after: EurAmount,
    /// Level after the bet.
    pub level_after: u32,
}

/// A bet whose award does not fit in the numbers we store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("amount_eur {0} is too large to award")]
pub struct AwardOverflow(pub Decimal);

impl RuleSet {
    /// The VIP rate of `category` and whether it is a known category.
    pub fn rate_for(&self, category: Option<&str>) -> (Decimal, bool) {
        match category
            .map(|c| c.trim().to_ascii_lowercase())
            .and_then(|c| self.rates.get(&c))
        {
            Some(rate) => (*rate, true),
            None => (self.default_rate, false),
        }
    }

    /// The award of `bet` under these rules.
    pub fn award(&self, bet: &BetInput<'_>) -> Result<Award, AwardOverflow> {
        let overflow = || AwardOverflow(bet.amount_eur.get());
        let (rate, category_known) = self.rate_for(bet.game_category);
        let before = self.levels.level_for(bet.lifetime_before);
        let vip_points = bet
            .amount_eur
            .get()
            .checked_mul(rate)
            .and_then(|v| v.checked_mul(before.multiplier))
            .and_then(|v| v.floor().to_i64())
            .ok_or_else(overflow)?;
        let leaderboard_points = bet.amount_eur.get().floor().to_i64().ok_or_else(overflow)?;
        let lifetime_after = EurAmount::try_from(
            bet.lifetime_before
                .get()
                .checked_add(bet.amount_eur.get())
                .ok_or_else(overflow)?,
        )
        .map_err(|_| overflow())?;
        Ok(Award {
            rule_version: self.version,
            rate,
            category_known,
            level_before: before.level,
            multiplier: before.multiplier,
            vip_points,
            leaderboard_points,
            lifetime_after,
            level_after: self.levels.level_for(lifetime_after).level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::levels::TierSpec;

    pub(crate) fn defaults() -> RuleSet {
        let tier = |name: &str, threshold: i64, multiplier: &str| TierSpec {
            name: name.into(),
            threshold_eur: Decimal::from(threshold),
            multiplier: multiplier.parse().unwrap(),
        };
        RuleSet {
            version: 1,
            levels: LevelTable::new(vec![
                tier("Bronze", 0, "1.0"),
                tier("Silver", 1000, "1.1"),
                tier("Gold", 10000, "1.25"),
                tier("Platinum", 50000, "1.5"),
                tier("Diamond", 250000, "2.0"),
            ])
            .unwrap(),
            rates: [("slots", "1"), ("table", "0.2"), ("live", "0.1")]
                .into_iter()
                .map(|(c, r)| (c.to_owned(), r.parse().unwrap()))
                .collect(),
            default_rate: "0.1".parse().unwrap(),
        }
    }

    fn bet<'a>(amount: &str, category: Option<&'a str>, lifetime: &str) -> BetInput<'a> {
        BetInput {
            amount_eur: amount.parse().unwrap(),
            game_category: category,
            lifetime_before: lifetime.parse().unwrap(),
        }
    }

    #[test]
    fn vip_points_are_the_floor_of_amount_times_rate_times_the_current_multiplier() {
        let rules = defaults();
        let award = rules.award(&bet("10.99", Some("slots"), "0")).unwrap();
        assert_eq!(award.vip_points, 10);
        assert_eq!(award.leaderboard_points, 10);
        // Gold (1.25) on a table game (0.2): 100 x 0.2 x 1.25 = 25.
        let award = rules.award(&bet("100", Some("table"), "12000")).unwrap();
        assert_eq!((award.vip_points, award.level_before), (25, 2));
        // Live at Bronze: 9.99 x 0.1 = 0.999 -> 0.
        assert_eq!(
            rules
                .award(&bet("9.99", Some("live"), "0"))
                .unwrap()
                .vip_points,
            0
        );
    }

    #[test]
    fn the_multiplier_is_the_level_before_the_bet_even_when_the_bet_levels_up() {
        let rules = defaults();
        let award = rules.award(&bet("1000", Some("slots"), "999")).unwrap();
        assert_eq!(award.multiplier, Decimal::ONE);
        assert_eq!(award.vip_points, 1000);
        assert_eq!((award.level_before, award.level_after), (0, 1));
        // One bet can cross two thresholds.
        let jump = rules.award(&bet("20000", Some("slots"), "500")).unwrap();
        assert_eq!((jump.level_before, jump.level_after), (0, 2));
        assert_eq!(jump.lifetime_after.to_string(), "20500.00");
    }

    #[test]
    fn unknown_or_missing_categories_get_the_default_rate() {
        let rules = defaults();
        let crash = rules.award(&bet("100", Some("crash"), "0")).unwrap();
        assert_eq!(
            (crash.rate, crash.category_known),
            ("0.1".parse().unwrap(), false)
        );
        assert_eq!(crash.vip_points, 10);
        let none = rules.award(&bet("100", None, "0")).unwrap();
        assert!(!none.category_known);
        // Case and whitespace do not make a known category unknown.
        assert!(
            rules
                .award(&bet("1", Some(" Slots "), "0"))
                .unwrap()
                .category_known
        );
    }

    #[test]
    fn awards_are_deterministic() {
        let rules = defaults();
        let input = bet("123.456", Some("slots"), "9876.5");
        assert_eq!(rules.award(&input), rules.award(&input));
    }

    #[test]
    fn absurd_amounts_are_refused_instead_of_overflowing() {
        let rules = defaults();
        let input = BetInput {
            amount_eur: EurAmount::try_from(Decimal::MAX).unwrap(),
            game_category: Some("slots"),
            lifetime_before: "1000".parse().unwrap(),
        };
        assert!(rules.award(&input).is_err());
    }
}

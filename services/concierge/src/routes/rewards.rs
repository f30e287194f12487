//! `GET /api/v1/rewards/me` and `GET /api/v1/levels`.

use axum::{Json, extract::State};
use casino_auth::extract::Player;
use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, prelude::ToPrimitive as _};
use serde::Serialize;
use sqlx::Row as _;
use uuid::Uuid;

use super::ApiState;
use crate::domain::{board::Board, levels::Tier, money::EurAmount, rules::RuleSet};
use crate::error::ApiError;

/// A player's rewards.
#[derive(Debug, Clone, Serialize)]
pub struct RewardsView {
    /// The player.
    pub player_id: Uuid,
    /// Level number (0 = first tier).
    pub level: u32,
    /// Level name.
    pub name: String,
    /// VIP points.
    pub vip_points: i64,
    /// Lifetime wagering, net of rollbacks.
    pub lifetime_wagered_eur: EurAmount,
    /// Wagering in the current UTC day, ISO week and month.
    pub wagered_eur: PeriodWagering,
    /// The next tier (`null` at the top).
    pub next_level: Option<NextLevelView>,
    /// Rule version the level table comes from.
    pub rule_version: i32,
}

/// Wagering per current period.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PeriodWagering {
    /// Today (UTC).
    pub daily: EurAmount,
    /// This ISO week.
    pub weekly: EurAmount,
    /// This month.
    pub monthly: EurAmount,
}

/// The way to the next tier.
#[derive(Debug, Clone, Serialize)]
pub struct NextLevelView {
    /// Its level number.
    pub level: u32,
    /// Its name.
    pub name: String,
    /// Its threshold.
    pub threshold_eur: EurAmount,
    /// EUR still to wager.
    pub remaining_eur: EurAmount,
    /// Percent of the way from the current tier's threshold, rounded down to 2 decimals.
    pub progress_percent: f64,
}

/// One tier on the wire.
#[derive(Debug, Clone, Serialize)]
pub struct TierView {
    /// Level number.
    pub level: u32,
    /// Name.
    pub name: String,
    /// Lifetime-wagering threshold.
    pub threshold_eur: EurAmount,
    /// VIP-points multiplier.
    pub multiplier: Decimal,
}

impl From<&Tier> for TierView {
    fn from(tier: &Tier) -> Self {
        Self {
            level: tier.level,
            name: tier.name.clone(),
            threshold_eur: tier.threshold_eur,
            multiplier: tier.multiplier,
        }
    }
}

/// The rules in force.
#[derive(Debug, Clone, Serialize)]
pub struct LevelsView {
    /// Rule version.
    pub version: i32,
    /// Tiers, level 0 first.
    pub levels: Vec<TierView>,
    /// VIP points per EUR by game category.
    pub rates: std::collections::BTreeMap<String, Decimal>,
    /// VIP points per EUR for other categories.
    pub default_rate: Decimal,
}

impl From<&RuleSet> for LevelsView {
    fn from(rules: &RuleSet) -> Self {
        Self {
            version: rules.version,
            levels: rules.levels.tiers().iter().map(TierView::from).collect(),
            rates: rules.rates.clone(),
            default_rate: rules.default_rate,
        }
    }
}

/// `GET /api/v1/rewards/me`.
pub async fn me(
    State(state): State<ApiState>,
    Player(claims): Player,
) -> Result<Json<RewardsView>, ApiError> {
    if let Some((view, _)) = rewards_of(&state, claims.sub, Utc::now()).await? {
        return Ok(Json(view));
    }
    // A valid token means Vault knows the player; Concierge has not seen them bet yet.
    let rules = state.rules().current(state.pool()).await?;
    Ok(Json(view_of(
        &rules,
        claims.sub,
        0,
        EurAmount::ZERO,
        PeriodWagering::default(),
    )))
}

/// `GET /api/v1/levels`: the tier table and VIP rates in force (no token needed).
pub async fn levels(State(state): State<ApiState>) -> Result<Json<LevelsView>, ApiError> {
    let rules = state.rules().current(state.pool()).await?;
    Ok(Json(LevelsView::from(rules.as_ref())))
}

/// Extra facts staff see besides [`RewardsView`].
#[derive(Debug, Clone)]
pub struct PlayerFacts {
    /// Bets counted.
    pub bets: i64,
    /// Lifetime winnings.
    pub lifetime_won_eur: EurAmount,
    /// Currency.
    pub currency: Option<String>,
    /// Registration time.
    pub registered_at: Option<DateTime<Utc>>,
    /// Locked by Vault.
    pub locked: bool,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The rewards of `player` as of `now`, or `None` if Concierge has never seen them.
pub async fn rewards_of(
    state: &ApiState,
    player: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<(RewardsView, PlayerFacts)>, ApiError> {
    let Some(row) = sqlx::query(
        "SELECT vip_points, lifetime_wagered_eur, lifetime_won_eur, bets, currency, registered_at,
                locked, updated_at
           FROM players WHERE player_id = $1",
    )
    .bind(player)
    .fetch_optional(state.pool())
    .await?
    else {
        return Ok(None);
    };
    let eur = |value: Decimal| {
        EurAmount::try_from(value).map_err(|e| ApiError::Internal(anyhow::anyhow!("stored {e}")))
    };
    let lifetime = eur(row.try_get("lifetime_wagered_eur")?)?;
    let facts = PlayerFacts {
        bets: row.try_get("bets")?,
        lifetime_won_eur: eur(row.try_get("lifetime_won_eur")?)?,
        currency: row.try_get("currency")?,
        registered_at: row.try_get("registered_at")?,
        locked: row.try_get("locked")?,
        updated_at: row.try_get("updated_at")?,
    };
    let vip_points: i64 = row.try_get("vip_points")?;
    let mut wagering = PeriodWagering::default();
    let periods = sqlx::query(
        "SELECT board, wagered_eur FROM period_totals
          WHERE player_id = $1
            AND ((board = 'daily' AND period_start = $2) OR (board = 'weekly' AND period_start = $3)
                 OR (board = 'monthly' AND period_start = $4))",
    )
    .bind(player)
    .bind(Board::Daily.period_start(now))
    .bind(Board::Weekly.period_start(now))
    .bind(Board::Monthly.period_start(now))
    .fetch_all(state.pool())
    .await?;
    for row in periods {
        let amount = eur(row.try_get("wagered_eur")?)?;
        match row.try_get::<String, _>("board")?.as_str() {
            "daily" => wagering.daily = amount,
            "weekly" => wagering.weekly = amount,
            _ => wagering.monthly = amount,
        }
    }
    let rules = state.rules().current(state.pool()).await?;
    Ok(Some((
        view_of(&rules, player, vip_points, lifetime, wagering),
        facts,
    )))
}

fn view_of(
    rules: &RuleSet,
    player: Uuid,
    vip_points: i64,
    lifetime: EurAmount,
    wagered_eur: PeriodWagering,
) -> RewardsView {
    let progress = rules.levels.progress(lifetime);
    RewardsView {
        player_id: player,
        level: progress.current.level,
        name: progress.current.name.clone(),
        vip_points,
        lifetime_wagered_eur: lifetime,
        wagered_eur,
        next_level: progress.next.map(|next| NextLevelView {
            level: next.tier.level,
            name: next.tier.name.clone(),
            threshold_eur: next.tier.threshold_eur,
            remaining_eur: next.remaining_eur,
            progress_percent: next.progress_percent.to_f64().unwrap_or_default(),
        }),
        rule_version: rules.version,
    }
}

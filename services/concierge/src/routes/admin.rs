//! Staff endpoints: `GET /api/v1/admin/players/{id}/rewards` and `PUT /api/v1/admin/levels`.

use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
};
use casino_auth::extract::Staff;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use uuid::Uuid;

use super::{
    ApiState,
    rewards::{LevelsView, RewardsView, rewards_of},
};
use crate::db;
use crate::domain::levels::{LevelTable, TierSpec};
use crate::error::ApiError;

/// Awards listed in the staff view.
const RECENT_AWARDS: i64 = 20;

/// A player's rewards as staff see them.
#[derive(Debug, Clone, Serialize)]
pub struct PlayerRewardsView {
    /// What the player sees.
    #[serde(flatten)]
    pub rewards: RewardsView,
    /// Bets counted (net of rollbacks).
    pub bets: i64,
    /// Lifetime winnings.
    pub lifetime_won_eur: crate::domain::money::EurAmount,
    /// Preferred currency.
    pub currency: Option<String>,
    /// Registration time (from `player.registered`).
    pub registered_at: Option<DateTime<Utc>>,
    /// Locked by Vault.
    pub locked: bool,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Latest awards with their inputs, newest first.
    pub recent_awards: Vec<AwardView>,
}

/// One award with its inputs.
#[derive(Debug, Clone, Serialize)]
pub struct AwardView {
    /// The bet's transfer id.
    pub transfer_id: Uuid,
    /// The bet event.
    pub event_id: Uuid,
    /// Bet time.
    pub occurred_at: DateTime<Utc>,
    /// Stake in EUR.
    pub amount_eur: Decimal,
    /// Game category.
    pub game_category: Option<String>,
    /// Rule version used.
    pub rule_version: i32,
    /// Lifetime wagering before the bet.
    pub lifetime_before_eur: Decimal,
    /// Level before.
    pub level_before: i32,
    /// VIP rate.
    pub rate: Decimal,
    /// Level multiplier.
    pub multiplier: Decimal,
    /// VIP points.
    pub vip_points: i64,
    /// Leaderboard points.
    pub leaderboard_points: i64,
    /// Level after.
    pub level_after: i32,
    /// When a rollback reversed it.
    pub rolled_back_at: Option<DateTime<Utc>>,
}

/// `GET /api/v1/admin/players/{id}/rewards`.
pub async fn player_rewards(
    State(state): State<ApiState>,
    Staff(_): Staff,
    Path(id): Path<String>,
) -> Result<Json<PlayerRewardsView>, ApiError> {
    let player: Uuid = id.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_player_id",
            format!("{id:?} is not a player id (a UUID)"),
        )
    })?;
    let (rewards, facts) = rewards_of(&state, player, Utc::now())
        .await?
        .ok_or(ApiError::PlayerNotFound(player))?;
    let recent_awards = sqlx::query(
        "SELECT transfer_id, event_id, occurred_at, amount_eur, game_category, rule_version,
                lifetime_before_eur, level_before, rate, multiplier, vip_points, leaderboard_points,
                level_after, rolled_back_at
           FROM awards WHERE player_id = $1 ORDER BY occurred_at DESC, seq DESC LIMIT $2",
    )
    .bind(player)
    .bind(RECENT_AWARDS)
    .fetch_all(state.pool())
    .await?
    .into_iter()
    .map(|row| {
        Ok(AwardView {
            transfer_id: row.try_get("transfer_id")?,
            event_id: row.try_get("event_id")?,
            occurred_at: row.try_get("occurred_at")?,
            amount_eur: row.try_get("amount_eur")?,
            game_category: row.try_get("game_category")?,
            rule_version: row.try_get("rule_version")?,
            lifetime_before_eur: row.try_get("lifetime_before_eur")?,
            level_before: row.try_get("level_before")?,
            rate: row.try_get("rate")?,
            multiplier: row.try_get("multiplier")?,
            vip_points: row.try_get("vip_points")?,
            leaderboard_points: row.try_get("leaderboard_points")?,
            level_after: row.try_get("level_after")?,
            rolled_back_at: row.try_get("rolled_back_at")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(PlayerRewardsView {
        rewards,
        bets: facts.bets,
        lifetime_won_eur: facts.lifetime_won_eur,
        currency: facts.currency,
        registered_at: facts.registered_at,
        locked: facts.locked,
        updated_at: facts.updated_at,
        recent_awards,
    }))
}

/// Body of `PUT /api/v1/admin/levels`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelsBody {
    /// The new tiers, level 0 first.
    pub levels: Vec<TierSpec>,
}

/// Answer of `PUT /api/v1/admin/levels`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplacedView {
    /// The table now in force.
    #[serde(flatten)]
    pub table: LevelsView,
    /// Players whose level changed with the new table.
    pub players_retiered: u64,
}

/// `PUT /api/v1/admin/levels`: replace the tier table (a new rule version; VIP rates unchanged).
pub async fn replace_levels(
    State(state): State<ApiState>,
    Staff(claims): Staff,
    body: Result<Json<LevelsBody>, JsonRejection>,
) -> Result<Json<ReplacedView>, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::bad_request("invalid_json", e.body_text()))?;
    let table = LevelTable::new(body.levels)?;
    let by = claims.sub.to_string();
    let replaced = db::replace_levels(state.pool(), &table, &by).await?;
    tracing::info!(rule_version = replaced.version, staff_id = %by,
        tiers = table.tiers().len(), players_retiered = replaced.players_retiered,
        "level table replaced");
    let mut conn = state.pool().acquire().await?;
    let rules = state.rules().get(&mut conn, replaced.version).await?;
    Ok(Json(ReplacedView {
        table: LevelsView::from(rules.as_ref()),
        players_retiered: replaced.players_retiered,
    }))
}

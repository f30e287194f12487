//! The verifier: proves, continuously, that stored rewards follow from their inputs.
//!
//! 1. **Awards.** Every award is recomputed from its stored inputs (amount, game category, lifetime
//!    wagering before the bet) with the rule version it names; any field that differs (rate, level,
//!    multiplier, VIP points, leaderboard points, level after) is a discrepancy. Awards are visited in
//!    `seq` order from a stored watermark; a gap in `seq` younger than a minute may be a transaction still
//!    in flight, so the run stops there and resumes later.
//! 2. **Players.** For each player changed since the last run, the stored totals must equal the sums of
//!    their awards not rolled back (VIP points, lifetime wagering, bets, all-time leaderboard points), and
//!    their level must be the tier of their lifetime wagering under the rules in force. One SQL statement,
//!    so one consistent snapshot.
//!
//! Each discrepancy increments `concierge_reward_discrepancies_total` and logs one error line with
//! `player_id`, `event_id`, `rule_version`, `field`, `expected` and `actual`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgPool, Row as _};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::RulesCache;
use crate::domain::{money::EurAmount, rules::BetInput};
use crate::metrics as m;

/// Awards recomputed per query.
const CHUNK: i64 = 5000;
/// How long a gap in award sequence numbers is waited for before it is considered an aborted insert.
const GAP_PATIENCE_SECONDS: i64 = 60;

/// What one run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Awards recomputed.
    pub awards_checked: u64,
    /// Players whose totals were checked.
    pub players_checked: u64,
    /// Differences found (each also counted and logged).
    pub discrepancies: u64,
}

/// Run the verifier every `interval` until `stop`.
pub async fn run(
    pool: PgPool,
    rules: Arc<RulesCache>,
    interval: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match run_once(&pool, &rules).await {
            Ok(report) if report.discrepancies > 0 => tracing::error!(
                awards_checked = report.awards_checked,
                players_checked = report.players_checked,
                discrepancies = report.discrepancies,
                "verifier found reward discrepancies"
            ),
            Ok(report) => tracing::debug!(
                awards_checked = report.awards_checked,
                players_checked = report.players_checked,
                "verifier found no discrepancy"
            ),
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "verifier run failed, will retry"
                )
            }
        }
    }
}

/// One pass over new awards and recently changed players.
pub async fn run_once(pool: &PgPool, rules: &RulesCache) -> anyhow::Result<VerifyReport> {
    let mut report = VerifyReport::default();
    loop {
        let (checked, more) = verify_awards(pool, rules, &mut report).await?;
        report.awards_checked += checked;
        if !more {
            break;
        }
    }
    verify_players(pool, rules, &mut report).await?;
    metrics::counter!(m::AWARDS_VERIFIED).increment(report.awards_checked);
    Ok(report)
}

fn discrepancy(
    report: &mut VerifyReport,
    player_id: Uuid,
    event_id: Option<Uuid>,
    rule_version: i32,
    field: &'static str,
    expected: String,
    actual: String,
) {
    report.discrepancies += 1;
    metrics::counter!(m::REWARD_DISCREPANCIES).increment(1);
    tracing::error!(player_id = %player_id, event_id = event_id.map(|e| e.to_string()),
        rule_version, field, expected = %expected, actual = %actual,
        "reward discrepancy: stored value differs from the recomputation");
}

/// Verify one chunk of awards after the watermark. Returns (checked, whether a full chunk was read).
async fn verify_awards(
    pool: &PgPool,
    rules: &RulesCache,
    report: &mut VerifyReport,
) -> anyhow::Result<(u64, bool)> {
    let watermark: i64 = sqlx::query_scalar("SELECT award_seq FROM verifier_state")
        .fetch_one(pool)
        .await?;
    let rows = sqlx::query(
        "SELECT seq, event_id, player_id, amount_eur, game_category, rule_version,
                lifetime_before_eur, level_before, rate, multiplier, vip_points, leaderboard_points,
                level_after, created_at, now() AS now
           FROM awards WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(watermark)
    .bind(CHUNK)
    .fetch_all(pool)
    .await
    .context("reading awards to verify")?;
    let full = rows.len() as i64 == CHUNK;
    let mut last = watermark;
    let mut checked = 0;
    let mut conn = pool.acquire().await?;
    for row in &rows {
        let seq: i64 = row.try_get("seq")?;
        let created_at: DateTime<Utc> = row.try_get("created_at")?;
        let now: DateTime<Utc> = row.try_get("now")?;
        if seq != last + 1 && (now - created_at).num_seconds() < GAP_PATIENCE_SECONDS {
            // An earlier sequence number may belong to a transaction that has not committed yet.
            break;
        }
        let player_id: Uuid = row.try_get("player_id")?;
        let event_id: Uuid = row.try_get("event_id")?;
        let version: i32 = row.try_get("rule_version")?;
        let category: Option<String> = row.try_get("game_category")?;
        let amount: Decimal = row.try_get("amount_eur")?;
        let lifetime: Decimal = row.try_get("lifetime_before_eur")?;
        let stored = (
            row.try_get::<Decimal, _>("rate")?,
            row.try_get::<i32, _>("level_before")?,
            row.try_get::<Decimal, _>("multiplier")?,
            row.try_get::<i64, _>("vip_points")?,
            row.try_get::<i64, _>("leaderboard_points")?,
            row.try_get::<i32, _>("level_after")?,
        );
        last = seq;
        checked += 1;
        let recomputed = async {
            let rules = rules.get(&mut conn, version).await?;
            let input = BetInput {
                amount_eur: EurAmount::try_from(amount)?,
                game_category: category.as_deref(),
                lifetime_before: EurAmount::try_from(lifetime)?,
            };
            anyhow::Ok(rules.award(&input)?)
        }
        .await;
        let award = match recomputed {
            Ok(award) => award,
            Err(error) => {
                discrepancy(
                    report,
                    player_id,
                    Some(event_id),
                    version,
                    "award",
                    format!("recomputable ({error:#})"),
                    "stored".into(),
                );
                continue;
            }
        };
        let fields: [(&'static str, String, String); 6] = [
            (
                "rate",
                award.rate.normalize().to_string(),
                stored.0.normalize().to_string(),
            ),
            (
                "level_before",
                award.level_before.to_string(),
                stored.1.to_string(),
            ),
            (
                "multiplier",
                award.multiplier.normalize().to_string(),
                stored.2.normalize().to_string(),
            ),
            (
                "vip_points",
                award.vip_points.to_string(),
                stored.3.to_string(),
            ),
            (
                "leaderboard_points",
                award.leaderboard_points.to_string(),
                stored.4.to_string(),
            ),
            (
                "level_after",
                award.level_after.to_string(),
                stored.5.to_string(),
            ),
        ];
        for (field, expected, actual) in fields {
            if expected != actual {
                discrepancy(
                    report,
                    player_id,
                    Some(event_id),
                    version,
                    field,
                    expected,
                    actual,
                );
            }
        }
    }
    drop(conn);
    if last != watermark {
        sqlx::query("UPDATE verifier_state SET award_seq = $1")
            .bind(last)
            .execute(pool)
            .await?;
    }
    Ok((checked, full && last != watermark))
}

/// Check the totals of players changed since the last run against their awards.
async fn verify_players(
    pool: &PgPool,
    rules: &RulesCache,
    report: &mut VerifyReport,
) -> anyhow::Result<()> {
    let rows = sqlx::query(
        "SELECT p.player_id, p.level, p.vip_points, p.lifetime_wagered_eur, p.bets,
                coalesce(a.vip_points, 0)::bigint AS award_vip,
                coalesce(a.amount, 0) AS award_amount,
                coalesce(a.bets, 0)::bigint AS award_bets,
                coalesce(a.points, 0)::bigint AS award_points,
                coalesce(t.points, 0)::bigint AS board_points,
                (SELECT version FROM rules_current) AS rules_version,
                now() AS checked_at
           FROM players p
           LEFT JOIN LATERAL (
                SELECT sum(vip_points) AS vip_points, sum(amount_eur) AS amount, count(*) AS bets,
                       sum(leaderboard_points) AS points
                  FROM awards WHERE player_id = p.player_id AND rolled_back_at IS NULL) a ON true
           LEFT JOIN period_totals t
                  ON t.board = 'all-time' AND t.period_start = '1970-01-01' AND t.player_id = p.player_id
          WHERE p.updated_at >= (SELECT players_checked_until FROM verifier_state) - interval '1 minute'",
    )
    .fetch_all(pool)
    .await
    .context("reading player totals to verify")?;
    let mut checked_at: Option<DateTime<Utc>> = None;
    let mut conn = pool.acquire().await?;
    for row in &rows {
        // The rules in force in the same snapshot as the players' levels.
        let current = rules.get(&mut conn, row.try_get("rules_version")?).await?;
        report.players_checked += 1;
        checked_at = Some(row.try_get("checked_at")?);
        let player_id: Uuid = row.try_get("player_id")?;
        let lifetime: Decimal = row.try_get("lifetime_wagered_eur")?;
        let level: i32 = row.try_get("level")?;
        let expected_level = EurAmount::try_from(lifetime)
            .map(|l| current.levels.level_for(l).level as i32)
            .unwrap_or(-1);
        let checks: [(&'static str, String, String); 5] = [
            (
                "vip_points",
                row.try_get::<i64, _>("award_vip")?.to_string(),
                row.try_get::<i64, _>("vip_points")?.to_string(),
            ),
            (
                "lifetime_wagered_eur",
                row.try_get::<Decimal, _>("award_amount")?
                    .normalize()
                    .to_string(),
                lifetime.normalize().to_string(),
            ),
            (
                "bets",
                row.try_get::<i64, _>("award_bets")?.to_string(),
                row.try_get::<i64, _>("bets")?.to_string(),
            ),
            (
                "all_time_points",
                row.try_get::<i64, _>("award_points")?.to_string(),
                row.try_get::<i64, _>("board_points")?.to_string(),
            ),
            ("level", expected_level.to_string(), level.to_string()),
        ];
        for (field, expected, actual) in checks {
            if expected != actual {
                discrepancy(
                    report,
                    player_id,
                    None,
                    current.version,
                    field,
                    expected,
                    actual,
                );
            }
        }
    }
    if let Some(checked_at) = checked_at {
        sqlx::query("UPDATE verifier_state SET players_checked_until = $1")
            .bind(checked_at)
            .execute(pool)
            .await?;
    }
    Ok(())
}

//! Rule versions in the database: loading (with a cache, since a version never changes) and replacing
//! the level table.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool, Row as _};

use crate::domain::{
    levels::{LevelTable, TierSpec},
    rules::RuleSet,
};

/// Rule sets by version. Versions are immutable (the tables are append-only), so entries never go stale.
#[derive(Debug, Default)]
pub struct RulesCache {
    by_version: RwLock<HashMap<i32, Arc<RuleSet>>>,
}

impl RulesCache {
    /// Rule set `version`, loaded on first use.
    pub async fn get(&self, conn: &mut PgConnection, version: i32) -> anyhow::Result<Arc<RuleSet>> {
        if let Some(rules) = self
            .by_version
            .read()
            .ok()
            .and_then(|m| m.get(&version).cloned())
        {
            return Ok(rules);
        }
        let rules = Arc::new(load(conn, version).await?);
        if let Ok(mut map) = self.by_version.write() {
            map.insert(version, rules.clone());
        }
        Ok(rules)
    }

    /// The rule set in force now.
    pub async fn current(&self, pool: &PgPool) -> anyhow::Result<Arc<RuleSet>> {
        let mut conn = pool.acquire().await?;
        let version = current_version(&mut conn).await?;
        self.get(&mut conn, version).await
    }
}

/// The version in force (without locking it).
pub async fn current_version(conn: &mut PgConnection) -> anyhow::Result<i32> {
    Ok(sqlx::query_scalar("SELECT version FROM rules_current")
        .fetch_one(conn)
        .await?)
}

/// Load rule set `version`.
pub async fn load(conn: &mut PgConnection, version: i32) -> anyhow::Result<RuleSet> {
    let default_rate: Decimal =
        sqlx::query_scalar("SELECT default_rate FROM rule_sets WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *conn)
            .await?
            .with_context(|| format!("rule set {version} does not exist"))?;
    let specs = sqlx::query(
        "SELECT name, threshold_eur, multiplier FROM rule_set_levels WHERE version = $1 ORDER BY level",
    )
    .bind(version)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|row| {
        Ok(TierSpec {
            name: row.try_get("name")?,
            threshold_eur: row.try_get("threshold_eur")?,
            multiplier: row.try_get("multiplier")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let levels = LevelTable::new(specs)
        .with_context(|| format!("the stored level table of rule set {version} is invalid"))?;
    let rates = sqlx::query("SELECT category, rate FROM rule_set_rates WHERE version = $1")
        .bind(version)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|row| Ok((row.try_get::<String, _>("category")?, row.try_get("rate")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(RuleSet {
        version,
        levels,
        rates,
        default_rate,
    })
}

/// What replacing the level table did.
#[derive(Debug, Clone)]
pub struct Replaced {
    /// The new rule version.
    pub version: i32,
    /// Players whose level changed under the new table.
    pub players_retiered: u64,
}

/// Make `table` the level table in force: a new rule version (same VIP rates), and every player's level
/// recomputed from their lifetime wagering, in one transaction. Waits for event batches in flight (they
/// hold the current version FOR SHARE), so no batch mixes two versions.
pub async fn replace_levels(
    pool: &PgPool,
    table: &LevelTable,
    by: &str,
) -> anyhow::Result<Replaced> {
    let mut tx = pool.begin().await?;
    let current: i32 = sqlx::query_scalar("SELECT version FROM rules_current FOR UPDATE")
        .fetch_one(&mut *tx)
        .await?;
    let version: i32 = sqlx::query_scalar("SELECT max(version) + 1 FROM rule_sets")
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO rule_sets (version, default_rate, created_by)
         SELECT $1, default_rate, $3 FROM rule_sets WHERE version = $2",
    )
    .bind(version)
    .bind(current)
    .bind(by)
    .execute(&mut *tx)
    .await?;
    let tiers = table.tiers();
    sqlx::query(
        "INSERT INTO rule_set_levels (version, level, name, threshold_eur, multiplier)
         SELECT $1, * FROM unnest($2::int[], $3::text[], $4::numeric[], $5::numeric[])",
    )
    .bind(version)
    .bind(tiers.iter().map(|t| t.level as i32).collect::<Vec<_>>())
    .bind(tiers.iter().map(|t| t.name.clone()).collect::<Vec<_>>())
    .bind(
        tiers
            .iter()
            .map(|t| t.threshold_eur.get())
            .collect::<Vec<_>>(),
    )
    .bind(tiers.iter().map(|t| t.multiplier).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO rule_set_rates (version, category, rate)
         SELECT $1, category, rate FROM rule_set_rates WHERE version = $2",
    )
    .bind(version)
    .bind(current)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE rules_current SET version = $1")
        .bind(version)
        .execute(&mut *tx)
        .await?;
    let retiered = sqlx::query(
        "WITH target AS (
             SELECT p.player_id,
                    (SELECT max(l.level) FROM rule_set_levels l
                      WHERE l.version = $1 AND l.threshold_eur <= p.lifetime_wagered_eur) AS level
               FROM players p
         )
         UPDATE players p SET level = target.level, updated_at = now()
           FROM target
          WHERE p.player_id = target.player_id AND p.level <> target.level",
    )
    .bind(version)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Replaced {
        version,
        players_retiered: retiered,
    })
}

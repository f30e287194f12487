//! The event handler: batches of Vault events in, rewards out, exactly once in effect.
//!
//! A batch's events are grouped by partition (`partition % parallelism`: one partition is never split, so
//! a player's events stay together and in order) and each group is applied in one database transaction,
//! the groups concurrently:
//! 1. hold the rule version in force (`rules_current` FOR SHARE);
//! 2. record every event id in `processed_events`; ids already there are duplicates and are skipped;
//! 3. lock the group's players (FOR UPDATE, sorted), load the awards its bets and rollbacks name and
//!    earlier tombstones;
//! 4. apply the new events in order ([`apply::apply`]: pure);
//! 5. write awards, reversals, tombstones, players, leaderboard rows and the level-up outbox rows; commit.
//!
//! The consumer stores offsets only after every group committed, so a crash or a failed group redelivers
//! the batch and step 2 turns what was already committed into a no-op. Messages that can never be processed are refused before any database work and
//! go to the DLQ with the reason. Metrics and logs about the batch's effects are emitted after the
//! commit, so a retried batch is never counted twice.

pub mod apply;
pub mod parse;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use casino_events::{
    Envelope,
    payloads::{LevelUp, reward_types},
};
use casino_messaging::{BatchHandler, BatchOutcome, HandlerError, Incoming, Rejected};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{PgPool, Postgres, Row as _, Transaction};
use uuid::Uuid;

use self::apply::{Changes, Loaded, Outcome, PlayerState, StoredAward};
use self::parse::{Classified, Event, Topics};
use crate::db::RulesCache;
use crate::domain::{money::EurAmount, rules::RuleSet};
use crate::metrics as m;

/// Counters a test or benchmark can watch (process-wide metrics are shared by every app in a process).
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Messages in committed batches (including duplicates, ignored and refused ones).
    pub messages: AtomicU64,
    /// Events applied (outcome `ok` or `orphan`).
    pub applied: AtomicU64,
    /// Committed batches.
    pub batches: AtomicU64,
    /// Messages refused (sent to the DLQ).
    pub rejected: AtomicU64,
}

/// What the processor needs besides the database.
#[derive(Debug, Clone)]
pub struct ProcessorSettings {
    /// Topics read.
    pub topics: Topics,
    /// Topic level-ups go to.
    pub rewards_topic: String,
    /// VIP points per player and hour above which accumulation is flagged.
    pub abnormal_points_per_hour: i64,
    /// Transactions one batch may use at once (its partitions are spread over them).
    pub parallelism: usize,
}

/// The batch handler.
#[derive(Clone)]
pub struct Processor {
    pool: PgPool,
    rules: Arc<RulesCache>,
    settings: ProcessorSettings,
    stats: Arc<ConsumerStats>,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Processor {
    /// A processor writing to `pool`.
    pub fn new(
        pool: PgPool,
        rules: Arc<RulesCache>,
        settings: ProcessorSettings,
        stats: Arc<ConsumerStats>,
    ) -> Self {
        Self {
            pool,
            rules,
            settings,
            stats,
        }
    }

    async fn process(&self, batch: &[Incoming]) -> Result<BatchOutcome, HandlerError> {
        let started = Instant::now();
        let mut rejected = Vec::new();
        let mut invalid: Vec<&'static str> = Vec::new();
        let mut ignored: Vec<&'static str> = Vec::new();
        let mut events: Vec<Event> = Vec::with_capacity(batch.len());
        let mut seen = HashSet::with_capacity(batch.len());
        let mut in_batch_duplicates: Vec<&'static str> = Vec::new();
        for (index, message) in batch.iter().enumerate() {
            match parse::classify(index, message, &self.settings.topics) {
                Classified::Apply(event) => {
                    if seen.insert(event.event_id) {
                        events.push(event);
                    } else {
                        in_batch_duplicates.push(event.event_type);
                    }
                }
                Classified::Ignore { event_type } => ignored.push(event_type),
                Classified::Invalid { event_type, reason } => {
                    tracing::warn!(topic = %message.topic, partition = message.partition,
                        offset = message.offset, event_type, reason = %reason, "invalid event refused");
                    invalid.push(event_type);
                    rejected.push(Rejected { index, reason });
                }
            }
        }

        // One span per event, child of the trace that produced it (the batch span only links traces),
        // ended when the batch is done: a bet's trace shows Concierge processing that bet.
        let _event_spans: Vec<tracing::Span> = events
            .iter()
            .map(|event| {
                let span = tracing::info_span!(
                    "concierge.process_event",
                    otel.name = "concierge process event",
                    otel.kind = "consumer",
                    event_type = event.event_type,
                    event_id = %event.event_id,
                );
                casino_messaging::trace::set_parent_from_pairs(&span, &batch[event.index].headers);
                span
            })
            .collect();

        // Partitions never share a player: their events commit in parallel transactions (each group keeps
        // its partitions' order). If one fails the whole batch is retried; the groups that committed are
        // then duplicates.
        let parallelism = self.settings.parallelism.max(1) as i32;
        let mut groups: BTreeMap<i32, Vec<Event>> = BTreeMap::new();
        for event in events {
            let partition = batch[event.index].partition;
            groups
                .entry(partition.rem_euclid(parallelism))
                .or_default()
                .push(event);
        }
        let results =
            futures::future::join_all(groups.values().map(|group| self.commit(batch, group))).await;
        let mut committed = Vec::with_capacity(results.len());
        let mut failure = None;
        for (result, group) in results.into_iter().zip(groups.values()) {
            match result {
                Ok(done) => committed.push(done),
                Err(error) => {
                    // While a batch keeps failing, the leaderboards fall behind its oldest event.
                    if let Some(oldest) = group.iter().map(|e| e.occurred_at).min() {
                        metrics::gauge!(m::LEADERBOARD_UPDATE_DELAY).set(seconds_since(oldest));
                    }
                    failure = Some(error);
                }
            }
        }
        for done in &committed {
            done.report();
        }
        if let Some(error) = failure {
            return Err(HandlerError::Transient(error));
        }

        // After the commit: metrics, logs, wake-ups.
        let mut counts: BTreeMap<(&'static str, Outcome), u64> = BTreeMap::new();
        for event_type in invalid {
            *counts.entry((event_type, Outcome::Invalid)).or_default() += 1;
        }
        for event_type in ignored {
            *counts.entry((event_type, Outcome::Ignored)).or_default() += 1;
        }
        for event_type in in_batch_duplicates {
            *counts.entry((event_type, Outcome::Duplicate)).or_default() += 1;
        }
        let mut applied = 0;
        for done in &committed {
            for (event_type, outcome) in &done.outcomes {
                if matches!(outcome, Outcome::Ok | Outcome::Orphan) {
                    applied += 1;
                }
                *counts.entry((event_type, *outcome)).or_default() += 1;
            }
        }
        for ((event_type, outcome), count) in counts {
            metrics::counter!(m::EVENTS_PROCESSED, "event_type" => event_type, "outcome" => outcome.as_str())
                .increment(count);
        }
        metrics::histogram!(m::EVENT_PROCESSING_DURATION)
            .record_many(started.elapsed().as_secs_f64(), batch.len());
        self.stats
            .messages
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.stats.applied.fetch_add(applied, Ordering::Relaxed);
        self.stats
            .rejected
            .fetch_add(rejected.len() as u64, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        Ok(BatchOutcome { rejected })
    }

    /// Steps 1-5 of the module documentation, in one transaction.
    async fn commit(&self, batch: &[Incoming], events: &[Event]) -> anyhow::Result<Committed> {
        let mut tx = self.pool.begin().await.context("starting a transaction")?;
        let version: i32 = sqlx::query_scalar("SELECT version FROM rules_current FOR SHARE")
            .fetch_one(&mut *tx)
            .await
            .context("locking the rule version")?;
        let rules = self.rules.get(&mut tx, version).await?;
        let fresh = record_processed(&mut tx, events).await?;
        let mut outcomes: Vec<(&'static str, Outcome)> = Vec::new();
        let new_events: Vec<Event> = events
            .iter()
            .filter(|e| {
                let new = fresh.contains(&e.event_id);
                if !new {
                    outcomes.push((e.event_type, Outcome::Duplicate));
                }
                new
            })
            .cloned()
            .collect();
        if new_events.is_empty() {
            tx.commit().await.context("committing")?;
            return Ok(Committed {
                outcomes,
                changes: Changes::default(),
                level_up_events: Vec::new(),
            });
        }

        let mut loaded = load(&mut tx, &new_events).await?;
        let mut changes = apply::apply(
            &rules,
            &mut loaded,
            &new_events,
            self.settings.abnormal_points_per_hour,
        )?;
        outcomes.append(&mut changes.outcomes);
        write_awards(&mut tx, &changes).await?;
        write_players(&mut tx, &changes.players).await?;
        write_periods(&mut tx, &changes.periods).await?;
        let level_up_events = write_outbox(
            &mut tx,
            &changes,
            batch,
            &self.settings.rewards_topic,
            &rules,
        )
        .await?;
        tx.commit().await.context("committing")?;
        Ok(Committed {
            outcomes,
            changes,
            level_up_events,
        })
    }
}

impl BatchHandler for Processor {
    async fn handle_batch(&self, batch: &[Incoming]) -> Result<BatchOutcome, HandlerError> {
        self.process(batch).await
    }
}

/// A committed batch, for reporting.
struct Committed {
    outcomes: Vec<(&'static str, Outcome)>,
    changes: Changes,
    level_up_events: Vec<Uuid>,
}

impl Committed {
    fn report(&self) {
        let c = &self.changes;
        metrics::counter!(m::POINTS_AWARDED, "kind" => "vip").increment(c.vip_awarded);
        metrics::counter!(m::POINTS_AWARDED, "kind" => "leaderboard")
            .increment(c.leaderboard_awarded);
        if c.vip_reversed > 0 || c.leaderboard_reversed > 0 {
            metrics::counter!(m::POINTS_REVERSED, "kind" => "vip").increment(c.vip_reversed);
            metrics::counter!(m::POINTS_REVERSED, "kind" => "leaderboard")
                .increment(c.leaderboard_reversed);
        }
        if c.unknown_categories > 0 {
            metrics::counter!(m::UNKNOWN_GAME_CATEGORY).increment(c.unknown_categories);
        }
        for (up, published_as) in c.level_ups.iter().zip(&self.level_up_events) {
            metrics::counter!(m::LEVEL_UPS, "level" => up.to.to_string()).increment(1);
            tracing::info!(player_id = %up.player_id, event_id = %up.event_id,
                level_up_event_id = %published_as, from = up.from, to = up.to, name = %up.name,
                "player levelled up");
        }
        for down in &c.level_downs {
            metrics::counter!(m::LEVEL_DOWNS, "level" => down.to.to_string()).increment(1);
            tracing::info!(player_id = %down.player_id, event_id = %down.event_id,
                from = down.from, to = down.to, name = %down.name,
                "player lost a level to a rollback");
        }
        for flagged in &c.abnormal {
            metrics::counter!(m::ABNORMAL_POINT_ACCUMULATION).increment(1);
            tracing::warn!(player_id = %flagged.player_id, event_id = %flagged.event_id, points = flagged.points,
                window = %flagged.hour.to_rfc3339(), reason = "vip points per hour above threshold",
                "abnormal point accumulation");
        }
        if let Some(newest) = c.newest_event {
            metrics::gauge!(m::LEADERBOARD_UPDATE_DELAY).set(seconds_since(newest));
        }
    }
}

fn seconds_since(at: DateTime<Utc>) -> f64 {
    ((Utc::now() - at).num_milliseconds().max(0) as f64) / 1000.0
}

fn context(what: &'static str) -> impl FnOnce(sqlx::Error) -> anyhow::Error {
    move |error| anyhow::Error::new(error).context(what)
}

/// Insert the events' ids; return those that were not there yet.
async fn record_processed(
    tx: &mut Transaction<'_, Postgres>,
    events: &[Event],
) -> anyhow::Result<HashSet<Uuid>> {
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type).collect();
    let fresh: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO processed_events (event_id, event_type)
         SELECT * FROM unnest($1::uuid[], $2::text[])
         ON CONFLICT (event_id) DO NOTHING
         RETURNING event_id",
    )
    .bind(&ids)
    .bind(&types)
    .fetch_all(&mut **tx)
    .await
    .map_err(context("recording processed events"))?;
    Ok(fresh.into_iter().collect())
}

/// Lock and load the players, awards and tombstones the new events need.
async fn load(tx: &mut Transaction<'_, Postgres>, events: &[Event]) -> anyhow::Result<Loaded> {
    let mut player_ids: Vec<Uuid> = events.iter().map(|e| e.player_id).collect();
    player_ids.sort_unstable();
    player_ids.dedup();
    sqlx::query(
        "INSERT INTO players (player_id) SELECT unnest($1::uuid[]) ORDER BY 1
         ON CONFLICT (player_id) DO NOTHING",
    )
    .bind(&player_ids)
    .execute(&mut **tx)
    .await
    .map_err(context("creating players"))?;
    let rows = sqlx::query(
        "SELECT player_id, level, vip_points, lifetime_wagered_eur, lifetime_won_eur, bets,
                currency, registered_at, locked, points_hour, points_in_hour
           FROM players WHERE player_id = ANY($1) ORDER BY player_id FOR UPDATE",
    )
    .bind(&player_ids)
    .fetch_all(&mut **tx)
    .await
    .map_err(context("locking players"))?;
    let mut loaded = Loaded::default();
    for row in rows {
        let state = PlayerState {
            level: row.try_get::<i32, _>("level")? as u32,
            vip_points: row.try_get("vip_points")?,
            lifetime_wagered: eur(row.try_get("lifetime_wagered_eur")?)?,
            lifetime_won: eur(row.try_get("lifetime_won_eur")?)?,
            bets: row.try_get("bets")?,
            currency: row.try_get("currency")?,
            registered_at: row.try_get("registered_at")?,
            locked: row.try_get("locked")?,
            points_hour: row.try_get("points_hour")?,
            points_in_hour: row.try_get("points_in_hour")?,
        };
        loaded.players.insert(row.try_get("player_id")?, state);
    }

    let mut transfer_ids: Vec<Uuid> = events
        .iter()
        .filter_map(|e| match &e.action {
            parse::Action::Bet { transfer_id, .. } => Some(*transfer_id),
            parse::Action::Rollback { bet_transfer_id } => Some(*bet_transfer_id),
            _ => None,
        })
        .collect();
    if transfer_ids.is_empty() {
        return Ok(loaded);
    }
    transfer_ids.sort_unstable();
    transfer_ids.dedup();
    let rows = sqlx::query(
        "SELECT transfer_id, player_id, occurred_at, amount_eur, vip_points, leaderboard_points,
                rolled_back_at IS NOT NULL AS rolled_back
           FROM awards WHERE transfer_id = ANY($1) ORDER BY transfer_id FOR UPDATE",
    )
    .bind(&transfer_ids)
    .fetch_all(&mut **tx)
    .await
    .map_err(context("loading awards"))?;
    for row in rows {
        loaded.awards.insert(
            row.try_get("transfer_id")?,
            StoredAward {
                player_id: row.try_get("player_id")?,
                occurred_at: row.try_get("occurred_at")?,
                amount_eur: eur(row.try_get("amount_eur")?)?,
                vip_points: row.try_get("vip_points")?,
                leaderboard_points: row.try_get("leaderboard_points")?,
                rolled_back: row.try_get("rolled_back")?,
            },
        );
    }
    let rows = sqlx::query(
        "SELECT transfer_id, occurred_at FROM rollback_tombstones WHERE transfer_id = ANY($1)",
    )
    .bind(&transfer_ids)
    .fetch_all(&mut **tx)
    .await
    .map_err(context("loading rollback tombstones"))?;
    for row in rows {
        loaded
            .tombstones
            .insert(row.try_get("transfer_id")?, row.try_get("occurred_at")?);
    }
    Ok(loaded)
}

fn eur(value: Decimal) -> anyhow::Result<EurAmount> {
    EurAmount::try_from(value).map_err(|e| anyhow::anyhow!("stored {e}"))
}

async fn write_awards(tx: &mut Transaction<'_, Postgres>, changes: &Changes) -> anyhow::Result<()> {
    let awards = &changes.new_awards;
    if !awards.is_empty() {
        let n = awards.len();
        let mut transfer_ids = Vec::with_capacity(n);
        let mut event_ids = Vec::with_capacity(n);
        let mut player_ids = Vec::with_capacity(n);
        let mut occurred = Vec::with_capacity(n);
        let mut amounts = Vec::with_capacity(n);
        let mut categories: Vec<Option<String>> = Vec::with_capacity(n);
        let mut versions = Vec::with_capacity(n);
        let mut lifetimes = Vec::with_capacity(n);
        let mut levels_before = Vec::with_capacity(n);
        let mut rates = Vec::with_capacity(n);
        let mut multipliers = Vec::with_capacity(n);
        let mut vip = Vec::with_capacity(n);
        let mut leaderboard = Vec::with_capacity(n);
        let mut levels_after = Vec::with_capacity(n);
        let mut rolled_back: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        for a in awards {
            transfer_ids.push(a.transfer_id);
            event_ids.push(a.event_id);
            player_ids.push(a.player_id);
            occurred.push(a.occurred_at);
            amounts.push(a.amount_eur.get());
            categories.push(a.game_category.clone());
            versions.push(a.award.rule_version);
            lifetimes.push(a.lifetime_before.get());
            levels_before.push(a.award.level_before as i32);
            rates.push(a.award.rate);
            multipliers.push(a.award.multiplier);
            vip.push(a.award.vip_points);
            leaderboard.push(a.award.leaderboard_points);
            levels_after.push(a.award.level_after as i32);
            rolled_back.push(a.rolled_back_at);
        }
        sqlx::query(
            "INSERT INTO awards (transfer_id, event_id, player_id, occurred_at, amount_eur, game_category,
                                 rule_version, lifetime_before_eur, level_before, rate, multiplier,
                                 vip_points, leaderboard_points, level_after, rolled_back_at, voided)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::numeric[],
                                  $6::text[], $7::int[], $8::numeric[], $9::int[], $10::numeric[],
                                  $11::numeric[], $12::bigint[], $13::bigint[], $14::int[],
                                  $15::timestamptz[], $16::bool[])",
        )
        .bind(transfer_ids)
        .bind(event_ids)
        .bind(player_ids)
        .bind(occurred)
        .bind(amounts)
        .bind(categories)
        .bind(versions)
        .bind(lifetimes)
        .bind(levels_before)
        .bind(rates)
        .bind(multipliers)
        .bind(vip)
        .bind(leaderboard)
        .bind(levels_after)
        .bind(&rolled_back)
        .bind(rolled_back.iter().map(Option::is_some).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(context("inserting awards"))?;
    }
    if !changes.reversals.is_empty() {
        let ids: Vec<Uuid> = changes.reversals.iter().map(|r| r.transfer_id).collect();
        let times: Vec<DateTime<Utc>> =
            changes.reversals.iter().map(|r| r.rolled_back_at).collect();
        let events: Vec<Uuid> = changes.reversals.iter().map(|r| r.event_id).collect();
        sqlx::query(
            "UPDATE awards a SET rolled_back_at = r.at, rollback_event_id = r.event_id
               FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[]) AS r(transfer_id, at, event_id)
              WHERE a.transfer_id = r.transfer_id",
        )
        .bind(ids)
        .bind(times)
        .bind(events)
        .execute(&mut **tx)
        .await
        .map_err(context("marking awards rolled back"))?;
    }
    if !changes.tombstones.is_empty() {
        let t = &changes.tombstones;
        sqlx::query(
            "INSERT INTO rollback_tombstones (transfer_id, event_id, player_id, occurred_at)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[])",
        )
        .bind(t.iter().map(|t| t.transfer_id).collect::<Vec<_>>())
        .bind(t.iter().map(|t| t.event_id).collect::<Vec<_>>())
        .bind(t.iter().map(|t| t.player_id).collect::<Vec<_>>())
        .bind(t.iter().map(|t| t.occurred_at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(context("recording rollback tombstones"))?;
    }
    Ok(())
}

async fn write_players(
    tx: &mut Transaction<'_, Postgres>,
    players: &BTreeMap<Uuid, PlayerState>,
) -> anyhow::Result<()> {
    if players.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(players.len());
    let mut levels = Vec::with_capacity(players.len());
    let mut vip = Vec::with_capacity(players.len());
    let mut wagered = Vec::with_capacity(players.len());
    let mut won = Vec::with_capacity(players.len());
    let mut bets = Vec::with_capacity(players.len());
    let mut currencies: Vec<Option<String>> = Vec::with_capacity(players.len());
    let mut registered: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(players.len());
    let mut locked = Vec::with_capacity(players.len());
    let mut hours: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(players.len());
    let mut hour_points = Vec::with_capacity(players.len());
    for (id, p) in players {
        ids.push(*id);
        levels.push(p.level as i32);
        vip.push(p.vip_points);
        wagered.push(p.lifetime_wagered.get());
        won.push(p.lifetime_won.get());
        bets.push(p.bets);
        currencies.push(p.currency.clone());
        registered.push(p.registered_at);
        locked.push(p.locked);
        hours.push(p.points_hour);
        hour_points.push(p.points_in_hour);
    }
    sqlx::query(
        "UPDATE players p
            SET level = u.level, vip_points = u.vip_points, lifetime_wagered_eur = u.wagered,
                lifetime_won_eur = u.won, bets = u.bets, currency = u.currency,
                registered_at = u.registered_at, locked = u.locked, points_hour = u.points_hour,
                points_in_hour = u.points_in_hour, updated_at = now()
           FROM unnest($1::uuid[], $2::int[], $3::bigint[], $4::numeric[], $5::numeric[], $6::bigint[],
                       $7::text[], $8::timestamptz[], $9::bool[], $10::timestamptz[], $11::bigint[])
                AS u(player_id, level, vip_points, wagered, won, bets, currency, registered_at, locked,
                     points_hour, points_in_hour)
          WHERE p.player_id = u.player_id",
    )
    .bind(ids)
    .bind(levels)
    .bind(vip)
    .bind(wagered)
    .bind(won)
    .bind(bets)
    .bind(currencies)
    .bind(registered)
    .bind(locked)
    .bind(hours)
    .bind(hour_points)
    .execute(&mut **tx)
    .await
    .map_err(context("updating players"))?;
    Ok(())
}

async fn write_periods(
    tx: &mut Transaction<'_, Postgres>,
    periods: &BTreeMap<(crate::domain::board::Board, NaiveDate, Uuid), apply::PeriodDelta>,
) -> anyhow::Result<()> {
    if periods.is_empty() {
        return Ok(());
    }
    let mut boards = Vec::with_capacity(periods.len());
    let mut starts = Vec::with_capacity(periods.len());
    let mut players = Vec::with_capacity(periods.len());
    let mut wagered = Vec::with_capacity(periods.len());
    let mut points = Vec::with_capacity(periods.len());
    let mut reached = Vec::with_capacity(periods.len());
    for ((board, start, player), delta) in periods {
        let Some(reached_at) = delta.reached_at else {
            continue;
        };
        boards.push(board.as_str());
        starts.push(*start);
        players.push(*player);
        wagered.push(delta.wagered_eur);
        points.push(delta.points);
        reached.push(reached_at);
    }
    sqlx::query(
        "INSERT INTO period_totals AS t (board, period_start, player_id, wagered_eur, points, reached_at)
         SELECT * FROM unnest($1::text[], $2::date[], $3::uuid[], $4::numeric[], $5::bigint[],
                              $6::timestamptz[])
         ON CONFLICT (board, period_start, player_id) DO UPDATE
            SET wagered_eur = t.wagered_eur + excluded.wagered_eur,
                points = t.points + excluded.points,
                reached_at = GREATEST(t.reached_at, excluded.reached_at)",
    )
    .bind(boards)
    .bind(starts)
    .bind(players)
    .bind(wagered)
    .bind(points)
    .bind(reached)
    .execute(&mut **tx)
    .await
    .map_err(context("updating leaderboards"))?;
    Ok(())
}

/// Write one `level.up` per level-up into the outbox, carrying the trace context of the bet that caused
/// it. Returns the level-up event ids.
async fn write_outbox(
    tx: &mut Transaction<'_, Postgres>,
    changes: &Changes,
    batch: &[Incoming],
    topic: &str,
    rules: &RuleSet,
) -> anyhow::Result<Vec<Uuid>> {
    let n = changes.level_ups.len();
    let mut ids = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut payloads: Vec<Vec<u8>> = Vec::with_capacity(n);
    let mut all_headers = Vec::with_capacity(n);
    for up in &changes.level_ups {
        let name = rules
            .levels
            .tier(up.to)
            .map(|t| t.name.clone())
            .unwrap_or_else(|| up.name.clone());
        let event = Envelope::new(
            reward_types::LEVEL_UP,
            "concierge",
            Some(up.player_id),
            LevelUp {
                from: up.from,
                to: up.to,
                name,
            },
        );
        let headers: Vec<(String, String)> = batch
            .get(up.index)
            .map(|m| {
                m.headers
                    .iter()
                    .filter(|(k, _)| k == "traceparent" || k == "tracestate")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        keys.push(event.key());
        payloads.push(event.to_vec());
        all_headers.push(serde_json::to_string(&headers)?);
        ids.push(event.event_id);
    }
    if !ids.is_empty() {
        // One statement for the batch's level-ups, in order (the relay publishes by id).
        sqlx::query(
            "INSERT INTO outbox (event_id, topic, key, payload, headers)
             SELECT e, $1, k, p, h::jsonb FROM unnest($2::uuid[], $3::text[], $4::bytea[], $5::text[])
                    WITH ORDINALITY AS u(e, k, p, h, n)
              ORDER BY n",
        )
        .bind(topic)
        .bind(&ids)
        .bind(keys)
        .bind(payloads)
        .bind(all_headers)
        .execute(&mut **tx)
        .await
        .map_err(context("writing level-ups to the outbox"))?;
    }
    Ok(ids)
}

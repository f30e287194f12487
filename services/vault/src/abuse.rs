//! Abuse signals (blueprint §4): recorded in `abuse_signals`, counted in `vault_abuse_signals_total{signal}`,
//! and turned into a lock by the policy once a player collects too many within the window.
//!
//! Velocity and insufficient-funds hammering are measured per Vault task in memory (sliding windows):
//! cheap on the bet path, and with several tasks each one still sees a burst aimed at it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::AbusePolicy;

/// The kinds of signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// A bet outside the limits.
    OverLimit,
    /// Too many rollbacks for the bets.
    RollbackRatio,
    /// Too many bets per second.
    Velocity,
    /// Repeated bets without the funds.
    InsufficientFundsHammering,
    /// A reused idempotency key with another request.
    IdempotencyConflict,
    /// A bad or stale request signature.
    SignatureFailure,
}

impl Signal {
    /// Name in the database and the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::OverLimit => "over_limit",
            Signal::RollbackRatio => "rollback_ratio",
            Signal::Velocity => "velocity",
            Signal::InsufficientFundsHammering => "insufficient_funds_hammering",
            Signal::IdempotencyConflict => "idempotency_conflict",
            Signal::SignatureFailure => "signature_failure",
        }
    }
}

/// Detects and records signals.
pub struct AbuseDetector {
    policy: AbusePolicy,
    bets: Mutex<HashMap<Uuid, VecDeque<Instant>>>,
    refusals: Mutex<HashMap<Uuid, VecDeque<Instant>>>,
    last_signal: Mutex<HashMap<(Uuid, Signal), Instant>>,
}

impl std::fmt::Debug for AbuseDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AbuseDetector")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Keep at most one derived signal (velocity, rollback ratio, insufficient-funds hammering) of a kind per
/// player per minute: a burst is one finding, not hundreds. Refused requests (over limit, idempotency
/// conflict, bad signature) are recorded each time.
const SIGNAL_COOLDOWN: Duration = Duration::from_secs(60);

fn count_recent(
    map: &Mutex<HashMap<Uuid, VecDeque<Instant>>>,
    player: Uuid,
    window: Duration,
) -> usize {
    let Ok(mut map) = map.lock() else { return 0 };
    // Bound memory: forget idle players now and then.
    if map.len() > 100_000 {
        map.retain(|_, times| times.back().is_some_and(|t| t.elapsed() < window));
    }
    let times = map.entry(player).or_default();
    let now = Instant::now();
    times.push_back(now);
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) > window)
    {
        times.pop_front();
    }
    times.len()
}

impl AbuseDetector {
    /// A detector applying `policy`.
    pub fn new(policy: AbusePolicy) -> Self {
        Self {
            policy,
            bets: Mutex::default(),
            refusals: Mutex::default(),
            last_signal: Mutex::default(),
        }
    }

    fn cooled_down(&self, player: Uuid, signal: Signal) -> bool {
        let Ok(mut last) = self.last_signal.lock() else {
            return true;
        };
        match last.get(&(player, signal)) {
            Some(at) if at.elapsed() < SIGNAL_COOLDOWN => false,
            _ => {
                last.insert((player, signal), Instant::now());
                true
            }
        }
    }

    /// A bet attempt by `player`; records a `velocity` signal when over the limit.
    pub async fn note_bet(&self, pool: &PgPool, player: Uuid) {
        let recent = count_recent(&self.bets, player, Duration::from_secs(1));
        if recent > self.policy.max_bets_per_second && self.cooled_down(player, Signal::Velocity) {
            self.record(
                pool,
                Some(player),
                Signal::Velocity,
                json!({ "bets_last_second": recent }),
            )
            .await;
        }
    }

    /// An `insufficient_funds` refusal for `player`.
    pub async fn note_insufficient_funds(&self, pool: &PgPool, player: Uuid) {
        let recent = count_recent(&self.refusals, player, Duration::from_secs(60));
        if recent >= self.policy.insufficient_funds_per_minute
            && self.cooled_down(player, Signal::InsufficientFundsHammering)
        {
            self.record(
                pool,
                Some(player),
                Signal::InsufficientFundsHammering,
                json!({ "refusals_last_minute": recent }),
            )
            .await;
        }
    }

    /// After a rollback: the player's rollbacks/bets over the window.
    pub async fn check_rollback_ratio(&self, pool: &PgPool, player: Uuid) {
        let window = self.policy.window.as_secs_f64();
        let counts: Result<(i64, i64), sqlx::Error> = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE kind = 'bet'), count(*) FILTER (WHERE kind = 'rollback')
             FROM transfers WHERE player_id = $1 AND created_at > now() - make_interval(secs => $2)",
        )
        .bind(player)
        .bind(window)
        .fetch_one(pool)
        .await;
        let (bets, rollbacks) = match counts {
            Ok(counts) => counts,
            Err(error) => {
                tracing::warn!(player_id = %player, error = %error, "could not compute the rollback ratio");
                return;
            }
        };
        if bets >= self.policy.rollback_min_bets
            && rollbacks as f64 / bets as f64 > self.policy.rollback_ratio
            && self.cooled_down(player, Signal::RollbackRatio)
        {
            self.record(
                pool,
                Some(player),
                Signal::RollbackRatio,
                json!({ "bets": bets, "rollbacks": rollbacks, "threshold": self.policy.rollback_ratio }),
            )
            .await;
        }
    }

    /// Record a signal and apply the lock policy. Never fails the caller: problems are logged.
    pub async fn record(
        &self,
        pool: &PgPool,
        player: Option<Uuid>,
        signal: Signal,
        details: Value,
    ) {
        metrics::counter!("vault_abuse_signals_total", "signal" => signal.as_str()).increment(1);
        tracing::warn!(player_id = ?player, signal = signal.as_str(), details = %details, "abuse signal");
        let inserted = sqlx::query(
            "INSERT INTO abuse_signals (player_id, signal, details) VALUES ($1, $2, $3)",
        )
        .bind(player)
        .bind(signal.as_str())
        .bind(&details)
        .execute(pool)
        .await;
        if let Err(error) = inserted {
            tracing::error!(signal = signal.as_str(), error = %error, "could not record an abuse signal");
            return;
        }
        let Some(player) = player else { return };
        if self.policy.lock_after_signals == 0 {
            return;
        }
        let count: Result<i64, sqlx::Error> = sqlx::query_scalar(
            "SELECT count(*) FROM abuse_signals
             WHERE player_id = $1 AND created_at > now() - make_interval(secs => $2)",
        )
        .bind(player)
        .bind(self.policy.window.as_secs_f64())
        .fetch_one(pool)
        .await;
        match count {
            Ok(count) if count >= i64::from(self.policy.lock_after_signals) => {
                let reason = format!(
                    "{count} abuse signals within the policy window (latest: {})",
                    signal.as_str()
                );
                if let Err(error) = crate::players::lock(pool, player, &reason, "policy").await {
                    tracing::error!(player_id = %player, error = %error, "could not lock a player");
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(player_id = %player, error = %error, "could not count abuse signals")
            }
        }
    }
}

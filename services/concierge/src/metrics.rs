//! Concierge's metric names (dashboards and alert rules are written against them; see the README).
//!
//! Every series also carries `service="concierge"` (added by the recorder).

/// Counter `{event_type, outcome}`: events handled. `outcome` is `ok` (applied), `duplicate` (already
/// processed, skipped), `ignored` (an event type Concierge does not act on), `orphan` (a rollback whose bet
/// was never seen: recorded, no effect) or `invalid` (sent to the DLQ).
pub const EVENTS_PROCESSED: &str = "concierge_events_processed_total";
/// Histogram: seconds from a batch's first message in hand to its commit, observed once per event.
pub const EVENT_PROCESSING_DURATION: &str = "concierge_event_processing_duration_seconds";
/// Counter `{kind}` (`vip`, `leaderboard`): points awarded by bets.
pub const POINTS_AWARDED: &str = "concierge_points_awarded_total";
/// Counter `{kind}` (`vip`, `leaderboard`): points taken back by rollbacks.
pub const POINTS_REVERSED: &str = "concierge_points_reversed_total";
/// Counter `{level}` (the new level number): level-ups.
pub const LEVEL_UPS: &str = "concierge_level_ups_total";
/// Counter `{level}` (the new level number): levels lost because a rollback took wagering back below a
/// threshold.
pub const LEVEL_DOWNS: &str = "concierge_level_downs_total";
/// Counter: awards (or player totals) the verifier could not reproduce. Must stay 0.
pub const REWARD_DISCREPANCIES: &str = "concierge_reward_discrepancies_total";
/// Counter: awards the verifier recomputed.
pub const AWARDS_VERIFIED: &str = "concierge_awards_verified_total";
/// Gauge: player windows whose wagering differed from Vault's in the latest reconciliation run.
pub const RECONCILIATION_MISMATCHES: &str = "concierge_reconciliation_mismatches";
/// Counter `{reason}`: reconciliation runs that could not finish (Vault unreachable, refused, ...).
pub const RECONCILIATION_ERRORS: &str = "concierge_reconciliation_errors_total";
/// Counter: player windows compared with Vault.
pub const RECONCILIATION_CHECKS: &str = "concierge_reconciliation_checks_total";
/// Counter: bets whose game category has no rate of its own (the default rate applied).
pub const UNKNOWN_GAME_CATEGORY: &str = "concierge_unknown_game_category_total";
/// Gauge: seconds the leaderboards are behind the event stream (commit time minus the newest event's time
/// at the last commit; growing while a batch keeps failing).
pub const LEADERBOARD_UPDATE_DELAY: &str = "concierge_leaderboard_update_delay_seconds";
/// Counter: players flagged for earning more VIP points in an hour than the configured threshold.
pub const ABNORMAL_POINT_ACCUMULATION: &str = "concierge_abnormal_point_accumulation_total";
/// Gauge: outbox rows (level-ups) not yet published.
pub const OUTBOX_PENDING: &str = "concierge_outbox_pending";
/// Counter: outbox rows published (by the shared relay).
pub const OUTBOX_PUBLISHED: &str = "concierge_outbox_published_total";
/// Gauge: age of the oldest unpublished outbox row, seconds.
pub const OUTBOX_OLDEST_AGE: &str = "concierge_outbox_oldest_age_seconds";
/// Counter `{reason}`: refused API requests (token missing, expired, wrong role...).
pub const AUTH_FAILURES: &str = "concierge_auth_failures_total";

/// Register every series at zero, so dashboards and alert rules see them before the first event.
pub fn describe() {
    use metrics::{counter, gauge};
    for kind in ["vip", "leaderboard"] {
        counter!(POINTS_AWARDED, "kind" => kind).absolute(0);
        counter!(POINTS_REVERSED, "kind" => kind).absolute(0);
    }
    counter!(REWARD_DISCREPANCIES).absolute(0);
    counter!(UNKNOWN_GAME_CATEGORY).absolute(0);
    counter!(ABNORMAL_POINT_ACCUMULATION).absolute(0);
    counter!(AWARDS_VERIFIED).absolute(0);
    counter!(RECONCILIATION_CHECKS).absolute(0);
    gauge!(RECONCILIATION_MISMATCHES).set(0.0);
    gauge!(LEADERBOARD_UPDATE_DELAY).set(0.0);
    gauge!(OUTBOX_PENDING).set(0.0);
    gauge!(OUTBOX_OLDEST_AGE).set(0.0);
}

/// Publish the level-up and level-down counters at zero for every level of `levels` above the first (the
/// ones a player can reach), so the level-up panel reads 0 before anyone levels up. Call after
/// [`describe`], with the rule set in force at start.
pub fn describe_levels(levels: &crate::domain::levels::LevelTable) {
    for tier in levels.tiers().iter().filter(|t| t.level > 0) {
        metrics::counter!(LEVEL_UPS, "level" => tier.level.to_string()).increment(0);
        metrics::counter!(LEVEL_DOWNS, "level" => tier.level.to_string()).increment(0);
    }
}

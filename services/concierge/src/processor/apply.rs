//! Applying a batch of new events to the players' state, in memory and in order (pure: the caller loads
//! the state and writes the changes in one transaction).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, DurationRound as _, NaiveDate, TimeDelta, Utc};
use uuid::Uuid;

use super::parse::{Action, Event};
use crate::domain::{
    board::Board,
    money::EurAmount,
    rules::{Award, BetInput, RuleSet},
};

/// A player's reward state (one `players` row).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlayerState {
    /// Level number.
    pub level: u32,
    /// VIP points.
    pub vip_points: i64,
    /// Lifetime wagering, net of rollbacks.
    pub lifetime_wagered: EurAmount,
    /// Lifetime winnings.
    pub lifetime_won: EurAmount,
    /// Bets counted (net of rollbacks).
    pub bets: i64,
    /// Preferred currency (from `player.registered`).
    pub currency: Option<String>,
    /// Registration time.
    pub registered_at: Option<DateTime<Utc>>,
    /// Locked by Vault.
    pub locked: bool,
    /// UTC hour of the player's latest bet (for abnormal-accumulation detection).
    pub points_hour: Option<DateTime<Utc>>,
    /// VIP points earned by bets of that hour.
    pub points_in_hour: i64,
}

/// An award already stored (or created earlier in this batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAward {
    /// The bet's player.
    pub player_id: Uuid,
    /// The bet's time.
    pub occurred_at: DateTime<Utc>,
    /// The bet's stake.
    pub amount_eur: EurAmount,
    /// VIP points it earned.
    pub vip_points: i64,
    /// Leaderboard points it earned.
    pub leaderboard_points: i64,
    /// Whether a rollback already reversed it.
    pub rolled_back: bool,
}

/// What the batch starts from.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Every player the batch's events concern.
    pub players: HashMap<Uuid, PlayerState>,
    /// Awards of the bets named by the batch (as bets or as rollback references).
    pub awards: HashMap<Uuid, StoredAward>,
    /// Rollbacks recorded earlier whose bet was not seen, by the bet's transfer id.
    pub tombstones: HashMap<Uuid, DateTime<Utc>>,
}

/// A new `awards` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAward {
    /// The bet's transfer id.
    pub transfer_id: Uuid,
    /// The bet event.
    pub event_id: Uuid,
    /// The player.
    pub player_id: Uuid,
    /// The bet's time.
    pub occurred_at: DateTime<Utc>,
    /// The stake.
    pub amount_eur: EurAmount,
    /// Game category as sent.
    pub game_category: Option<String>,
    /// Lifetime wagering before the bet.
    pub lifetime_before: EurAmount,
    /// The computed award.
    pub award: Award,
    /// Set when the bet arrived after its rollback (stored for the record, no effect).
    pub rolled_back_at: Option<DateTime<Utc>>,
}

/// A rollback that reversed a stored award.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reversal {
    /// The bet's transfer id.
    pub transfer_id: Uuid,
    /// The rollback's time.
    pub rolled_back_at: DateTime<Utc>,
    /// The rollback event.
    pub event_id: Uuid,
}

/// A rollback whose bet is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// The bet's transfer id.
    pub transfer_id: Uuid,
    /// The rollback event.
    pub event_id: Uuid,
    /// The player.
    pub player_id: Uuid,
    /// The rollback's time.
    pub occurred_at: DateTime<Utc>,
}

/// Change of one leaderboard row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeriodDelta {
    /// Wagering change in EUR (negative for rollbacks), exact.
    pub wagered_eur: rust_decimal::Decimal,
    /// Points change.
    pub points: i64,
    /// Latest time of an event that changed the row.
    pub reached_at: Option<DateTime<Utc>>,
}

/// A level change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelChange {
    /// The player.
    pub player_id: Uuid,
    /// The event that caused it.
    pub event_id: Uuid,
    /// Index of that event in the batch (for its trace context).
    pub index: usize,
    /// Old level.
    pub from: u32,
    /// New level.
    pub to: u32,
    /// New level's name.
    pub name: String,
}

/// A player hour flagged for abnormal point accumulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abnormal {
    /// The player.
    pub player_id: Uuid,
    /// The bet that crossed the threshold.
    pub event_id: Uuid,
    /// The UTC hour.
    pub hour: DateTime<Utc>,
    /// VIP points in that hour, this bet included.
    pub points: i64,
}

/// What happened to one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Applied.
    Ok,
    /// Already processed (same event, or the same transfer in another event): no effect.
    Duplicate,
    /// An event type Concierge does not act on.
    Ignored,
    /// A rollback of a bet never seen: recorded, no effect.
    Orphan,
    /// Refused, sent to the DLQ.
    Invalid,
}

impl Outcome {
    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::Orphan => "orphan",
            Outcome::Invalid => "invalid",
        }
    }
}

/// Everything the batch changes, plus what to report after the commit.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// New awards.
    pub new_awards: Vec<NewAward>,
    /// Awards reversed by rollbacks.
    pub reversals: Vec<Reversal>,
    /// Rollbacks of unknown bets.
    pub tombstones: Vec<Tombstone>,
    /// Final state of every player the batch touched.
    pub players: BTreeMap<Uuid, PlayerState>,
    /// Leaderboard / period wagering changes by (board, period start, player).
    pub periods: BTreeMap<(Board, NaiveDate, Uuid), PeriodDelta>,
    /// Player hours whose VIP points went over the abnormal-accumulation threshold.
    pub abnormal: Vec<Abnormal>,
    /// Level-ups (one per event that crossed one or more thresholds).
    pub level_ups: Vec<LevelChange>,
    /// Levels lost to rollbacks.
    pub level_downs: Vec<LevelChange>,
    /// Outcome of each event, by `event_type` label.
    pub outcomes: Vec<(&'static str, Outcome)>,
    /// VIP points awarded.
    pub vip_awarded: u64,
    /// Leaderboard points awarded.
    pub leaderboard_awarded: u64,
    /// VIP points reversed.
    pub vip_reversed: u64,
    /// Leaderboard points reversed.
    pub leaderboard_reversed: u64,
    /// Bets whose category had no rate of its own.
    pub unknown_categories: u64,
    /// Time of the newest event applied.
    pub newest_event: Option<DateTime<Utc>>,
}

/// A batch that cannot be applied (a bug or corrupted state, never bad input: that is refused earlier).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The caller did not load a player the batch needs.
    #[error("player {0} was not loaded")]
    PlayerNotLoaded(Uuid),
    /// An award overflowed.
    #[error(transparent)]
    Overflow(#[from] crate::domain::rules::AwardOverflow),
    /// Reversing an award would take a total below zero.
    #[error("reversing bet {transfer_id} would make player {player_id}'s {what} negative")]
    NegativeTotal {
        /// The bet.
        transfer_id: Uuid,
        /// The player.
        player_id: Uuid,
        /// Which total.
        what: &'static str,
    },
}

/// The UTC hour containing `at`.
pub fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at)
}

/// Apply `events` (new ones only, in batch order) to `loaded` under `rules`; a player earning more than
/// `abnormal_points_per_hour` VIP points within one UTC hour (by bet time) is flagged once for that hour.
pub fn apply(
    rules: &RuleSet,
    loaded: &mut Loaded,
    events: &[Event],
    abnormal_points_per_hour: i64,
) -> Result<Changes, ApplyError> {
    let mut changes = Changes::default();
    for event in events {
        let outcome = apply_one(rules, loaded, event, abnormal_points_per_hour, &mut changes)?;
        if outcome == Outcome::Ok {
            changes.newest_event = changes.newest_event.max(Some(event.occurred_at));
        }
        changes.outcomes.push((event.event_type, outcome));
    }
    Ok(changes)
}

fn apply_one(
    rules: &RuleSet,
    loaded: &mut Loaded,
    event: &Event,
    abnormal_points_per_hour: i64,
    changes: &mut Changes,
) -> Result<Outcome, ApplyError> {
    let player_id = event.player_id;
    let player = loaded
        .players
        .get_mut(&player_id)
        .ok_or(ApplyError::PlayerNotLoaded(player_id))?;
    let outcome = match &event.action {
        Action::Bet {
            transfer_id,
            amount_eur,
            game_category,
        } => {
            if loaded.awards.contains_key(transfer_id) {
                tracing::warn!(player_id = %player_id, event_id = %event.event_id,
                    transfer_id = %transfer_id, "bet transfer already awarded by another event, skipped");
                return Ok(Outcome::Duplicate);
            }
            let input = BetInput {
                amount_eur: *amount_eur,
                game_category: game_category.as_deref(),
                lifetime_before: player.lifetime_wagered,
            };
            let award = rules.award(&input)?;
            let tombstone = loaded.tombstones.get(transfer_id).copied();
            loaded.awards.insert(
                *transfer_id,
                StoredAward {
                    player_id,
                    occurred_at: event.occurred_at,
                    amount_eur: *amount_eur,
                    vip_points: award.vip_points,
                    leaderboard_points: award.leaderboard_points,
                    rolled_back: tombstone.is_some(),
                },
            );
            changes.new_awards.push(NewAward {
                transfer_id: *transfer_id,
                event_id: event.event_id,
                player_id,
                occurred_at: event.occurred_at,
                amount_eur: *amount_eur,
                game_category: game_category.clone(),
                lifetime_before: player.lifetime_wagered,
                award: award.clone(),
                rolled_back_at: tombstone,
            });
            if tombstone.is_some() {
                // Vault refuses a bet after its rollback; if one arrives anyway it counts for nothing.
                tracing::warn!(player_id = %player_id, event_id = %event.event_id,
                    transfer_id = %transfer_id, "bet arrived after its rollback, recorded as rolled back");
                return Ok(Outcome::Ok);
            }
            if !award.category_known {
                changes.unknown_categories += 1;
            }
            player.lifetime_wagered = award.lifetime_after;
            player.vip_points += award.vip_points;
            player.bets += 1;
            if award.level_after > player.level {
                let name = rules
                    .levels
                    .tier(award.level_after)
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                changes.level_ups.push(LevelChange {
                    player_id,
                    event_id: event.event_id,
                    index: event.index,
                    from: player.level,
                    to: award.level_after,
                    name,
                });
            }
            player.level = award.level_after;
            changes.vip_awarded += award.vip_points as u64;
            changes.leaderboard_awarded += award.leaderboard_points as u64;
            add_period(
                changes,
                player_id,
                event.occurred_at,
                event.occurred_at,
                amount_eur.get(),
                award.leaderboard_points,
            );
            let hour = hour_of(event.occurred_at);
            let before = match player.points_hour {
                Some(current) if current == hour => player.points_in_hour,
                // A late bet of an earlier hour is not tracked (the window follows the newest bet).
                Some(current) if current > hour => i64::MAX,
                _ => {
                    player.points_hour = Some(hour);
                    0
                }
            };
            if before != i64::MAX {
                player.points_in_hour = before + award.vip_points;
                if before <= abnormal_points_per_hour
                    && player.points_in_hour > abnormal_points_per_hour
                {
                    changes.abnormal.push(Abnormal {
                        player_id,
                        event_id: event.event_id,
                        hour,
                        points: player.points_in_hour,
                    });
                }
            }
            Outcome::Ok
        }
        Action::Rollback { bet_transfer_id } => match loaded.awards.get_mut(bet_transfer_id) {
            Some(award) if award.player_id != player_id => {
                tracing::warn!(player_id = %player_id, event_id = %event.event_id,
                        transfer_id = %bet_transfer_id, bet_player_id = %award.player_id,
                        "rollback names another player's bet, ignored");
                Outcome::Orphan
            }
            Some(award) if award.rolled_back => Outcome::Duplicate,
            Some(award) => {
                award.rolled_back = true;
                let negative = |what| ApplyError::NegativeTotal {
                    transfer_id: *bet_transfer_id,
                    player_id,
                    what,
                };
                if player.lifetime_wagered < award.amount_eur {
                    return Err(negative("lifetime wagering"));
                }
                if player.vip_points < award.vip_points {
                    return Err(negative("vip points"));
                }
                player.lifetime_wagered = player.lifetime_wagered.minus(award.amount_eur);
                player.vip_points -= award.vip_points;
                player.bets -= 1;
                let level = rules.levels.level_for(player.lifetime_wagered).level;
                if level < player.level {
                    changes.level_downs.push(LevelChange {
                        player_id,
                        event_id: event.event_id,
                        index: event.index,
                        from: player.level,
                        to: level,
                        name: rules
                            .levels
                            .tier(level)
                            .map(|t| t.name.clone())
                            .unwrap_or_default(),
                    });
                }
                player.level = level;
                changes.vip_reversed += award.vip_points as u64;
                changes.leaderboard_reversed += award.leaderboard_points as u64;
                let (bet_time, amount, points, vip) = (
                    award.occurred_at,
                    award.amount_eur.get(),
                    award.leaderboard_points,
                    award.vip_points,
                );
                add_period(
                    changes,
                    player_id,
                    bet_time,
                    event.occurred_at,
                    -amount,
                    -points,
                );
                if player.points_hour == Some(hour_of(bet_time)) {
                    player.points_in_hour = (player.points_in_hour - vip).max(0);
                }
                changes.reversals.push(Reversal {
                    transfer_id: *bet_transfer_id,
                    rolled_back_at: event.occurred_at,
                    event_id: event.event_id,
                });
                Outcome::Ok
            }
            None if loaded.tombstones.contains_key(bet_transfer_id) => Outcome::Duplicate,
            None => {
                tracing::warn!(player_id = %player_id, event_id = %event.event_id,
                        transfer_id = %bet_transfer_id, "rollback of a bet never seen, recorded without effect");
                loaded
                    .tombstones
                    .insert(*bet_transfer_id, event.occurred_at);
                changes.tombstones.push(Tombstone {
                    transfer_id: *bet_transfer_id,
                    event_id: event.event_id,
                    player_id,
                    occurred_at: event.occurred_at,
                });
                Outcome::Orphan
            }
        },
        Action::Win { amount_eur } => {
            player.lifetime_won = player.lifetime_won.plus(*amount_eur);
            Outcome::Ok
        }
        Action::Registered { currency } => {
            player.currency = Some(currency.clone());
            player.registered_at = Some(player.registered_at.unwrap_or(event.occurred_at));
            Outcome::Ok
        }
        Action::Lock(locked) => {
            player.locked = *locked;
            Outcome::Ok
        }
    };
    changes.players.insert(player_id, player.clone());
    Ok(outcome)
}

/// Add a bet's (or its rollback's) wagering and points to the four boards of the bet's periods.
fn add_period(
    changes: &mut Changes,
    player_id: Uuid,
    bet_time: DateTime<Utc>,
    event_time: DateTime<Utc>,
    amount: rust_decimal::Decimal,
    points: i64,
) {
    for board in Board::ALL {
        let delta = changes
            .periods
            .entry((board, board.period_start(bet_time), player_id))
            .or_default();
        delta.wagered_eur += amount;
        delta.points += points;
        delta.reached_at = delta.reached_at.max(Some(event_time));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::levels::{LevelTable, TierSpec};
    use rust_decimal::Decimal;

    fn rules() -> RuleSet {
        let tier = |name: &str, threshold: i64, multiplier: &str| TierSpec {
            name: name.into(),
            threshold_eur: Decimal::from(threshold),
            multiplier: multiplier.parse().unwrap(),
        };
        RuleSet {
            version: 1,
            levels: LevelTable::new(vec![
                tier("Bronze", 0, "1"),
                tier("Silver", 1000, "1.1"),
                tier("Gold", 10000, "1.25"),
            ])
            .unwrap(),
            rates: [("slots".to_owned(), Decimal::ONE)].into_iter().collect(),
            default_rate: "0.1".parse().unwrap(),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    struct Stream {
        player: Uuid,
        events: Vec<Event>,
    }

    impl Stream {
        fn new() -> Self {
            Self {
                player: Uuid::now_v7(),
                events: vec![],
            }
        }
        fn push(&mut self, time: &str, action: Action) -> Uuid {
            let event_id = Uuid::now_v7();
            self.events.push(Event {
                index: self.events.len(),
                event_id,
                event_type: "test",
                player_id: self.player,
                occurred_at: at(time),
                action,
            });
            event_id
        }
        fn bet(&mut self, time: &str, amount: &str, category: Option<&str>) -> Uuid {
            let transfer_id = Uuid::now_v7();
            self.push(
                time,
                Action::Bet {
                    transfer_id,
                    amount_eur: amount.parse().unwrap(),
                    game_category: category.map(str::to_owned),
                },
            );
            transfer_id
        }
        fn rollback(&mut self, time: &str, bet: Uuid) {
            self.push(
                time,
                Action::Rollback {
                    bet_transfer_id: bet,
                },
            );
        }
        fn run(&self) -> (Loaded, Changes) {
            let mut loaded = Loaded::default();
            loaded.players.insert(self.player, PlayerState::default());
            let changes = apply(&rules(), &mut loaded, &self.events, 1500).unwrap();
            (loaded, changes)
        }
    }

    #[test]
    fn a_bet_crossing_two_thresholds_is_one_level_up_from_the_old_level_to_the_new() {
        let mut s = Stream::new();
        s.bet("2025-03-01T10:00:00Z", "500", Some("slots"));
        s.bet("2025-03-01T10:01:00Z", "12000", Some("slots"));
        let (_, changes) = s.run();
        assert_eq!(changes.level_ups.len(), 1);
        let up = &changes.level_ups[0];
        assert_eq!((up.from, up.to, up.name.as_str()), (0, 2, "Gold"));
        let player = &changes.players[&s.player];
        assert_eq!(player.level, 2);
        assert_eq!(player.vip_points, 500 + 12000);
        assert_eq!(player.lifetime_wagered.to_string(), "12500.00");
    }

    #[test]
    fn a_rollback_reverses_exactly_what_its_bet_added() {
        let mut s = Stream::new();
        s.bet("2025-03-01T10:00:00Z", "900", Some("slots"));
        let big = s.bet("2025-03-01T10:01:00Z", "200.50", Some("slots"));
        s.bet("2025-03-01T10:02:00Z", "10", Some("crash"));
        // The rollback comes the next day; it reverses the bet in the bet's periods.
        s.rollback("2025-03-02T08:00:00Z", big);
        let (loaded, changes) = s.run();
        let player = &changes.players[&s.player];
        assert_eq!(player.lifetime_wagered.to_string(), "910.00");
        // 900 x 1 x 1.0 + 10 x 0.1 x 1.0 (the 200.50 bet's 200 points are gone).
        assert_eq!(player.vip_points, 901);
        assert_eq!((player.level, player.bets), (0, 2));
        assert_eq!(changes.level_downs.len(), 1);
        assert_eq!(changes.level_ups.len(), 1);
        let day = changes.periods[&(Board::Daily, "2025-03-01".parse().unwrap(), s.player)];
        assert_eq!(day.wagered_eur, Decimal::from(910));
        assert_eq!(day.points, 910);
        assert_eq!(day.reached_at, Some(at("2025-03-02T08:00:00Z")));
        assert!(!changes.periods.contains_key(&(
            Board::Daily,
            "2025-03-02".parse().unwrap(),
            s.player
        )));
        assert_eq!(changes.players[&s.player].points_in_hour, 901);
        assert!(loaded.awards[&big].rolled_back);
        assert_eq!(changes.unknown_categories, 1);
    }

    #[test]
    fn duplicate_rollbacks_and_rollbacks_of_unknown_bets_change_nothing() {
        let mut s = Stream::new();
        let bet = s.bet("2025-03-01T10:00:00Z", "100", Some("slots"));
        s.rollback("2025-03-01T10:01:00Z", bet);
        s.rollback("2025-03-01T10:02:00Z", bet);
        let unknown = Uuid::now_v7();
        s.rollback("2025-03-01T10:03:00Z", unknown);
        s.rollback("2025-03-01T10:04:00Z", unknown);
        let (_, changes) = s.run();
        let outcomes: Vec<_> = changes.outcomes.iter().map(|(_, o)| *o).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Ok,
                Outcome::Ok,
                Outcome::Duplicate,
                Outcome::Orphan,
                Outcome::Duplicate
            ]
        );
        // Nothing but the hour being tracked changed.
        let player = PlayerState {
            points_hour: None,
            ..changes.players[&s.player].clone()
        };
        assert_eq!(player, PlayerState::default());
        assert_eq!(changes.tombstones.len(), 1);
    }

    #[test]
    fn a_bet_arriving_after_its_rollback_is_recorded_without_effect() {
        let mut s = Stream::new();
        let transfer_id = Uuid::now_v7();
        s.rollback("2025-03-01T10:00:00Z", transfer_id);
        s.push(
            "2025-03-01T10:01:00Z",
            Action::Bet {
                transfer_id,
                amount_eur: "5000".parse().unwrap(),
                game_category: Some("slots".into()),
            },
        );
        let (_, changes) = s.run();
        // Nothing but the hour being tracked changed.
        let player = PlayerState {
            points_hour: None,
            ..changes.players[&s.player].clone()
        };
        assert_eq!(player, PlayerState::default());
        assert_eq!(changes.new_awards.len(), 1);
        assert!(changes.new_awards[0].rolled_back_at.is_some());
        assert!(changes.level_ups.is_empty());
        assert!(changes.periods.is_empty());
    }

    #[test]
    fn the_same_transfer_in_another_event_is_a_duplicate() {
        let mut s = Stream::new();
        let transfer_id = s.bet("2025-03-01T10:00:00Z", "100", Some("slots"));
        s.push(
            "2025-03-01T10:00:00Z",
            Action::Bet {
                transfer_id,
                amount_eur: "100".parse().unwrap(),
                game_category: Some("slots".into()),
            },
        );
        let (_, changes) = s.run();
        assert_eq!(changes.players[&s.player].vip_points, 100);
        assert_eq!(changes.outcomes[1].1, Outcome::Duplicate);
    }

    #[test]
    fn wins_registrations_and_locks_touch_only_their_fields() {
        let mut s = Stream::new();
        s.push(
            "2025-03-01T09:00:00Z",
            Action::Registered {
                currency: "EUR".into(),
            },
        );
        s.push(
            "2025-03-01T10:00:00Z",
            Action::Win {
                amount_eur: "42.10".parse().unwrap(),
            },
        );
        s.push("2025-03-01T11:00:00Z", Action::Lock(true));
        let (_, changes) = s.run();
        let player = &changes.players[&s.player];
        assert_eq!(player.lifetime_won.to_string(), "42.10");
        assert_eq!(player.registered_at, Some(at("2025-03-01T09:00:00Z")));
        assert!(player.locked);
        assert_eq!((player.vip_points, player.bets), (0, 0));
    }

    #[test]
    fn more_vip_points_in_an_hour_than_the_threshold_is_flagged_once_per_hour() {
        let mut s = Stream::new();
        s.bet("2025-03-01T10:05:00Z", "1000", Some("slots"));
        let undone = s.bet("2025-03-01T10:10:00Z", "400", Some("slots"));
        // A rollback takes its points out of the hour again.
        s.rollback("2025-03-01T10:11:00Z", undone);
        s.bet("2025-03-01T10:20:00Z", "400", Some("slots"));
        // 1000 + 440 (Silver now): 1440, not over 1500.
        s.bet("2025-03-01T10:30:00Z", "60", Some("slots"));
        // 1440 + 66 = 1506: flagged.
        s.bet("2025-03-01T10:40:00Z", "100", Some("slots"));
        // Same hour: not flagged again.
        s.bet("2025-03-01T11:00:00Z", "1000", Some("slots"));
        // A new hour starts from zero.
        let (_, changes) = s.run();
        assert_eq!(changes.abnormal.len(), 1, "{:?}", changes.abnormal);
        assert_eq!(changes.abnormal[0].hour, at("2025-03-01T10:00:00Z"));
        assert_eq!(changes.abnormal[0].points, 1506);
        let player = &changes.players[&s.player];
        assert_eq!(player.points_hour, Some(at("2025-03-01T11:00:00Z")));
        assert_eq!(player.points_in_hour, 1100);
    }

    #[test]
    fn hours_are_utc_hours() {
        assert_eq!(
            hour_of(at("2025-03-01T10:59:59.999Z")),
            at("2025-03-01T10:00:00Z")
        );
    }
}

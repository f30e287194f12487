//! The deterministic part of the simulation: who the players are (currency, abuse style, connected) and the
//! sequence of actions (player, operation, amounts) the main loop executes.
//!
//! Everything here is pure: the same seed, player count, shares and currency table give the same roster
//! and the same sequence of [`Action`]s. What the server answers never feeds back into the random
//! stream (top-ups, new game sessions and re-logins are reactions of the executor, outside the plan), so
//! a slow or failing server changes what happened, not what was chosen.

use rand::{Rng as _, SeedableRng as _, rngs::StdRng, seq::SliceRandom as _};

/// Games normal players play: `(game_id, game_category)`.
pub const GAMES: &[(&str, &str)] = &[
    ("book-of-rust", "slots"),
    ("tokio-fortune", "slots"),
    ("crab-roulette", "table"),
    ("ferris-blackjack", "table"),
    ("live-borrow-baccarat", "live"),
];

/// The game the simulator puts a low bet limit on (Vault's limits are per game and currency, not per
/// player): only [`Abuse::OverLimit`] abusers play it, and they keep betting over the limit.
pub const LIMITED_GAME: (&str, &str) = ("sim-limited-table", "table");

/// The limit on [`LIMITED_GAME`], in EUR (converted per currency).
pub const LIMITED_MAX_BET_EUR: f64 = 1.0;

/// Bets of a burst: above Vault's default `VAULT_ABUSE_MAX_BETS_PER_SECOND` (20), so a burst is a
/// `velocity` signal.
pub const BURST_BETS: std::ops::RangeInclusive<usize> = 25..=30;

/// Share of normal rounds rolled back instead of won.
pub const ROLLBACK_SHARE: f64 = 0.02;

/// Share of an abuser's rounds that it rolls back (rollback abuse).
pub const ABUSER_ROLLBACK_SHARE: f64 = 0.85;

/// Share of actions that are deposits or withdrawals.
pub const PAYMENT_SHARE: f64 = 0.02;

/// Share of actions that are chat messages (connected players only).
pub const CHAT_SHARE: f64 = 0.03;

/// Win multipliers: `(probability, low, high)`, uniform within a band. Expected value 0.96: a return to
/// player of 96% (each round's win is at least one minor unit, because Vault refuses a zero win and a
/// round is only closed by a win or a rollback).
const WIN_BANDS: &[(f64, f64, f64)] = &[
    (0.50, 0.00, 0.19),
    (0.30, 0.19, 1.50),
    (0.15, 1.50, 3.50),
    (0.05, 3.50, 7.86),
];

/// Stakes in EUR (converted to the player's currency) and their weights.
const STAKES_EUR: &[(f64, u32)] = &[
    (0.10, 15),
    (0.20, 25),
    (0.50, 25),
    (1.00, 20),
    (2.00, 10),
    (5.00, 5),
];

const CHAT_LINES: &[&str] = &[
    "good luck everyone",
    "anyone else on book of rust?",
    "that roulette table is hot tonight",
    "gg",
    "finally a win!",
    "how do the VIP levels work?",
    "blackjack or baccarat?",
    "brb coffee",
];

/// What the simulator knows of a currency (from `GET /api/v1/currencies`), amounts in minor units.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrencyInfo {
    /// ISO-style code.
    pub code: String,
    /// Decimals.
    pub exponent: u32,
    /// EUR per unit of the currency.
    pub rate_eur: f64,
    /// Deposit bounds.
    pub min_deposit: i64,
    /// Deposit bounds.
    pub max_deposit: i64,
    /// Withdrawal bounds.
    pub min_withdrawal: i64,
    /// Withdrawal bounds.
    pub max_withdrawal: i64,
}

impl CurrencyInfo {
    /// `eur` EUR in minor units of this currency (at least one unit).
    pub fn from_eur(&self, eur: f64) -> i64 {
        let rate = if self.rate_eur > 0.0 {
            self.rate_eur
        } else {
            1.0
        };
        let minor = (eur / rate * 10f64.powi(self.exponent as i32)).round();
        (minor as i64).max(1)
    }

    /// Minor units of this currency in EUR.
    pub fn to_eur(&self, minor: i64) -> f64 {
        minor as f64 / 10f64.powi(self.exponent as i32) * self.rate_eur
    }

    /// Minor units as the decimal string Vault expects (`1234`, 2 → `"12.34"`).
    pub fn format(&self, minor: i64) -> String {
        format_minor(minor, self.exponent)
    }

    /// A deposit of about `eur` EUR, within the currency's deposit bounds.
    pub fn deposit_amount(&self, eur: f64) -> i64 {
        self.from_eur(eur)
            .clamp(self.min_deposit, self.max_deposit.max(self.min_deposit))
    }
}

/// `1234`, 2 → `"12.34"`; `5`, 0 → `"5"`.
pub fn format_minor(minor: i64, exponent: u32) -> String {
    rust_decimal::Decimal::from_i128_with_scale(minor as i128, exponent).to_string()
}

/// How an abuser misbehaves, mostly. Each abuser has one main style (assigned round-robin), because
/// Vault's policy locks a player after a few signals: an abuser doing everything would be locked by its
/// first over-limit bets and never show rollback abuse or bursts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Abuse {
    /// Keeps betting over the limit of [`LIMITED_GAME`] (`over_limit` signals, refused bets).
    OverLimit,
    /// Rolls most of its rounds back (`rollback_ratio` signals).
    Rollbacks,
    /// Fires bursts of bets above the bets-per-second threshold (`velocity` signals).
    Bursts,
}

impl Abuse {
    const ALL: [Abuse; 3] = [Abuse::OverLimit, Abuse::Rollbacks, Abuse::Bursts];
}

/// One player's part in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayerPlan {
    /// Index into the currency table.
    pub currency: usize,
    /// How it misbehaves, if it does.
    pub abuse: Option<Abuse>,
    /// Kept connected over socket.io.
    pub connected: bool,
}

impl PlayerPlan {
    /// Misbehaves.
    pub fn abuser(&self) -> bool {
        self.abuse.is_some()
    }
}

/// How many of `players` a `share` is: rounded, at least one when the share is positive and there
/// are several players.
pub fn share_count(players: usize, share: f64) -> usize {
    if players == 0 || share <= 0.0 {
        return 0;
    }
    let count = (players as f64 * share.min(1.0)).round() as usize;
    count.clamp(usize::from(players > 1), players)
}

/// The roster: each player's currency, and which ones are abusers and connected.
///
/// Currencies: mostly `preferred` (EUR); when there are at least twice as many players as other
/// currencies, every other currency gets at least one player, so per-currency metrics all have volume.
pub fn roster(
    seed: u64,
    players: usize,
    currencies: &[CurrencyInfo],
    preferred: &str,
    abusers: f64,
    connected: f64,
) -> Vec<PlayerPlan> {
    // Its own stream, so the roster and the action sequence do not depend on each other's draws.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_0fc0_ffee);
    let main = currencies
        .iter()
        .position(|c| c.code == preferred)
        .unwrap_or(0);
    let others: Vec<usize> = (0..currencies.len()).filter(|i| *i != main).collect();
    let mut order: Vec<usize> = (0..players).collect();
    order.shuffle(&mut rng);
    let mut currency = vec![main; players];
    let guaranteed = if !others.is_empty() && players >= 2 * others.len() {
        others.len()
    } else {
        0
    };
    for (rank, &player) in order.iter().enumerate() {
        currency[player] = if rank < guaranteed {
            others[rank]
        } else if !others.is_empty() && rng.gen_bool(0.3) {
            others[rng.gen_range(0..others.len())]
        } else {
            main
        };
    }
    let mut pick = |count: usize| {
        let mut order: Vec<usize> = (0..players).collect();
        order.shuffle(&mut rng);
        let mut chosen = vec![false; players];
        for &i in order.iter().take(count) {
            chosen[i] = true;
        }
        chosen
    };
    let abuser = pick(share_count(players, abusers));
    // Styles round-robin over the abusers in roster order, so any two abusers differ.
    let mut styles = Abuse::ALL.iter().copied().cycle();
    let abuse: Vec<Option<Abuse>> = abuser
        .iter()
        .map(|is| if *is { styles.next() } else { None })
        .collect();
    let connected_count = if players == 0 {
        0
    } else {
        share_count(players, connected).max(1)
    };
    let connected = pick(connected_count);
    (0..players)
        .map(|i| PlayerPlan {
            currency: currency[i],
            abuse: abuse[i],
            connected: connected[i],
        })
        .collect()
}

/// How a round ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A win of this many minor units, closing the round.
    Win(i64),
    /// The bet is rolled back.
    Rollback,
}

/// A bet and how its round ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Player index.
    pub player: usize,
    /// Index into [`GAMES`], or `None` for [`LIMITED_GAME`].
    pub game: Option<usize>,
    /// Stake in minor units of the player's currency.
    pub bet: i64,
    /// Win or rollback.
    pub outcome: Outcome,
}

impl Round {
    /// `(game_id, game_category)`.
    pub fn game(&self) -> (&'static str, &'static str) {
        self.game.map_or(LIMITED_GAME, |i| GAMES[i % GAMES.len()])
    }
}

/// Deposit or withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Money in.
    Deposit,
    /// Money out.
    Withdrawal,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A bet and its win or rollback.
    Round(Round),
    /// An abuser's bet over the limit of [`LIMITED_GAME`] (refused with `bet_limit_exceeded`).
    OverLimit {
        /// Player index.
        player: usize,
        /// Stake in minor units.
        bet: i64,
    },
    /// An abuser's burst: these bets at once, then each round's outcome.
    Burst {
        /// Player index.
        player: usize,
        /// The rounds.
        rounds: Vec<Round>,
    },
    /// A deposit or withdrawal through a sandbox PSP.
    Payment {
        /// Player index.
        player: usize,
        /// Which way.
        direction: Direction,
        /// Index into the stack's PSP providers.
        provider: usize,
        /// Minor units of the player's currency.
        amount: i64,
    },
    /// A lobby chat message.
    Chat {
        /// Player index (a connected one).
        player: usize,
        /// The text.
        text: String,
    },
}

impl Action {
    /// The player acting.
    pub fn player(&self) -> usize {
        match self {
            Action::Round(round) => round.player,
            Action::OverLimit { player, .. }
            | Action::Burst { player, .. }
            | Action::Payment { player, .. }
            | Action::Chat { player, .. } => *player,
        }
    }
}

/// The action sequence: an endless, seeded iterator.
#[derive(Debug)]
pub struct Plan {
    rng: StdRng,
    roster: Vec<PlayerPlan>,
    currencies: Vec<CurrencyInfo>,
    providers: usize,
    connected: Vec<usize>,
    /// Players per currency, for the round-robin of payments.
    by_currency: Vec<(usize, Vec<usize>)>,
    payments: usize,
    chats: usize,
}

impl Plan {
    /// A plan for `roster` (see [`roster`]) with `providers` PSPs.
    pub fn new(
        seed: u64,
        roster: Vec<PlayerPlan>,
        currencies: Vec<CurrencyInfo>,
        providers: usize,
    ) -> Self {
        let connected = (0..roster.len()).filter(|i| roster[*i].connected).collect();
        let by_currency = (0..currencies.len())
            .map(|c| {
                (
                    c,
                    (0..roster.len())
                        .filter(|i| roster[*i].currency == c)
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, players)| !players.is_empty())
            .collect();
        Self {
            rng: StdRng::seed_from_u64(seed),
            roster,
            currencies,
            providers: providers.max(1),
            connected,
            by_currency,
            payments: 0,
            chats: 0,
        }
    }

    /// The roster the plan was made for.
    pub fn roster(&self) -> &[PlayerPlan] {
        &self.roster
    }

    fn currency(&self, player: usize) -> &CurrencyInfo {
        &self.currencies[self.roster[player].currency]
    }

    fn stake(&mut self, player: usize) -> i64 {
        let total: u32 = STAKES_EUR.iter().map(|(_, w)| w).sum();
        let mut draw = self.rng.gen_range(0..total);
        let mut eur = STAKES_EUR[0].0;
        for (stake, weight) in STAKES_EUR {
            if draw < *weight {
                eur = *stake;
                break;
            }
            draw -= weight;
        }
        self.currency(player).from_eur(eur)
    }

    fn round(&mut self, player: usize, game: Option<usize>, rollback_share: f64) -> Round {
        let bet = self.stake(player);
        let outcome = if self.rng.gen_bool(rollback_share) {
            Outcome::Rollback
        } else {
            Outcome::Win(((bet as f64 * win_multiplier(&mut self.rng)).round() as i64).max(1))
        };
        Round {
            player,
            game,
            bet,
            outcome,
        }
    }

    fn normal_round(&mut self, player: usize) -> Action {
        let game = self.rng.gen_range(0..GAMES.len());
        Action::Round(self.round(player, Some(game), ROLLBACK_SHARE))
    }

    /// Payments go round-robin over (currency, direction, provider), so every currency that has
    /// players sees deposits and withdrawals through every provider.
    fn payment(&mut self) -> Option<Action> {
        if self.by_currency.is_empty() {
            return None;
        }
        let k = self.payments;
        self.payments += 1;
        let (currency, players) = &self.by_currency[k % self.by_currency.len()];
        let (currency, players) = (*currency, players.clone());
        let direction = if (k / self.by_currency.len()).is_multiple_of(2) {
            Direction::Deposit
        } else {
            Direction::Withdrawal
        };
        let provider = (k / (2 * self.by_currency.len())) % self.providers;
        let player = players[self.rng.gen_range(0..players.len())];
        let info = &self.currencies[currency];
        let amount = match direction {
            Direction::Deposit => info.deposit_amount(self.rng.gen_range(20.0..150.0)),
            // Small: well below the review threshold, so the payout is requested at once.
            Direction::Withdrawal => (info.min_withdrawal as f64 * self.rng.gen_range(1.0..1.5))
                .round()
                .clamp(
                    info.min_withdrawal as f64,
                    info.max_withdrawal.max(info.min_withdrawal) as f64,
                ) as i64,
        };
        Some(Action::Payment {
            player,
            direction,
            provider,
            amount,
        })
    }

    fn chat(&mut self) -> Option<Action> {
        if self.connected.is_empty() {
            return None;
        }
        let player = self.connected[self.rng.gen_range(0..self.connected.len())];
        let line = CHAT_LINES[self.rng.gen_range(0..CHAT_LINES.len())];
        self.chats += 1;
        Some(Action::Chat {
            player,
            text: format!("{line} ({})", self.chats),
        })
    }

    fn abuse(&mut self, player: usize, style: Abuse) -> Action {
        let draw: f64 = self.rng.r#gen();
        match style {
            Abuse::OverLimit if draw < 0.5 => {
                let limit = self.currency(player).from_eur(LIMITED_MAX_BET_EUR);
                let bet = limit * self.rng.gen_range(3..=10);
                Action::OverLimit { player, bet }
            }
            Abuse::Rollbacks if draw < 0.8 => {
                let game = self.rng.gen_range(0..GAMES.len());
                Action::Round(self.round(player, Some(game), ABUSER_ROLLBACK_SHARE))
            }
            // A burst is some 50 calls (the bets, then their wins): rare enough to keep the pace.
            Abuse::Bursts if draw < 0.1 => {
                let count = self.rng.gen_range(BURST_BETS);
                let game = self.rng.gen_range(0..GAMES.len());
                let rounds = (0..count)
                    .map(|_| self.round(player, Some(game), ROLLBACK_SHARE))
                    .collect();
                Action::Burst { player, rounds }
            }
            _ => self.normal_round(player),
        }
    }
}

impl Iterator for Plan {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        if self.roster.is_empty() {
            return None;
        }
        let kind: f64 = self.rng.r#gen();
        let player = self.rng.gen_range(0..self.roster.len());
        if kind < PAYMENT_SHARE
            && let Some(payment) = self.payment()
        {
            return Some(payment);
        }
        if kind < PAYMENT_SHARE + CHAT_SHARE
            && let Some(chat) = self.chat()
        {
            return Some(chat);
        }
        Some(match self.roster[player].abuse {
            Some(style) => self.abuse(player, style),
            None => self.normal_round(player),
        })
    }
}

/// A win multiplier: the bands of [`WIN_BANDS`], expected value 0.96.
pub fn win_multiplier(rng: &mut StdRng) -> f64 {
    let mut draw: f64 = rng.r#gen();
    for (probability, low, high) in WIN_BANDS {
        if draw < *probability {
            return rng.gen_range(*low..*high);
        }
        draw -= probability;
    }
    let (_, low, high) = WIN_BANDS[WIN_BANDS.len() - 1];
    rng.gen_range(low..high)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn currencies() -> Vec<CurrencyInfo> {
        let c = |code: &str, exponent: u32, rate: f64, scale: i64| CurrencyInfo {
            code: code.into(),
            exponent,
            rate_eur: rate,
            min_deposit: 1000 * scale,
            max_deposit: 1_000_000 * scale,
            min_withdrawal: 2000 * scale,
            max_withdrawal: 500_000 * scale,
        };
        vec![
            c("BTC", 8, 60_000.0, 10),
            c("CAD", 2, 0.68, 1),
            c("EUR", 2, 1.0, 1),
            c("GBP", 2, 1.17, 1),
            c("JPY", 0, 0.0062, 1),
            c("USD", 2, 0.92, 1),
        ]
    }

    fn plan(seed: u64, players: usize, abusers: f64) -> Plan {
        let currencies = currencies();
        let roster = roster(seed, players, &currencies, "EUR", abusers, 0.3);
        Plan::new(seed, roster, currencies, 2)
    }

    #[test]
    fn return_to_player_is_about_96_percent() {
        let plan = plan(42, 50, 0.05);
        let currencies = currencies();
        let roster = plan.roster().to_vec();
        let (mut bet_eur, mut won_eur, mut rounds, mut rollbacks) = (0.0, 0.0, 0u64, 0u64);
        let mut count = |round: &Round| {
            let currency = &currencies[roster[round.player].currency];
            rounds += 1;
            match round.outcome {
                Outcome::Win(win) => {
                    bet_eur += currency.to_eur(round.bet);
                    won_eur += currency.to_eur(win);
                }
                Outcome::Rollback => rollbacks += 1,
            }
        };
        for action in plan.take(300_000) {
            match &action {
                Action::Round(round) if !roster[round.player].abuser() => count(round),
                Action::Burst { rounds, .. } => rounds.iter().for_each(&mut count),
                _ => {}
            }
        }
        let rtp = won_eur / bet_eur;
        assert!((0.94..=0.98).contains(&rtp), "RTP {rtp}");
        let share = rollbacks as f64 / rounds as f64;
        assert!((0.015..=0.025).contains(&share), "rollback share {share}");
    }

    #[test]
    fn the_multiplier_bands_average_96_percent() {
        let expected: f64 = WIN_BANDS
            .iter()
            .map(|(p, low, high)| p * (low + high) / 2.0)
            .sum();
        assert!((expected - 0.96).abs() < 0.001, "{expected}");
        let total: f64 = WIN_BANDS.iter().map(|(p, _, _)| p).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_same_seed_gives_the_same_plan_and_another_seed_another() {
        let a: Vec<Action> = plan(7, 20, 0.1).take(5_000).collect();
        let b: Vec<Action> = plan(7, 20, 0.1).take(5_000).collect();
        let c: Vec<Action> = plan(8, 20, 0.1).take(5_000).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            roster(7, 20, &currencies(), "EUR", 0.1, 0.3),
            roster(7, 20, &currencies(), "EUR", 0.1, 0.3)
        );
    }

    #[test]
    fn abuser_and_connected_selection_respects_the_shares() {
        for (players, share, expected) in [
            (50, 0.05, 3),
            (100, 0.05, 5),
            (10, 0.5, 5),
            (20, 0.0, 0),
            (3, 0.05, 1),
            (1, 0.05, 0),
            (4, 1.0, 4),
        ] {
            let roster = roster(42, players, &currencies(), "EUR", share, 0.3);
            let abusers = roster.iter().filter(|p| p.abuser()).count();
            assert_eq!(abusers, expected, "{players} players, share {share}");
        }
        let roster = roster(42, 50, &currencies(), "EUR", 0.05, 0.3);
        assert_eq!(roster.iter().filter(|p| p.connected).count(), 15);
        let one = super::roster(42, 10, &currencies(), "EUR", 0.0, 0.0);
        assert_eq!(
            one.iter().filter(|p| p.connected).count(),
            1,
            "at least one player stays connected"
        );
    }

    #[test]
    fn players_are_mostly_eur_and_every_currency_has_some() {
        let currencies = currencies();
        let roster = roster(42, 50, &currencies, "EUR", 0.05, 0.3);
        let eur = roster
            .iter()
            .filter(|p| currencies[p.currency].code == "EUR")
            .count();
        assert!(eur >= 25, "{eur} of 50 in EUR");
        for (i, currency) in currencies.iter().enumerate() {
            assert!(
                roster.iter().any(|p| p.currency == i),
                "nobody plays in {}",
                currency.code
            );
        }
    }

    #[test]
    fn only_abusers_misbehave_each_in_its_style_and_payments_cover_currencies_and_providers() {
        let plan = plan(42, 50, 0.1);
        let roster = plan.roster().to_vec();
        let styles: Vec<Abuse> = roster.iter().filter_map(|p| p.abuse).collect();
        assert_eq!(styles.len(), 5);
        for style in Abuse::ALL {
            assert!(styles.contains(&style), "{styles:?}");
        }
        let mut payments = std::collections::HashSet::new();
        let mut kinds = std::collections::HashMap::<&str, usize>::new();
        let (mut abuser_rounds, mut abuser_rollbacks) = (0, 0);
        let actions: Vec<Action> = plan.take(20_000).collect();
        for action in &actions {
            let kind = match action {
                Action::Round(round) => {
                    if roster[round.player].abuse == Some(Abuse::Rollbacks) {
                        abuser_rounds += 1;
                        abuser_rollbacks += usize::from(round.outcome == Outcome::Rollback);
                    }
                    "round"
                }
                Action::OverLimit { player, .. } => {
                    assert_eq!(roster[*player].abuse, Some(Abuse::OverLimit));
                    "over_limit"
                }
                Action::Burst { player, rounds } => {
                    assert_eq!(roster[*player].abuse, Some(Abuse::Bursts));
                    assert!(BURST_BETS.contains(&rounds.len()));
                    "burst"
                }
                Action::Payment {
                    player,
                    direction,
                    provider,
                    amount,
                } => {
                    assert!(*amount > 0);
                    payments.insert((roster[*player].currency, *direction, *provider));
                    "payment"
                }
                Action::Chat { player, .. } => {
                    assert!(roster[*player].connected);
                    "chat"
                }
            };
            *kinds.entry(kind).or_default() += 1;
        }
        assert_eq!(payments.len(), 6 * 2 * 2, "{payments:?}");
        let share = |k: &str| kinds.get(k).copied().unwrap_or(0) as f64 / actions.len() as f64;
        assert!((0.015..0.025).contains(&share("payment")), "{kinds:?}");
        assert!((0.02..0.04).contains(&share("chat")), "{kinds:?}");
        assert!(
            share("over_limit") > 0.0 && share("burst") > 0.0,
            "{kinds:?}"
        );
        let rollback_share = abuser_rollbacks as f64 / abuser_rounds as f64;
        assert!(
            rollback_share > 0.6,
            "rollback abusers roll back {rollback_share}"
        );
    }

    #[test]
    fn amounts_convert_through_the_rate_and_format_with_the_exponent() {
        let currencies = currencies();
        let eur = &currencies[2];
        let jpy = &currencies[4];
        let btc = &currencies[0];
        assert_eq!(eur.from_eur(1.0), 100);
        assert_eq!(eur.format(1234), "12.34");
        assert_eq!(jpy.format(161), "161");
        assert_eq!(jpy.from_eur(1.0), 161);
        assert_eq!(btc.from_eur(0.6), 1000);
        assert_eq!(btc.format(1000), "0.00001000");
        assert_eq!(eur.deposit_amount(1.0), 1000, "clamped to the minimum");
    }
}

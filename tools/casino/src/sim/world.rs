//! The running simulation's shared state: the players with their tokens, game sessions and last known
//! balances, the pacer that spreads events evenly over time, and the calls every action builds on
//! (authenticated requests with a re-login when a token expired, game sessions, funding).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::plan::{CurrencyInfo, PlayerPlan};
use super::socket::Command;
use super::stats::Stats;
use super::vault::{Answer, Vault, parse_minor};

/// Funds each player starts with, in EUR.
pub const INITIAL_EUR: f64 = 500.0;
/// Below this balance (EUR) a player is topped up.
pub const LOW_WATER_EUR: f64 = 50.0;
/// A top-up deposit, in EUR.
pub const TOP_UP_EUR: f64 = 300.0;
/// How long a payment may stay pending before the simulator stops waiting for it.
pub const PAYMENT_WAIT: Duration = Duration::from_secs(30);
/// Payment statuses after which nothing changes without staff.
const SETTLED: [&str; 6] = [
    "succeeded",
    "failed",
    "expired",
    "reversed",
    "rejected",
    "review",
];

/// Spreads events evenly: each caller gets the next free slot, one interval after the previous one.
/// A caller that is late does not earn a burst to catch up (the slot is never in the past).
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
    events: Arc<Stats>,
}

impl Pacer {
    /// `rate` events per second.
    pub fn new(rate: f64, stats: Arc<Stats>) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / rate.max(0.001)),
            next: tokio::sync::Mutex::new(Instant::now()),
            events: stats,
        }
    }

    /// Book `n` consecutive slots; the time of the first.
    pub async fn reserve(&self, n: u32) -> Instant {
        let mut next = self.next.lock().await;
        let at = (*next).max(Instant::now());
        *next = at + self.interval * n;
        self.events
            .counters
            .events
            .fetch_add(u64::from(n), Ordering::Relaxed);
        at
    }

    /// Wait for the next slot; `false` when `abort` fired first.
    pub async fn slot(&self, abort: &CancellationToken) -> bool {
        let at = self.reserve(1).await;
        tokio::select! {
            _ = tokio::time::sleep_until(at) => true,
            _ = abort.cancelled() => false,
        }
    }
}

/// A synthetic player.
#[derive(Debug)]
pub struct Player {
    /// Index in the roster.
    pub index: usize,
    /// Vault id.
    pub id: Uuid,
    /// Login.
    pub email: String,
    /// Login.
    pub password: String,
    /// Role in the run.
    pub plan: PlayerPlan,
    token: RwLock<String>,
    session: tokio::sync::Mutex<Option<String>>,
    /// Last balance Vault reported, minor units.
    pub balance: AtomicI64,
    topping_up: AtomicBool,
    /// Transfers of this player the simulation knows it caused (accepted bets, wins and rollbacks,
    /// credited deposits, withdrawal holds and reversals, adjustments): at least this many pushes are
    /// owed to its socket.
    pub transfers: AtomicU64,
    /// `balance.updated` transfer ids received.
    pub pushes: Arc<Mutex<Vec<Uuid>>>,
    /// Pushes without a UUID `transfer_id`.
    pub malformed: Arc<AtomicU32>,
    /// Socket reconnections.
    pub reconnects: AtomicU32,
    /// The player's socket, once connected.
    pub socket: OnceLock<mpsc::UnboundedSender<Command>>,
}

impl Player {
    /// A player that just logged in.
    pub fn new(
        index: usize,
        id: Uuid,
        email: String,
        password: String,
        plan: PlayerPlan,
        token: String,
    ) -> Self {
        Self {
            index,
            id,
            email,
            password,
            plan,
            token: RwLock::new(token),
            session: tokio::sync::Mutex::new(None),
            balance: AtomicI64::new(0),
            topping_up: AtomicBool::new(false),
            transfers: AtomicU64::new(0),
            pushes: Arc::default(),
            malformed: Arc::default(),
            reconnects: AtomicU32::new(0),
            socket: OnceLock::new(),
        }
    }

    /// The current access token.
    pub fn token(&self) -> String {
        self.token.read().map(|t| t.clone()).unwrap_or_default()
    }

    fn set_token(&self, token: String) {
        if let Ok(mut current) = self.token.write() {
            *current = token;
        }
    }

    /// One more transfer of this player happened.
    pub fn transferred(&self) {
        self.transfers.fetch_add(1, Ordering::Relaxed);
    }

    /// Distinct `balance.updated` transfer ids received.
    pub fn distinct_pushes(&self) -> u64 {
        self.pushes
            .lock()
            .map(|pushes| {
                pushes
                    .iter()
                    .collect::<std::collections::HashSet<_>>()
                    .len() as u64
            })
            .unwrap_or(0)
    }

    /// Forget the game session (Vault refused it).
    pub async fn drop_session(&self) {
        *self.session.lock().await = None;
    }
}

/// The staff account the simulator uses.
#[derive(Debug)]
pub struct Staff {
    email: String,
    password: String,
    token: RwLock<String>,
}

impl Staff {
    /// Staff logged in with `token`.
    pub fn new(email: &str, password: &str, token: String) -> Self {
        Self {
            email: email.to_owned(),
            password: password.to_owned(),
            token: RwLock::new(token),
        }
    }

    fn token(&self) -> String {
        self.token.read().map(|t| t.clone()).unwrap_or_default()
    }
}

/// Everything the actions share.
#[derive(Debug)]
pub struct World {
    /// Vault's API.
    pub vault: Vault,
    /// Room-Service public URL.
    pub room_url: String,
    /// Counts and latencies.
    pub stats: Arc<Stats>,
    /// Currencies, as read at the start.
    pub currencies: Vec<CurrencyInfo>,
    /// Players by roster index (`None`: registration or login failed).
    pub players: Vec<Option<Arc<Player>>>,
    /// Staff.
    pub staff: Staff,
    /// The stack's PSPs.
    pub providers: Vec<String>,
    /// Event pacing.
    pub pacer: Pacer,
    /// Stops in-flight actions (Ctrl-C, or the end of the run taking too long).
    pub abort: CancellationToken,
    /// In-flight actions and top-ups.
    pub tracker: TaskTracker,
    /// Unique ids within this run: `sim-{nonce}-...`.
    pub nonce: String,
    seq: AtomicU64,
    deposits: AtomicU64,
    money: Mutex<(f64, f64)>,
}

impl World {
    /// Assemble the world (players are filled in by setup).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vault: Vault,
        room_url: String,
        stats: Arc<Stats>,
        currencies: Vec<CurrencyInfo>,
        staff: Staff,
        providers: Vec<String>,
        rate: f64,
        nonce: String,
    ) -> Self {
        Self {
            vault,
            room_url,
            pacer: Pacer::new(rate, stats.clone()),
            stats,
            currencies,
            players: Vec::new(),
            staff,
            providers,
            abort: CancellationToken::new(),
            tracker: TaskTracker::new(),
            nonce,
            seq: AtomicU64::new(0),
            deposits: AtomicU64::new(0),
            money: Mutex::new((0.0, 0.0)),
        }
    }

    /// A fresh id: `sim-{nonce}-{kind}{n}` (unique across runs against the same database).
    pub fn id(&self, kind: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("sim-{}-{kind}{n}", self.nonce)
    }

    /// The player's currency.
    pub fn currency(&self, player: &Player) -> &CurrencyInfo {
        &self.currencies[player.plan.currency]
    }

    /// An accepted bet that stands (not rolled back) and its win (0 when none was accepted), in minor
    /// units of `currency`: the return-to-player tally.
    pub fn settled(&self, currency: &CurrencyInfo, bet: i64, win: i64) {
        if let Ok(mut money) = self.money.lock() {
            money.0 += currency.to_eur(bet);
            money.1 += currency.to_eur(win);
        }
    }

    /// `(wagered, won)` in EUR.
    pub fn money(&self) -> (f64, f64) {
        self.money.lock().map(|m| *m).unwrap_or_default()
    }

    /// A request as `player`; on a 401 (the access token expired) log in again and retry once.
    pub async fn as_player(
        &self,
        player: &Player,
        operation: &'static str,
        method: Method,
        path: &str,
        idempotency_key: Option<&str>,
        body: &Value,
    ) -> Answer {
        let answer = self
            .vault
            .call(
                operation,
                method.clone(),
                path,
                Some(&player.token()),
                idempotency_key,
                body,
            )
            .await;
        if answer.status != 401 || !self.relogin(player).await {
            return answer;
        }
        self.vault
            .call(
                operation,
                method,
                path,
                Some(&player.token()),
                idempotency_key,
                body,
            )
            .await
    }

    /// Log `player` in again; `true` with a new token.
    pub async fn relogin(&self, player: &Player) -> bool {
        let answer = self.vault.login(&player.email, &player.password).await;
        match answer.field("access_token") {
            Some(token) => {
                player.set_token(token.to_owned());
                true
            }
            None => false,
        }
    }

    /// A request as staff; on a 401 log in again and retry once.
    pub async fn as_staff(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        idempotency_key: Option<&str>,
        body: &Value,
    ) -> Answer {
        let answer = self
            .vault
            .call(
                operation,
                method.clone(),
                path,
                Some(&self.staff.token()),
                idempotency_key,
                body,
            )
            .await;
        if answer.status != 401 {
            return answer;
        }
        let login = self
            .vault
            .login(&self.staff.email, &self.staff.password)
            .await;
        let Some(token) = login.field("access_token") else {
            return answer;
        };
        if let Ok(mut current) = self.staff.token.write() {
            *current = token.to_owned();
        }
        self.vault
            .call(operation, method, path, Some(token), idempotency_key, body)
            .await
    }

    /// The player's game session, created when there is none; `None` when Vault refused (a locked
    /// player) or did not answer.
    pub async fn session(&self, player: &Player) -> Option<String> {
        let mut session = player.session.lock().await;
        if let Some(token) = session.as_ref() {
            return Some(token.clone());
        }
        let answer = self
            .as_player(
                player,
                "session",
                Method::POST,
                "/api/v1/games/sessions",
                None,
                &json!({}),
            )
            .await;
        let token = answer.body["session_token"].as_str()?.to_owned();
        *session = Some(token.clone());
        Some(token)
    }

    /// Remember the balance an answer reports (game API answers carry it, errors included), and top the
    /// player up when it runs low.
    pub fn note_balance(self: &Arc<Self>, player: &Arc<Player>, answer: &Answer) {
        let currency = self.currency(player);
        let Some(balance) = parse_minor(&answer.body["balance"], currency.exponent) else {
            return;
        };
        player.balance.store(balance, Ordering::Relaxed);
        if balance < currency.from_eur(LOW_WATER_EUR) || answer.outcome == "insufficient_funds" {
            self.top_up(player);
        }
    }

    /// Top `player` up in the background (one top-up at a time per player).
    pub fn top_up(self: &Arc<Self>, player: &Arc<Player>) {
        if player.topping_up.swap(true, Ordering::AcqRel) || self.abort.is_cancelled() {
            return;
        }
        let (world, player) = (self.clone(), player.clone());
        self.tracker.spawn(async move {
            // A top-up is an event like any other: it waits for its slot.
            if world.pacer.slot(&world.abort).await {
                let amount = world.currency(&player).deposit_amount(TOP_UP_EUR);
                world.fund(&player, amount).await;
            }
            player.topping_up.store(false, Ordering::Release);
        });
    }

    /// Fund `player` with `amount` minor units: a deposit through the next PSP (round-robin), waited
    /// for; when it fails or stays pending, a staff adjustment instead. `true` when money arrived.
    pub async fn fund(&self, player: &Player, amount: i64) -> bool {
        let n = self.deposits.fetch_add(1, Ordering::Relaxed) as usize;
        let provider =
            (!self.providers.is_empty()).then(|| self.providers[n % self.providers.len()].clone());
        if let Some(provider) = provider
            && self
                .payment(player, "deposit", &provider, amount)
                .await
                .1
                .as_deref()
                == Some("succeeded")
        {
            return true;
        }
        if self.abort.is_cancelled() {
            return false;
        }
        let currency = self.currency(player);
        let key = self.id("adj");
        let answer = self
            .as_staff(
                "adjustment",
                Method::POST,
                "/api/v1/admin/adjustments",
                Some(&key),
                &json!({
                    "player_id": player.id,
                    "currency": currency.code,
                    "amount": currency.format(amount),
                    "reason": "casino sim funding (the deposit did not go through)",
                }),
            )
            .await;
        if let Some(balance) = parse_minor(&answer.body["balance"], currency.exponent) {
            player.balance.store(balance, Ordering::Relaxed);
        }
        if answer.ok() {
            player.transferred();
        }
        answer.ok()
    }

    /// A deposit or withdrawal (`direction` = `deposit` | `withdrawal`), followed until it settles (so
    /// its transfers, a reversal included, happen while the player's socket is still there). The answer
    /// to the request, and the final status (`None` when refused or not settled in time).
    pub async fn payment(
        &self,
        player: &Player,
        direction: &'static str,
        provider: &str,
        amount: i64,
    ) -> (Answer, Option<String>) {
        let currency = self.currency(player);
        let key = self.id(if direction == "deposit" { "dep" } else { "wd" });
        let path = if direction == "deposit" {
            "/api/v1/payments/deposits"
        } else {
            "/api/v1/payments/withdrawals"
        };
        let created = self
            .as_player(
                player,
                direction,
                Method::POST,
                path,
                Some(&key),
                &json!({ "currency": currency.code, "amount": currency.format(amount), "provider": provider }),
            )
            .await;
        let Some(id) = created.body["id"].as_str().filter(|_| created.ok()) else {
            return (created, None);
        };
        if direction == "withdrawal" {
            // The hold is posted at once.
            player.transferred();
        }
        let path = format!("/api/v1/payments/{id}");
        let mut status = created.body["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let deadline = Instant::now() + PAYMENT_WAIT;
        while !SETTLED.contains(&status.as_str()) {
            if Instant::now() >= deadline {
                return (created, None);
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = self.abort.cancelled() => return (created, None),
            }
            let answer = self
                .as_player(
                    player,
                    "payment_status",
                    Method::GET,
                    &path,
                    None,
                    &Value::Null,
                )
                .await;
            if let Some(now) = answer.body["status"].as_str() {
                status = now.to_owned();
            }
        }
        // Keep the known balance roughly right until the next game answer reports it exactly.
        match (direction, status.as_str()) {
            ("deposit", "succeeded") | ("withdrawal", "reversed" | "rejected") => {
                player.balance.fetch_add(amount, Ordering::Relaxed);
                player.transferred();
            }
            _ => {}
        }
        (created, Some(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_pacer_spreads_events_and_does_not_catch_up() {
        let stats = Arc::new(Stats::default());
        let pacer = Pacer::new(50.0, stats.clone());
        let never = CancellationToken::new();
        let start = Instant::now();
        for _ in 0..6 {
            assert!(pacer.slot(&never).await);
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(100) && elapsed < Duration::from_secs(1),
            "{elapsed:?}"
        );
        // Idle for a while: the next slot is now, not a backlog of missed ones.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let first = pacer.reserve(1).await;
        assert!(first <= Instant::now());
        // A burst books several slots at once: the ones after it wait for them.
        let burst = pacer.reserve(10).await;
        let after = pacer.reserve(1).await;
        // (At least: a starved runtime only makes the next free slot later.)
        assert!(burst - first >= Duration::from_millis(20));
        assert!(after - burst >= Duration::from_millis(200));
        assert_eq!(stats.counters.events.load(Ordering::Relaxed), 18);
        let aborted = CancellationToken::new();
        aborted.cancel();
        assert!(!pacer.slot(&aborted).await);
    }
}

//! `casino sim`: synthetic players against a running stack (`casino up`, or any stack described by a
//! [`StackInfo`]).
//!
//! A run:
//! 1. **Setup.** Read the enabled currencies from Vault, log in as the stack's staff admin, put a low bet
//!    limit on the game abusers play ([`plan::LIMITED_GAME`]), register `--players` players (emails carry
//!    the seed and a per-run nonce, so runs against the same database never collide) and log each in.
//! 2. **Sockets.** The `--connected` share connects to Room-Service over socket.io *before* any money
//!    moves, joins the lobby chat, and records every `balance.updated` it receives.
//! 3. **Funding.** Each player deposits through the sandbox PSPs (round-robin over the stack's
//!    providers) and waits for the webhook to credit it; a deposit that fails or stays pending is
//!    replaced by a staff adjustment, so everyone has money.
//! 4. **Main loop.** For `--duration` seconds (0: until Ctrl-C), `--rate` events per second, evenly
//!    paced: the seeded [`plan::Plan`] picks a player and an action: a round (bet through the signed game
//!    API, then a win, about 96% return to player, or in ~2% of rounds a rollback) across several games
//!    and every currency, a deposit or withdrawal (~2%, round-robin over currency, direction and
//!    provider), or a lobby chat message. The `--abusers` share misbehaves, each abuser mostly in one
//!    style (round-robin): bets over the limit, rolling most rounds back, or bursts above Vault's
//!    bets-per-second threshold, so every kind of abuse signal (and locks) appears; their refusals
//!    (`bet_limit_exceeded`, `player_locked`, ...) are counted outcomes, not failures.
//! 5. **End.** Stop generating, let in-flight actions finish, wait until the pushes settled (no push
//!    for 3 s, and each connected player received at least as many as the transfers the run made for
//!    it; bounded by `--settle`), close the sockets, and return the [`Summary`] (also written to
//!    `--summary-json`).
//!
//! Layout: [`plan`] (the deterministic roster and action sequence, pure), [`exec`] (running actions),
//! [`world`] (shared state: players, pacing, authenticated calls, funding), [`vault`] (timed, counted
//! HTTP calls and request signing), [`socket`] (one task per connected player), [`stats`] (counts and
//! latency histograms), [`progress`] (the stderr progress line), [`summary`] (the closing report).
//! Nothing but the summary goes to stdout, and only when the caller prints it.

pub mod exec;
pub mod plan;
pub mod progress;
pub mod socket;
pub mod stats;
pub mod summary;
pub mod vault;
pub mod world;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::stack::StackInfo;
use plan::{CurrencyInfo, Plan, PlayerPlan};
use progress::{Phase, PhaseCell};
use stats::Stats;
pub use summary::{ConnectedPlayer, Latency, Summary};
use world::{Player, Staff, World};

/// Actions in flight at once: when the stack answers slower than `--rate` needs, the loop waits for
/// one to finish instead of piling up requests.
const MAX_IN_FLIGHT: usize = 256;
/// Setup requests (registration, login, funding) in parallel.
const SETUP_PARALLELISM: usize = 4;
/// A push-free stretch this long means the pushes have settled.
const QUIET: Duration = Duration::from_secs(3);
/// How long in-flight actions may take after the duration ends (payments wait up to 30 s).
const FINISH_GRACE: Duration = Duration::from_secs(60);
/// After Ctrl-C, how long in-flight actions and pushes may take.
const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// The currency most players use.
const PREFERRED_CURRENCY: &str = "EUR";

fn share(raw: &str) -> Result<f64, String> {
    let value: f64 = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err("a share is between 0 and 1".into())
    }
}

fn rate(raw: &str) -> Result<f64, String> {
    let value: f64 = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not a number"))?;
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err("the rate must be above 0".into())
    }
}

/// Arguments of `casino sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Players to register.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub players: u32,
    /// Events per second (game, payment and chat calls), evenly paced.
    #[arg(long, default_value_t = 50.0, value_parser = rate)]
    pub rate: f64,
    /// Seconds to run (0: until Ctrl-C).
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Seed of the plan: the same seed picks the same players, operations and amounts.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share of players that misbehave (over-limit bets, rollback abuse, bursts), 0 to 1.
    #[arg(long, default_value_t = 0.05, value_parser = share)]
    pub abusers: f64,
    /// Share of players kept connected over socket.io, 0 to 1 (at least one player).
    #[arg(long, default_value_t = 0.3, value_parser = share)]
    pub connected: f64,
    /// Seconds to wait at the end for balance pushes to settle.
    #[arg(long, default_value_t = 20)]
    pub settle: u64,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// No progress line and no setup messages (warnings still go to stderr).
    #[arg(long)]
    pub quiet: bool,
}

impl Default for Args {
    /// The command-line defaults.
    fn default() -> Self {
        Self {
            players: 50,
            rate: 50.0,
            duration: 60,
            seed: 42,
            abusers: 0.05,
            connected: 0.3,
            settle: 20,
            summary_json: None,
            quiet: false,
        }
    }
}

impl Args {
    fn check(&self) -> anyhow::Result<()> {
        if self.players == 0 {
            bail!("--players must be at least 1");
        }
        rate(&self.rate.to_string()).map_err(|e| anyhow::anyhow!("--rate: {e}"))?;
        share(&self.abusers.to_string()).map_err(|e| anyhow::anyhow!("--abusers: {e}"))?;
        share(&self.connected.to_string()).map_err(|e| anyhow::anyhow!("--connected: {e}"))?;
        Ok(())
    }
}

/// Run the simulation against `stack` until the duration elapses or `cancel` fires; prints progress to
/// stderr and returns the summary (the caller prints it). `Err` only when setup cannot proceed (Vault
/// unreachable, the staff login refused, no player could be registered).
pub async fn run(
    args: &Args,
    stack: &StackInfo,
    cancel: CancellationToken,
) -> anyhow::Result<Summary> {
    args.check()?;
    let say = |message: String| {
        if !args.quiet {
            eprintln!("casino sim: {message}");
        }
    };
    let nonce = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let stats = Arc::new(Stats::default());
    let vault = vault::Vault::new(
        &stack.vault.public_url,
        stats.clone(),
        stack.game_provider.clone(),
    )?;

    // 1. Setup.
    let currencies = read_currencies(&vault).await?;
    let staff = staff_login(&vault, &stack.admin.email, &stack.admin.password).await?;
    let players = args.players as usize;
    let roster = plan::roster(
        args.seed,
        players,
        &currencies,
        PREFERRED_CURRENCY,
        args.abusers,
        args.connected,
    );
    let mut world = World::new(
        vault,
        stack.room_service.public_url.clone(),
        stats.clone(),
        currencies.clone(),
        staff,
        stack.psp_providers.clone(),
        args.rate,
        nonce.clone(),
    );
    set_limits(&world, &roster).await;
    say(format!(
        "run {nonce}, seed {}: registering {players} players ({} abusers, {} connected) in {}",
        args.seed,
        roster.iter().filter(|p| p.abuser()).count(),
        roster.iter().filter(|p| p.connected).count(),
        currencies
            .iter()
            .map(|c| c.code.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    ));
    world.players = register(&world, &roster, args.seed, &nonce, &cancel).await;
    let registered = world.players.iter().flatten().count();
    if registered == 0 && !cancel.is_cancelled() {
        bail!(
            "no player could be registered at {} (see the register and login outcomes: {:?})",
            world.vault.base(),
            stats.outcomes()
        );
    }
    let world = Arc::new(world);

    // 2. Sockets, before any money moves, so every transfer of a connected player is pushed to it.
    let sockets_stop = CancellationToken::new();
    let connected: Vec<Arc<Player>> = world
        .players
        .iter()
        .flatten()
        .filter(|p| p.plan.connected)
        .cloned()
        .collect();
    let sockets: Vec<tokio::task::JoinHandle<()>> = if cancel.is_cancelled() {
        Vec::new()
    } else {
        futures::stream::iter(connected.iter().cloned())
            .map(|player| socket::start(world.clone(), player, sockets_stop.clone()))
            .buffer_unordered(8)
            .filter_map(|handle| async move { handle })
            .collect()
            .await
    };

    // 3. Funding.
    if !cancel.is_cancelled() {
        say(format!(
            "{registered} players registered, {} connected; funding them",
            sockets.len()
        ));
        let funded = fund_all(&world, &cancel).await;
        say(format!("{funded} of {registered} players funded"));
    }

    // 4. Main loop.
    let phase = Arc::new(PhaseCell::default());
    let progress_stop = CancellationToken::new();
    let duration = (args.duration > 0).then(|| Duration::from_secs(args.duration));
    let started = Instant::now();
    let progress = (!args.quiet).then(|| {
        tokio::spawn(progress::run(
            stats.clone(),
            phase.clone(),
            started.into_std(),
            duration,
            progress_stop.clone(),
        ))
    });
    let mut cancelled = cancel.is_cancelled();
    if !cancelled {
        let plan = Plan::new(
            args.seed,
            roster.clone(),
            currencies.clone(),
            stack.psp_providers.len(),
        );
        cancelled = main_loop(&world, plan, duration.map(|d| started + d), &cancel).await;
    }
    let elapsed = started.elapsed();

    // 5. End: in-flight actions, then pushes.
    phase.set(Phase::Finishing);
    cancelled = finish(&world, cancelled, &cancel).await;
    phase.set(Phase::Settling);
    let settled = if sockets.is_empty() {
        true
    } else {
        let limit = Duration::from_secs(args.settle);
        settle(
            &world,
            if cancelled {
                limit.min(CANCEL_GRACE)
            } else {
                limit
            },
            &cancel,
        )
        .await
    };
    sockets_stop.cancel();
    for socket in sockets {
        let _ = tokio::time::timeout(Duration::from_secs(5), socket).await;
    }
    progress_stop.cancel();
    if let Some(progress) = progress {
        let _ = progress.await;
    }

    let summary = summarize(
        args,
        &world,
        &stats,
        nonce,
        elapsed,
        cancelled || cancel.is_cancelled(),
        settled,
    );
    if let Some(path) = &args.summary_json {
        let written = serde_json::to_vec_pretty(&summary)
            .map_err(anyhow::Error::from)
            .and_then(|json| {
                std::fs::write(path, json)
                    .with_context(|| format!("writing the summary to {}", path.display()))
            });
        if let Err(error) = written {
            eprintln!("casino sim: {error:#}");
        }
    }
    Ok(summary)
}

/// Enabled currencies with an exchange rate (a currency without one cannot take bets).
async fn read_currencies(vault: &vault::Vault) -> anyhow::Result<Vec<CurrencyInfo>> {
    let answer = vault
        .call(
            "currencies",
            Method::GET,
            "/api/v1/currencies",
            None,
            None,
            &Value::Null,
        )
        .await;
    if !answer.ok() {
        bail!(
            "cannot read the currencies from Vault at {} ({}): is the stack running?",
            vault.base(),
            answer.describe()
        );
    }
    let list = answer.body["currencies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let currencies: Vec<CurrencyInfo> = list
        .iter()
        .filter(|c| c["enabled"] == true)
        .filter_map(|c| {
            let exponent = c["exponent"].as_u64()? as u32;
            let amount = |field: &str| vault::parse_minor(&c[field], exponent);
            Some(CurrencyInfo {
                code: c["code"].as_str()?.to_owned(),
                exponent,
                rate_eur: c["rate_eur"].as_str()?.parse().ok()?,
                min_deposit: amount("min_deposit")?,
                max_deposit: amount("max_deposit")?,
                min_withdrawal: amount("min_withdrawal")?,
                max_withdrawal: amount("max_withdrawal")?,
            })
        })
        .collect();
    if currencies.is_empty() {
        bail!(
            "Vault at {} has no enabled currency with an exchange rate",
            vault.base()
        );
    }
    Ok(currencies)
}

async fn staff_login(vault: &vault::Vault, email: &str, password: &str) -> anyhow::Result<Staff> {
    let answer = vault.login(email, password).await;
    let token = answer.field("access_token");
    let Some(token) = token else {
        bail!(
            "the staff login of {email} at {} was refused ({})",
            vault.base(),
            answer.describe()
        );
    };
    if !matches!(answer.body["role"].as_str(), Some("staff" | "admin")) {
        bail!(
            "{email} is not a staff account (role {})",
            answer.body["role"]
        );
    }
    Ok(Staff::new(email, password, token.to_owned()))
}

/// The low limit on the abusers' game, in every currency an over-limit abuser plays in. Setting it is
/// idempotent (an upsert), so repeated runs are fine.
async fn set_limits(world: &World, roster: &[PlayerPlan]) {
    let mut currencies: Vec<usize> = roster
        .iter()
        .filter(|p| p.abuse == Some(plan::Abuse::OverLimit))
        .map(|p| p.currency)
        .collect();
    currencies.sort_unstable();
    currencies.dedup();
    for index in currencies {
        let currency = &world.currencies[index];
        let answer = world
            .as_staff(
                "limits",
                Method::PUT,
                "/api/v1/admin/limits",
                None,
                &json!({
                    "game_id": plan::LIMITED_GAME.0,
                    "currency": currency.code,
                    "min_bet": currency.format(1),
                    "max_bet": currency.format(currency.from_eur(plan::LIMITED_MAX_BET_EUR)),
                }),
            )
            .await;
        if !answer.ok() {
            eprintln!(
                "casino sim: could not set the bet limit of {} in {} ({}): over-limit bets will be taken",
                plan::LIMITED_GAME.0,
                currency.code,
                answer.describe()
            );
        }
    }
}

/// Register and log in every player of the roster; `None` for those that failed.
async fn register(
    world: &World,
    roster: &[PlayerPlan],
    seed: u64,
    nonce: &str,
    cancel: &CancellationToken,
) -> Vec<Option<Arc<Player>>> {
    let mut players: Vec<Option<Arc<Player>>> = vec![None; roster.len()];
    let registered: Vec<(usize, Option<Player>)> =
        futures::stream::iter(roster.iter().copied().enumerate())
            .map(|(index, plan)| async move {
                let email = format!("sim{seed}-{nonce}-p{index}@casino.test");
                // Never containing the email's local part (a registration rule).
                let password = format!("Synthetic {nonce} player {index} key7");
                (
                    index,
                    register_one(world, index, email, password, plan).await,
                )
            })
            .buffer_unordered(SETUP_PARALLELISM)
            .take_until(cancel.cancelled())
            .collect()
            .await;
    for (index, player) in registered {
        players[index] = player.map(Arc::new);
    }
    players
}

async fn register_one(
    world: &World,
    index: usize,
    email: String,
    password: String,
    plan: PlayerPlan,
) -> Option<Player> {
    let currency = &world.currencies[plan.currency];
    let registered = world
        .vault
        .register(&email, &password, &currency.code)
        .await;
    let id: Uuid = registered.field("id")?.parse().ok()?;
    let login = world.vault.login(&email, &password).await;
    let token = login.field("access_token")?;
    Some(Player::new(
        index,
        id,
        email,
        password,
        plan,
        token.to_owned(),
    ))
}

/// Give every player its starting funds; how many got them.
async fn fund_all(world: &Arc<World>, cancel: &CancellationToken) -> usize {
    let players: Vec<Arc<Player>> = world.players.iter().flatten().cloned().collect();
    futures::stream::iter(players)
        .map(|player| {
            let world = world.clone();
            async move {
                let amount = world.currency(&player).deposit_amount(world::INITIAL_EUR);
                world.fund(&player, amount).await
            }
        })
        .buffer_unordered(SETUP_PARALLELISM * 2)
        .take_until(cancel.cancelled())
        .filter(|funded| futures::future::ready(*funded))
        .count()
        .await
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Generate and dispatch actions until `deadline` (or forever) or `cancel`; `true` when cancelled.
async fn main_loop(
    world: &Arc<World>,
    plan: Plan,
    deadline: Option<Instant>,
    cancel: &CancellationToken,
) -> bool {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    for action in plan {
        if world
            .players
            .get(action.player())
            .is_none_or(Option::is_none)
        {
            continue;
        }
        let permit = tokio::select! {
            permit = in_flight.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return false,
            },
            _ = cancel.cancelled() => return true,
            _ = until(deadline) => return false,
        };
        let at = world.pacer.reserve(1).await;
        if deadline.is_some_and(|deadline| at >= deadline) {
            // Booked past the end: not an event after all.
            world
                .stats
                .counters
                .events
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = cancel.cancelled() => return true,
        }
        let action_world = world.clone();
        world.tracker.spawn(async move {
            exec::execute(action_world, action).await;
            drop(permit);
        });
    }
    false
}

/// Wait for in-flight actions (a grace period, shorter after Ctrl-C), then stop the stragglers.
/// Returns whether the run was cancelled by then.
async fn finish(world: &World, mut cancelled: bool, cancel: &CancellationToken) -> bool {
    world.tracker.close();
    let mut grace_end = Instant::now()
        + if cancelled {
            CANCEL_GRACE
        } else {
            FINISH_GRACE
        };
    loop {
        tokio::select! {
            _ = world.tracker.wait() => return cancelled,
            _ = tokio::time::sleep_until(grace_end) => break,
            _ = cancel.cancelled(), if !cancelled => {
                cancelled = true;
                grace_end = grace_end.min(Instant::now() + CANCEL_GRACE);
            }
        }
    }
    world.abort.cancel();
    // Every remaining step gives up at the abort; an HTTP call in progress ends within its timeout.
    world.tracker.wait().await;
    cancelled
}

/// Wait until the pushes settled: every connected player received at least as many distinct pushes as
/// the transfers the run knows it made for it, and none arrived for [`QUIET`] (counted from now at the
/// earliest); at most `limit`. Quiet alone is not enough: after a Kafka outage pushes can pause for
/// longer than that while the outbox and the consumers catch up.
async fn settle(world: &World, mut limit: Duration, cancel: &CancellationToken) -> bool {
    let connected: Vec<&Arc<Player>> = world
        .players
        .iter()
        .flatten()
        .filter(|p| p.socket.get().is_some())
        .collect();
    let start = Instant::now();
    let mut cancelled = cancel.is_cancelled();
    loop {
        let quiet = world.stats.since_last_push().min(start.elapsed());
        let owed = connected
            .iter()
            .any(|p| p.distinct_pushes() < p.transfers.load(std::sync::atomic::Ordering::Relaxed));
        if quiet >= QUIET && !owed {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = cancel.cancelled(), if !cancelled => {
                cancelled = true;
                limit = limit.min(start.elapsed() + CANCEL_GRACE);
            }
        }
    }
}

fn summarize(
    args: &Args,
    world: &World,
    stats: &Stats,
    run_nonce: String,
    elapsed: Duration,
    cancelled: bool,
    pushes_settled: bool,
) -> Summary {
    use std::sync::atomic::Ordering::Relaxed;
    let players: Vec<&Arc<Player>> = world.players.iter().flatten().collect();
    let requests = stats.outcomes();
    let count = |pred: &dyn Fn(&str) -> bool| -> u64 {
        requests
            .values()
            .flat_map(|outcomes| outcomes.iter())
            .filter(|(outcome, _)| pred(outcome))
            .map(|(_, n)| n)
            .sum()
    };
    let server_errors = count(&stats::is_server_error);
    let refused = count(&|o: &str| o != stats::OK && !stats::is_server_error(o));
    let (wagered_eur, won_eur) = world.money();
    let connected_players: Vec<ConnectedPlayer> = players
        .iter()
        .filter(|p| p.socket.get().is_some())
        .map(|p| ConnectedPlayer {
            player_id: p.id,
            email: p.email.clone(),
            password: p.password.clone(),
            currency: world.currency(p).code.clone(),
            known_transfers: p.transfers.load(Relaxed),
            balance_updates: p.pushes.lock().map(|v| v.clone()).unwrap_or_default(),
            reconnects: p.reconnects.load(Relaxed),
            malformed_pushes: p.malformed.load(Relaxed),
        })
        .collect();
    let missing_pushes = players
        .iter()
        .filter(|p| p.socket.get().is_some())
        .map(|p| {
            p.transfers
                .load(Relaxed)
                .saturating_sub(p.distinct_pushes())
        })
        .sum();
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    Summary {
        seed: args.seed,
        run_nonce,
        elapsed_seconds: round2(elapsed.as_secs_f64()),
        cancelled,
        players: players.len(),
        abusers: players.iter().filter(|p| p.plan.abuser()).count(),
        connected: connected_players.len(),
        events: stats.counters.events.load(Relaxed),
        latency: stats
            .latencies()
            .iter()
            .map(|(operation, histogram)| (operation.clone(), Latency::from(histogram)))
            .collect(),
        requests,
        server_errors,
        refused,
        wagered_eur: round2(wagered_eur),
        won_eur: round2(won_eur),
        return_to_player: (wagered_eur > 0.0).then(|| (won_eur / wagered_eur * 1e4).round() / 1e4),
        balance_updates: stats.counters.pushes.load(Relaxed),
        missing_pushes,
        pushes_settled,
        connected_players,
    }
}

//! Executing the plan's actions against the stack. Each action's first call uses the slot the main loop
//! waited for; every further call (a round's win or rollback, a burst's follow-ups) waits for its own
//! slot, so the total stays at `--rate` however the calls are grouped.
//!
//! Reactions to the server's answers live here, outside the seeded plan: a bet whose answer was lost
//! is rolled back (what a provider does), a refused game session is replaced next time, a player low on
//! funds is topped up.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;

use super::plan::{Action, Direction, Outcome, Round};
use super::socket;
use super::vault::Answer;
use super::world::{LOW_WATER_EUR, Player, World};

/// Run one action (its first call now: the caller waited for the slot).
pub async fn execute(world: Arc<World>, action: Action) {
    let Some(player) = world.players.get(action.player()).cloned().flatten() else {
        return;
    };
    match action {
        Action::Round(round) => play(&world, &player, round).await,
        Action::OverLimit { bet, .. } => over_limit(&world, &player, bet).await,
        Action::Burst { rounds, .. } => burst(&world, &player, rounds).await,
        Action::Payment {
            direction,
            provider,
            amount,
            ..
        } => payment(&world, &player, direction, provider, amount).await,
        Action::Chat { text, .. } => socket::chat(&player, text).await,
    }
}

/// A bet of `round` with fresh transaction and round ids; `None` when there is no game session (Vault
/// refused one: a locked player).
async fn bet(world: &Arc<World>, player: &Arc<Player>, round: &Round) -> Option<Placed> {
    let session = world.session(player).await?;
    let currency = world.currency(player);
    let (game_id, category) = round.game();
    let (transaction_id, round_id) = (world.id("b"), world.id("r"));
    let answer = world
        .vault
        .game(
            "bet",
            &json!({
                "transaction_id": transaction_id,
                "round_id": round_id,
                "game_id": game_id,
                "game_category": category,
                "player_id": player.id,
                "currency": currency.code,
                "amount": currency.format(round.bet),
                "session_token": session,
            }),
        )
        .await;
    if answer.ok() {
        player.transferred();
    } else if answer.outcome == "invalid_session" {
        player.drop_session().await;
    }
    world.note_balance(player, &answer);
    Some(Placed {
        transaction_id,
        round_id,
        answer,
    })
}

/// A bet sent, and Vault's answer.
struct Placed {
    transaction_id: String,
    round_id: String,
    answer: Answer,
}

/// After the bet: the win or rollback of the round (in its own slot).
async fn settle(world: &Arc<World>, player: &Arc<Player>, round: &Round, placed: Placed) {
    let answer = &placed.answer;
    let currency = world.currency(player);
    let (game_id, _) = round.game();
    // A refused bet has nothing to settle; one without an answer may have been taken, so it is rolled
    // back, as a provider does when it cannot tell.
    let outcome = if answer.ok() {
        round.outcome
    } else if answer.server_error() {
        Outcome::Rollback
    } else {
        return;
    };
    if !world.pacer.slot(&world.abort).await {
        if answer.ok() {
            world.settled(currency, round.bet, 0);
        }
        return;
    }
    match outcome {
        Outcome::Win(amount) => {
            let won = world
                .vault
                .game(
                    "win",
                    &json!({
                        "transaction_id": world.id("w"),
                        "round_id": placed.round_id,
                        "game_id": game_id,
                        "player_id": player.id,
                        "currency": currency.code,
                        "amount": currency.format(amount),
                        "close_round": true,
                        "bet_transaction_id": placed.transaction_id,
                    }),
                )
                .await;
            world.note_balance(player, &won);
            if won.ok() {
                player.transferred();
            }
            world.settled(currency, round.bet, if won.ok() { amount } else { 0 });
        }
        Outcome::Rollback => {
            let rolled = world
                .vault
                .game(
                    "rollback",
                    &json!({
                        "transaction_id": world.id("rb"),
                        "round_id": placed.round_id,
                        "game_id": game_id,
                        "player_id": player.id,
                        "currency": currency.code,
                        "bet_transaction_id": placed.transaction_id,
                    }),
                )
                .await;
            world.note_balance(player, &rolled);
            if rolled.ok() {
                player.transferred();
            }
            if answer.ok() && !rolled.ok() {
                // The stake stands.
                world.settled(currency, round.bet, 0);
            }
        }
    }
}

async fn play(world: &Arc<World>, player: &Arc<Player>, round: Round) {
    if let Some(placed) = bet(world, player, &round).await {
        settle(world, player, &round, placed).await;
    }
}

/// An abuser's bet over the limit of the limited game: refused. Should Vault take it (no limit in
/// place), the round is rolled back so it does not stay open.
async fn over_limit(world: &Arc<World>, player: &Arc<Player>, bet: i64) {
    let round = Round {
        player: player.index,
        game: None,
        bet,
        outcome: Outcome::Rollback,
    };
    play(world, player, round).await;
}

/// Many bets at once (above Vault's bets-per-second threshold), then each round's outcome. The burst's
/// slots are booked together, so the pace evens out afterwards.
async fn burst(world: &Arc<World>, player: &Arc<Player>, rounds: Vec<Round>) {
    if rounds.is_empty() || world.session(player).await.is_none() {
        return;
    }
    world
        .pacer
        .reserve(rounds.len().saturating_sub(1) as u32)
        .await;
    let placed =
        futures::future::join_all(rounds.iter().map(|round| bet(world, player, round))).await;
    for (round, placed) in rounds.iter().zip(placed) {
        if let Some(placed) = placed {
            settle(world, player, round, placed).await;
        }
    }
}

async fn payment(
    world: &Arc<World>,
    player: &Arc<Player>,
    direction: Direction,
    provider: usize,
    amount: i64,
) {
    let Some(provider) = world.providers.get(provider % world.providers.len().max(1)) else {
        return;
    };
    let direction = match direction {
        Direction::Deposit => "deposit",
        Direction::Withdrawal => "withdrawal",
    };
    let (created, _) = world.payment(player, direction, provider, amount).await;
    if direction == "withdrawal" {
        let currency = world.currency(player);
        if created.ok() {
            // The hold left the balance at once; a reversal, if any, comes back later.
            let left = player.balance.fetch_sub(amount, Ordering::Relaxed) - amount;
            if left < currency.from_eur(LOW_WATER_EUR) {
                world.top_up(player);
            }
        } else if created.outcome == "insufficient_funds" {
            world.top_up(player);
        }
    }
}

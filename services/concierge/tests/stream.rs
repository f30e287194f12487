//! Concierge on the event stream, as a black box: the real application on port 0, a fresh PostgreSQL
//! database, the embedded Kafka-protocol broker over TCP, real HTTP.
//!
//! - property-style: random streams of bets, wins and rollbacks for several players, delivered with
//!   duplicates and a consumer restart in the middle (then replayed in full by another group), end with
//!   the same totals, points, levels, leaderboards and level-up events as a straight one-pass computation;
//! - a bet crossing two thresholds produces one `level.up` from the old level to the new one;
//! - poison and invalid messages land in the DLQ with the reason and the next message is processed.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use casino_auth::Role;
use casino_concierge::{db::RulesCache, verifier};
use casino_events::{
    Envelope,
    payloads::{PlayerRegistered, TransferEvent},
    topics,
};
use casino_messaging::consumer::DLQ_ERROR_HEADER;
use chrono::{DateTime, Datelike as _, NaiveDate, TimeDelta, Utc};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng, seq::SliceRandom as _};
use rust_decimal::{Decimal, prelude::ToPrimitive as _};
use serde_json::{Value, json};
use support::{App, Harness, bet, eur, get, metric_sum, read_topic, rollback, win};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------------
// The one-pass model: the rules written out plainly, independent of the service's code.

const TIERS: [(i64, &str, &str); 5] = [
    (0, "Bronze", "1.0"),
    (1000, "Silver", "1.1"),
    (10_000, "Gold", "1.25"),
    (50_000, "Platinum", "1.5"),
    (250_000, "Diamond", "2.0"),
];

fn level_of(lifetime: Decimal) -> u32 {
    TIERS
        .iter()
        .rposition(|(threshold, _, _)| lifetime >= Decimal::from(*threshold))
        .unwrap() as u32
}

fn rate_of(category: Option<&str>) -> Decimal {
    match category {
        Some("slots") => eur("1"),
        Some("table") => eur("0.2"),
        Some("live") => eur("0.1"),
        _ => eur("0.1"),
    }
}

fn period_start(board: &str, at: DateTime<Utc>) -> NaiveDate {
    let day = at.date_naive();
    match board {
        "daily" => day,
        "weekly" => day - TimeDelta::days(i64::from(day.weekday().num_days_from_monday())),
        "monthly" => day.with_day(1).unwrap(),
        _ => NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
    }
}

const BOARDS: [&str; 4] = ["daily", "weekly", "monthly", "all-time"];

#[derive(Debug, Default, Clone)]
struct ModelPlayer {
    lifetime: Decimal,
    won: Decimal,
    vip: i64,
    bets: i64,
    level: u32,
}

#[derive(Debug)]
struct ModelBet {
    at: DateTime<Utc>,
    amount: Decimal,
    vip: i64,
    points: i64,
    rolled_back: bool,
}

#[derive(Debug, Default)]
struct Model {
    seen: HashSet<Uuid>,
    players: BTreeMap<Uuid, ModelPlayer>,
    bets: HashMap<Uuid, ModelBet>,
    tombstones: HashSet<Uuid>,
    /// (board, period start, player) -> (points, reached_at)
    boards: BTreeMap<(&'static str, NaiveDate, Uuid), (i64, DateTime<Utc>)>,
    level_ups: BTreeMap<Uuid, Vec<(u32, u32, String)>>,
    applied: i64,
}

impl Model {
    fn board(&mut self, player: Uuid, bet_at: DateTime<Utc>, at: DateTime<Utc>, points: i64) {
        for board in BOARDS {
            let entry = self
                .boards
                .entry((board, period_start(board, bet_at), player))
                .or_insert((0, at));
            entry.0 += points;
            entry.1 = entry.1.max(at);
        }
    }

    fn apply(&mut self, event: &Envelope<TransferEvent>) {
        if !self.seen.insert(event.event_id) {
            return;
        }
        self.applied += 1;
        let player_id = event.player_id.unwrap();
        let mut player = self.players.get(&player_id).cloned().unwrap_or_default();
        let data = &event.data;
        match event.event_type.as_str() {
            "bet.placed" => {
                if self.bets.contains_key(&data.transfer_id) {
                    return;
                }
                if self.tombstones.contains(&data.transfer_id) {
                    self.bets.insert(
                        data.transfer_id,
                        ModelBet {
                            at: event.occurred_at,
                            amount: data.amount_eur,
                            vip: 0,
                            points: 0,
                            rolled_back: true,
                        },
                    );
                    return;
                }
                let multiplier: Decimal =
                    TIERS[level_of(player.lifetime) as usize].2.parse().unwrap();
                let vip = (data.amount_eur * rate_of(data.game_category.as_deref()) * multiplier)
                    .floor()
                    .to_i64()
                    .unwrap();
                let points = data.amount_eur.floor().to_i64().unwrap();
                player.lifetime += data.amount_eur;
                player.vip += vip;
                player.bets += 1;
                let level = level_of(player.lifetime);
                if level > player.level {
                    self.level_ups.entry(player_id).or_default().push((
                        player.level,
                        level,
                        TIERS[level as usize].1.to_owned(),
                    ));
                }
                player.level = level;
                self.board(player_id, event.occurred_at, event.occurred_at, points);
                self.bets.insert(
                    data.transfer_id,
                    ModelBet {
                        at: event.occurred_at,
                        amount: data.amount_eur,
                        vip,
                        points,
                        rolled_back: false,
                    },
                );
            }
            "bet.rolled_back" => {
                let reference = data.reference_transfer_id.unwrap();
                match self.bets.get_mut(&reference) {
                    Some(bet) if bet.rolled_back => {}
                    Some(bet) => {
                        bet.rolled_back = true;
                        let (bet_at, amount, vip, points) =
                            (bet.at, bet.amount, bet.vip, bet.points);
                        player.lifetime -= amount;
                        player.vip -= vip;
                        player.bets -= 1;
                        player.level = level_of(player.lifetime);
                        self.board(player_id, bet_at, event.occurred_at, -points);
                    }
                    None => {
                        self.tombstones.insert(reference);
                    }
                }
            }
            "bet.won" => player.won += data.amount_eur,
            other => panic!("unexpected {other}"),
        }
        self.players.insert(player_id, player);
    }

    /// The expected leaderboard of (board, period): players with points, ranked.
    fn ranking(&self, board: &str, start: NaiveDate) -> Vec<(Uuid, i64)> {
        let mut rows: Vec<(i64, DateTime<Utc>, Uuid)> = self
            .boards
            .iter()
            .filter(|((b, s, _), (points, _))| *b == board && *s == start && *points > 0)
            .map(|((_, _, player), (points, reached))| (*points, *reached, *player))
            .collect();
        rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        rows.into_iter().map(|(p, _, player)| (player, p)).collect()
    }

    fn periods(&self) -> Vec<(&'static str, NaiveDate)> {
        let set: std::collections::BTreeSet<_> =
            self.boards.keys().map(|(b, s, _)| (*b, *s)).collect();
        set.into_iter().collect()
    }
}

// ---------------------------------------------------------------------------------------------------
// The random stream.

/// One message to publish.
#[derive(Clone)]
struct Message {
    topic: &'static str,
    key: String,
    payload: Vec<u8>,
}

fn transfer_message(event: &Envelope<TransferEvent>) -> Message {
    Message {
        topic: topics::VAULT_TRANSACTIONS,
        key: event.key(),
        payload: event.to_vec(),
    }
}

/// Per player, a sequence of Vault events in the order Vault commits them.
fn player_events(
    rng: &mut StdRng,
    player: Uuid,
    start: DateTime<Utc>,
) -> Vec<Envelope<TransferEvent>> {
    const CATEGORIES: [Option<&str>; 5] = [
        Some("slots"),
        Some("table"),
        Some("live"),
        Some("crash"),
        None,
    ];
    let mut events = Vec::new();
    let mut bets: Vec<(Uuid, Decimal)> = Vec::new();
    let mut at = start;
    for _ in 0..rng.gen_range(25..45) {
        // 61 to 90 minutes apart: the stream crosses days, an ISO week and a month.
        at += TimeDelta::minutes(rng.gen_range(61..=90));
        let category = CATEGORIES[rng.gen_range(0..CATEGORIES.len())];
        let roll: f64 = rng.r#gen();
        if roll < 0.55 || bets.is_empty() {
            let amount = if rng.gen_bool(0.06) {
                Decimal::new(rng.gen_range(1_500_000..2_500_000), 2)
            } else {
                Decimal::new(rng.gen_range(1..250_000), 2)
            };
            let transfer_id = Uuid::now_v7();
            bets.push((transfer_id, amount));
            events.push(bet(player, transfer_id, amount, category, at));
        } else if roll < 0.70 {
            events.push(win(player, Decimal::new(rng.gen_range(1..500_000), 2), at));
        } else if roll < 0.86 {
            // A rollback of an earlier bet (possibly one already rolled back: a duplicate rollback).
            let (transfer_id, amount) = *bets.choose(rng).unwrap();
            events.push(rollback(player, transfer_id, amount, at));
        } else if roll < 0.92 {
            // A rollback of a bet Concierge never sees.
            events.push(rollback(player, Uuid::now_v7(), eur("5"), at));
        } else {
            // A rollback arriving before its bet: recorded, and the late bet counts for nothing.
            let transfer_id = Uuid::now_v7();
            let amount = Decimal::new(rng.gen_range(100..100_000), 2);
            events.push(rollback(player, transfer_id, amount, at));
            at += TimeDelta::minutes(61);
            events.push(bet(player, transfer_id, amount, category, at));
        }
    }
    events
}

// ---------------------------------------------------------------------------------------------------

async fn assert_state_matches(
    harness: &Harness,
    app: &App,
    model: &Model,
    staff: &str,
    reader: &str,
) {
    for (player, expected) in &model.players {
        let (status, body) = get(
            &format!("{}/api/v1/admin/players/{player}/rewards", app.public),
            Some(staff),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let got = (
            body["level"].as_u64().unwrap() as u32,
            body["vip_points"].as_i64().unwrap(),
            eur(body["lifetime_wagered_eur"].as_str().unwrap()),
            body["bets"].as_i64().unwrap(),
            eur(body["lifetime_won_eur"].as_str().unwrap()),
            body["name"].as_str().unwrap().to_owned(),
        );
        let want = (
            expected.level,
            expected.vip,
            expected.lifetime,
            expected.bets,
            expected.won,
            TIERS[expected.level as usize].1.to_owned(),
        );
        assert_eq!(got, want, "player {player}: {body}");
    }
    for (board, start) in model.periods() {
        let (status, body) = get(
            &format!(
                "{}/api/v1/leaderboards/{board}?limit=100&at={start}",
                app.public
            ),
            Some(reader),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["period_start"], start.to_string());
        let got: Vec<(Uuid, i64)> = body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, e)| {
                assert_eq!(e["rank"].as_u64().unwrap() as usize, i + 1);
                (
                    e["player_id"].as_str().unwrap().parse().unwrap(),
                    e["points"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, model.ranking(board, start), "{board} board of {start}");
    }
    assert_eq!(
        harness.processed_events().await,
        model.applied + model.players.len() as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_streams_with_duplicates_and_a_restart_give_the_one_pass_result() {
    let seed: u64 = std::env::var("CONCIERGE_PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00C0_FFEE);
    let mut rng = StdRng::seed_from_u64(seed);
    println!("property seed {seed} (set CONCIERGE_PROPERTY_SEED to replay)");
    let harness = Harness::start().await;
    let start: DateTime<Utc> = "2025-02-27T18:00:00Z".parse().unwrap();

    // Generate per-player sequences, then interleave them at random (keeping each player's order).
    let players: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
    let mut sequences: Vec<std::collections::VecDeque<Envelope<TransferEvent>>> = players
        .iter()
        .map(|p| player_events(&mut rng, *p, start).into())
        .collect();
    let mut model = Model::default();
    let mut stream: Vec<Message> = players
        .iter()
        .map(|p| {
            let registered = Envelope::new(
                "player.registered",
                "vault",
                Some(*p),
                PlayerRegistered {
                    currency: "EUR".into(),
                },
            );
            Message {
                topic: topics::VAULT_PLAYERS,
                key: registered.key(),
                payload: registered.to_vec(),
            }
        })
        .collect();
    while sequences.iter().any(|s| !s.is_empty()) {
        let candidates: Vec<usize> = (0..sequences.len())
            .filter(|i| !sequences[*i].is_empty())
            .collect();
        let pick = *candidates.choose(&mut rng).unwrap();
        let event = sequences[pick].pop_front().unwrap();
        model.apply(&event);
        stream.push(transfer_message(&event));
        // Redeliveries: the same message again, right away or much later (after newer events).
        if rng.gen_bool(0.05) {
            stream.push(transfer_message(&event));
        }
        if rng.gen_bool(0.10) {
            let earlier = stream[rng.gen_range(players.len()..stream.len())].clone();
            stream.push(earlier);
        }
    }
    assert!(
        model.level_ups.values().map(Vec::len).sum::<usize>() >= 3,
        "the stream should level players up"
    );
    assert!(model.bets.values().any(|b| b.rolled_back));

    // First half, a restart while it is being processed, then the rest.
    let staff = harness.token(Uuid::now_v7(), Role::Staff);
    let reader = harness.token(players[0], Role::Player);
    let half = stream.len() / 2;
    // Small batches, so the restart lands in the middle of the first half.
    let mut settings = harness.settings();
    settings.consumer.max_batch = 4;
    let first = App::start(settings).await;
    for message in &stream[..half] {
        harness
            .publish_raw(message.topic, &message.key, &message.payload)
            .await;
    }
    let handled = |app: &App| {
        app.stats
            .messages
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while handled(&first) < (half / 3) as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first app processed nothing"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let handled_before_restart = handled(&first);
    first.stop().await;
    for message in &stream[half..] {
        harness
            .publish_raw(message.topic, &message.key, &message.payload)
            .await;
    }
    let second = harness.app().await;
    harness
        .wait_processed(model.applied + players.len() as i64)
        .await;
    assert_state_matches(&harness, &second, &model, &staff, &reader).await;
    println!(
        "{} messages ({} distinct events, {} bets, {} rolled back, {} unknown-bet rollbacks, {} level-ups); \
         restart after {handled_before_restart} of the first {half}",
        stream.len(),
        model.applied,
        model.bets.len(),
        model.bets.values().filter(|b| b.rolled_back).count(),
        model.tombstones.len(),
        model.level_ups.values().map(Vec::len).sum::<usize>(),
    );

    // Level-ups on the topic: exactly the model's, per player in order, none twice.
    let expected_ups: usize = model.level_ups.values().map(Vec::len).sum();
    let raw = read_topic(
        harness.kafka.bootstrap_servers(),
        topics::CONCIERGE_REWARDS,
        expected_ups,
        Duration::from_millis(1500),
    )
    .await;
    let mut got_ups: BTreeMap<Uuid, Vec<(u32, u32, String)>> = BTreeMap::new();
    for message in &raw {
        let event = message.json();
        assert_eq!(event["event_type"], "level.up");
        assert_eq!(event["producer"], "concierge");
        let player: Uuid = event["player_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(message.key.as_deref(), Some(player.to_string().as_bytes()));
        got_ups.entry(player).or_default().push((
            event["data"]["from"].as_u64().unwrap() as u32,
            event["data"]["to"].as_u64().unwrap() as u32,
            event["data"]["name"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(got_ups, model.level_ups);

    // The verifier agrees with every stored award and total.
    let report = verifier::run_once(&harness.db.pool, &RulesCache::default())
        .await
        .unwrap();
    assert_eq!(report.discrepancies, 0, "{report:?}");
    assert!(report.awards_checked > 0 && report.players_checked >= players.len() as u64);

    // A full redelivery (what a crash between the database commits and the offset commits amounts to,
    // at worst, or a replay from an earlier offset) changes nothing: another group reads it all again.
    let mut settings = harness.settings();
    settings.consumer.group_id = "concierge-replay".into();
    let replay = App::start(settings).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while replay
        .stats
        .messages
        .load(std::sync::atomic::Ordering::Relaxed)
        < stream.len() as u64
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the replay did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        replay
            .stats
            .applied
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_state_matches(&harness, &replay, &model, &staff, &reader).await;
    replay.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bet_crossing_two_thresholds_publishes_one_level_up_from_the_old_level_to_the_new() {
    let harness = Harness::start().await;
    let app = harness.app().await;
    let player = Uuid::now_v7();
    let now = Utc::now();
    harness.place_bet(player, "500", "slots", now).await;
    // The big bet carries the trace of the request that placed it; the level-up continues that trace.
    let big = bet(player, Uuid::now_v7(), eur("20000"), Some("slots"), now);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    harness
        .vault
        .send(
            topics::VAULT_TRANSACTIONS,
            &big.key(),
            &big.to_vec(),
            &[("traceparent".into(), traceparent.into())],
        )
        .await
        .unwrap();
    harness.wait_processed(2).await;

    let raw = read_topic(
        harness.kafka.bootstrap_servers(),
        topics::CONCIERGE_REWARDS,
        1,
        Duration::from_millis(1500),
    )
    .await;
    assert_eq!(raw.len(), 1, "exactly one level-up");
    let event = raw[0].json();
    assert_eq!(event["event_type"], "level.up");
    assert_eq!(event["player_id"], player.to_string());
    assert_eq!(event["data"], json!({"from": 0, "to": 2, "name": "Gold"}));
    assert_eq!(raw[0].header("traceparent"), Some(traceparent));

    let token = harness.token(player, Role::Player);
    let (status, me) = get(&format!("{}/api/v1/rewards/me", app.public), Some(&token)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["level"].clone(), me["name"].clone()),
        (json!(2), json!("Gold"))
    );
    // 500 at Bronze (x1.0) + 20000 at Bronze: the multiplier is the level before the bet.
    assert_eq!(me["vip_points"], 20_500);
    let metrics = app.metrics().await;
    assert!(metric_sum(&metrics, "concierge_level_ups_total", &["level=\"2\""]) >= 1.0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_and_invalid_messages_go_to_the_dlq_with_the_reason_and_the_next_message_is_processed()
 {
    let harness = Harness::start().await;
    let app = harness.app().await;
    let player = Uuid::now_v7();
    let key = player.to_string();
    let now = Utc::now();

    let valid = bet(player, Uuid::now_v7(), eur("10"), Some("slots"), now);
    let mut unknown_version = bet(player, Uuid::now_v7(), eur("10"), Some("slots"), now);
    unknown_version.schema_version = 7;
    let negative = bet(player, Uuid::now_v7(), eur("-3.50"), Some("slots"), now);
    let mut missing: Value = serde_json::from_slice(&valid.to_vec()).unwrap();
    missing["event_id"] = json!(Uuid::now_v7());
    missing["data"]
        .as_object_mut()
        .unwrap()
        .remove("amount_eur");

    let poison: [(&str, Vec<u8>); 4] = [
        (
            "malformed envelope",
            b"\x00\x01 definitely not json".to_vec(),
        ),
        (
            "unsupported schema_version 7 for bet.placed",
            unknown_version.to_vec(),
        ),
        ("negative amount_eur -3.50", negative.to_vec()),
        (
            "missing field `amount_eur`",
            serde_json::to_vec(&missing).unwrap(),
        ),
    ];
    for (_, payload) in &poison {
        harness
            .publish_raw(topics::VAULT_TRANSACTIONS, &key, payload)
            .await;
    }
    harness.publish_transfer(&valid).await;
    harness.wait_processed(1).await;

    let dead = read_topic(
        harness.kafka.bootstrap_servers(),
        &topics::dlq(topics::VAULT_TRANSACTIONS),
        poison.len(),
        Duration::from_millis(1000),
    )
    .await;
    assert_eq!(dead.len(), poison.len());
    for ((reason, payload), message) in poison.iter().zip(&dead) {
        assert_eq!(
            &message.payload, payload,
            "the DLQ keeps the original bytes"
        );
        let header = message.header(DLQ_ERROR_HEADER).unwrap();
        assert!(
            header.contains(reason),
            "{header:?} should contain {reason:?}"
        );
    }
    let token = harness.token(player, Role::Player);
    let (_, me) = get(&format!("{}/api/v1/rewards/me", app.public), Some(&token)).await;
    assert_eq!(me["vip_points"], 10);
    let metrics = app.metrics().await;
    assert!(
        metric_sum(
            &metrics,
            "concierge_events_processed_total",
            &["outcome=\"invalid\""]
        ) >= 4.0,
        "{metrics}"
    );
    assert!(
        metric_sum(
            &metrics,
            "kafka_dlq_messages_total",
            &["topic=\"vault.transactions.v1\""]
        ) >= 4.0
    );
    app.stop().await;
}

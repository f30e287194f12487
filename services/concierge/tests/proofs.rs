//! The proofs that rewards are right, against a real database fed through the real broker:
//! - the verifier reports nothing on honest data and counts a tampered award (and the player total it
//!   no longer matches);
//! - the reconciler's Concierge side sums wagering per window the way Vault's contract does (bets by bet
//!   time, rollbacks by rollback time, voided bets nowhere). The comparison with Vault itself is unit
//!   tested with an in-memory ledger (`reconciler::tests`); the end-to-end check against the real Vault
//!   belongs to the cross-service tests;
//! - abnormal point accumulation is flagged once per player and hour.

mod support;

use casino_concierge::{
    db::RulesCache,
    reconciler::{Window, concierge_wagering},
    verifier,
};
use casino_events::topics;
use chrono::{DateTime, Utc};
use support::{App, Harness, bet, eur, metric, rollback};
use uuid::Uuid;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifier_finds_nothing_on_honest_data_and_counts_a_tampered_award() {
    let harness = Harness::start().await;
    let app = harness.app().await;
    let player = Uuid::now_v7();
    let tampered = Uuid::now_v7();
    for (transfer, amount) in [
        (Uuid::now_v7(), "950"),
        (tampered, "80.40"),
        (Uuid::now_v7(), "12"),
    ] {
        harness
            .publish_transfer(&bet(
                player,
                transfer,
                eur(amount),
                Some("slots"),
                Utc::now(),
            ))
            .await;
    }
    harness.wait_processed(3).await;
    let rules = RulesCache::default();
    let clean = verifier::run_once(&harness.db.pool, &rules).await.unwrap();
    assert_eq!(
        (clean.awards_checked, clean.discrepancies),
        (3, 0),
        "{clean:?}"
    );
    assert_eq!(clean.players_checked, 1);

    let before = metric(
        &app.metrics().await,
        "concierge_reward_discrepancies_total{service=\"concierge\"}",
    );
    sqlx::query("UPDATE awards SET vip_points = vip_points + 5 WHERE transfer_id = $1")
        .bind(tampered)
        .execute(&harness.db.pool)
        .await
        .unwrap();
    // Verify everything again: the tampered award no longer follows from its inputs, and the player's
    // VIP total no longer equals the sum of their awards.
    sqlx::query("UPDATE verifier_state SET award_seq = 0, players_checked_until = '1970-01-01Z'")
        .execute(&harness.db.pool)
        .await
        .unwrap();
    let report = verifier::run_once(&harness.db.pool, &rules).await.unwrap();
    assert_eq!(report.discrepancies, 2, "{report:?}");
    let after = metric(
        &app.metrics().await,
        "concierge_reward_discrepancies_total{service=\"concierge\"}",
    );
    assert!(after >= before + 2.0, "{before} -> {after}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconcilers_concierge_side_counts_each_transfer_in_the_window_of_its_own_time() {
    let harness = Harness::start().await;
    let app = harness.app().await;
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let (kept, undone, late) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let events = [
        bet(
            alice,
            kept,
            eur("50"),
            Some("slots"),
            at("2025-03-01T10:10:00Z"),
        ),
        bet(
            alice,
            undone,
            eur("30.25"),
            Some("table"),
            at("2025-03-01T10:20:00Z"),
        ),
        rollback(alice, undone, eur("30.25"), at("2025-03-01T11:05:00Z")),
        bet(
            bob,
            Uuid::now_v7(),
            eur("7"),
            None,
            at("2025-03-01T10:59:59.999Z"),
        ),
        // A rollback before its bet: the bet is voided and counts in no window.
        rollback(bob, late, eur("99"), at("2025-03-01T10:30:00Z")),
        bet(
            bob,
            late,
            eur("99"),
            Some("slots"),
            at("2025-03-01T10:31:00Z"),
        ),
    ];
    for event in &events {
        harness.publish(topics::VAULT_TRANSACTIONS, event).await;
    }
    harness.wait_processed(events.len() as i64).await;

    let window = |start: &str, end: &str| Window {
        start: at(start),
        end: at(end),
    };
    let ten = concierge_wagering(
        &harness.db.pool,
        window("2025-03-01T10:00:00Z", "2025-03-01T11:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(ten.get(&alice), Some(&eur("80.25")));
    assert_eq!(ten.get(&bob), Some(&eur("7")));
    let eleven = concierge_wagering(
        &harness.db.pool,
        window("2025-03-01T11:00:00Z", "2025-03-01T12:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(eleven.get(&alice), Some(&eur("-30.25")));
    assert_eq!(eleven.get(&bob), None);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earning_more_points_in_an_hour_than_the_threshold_is_flagged_once() {
    let harness = Harness::start().await;
    let mut settings = harness.settings();
    settings.rewards.abnormal_points_per_hour = 1000;
    let app = App::start(settings).await;
    let series = "concierge_abnormal_point_accumulation_total{service=\"concierge\"}";
    let before = metric(&app.metrics().await, series);
    let player = Uuid::now_v7();
    let bets = [
        ("600", "2025-03-01T10:05:00Z"),
        ("399", "2025-03-01T10:15:00Z"),
        // 999 so far; this one crosses 1000 and is flagged.
        ("2", "2025-03-01T10:25:00Z"),
        // Still the same hour: not flagged again.
        ("500", "2025-03-01T10:35:00Z"),
        // The next hour starts from zero.
        ("900", "2025-03-01T11:00:00Z"),
    ];
    for (amount, time) in bets {
        harness.place_bet(player, amount, "slots", at(time)).await;
    }
    harness.wait_processed(bets.len() as i64).await;
    let after = metric(&app.metrics().await, series);
    assert_eq!(after - before, 1.0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_forgets_processed_events_older_than_thirty_days_only() {
    let harness = Harness::start().await;
    let old = Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        (Utc::now() - chrono::TimeDelta::days(31)).timestamp() as u64,
        0,
    ));
    let recent = Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        (Utc::now() - chrono::TimeDelta::days(29)).timestamp() as u64,
        0,
    ));
    for id in [old, recent, Uuid::now_v7()] {
        sqlx::query(
            "INSERT INTO processed_events (event_id, event_type) VALUES ($1, 'bet.placed')",
        )
        .bind(id)
        .execute(&harness.db.pool)
        .await
        .unwrap();
    }
    let deleted = casino_concierge::housekeeping::housekeep_once(&harness.db.pool)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let left: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM processed_events ORDER BY 1")
        .fetch_all(&harness.db.pool)
        .await
        .unwrap();
    assert_eq!(left.len(), 2);
    assert!(!left.contains(&old));
}

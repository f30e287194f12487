//! A win of zero closes a lost round: accepted, idempotent and refused like any win, but it posts no
//! transfer. Real Vault, real PostgreSQL and the embedded broker.

mod support;

use futures::future::join_all;
use serde_json::{Value, json};
use support::{TestPlayer, TestVault, error_code, metric, spawn_vault, win};
use tokio::sync::{Mutex, MutexGuard};
use uuid::Uuid;

/// The metrics recorder is process-wide and the tests of this binary run concurrently: the tests whose wins
/// end `ok` (counted in `vault_game_requests_total{operation="win",outcome="ok"}`) take turns, so the one
/// checking that counter sees exactly its own requests.
static WINS_OK: Mutex<()> = Mutex::const_new(());

async fn counting_wins() -> MutexGuard<'static, ()> {
    WINS_OK.lock().await
}

async fn transfers(vault: &TestVault, player: &TestPlayer) -> i64 {
    vault
        .count(
            "SELECT count(*) FROM transfers WHERE player_id = $1",
            player.id,
        )
        .await
}

async fn outbox_rows(vault: &TestVault) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&vault.db.pool)
        .await
        .unwrap()
}

async fn round_status(vault: &TestVault, round: &str) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM rounds WHERE provider = $1 AND round_id = $2")
        .bind(support::PROVIDER)
        .bind(round)
        .fetch_optional(&vault.db.pool)
        .await
        .unwrap()
}

fn win_counters(metrics: &str) -> (f64, f64, f64) {
    (
        metric(
            metrics,
            "vault_game_requests_total",
            &["operation=\"win\"", "outcome=\"ok\""],
        )
        .unwrap_or(0.0),
        metric(metrics, "vault_win_amount_eur_total", &["currency=\"EUR\""]).unwrap_or(0.0),
        metric(
            metrics,
            "vault_transfers_total",
            &["kind=\"win\"", "currency=\"EUR\""],
        )
        .unwrap_or(0.0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_win_with_close_round_settles_a_lost_round_and_posts_nothing() {
    let _turn = counting_wins().await;
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("20.00").await;
    let acme = vault.acme(&player);
    let (status, placed) = acme.bet(&session, "b1", "r1", "2.50").await;
    assert_eq!(
        (status, placed["balance"].as_str()),
        (200, Some("17.50")),
        "{placed}"
    );
    assert_eq!(round_status(&vault, "r1").await.as_deref(), Some("open"));
    let transfers_before = transfers(&vault, &player).await;
    let outbox_before = outbox_rows(&vault).await;
    let metrics_before = win_counters(&vault.metrics().await);

    let (status, closed) = acme.win("w1", "r1", "0", true).await;

    assert_eq!(status, 200, "{closed}");
    assert_eq!(
        closed,
        json!({
            "status": "ok", "transaction_id": "w1", "transfer_id": null,
            "balance": "17.50", "currency": "EUR",
        }),
        "a win's answer, with no transfer and the bet-debited balance"
    );
    assert_eq!(
        transfers(&vault, &player).await,
        transfers_before,
        "no zero-amount transfer"
    );
    assert_eq!(outbox_rows(&vault).await, outbox_before, "no outbox event");
    assert_eq!(round_status(&vault, "r1").await.as_deref(), Some("settled"));
    let settled_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT settled_at FROM rounds WHERE round_id = 'r1'")
            .fetch_one(&vault.db.pool)
            .await
            .unwrap();
    assert!(settled_at.is_some());
    let (operation, transfer_id, http_status): (String, Option<Uuid>, i16) = sqlx::query_as(
        "SELECT operation, transfer_id, http_status FROM game_transactions WHERE transaction_id = 'w1'",
    )
    .fetch_one(&vault.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (operation.as_str(), transfer_id, http_status),
        ("win", None, 200)
    );

    // Counted as a win request, adding nothing to the win amounts or the transfers.
    let (ok, win_eur, win_transfers) = win_counters(&vault.metrics().await);
    assert_eq!(
        ok,
        metrics_before.0 + 1.0,
        "vault_game_requests_total win ok"
    );
    assert_eq!(win_eur, metrics_before.1, "vault_win_amount_eur_total");
    assert_eq!(win_transfers, metrics_before.2, "vault_transfers_total win");

    // The round is settled: a later win, bet or rollback in it is refused.
    let (status, late) = acme.win("w2", "r1", "5.00", true).await;
    assert_eq!(status, 422, "{late}");
    assert_eq!(late["error"]["code"], "round_settled");
    assert_eq!(late["balance"], "17.50");
    let (status, late) = acme.win("w3", "r1", "0", true).await;
    assert_eq!(
        (status, error_code(&late)),
        (422, Some("round_settled")),
        "{late}"
    );
    let (status, late) = acme.bet(&session, "b2", "r1", "1.00").await;
    assert_eq!((status, error_code(&late)), (422, Some("round_settled")));
    let (status, late) = acme.rollback("rb1", "r1", "b1").await;
    assert_eq!((status, error_code(&late)), (422, Some("round_settled")));
    assert_eq!(vault.balance(player.id, "EUR").await, "17.50");
    assert_eq!(transfers(&vault, &player).await, transfers_before);
    assert_eq!(
        win_counters(&vault.metrics().await).0,
        metrics_before.0 + 1.0,
        "the refused wins are not ok"
    );
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_zero_win_returns_the_identical_answer_and_a_reused_id_conflicts() {
    let _turn = counting_wins().await;
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("10.00").await;
    let acme = vault.acme(&player);
    acme.bet(&session, "b1", "r1", "4.00").await;
    let zero = win(&player, "w1", "r1", "0.00", true);

    let first = vault.game("win", &zero).await;
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(first.1["transfer_id"], Value::Null);
    assert_eq!(first.1["balance"], "6.00");
    // The balance changes in between (a win in another round): the replay still answers what it answered.
    acme.bet(&session, "b2", "r2", "1.00").await;
    let (status, other) = acme.win("w-r2", "r2", "3.00", true).await;
    assert_eq!((status, other["balance"].as_str()), (200, Some("8.00")));
    let replays = join_all((0..3).map(|_| vault.game("win", &zero))).await;
    for replay in &replays {
        assert_eq!(*replay, first, "a replay returns the original answer");
    }
    assert_eq!(round_status(&vault, "r1").await.as_deref(), Some("settled"));

    // The same transaction id with another request: the usual conflict, with an abuse signal.
    let (status, conflict) = acme.win("w1", "r1", "1.00", true).await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["error"]["code"], "idempotency_conflict");
    assert_eq!(conflict["balance"], "8.00");
    // "0" and "0.00" are different requests, as "1" and "1.00" are.
    let (status, conflict) = acme.win("w1", "r1", "0", true).await;
    assert_eq!(
        (status, error_code(&conflict)),
        (409, Some("idempotency_conflict"))
    );
    // A positive win's id reused by a zero win conflicts too.
    let (status, conflict) = acme.win("w-r2", "r2", "0", true).await;
    assert_eq!(
        (status, error_code(&conflict)),
        (409, Some("idempotency_conflict"))
    );
    let signals = vault.count(
        "SELECT count(*) FROM abuse_signals WHERE signal = 'idempotency_conflict' AND player_id = $1",
        player.id,
    )
    .await;
    assert_eq!(signals, 3, "each conflicting reuse is an abuse signal");

    // A zero win without close_round leaves the round open; the win closing it pays.
    acme.bet(&session, "b3", "r3", "2.00").await;
    let (status, open) = acme.win("w3a", "r3", "0", false).await;
    assert_eq!((status, open["balance"].as_str()), (200, Some("6.00")));
    assert_eq!(round_status(&vault, "r3").await.as_deref(), Some("open"));
    let (status, paid) = acme.win("w3b", "r3", "2.50", true).await;
    assert_eq!((status, paid["balance"].as_str()), (200, Some("8.50")));
    assert!(paid["transfer_id"].is_string(), "{paid}");
    assert_eq!(
        vault
            .count(
                "SELECT count(*) FROM transfers WHERE player_id = $1 AND kind = 'win'",
                player.id,
            )
            .await,
        2,
        "only the positive wins are transfers"
    );
    assert_eq!(vault.balance(player.id, "EUR").await, "8.50");
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_win_is_refused_where_a_positive_win_is() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("10.00").await;
    let acme = vault.acme(&player);
    acme.bet(&session, "b1", "r1", "4.00").await;
    let (status, rolled) = acme.rollback("rb1", "r1", "b1").await;
    assert_eq!((status, rolled["balance"].as_str()), (200, Some("10.00")));
    let transfers_before = transfers(&vault, &player).await;

    // The bet was rolled back: named...
    let mut named = win(&player, "w1", "r1", "0", true);
    named["bet_transaction_id"] = json!("b1");
    let (status, refused) = vault.game("win", &named).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "already_rolled_back");
    assert_eq!(refused["balance"], "10.00");
    assert_eq!(refused["currency"], "EUR");
    // ...its retry gets the same refusal...
    assert_eq!(vault.game("win", &named).await, (status, refused));
    // ...and without naming it (every bet of the round was rolled back).
    let (status, refused) = acme.win("w2", "r1", "0", true).await;
    assert_eq!(
        (status, error_code(&refused)),
        (422, Some("already_rolled_back"))
    );
    assert_eq!(
        round_status(&vault, "r1").await.as_deref(),
        Some("open"),
        "a refused zero win closes nothing"
    );

    // A round without a bet.
    let (status, refused) = acme.win("w3", "no-such-round", "0", true).await;
    assert_eq!(
        (status, error_code(&refused)),
        (404, Some("round_not_found"))
    );
    assert_eq!(refused["balance"], "10.00");

    // Another player's round, and the round in another currency.
    acme.bet(&session, "b4", "r4", "1.00").await;
    let other = vault.register("EUR").await;
    let (status, refused) = vault.acme(&other).win("w4", "r4", "0", true).await;
    assert_eq!(
        (status, error_code(&refused)),
        (409, Some("round_mismatch"))
    );
    let mut usd = win(&player, "w5", "r4", "0", true);
    usd["currency"] = json!("USD");
    let (status, refused) = vault.game("win", &usd).await;
    assert_eq!(
        (status, error_code(&refused)),
        (409, Some("round_mismatch"))
    );
    assert_eq!(round_status(&vault, "r4").await.as_deref(), Some("open"));

    // An unknown player.
    let (status, refused) = vault
        .game(
            "win",
            &json!({
                "transaction_id": "w6", "round_id": "r4", "game_id": "book-of-rust",
                "player_id": Uuid::new_v4(), "currency": "EUR", "amount": "0", "close_round": true,
            }),
        )
        .await;
    assert_eq!(
        (status, error_code(&refused)),
        (404, Some("player_not_found"))
    );

    assert_eq!(
        transfers(&vault, &player).await,
        transfers_before + 1,
        "only the bet of r4"
    );
    assert_eq!(vault.balance(player.id, "EUR").await, "9.00");
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_and_malformed_win_amounts_and_zero_bets_are_still_refused() {
    let _turn = counting_wins().await;
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("10.00").await;
    let acme = vault.acme(&player);
    acme.bet(&session, "b1", "r1", "1.00").await;
    let transfers_before = transfers(&vault, &player).await;

    let cases = [
        (json!("-1.00"), 400, "invalid_amount"),
        (json!("-0.01"), 400, "invalid_amount"),
        (json!("-0"), 400, "invalid_amount"),
        (json!(-5), 400, "invalid_amount"),
        (json!("ten"), 400, "invalid_amount"),
        (json!(""), 400, "invalid_amount"),
        (json!("1e2"), 400, "invalid_amount"),
        (json!("+0"), 400, "invalid_amount"),
        (json!("0,0"), 400, "invalid_amount"),
        (json!("0.001"), 400, "amount_too_precise"),
        (json!(null), 400, "invalid_body"),
        (json!(true), 400, "invalid_body"),
    ];
    for (i, (amount, status, code)) in cases.into_iter().enumerate() {
        let mut body = win(&player, &format!("w{i}"), "r1", "0", true);
        body["amount"] = amount;
        let (got, answer) = vault.game("win", &body).await;
        assert_eq!(
            (got, error_code(&answer)),
            (status, Some(code)),
            "{body} -> {answer}"
        );
    }
    // A number zero is as valid as the string.
    let mut numeric = win(&player, "w-num", "r1", "0", false);
    numeric["amount"] = json!(0);
    let (status, answer) = vault.game("win", &numeric).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["transfer_id"], Value::Null);

    // Bets still need a positive amount.
    for (i, amount) in ["0", "0.00", "-1.00"].into_iter().enumerate() {
        let (status, answer) = acme
            .bet(&session, &format!("zb{i}"), "r-zero", amount)
            .await;
        assert_eq!(
            (status, error_code(&answer)),
            (400, Some("invalid_amount")),
            "bet of {amount}: {answer}"
        );
        assert_eq!(answer["balance"], "9.00");
    }
    assert_eq!(round_status(&vault, "r-zero").await, None);
    assert_eq!(round_status(&vault, "r1").await.as_deref(), Some("open"));
    assert_eq!(transfers(&vault, &player).await, transfers_before);
    assert_eq!(vault.balance(player.id, "EUR").await, "9.00");
    vault.stop().await;
}

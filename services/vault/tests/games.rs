//! The seamless-wallet game API against a real Vault, real PostgreSQL and the embedded broker.

mod support;

use futures::future::join_all;
use serde_json::json;
use support::{PROVIDER_SECRET, bet, error_code, metric, nth_bet, spawn_vault, win};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_bets_on_a_wallet_that_affords_ten_leave_exactly_ten_and_a_zero_balance() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("100.00").await;

    let attempts = (0..50).map(|i| {
        let body = nth_bet(&player, &session, i, "10.00");
        let vault = &vault;
        async move { vault.game("bet", &body).await }
    });
    let answers = join_all(attempts).await;

    let ok = answers.iter().filter(|(status, _)| *status == 200).count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 200)
        .collect();
    assert_eq!(ok, 10, "exactly the affordable bets succeed");
    assert_eq!(refused.len(), 40);
    for (status, body) in &refused {
        assert_eq!(*status, 422, "{body}");
        assert_eq!(body["error"]["code"], "insufficient_funds");
        assert!(
            body["balance"].is_string(),
            "the balance is in every answer: {body}"
        );
    }
    assert_eq!(vault.balance(player.id, "EUR").await, "0.00");
    let negative: i64 =
        sqlx::query_scalar("SELECT count(*) FROM accounts WHERE NOT is_system AND balance < 0")
            .fetch_one(&vault.db.pool)
            .await
            .unwrap();
    assert_eq!(negative, 0);
    let bets: i64 =
        sqlx::query_scalar("SELECT count(*) FROM transfers WHERE kind = 'bet' AND player_id = $1")
            .bind(player.id)
            .fetch_one(&vault.db.pool)
            .await
            .unwrap();
    assert_eq!(bets, 10);
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bet_sent_three_times_moves_money_once_and_answers_identically() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("50.00").await;
    let acme = vault.acme(&player);
    let body = bet(&player, &session, "dup-1", "round-dup", "5.00");

    // Sequentially...
    let first = vault.game("bet", &body).await;
    let second = vault.game("bet", &body).await;
    // ...and concurrently.
    let body2 = bet(&player, &session, "dup-2", "round-dup-2", "5.00");
    let concurrent = join_all((0..3).map(|_| vault.game("bet", &body2))).await;

    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(first, second, "a replay returns the original answer");
    assert!(
        concurrent.iter().all(|answer| *answer == concurrent[0]),
        "{concurrent:?}"
    );
    assert_eq!(concurrent[0].0, 200);
    let transfers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM transfers WHERE kind = 'bet' AND player_id = $1")
            .bind(player.id)
            .fetch_one(&vault.db.pool)
            .await
            .unwrap();
    assert_eq!(transfers, 2, "one transfer per transaction id");
    assert_eq!(vault.balance(player.id, "EUR").await, "40.00");

    // Same id, another amount: a conflict, and an abuse signal.
    let (status, conflict) = acme.bet(&session, "dup-1", "round-dup", "7.00").await;
    assert_eq!(status, 409);
    assert_eq!(conflict["error"]["code"], "idempotency_conflict");
    assert_eq!(conflict["balance"], "40.00");
    assert_eq!(vault.balance(player.id, "EUR").await, "40.00");
    let signals: i64 =
        sqlx::query_scalar("SELECT count(*) FROM abuse_signals WHERE signal = 'idempotency_conflict' AND player_id = $1")
            .bind(player.id)
            .fetch_one(&vault.db.pool)
            .await
            .unwrap();
    assert_eq!(signals, 1);
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_of_bet_and_win_settles_and_refuses_later_rollbacks_and_bets() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("20.00").await;
    let acme = vault.acme(&player);

    let (status, placed) = acme.bet(&session, "b1", "r1", "2.50").await;
    assert_eq!(
        (status, placed["balance"].as_str()),
        (200, Some("17.50")),
        "{placed}"
    );
    let (status, won) = acme.win("w1", "r1", "10.00", true).await;
    assert_eq!(
        (status, won["balance"].as_str()),
        (200, Some("27.50")),
        "{won}"
    );

    let (status, late) = acme.rollback("rb1", "r1", "b1").await;
    assert_eq!(status, 422, "{late}");
    assert_eq!(late["error"]["code"], "round_settled");
    assert_eq!(late["balance"], "27.50");
    let (status, again) = acme.bet(&session, "b2", "r1", "1.00").await;
    assert_eq!(status, 422);
    assert_eq!(again["error"]["code"], "round_settled");
    let (status, second_win) = acme.win("w2", "r1", "1.00", false).await;
    assert_eq!(
        (status, error_code(&second_win)),
        (422, Some("round_settled"))
    );
    assert_eq!(vault.balance(player.id, "EUR").await, "27.50");
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_returns_the_stake_once_and_a_duplicate_rollback_returns_the_first_answer() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("10.00").await;
    let acme = vault.acme(&player);
    acme.bet(&session, "b1", "r1", "4.00").await;
    assert_eq!(vault.balance(player.id, "EUR").await, "6.00");

    let first = acme.rollback("rb1", "r1", "b1").await;
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(first.1["balance"], "10.00");
    let duplicate = acme.rollback("rb1", "r1", "b1").await;
    assert_eq!(duplicate, first);
    // Another rollback id for the same bet moves nothing.
    let (status, other) = acme.rollback("rb2", "r1", "b1").await;
    assert_eq!(
        (status, error_code(&other)),
        (422, Some("already_rolled_back"))
    );
    assert_eq!(vault.balance(player.id, "EUR").await, "10.00");

    // A win for the rolled-back bet is refused.
    let mut late_win = win(&player, "w1", "r1", "3.00", true);
    late_win["bet_transaction_id"] = json!("b1");
    let (status, refused) = vault.game("win", &late_win).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "already_rolled_back");
    assert_eq!(refused["balance"], "10.00");
    // Also without naming the bet: every bet of the round was rolled back.
    let (status, refused) = acme.win("w2", "r1", "3.00", true).await;
    assert_eq!(
        (status, error_code(&refused)),
        (422, Some("already_rolled_back"))
    );
    assert_eq!(vault.balance(player.id, "EUR").await, "10.00");
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_before_its_bet_leaves_a_tombstone_that_refuses_the_late_bet() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("10.00").await;
    let acme = vault.acme(&player);

    let (status, early) = acme.rollback("rb-early", "r9", "b-late").await;
    assert_eq!(status, 404, "{early}");
    assert_eq!(early["error"]["code"], "bet_not_found");
    assert_eq!(early["balance"], "10.00");
    // The provider retries the rollback: same answer.
    assert_eq!(
        acme.rollback("rb-early", "r9", "b-late").await,
        (status, early)
    );

    let (status, late) = acme.bet(&session, "b-late", "r9", "1.00").await;
    assert_eq!(status, 422, "{late}");
    assert_eq!(late["error"]["code"], "already_rolled_back");
    assert_eq!(vault.balance(player.id, "EUR").await, "10.00");
    let transfers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM transfers WHERE player_id = $1 AND kind <> 'adjustment'",
    )
    .bind(player.id)
    .fetch_one(&vault.db.pool)
    .await
    .unwrap();
    assert_eq!(transfers, 0);
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wins_and_rollbacks_need_no_session_but_bets_do() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("10.00").await;
    let acme = vault.acme(&player);
    let (status, refused) = acme.bet("not-a-session", "b0", "r0", "1.00").await;
    assert_eq!(
        (status, error_code(&refused)),
        (401, Some("invalid_session"))
    );
    // Another player's session does not work either.
    let other = vault.register("EUR").await;
    let other_session = vault.session(&other).await;
    let (status, _) = acme.bet(&other_session, "b0", "r0", "1.00").await;
    assert_eq!(status, 401);

    acme.bet(&session, "b1", "r1", "1.00").await;
    // Logging out does not stop the provider settling the round.
    let (status, _) = vault.logout(&player.refresh).await;
    assert_eq!(status, 204);
    let (status, body) = acme.win("w1", "r1", "2.00", true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["balance"], "11.00");
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bets_outside_the_limits_are_refused_and_recorded_as_abuse() {
    let vault = spawn_vault().await;
    let admin = vault.admin_token().await;
    let response = vault
        .http
        .put(format!("{}/api/v1/admin/limits", vault.public))
        .bearer_auth(&admin)
        .json(&json!({ "game_id": "book-of-rust", "currency": "EUR", "min_bet": "0.10", "max_bet": "5.00" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (player, session) = vault.funded_player("100.00").await;
    let acme = vault.acme(&player);

    let (status, body) = acme.bet(&session, "big", "r1", "5.01").await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "bet_limit_exceeded");
    assert_eq!(body["balance"], "100.00");
    let (status, _) = acme.bet(&session, "small", "r2", "0.05").await;
    assert_eq!(status, 422);
    let (status, _) = acme.bet(&session, "fine", "r3", "5.00").await;
    assert_eq!(status, 200);

    let metrics = vault.metrics().await;
    assert!(
        metric(
            &metrics,
            "vault_abuse_signals_total",
            &["signal=\"over_limit\""]
        )
        .unwrap()
            >= 2.0
    );
    assert!(
        metric(
            &metrics,
            "vault_game_requests_total",
            &["operation=\"bet\"", "outcome=\"bet_limit_exceeded\""]
        )
        .unwrap()
            >= 2.0
    );
    let (status, signals) = vault
        .get(
            &format!("/api/v1/admin/abuse-signals?player_id={}", player.id),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(signals["signals"].as_array().unwrap().len(), 2);
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_and_unsigned_requests_are_refused_counted_and_move_nothing() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("10.00").await;
    let raw = serde_json::to_vec(&bet(&player, &session, "b1", "r1", "1.00")).unwrap();
    let now = chrono::Utc::now().timestamp();

    let (status, forged) = vault.game_raw("bet", &raw, "not-the-secret", now).await;
    assert_eq!((status, error_code(&forged)), (401, Some("bad_signature")));
    let (status, stale) = vault
        .game_raw("bet", &raw, PROVIDER_SECRET, now - 301)
        .await;
    assert_eq!((status, error_code(&stale)), (401, Some("stale_timestamp")));
    let unsigned = vault
        .http
        .post(format!("{}/api/v1/games/bet", vault.public))
        .header("x-casino-provider", "acme")
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    assert_eq!(vault.balance(player.id, "EUR").await, "10.00");
    // Metrics are process-wide and tests run concurrently: exact counts are checked in tests/metrics.rs.
    let metrics = vault.metrics().await;
    assert!(
        metric(
            &metrics,
            "vault_auth_failures_total",
            &["reason=\"bad_signature\""]
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        metric(
            &metrics,
            "vault_auth_failures_total",
            &["reason=\"stale_timestamp\""]
        )
        .unwrap()
            >= 1.0
    );
    let signals: i64 =
        sqlx::query_scalar("SELECT count(*) FROM abuse_signals WHERE signal = 'signature_failure'")
            .fetch_one(&vault.db.pool)
            .await
            .unwrap();
    assert_eq!(signals, 3, "forged, stale and unsigned");
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_json_error_and_never_moves_money() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("10.00").await;
    let base = bet(&player, &session, "b1", "r1", "1.00");
    let with = |field: &str, value: serde_json::Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("amount", json!("0")), 400, "invalid_amount"),
        (with("amount", json!("-1.00")), 400, "invalid_amount"),
        (with("amount", json!("1.001")), 400, "amount_too_precise"),
        (
            with("amount", json!("99999999999999999999999")),
            400,
            "amount_too_large",
        ),
        (with("amount", json!("ten")), 400, "invalid_amount"),
        (with("amount", json!(true)), 400, "invalid_body"),
        (with("currency", json!("XYZ")), 400, "unsupported_currency"),
        (with("currency", json!("E1")), 400, "invalid_body"),
        (with("player_id", json!("not-a-uuid")), 400, "invalid_body"),
        (with("unexpected", json!(1)), 400, "invalid_body"),
        (with("transaction_id", json!("")), 400, "invalid_body"),
    ];
    for (body, status, code) in cases {
        let (got, answer) = vault.game("bet", &body).await;
        assert_eq!(
            (got, error_code(&answer)),
            (status, Some(code)),
            "{body} -> {answer}"
        );
    }
    let (status, answer) = vault
        .game_raw(
            "bet",
            b"{ not json",
            PROVIDER_SECRET,
            chrono::Utc::now().timestamp(),
        )
        .await;
    assert_eq!((status, error_code(&answer)), (400, Some("malformed_json")));
    let huge = vec![b' '; 70 * 1024];
    let (status, answer) = vault
        .game_raw(
            "bet",
            &huge,
            PROVIDER_SECRET,
            chrono::Utc::now().timestamp(),
        )
        .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(error_code(&answer), Some("payload_too_large"));

    // The player API too: a JSON body error is JSON, never a 500.
    let (status, answer) = vault
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "x@y.z", "password": 5, "currency": "EUR" }),
        )
        .await;
    assert_eq!((status, error_code(&answer)), (400, Some("invalid_body")));
    assert_eq!(vault.balance(player.id, "EUR").await, "10.00");
    let metrics = vault.metrics().await;
    assert!(
        !metrics.contains("status=\"500\""),
        "no request ended in a 500"
    );
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_naming_another_round_than_its_bets_is_refused_and_moves_nothing() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("20.00").await;
    let acme = vault.acme(&player);
    let (status, placed) = acme.bet(&session, "b1", "r1", "2.50").await;
    assert_eq!(status, 200, "{placed}");
    let (status, won) = acme.win("w1", "r1", "10.00", true).await;
    assert_eq!(
        (status, won["balance"].as_str()),
        (200, Some("27.50")),
        "{won}"
    );

    // The round of b1 is settled: naming an unknown round does not get its stake back...
    let (status, refused) = acme.rollback("rb1", "r-unknown", "b1").await;
    assert_eq!(
        (status, error_code(&refused)),
        (409, Some("round_mismatch")),
        "{refused}"
    );
    assert_eq!(refused["balance"], "27.50");
    assert_eq!(refused["currency"], "EUR");
    // ...its retry gets the same (final) refusal...
    assert_eq!(
        acme.rollback("rb1", "r-unknown", "b1").await,
        (status, refused)
    );
    // ...and neither does naming another open round of the player.
    let (status, placed) = acme.bet(&session, "b2", "r2", "1.00").await;
    assert_eq!((status, placed["balance"].as_str()), (200, Some("26.50")));
    let (status, refused) = acme.rollback("rb2", "r2", "b1").await;
    assert_eq!(
        (status, error_code(&refused)),
        (409, Some("round_mismatch")),
        "{refused}"
    );
    assert_eq!(refused["balance"], "26.50");
    assert_eq!(vault.balance(player.id, "EUR").await, "26.50");
    assert_eq!(
        vault
            .count(
                "SELECT count(*) FROM transfers WHERE player_id = $1 AND kind = 'rollback'",
                player.id,
            )
            .await,
        0
    );

    // r2's bet is intact (no rollback was booked in r2): its win pays.
    let (status, paid) = acme.win("w2", "r2", "3.00", true).await;
    assert_eq!(
        (status, paid["balance"].as_str()),
        (200, Some("29.50")),
        "{paid}"
    );
    let metrics = vault.metrics().await;
    assert!(
        metric(
            &metrics,
            "vault_game_requests_total",
            &["operation=\"rollback\"", "outcome=\"round_mismatch\""]
        )
        .unwrap_or(0.0)
            >= 3.0,
        "refusals are counted by code"
    );
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_is_booked_in_its_bets_round() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("10.00").await;
    let acme = vault.acme(&player);
    acme.bet(&session, "b1", "r1", "4.00").await;
    let (status, rolled) = acme.rollback("rb1", "r1", "b1").await;
    assert_eq!(
        (status, rolled["balance"].as_str()),
        (200, Some("10.00")),
        "{rolled}"
    );
    let round: Option<String> = sqlx::query_scalar(
        "SELECT round_id FROM transfers WHERE player_id = $1 AND kind = 'rollback'",
    )
    .bind(player.id)
    .fetch_optional(&vault.db.pool)
    .await
    .unwrap();
    assert_eq!(round.as_deref(), Some("r1"));
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_win_naming_a_bet_of_another_round_or_player_is_refused() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("10.00").await;
    let acme = vault.acme(&player);
    acme.bet(&session, "b1", "r1", "1.00").await;
    acme.bet(&session, "b2", "r2", "2.00").await;
    let (status, rolled) = acme.rollback("rb2", "r2", "b2").await;
    assert_eq!(
        (status, rolled["balance"].as_str()),
        (200, Some("9.00")),
        "{rolled}"
    );

    // r2's only bet was rolled back; naming b1 (live, but in r1) must not get r2's win paid.
    let mut named = win(&player, "w2", "r2", "5.00", true);
    named["bet_transaction_id"] = json!("b1");
    let (status, refused) = vault.game("win", &named).await;
    assert_eq!(
        (status, error_code(&refused)),
        (409, Some("round_mismatch")),
        "{refused}"
    );
    assert_eq!(refused["balance"], "9.00");
    assert_eq!(vault.game("win", &named).await, (status, refused), "final");

    // Another player's bet.
    let (other, other_session) = vault.funded_player("10.00").await;
    let (status, _) = vault
        .acme(&other)
        .bet(&other_session, "ob1", "or1", "1.00")
        .await;
    assert_eq!(status, 200);
    let mut named = win(&player, "w1", "r1", "5.00", true);
    named["bet_transaction_id"] = json!("ob1");
    let (status, refused) = vault.game("win", &named).await;
    assert_eq!(
        (status, error_code(&refused)),
        (409, Some("round_mismatch")),
        "{refused}"
    );
    assert_eq!(vault.balance(player.id, "EUR").await, "9.00");

    // Naming its own bet, the win pays.
    let mut named = win(&player, "w1b", "r1", "5.00", true);
    named["bet_transaction_id"] = json!("b1");
    let (status, paid) = vault.game("win", &named).await;
    assert_eq!(
        (status, paid["balance"].as_str()),
        (200, Some("14.00")),
        "{paid}"
    );
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_win_for_a_round_whose_only_bet_was_refused_is_round_not_found() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("1.00").await;
    let acme = vault.acme(&player);
    let (status, refused) = acme.bet(&session, "b1", "r1", "5.00").await;
    assert_eq!(
        (status, error_code(&refused)),
        (422, Some("insufficient_funds"))
    );
    let (status, refused) = acme.win("w1", "r1", "3.00", true).await;
    assert_eq!(
        (status, error_code(&refused)),
        (404, Some("round_not_found")),
        "{refused}"
    );
    assert_eq!(refused["balance"], "1.00");
    let (status, refused) = acme.win("w0", "r1", "0", true).await;
    assert_eq!(
        (status, error_code(&refused)),
        (404, Some("round_not_found")),
        "{refused}"
    );
    assert_eq!(vault.balance(player.id, "EUR").await, "1.00");
    assert_eq!(
        vault
            .count(
                "SELECT count(*) FROM transfers WHERE player_id = $1 AND kind = 'win'",
                player.id,
            )
            .await,
        0
    );
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bet_refused_for_insufficient_funds_leaves_no_open_round_behind() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("3.00").await;
    let acme = vault.acme(&player);
    let open_rounds = |round: &'static str| {
        let vault = &vault;
        async move {
            vault
                .count(
                    &format!(
                        "SELECT count(*) FROM rounds WHERE player_id = $1 AND round_id = '{round}' AND status = 'open'"
                    ),
                    player.id,
                )
                .await
        }
    };

    let (status, refused) = acme.bet(&session, "b1", "fresh", "5.00").await;
    assert_eq!(
        (status, error_code(&refused)),
        (422, Some("insufficient_funds"))
    );
    assert_eq!(
        open_rounds("fresh").await,
        0,
        "no result follows a refused bet"
    );

    let (status, placed) = acme.bet(&session, "b2", "played", "2.00").await;
    assert_eq!(status, 200, "{placed}");
    let (status, refused) = acme.bet(&session, "b3", "played", "5.00").await;
    assert_eq!(
        (status, error_code(&refused)),
        (422, Some("insufficient_funds"))
    );
    assert_eq!(
        open_rounds("played").await,
        1,
        "a round with a bet stays open for its result"
    );
    let (status, won) = acme.win("w2", "played", "4.00", true).await;
    assert_eq!(status, 200, "{won}");
    assert_eq!(vault.balance(player.id, "EUR").await, "5.00");
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_win_that_raced_ahead_of_its_bet_is_credited_when_retried_after_the_bet() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("10.00").await;
    let acme = vault.acme(&player);

    // No round yet.
    let (status, early) = acme.win("w1", "r1", "2.00", true).await;
    assert_eq!(
        (status, error_code(&early)),
        (404, Some("round_not_found")),
        "{early}"
    );
    let (status, _) = acme.bet(&session, "b1", "r1", "1.00").await;
    assert_eq!(status, 200);
    // The named bet not yet there (its round is).
    let mut named = win(&player, "w2", "r1", "3.00", false);
    named["bet_transaction_id"] = json!("b2");
    let (status, early) = vault.game("win", &named).await;
    assert_eq!(
        (status, error_code(&early)),
        (404, Some("bet_not_found")),
        "{early}"
    );
    let (status, _) = acme.bet(&session, "b2", "r1", "1.00").await;
    assert_eq!(status, 200);

    // The retries, now that the bets are in, are credited.
    let (status, paid) = vault.game("win", &named).await;
    assert_eq!(
        (status, paid["balance"].as_str()),
        (200, Some("11.00")),
        "{paid}"
    );
    let (status, paid) = acme.win("w1", "r1", "2.00", true).await;
    assert_eq!(
        (status, paid["balance"].as_str()),
        (200, Some("13.00")),
        "{paid}"
    );
    // And are idempotent from then on.
    assert_eq!(acme.win("w1", "r1", "2.00", true).await, (status, paid));
    assert_eq!(vault.balance(player.id, "EUR").await, "13.00");
    vault.stop().await;
}

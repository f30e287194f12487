//! Deposits and withdrawals through the sandbox PSPs: real HTTP both ways, signed webhooks.

mod support;

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Value, json};
use support::{TestPlayer, TestVault, error_code, spawn_vault, spawn_vault_with};

async fn pay(
    vault: &TestVault,
    player: &TestPlayer,
    kind: &str,
    body: Value,
    key: &str,
) -> (u16, Value) {
    let response = vault
        .http
        .post(format!("{}/api/v1/payments/{kind}", vault.public))
        .bearer_auth(&player.token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A EUR withdrawal of `amount`, with idempotency key `key`.
async fn withdraw(vault: &TestVault, player: &TestPlayer, amount: &str, key: &str) -> (u16, Value) {
    let body = json!({ "currency": "EUR", "amount": amount });
    pay(vault, player, "withdrawals", body, key).await
}

async fn sandbox(vault: &TestVault, body: Value) {
    let admin = vault.admin_token().await;
    let response = vault
        .http
        .put(format!("{}/api/v1/admin/payments/sandbox", vault.public))
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

/// Keep the sandbox PSP's own EUR webhooks away (a minute late): the test plays the PSP.
async fn hold_sandbox_webhooks(vault: &TestVault) {
    sandbox(
        vault,
        json!({ "currency": "EUR", "failure_rate": 0.0, "latency_ms": 60000 }),
    )
    .await;
}

async fn wait_status(vault: &TestVault, player: &TestPlayer, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, payment) = vault
            .get(&format!("/api/v1/payments/{id}"), Some(&player.token))
            .await;
        assert_eq!(status, 200, "{payment}");
        if payment["status"] == want {
            return payment;
        }
        assert!(
            Instant::now() < deadline,
            "payment {id} is {} (waiting for {want})",
            payment["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A webhook as the PSP would send it, signed with `secret`.
async fn webhook(vault: &TestVault, provider: &str, secret: &str, event: &Value) -> (u16, Value) {
    let body = serde_json::to_vec(event).unwrap();
    let timestamp = chrono::Utc::now().timestamp();
    let response = vault
        .http
        .post(format!(
            "{}/api/v1/payments/webhooks/{provider}",
            vault.public
        ))
        .header("content-type", "application/json")
        .header("x-casino-timestamp", timestamp.to_string())
        .header(
            "x-casino-signature",
            casino_auth::signature::sign(secret.as_bytes(), timestamp, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_whose_success_webhook_arrives_three_times_credits_once_and_a_forged_one_credits_nothing()
 {
    let vault = spawn_vault().await;
    hold_sandbox_webhooks(&vault).await;
    let player = vault.register("EUR").await;
    let (status, payment) = pay(
        &vault,
        &player,
        "deposits",
        json!({ "currency": "EUR", "amount": "50.00", "provider": "sandbox-a" }),
        "d1",
    )
    .await;
    assert_eq!(status, 201, "{payment}");
    assert_eq!(payment["status"], "pending");
    assert!(
        payment["redirect_url"]
            .as_str()
            .unwrap()
            .contains("sandbox-a")
    );
    let id = payment["id"].as_str().unwrap();
    let event = json!({ "event_id": "evt-1", "payment_id": id, "reference": payment["provider_reference"],
                        "status": "succeeded", "amount": 5000, "currency": "EUR" });

    let forged = webhook(&vault, "sandbox-a", "not-the-secret", &event).await;
    assert_eq!(forged.0, 401);
    assert_eq!(vault.balance(player.id, "EUR").await, "0.00");

    let answers =
        join_all((0..3).map(|_| webhook(&vault, "sandbox-a", "sandbox-a-secret", &event))).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    // And a retry with a new delivery id after it settled.
    let mut again = event.clone();
    again["event_id"] = json!("evt-2");
    assert_eq!(
        webhook(&vault, "sandbox-a", "sandbox-a-secret", &again)
            .await
            .0,
        200
    );

    assert_eq!(vault.balance(player.id, "EUR").await, "50.00");
    assert_eq!(transfers_of_kind(&vault, &player, "deposit").await, 1);
    let payment = wait_status(&vault, &player, id, "succeeded").await;
    assert_eq!(payment["flagged"], false);
    let metrics = vault.metrics().await;
    assert!(
        metrics.contains("vault_payment_webhook_failures_total{"),
        "forged webhooks are counted"
    );
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_currency_completes_a_deposit_and_a_withdrawal_against_the_sandbox() {
    let vault = spawn_vault().await;
    let (_, currencies) = vault.get("/api/v1/currencies", None).await;
    for currency in currencies["currencies"].as_array().unwrap() {
        let code = currency["code"].as_str().unwrap();
        let player = vault.register(code).await;
        let deposit_amount = currency["max_withdrawal"].as_str().unwrap().to_owned();
        for (i, provider) in ["sandbox-a", "sandbox-b"].iter().enumerate() {
            let (status, deposit) = pay(
                &vault,
                &player,
                "deposits",
                json!({ "currency": code, "amount": deposit_amount, "provider": provider }),
                &format!("dep-{i}"),
            )
            .await;
            assert_eq!(status, 201, "{code}: {deposit}");
            wait_status(
                &vault,
                &player,
                deposit["id"].as_str().unwrap(),
                "succeeded",
            )
            .await;
        }
        let withdrawal_amount = currency["min_withdrawal"].as_str().unwrap();
        let (status, withdrawal) = pay(
            &vault,
            &player,
            "withdrawals",
            json!({ "currency": code, "amount": withdrawal_amount }),
            "wd",
        )
        .await;
        assert_eq!(status, 201, "{code}: {withdrawal}");
        wait_status(
            &vault,
            &player,
            withdrawal["id"].as_str().unwrap(),
            "succeeded",
        )
        .await;
        let (_, wallet) = vault.get("/api/v1/wallet", Some(&player.token)).await;
        let balance = wallet["balances"][0]["balance_minor"].as_i64().unwrap();
        let max_minor: i64 =
            sqlx::query_scalar("SELECT max_withdrawal FROM currencies WHERE code = $1")
                .bind(code)
                .fetch_one(&vault.db.pool)
                .await
                .unwrap();
        let min_minor: i64 =
            sqlx::query_scalar("SELECT min_withdrawal FROM currencies WHERE code = $1")
                .bind(code)
                .fetch_one(&vault.db.pool)
                .await
                .unwrap();
        assert_eq!(balance, 2 * max_minor - min_minor, "{code}");
    }
    let (_, mismatches) = (0, vault.metrics().await);
    assert!(mismatches.contains("vault_payments_total{"));
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_payout_returns_the_money() {
    let vault = spawn_vault().await;
    sandbox(&vault, json!({ "currency": "EUR", "direction": "withdrawal", "failure_rate": 1.0, "latency_ms": 50 })).await;
    let player = vault.register("EUR").await;
    vault.fund(player.id, "EUR", "100.00").await;
    let (status, withdrawal) = withdraw(&vault, &player, "40.00", "w1").await;
    assert_eq!(status, 201, "{withdrawal}");
    assert_eq!(
        vault.balance(player.id, "EUR").await,
        "60.00",
        "the funds are held at once"
    );
    let payment = wait_status(
        &vault,
        &player,
        withdrawal["id"].as_str().unwrap(),
        "reversed",
    )
    .await;
    assert_eq!(payment["failure_reason"], "payout_rejected_by_bank");
    assert_eq!(vault.balance(player.id, "EUR").await, "100.00");
    assert_eq!(
        transfers_of_kind(&vault, &player, "withdrawal_reversal").await,
        1
    );
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_withdrawals_can_never_overdraw() {
    let vault = spawn_vault().await;
    let player = vault.register("EUR").await;
    vault.fund(player.id, "EUR", "100.00").await;
    let attempts = (0..10).map(|i| {
        let vault = &vault;
        let player = &player;
        async move { withdraw(vault, player, "20.00", &format!("w{i}")).await }
    });
    let answers = join_all(attempts).await;
    let accepted = answers.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(accepted, 5, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 201) {
        assert_eq!(
            (*status, error_code(body)),
            (422, Some("insufficient_funds"))
        );
    }
    assert_eq!(vault.balance(player.id, "EUR").await, "0.00");
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_above_the_review_threshold_is_paid_only_after_approval_and_rejection_returns_the_funds()
 {
    let vault = spawn_vault().await;
    let admin = vault.admin_token().await;
    let player = vault.register("EUR").await;
    vault.fund(player.id, "EUR", "6000.00").await;
    let (status, big) = withdraw(&vault, &player, "2500.00", "big1").await;
    assert_eq!(status, 201, "{big}");
    assert_eq!(big["status"], "review");
    assert_eq!(vault.balance(player.id, "EUR").await, "3500.00");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let id = big["id"].as_str().unwrap();
    assert_eq!(
        wait_status(&vault, &player, id, "review").await["status"],
        "review",
        "no payout without approval"
    );

    let (status, queue) = vault
        .get("/api/v1/admin/withdrawals?status=review", Some(&admin))
        .await;
    assert_eq!(status, 200);
    assert_eq!(queue["items"][0]["id"], id);
    let (status, _) = decide(&vault, &player.token, id, "approve").await;
    assert_eq!(status, 403);
    let (status, approved) = decide(&vault, &admin, id, "approve").await;
    assert_eq!(status, 200, "{approved}");
    wait_status(&vault, &player, id, "succeeded").await;

    let (_, second) = withdraw(&vault, &player, "2500.00", "big2").await;
    let second_id = second["id"].as_str().unwrap();
    let (status, rejected) = decide(&vault, &admin, second_id, "reject").await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(vault.balance(player.id, "EUR").await, "3500.00");
    let (status, again) = decide(&vault, &admin, second_id, "approve").await;
    assert_eq!((status, error_code(&again)), (409, Some("not_in_review")));
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_approval_and_rejection_racing_on_one_withdrawal_never_both_take_effect() {
    let vault = spawn_vault().await;
    hold_sandbox_webhooks(&vault).await;
    let admin = vault.admin_token().await;
    // Three withdrawals per player stay inside the daily withdrawal limit.
    let mut ids = Vec::new();
    for p in 0..3 {
        let player = vault.register("EUR").await;
        vault.fund(player.id, "EUR", "8000.00").await;
        for i in 0..3 {
            let key = format!("race{p}-{i}");
            let (status, payment) = withdraw(&vault, &player, "2500.00", &key).await;
            assert_eq!(
                (status, &payment["status"]),
                (201, &json!("review")),
                "{payment}"
            );
            ids.push(payment["id"].as_str().unwrap().to_owned());
        }
    }

    let races = ids.iter().map(|id| async {
        let (approved, rejected) = tokio::join!(
            decide(&vault, &admin, id, "approve"),
            decide(&vault, &admin, id, "reject")
        );
        (id.clone(), approved, rejected)
    });
    for (id, (approve_status, approved), (reject_status, rejected)) in join_all(races).await {
        let reversals: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM transfers WHERE kind = 'withdrawal_reversal' AND metadata->>'payment_id' = $1",
        )
        .bind(&id)
        .fetch_one(&vault.db.pool)
        .await
        .unwrap();
        let status: String = sqlx::query_scalar("SELECT status FROM payments WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&vault.db.pool)
            .await
            .unwrap();
        match (approve_status, reject_status) {
            (200, 409) => {
                assert_eq!(error_code(&rejected), Some("not_in_review"));
                assert_eq!(reversals, 0, "an approved payout keeps its hold ({status})");
                assert_ne!(status, "rejected");
            }
            (409, 200) => {
                assert_eq!(error_code(&approved), Some("not_in_review"));
                assert_eq!(reversals, 1, "a rejection returns the hold once");
                assert_eq!(status, "rejected");
            }
            other => {
                panic!("exactly one decision must win for {id}: {other:?} {approved} {rejected}")
            }
        }
    }
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_reported_after_the_funds_were_returned_is_flagged_for_staff() {
    let vault = spawn_vault().await;
    hold_sandbox_webhooks(&vault).await;
    let admin = vault.admin_token().await;
    let player = vault.register("EUR").await;
    vault.fund(player.id, "EUR", "3000.00").await;
    let (_, payment) = withdraw(&vault, &player, "2500.00", "returned").await;
    let id = payment["id"].as_str().unwrap();
    let (status, rejected) = decide(&vault, &admin, id, "reject").await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(vault.balance(player.id, "EUR").await, "3000.00");

    let event = json!({ "event_id": "evt-paid-anyway", "payment_id": id, "reference": "psp-ref-1",
                        "status": "succeeded", "amount": 250000, "currency": "EUR" });
    let provider = payment["provider"].as_str().unwrap();
    let secret = format!("{provider}-secret");
    let (status, answer) = webhook(&vault, provider, &secret, &event).await;

    assert_eq!(
        (status, &answer["status"], &answer["payment_status"]),
        (200, &json!("flagged"), &json!("rejected")),
        "{answer}"
    );
    let (_, payment) = vault
        .get(&format!("/api/v1/payments/{id}"), Some(&player.token))
        .await;
    assert_eq!(payment["flagged"], true, "{payment}");
    assert_eq!(payment["status"], "rejected");
    assert_eq!(
        vault.balance(player.id, "EUR").await,
        "3000.00",
        "nothing is taken back automatically"
    );
    let flagged = support::metric(
        &vault.metrics().await,
        "vault_payments_flagged_total",
        &[
            "direction=\"withdrawal\"",
            &format!("provider=\"{provider}\""),
            "currency=\"EUR\"",
        ],
    );
    assert_eq!(flagged, Some(1.0));
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_deposit_with_a_late_success_webhook_is_credited_and_flagged() {
    let vault = spawn_vault_with(|settings| settings.payment_expiry = Duration::from_secs(1)).await;
    hold_sandbox_webhooks(&vault).await;
    let player = vault.register("EUR").await;
    let (_, payment) = pay(
        &vault,
        &player,
        "deposits",
        json!({ "currency": "EUR", "amount": "30.00" }),
        "late",
    )
    .await;
    let id = payment["id"].as_str().unwrap();
    wait_status(&vault, &player, id, "expired").await;
    let event = json!({ "event_id": "evt-late", "payment_id": id, "reference": payment["provider_reference"],
                        "status": "succeeded", "amount": 3000, "currency": "EUR" });
    let (status, _) = webhook(&vault, "sandbox-a", "sandbox-a-secret", &event).await;
    assert_eq!(status, 200);
    let payment = wait_status(&vault, &player, id, "succeeded").await;
    assert_eq!(payment["flagged"], true);
    assert_eq!(vault.balance(player.id, "EUR").await, "30.00");
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_rules_refuse_with_their_own_codes_and_players_see_only_their_own() {
    let vault = spawn_vault().await;
    let player = vault.register("EUR").await;
    vault.fund(player.id, "EUR", "100.00").await;
    let cases = [
        (
            "deposits",
            json!({ "currency": "EUR", "amount": "1.00" }),
            422,
            "amount_below_minimum",
        ),
        (
            "deposits",
            json!({ "currency": "EUR", "amount": "20000.00" }),
            422,
            "amount_above_maximum",
        ),
        (
            "deposits",
            json!({ "currency": "EUR", "amount": "20.00", "provider": "nope" }),
            400,
            "unknown_provider",
        ),
        (
            "deposits",
            json!({ "currency": "XYZ", "amount": "20.00" }),
            400,
            "unsupported_currency",
        ),
        (
            "withdrawals",
            json!({ "currency": "EUR", "amount": "10.00" }),
            422,
            "amount_below_minimum",
        ),
        (
            "withdrawals",
            json!({ "currency": "EUR", "amount": "20.001" }),
            400,
            "amount_too_precise",
        ),
    ];
    for (i, (kind, body, status, code)) in cases.into_iter().enumerate() {
        let (got, answer) = pay(&vault, &player, kind, body.clone(), &format!("k{i}")).await;
        assert_eq!((got, error_code(&answer)), (status, Some(code)), "{body}");
    }
    let missing_key = vault
        .http
        .post(format!("{}/api/v1/payments/deposits", vault.public))
        .bearer_auth(&player.token)
        .json(&json!({ "currency": "EUR", "amount": "20.00" }))
        .send()
        .await
        .unwrap();
    assert_eq!(missing_key.status(), 400);

    let (_, mine) = pay(
        &vault,
        &player,
        "deposits",
        json!({ "currency": "EUR", "amount": "20.00" }),
        "mine",
    )
    .await;
    let other = vault.register("EUR").await;
    let (status, _) = vault
        .get(
            &format!("/api/v1/payments/{}", mine["id"].as_str().unwrap()),
            Some(&other.token),
        )
        .await;
    assert_eq!(status, 404);
    let (_, list) = vault.get("/api/v1/payments", Some(&other.token)).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let (_, list) = vault.get("/api/v1/payments", Some(&player.token)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // A locked player cannot withdraw.
    let admin = vault.admin_token().await;
    vault
        .post(
            &format!("/api/v1/admin/players/{}/lock", player.id),
            Some(&admin),
            json!({ "reason": "review" }),
        )
        .await;
    let (status, body) = withdraw(&vault, &player, "20.00", "locked").await;
    assert_eq!((status, error_code(&body)), (423, Some("player_locked")));
    // Nothing is held (the balance may still move: the deposit above settles on its own).
    assert_eq!(
        vault
            .count(
                "SELECT count(*) FROM payments WHERE direction = 'withdrawal' AND player_id = $1",
                player.id
            )
            .await,
        0
    );
    assert_eq!(transfers_of_kind(&vault, &player, "withdrawal").await, 0);
    vault.stop().await;
}

/// A payment whose body is sent as written (a JSON number exactly as typed).
async fn pay_raw(
    vault: &TestVault,
    player: &TestPlayer,
    kind: &str,
    body: &str,
    key: &str,
) -> (u16, Value) {
    let response = vault
        .http
        .post(format!("{}/api/v1/payments/{kind}", vault.public))
        .bearer_auth(&player.token)
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `POST /api/v1/admin/withdrawals/{id}/{decision}` (`approve`, or `reject` with a reason) with `token`.
async fn decide(vault: &TestVault, token: &str, id: &str, decision: &str) -> (u16, Value) {
    let body = if decision == "reject" {
        json!({ "reason": "source of funds unclear" })
    } else {
        json!({})
    };
    let path = format!("/api/v1/admin/withdrawals/{id}/{decision}");
    vault.post(&path, Some(token), body).await
}

async fn transfers_of_kind(vault: &TestVault, player: &TestPlayer, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM transfers WHERE kind = $1 AND player_id = $2")
        .bind(kind)
        .bind(player.id)
        .fetch_one(&vault.db.pool)
        .await
        .unwrap()
}

async fn count_payments(vault: &TestVault, player: &TestPlayer, direction: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM payments WHERE player_id = $1 AND direction = $2")
        .bind(player.id)
        .bind(direction)
        .fetch_one(&vault.db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_and_a_withdrawal_with_the_same_idempotency_key_are_a_conflict_not_a_replay() {
    let vault = spawn_vault().await;
    hold_sandbox_webhooks(&vault).await;
    let player = vault.register("EUR").await;
    vault.fund(player.id, "EUR", "100.00").await;
    let body = json!({ "currency": "EUR", "amount": "50.00", "provider": "sandbox-a" });

    // Each direction first, then the other one with the same body and key; the first still replays.
    for (first, then, key) in [
        ("deposits", "withdrawals", "shared-1"),
        ("withdrawals", "deposits", "shared-2"),
    ] {
        let direction = first.trim_end_matches('s');
        let (status, created) = pay(&vault, &player, first, body.clone(), key).await;
        assert_eq!(
            (status, &created["direction"]),
            (201, &json!(direction)),
            "{created}"
        );
        let (status, answer) = pay(&vault, &player, then, body.clone(), key).await;
        assert_eq!(
            (status, error_code(&answer)),
            (409, Some("idempotency_conflict")),
            "{then} must not be answered with the {direction}: {answer}"
        );
        let (status, again) = pay(&vault, &player, first, body.clone(), key).await;
        assert_eq!((status, &again["id"]), (201, &created["id"]), "{again}");
    }

    assert_eq!(count_payments(&vault, &player, "deposit").await, 1);
    assert_eq!(count_payments(&vault, &player, "withdrawal").await, 1);
    assert_eq!(
        vault.balance(player.id, "EUR").await,
        "50.00",
        "one hold of 50.00"
    );
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_committed_while_a_withdrawal_waits_for_the_player_row_refuses_the_withdrawal() {
    let vault = spawn_vault().await;
    hold_sandbox_webhooks(&vault).await;
    let player = vault.register("EUR").await;
    vault.fund(player.id, "EUR", "100.00").await;

    // Staff locking the player: the row is held (as `players::lock` holds it) while the withdrawal's own
    // early check still reads the player as unlocked.
    let mut lock = vault.db.pool.begin().await.unwrap();
    sqlx::query("SELECT locked FROM players WHERE id = $1 FOR UPDATE")
        .bind(player.id)
        .execute(&mut *lock)
        .await
        .unwrap();
    let lock_commits_once_the_withdrawal_waits = async {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%players%'",
            )
            .fetch_one(&vault.db.pool)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the withdrawal never waited for the player's row"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sqlx::query("UPDATE players SET locked = TRUE, lock_reason = 'fraud review' WHERE id = $1")
            .bind(player.id)
            .execute(&mut *lock)
            .await
            .unwrap();
        lock.commit().await.unwrap();
    };
    let ((status, body), ()) = tokio::join!(
        withdraw(&vault, &player, "40.00", "racing-the-lock"),
        lock_commits_once_the_withdrawal_waits
    );

    assert_eq!(
        (status, error_code(&body)),
        (423, Some("player_locked")),
        "{body}"
    );
    assert_eq!(
        vault.balance(player.id, "EUR").await,
        "100.00",
        "nothing is held"
    );
    assert_eq!(count_payments(&vault, &player, "withdrawal").await, 0);
    assert_eq!(transfers_of_kind(&vault, &player, "withdrawal").await, 0);
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_amounts_are_booked_exactly_as_sent_or_refused() {
    let vault = spawn_vault().await;
    hold_sandbox_webhooks(&vault).await;
    let player = vault.register("EUR").await;
    let cases = [
        // An exponent is refused as a number as it is as a string (a float would make it 100.00).
        (
            r#"{"currency": "EUR", "amount": 1e2}"#,
            400,
            "invalid_amount",
        ),
        (
            r#"{"currency": "EUR", "amount": "1e2"}"#,
            400,
            "invalid_amount",
        ),
        (
            r#"{"currency": "EUR", "amount": 2.5E1}"#,
            400,
            "invalid_amount",
        ),
        // Digits a float or a 28-digit decimal cannot hold are not rounded away.
        (
            r#"{"currency": "EUR", "amount": 20.000000000000001}"#,
            400,
            "amount_too_precise",
        ),
        (
            r#"{"currency": "EUR", "amount": "20.00999999999999999999999999999"}"#,
            400,
            "amount_too_precise",
        ),
        (
            r#"{"currency": "EUR", "amount": "0.0099999999999999999999999999999"}"#,
            400,
            "amount_too_precise",
        ),
    ];
    for (i, (body, status, code)) in cases.into_iter().enumerate() {
        let (got, answer) = pay_raw(&vault, &player, "deposits", body, &format!("exact-{i}")).await;
        assert_eq!(
            (got, error_code(&answer)),
            (status, Some(code)),
            "{body} -> {answer}"
        );
    }
    assert_eq!(count_payments(&vault, &player, "deposit").await, 0);

    // Plain numbers that are exact are still welcome.
    for (i, (amount, booked)) in [("20", "20.00"), ("20.5", "20.50"), ("20.50", "20.50")]
        .into_iter()
        .enumerate()
    {
        let body = format!(r#"{{"currency": "EUR", "amount": {amount}}}"#);
        let (status, payment) =
            pay_raw(&vault, &player, "deposits", &body, &format!("plain-{i}")).await;
        assert_eq!(
            (status, &payment["amount"]),
            (201, &json!(booked)),
            "{body} -> {payment}"
        );
    }
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_with_a_timestamp_at_the_end_of_the_range_is_stale() {
    let vault = spawn_vault().await;
    let body = br#"{"event_id": "evt-x"}"#.to_vec();
    for timestamp in [i64::MIN, i64::MAX] {
        let response = vault
            .http
            .post(format!(
                "{}/api/v1/payments/webhooks/sandbox-a",
                vault.public
            ))
            .header("content-type", "application/json")
            .header("x-casino-timestamp", timestamp.to_string())
            .header(
                "x-casino-signature",
                casino_auth::signature::sign(b"sandbox-a-secret", timestamp, &body),
            )
            .body(body.clone())
            .send()
            .await
            .expect("an answer, not a dropped connection");
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (status, error_code(&answer)),
            (401, Some("stale_timestamp")),
            "{timestamp}: {answer}"
        );
    }
    vault.stop().await;
}

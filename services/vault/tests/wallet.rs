//! Wallet, currencies, staff adjustments, the internal API and the abuse policy.

mod support;

use serde_json::json;
use support::{error_code, nth_bet, nth_rollback, spawn_vault, spawn_vault_with};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wallet_lists_balances_per_currency_and_pages_transfers_newest_first() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("10.00").await;
    vault.fund(player.id, "BTC", "0.00050000").await;
    vault.fund(player.id, "JPY", "1500").await;
    for i in 0..5 {
        vault
            .game("bet", &nth_bet(&player, &session, i, "1.00"))
            .await;
    }

    let (status, wallet) = vault.get("/api/v1/wallet", Some(&player.token)).await;
    assert_eq!(status, 200);
    let balances = wallet["balances"].as_array().unwrap();
    let find = |c: &str| balances.iter().find(|b| b["currency"] == c).unwrap()["balance"].clone();
    assert_eq!(find("EUR"), "5.00");
    assert_eq!(find("BTC"), "0.00050000");
    assert_eq!(find("JPY"), "1500");

    let (status, page) = vault
        .get(
            "/api/v1/wallet/transfers?limit=3&currency=EUR",
            Some(&player.token),
        )
        .await;
    assert_eq!(status, 200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["kind"], "bet");
    assert_eq!(items[0]["delta"], "-1.00");
    assert_eq!(items[0]["balance_after"], "5.00", "newest first");
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = vault
        .get(
            &format!("/api/v1/wallet/transfers?limit=3&currency=EUR&cursor={cursor}"),
            Some(&player.token),
        )
        .await;
    let rest = rest["items"].as_array().unwrap();
    assert_eq!(rest.len(), 3, "2 bets and the EUR funding");
    assert_eq!(rest[2]["kind"], "adjustment");
    let (_, only_bets) = vault
        .get("/api/v1/wallet/transfers?kind=bet", Some(&player.token))
        .await;
    assert_eq!(only_bets["items"].as_array().unwrap().len(), 5);
    let (status, bad) = vault
        .get("/api/v1/wallet/transfers?kind=refund", Some(&player.token))
        .await;
    assert_eq!((status, error_code(&bad)), (400, Some("invalid_query")));
    let (status, _) = vault
        .get("/api/v1/wallet/transfers?cursor=zzz", Some(&player.token))
        .await;
    assert_eq!(status, 400);

    // Another player sees none of it.
    let other = vault.register("EUR").await;
    let (_, theirs) = vault
        .get("/api/v1/wallet/transfers", Some(&other.token))
        .await;
    assert!(theirs["items"].as_array().unwrap().is_empty());
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn currencies_are_listed_with_their_rates_and_every_transfer_stores_its_eur_value() {
    let vault = spawn_vault().await;
    let (status, body) = vault.get("/api/v1/currencies", None).await;
    assert_eq!(status, 200);
    let currencies = body["currencies"].as_array().unwrap();
    let codes: Vec<&str> = currencies
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["BTC", "CAD", "EUR", "GBP", "JPY", "USD"]);
    let eur = currencies.iter().find(|c| c["code"] == "EUR").unwrap();
    assert_eq!(eur["rate_eur"], "1");
    assert_eq!(eur["exponent"], 2);

    let player = vault.register("USD").await;
    vault.fund(player.id, "USD", "100.00").await;
    let (amount_eur,): (rust_decimal::Decimal,) =
        sqlx::query_as("SELECT amount_eur FROM transfers WHERE player_id = $1")
            .bind(player.id)
            .fetch_one(&vault.db.pool)
            .await
            .unwrap();
    let usd = currencies.iter().find(|c| c["code"] == "USD").unwrap()["rate_eur"]
        .as_str()
        .unwrap();
    let usd: rust_decimal::Decimal = usd.parse().unwrap();
    assert!(
        (amount_eur - usd * rust_decimal::Decimal::from(100)).abs()
            < rust_decimal::Decimal::new(1, 0)
    );
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjustments_need_a_reason_are_idempotent_and_cannot_overdraw() {
    let vault = spawn_vault().await;
    let admin = vault.admin_token().await;
    let player = vault.register("EUR").await;
    let adjust = |key: &str, amount: &str, reason: &str| {
        vault
            .http
            .post(format!("{}/api/v1/admin/adjustments", vault.public))
            .bearer_auth(&admin)
            .header("idempotency-key", key)
            .json(&json!({ "player_id": player.id, "currency": "EUR", "amount": amount, "reason": reason }))
            .send()
    };
    let first = adjust("k1", "25.00", "goodwill").await.unwrap();
    assert_eq!(first.status(), 201);
    let first: serde_json::Value = first.json().await.unwrap();
    let again: serde_json::Value = adjust("k1", "25.00", "goodwill")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first, again, "the same key replays the first answer");
    let conflict = adjust("k1", "30.00", "goodwill").await.unwrap();
    assert_eq!(conflict.status(), 409);
    let no_reason = adjust("k2", "1.00", "  ").await.unwrap();
    assert_eq!(no_reason.status(), 400);
    let overdraw = adjust("k3", "-26.00", "correction").await.unwrap();
    assert_eq!(overdraw.status(), 422);
    let debit = adjust("k4", "-5.00", "correction").await.unwrap();
    assert_eq!(debit.status(), 201);
    assert_eq!(vault.balance(player.id, "EUR").await, "20.00");
    let (status, _) = vault.get("/api/v1/wallet", Some(&admin)).await;
    assert_eq!(status, 403, "staff have no wallet");
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adjustment_whose_magnitude_does_not_fit_in_minor_units_is_refused() {
    let vault = spawn_vault().await;
    let admin = vault.admin_token().await;
    let player = vault.register("EUR").await;
    vault.fund(player.id, "EUR", "10.00").await;
    let adjust = |key: String, currency: &'static str, amount: &'static str| {
        let request = vault
            .http
            .post(format!("{}/api/v1/admin/adjustments", vault.public))
            .bearer_auth(&admin)
            .header("idempotency-key", key)
            .json(&json!({ "player_id": player.id, "currency": currency, "amount": amount, "reason": "correction" }));
        async move {
            let response = request
                .send()
                .await
                .expect("an answer, not a dropped connection");
            let status = response.status().as_u16();
            (
                status,
                response
                    .json::<serde_json::Value>()
                    .await
                    .unwrap_or_default(),
            )
        }
    };
    // i64::MIN minor units: the debit's size has no i64.
    for (i, (currency, amount)) in [
        ("EUR", "-92233720368547758.08"),
        ("JPY", "-9223372036854775808"),
        ("EUR", "-92233720368547758.09"),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, body) = adjust(format!("min-{i}"), currency, amount).await;
        assert_eq!(
            (status, error_code(&body)),
            (400, Some("amount_too_large")),
            "{currency} {amount}: {body}"
        );
    }
    // The largest debit that fits is judged on the balance.
    let (status, body) = adjust("max".into(), "EUR", "-92233720368547758.07").await;
    assert_eq!(
        (status, error_code(&body)),
        (422, Some("insufficient_funds")),
        "{body}"
    );
    assert_eq!(vault.balance(player.id, "EUR").await, "10.00");
    assert_eq!(
        vault
            .count(
                "SELECT count(*) FROM transfers WHERE kind = 'adjustment' AND player_id = $1",
                player.id
            )
            .await,
        1,
        "only the funding"
    );
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_api_needs_its_token_credits_idempotently_and_reports_net_wagering() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("50.00").await;
    let acme = vault.acme(&player);
    acme.bet(&session, "b1", "r1", "10.00").await;
    acme.win("w1", "r1", "4.00", true).await;
    acme.bet(&session, "b2", "r2", "3.00").await;
    acme.rollback("rb2", "r2", "b2").await;
    acme.bet(&session, "b3", "r3", "2.50").await;

    let url = |path: &str| format!("{}{path}", vault.admin);
    let from = "2000-01-01T00:00:00Z";
    let to = "2100-01-01T00:00:00Z";
    let wagering = vault
        .http
        .get(url(&format!(
            "/internal/v1/players/{}/wagering?from={from}&to={to}",
            player.id
        )))
        .bearer_auth("test-internal-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wagering.status(), 200);
    let wagering: serde_json::Value = wagering.json().await.unwrap();
    assert_eq!(
        wagering["wagered_eur"], "12.5",
        "10 + 2.50; the rolled-back 3.00 does not count"
    );
    assert_eq!(wagering["won_eur"], "4");
    assert_eq!(wagering["bets"], 2);
    let denied = vault
        .http
        .get(url(&format!(
            "/internal/v1/players/{}/wagering?from={from}&to={to}",
            player.id
        )))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);

    let credit = json!({ "player_id": player.id, "currency": "EUR", "amount": "7.50", "kind": "bonus",
                         "idempotency_key": "bonus-1", "reason": "welcome bonus" });
    let send = |body: serde_json::Value| {
        vault
            .http
            .post(url("/internal/v1/credits"))
            .bearer_auth("test-internal-token")
            .json(&body)
            .send()
    };
    let first: serde_json::Value = send(credit.clone()).await.unwrap().json().await.unwrap();
    let second: serde_json::Value = send(credit.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        vault.balance(player.id, "EUR").await,
        "49.00",
        "50 - 10 + 4 - 3 + 3 (rolled back) - 2.50 + 7.50"
    );
    let mut wrong_kind = credit.clone();
    wrong_kind["kind"] = json!("win");
    wrong_kind["idempotency_key"] = json!("bonus-2");
    assert_eq!(send(wrong_kind).await.unwrap().status(), 400);
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_abuse_records_a_signal_and_the_policy_locks_the_player() {
    let vault = spawn_vault_with(|settings| {
        settings.abuse.lock_after_signals = 1;
    })
    .await;
    let (player, session) = vault.funded_player("100.00").await;
    let acme = vault.acme(&player);
    // 10 bets, then roll back 6 of them: a ratio of 0.6 over the 0.5 threshold.
    for i in 0..10 {
        let (status, _) = vault
            .game("bet", &nth_bet(&player, &session, i, "1.00"))
            .await;
        assert_eq!(status, 200);
    }
    for i in 0..6 {
        let (status, body) = vault.game("rollback", &nth_rollback(&player, i)).await;
        assert_eq!(status, 200, "{body}");
    }
    let signals: Vec<String> =
        sqlx::query_scalar("SELECT signal FROM abuse_signals WHERE player_id = $1")
            .bind(player.id)
            .fetch_all(&vault.db.pool)
            .await
            .unwrap();
    assert_eq!(signals, ["rollback_ratio"]);
    let (status, body) = acme.bet(&session, "b-after", "r-after", "1.00").await;
    assert_eq!((status, error_code(&body)), (423, Some("player_locked")));
    // Rollbacks and wins still settle (money owed to or by the player).
    let (status, _) = vault.game("rollback", &nth_rollback(&player, 9)).await;
    assert_eq!(status, 200);
    let locked_event: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE topic = 'vault.players.v1' AND key = $1 AND convert_from(payload, 'UTF8') LIKE '%player.locked%'",
    )
    .bind(player.id.to_string())
    .fetch_one(&vault.db.pool)
    .await
    .unwrap();
    assert_eq!(locked_event, 1);
    let _ = Uuid::nil();
    vault.stop().await;
}

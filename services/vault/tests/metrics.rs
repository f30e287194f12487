//! Exact metric values. Its own test binary with one test: the recorder is process-wide, so concurrent
//! tests would add to each other's counters.

mod support;

use support::{bet, metric, spawn_vault};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn game_metrics_count_each_operation_by_outcome_and_eur_totals_add_up() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("3.00").await;
    let acme = vault.acme(&player);
    acme.bet(&session, "b1", "r1", "2.00").await;
    acme.bet(&session, "b2", "r2", "2.00").await;
    acme.win("w1", "r1", "1.50", true).await;
    let raw = serde_json::to_vec(&bet(&player, &session, "b3", "r3", "1.00")).unwrap();
    vault
        .game_raw("bet", &raw, "wrong-secret", chrono::Utc::now().timestamp())
        .await;

    let metrics = vault.metrics().await;
    let value = |name: &str, labels: &[&str]| metric(&metrics, name, labels);
    assert_eq!(
        value(
            "vault_game_requests_total",
            &["operation=\"bet\"", "outcome=\"ok\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            "vault_game_requests_total",
            &["operation=\"bet\"", "outcome=\"insufficient_funds\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            "vault_game_requests_total",
            &["operation=\"bet\"", "outcome=\"bad_signature\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            "vault_game_requests_total",
            &["operation=\"win\"", "outcome=\"ok\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            "vault_transfers_total",
            &["kind=\"bet\"", "currency=\"EUR\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            "vault_transfers_total",
            &["kind=\"adjustment\"", "currency=\"EUR\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        value("vault_bet_amount_eur_total", &["currency=\"EUR\""]),
        Some(2.0)
    );
    assert_eq!(
        value("vault_win_amount_eur_total", &["currency=\"EUR\""]),
        Some(1.5)
    );
    assert_eq!(
        value("vault_auth_failures_total", &["reason=\"bad_signature\""]),
        Some(1.0)
    );
    assert_eq!(
        value(
            "vault_abuse_signals_total",
            &["signal=\"signature_failure\""]
        ),
        Some(1.0)
    );
    assert!(value("vault_exchange_rate", &["currency=\"USD\""]).unwrap() > 0.8);
    assert!(value("vault_exchange_rate_age_seconds", &["currency=\"USD\""]).unwrap() < 60.0);
    for gauge in [
        "vault_outbox_pending",
        "vault_outbox_oldest_age_seconds",
        "vault_ledger_mismatches",
    ] {
        assert!(value(gauge, &[]).is_some(), "{gauge} is exported");
    }
    vault.stop().await;
}

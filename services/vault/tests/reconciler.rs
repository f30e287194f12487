//! The reconciler proves the ledger balances. Its own test binary: `vault_ledger_mismatches` is a
//! process-wide gauge that every Vault in a process would set.

mod support;

use std::time::{Duration, Instant};

use support::{metric, spawn_vault};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balance_corrupted_by_hand_is_reported_and_the_report_clears_when_repaired() {
    let vault = spawn_vault().await;
    let (player, session) = vault.funded_player("10.00").await;
    let acme = vault.acme(&player);
    let (status, _) = acme.bet(&session, "b1", "r1", "1.00").await;
    assert_eq!(status, 200);
    assert_eq!(
        wait_for_mismatches(&vault, 0.0).await,
        0.0,
        "a healthy ledger has no mismatch"
    );

    sqlx::query("UPDATE accounts SET balance = balance + 1 WHERE player_id = $1")
        .bind(player.id)
        .execute(&vault.db.pool)
        .await
        .unwrap();
    assert_eq!(wait_for_mismatches(&vault, 1.0).await, 1.0);

    sqlx::query("UPDATE accounts SET balance = balance - 1 WHERE player_id = $1")
        .bind(player.id)
        .execute(&vault.db.pool)
        .await
        .unwrap();
    assert_eq!(wait_for_mismatches(&vault, 0.0).await, 0.0);
    vault.stop().await;
}

async fn wait_for_mismatches(vault: &support::TestVault, want: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = metric(&vault.metrics().await, "vault_ledger_mismatches", &[]).unwrap_or(-1.0);
        if got == want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

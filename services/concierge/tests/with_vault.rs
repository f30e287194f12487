//! End to end with the real Vault: bets placed through Vault's signed game API reach Concierge over Kafka,
//! show up in `/rewards/me` and on the leaderboard, and the reconciler finds Concierge and Vault in
//! agreement; an event Concierge "missed" shows up as a mismatch.

mod support;
mod vault_support;

use casino_concierge::reconciler::HttpVault;
use support::{
    VAULT_INTERNAL_TOKEN, concierge_with_vault, forget_reconciled_windows, get,
    kafka_with_all_topics, reconcile, wait_for_lifetime_wagered,
};
use vault_support::RunningVault;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bets_through_vaults_game_api_become_rewards_and_the_reconciler_agrees_with_vault() {
    let kafka = kafka_with_all_topics();
    let vault = RunningVault::start(&kafka).await;

    // Concierge, verifying tokens with Vault's JWKS over HTTP and reconciling against Vault's internal API.
    let (concierge, concierge_db) =
        concierge_with_vault(&kafka, &vault.url, &vault.admin_url).await;

    // A player bets through the game provider: two bets, one rolled back, one win.
    let admin = vault.admin_token().await;
    let player = vault.funded_player(&admin, "gambler", "500.00").await;
    vault.bet(&player, "b1", "r1", "120.00").await;
    vault.bet(&player, "b2", "r2", "30.00").await;
    vault.rollback(&player, "rb2", "r2", "b2").await;
    vault.win(&player, "w1", "r1", "50.00").await;

    // Concierge sees exactly the net wagering: 120 (the 30 was rolled back), 120 VIP points on slots.
    let rewards = wait_for_lifetime_wagered(&concierge, &player.access_token, "120").await;
    assert_eq!(rewards["vip_points"], 120, "{rewards}");
    let (status, board) = get(
        &format!("{}/api/v1/leaderboards/daily?limit=10", concierge.public),
        Some(&player.access_token),
    )
    .await;
    assert_eq!(status, 200, "{board}");
    let entry = &board["entries"][0];
    assert_eq!(entry["player_id"], player.id.as_str(), "{board}");
    assert_eq!(entry["points"], 120);

    // The reconciler compares the closed window with Vault's ledger: no mismatch.
    let vault_client = HttpVault::new(vault.admin_url.clone(), VAULT_INTERNAL_TOKEN).unwrap();
    let later = chrono::Utc::now() + chrono::Duration::seconds(61);
    let report = reconcile(&concierge_db, &vault_client, later)
        .await
        .unwrap();
    assert!(report.players >= 1, "{report:?}");
    assert!(report.mismatches.is_empty(), "{report:?}");

    // Make Concierge "miss" the first bet (as if the event never arrived): the window now disagrees.
    sqlx::query("DELETE FROM awards WHERE player_id = $1::uuid AND amount_eur = 120")
        .bind(&player.id)
        .execute(&concierge_db.pool)
        .await
        .unwrap();
    forget_reconciled_windows(&concierge_db).await;
    let report = reconcile(&concierge_db, &vault_client, later)
        .await
        .unwrap();
    assert_eq!(report.mismatches.len(), 1, "{report:?}");
    assert_eq!(report.open_mismatches, 1);

    concierge.stop().await;
    vault.stop().await;
}

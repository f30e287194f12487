//! End to end with the real Vault and the official Node client: a bet settled through Vault's signed game
//! API reaches that player's socket as `balance.updated`, with Vault's transfer id, and no other player's.

mod support;
#[path = "../../concierge/tests/vault_support/mod.rs"]
mod vault_support;

use support::{Node, TestEnv};
use vault_support::RunningVault;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bet_settled_through_vaults_game_api_reaches_that_players_socket_and_no_other() {
    // One broker for both services; Vault signs tokens with the key Room-Service verifies.
    let env = TestEnv::start().await;
    let vault = RunningVault::start_with(&env.kafka, |settings| {
        settings.jwt_signing_key = Some(env.seed.clone());
    })
    .await;

    let app = env.app().await;
    app.wait_until_live(&env).await;
    let alice = vault.player("alice").await;
    let bob = vault.player("bob").await;
    let node = Node::start().await;
    node.connect_as("alice", &app.public, &alice.access_token)
        .await;
    node.connect_as("bob", &app.public, &bob.access_token).await;

    vault
        .fund(&vault.admin_token().await, &alice, "20.00")
        .await;
    let credited = node.event("alice", "balance.updated").await;
    assert_eq!(credited[0]["reason"], "adjustment");
    assert_eq!(credited[0]["balance"], 2000);

    let placed = vault.bet(&alice, "b1", "r1", "2.50").await;
    let pushed = node.event("alice", "balance.updated").await;
    assert_eq!(
        pushed[0]["transfer_id"], placed["transfer_id"],
        "{pushed:?}"
    );
    assert_eq!(pushed[0]["reason"], "bet");
    assert_eq!(pushed[0]["delta"], -250);
    assert_eq!(pushed[0]["balance"], 1750);
    assert_eq!(pushed[0]["currency"], "EUR");

    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        node.take_events("bob", "balance.updated").is_empty(),
        "bob saw alice's balance"
    );
    assert!(
        node.take_events("alice", "balance.updated").is_empty(),
        "pushed twice"
    );

    assert_eq!(app.stop().await.exit_code(), 0);
    vault.stop().await;
}

//! The reconciler's checkpoint: incremental passes read only newer transfers yet agree with a full pass,
//! nothing is reported without a full pass confirming it, and two Vaults reconciling at once keep the
//! checkpoint exact. The passes here are driven directly on the Vault's database; the Vault's own
//! reconciler is set to run only once, at start.

mod support;

use std::time::Duration;

use casino_vault::ledger::reconciler::{Mismatch, Mode, Reconciler};
use sqlx::PgPool;
use support::{TestPlayer, TestVault, bet, spawn_vault_with, win};

async fn vault() -> TestVault {
    spawn_vault_with(|settings| settings.reconcile_every = Duration::from_secs(3600)).await
}

/// A funded player with one lost and one won round.
async fn play(vault: &TestVault, round: &str) -> TestPlayer {
    let player = vault.register("EUR").await;
    vault.fund(player.id, "EUR", "50.00").await;
    let session = vault.session(&player).await;
    for (i, amount) in ["2.00", "3.00"].into_iter().enumerate() {
        let round = format!("{round}-{i}");
        let (status, body) = vault
            .game(
                "bet",
                &bet(&player, &session, &format!("{round}-b"), &round, amount),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = vault
            .game(
                "win",
                &win(&player, &format!("{round}-w"), &round, amount, true),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    player
}

async fn checkpoint_seq(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar("SELECT through_seq FROM ledger_checkpoint_state")
        .fetch_optional(pool)
        .await
        .unwrap()
}

async fn newest_seq(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT max(seq) FROM transfers")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Accounts whose folded sum differs from the sum of their transfers up to the checkpoint.
async fn checkpoint_errors(pool: &PgPool) -> Vec<(i64, i64, i64)> {
    sqlx::query_as(
        "WITH cp AS (SELECT through_seq FROM ledger_checkpoint_state),
         flows AS (
             SELECT credit_account AS account, amount FROM transfers, cp WHERE seq <= cp.through_seq
             UNION ALL
             SELECT debit_account, -amount FROM transfers, cp WHERE seq <= cp.through_seq
         ), truth AS (SELECT account, sum(amount)::bigint AS derived FROM flows GROUP BY account)
         SELECT COALESCE(t.account, c.account_id), COALESCE(t.derived, 0), COALESCE(c.derived, 0)
         FROM truth t FULL JOIN ledger_checkpoints c ON c.account_id = t.account
         WHERE COALESCE(t.derived, 0) <> COALESCE(c.derived, 0)",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_passes_fold_settled_transfers_into_the_checkpoint_and_agree_with_a_full_pass()
{
    let vault = vault().await;
    let pool = &vault.db.pool;
    play(&vault, "first").await;
    let mut reconciler = Reconciler::new(pool.clone()).settle(Duration::ZERO);

    assert_eq!(
        reconciler.pass().await.unwrap(),
        vec![],
        "first pass (full)"
    );
    assert_eq!(checkpoint_seq(pool).await, Some(newest_seq(pool).await));
    assert_eq!(checkpoint_errors(pool).await, vec![]);

    play(&vault, "second").await;
    let before = checkpoint_seq(pool).await.unwrap();
    assert!(
        newest_seq(pool).await > before,
        "new transfers after the checkpoint"
    );
    assert_eq!(reconciler.run(Mode::Incremental).await.unwrap(), vec![]);
    assert_eq!(checkpoint_seq(pool).await, Some(newest_seq(pool).await));
    assert_eq!(checkpoint_errors(pool).await, vec![]);
    assert_eq!(reconciler.run(Mode::Full).await.unwrap(), vec![]);
    assert_eq!(checkpoint_errors(pool).await, vec![]);
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsettled_transfers_stay_out_of_the_checkpoint_but_are_still_checked() {
    let vault = vault().await;
    let pool = &vault.db.pool;
    let player = play(&vault, "young").await;
    let reconciler = Reconciler::new(pool.clone()).settle(Duration::from_secs(3600));
    assert_eq!(reconciler.run(Mode::Full).await.unwrap(), vec![]);
    assert_eq!(
        checkpoint_seq(pool).await,
        Some(0),
        "nothing is an hour old"
    );

    sqlx::query("UPDATE accounts SET balance = balance + 7 WHERE player_id = $1")
        .bind(player.id)
        .execute(pool)
        .await
        .unwrap();
    let found = reconciler.run(Mode::Incremental).await.unwrap();
    assert!(
        matches!(found.as_slice(), [Mismatch::Balance { stored, derived, .. }] if stored - derived == 7),
        "{found:?}"
    );
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_balance_found_incrementally_is_confirmed_by_a_full_pass_and_reported() {
    let vault = vault().await;
    let pool = &vault.db.pool;
    let player = play(&vault, "corrupt").await;
    let mut reconciler = Reconciler::new(pool.clone()).settle(Duration::ZERO);
    assert_eq!(reconciler.pass().await.unwrap(), vec![]);

    sqlx::query("UPDATE accounts SET balance = balance + 100 WHERE player_id = $1")
        .bind(player.id)
        .execute(pool)
        .await
        .unwrap();
    let found = reconciler.pass().await.unwrap();
    let [
        Mismatch::Balance {
            player_id,
            currency,
            stored,
            derived,
            ..
        },
    ] = found.as_slice()
    else {
        panic!("one balance mismatch expected: {found:?}");
    };
    assert_eq!(player_id, &player.id.to_string());
    assert_eq!(currency, "EUR");
    assert_eq!(stored - derived, 100);
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_checkpoint_is_rebuilt_by_the_full_pass_instead_of_paging() {
    let vault = vault().await;
    let pool = &vault.db.pool;
    let player = play(&vault, "stale").await;
    let mut reconciler = Reconciler::new(pool.clone()).settle(Duration::ZERO);
    assert_eq!(reconciler.pass().await.unwrap(), vec![]);

    // As if a transfer had committed behind the checkpoint: the folded sum is off, the ledger is fine.
    sqlx::query(
        "UPDATE ledger_checkpoints SET derived = derived + 5
         WHERE account_id = (SELECT id FROM accounts WHERE player_id = $1)",
    )
    .bind(player.id)
    .execute(pool)
    .await
    .unwrap();
    let seen = reconciler.run(Mode::Incremental).await.unwrap();
    assert!(
        seen.iter().any(
            |m| matches!(m, Mismatch::Balance { stored, derived, .. } if derived - stored == 5)
        ) && seen.contains(&Mismatch::Unbalanced {
            currency: "EUR".into(),
            sum: 5
        }),
        "the incremental pass alone sees the difference: {seen:?}"
    );
    assert_eq!(
        reconciler.pass().await.unwrap(),
        vec![],
        "the confirming full pass reports nothing"
    );
    assert_eq!(
        checkpoint_errors(pool).await,
        vec![],
        "and rebuilt the checkpoint"
    );
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_vaults_reconciling_while_bets_flow_keep_the_checkpoint_exact() {
    let vault = vault().await;
    let pool = vault.db.pool.clone();
    let players = [play(&vault, "p1").await, play(&vault, "p2").await];
    let sessions = [
        vault.session(&players[0]).await,
        vault.session(&players[1]).await,
    ];
    let stop = tokio_util::sync::CancellationToken::new();
    let mut reconcilers = Vec::new();
    for _ in 0..2 {
        let (pool, stop) = (pool.clone(), stop.clone());
        reconcilers.push(tokio::spawn(async move {
            let reconciler = Reconciler::new(pool).settle(Duration::ZERO);
            let mut passes = 0;
            while !stop.is_cancelled() {
                let found = reconciler.run(Mode::Incremental).await.unwrap();
                assert_eq!(found, vec![], "a healthy ledger while bets flow");
                passes += 1;
            }
            passes
        }));
    }
    for i in 0..40 {
        let player = &players[i % 2];
        let round = format!("flow-{i}");
        let (status, body) = vault
            .game(
                "bet",
                &bet(
                    player,
                    &sessions[i % 2],
                    &format!("{round}-b"),
                    &round,
                    "0.50",
                ),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    stop.cancel();
    for reconciler in reconcilers {
        assert!(reconciler.await.unwrap() > 0);
    }
    assert_eq!(checkpoint_errors(&pool).await, vec![]);
    assert_eq!(
        Reconciler::new(pool.clone()).run(Mode::Full).await.unwrap(),
        vec![]
    );
    vault.stop().await;
}

//! Players and login against a real Vault.

mod support;

use std::time::Duration;

use casino_auth::{
    Role,
    jwt::{JwtSigner, JwtVerifier},
};
use serde_json::json;
use support::{PASSWORD, error_code, spawn_vault};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_normalises_the_email_enforces_rules_and_refuses_duplicates() {
    let vault = spawn_vault().await;
    let (status, body) = vault
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "  Alice@Example.COM ", "password": PASSWORD, "currency": "usd" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["role"], "player");
    assert_eq!(body["currency"], "USD");
    let (status, body) = vault
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "alice@example.com", "password": PASSWORD, "currency": "EUR" }),
        )
        .await;
    assert_eq!((status, error_code(&body)), (409, Some("email_taken")));

    for (request, code) in [
        (
            json!({ "email": "not-an-email", "password": PASSWORD, "currency": "EUR" }),
            "invalid_email",
        ),
        (
            json!({ "email": "bob@example.com", "password": "short1", "currency": "EUR" }),
            "weak_password",
        ),
        (
            json!({ "email": "bob@example.com", "password": PASSWORD, "currency": "XYZ" }),
            "unsupported_currency",
        ),
        (
            json!({ "email": "bob@example.com", "password": PASSWORD }),
            "invalid_body",
        ),
    ] {
        let (status, body) = vault
            .post("/api/v1/auth/register", None, request.clone())
            .await;
        assert_eq!((status, error_code(&body)), (400, Some(code)), "{request}");
    }
    // player.registered went into the outbox in the same transaction.
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE topic = 'vault.players.v1'")
            .fetch_one(&vault.db.pool)
            .await
            .unwrap();
    assert_eq!(events, 1);
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_verify_with_the_published_jwks_and_a_token_from_another_key_is_refused() {
    let vault = spawn_vault().await;
    let player = vault.register("EUR").await;
    let (status, jwks) = vault.get("/.well-known/jwks.json", None).await;
    assert_eq!(status, 200);
    let claims = JwtVerifier::from_jwks(&jwks)
        .unwrap()
        .verify(&player.token)
        .unwrap();
    assert_eq!(claims.sub, player.id);
    assert_eq!(claims.role, Role::Player);
    assert!(
        claims.exp - claims.iat <= 900,
        "access tokens are short-lived"
    );

    let (status, _) = vault.get("/api/v1/wallet", Some(&player.token)).await;
    assert_eq!(status, 200);
    let forger = JwtSigner::generate(Duration::from_secs(900));
    let (forged, _) = forger.issue(player.id, Role::Player);
    let (status, body) = vault.get("/api/v1/wallet", Some(&forged)).await;
    assert_eq!((status, error_code(&body)), (401, Some("unauthorized")));
    let (status, _) = vault.get("/api/v1/wallet", None).await;
    assert_eq!(status, 401);
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_and_reusing_a_rotated_one_revokes_the_family() {
    let vault = spawn_vault().await;
    let player = vault.register("EUR").await;
    let (status, first) = vault.refresh(&player.refresh).await;
    assert_eq!(status, 200, "{first}");
    let rotated = first["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, player.refresh);
    let (status, _) = vault
        .get(
            "/api/v1/wallet",
            Some(first["access_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 200);

    // The old token comes back (stolen copy): refused, and the whole family dies.
    let (status, reuse) = vault.refresh(&player.refresh).await;
    assert_eq!(
        (status, error_code(&reuse)),
        (401, Some("invalid_refresh_token"))
    );
    let (status, _) = vault.refresh(&rotated).await;
    assert_eq!(status, 401, "the legitimate newer token was revoked too");

    // Logout revokes.
    let (_, login) = vault.login(&player.email, PASSWORD).await;
    let refresh = login["refresh_token"].as_str().unwrap();
    let (status, _) = vault.logout(refresh).await;
    assert_eq!(status, 204);
    let (status, _) = vault.refresh(refresh).await;
    assert_eq!(status, 401);
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_logins_are_throttled() {
    let vault = spawn_vault().await;
    let player = vault.register("EUR").await;
    for _ in 0..5 {
        let (status, body) = vault.login(&player.email, "wrong password 1").await;
        assert_eq!(
            (status, error_code(&body)),
            (401, Some("invalid_credentials"))
        );
    }
    // Even the right password is refused while throttled.
    let (status, body) = vault.login(&player.email, PASSWORD).await;
    assert_eq!(
        (status, error_code(&body)),
        (429, Some("too_many_attempts"))
    );
    let (status, _) = vault.login("nobody@casino.test", PASSWORD).await;
    assert_eq!(
        status, 401,
        "unknown emails get the same answer as wrong passwords"
    );
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_admin_creates_staff_and_roles_are_enforced() {
    let vault = spawn_vault().await;
    let admin = vault.admin_token().await;
    let player = vault.register("EUR").await;
    let staff_request = json!({ "email": "ops@casino.test", "password": "operations 2026" });
    let (status, _) = vault
        .post(
            "/api/v1/admin/staff",
            Some(&player.token),
            staff_request.clone(),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = vault
        .post("/api/v1/admin/staff", Some(&admin), staff_request)
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["role"], "staff");
    let (_, login) = vault.login("ops@casino.test", "operations 2026").await;
    let staff = login["access_token"].as_str().unwrap().to_owned();
    let (status, body) = vault
        .post(
            "/api/v1/admin/staff",
            Some(&staff),
            json!({ "email": "x@casino.test", "password": "operations 2027" }),
        )
        .await;
    assert_eq!((status, error_code(&body)), (403, Some("forbidden")));
    // Staff can use staff endpoints; players cannot.
    let (status, _) = vault.get("/api/v1/admin/abuse-signals", Some(&staff)).await;
    assert_eq!(status, 200);
    let (status, _) = vault
        .get("/api/v1/admin/abuse-signals", Some(&player.token))
        .await;
    assert_eq!(status, 403);
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_player_signs_in_but_cannot_bet_and_every_refusal_says_why() {
    let vault = spawn_vault().await;
    let admin = vault.admin_token().await;
    let (player, session) = vault.funded_player("10.00").await;
    let acme = vault.acme(&player);
    let (status, _) = vault
        .post(
            &format!("/api/v1/admin/players/{}/lock", player.id),
            Some(&admin),
            json!({ "reason": "chargeback investigation" }),
        )
        .await;
    assert_eq!(status, 200);

    let (status, login) = vault.login(&player.email, PASSWORD).await;
    assert_eq!(status, 200);
    assert_eq!(login["locked"], true);
    assert_eq!(login["lock_reason"], "chargeback investigation");
    let (status, body) = vault
        .post("/api/v1/games/sessions", Some(&player.token), json!({}))
        .await;
    assert_eq!((status, error_code(&body)), (423, Some("player_locked")));
    let (status, body) = acme.bet(&session, "b1", "r1", "1.00").await;
    assert_eq!(
        (status, error_code(&body)),
        (423, Some("player_locked")),
        "{body}"
    );
    assert_eq!(body["balance"], "10.00");

    let (status, _) = vault
        .post(
            &format!("/api/v1/admin/players/{}/unlock", player.id),
            Some(&admin),
            json!({ "reason": "cleared" }),
        )
        .await;
    assert_eq!(status, 200);
    let session = vault.session(&player).await;
    let (status, _) = acme.bet(&session, "b2", "r2", "1.00").await;
    assert_eq!(status, 200);
    let locked_events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE topic = 'vault.players.v1' AND key = $1",
    )
    .bind(player.id.to_string())
    .fetch_one(&vault.db.pool)
    .await
    .unwrap();
    assert_eq!(locked_events, 3, "registered, locked, unlocked");
    vault.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_call_with_a_timestamp_at_the_end_of_the_range_is_stale_not_a_crash() {
    let vault = spawn_vault().await;
    let player = vault.register("EUR").await;
    let body = serde_json::to_vec(&json!({ "player_id": player.id, "currency": "EUR" })).unwrap();
    for timestamp in [i64::MIN, i64::MIN + 1, i64::MAX] {
        let (status, answer) = vault
            .game_raw("balance", &body, support::PROVIDER_SECRET, timestamp)
            .await;
        assert_eq!(
            (status, error_code(&answer)),
            (401, Some("stale_timestamp")),
            "{timestamp}: {answer}"
        );
    }
    vault.stop().await;
}

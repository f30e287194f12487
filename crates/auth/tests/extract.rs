//! The role extractors over real HTTP requests to a router (in-process, tower oneshot).

use std::time::Duration;

use axum::{Router, body::Body, http::Request, routing::get};
use casino_auth::{
    Role,
    extract::{Admin, AuthState, Player, Staff, TokenVerifier},
    jwt::JwtSigner,
};
use tower::ServiceExt as _;

#[derive(Clone)]
struct State(TokenVerifier);

impl AuthState for State {
    fn token_verifier(&self) -> &TokenVerifier {
        &self.0
    }
    fn auth_failure_metric(&self) -> &'static str {
        "test_auth_failures_total"
    }
}

fn app(signer: &JwtSigner) -> Router {
    Router::new()
        .route(
            "/me",
            get(|Player(c): Player| async move { c.sub.to_string() }),
        )
        .route(
            "/staff",
            get(|Staff(c): Staff| async move { c.role.as_str() }),
        )
        .route(
            "/admin",
            get(|Admin(c): Admin| async move { c.role.as_str() }),
        )
        .with_state(State(TokenVerifier::Local(signer.verifier())))
}

async fn call(app: &Router, path: &str, token: Option<&str>) -> (u16, String) {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn each_role_reaches_only_its_routes() {
    let signer = JwtSigner::generate(Duration::from_secs(60));
    let app = app(&signer);
    let player = uuid::Uuid::now_v7();
    let (player_token, _) = signer.issue(player, Role::Player);
    let (staff_token, _) = signer.issue(uuid::Uuid::now_v7(), Role::Staff);
    let (admin_token, _) = signer.issue(uuid::Uuid::now_v7(), Role::Admin);

    assert_eq!(
        call(&app, "/me", Some(&player_token)).await,
        (200, player.to_string())
    );
    assert_eq!(call(&app, "/staff", Some(&staff_token)).await.0, 200);
    assert_eq!(call(&app, "/staff", Some(&admin_token)).await.0, 200);
    assert_eq!(call(&app, "/admin", Some(&admin_token)).await.0, 200);

    let (status, body) = call(&app, "/admin", Some(&staff_token)).await;
    assert_eq!(status, 403);
    assert!(body.contains("\"code\":\"forbidden\""), "{body}");
    assert_eq!(call(&app, "/staff", Some(&player_token)).await.0, 403);
    assert_eq!(call(&app, "/me", Some(&staff_token)).await.0, 403);
}

#[tokio::test]
async fn missing_forged_and_expired_tokens_get_401_with_the_json_error_body() {
    let signer = JwtSigner::generate(Duration::from_secs(60));
    let app = app(&signer);
    let (status, body) = call(&app, "/me", None).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        r#"{"error":{"code":"unauthorized","message":"missing bearer token"}}"#
    );
    let forger = JwtSigner::generate(Duration::from_secs(60));
    let (forged, _) = forger.issue(uuid::Uuid::now_v7(), Role::Player);
    assert_eq!(call(&app, "/me", Some(&forged)).await.0, 401);

    let (_, mut claims) = signer.issue(uuid::Uuid::now_v7(), Role::Player);
    claims.exp -= 3600;
    let (status, body) = call(&app, "/me", Some(&signer.sign(&claims))).await;
    assert_eq!(status, 401);
    assert!(body.contains("token_expired"), "{body}");
}

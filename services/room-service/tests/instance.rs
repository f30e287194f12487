//! The task id on ECS: read from a task metadata endpoint (a fake one on loopback, answering like the
//! ECS agent), named in the live consumer group; a random id, logged and counted, when it cannot be read.

mod support;

use axum::{Json, Router, http::StatusCode, routing::get};
use casino_room_service::config::{InstanceIdSource, live_group};
use serde_json::json;
use support::{TestApp, TestEnv, assert_metric_at_least};

/// Serve `router` on a loopback port; its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/v4/0123456789abcdef-1234567890")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_ecs_the_instance_id_is_the_task_id() {
    let env = TestEnv::start().await;
    let task_id = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let metadata = serve(Router::new().route(
        "/v4/0123456789abcdef-1234567890/task",
        get(move || async move {
            Json(json!({
                "Cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/casino",
                "TaskARN": format!("arn:aws:ecs:eu-west-1:123456789012:task/casino/{task_id}"),
                "Family": "room-service",
                "Revision": "7",
            }))
        }),
    ))
    .await;
    let mut settings = env.settings();
    settings.instance_id_source = InstanceIdSource::Ecs {
        metadata_uri: metadata,
    };
    let app = TestApp::start(settings).await;
    assert_eq!(app.instance_id, task_id);
    assert_eq!(
        live_group(&app.instance_id),
        format!("room-service-live-{task_id}")
    );
    // The live consumer runs in that group: pushes arrive.
    app.wait_until_live(&env).await;
    assert_eq!(app.stop().await.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_readable_task_metadata_a_random_id_is_used_logged_and_counted() {
    let env = TestEnv::start().await;
    // An endpoint that answers 500, then one that answers nonsense, then none at all.
    let failing = serve(Router::new().route(
        "/v4/0123456789abcdef-1234567890/task",
        get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
    ))
    .await;
    let nonsense = serve(Router::new().route(
        "/v4/0123456789abcdef-1234567890/task",
        get(|| async { Json(json!({"TaskARN": "not an arn"})) }),
    ))
    .await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v4/x", listener.local_addr().unwrap())
    };
    for (uri, reason) in [
        (failing, "http_status"),
        (nonsense, "malformed"),
        (closed, "unreachable"),
    ] {
        let mut settings = env.settings();
        let fallback = settings.instance_id.clone();
        settings.instance_id_source = InstanceIdSource::Ecs { metadata_uri: uri };
        let app = TestApp::start(settings).await;
        assert_eq!(app.instance_id, fallback, "{reason}");
        assert_metric_at_least(
            &app.metrics().await,
            &format!(r#"room_ecs_metadata_failures_total{{reason="{reason}"}}"#),
            1.0,
        );
        assert_eq!(app.stop().await.exit_code(), 0);
    }
}

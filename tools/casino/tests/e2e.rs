//! The whole platform end to end, started the way `casino up` starts it, driven by `casino sim`, with
//! Kafka taken down in the middle of the run. Checks across services:
//! - both reconcilers report 0 mismatches (and actually compared something);
//! - every transfer of a connected player produced exactly one `balance.updated` on that player's socket;
//! - Concierge's wagering per player matches Vault's (nothing lost or duplicated through the outage);
//! - a bet's trace is one trace across Vault, Concierge and Room-Service (OTLP receiver in the test);
//! - every service answers `/readyz` 200 and serves `/metrics`, and stops cleanly.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use support::{Up, eventually, finish_sim, sample};

/// trace id (hex) -> services that exported a span in it.
type Traces = Arc<Mutex<HashMap<String, HashSet<String>>>>;

async fn otlp_receiver() -> (String, Traces) {
    let traces: Traces = Arc::default();
    let sink = traces.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let export = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut traces = sink.lock().unwrap();
                for resource_spans in export.resource_spans {
                    let service = resource_spans
                        .resource
                        .unwrap_or_default()
                        .attributes
                        .iter()
                        .find(|kv| kv.key == "service.name")
                        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                            opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    for scope in resource_spans.scope_spans {
                        for span in scope.spans {
                            let id: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                            traces.entry(id).or_default().insert(service.clone());
                        }
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), traces)
}

async fn get_json(http: &reqwest::Client, url: &str, token: Option<&str>) -> Result<Value, String> {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
}

async fn text(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

/// Every transfer id of the player, from Vault's own listing (all pages).
async fn vault_transfers(http: &reqwest::Client, vault: &str, token: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{vault}/api/v1/wallet/transfers?limit=200");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page = get_json(http, &url, Some(token)).await.unwrap();
        for item in page["items"].as_array().unwrap() {
            ids.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_end_to_end_with_kafka_down_mid_run_loses_and_duplicates_nothing() {
    let (otlp, traces) = otlp_receiver().await;
    let up = Up::start(
        "e2e",
        &["--no-prometheus"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "500"),
            // Short reconciliation windows so Concierge compares this run's windows within the test.
            ("CONCIERGE_RECONCILE_WINDOW_SECONDS", "10"),
            ("CONCIERGE_RECONCILE_GRACE_SECONDS", "5"),
            ("CONCIERGE_RECONCILE_INTERVAL_SECONDS", "2"),
            ("VAULT_RECONCILE_INTERVAL_SECONDS", "2"),
        ],
    );
    let info = up.info.clone();
    let http = reqwest::Client::new();

    let (sim, summary_path) = up.sim(&[
        "--players",
        "12",
        "--connected",
        "0.5",
        "--rate",
        "25",
        "--duration",
        "24",
        "--seed",
        "7",
        "--settle",
        "60",
    ]);
    // Kafka goes away in the middle of the run and comes back: Vault keeps answering (outbox),
    // consumers catch up afterwards.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(up.fault(&["kafka-down"]).contains("down"));
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(up.fault(&["kafka-up"]).contains("up"));
    let summary = tokio::task::spawn_blocking(move || {
        finish_sim(sim, &summary_path, Duration::from_secs(240))
    })
    .await
    .unwrap();

    assert_eq!(
        summary["server_errors"], 0,
        "no 5xx or transport errors: {summary}"
    );
    let players = summary["connected_players"]
        .as_array()
        .expect("connected players");
    assert!(!players.is_empty(), "{summary}");

    let mut checked_transfers = 0;
    for player in players {
        let login = http
            .post(format!("{}/api/v1/auth/login", info.vault.public_url))
            .json(&json!({"email": player["email"], "password": player["password"]}))
            .send()
            .await
            .unwrap();
        let login: Value = login.json().await.unwrap();
        let token = login["access_token"]
            .as_str()
            .expect("the player logs in")
            .to_owned();

        // Exactly one balance.updated per transfer, and none for transfers that do not exist.
        let transfers = vault_transfers(&http, &info.vault.public_url, &token).await;
        let pushes: Vec<String> = player["balance_updates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().to_owned())
            .collect();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for id in &pushes {
            *counts.entry(id.as_str()).or_default() += 1;
        }
        for id in &transfers {
            assert_eq!(
                counts.get(id.as_str()).copied().unwrap_or(0),
                1,
                "transfer {id} of player {} pushed exactly once",
                player["player_id"]
            );
        }
        assert_eq!(
            pushes.len(),
            transfers.len(),
            "no extra pushes for {}",
            player["player_id"]
        );
        checked_transfers += transfers.len();

        // Concierge saw every bet and rollback once: its lifetime wagering equals Vault's.
        let id = player["player_id"].as_str().unwrap();
        let vault_url = format!(
            "{}/internal/v1/players/{id}/wagering?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
            info.vault.admin_url
        );
        let internal = info.internal_token.clone();
        let vault_wagered: Decimal = {
            let response = http
                .get(&vault_url)
                .bearer_auth(&internal)
                .send()
                .await
                .unwrap();
            let body: Value = response.json().await.unwrap();
            body["wagered_eur"].as_str().unwrap().parse().unwrap()
        };
        let rewards_url = format!("{}/api/v1/rewards/me", info.concierge.public_url);
        eventually(
            "concierge wagering matches vault",
            Duration::from_secs(60),
            || {
                let (http, url, token) = (http.clone(), rewards_url.clone(), token.clone());
                async move {
                    let rewards = get_json(&http, &url, Some(&token)).await?;
                    let concierge: Decimal = rewards["lifetime_wagered_eur"]
                        .as_str()
                        .map(|s| s.parse().unwrap())
                        .or_else(|| {
                            rewards["lifetime_wagered_eur"]
                                .as_f64()
                                .map(|f| Decimal::try_from(f).unwrap())
                        })
                        .ok_or_else(|| format!("no lifetime_wagered_eur in {rewards}"))?;
                    if concierge == vault_wagered {
                        Ok(())
                    } else {
                        Err(format!("concierge {concierge} vs vault {vault_wagered}"))
                    }
                }
            },
        )
        .await;
    }
    assert!(checked_transfers > 0, "the connected players had transfers");

    // Reconcilers: both ran over this run's data and found nothing wrong.
    let vault_metrics = format!("{}/metrics", info.vault.admin_url);
    let concierge_metrics = format!("{}/metrics", info.concierge.admin_url);
    eventually(
        "concierge reconciled closed windows",
        Duration::from_secs(60),
        || {
            let (http, url) = (http.clone(), concierge_metrics.clone());
            async move {
                let page = text(&http, &url).await;
                let checks = sample(&page, "concierge_reconciliation_checks_total").unwrap_or(0.0);
                if checks > 0.0 {
                    Ok(page)
                } else {
                    Err(format!("checks {checks}"))
                }
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let page = text(&http, &concierge_metrics).await;
    assert_eq!(
        sample(&page, "concierge_reconciliation_mismatches"),
        Some(0.0)
    );
    assert_eq!(
        sample(&page, "concierge_reward_discrepancies_total"),
        Some(0.0)
    );
    let page = text(&http, &vault_metrics).await;
    assert_eq!(
        sample(&page, "vault_ledger_mismatches"),
        Some(0.0),
        "vault's reconciler is clean"
    );

    // One bet, one trace: Vault's request, Concierge's processing and Room-Service's emit share it.
    eventually(
        "a trace spans the three services",
        Duration::from_secs(30),
        || {
            let traces = traces.clone();
            async move {
                let traces = traces.lock().unwrap();
                let all = ["vault", "concierge", "room-service"];
                if traces
                    .values()
                    .any(|services| all.iter().all(|s| services.contains(*s)))
                {
                    Ok(())
                } else {
                    let seen: HashSet<&String> = traces.values().flatten().collect();
                    Err(format!("{} traces, services seen: {seen:?}", traces.len()))
                }
            }
        },
    )
    .await;

    for urls in [&info.vault, &info.concierge, &info.room_service] {
        let ready = http
            .get(format!("{}/readyz", urls.public_url))
            .send()
            .await
            .unwrap();
        assert_eq!(
            ready.status(),
            200,
            "{} ready after the run",
            urls.public_url
        );
        let metrics = text(&http, &format!("{}/metrics", urls.admin_url)).await;
        assert!(
            metrics.contains("http_server_requests_total"),
            "{} serves metrics",
            urls.admin_url
        );
    }

    let (status, _, stderr) = tokio::task::spawn_blocking(move || {
        let mut up = up;
        up.stop()
    })
    .await
    .unwrap();
    assert!(status.success(), "casino up stops cleanly: {stderr}");
}

//! `GET /internal/v1/wagering/players`: the players with a bet or a rollback in a window, for Concierge's
//! reconciliation (it also compares players whose every event Concierge missed).

mod support;

use serde_json::Value;
use support::*;
use uuid::Uuid;

const TOKEN: &str = "test-internal-token";

async fn list(vault: &TestVault, query: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = vault.http.get(format!(
        "{}/internal/v1/wagering/players?{query}",
        vault.admin
    ));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn ids(page: &Value) -> Vec<Uuid> {
    page["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_with_bets_or_rollbacks_in_the_window_are_listed_page_by_page() {
    let vault = spawn_vault().await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);

    // Three players bet (one of them only to have it rolled back); one is funded but never plays.
    let mut players = Vec::new();
    for i in 0..3 {
        let (player, session) = vault.funded_player("50.00").await;
        let (status, body) = vault
            .game("bet", &nth_bet(&player, &session, i, "5.00"))
            .await;
        assert_eq!(status, 200, "{body}");
        players.push(player);
    }
    let (status, body) = vault.game("rollback", &nth_rollback(&players[2], 2)).await;
    assert_eq!(status, 200, "{body}");
    let idle = vault.register("EUR").await;
    vault.fund(idle.id, "EUR", "50.00").await;
    let after = chrono::Utc::now() + chrono::Duration::seconds(1);

    let window = |from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>| {
        format!(
            "from={}&to={}",
            from.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            to.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    };
    let mut expected: Vec<Uuid> = players.iter().map(|p| p.id).collect();
    expected.sort();

    // One page: every player who bet, ordered by id; not the idle one.
    let (status, page) = list(&vault, &window(before, after), Some(TOKEN)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), expected);
    assert_eq!(page["next_cursor"], Value::Null);

    // Pages of two: the cursor continues after the last id, the last page has no cursor.
    let (status, first) = list(
        &vault,
        &format!("{}&limit=2", window(before, after)),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(ids(&first), expected[..2]);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (status, second) = list(
        &vault,
        &format!("{}&limit=2&cursor={cursor}", window(before, after)),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(ids(&second), expected[2..]);
    assert_eq!(second["next_cursor"], Value::Null);

    // A window before any play is empty.
    let (status, empty) = list(
        &vault,
        &window(before - chrono::Duration::hours(1), before),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(ids(&empty), Vec::<Uuid>::new());

    // Bad windows and parameters are 400 with the JSON error body.
    for (query, code) in [
        (window(after, before), "invalid_query"),
        (window(before, before), "invalid_query"),
        (format!("from={}", before.to_rfc3339()), "invalid_query"),
        ("from=yesterday&to=today".to_owned(), "invalid_query"),
        (
            window(before - chrono::Duration::days(8), before),
            "window_too_long",
        ),
        (
            format!("{}&cursor=not-a-cursor", window(before, after)),
            "invalid_cursor",
        ),
        (
            format!("{}&limit=0", window(before, after)),
            "invalid_limit",
        ),
        (
            format!("{}&limit=many", window(before, after)),
            "invalid_limit",
        ),
        (format!("{}&page=2", window(before, after)), "invalid_query"),
    ] {
        let (status, body) = list(&vault, &query, Some(TOKEN)).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
    }

    // The internal token is required.
    let (status, _) = list(&vault, &window(before, after), None).await;
    assert_eq!(status, 401);
    let (status, _) = list(&vault, &window(before, after), Some("guess")).await;
    assert_eq!(status, 401);
    vault.stop().await;
}

//! Concierge's public API as a black box (real app on port 0, real HTTP, events through the embedded
//! broker): rewards/me, the level table and its replacement by staff, leaderboards with ties and
//! `around=me`, the staff view of a player, and refused input.

mod support;

use casino_auth::Role;
use chrono::{DurationRound as _, TimeDelta, Utc};
use serde_json::{Value, json};
use support::{Harness, bet, eur, get, metric_sum, put, rollback};
use uuid::Uuid;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewards_me_shows_level_points_wagering_and_progress() {
    let harness = Harness::start().await;
    let app = harness.app().await;
    let player = Uuid::now_v7();
    let now = Utc::now();
    for (amount, category) in [("600", "slots"), ("500", "table")] {
        harness.place_bet(player, amount, category, now).await;
    }
    harness.wait_processed(2).await;

    let url = format!("{}/api/v1/rewards/me", app.public);
    let (status, me) = get(&url, Some(&harness.token(player, Role::Player))).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["player_id"], player.to_string());
    assert_eq!(
        (me["level"].clone(), me["name"].clone()),
        (json!(1), json!("Silver"))
    );
    // 600 x 1 (slots) + 500 x 0.2 (table), both at Bronze's 1.0.
    assert_eq!(me["vip_points"], 700);
    assert_eq!(me["lifetime_wagered_eur"], "1100.00");
    assert_eq!(
        me["wagered_eur"],
        json!({"daily": "1100.00", "weekly": "1100.00", "monthly": "1100.00"})
    );
    assert_eq!(
        me["next_level"],
        json!({"level": 2, "name": "Gold", "threshold_eur": "10000.00", "remaining_eur": "8900.00",
               "progress_percent": 1.11})
    );

    // A player Concierge has not seen yet: the first tier, nothing earned.
    let newcomer = harness.token(Uuid::now_v7(), Role::Player);
    let (status, me) = get(&url, Some(&newcomer)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            me["level"].clone(),
            me["name"].clone(),
            me["vip_points"].clone()
        ),
        (json!(0), json!("Bronze"), json!(0))
    );
    assert_eq!(me["next_level"]["remaining_eur"], "1000.00");
    assert_eq!(me["next_level"]["progress_percent"], 0.0);

    // No token, a staff token, a token signed by someone else.
    let (status, body) = get(&url, None).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
    let (status, body) = get(&url, Some(&harness.token(Uuid::now_v7(), Role::Staff))).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    let forger = casino_auth::jwt::JwtSigner::generate(std::time::Duration::from_secs(60));
    let (status, body) = get(&url, Some(&forger.issue(player, Role::Player).0)).await;
    assert_eq!(status, 401, "{body}");
    let metrics = app.metrics().await;
    assert!(
        metric_sum(
            &metrics,
            "concierge_auth_failures_total",
            &["reason=\"missing_token\""]
        ) >= 1.0
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_replace_the_level_table_and_invalid_tables_are_refused_with_a_clear_error() {
    let harness = Harness::start().await;
    let app = harness.app().await;
    let staff = harness.token(Uuid::now_v7(), Role::Staff);
    let levels_url = format!("{}/api/v1/levels", app.public);
    let admin_url = format!("{}/api/v1/admin/levels", app.public);

    let (status, table) = get(&levels_url, None).await;
    assert_eq!(status, 200);
    assert_eq!(table["version"], 1);
    assert_eq!(
        table["levels"],
        json!([
            {"level": 0, "name": "Bronze", "threshold_eur": "0.00", "multiplier": "1"},
            {"level": 1, "name": "Silver", "threshold_eur": "1000.00", "multiplier": "1.1"},
            {"level": 2, "name": "Gold", "threshold_eur": "10000.00", "multiplier": "1.25"},
            {"level": 3, "name": "Platinum", "threshold_eur": "50000.00", "multiplier": "1.5"},
            {"level": 4, "name": "Diamond", "threshold_eur": "250000.00", "multiplier": "2"},
        ])
    );
    assert_eq!(
        table["rates"],
        json!({"live": "0.1", "slots": "1", "table": "0.2"})
    );

    let refused = [
        (
            r#"{"levels":[{"name":"Bronze","threshold_eur":"0","multiplier":"1"},{"name":"Silver","threshold_eur":"500","multiplier":"1.1"},{"name":"Gold","threshold_eur":"500","multiplier":"1.2"}]}"#,
            422,
            "invalid_level_table",
            "thresholds must be strictly increasing: tier 2 (Gold) at 500 EUR is not above the previous tier at 500 EUR",
        ),
        (
            r#"{"levels":[{"name":"Silver","threshold_eur":"100","multiplier":"1"}]}"#,
            422,
            "invalid_level_table",
            "the first tier (Silver) must start at 0 EUR, not 100",
        ),
        (
            r#"{"levels":[{"name":"Bronze","threshold_eur":0,"multiplier":-1}]}"#,
            422,
            "invalid_level_table",
            "tier 0 (Bronze) has a negative multiplier -1",
        ),
        (
            r#"{"levels":[]}"#,
            422,
            "invalid_level_table",
            "the level table is empty: it needs at least a first tier at 0 EUR",
        ),
        (r#"{"levels":"#, 400, "invalid_json", ""),
        (
            r#"{"levels":[{"name":"Bronze","threshold_eur":"0","multiplier":"1","colour":"brown"}]}"#,
            400,
            "invalid_json",
            "colour",
        ),
        (
            r#"{"levels":[{"name":"Bronze","threshold_eur":"zero","multiplier":"1"}]}"#,
            400,
            "invalid_json",
            "",
        ),
    ];
    for (body, status, error_code, text) in refused {
        let (got, answer) = put(&admin_url, &staff, body).await;
        assert_eq!(
            (got, code(&answer)),
            (status, error_code),
            "{body} -> {answer}"
        );
        assert!(message(&answer).contains(text), "{answer}");
    }
    let (status, body) = put(
        &admin_url,
        &harness.token(Uuid::now_v7(), Role::Player),
        r#"{"levels":[{"name":"Bronze","threshold_eur":"0","multiplier":"1"}]}"#,
    )
    .await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    let (_, table) = get(&levels_url, None).await;
    assert_eq!(table["version"], 1, "refused tables change nothing");

    // A Silver player (1100 EUR) becomes Gold under the new table; later bets use the new multiplier.
    let player = Uuid::now_v7();
    harness.place_bet(player, "1100", "slots", Utc::now()).await;
    harness.wait_processed(1).await;
    let (status, replaced) = put(
        &admin_url,
        &staff,
        r#"{"levels":[{"name":"Bronze","threshold_eur":"0","multiplier":"1"},
                      {"name":"Silver","threshold_eur":"500","multiplier":"1.2"},
                      {"name":"Gold","threshold_eur":1000,"multiplier":"1.5"}]}"#,
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["version"], 2);
    assert_eq!(replaced["players_retiered"], 1);
    assert_eq!(replaced["levels"][2]["name"], "Gold");
    let (_, table) = get(&levels_url, None).await;
    assert_eq!(table["version"], 2);
    assert_eq!(table["levels"].as_array().unwrap().len(), 3);

    harness.place_bet(player, "100", "slots", Utc::now()).await;
    harness.wait_processed(2).await;
    let (status, view) = get(
        &format!("{}/api/v1/admin/players/{player}/rewards", app.public),
        Some(&staff),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["level"].clone(), view["name"].clone()),
        (json!(2), json!("Gold"))
    );
    assert!(view["next_level"].is_null());
    assert_eq!(view["vip_points"], 1100 + 150);
    let latest = &view["recent_awards"][0];
    assert_eq!(
        (
            latest["rule_version"].clone(),
            latest["multiplier"].clone(),
            latest["vip_points"].clone()
        ),
        (json!(2), json!("1.5"), json!(150))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaderboards_break_ties_deterministically_and_show_the_players_neighbourhood() {
    let harness = Harness::start().await;
    let app = harness.app().await;
    // Ten minutes ago, to the second; `at` names that day so the test does not care about midnight.
    let t0 = (Utc::now() - TimeDelta::minutes(10))
        .duration_trunc(TimeDelta::seconds(1))
        .unwrap();
    let t1 = t0 + TimeDelta::seconds(1);
    let day = t0.date_naive();
    let p: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
    let first_bet = Uuid::now_v7();
    let bets = [
        (p[0], first_bet, "300", t0),
        (p[1], Uuid::now_v7(), "200", t1),
        (p[2], Uuid::now_v7(), "200.99", t1),
        (p[3], Uuid::now_v7(), "200", t0),
        (p[4], Uuid::now_v7(), "100", t0),
        (p[5], Uuid::now_v7(), "50", t0),
        (p[6], Uuid::now_v7(), "10", t0),
    ];
    for (player, transfer, amount, at) in bets {
        harness
            .publish_transfer(&bet(player, transfer, eur(amount), Some("live"), at))
            .await;
    }
    harness.wait_processed(bets.len() as i64).await;

    // 200 points each for p1, p2 (200.99 floors to 200) and p3; p3 got there first; p1 and p2 tie on
    // time as well, so the smaller player id goes first.
    let (tied_first, tied_second) = if p[1] < p[2] {
        (p[1], p[2])
    } else {
        (p[2], p[1])
    };
    let expected = [
        (p[0], 300),
        (p[3], 200),
        (tied_first, 200),
        (tied_second, 200),
        (p[4], 100),
        (p[5], 50),
        (p[6], 10),
    ];
    let board = |name: &str, query: &str, who: Uuid| {
        let url = format!("{}/api/v1/leaderboards/{name}?at={day}{query}", app.public);
        let token = harness.token(who, Role::Player);
        async move { get(&url, Some(&token)).await }
    };
    let entries = |body: &Value| -> Vec<(i64, Uuid, i64)> {
        body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["rank"].as_i64().unwrap(),
                    e["player_id"].as_str().unwrap().parse().unwrap(),
                    e["points"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let ranked: Vec<(i64, Uuid, i64)> = expected
        .iter()
        .enumerate()
        .map(|(i, (player, points))| (i as i64 + 1, *player, *points))
        .collect();
    for name in ["daily", "weekly", "monthly", "all-time"] {
        let (status, body) = board(name, "&limit=100", p[7]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(entries(&body), ranked, "{name}");
        assert!(body["me"].is_null(), "p7 is not on the board");
    }
    let (_, body) = board("daily", "", p[0]).await;
    assert_eq!(body["board"], "daily");
    assert_eq!(body["period_start"], day.to_string());
    assert_eq!(
        body["me"],
        json!({"rank": 1, "player_id": p[0], "points": 300})
    );

    // The neighbourhood of p4 (rank 5), of the leader, and of someone not on the board.
    let (_, body) = board("daily", "&around=me&limit=3", p[4]).await;
    assert_eq!(entries(&body), ranked[3..6].to_vec());
    assert_eq!(body["me"]["rank"], 5);
    let (_, body) = board("weekly", "&around=me&limit=3", p[0]).await;
    assert_eq!(entries(&body), ranked[..3].to_vec());
    let (_, body) = board("weekly", "&around=me&limit=4", p[6]).await;
    assert_eq!(entries(&body), ranked[3..].to_vec());
    let (_, body) = board("monthly", "&around=me&limit=2", p[7]).await;
    assert_eq!(entries(&body), ranked[..2].to_vec());
    assert!(body["me"].is_null());

    // A rollback takes the leader off the board.
    harness
        .publish_transfer(&rollback(p[0], first_bet, eur("300"), t1))
        .await;
    harness.wait_processed(bets.len() as i64 + 1).await;
    let (_, body) = board("all-time", "&limit=100", p[7]).await;
    let after: Vec<Uuid> = entries(&body).iter().map(|e| e.1).collect();
    assert_eq!(after, expected[1..].iter().map(|e| e.0).collect::<Vec<_>>());

    // Refused input.
    for (query, text) in [
        ("&limit=0", "limit must be a whole number from 1 to 100"),
        ("&limit=101", "limit must be a whole number from 1 to 100"),
        ("&limit=ten", "limit must be a whole number from 1 to 100"),
        ("&around=you", "around only accepts \"me\""),
        ("&at=yesterday", "at must be a date like 2025-03-01"),
        ("&sort=asc", "unknown parameter \"sort\""),
    ] {
        let (status, body) = board("daily", query, p[0]).await;
        assert_eq!(
            (status, code(&body)),
            (400, "invalid_parameter"),
            "{query}: {body}"
        );
        assert!(message(&body).contains(text), "{query}: {body}");
    }
    let (status, body) = board("yearly", "", p[0]).await;
    assert_eq!((status, code(&body)), (404, "unknown_leaderboard"));
    let (status, body) = get(&format!("{}/api/v1/leaderboards/daily", app.public), None).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_see_a_players_rewards_with_the_inputs_of_each_award() {
    let harness = Harness::start().await;
    let app = harness.app().await;
    let player = Uuid::now_v7();
    let transfer = Uuid::now_v7();
    let at = Utc::now()
        .duration_trunc(TimeDelta::milliseconds(1))
        .unwrap();
    harness
        .publish_transfer(&bet(player, transfer, eur("42.75"), Some("mystery"), at))
        .await;
    harness.wait_processed(1).await;
    let url = |id: &str| format!("{}/api/v1/admin/players/{id}/rewards", app.public);

    for role in [Role::Staff, Role::Admin] {
        let (status, view) = get(
            &url(&player.to_string()),
            Some(&harness.token(Uuid::now_v7(), role)),
        )
        .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["bets"], 1);
        assert_eq!(view["locked"], false);
        let award = &view["recent_awards"][0];
        assert_eq!(award["transfer_id"], transfer.to_string());
        assert_eq!(award["amount_eur"], "42.75");
        assert_eq!(award["game_category"], "mystery");
        // An unknown category earns the default rate (0.1): floor(42.75 x 0.1 x 1.0) = 4.
        assert_eq!(
            (
                award["rate"].clone(),
                award["vip_points"].clone(),
                award["leaderboard_points"].clone()
            ),
            (json!("0.1"), json!(4), json!(42))
        );
        assert_eq!(award["rule_version"], 1);
        assert_eq!(award["lifetime_before_eur"], "0");
        assert!(award["rolled_back_at"].is_null());
    }
    let staff = harness.token(Uuid::now_v7(), Role::Staff);
    let (status, body) = get(&url(&Uuid::now_v7().to_string()), Some(&staff)).await;
    assert_eq!((status, code(&body)), (404, "player_not_found"));
    let (status, body) = get(&url("not-a-uuid"), Some(&staff)).await;
    assert_eq!((status, code(&body)), (400, "invalid_player_id"));
    let (status, body) = get(
        &url(&player.to_string()),
        Some(&harness.token(player, Role::Player)),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    let metrics = app.metrics().await;
    assert!(metric_sum(&metrics, "concierge_unknown_game_category_total", &[]) >= 1.0);
    app.stop().await;
}

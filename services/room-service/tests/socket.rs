//! Room-Service over socket.io, with the official Node client (socket.io-client 4.x): tokens, live
//! balance pushes and their isolation, notifications and offline catch-up, two instances, chat rules,
//! staff moderation, per-IP connection limits, payment notifications, token expiry. Real app on port 0,
//! real Postgres, real Kafka protocol.

mod support;

use std::time::Duration;

use casino_events::{
    Envelope,
    payloads::{PaymentEvent, PlayerLockChanged, TransferKind, payment_types, player_types},
    topics,
};
use casino_room_service::{
    client::{Client, ClientError, ClientEvent, ClientOptions},
    config::ConnectRate,
};
use serde_json::{Value, json};
use support::{
    Node, SOON, TestApp, TestEnv, after_pending_events, app_and_node, assert_metric_at_least,
    error_code, level_up_event, live_app_and_node, next_reason, next_unread_count,
};
use uuid::Uuid;

const QUIET: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_malformed_forged_and_expired_tokens_are_refused_with_unauthorized() {
    let (env, app, node) = app_and_node().await;
    let forger = casino_auth::jwt::JwtSigner::generate(Duration::from_secs(60));
    let player = Uuid::now_v7();
    let cases = [
        ("none", json!({})),
        ("garbage", json!({"token": "not-a-jwt"})),
        (
            "forged",
            json!({"token": forger.issue(player, casino_auth::Role::Player).0}),
        ),
        ("expired", json!({"token": env.expired_token(player)})),
    ];
    for (id, auth) in &cases {
        let line = node
            .connect_with(id, &app.public, auth.clone(), json!({}))
            .await;
        assert_eq!(line["type"], "connect_error", "{id}: {line}");
        assert_eq!(line["message"], "unauthorized", "{id}");
    }
    // A good token connects (default transports: HTTP long-polling, then the WebSocket upgrade).
    let line = node
        .connect_upgrading("good", &app.public, &env.token(player))
        .await;
    assert_eq!(line["type"], "connect", "{line}");
    assert_eq!(
        node.event("good", "notifications.unread_count").await,
        vec![json!({"count": 0})]
    );

    let metrics = app.metrics().await;
    assert_metric_at_least(
        &metrics,
        r#"room_socket_connections_total{outcome="unauthorized"}"#,
        4.0,
    );
    assert_metric_at_least(
        &metrics,
        r#"room_socket_connections_total{outcome="accepted"}"#,
        1.0,
    );
    assert_metric_at_least(&metrics, "room_sockets_connected", 1.0);
    node.disconnect("good");
    assert_eq!(node.disconnected("good").await, "io client disconnect");
    assert_eq!(app.stop().await.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_bet_updates_the_balance_on_that_players_sockets_and_no_other() {
    let (env, app, node) = live_app_and_node().await;
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    node.connect_as("alice-ws", &app.public, &env.token(alice))
        .await;
    // Alice's second tab on the default transports (long-polling, upgraded).
    let line = node
        .connect_upgrading("alice-polling", &app.public, &env.token(alice))
        .await;
    assert_eq!(line["type"], "connect");
    node.connect_as("bob", &app.public, &env.token(bob)).await;

    let bet = env
        .transfer(alice, TransferKind::Bet, -250, 750, "2.50")
        .await;
    let win = env
        .transfer(alice, TransferKind::Win, 1_000, 1_750, "10.00")
        .await;
    for socket in ["alice-ws", "alice-polling"] {
        let first = node.event(socket, "balance.updated").await;
        assert_eq!(
            first[0],
            json!({
                "currency": "EUR", "balance": 750, "delta": -250, "reason": "bet",
                "transfer_id": bet.data.transfer_id,
                "at": bet.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            })
        );
        let second = node.event(socket, "balance.updated").await;
        assert_eq!(second[0]["transfer_id"], json!(win.data.transfer_id));
        assert_eq!(second[0]["reason"], "win");
        assert_eq!(second[0]["balance"], 1_750);
    }
    // A redelivered event (same event_id) is not pushed again.
    env.publish(topics::VAULT_TRANSACTIONS, &bet).await;
    tokio::time::sleep(QUIET).await;
    assert!(
        node.take_events("alice-ws", "balance.updated").is_empty(),
        "pushed twice"
    );
    assert!(
        node.take_events("bob", "balance.updated").is_empty(),
        "bob saw alice's balance"
    );

    let metrics = app.metrics().await;
    assert_metric_at_least(
        &metrics,
        r#"room_messages_emitted_total{event="balance.updated"}"#,
        4.0,
    );
    assert!(metrics.contains(r#"room_delivery_latency_seconds_bucket{event="balance.updated""#)
        || metrics.contains(r#"room_delivery_latency_seconds_bucket{service="room-service",event="balance.updated""#)
        || metrics.contains("room_delivery_latency_seconds_bucket{"), "{metrics}");
    assert_eq!(app.stop().await.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_chat_together_and_push_each_players_balance_wherever_they_are() {
    let env = TestEnv::start().await;
    let one = env.app().await;
    let two = env.app().await;
    one.wait_until_live(&env).await;
    two.wait_until_live(&env).await;
    let node = Node::start().await;
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    node.connect_as("alice", &one.public, &env.token(alice))
        .await;
    node.connect_as("bob", &two.public, &env.token(bob)).await;
    for id in ["alice", "bob"] {
        node.join(id, "lobby").await;
    }

    let ack = node.chat("alice", "lobby", "hi from one", "a-1").await;
    assert_eq!(ack["ok"], true, "{ack}");
    for id in ["alice", "bob"] {
        let message = &node.event(id, "chat.message").await[0];
        assert_eq!(message["text"], "hi from one");
        assert_eq!(message["player_id"], json!(alice));
        assert_eq!(message["message_id"], ack["message_id"]);
        assert_eq!(message["room"], "lobby");
    }
    let ack = node.chat("bob", "lobby", "hello from two", "b-1").await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(
        node.event("alice", "chat.message").await[0]["text"],
        "hello from two"
    );
    assert_eq!(
        node.event("bob", "chat.message").await[0]["text"],
        "hello from two"
    );

    // Each instance consumes every event; each player gets their own push, once, on their instance.
    env.transfer(alice, TransferKind::Deposit, 5_000, 5_000, "50")
        .await;
    env.transfer(bob, TransferKind::Deposit, 7_000, 7_000, "70")
        .await;
    assert_eq!(
        node.event("alice", "balance.updated").await[0]["balance"],
        5_000
    );
    assert_eq!(
        node.event("bob", "balance.updated").await[0]["balance"],
        7_000
    );
    tokio::time::sleep(QUIET).await;
    for id in ["alice", "bob"] {
        assert!(
            node.take_events(id, "balance.updated").is_empty(),
            "{id} got a push twice or someone else's"
        );
        assert!(
            node.take_events(id, "chat.message").is_empty(),
            "{id} got a chat message twice"
        );
    }
    assert_eq!(one.stop().await.exit_code(), 0);
    assert_eq!(two.stop().await.exit_code(), 0);
}

/// How many of `token`'s player's notifications are unread.
async fn unread_notifications(app: &TestApp, token: &str) -> usize {
    let (status, body) = app
        .http()
        .get("/api/v1/notifications?unread=true", token)
        .await;
    assert_eq!(status, 200, "{body}");
    body["notifications"].as_array().unwrap().len()
}

async fn stored_notifications(app: &TestApp, token: &str, at_least: usize) -> Vec<Value> {
    let http = app.http();
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        let (status, body) = http.get("/api/v1/notifications?limit=100", token).await;
        assert_eq!(status, 200, "{body}");
        let list = body["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if list.len() >= at_least {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} notifications stored",
            list.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_client_receives_exactly_the_notifications_it_missed_in_order_then_live_ones()
 {
    let (env, app, node) = app_and_node().await;
    let player = Uuid::now_v7();
    let token = env.token(player);
    node.connect_as("first", &app.public, &token).await;
    assert_eq!(node.unread_count("first").await, 0);

    // Live: a level-up becomes a stored notification pushed at once.
    let level = env.level_up(player, 2).await;
    let live = node.notification("first").await;
    assert_eq!(live["type"], "level_up");
    assert_eq!(live["data"], json!({"from": 1, "to": 2, "name": "Level 2"}));
    assert_eq!(live["read"], false);
    let last_seen = live["id"].as_i64().unwrap();
    // The same event again (a redelivery) is stored once.
    env.publish(topics::CONCIERGE_REWARDS, &level).await;

    node.disconnect("first");
    node.disconnected("first").await;

    // Offline: a big win, a small win (no notification), an account lock, another level-up.
    env.transfer(player, TransferKind::Win, 80_000, 90_000, "800.00")
        .await;
    env.transfer(player, TransferKind::Win, 100, 90_100, "1.00")
        .await;
    env.publish(
        topics::VAULT_PLAYERS,
        &Envelope::new(
            player_types::LOCKED,
            "vault",
            Some(player),
            PlayerLockChanged {
                reason: "rollback abuse".into(),
                by: "policy".into(),
            },
        ),
    )
    .await;
    env.level_up(player, 3).await;
    let stored = stored_notifications(&app, &token, 4).await;
    assert_eq!(stored.len(), 4, "{stored:?}");

    // What was missed, oldest first (events of different topics are stored in the order they were
    // consumed, which is the id order).
    let mut missed: Vec<Value> = stored
        .iter()
        .filter(|n| n["id"].as_i64().unwrap() > last_seen)
        .cloned()
        .collect();
    missed.reverse();
    let mut types: Vec<&str> = missed.iter().map(|n| n["type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(types, ["account_locked", "big_win", "level_up"]);

    node.connect(
        "second",
        &app.public,
        json!({"token": token, "last_notification_id": last_seen}),
    )
    .await;
    let mut replayed = Vec::new();
    for _ in 0..3 {
        replayed.push(node.notification("second").await);
    }
    assert_eq!(replayed, missed, "exactly the missed ones, in order");
    let ids: Vec<i64> = replayed.iter().map(|n| n["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]) && ids[0] > last_seen,
        "{ids:?}"
    );
    let by_type = |t: &str| replayed.iter().find(|n| n["type"] == t).unwrap().clone();
    assert_eq!(by_type("big_win")["data"]["amount_eur"], "800.00");
    assert_eq!(
        by_type("account_locked")["data"],
        json!({"reason": "rollback abuse"})
    );
    assert_eq!(node.unread_count("second").await, 4);

    // Then live ones, and nothing twice.
    env.level_up(player, 4).await;
    let next = node.notification("second").await;
    assert_eq!(next["data"]["to"], 4);
    assert!(next["id"].as_i64().unwrap() > ids[2]);
    tokio::time::sleep(QUIET).await;
    assert!(node.take_events("second", "notification").is_empty());

    let metrics = app.metrics().await;
    assert_metric_at_least(&metrics, "room_notifications_replayed_total", 3.0);
    for (kind, at_least) in [("big_win", 1.0), ("account_locked", 1.0), ("level_up", 3.0)] {
        assert_metric_at_least(
            &metrics,
            &format!(r#"room_notifications_stored_total{{type="{kind}"}}"#),
            at_least,
        );
    }
    assert_eq!(app.stop().await.exit_code(), 0);
}

/// Notifications stored while sockets are connecting are neither lost nor duplicated: every socket ends
/// up with every notification after its cursor exactly once, in id order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_stored_while_sockets_connect_are_delivered_exactly_once_in_order() {
    let env = TestEnv::start().await;
    let app = env.app().await;
    let player = Uuid::now_v7();
    let token = env.token(player);
    const TOTAL: u32 = 40;
    let publisher = {
        let producer = env.producer.clone();
        tokio::spawn(async move {
            for level in 1..=TOTAL {
                producer
                    .send_envelope(topics::CONCIERGE_REWARDS, &level_up_event(player, level))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    let mut clients = Vec::new();
    for _ in 0..6 {
        let client = Client::connect(
            &app.public,
            ClientOptions::auth(json!({"token": token, "last_notification_id": 0})),
        )
        .await
        .unwrap();
        clients.push(client);
        tokio::time::sleep(Duration::from_millis(70)).await;
    }
    publisher.await.unwrap();
    let stored = stored_notifications(&app, &token, TOTAL as usize).await;
    let mut all_ids: Vec<i64> = stored.iter().map(|n| n["id"].as_i64().unwrap()).collect();
    all_ids.sort();
    tokio::time::sleep(QUIET).await;
    for (i, client) in clients.iter_mut().enumerate() {
        let ids: Vec<i64> = client
            .drain()
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::Event { name, args } if name == "notification" => {
                    args[0]["id"].as_i64()
                }
                _ => None,
            })
            .collect();
        assert_eq!(ids, all_ids, "socket {i} got {ids:?}");
    }
    assert_eq!(app.stop().await.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_private_paged_and_marked_read() {
    let env = TestEnv::start().await;
    let app = env.app().await;
    let http = app.http();
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let (alice_token, bob_token) = (env.token(alice), env.token(bob));
    for level in 2..=6 {
        env.level_up(alice, level).await;
    }
    env.level_up(bob, 2).await;
    let all = stored_notifications(&app, &alice_token, 5).await;
    assert_eq!(all.len(), 5);
    assert!(
        all.windows(2)
            .all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64()),
        "newest first"
    );
    assert_eq!(
        stored_notifications(&app, &bob_token, 1).await.len(),
        1,
        "bob sees only his"
    );

    // Cursor paging.
    let (_, page1) = http
        .get("/api/v1/notifications?limit=2", &alice_token)
        .await;
    assert_eq!(page1["notifications"].as_array().unwrap().len(), 2);
    let cursor = page1["next_cursor"].as_str().unwrap().to_owned();
    let (_, page2) = http
        .get(
            &format!("/api/v1/notifications?limit=2&cursor={cursor}"),
            &alice_token,
        )
        .await;
    assert_eq!(page2["notifications"][0]["id"], all[2]["id"]);
    let (_, page3) = http
        .get(
            &format!(
                "/api/v1/notifications?limit=2&cursor={}",
                page2["next_cursor"].as_str().unwrap()
            ),
            &alice_token,
        )
        .await;
    assert_eq!(page3["notifications"].as_array().unwrap().len(), 1);
    assert_eq!(page3["next_cursor"], Value::Null);

    // Read flags; a socket of alice hears the new unread count.
    let mut socket = app.client(&alice_token).await;
    assert_eq!(next_unread_count(&mut socket).await, 5);
    let id = all[0]["id"].as_i64().unwrap();
    let read = format!("/api/v1/notifications/{id}/read");
    let (status, _) = http.post(&read, &bob_token, json!({})).await;
    assert_eq!(status, 404, "bob cannot touch alice's notification");
    let (status, body) = http.post(&read, &alice_token, json!({})).await;
    assert_eq!(
        (status, body["notification"]["read"].clone()),
        (200, json!(true))
    );
    assert_eq!(next_unread_count(&mut socket).await, 4);
    assert_eq!(unread_notifications(&app, &alice_token).await, 4);
    let (status, body) = http
        .post("/api/v1/notifications/read-all", &alice_token, json!({}))
        .await;
    assert_eq!((status, body["updated"].clone()), (200, json!(4)));
    assert_eq!(next_unread_count(&mut socket).await, 0);
    assert_eq!(
        unread_notifications(&app, &bob_token).await,
        1,
        "bob's stay unread"
    );

    // Errors are JSON with codes.
    let (status, body) = http
        .get("/api/v1/notifications?cursor=abc", &alice_token)
        .await;
    assert_eq!((status, error_code(&body)), (400, Some("invalid_cursor")));
    let (status, body) = http.get("/api/v1/notifications", "garbage").await;
    assert_eq!((status, error_code(&body)), (401, Some("unauthorized")));
    let (status, _) = http.get("/api/v1/notifications", &env.staff_token()).await;
    assert_eq!(status, 403, "notifications are a player's");
    socket.close();
    assert_eq!(app.stop().await.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_rules_answer_with_their_codes() {
    let (env, app, node) = live_app_and_node().await;
    let http = app.http();
    let staff = env.staff_token();
    let players: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    for (i, player) in players.iter().enumerate() {
        node.connect_as(&format!("p{i}"), &app.public, &env.token(*player))
            .await;
    }

    // Not joined, invalid room, then join (with history).
    assert_eq!(
        node.chat("p0", "lobby", "hi", "m0").await["error"],
        "not_joined"
    );
    assert_eq!(
        node.emit_ack("p0", "chat.join", json!({"room": "casino floor"}))
            .await["error"],
        "invalid_room"
    );
    assert_eq!(
        node.chat("p0", "player:1", "hi", "m0").await["error"],
        "invalid_room"
    );
    for id in ["p0", "p1", "p2", "p3"] {
        let joined = node.join(id, "game:roulette-1").await;
        assert_eq!(joined["messages"], json!([]));
    }
    let room = "game:roulette-1";

    // Length after trimming.
    assert_eq!(
        node.chat("p0", room, "   \n ", "m1").await["error"],
        "empty"
    );
    assert_eq!(
        node.chat("p0", room, &"x".repeat(501), "m2").await["error"],
        "too_long"
    );
    let ok = node
        .chat("p0", room, &format!("  {}  ", "é".repeat(500)), "m3")
        .await;
    assert_eq!(
        ok["ok"], true,
        "500 characters after trimming are fine: {ok}"
    );
    assert_eq!(
        node.event("p1", "chat.message").await[0]["text"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        500
    );

    // Duplicate client_msg_id: the original ack, delivered once.
    let first = node.chat("p1", room, "once", "dup").await;
    let again = node.chat("p1", room, "once", "dup").await;
    assert_eq!(first["ok"], true);
    assert_eq!(again["ok"], true);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message_id"], first["message_id"]);

    // Rate limit: 5 per 10 s per player.
    for n in 0..5 {
        let ack = node
            .chat("p2", room, &format!("msg {n}"), &format!("r{n}"))
            .await;
        assert_eq!(ack["ok"], true, "message {n}: {ack}");
    }
    let limited = node.chat("p2", room, "one too many", "r5").await;
    assert_eq!(limited["error"], "rate_limited", "{limited}");
    assert!(limited["retry_after_ms"].as_u64().unwrap() <= 10_000);

    // Muted by staff for a duration, then unmuted.
    let (status, body) = http
        .post(
            "/api/v1/chat/mutes",
            &staff,
            json!({"player_id": players[3], "duration_seconds": 600, "reason": "spam"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let muted = node.chat("p3", room, "let me talk", "u1").await;
    assert_eq!(muted["error"], "muted", "{muted}");
    assert!(muted["muted_until"].is_string());
    let (status, body) = http
        .delete(&format!("/api/v1/chat/mutes/{}", players[3]), &staff)
        .await;
    assert_eq!((status, body["unmuted"].clone()), (200, json!(true)));
    assert_eq!(node.chat("p3", room, "thanks", "u2").await["ok"], true);

    // Everyone saw each accepted message exactly once: p0's, p1's "once", p2's five, p3's "thanks".
    tokio::time::sleep(QUIET).await;
    let texts: Vec<String> = node
        .take_events("p0", "chat.message")
        .iter()
        .map(|args| args[0]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        texts.iter().filter(|t| *t == "once").count(),
        1,
        "{texts:?}"
    );
    assert_eq!(texts.len(), 1 + 1 + 5 + 1, "{texts:?}");

    let metrics = app.metrics().await;
    for outcome in [
        "accepted",
        "duplicate",
        "rate_limited",
        "too_long",
        "empty",
        "muted",
        "not_joined",
        "invalid_room",
    ] {
        assert_metric_at_least(
            &metrics,
            &format!(r#"room_chat_messages_total{{outcome="{outcome}"}}"#),
            1.0,
        );
    }
    assert_eq!(app.stop().await.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_delete_a_message_from_history_and_from_connected_clients() {
    let (env, app, node) = live_app_and_node().await;
    let http = app.http();
    let texts = |messages: &Value| -> Vec<String> {
        let messages = messages.as_array().unwrap();
        messages
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    };
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let alice_token = env.token(alice);
    node.connect_as("alice", &app.public, &alice_token).await;
    node.connect_as("bob", &app.public, &env.token(bob)).await;
    for id in ["alice", "bob"] {
        node.join(id, "lobby").await;
    }
    let mut ids = Vec::new();
    for n in 0..3 {
        let ack = node
            .chat("alice", "lobby", &format!("line {n}"), &format!("c{n}"))
            .await;
        ids.push(ack["message_id"].as_str().unwrap().to_owned());
        node.event("bob", "chat.message").await;
    }

    let (status, _) = http
        .delete(&format!("/api/v1/chat/messages/{}", ids[1]), &alice_token)
        .await;
    assert_eq!(status, 403, "players cannot delete");
    let (status, _) = http
        .delete(
            &format!("/api/v1/chat/messages/{}", ids[1]),
            &env.staff_token(),
        )
        .await;
    assert_eq!(status, 204);
    for id in ["alice", "bob"] {
        let deleted = node.event(id, "chat.message_deleted").await;
        assert_eq!(deleted[0], json!({"message_id": ids[1], "room": "lobby"}));
    }
    let (status, _) = http
        .delete(
            &format!("/api/v1/chat/messages/{}", Uuid::now_v7()),
            &env.staff_token(),
        )
        .await;
    assert_eq!(status, 404);

    // Gone from the REST history and from chat.join's.
    let (status, history) = http.get("/api/v1/chat/lobby/messages", &alice_token).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(texts(&history["messages"]), ["line 0", "line 2"]);
    node.connect_as("carol", &app.public, &env.token(Uuid::now_v7()))
        .await;
    let joined = node.join("carol", "lobby").await;
    assert_eq!(texts(&joined["messages"]), ["line 0", "line 2"]);

    // Paging backwards with ?before=.
    let (_, older) = http
        .get(
            &format!("/api/v1/chat/lobby/messages?before={}&limit=1", ids[2]),
            &alice_token,
        )
        .await;
    assert_eq!(older["messages"][0]["text"], "line 0");
    assert_eq!(older["next_before"], json!(ids[0]));
    let (status, body) = http
        .get("/api/v1/chat/nowhere/messages", &alice_token)
        .await;
    assert_eq!((status, error_code(&body)), (400, Some("invalid_room")));
    assert_eq!(app.stop().await.exit_code(), 0);
}

/// The limit is per TCP peer address: loopback has a whole /8, so sockets come from 127.0.0.2 and
/// 127.0.0.3. `X-Forwarded-For` is not believed without trusted proxies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_connections_from_one_address_are_refused_with_a_clear_error_and_counted() {
    let env = TestEnv::start().await;
    let mut settings = env.settings();
    settings.connect_rate = ConnectRate::per_minute(6); // a burst of 5
    let app = TestApp::start(settings).await;
    let node = Node::start().await;
    let token = env.token(Uuid::now_v7());
    // Socket `id` over WebSocket from the local address `ip`, claiming `forwarded_for`.
    let connect_from = async |id: &str, ip: &str, forwarded_for: &str| {
        let extra = json!({"transports": ["websocket"], "localAddress": ip,
                           "headers": {"x-forwarded-for": forwarded_for}});
        node.connect_with(id, &app.public, json!({"token": token}), extra)
            .await
    };
    for n in 0..5 {
        // A different forwarded address each time: not believed, the peer is what counts.
        let line = connect_from(&format!("a{n}"), "127.0.0.2", &format!("203.0.113.{n}")).await;
        assert_eq!(line["type"], "connect", "{line}");
    }
    let refused = connect_from("a5", "127.0.0.2", "203.0.113.99").await;
    assert_eq!(refused["type"], "connect_error", "{refused}");
    assert_eq!(refused["message"], "rate_limited");
    // Another address has its own allowance.
    let other = connect_from("b", "127.0.0.3", "203.0.113.1").await;
    assert_eq!(other["type"], "connect", "{other}");
    // The Rust client (127.0.0.1) is not affected either, and sees the same refusal code when over.
    let mut kept = Vec::new();
    for _ in 0..5 {
        kept.push(app.client(&token).await);
    }
    let refused = Client::connect(&app.public, ClientOptions::token(&token))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ClientError::Refused(m) if m == "rate_limited"),
        "{refused}"
    );
    // A source that keeps going after a burst's worth of refusals in a row gets plain HTTP 429s.
    let mut last = None;
    for _ in 0..5 {
        last = Some(
            Client::connect(&app.public, ClientOptions::token(&token))
                .await
                .unwrap_err(),
        );
    }
    let hard = last.unwrap();
    assert!(
        matches!(&hard, ClientError::Transport(m) if m.contains("429")),
        "{hard}"
    );
    assert_metric_at_least(
        &app.metrics().await,
        r#"room_socket_connections_total{outcome="rate_limited"}"#,
        7.0,
    );
    assert_eq!(app.stop().await.exit_code(), 0);
}

/// Behind the ALB (one trusted proxy), the source is the right-most `X-Forwarded-For` address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_limit_applies_to_the_forwarded_address() {
    let env = TestEnv::start().await;
    let mut settings = env.settings();
    settings.connect_rate = ConnectRate::per_minute(6); // a burst of 5
    settings.trusted_proxy_hops = 1;
    let app = TestApp::start(settings).await;
    let token = env.token(Uuid::now_v7());
    let from = |ip: &str| {
        let mut options = ClientOptions::token(&token);
        options
            .headers
            .push(("x-forwarded-for".into(), format!("10.0.0.9, {ip}")));
        options
    };
    let mut kept = Vec::new();
    for _ in 0..5 {
        kept.push(
            Client::connect(&app.public, from("203.0.113.50"))
                .await
                .unwrap(),
        );
    }
    let refused = Client::connect(&app.public, from("203.0.113.50"))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ClientError::Refused(m) if m == "rate_limited"),
        "{refused}"
    );
    // Same peer (127.0.0.1), another client address: allowed.
    Client::connect(&app.public, from("198.51.100.7"))
        .await
        .unwrap();
    assert_eq!(app.stop().await.exit_code(), 0);
}

fn payment_event(player: Uuid, event_type: &str, reason: Option<&str>) -> Envelope<PaymentEvent> {
    Envelope::new(
        event_type,
        "vault",
        Some(player),
        PaymentEvent {
            payment_id: Uuid::now_v7(),
            direction: if reason.is_some() {
                "withdrawal".into()
            } else {
                "deposit".into()
            },
            status: event_type.trim_start_matches("payment.").into(),
            currency: "EUR".into(),
            amount: 5_000,
            amount_eur: "50.00".parse().unwrap(),
            provider: "sandbox".into(),
            reason: reason.map(str::to_owned),
            flagged: false,
        },
    )
}

/// `payment.succeeded` / `payment.failed` on `vault.payments.v1` become notifications: stored once per
/// event even when it is delivered twice, pushed to the player's connected socket once, typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_outcomes_become_notifications_stored_once_and_pushed_live() {
    let (env, app, node) = app_and_node().await;
    let player = Uuid::now_v7();
    let token = env.token(player);
    node.connect_as("p", &app.public, &token).await;
    node.unread_count("p").await;

    let pending = payment_event(player, payment_types::PENDING, None);
    let succeeded = payment_event(player, payment_types::SUCCEEDED, None);
    let failed = payment_event(player, payment_types::FAILED, Some("provider_declined"));
    env.publish(topics::VAULT_PAYMENTS, &pending).await;
    env.publish(topics::VAULT_PAYMENTS, &succeeded).await;
    env.publish(topics::VAULT_PAYMENTS, &succeeded).await; // redelivered
    env.publish(topics::VAULT_PAYMENTS, &failed).await;
    env.publish(topics::VAULT_PAYMENTS, &failed).await; // redelivered

    let first = node.notification("p").await;
    assert_eq!(first["type"], "payment_succeeded", "{first}");
    assert_eq!(
        first["data"],
        json!({"payment_id": succeeded.data.payment_id, "direction": "deposit",
               "currency": "EUR", "amount": 5_000})
    );
    assert_eq!(first["read"], false);
    let second = node.notification("p").await;
    assert_eq!(second["type"], "payment_failed", "{second}");
    assert_eq!(
        second["data"],
        json!({"payment_id": failed.data.payment_id, "direction": "withdrawal",
               "currency": "EUR", "amount": 5_000, "reason": "provider_declined"})
    );
    assert!(second["id"].as_i64() > first["id"].as_i64());

    // A later event of the same partition (key = player) shows the redeliveries were consumed.
    let later = payment_event(player, payment_types::SUCCEEDED, None);
    env.publish(topics::VAULT_PAYMENTS, &later).await;
    let third = node.notification("p").await;
    assert_eq!(third["data"]["payment_id"], json!(later.data.payment_id));
    tokio::time::sleep(QUIET).await;
    assert!(
        node.take_events("p", "notification").is_empty(),
        "nothing pushed twice"
    );
    let stored = stored_notifications(&app, &token, 3).await;
    assert_eq!(
        stored,
        [third, second, first],
        "stored once each, newest first"
    );

    let metrics = app.metrics().await;
    for kind in ["payment_succeeded", "payment_failed"] {
        assert_metric_at_least(
            &metrics,
            &format!(r#"room_notifications_stored_total{{type="{kind}"}}"#),
            1.0,
        );
    }
    assert_eq!(app.stop().await.exit_code(), 0);
}

/// A socket is disconnected when its access token expires, told why, and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_is_disconnected_when_its_token_expires() {
    let (env, app, node) = app_and_node().await;
    let short = env.token_expiring_in(Uuid::now_v7(), 2);
    node.connect_as("short", &app.public, &short).await;
    node.connect_as("long", &app.public, &env.token(Uuid::now_v7()))
        .await;
    let mut rust = app.client(&env.token_expiring_in(Uuid::now_v7(), 2)).await;
    let started = std::time::Instant::now();
    let notice = node.event("short", "session.expired").await[0].clone();
    assert_eq!(notice["reason"], "token_expired", "{notice}");
    assert_eq!(
        node.disconnected("short").await,
        "io server disconnect",
        "the client does not reconnect with the stale token by itself"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(4),
        "disconnected at expiry, after {elapsed:?}"
    );
    assert_eq!(
        next_reason(&mut rust, "session.expired").await,
        "token_expired"
    );
    let ended = after_pending_events(&mut rust).await;
    assert!(
        matches!(&ended, Ok(ClientEvent::Disconnected { reason }) if reason == "io server disconnect"),
        "{ended:?}"
    );
    // The socket with a long-lived token stays.
    assert!(
        node.try_expect(|v| v["id"] == "long" && v["type"] == "disconnect", QUIET)
            .await
            .is_none()
    );
    assert_metric_at_least(
        &app.metrics().await,
        r#"room_socket_disconnects_total{reason="token_expired"}"#,
        2.0,
    );
    assert_eq!(app.stop().await.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_sockets_why_and_disconnects_them() {
    let (env, app, node) = app_and_node().await;
    node.connect_as("a", &app.public, &env.token(Uuid::now_v7()))
        .await;
    let mut rust = app.client(&env.token(Uuid::now_v7())).await;
    let lifecycle = app.lifecycle.clone();
    let stopping = tokio::spawn(app.stop());
    assert_eq!(
        node.event("a", "server.shutdown").await[0]["reason"],
        "server_shutdown"
    );
    assert_eq!(
        node.disconnected("a").await,
        "transport close",
        "the client reconnects elsewhere on its own"
    );
    assert_eq!(
        next_reason(&mut rust, "server.shutdown").await,
        "server_shutdown"
    );
    // Events queued before the shutdown notice (the unread count sent on connect) come first; then the
    // transport closes.
    let disconnected = after_pending_events(&mut rust).await;
    assert!(
        matches!(disconnected, Ok(ClientEvent::Disconnected { .. })),
        "{disconnected:?}"
    );
    let outcome = tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.exit_code(), 0);
    assert!(lifecycle.token().is_cancelled());
    let handle = casino_observability::metrics::install(&casino_observability::ServiceInfo::new(
        "room-service",
        "room",
        "test",
        "test",
    ));
    assert_metric_at_least(
        &handle.render(),
        r#"room_socket_disconnects_total{reason="server_shutdown"}"#,
        2.0,
    );
}

/// The official client flushes events emitted before the connection right after CONNECT: they must find
/// their handlers in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_emitted_before_the_connection_completes_are_handled() {
    let (env, app, node) = app_and_node().await;
    for n in 0..5 {
        let id = format!("eager{n}");
        node.send(
            json!({"op": "connect", "id": id, "url": app.public, "transports": ["websocket"],
            "auth": {"token": env.token(Uuid::now_v7())}}),
        );
        node.join(&id, "lobby").await;
    }
    for _ in 0..5 {
        let client = app.client(&env.token(Uuid::now_v7())).await;
        let joined = client
            .emit_with_ack("chat.join", &json!({"room": "lobby"}), SOON)
            .await
            .unwrap();
        assert_eq!(joined["ok"], true, "{joined}");
        client.close();
    }
    assert_eq!(app.stop().await.exit_code(), 0);
}

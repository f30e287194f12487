//! `casino bench vault`: the bet path under load.
//!
//! Three phases in one run, on the same database:
//! 1. **closed loop**: `--concurrency` workers place signed bets over HTTP as fast as Vault answers
//!    (bets/s and latency);
//! 2. **open loop**: bets at a fixed `--rate` per second (latency measured from each bet's scheduled
//!    start, so a slow server cannot hide queueing);
//! 3. **naive**: the same SQL work straight against PostgreSQL, one transaction per bet, at the same
//!    concurrency (what pgbench would measure).
//!
//! Without `--url`, it starts its own PostgreSQL (durable: fsync on, like production), the embedded Kafka
//! broker and a Vault in this process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::stats::Latencies;

const PROVIDER: &str = "bench";
const SECRET: &str = "bench-provider-secret";
const ADMIN_EMAIL: &str = "bench-admin@casino.test";
const ADMIN_PASSWORD: &str = "benchmark operator 1";

/// Arguments of `casino bench vault`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Vault's public URL. Without it, a Vault (with its own PostgreSQL and broker) is started here.
    #[arg(long)]
    url: Option<String>,
    /// Vault's database (needed with --url, for the naive comparison).
    #[arg(long, env = "VAULT_DATABASE_URL")]
    database_url: Option<String>,
    /// Concurrent workers in the closed-loop and naive phases.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Bets per second in the open-loop phase.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
}

struct Player {
    id: Uuid,
    session: String,
}

struct Target {
    http: reqwest::Client,
    url: String,
    pool: PgPool,
    _vault: Option<SpawnedVault>,
}

struct SpawnedVault {
    lifecycle: casino_observability::lifecycle::Lifecycle,
    _db: casino_testkit::postgres::TestDatabase,
    _kafka: casino_testkit::kafka::TestKafka,
}

/// Run the benchmark and print the report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let target = prepare(&args).await?;
    println!(
        "casino bench vault: concurrency {}, {} s per phase, open-loop rate {}/s, target {}",
        args.concurrency, args.seconds, args.rate, target.url
    );
    let players = setup_players(&target, args.concurrency).await?;
    let duration = Duration::from_secs(args.seconds);

    // Warm-up: connections, caches, JIT-less but still.
    closed_loop(&target, &players, Duration::from_secs(2), "warmup").await;

    let (closed_ok, closed_err, mut closed_lat, closed_elapsed) =
        closed_loop(&target, &players, duration, "closed").await;
    let closed_rate = closed_ok as f64 / closed_elapsed.as_secs_f64();

    let (open_ok, open_err, mut open_lat, open_elapsed) =
        open_loop(&target, &players, duration, args.rate).await;
    let open_rate = open_ok as f64 / open_elapsed.as_secs_f64();

    let naive_players = setup_players(&target, args.concurrency).await?;
    let (naive_ok, naive_err, mut naive_lat, naive_elapsed) =
        naive(&target.pool, &naive_players, duration).await?;
    let naive_rate = naive_ok as f64 / naive_elapsed.as_secs_f64();

    println!();
    println!("phase                       bets/s   ok       errors   latency");
    println!(
        "vault closed loop (c={:<3})  {:>8.0}  {:>7}  {:>7}  {}",
        args.concurrency,
        closed_rate,
        closed_ok,
        closed_err,
        closed_lat.summary()
    );
    println!(
        "vault open loop ({:>5}/s)  {:>8.0}  {:>7}  {:>7}  {}",
        args.rate,
        open_rate,
        open_ok,
        open_err,
        open_lat.summary()
    );
    println!(
        "naive SQL (c={:<3})          {:>8.0}  {:>7}  {:>7}  {}",
        args.concurrency,
        naive_rate,
        naive_ok,
        naive_err,
        naive_lat.summary()
    );
    println!();
    println!(
        "vault / naive throughput: {:.2}x (target >= 2x); open-loop p99 {:.2} ms (target < 25 ms at 1000/s)",
        closed_rate / naive_rate.max(1.0),
        open_lat.quantile(0.99).as_secs_f64() * 1000.0
    );
    if let Some(vault) = target._vault.as_ref() {
        vault.lifecycle.request_shutdown();
    }
    Ok(())
}

async fn prepare(args: &Args) -> anyhow::Result<Target> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .timeout(Duration::from_secs(30))
        .build()?;
    if let Some(url) = &args.url {
        let database_url = args.database_url.clone().context(
            "--database-url (or VAULT_DATABASE_URL) is needed with --url for the naive phase",
        )?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(args.concurrency as u32 + 2)
            .connect(&database_url)
            .await
            .context("connecting to Vault's database")?;
        return Ok(Target {
            http,
            url: url.trim_end_matches('/').to_owned(),
            pool,
            _vault: None,
        });
    }
    casino_testkit::postgres::use_durable_server();
    let db =
        casino_testkit::postgres::TestDatabase::create(&casino_vault::startup::MIGRATOR).await?;
    let kafka = casino_testkit::kafka::TestKafka::start(&casino_events::topics::ALL)?;
    let mut common = casino_testkit::service_settings(&db.url, kafka.bootstrap_servers());
    common.database_max_connections = (args.concurrency as u32).max(10);
    let mut settings = casino_vault::config::Settings::with_common(common);
    settings
        .game_providers
        .insert(PROVIDER.into(), SECRET.into());
    settings.bootstrap_admin = Some((ADMIN_EMAIL.into(), ADMIN_PASSWORD.into()));
    // The benchmark hammers a few players on purpose: keep the abuse policy from locking them.
    settings.abuse.lock_after_signals = 0;
    settings.abuse.max_bets_per_second = usize::MAX;
    let app = casino_vault::startup::Application::build(settings).await?;
    let url = format!("http://{}", app.public_addr());
    let lifecycle = app.lifecycle().clone();
    tokio::spawn(app.run_until_stopped());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(args.concurrency as u32 + 2)
        .connect(&db.url)
        .await?;
    Ok(Target {
        http,
        url,
        pool,
        _vault: Some(SpawnedVault {
            lifecycle,
            _db: db,
            _kafka: kafka,
        }),
    })
}

async fn post(
    target: &Target,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut request = target
        .http
        .post(format!("{}{path}", target.url))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
    Ok(body)
}

async fn setup_players(target: &Target, count: usize) -> anyhow::Result<Vec<Player>> {
    let admin = post(
        target,
        "/api/v1/auth/login",
        None,
        json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }),
    )
    .await
    .context(
        "logging in the bench admin (with --url, create it with VAULT_ADMIN_EMAIL/PASSWORD)",
    )?;
    let admin = admin["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut players = Vec::with_capacity(count);
    for _ in 0..count {
        let email = format!("bench-{}@casino.test", Uuid::new_v4().simple());
        let password = "bench player 2026";
        let registered = post(
            target,
            "/api/v1/auth/register",
            None,
            json!({ "email": email, "password": password, "currency": "EUR" }),
        )
        .await?;
        let id: Uuid = registered["id"].as_str().unwrap_or_default().parse()?;
        let login = post(
            target,
            "/api/v1/auth/login",
            None,
            json!({ "email": email, "password": password }),
        )
        .await?;
        let token = login["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let response = target
            .http
            .post(format!("{}/api/v1/admin/adjustments", target.url))
            .bearer_auth(&admin)
            .header("idempotency-key", Uuid::new_v4().to_string())
            .json(&json!({ "player_id": id, "currency": "EUR", "amount": "1000000.00", "reason": "benchmark funding" }))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "funding failed: {}",
            response.status()
        );
        let session = post(target, "/api/v1/games/sessions", Some(&token), json!({})).await?;
        players.push(Player {
            id,
            session: session["session_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        });
    }
    Ok(players)
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

async fn place_bet(target: &Target, player: &Player) -> bool {
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let body = serde_json::to_vec(&json!({
        "transaction_id": format!("bench-{n}"),
        "round_id": format!("bench-round-{n}"),
        "game_id": "bench-slot",
        "game_category": "slots",
        "player_id": player.id,
        "currency": "EUR",
        "amount": "0.10",
        "session_token": player.session,
    }))
    .unwrap_or_default();
    let timestamp = chrono::Utc::now().timestamp();
    let signature = casino_auth::signature::sign(SECRET.as_bytes(), timestamp, &body);
    let response = target
        .http
        .post(format!("{}/api/v1/games/bet", target.url))
        .header("content-type", "application/json")
        .header("x-casino-provider", PROVIDER)
        .header("x-casino-timestamp", timestamp.to_string())
        .header("x-casino-signature", signature)
        .body(body)
        .send()
        .await;
    matches!(response, Ok(r) if r.status().is_success())
}

async fn closed_loop(
    target: &Target,
    players: &[Player],
    duration: Duration,
    _label: &str,
) -> (u64, u64, Latencies, Duration) {
    let start = Instant::now();
    let deadline = start + duration;
    let workers = players.iter().map(|player| async move {
        let (mut ok, mut err, mut latencies) = (0u64, 0u64, Latencies::default());
        while Instant::now() < deadline {
            let began = Instant::now();
            if place_bet(target, player).await {
                ok += 1;
                latencies.push(began.elapsed());
            } else {
                err += 1;
            }
        }
        (ok, err, latencies)
    });
    let results = futures::future::join_all(workers).await;
    let elapsed = start.elapsed();
    let mut total = (0, 0, Latencies::default());
    for (ok, err, latencies) in results {
        total.0 += ok;
        total.1 += err;
        total.2.extend(latencies);
    }
    (total.0, total.1, total.2, elapsed)
}

async fn open_loop(
    target: &Target,
    players: &[Player],
    duration: Duration,
    rate: u64,
) -> (u64, u64, Latencies, Duration) {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let total = (duration.as_secs_f64() * rate as f64) as u64;
    let start = Instant::now();
    let ok = Arc::new(AtomicU64::new(0));
    let err = Arc::new(AtomicU64::new(0));
    let bets = (0..total).map(|i| {
        let scheduled = start + interval.mul_f64(i as f64);
        let player = &players[i as usize % players.len()];
        let (ok, err) = (ok.clone(), err.clone());
        async move {
            tokio::time::sleep_until(scheduled.into()).await;
            let success = place_bet(target, player).await;
            let latency = scheduled.elapsed();
            if success {
                ok.fetch_add(1, Ordering::Relaxed);
                Some(latency)
            } else {
                err.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    });
    let latencies = futures::future::join_all(bets).await;
    let elapsed = start.elapsed();
    let mut collected = Latencies::default();
    for latency in latencies.into_iter().flatten() {
        collected.push(latency);
    }
    (
        ok.load(Ordering::Relaxed),
        err.load(Ordering::Relaxed),
        collected,
        elapsed,
    )
}

/// The SQL of one bet, the way a straightforward implementation issues it: the same reads and writes as
/// Vault's bet path, one statement per round trip, one transaction and commit per bet.
async fn naive_bet(pool: &PgPool, player: &Player, house: i64, n: u64) -> anyhow::Result<()> {
    let tx_id = format!("naive-{n}");
    let round = format!("naive-round-{n}");
    let token_hash = Sha256::digest(player.session.as_bytes()).to_vec();
    let _session: Option<Uuid> = sqlx::query_scalar(
        "SELECT player_id FROM game_sessions WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()",
    )
    .bind(&token_hash)
    .fetch_optional(pool)
    .await?;
    let _locked: Option<bool> =
        sqlx::query_scalar("SELECT locked FROM players WHERE id = $1 AND role = 'player'")
            .bind(player.id)
            .fetch_optional(pool)
            .await?;
    let _limits: Option<(i64, i64)> = sqlx::query_as(
        "SELECT min_bet, max_bet FROM bet_limits WHERE currency = 'EUR' AND game_id IN ('bench-slot', '*')
         ORDER BY (game_id = '*') LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO game_transactions (provider, transaction_id, operation, request_hash, player_id, round_id, http_status, response)
         VALUES ('naive', $1, 'bet', $2, $3, $4, 0, '{}') ON CONFLICT DO NOTHING",
    )
    .bind(&tx_id)
    .bind(&token_hash)
    .bind(player.id)
    .bind(&round)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO rounds (provider, round_id, player_id, game_id, currency, status) VALUES ('naive', $1, $2, 'bench-slot', 'EUR', 'open')
         ON CONFLICT (provider, round_id) DO UPDATE SET status = rounds.status RETURNING status",
    )
    .bind(&round)
    .bind(player.id)
    .fetch_optional(&mut *tx)
    .await?;
    let (account, balance): (i64, i64) = sqlx::query_as(
        "UPDATE accounts SET balance = balance - 10 WHERE owner = $1 AND currency = 'EUR' AND balance >= 10 RETURNING id, balance",
    )
    .bind(player.id.to_string())
    .fetch_one(&mut *tx)
    .await?;
    let transfer = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO transfers (id, kind, debit_account, credit_account, amount, currency, amount_eur, idempotency_key,
                                player_id, player_delta, balance_after, provider, round_id, game_id, game_category)
         VALUES ($1, 'bet', $2, $3, 10, 'EUR', 0.1, $4, $5, -10, $6, 'naive', $7, 'bench-slot', 'slots')",
    )
    .bind(transfer)
    .bind(account)
    .bind(house)
    .bind(format!("game:naive:{tx_id}"))
    .bind(player.id)
    .bind(balance)
    .bind(&round)
    .execute(&mut *tx)
    .await?;
    let payload =
        serde_json::to_vec(&json!({ "transfer_id": transfer, "balance_after": balance }))?;
    sqlx::query("INSERT INTO outbox (event_id, topic, key, payload, published_at) VALUES ($1, 'bench.naive', $2, $3, now())")
        .bind(Uuid::now_v7())
        .bind(player.id.to_string())
        .bind(payload)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE game_transactions SET transfer_id = $3, http_status = 200, response = '{\"status\":\"ok\"}'
         WHERE provider = 'naive' AND transaction_id = $1 AND player_id = $2",
    )
    .bind(&tx_id)
    .bind(player.id)
    .bind(transfer)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn naive(
    pool: &PgPool,
    players: &[Player],
    duration: Duration,
) -> anyhow::Result<(u64, u64, Latencies, Duration)> {
    sqlx::query("INSERT INTO accounts (owner, currency, is_system) VALUES ('house', 'EUR', TRUE) ON CONFLICT DO NOTHING")
        .execute(pool)
        .await?;
    let house: i64 =
        sqlx::query_scalar("SELECT id FROM accounts WHERE owner = 'house' AND currency = 'EUR'")
            .fetch_one(pool)
            .await?;
    let start = Instant::now();
    let deadline = start + duration;
    let workers = players.iter().map(|player| async move {
        let (mut ok, mut err, mut latencies) = (0u64, 0u64, Latencies::default());
        while Instant::now() < deadline {
            let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
            let began = Instant::now();
            match naive_bet(pool, player, house, n).await {
                Ok(()) => {
                    ok += 1;
                    latencies.push(began.elapsed());
                }
                Err(_) => err += 1,
            }
        }
        (ok, err, latencies)
    });
    let results = futures::future::join_all(workers).await;
    let elapsed = start.elapsed();
    let mut total = (0, 0, Latencies::default());
    for (ok, err, latencies) in results {
        total.0 += ok;
        total.1 += err;
        total.2.extend(latencies);
    }
    Ok((total.0, total.1, total.2, elapsed))
}

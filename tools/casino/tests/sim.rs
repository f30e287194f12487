//! `casino sim` against the three real services in this process (port 0, the testkit's PostgreSQL, the
//! embedded Kafka-protocol broker): it bets, wins and rolls back without a server error, its abusers get
//! refused, and every transfer of a connected player reached that player's socket exactly once.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use base64::Engine as _;
use casino::sim;
use casino::stack::{Credentials, GameProvider, ServiceUrls, StackInfo};
use casino_auth::{Role, extract::TokenVerifier, jwt::JwtSigner};
use casino_events::{
    Envelope,
    payloads::{TransferEvent, TransferKind, transaction_types},
    topics,
};
use casino_messaging::{KafkaConfig, Producer};
use casino_observability::lifecycle::{Lifecycle, ShutdownOutcome};
use casino_room_service::client::{Client, ClientOptions};
use casino_testkit::{kafka::TestKafka, postgres::TestDatabase, service_settings};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PROVIDER: &str = "sim-games";
const PROVIDER_SECRET: &str = "sim-games-secret";
const ADMIN_EMAIL: &str = "admin@casino.test";
const ADMIN_PASSWORD: &str = "staff secret 123";
const PSPS: [(&str, &str); 2] = [
    ("sandbox-a", "sandbox-a-secret"),
    ("sandbox-b", "sandbox-b-secret"),
];

type Running = tokio::task::JoinHandle<anyhow::Result<ShutdownOutcome>>;

/// Start an application built in this process; its addresses (as `casino up` describes them), its
/// lifecycle and the task running it.
macro_rules! start {
    ($app:expr, $log:expr) => {{
        let app = $app;
        let urls = ServiceUrls {
            public_url: format!("http://{}", app.public_addr()),
            admin_url: format!("http://{}", app.admin_addr()),
            log_file: $log.into(),
        };
        let lifecycle: Lifecycle = app.lifecycle().clone();
        let running: Running = tokio::spawn(app.run_until_stopped());
        (urls, lifecycle, running)
    }};
}

/// What `casino up` would write for these services.
fn stack_info(
    vault: ServiceUrls,
    concierge: ServiceUrls,
    room_service: ServiceUrls,
    brokers: &str,
    signing_key: &str,
) -> StackInfo {
    StackInfo {
        run_dir: std::env::temp_dir().join(format!("casino-sim-test-{}", std::process::id())),
        pid: std::process::id(),
        control_url: String::new(),
        vault,
        concierge,
        room_service,
        kafka_brokers: brokers.to_owned(),
        database_url: String::new(),
        prometheus_url: None,
        probe_metrics_url: None,
        game_provider: GameProvider {
            name: PROVIDER.into(),
            secret: PROVIDER_SECRET.into(),
        },
        psp_providers: PSPS.iter().map(|(name, _)| (*name).to_owned()).collect(),
        admin: Credentials {
            email: ADMIN_EMAIL.into(),
            password: ADMIN_PASSWORD.into(),
        },
        internal_token: "test-internal-token".into(),
        jwt_signing_key: signing_key.to_owned(),
        processes: Vec::new(),
        database_external: false,
    }
}

/// Room-Service's live consumer starts at the latest offsets: publish transfers for a probe player until
/// one reaches its socket, so none of the simulation's pushes can be lost to a late start.
async fn wait_until_live(room: &str, brokers: &str, signer: &JwtSigner) -> anyhow::Result<()> {
    let producer = Producer::new(
        &KafkaConfig::plaintext(brokers, "sim-test"),
        Duration::from_secs(10),
    )?;
    let probe = Uuid::now_v7();
    let mut client = Client::connect(
        room,
        ClientOptions::token(&signer.issue(probe, Role::Player).0),
    )
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let event = Envelope::new(
            transaction_types::WALLET_CREDITED,
            "vault",
            Some(probe),
            TransferEvent {
                transfer_id: Uuid::now_v7(),
                kind: TransferKind::Deposit,
                currency: "EUR".into(),
                amount: 100,
                delta: 100,
                balance_after: 100,
                amount_eur: "1.00".parse()?,
                provider: None,
                round_id: None,
                game_id: None,
                game_category: None,
                reference_transfer_id: None,
                round_closed: false,
            },
        );
        producer
            .send_envelope(topics::VAULT_TRANSACTIONS, &event)
            .await?;
        if client
            .wait_for("balance.updated", Duration::from_millis(500))
            .await
            .is_ok()
        {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "Room-Service's live consumer never started"
        );
    }
    client.close();
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// Every transfer of the player, as Vault lists them (all pages).
async fn transfers(http: &reqwest::Client, vault: &str, token: &str) -> anyhow::Result<Vec<Uuid>> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{vault}/api/v1/wallet/transfers?limit=200");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = http
            .get(url)
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        for item in page["items"].as_array().context("no items")? {
            ids.push(item["id"].as_str().context("no id")?.parse()?);
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(ids),
        }
    }
}

async fn get_json(http: &reqwest::Client, url: String, token: &str) -> anyhow::Result<Value> {
    Ok(http
        .get(url)
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulation_plays_abuses_and_every_transfer_reaches_its_socket_once() {
    let mut names: Vec<String> = topics::ALL.iter().map(|t| (*t).to_owned()).collect();
    names.extend(topics::ALL.iter().map(|t| topics::dlq(t)));
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let kafka = TestKafka::start(&names).unwrap();
    let brokers = kafka.bootstrap_servers().to_owned();
    // One signing key: Vault issues tokens with it, Concierge and Room-Service verify with its public half.
    let seed = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let signer = JwtSigner::from_seed_base64(&seed, Duration::from_secs(900)).unwrap();

    let vault_db = TestDatabase::create(&casino_vault::startup::MIGRATOR)
        .await
        .unwrap();
    let mut settings =
        casino_vault::config::Settings::with_common(service_settings(&vault_db.url, &brokers));
    settings.jwt_signing_key = Some(seed.clone());
    settings
        .game_providers
        .insert(PROVIDER.into(), PROVIDER_SECRET.into());
    settings.bootstrap_admin = Some((ADMIN_EMAIL.into(), ADMIN_PASSWORD.into()));
    for (name, secret) in PSPS {
        settings.psp_providers.insert(name.into(), secret.into());
    }
    let (vault, vault_lifecycle, vault_running) = start!(
        casino_vault::startup::Application::build(settings)
            .await
            .unwrap(),
        "vault.log"
    );

    let concierge_db = TestDatabase::create(&casino_concierge::startup::MIGRATOR)
        .await
        .unwrap();
    let mut settings = casino_concierge::config::Settings::new(
        service_settings(&concierge_db.url, &brokers),
        TokenVerifier::Local(signer.verifier()),
    );
    settings.vault_url = vault.public_url.clone();
    settings.vault_internal_url = vault.admin_url.clone();
    settings.vault_internal_token = Some("test-internal-token".into());
    let (concierge, concierge_lifecycle, concierge_running) = start!(
        casino_concierge::startup::Application::build(settings)
            .await
            .unwrap(),
        "concierge.log"
    );

    let room_db = TestDatabase::create(&casino_room_service::store::MIGRATOR)
        .await
        .unwrap();
    let settings = casino_room_service::config::Settings::for_tests(
        service_settings(&room_db.url, &brokers),
        TokenVerifier::Local(signer.verifier()),
    );
    let (room, room_lifecycle, room_running) = start!(
        casino_room_service::startup::Application::build(settings)
            .await
            .unwrap(),
        "room-service.log"
    );
    let stack = stack_info(vault, concierge, room, &brokers, &seed);

    // Checked before asserting, after the services stopped: a runtime dropped with them running hangs.
    let checked = tokio::time::timeout(
        Duration::from_secs(120),
        simulate_and_check(&stack, &brokers, &signer),
    )
    .await
    .unwrap_or_else(|_| {
        Err(anyhow::anyhow!(
            "the simulation did not finish within 120 s"
        ))
    });
    let mut stopped = Vec::new();
    for (name, lifecycle, running) in [
        ("room-service", room_lifecycle, room_running),
        ("concierge", concierge_lifecycle, concierge_running),
        ("vault", vault_lifecycle, vault_running),
    ] {
        lifecycle.request_shutdown();
        let outcome = running.await.map(|r| r.map(|o| o.exit_code()));
        stopped.push((name, format!("{outcome:?}")));
    }
    let _ = std::fs::remove_dir_all(&stack.run_dir);
    if let Err(error) = checked {
        panic!("{error:#}");
    }
    for (name, outcome) in stopped {
        assert_eq!(outcome, "Ok(Ok(0))", "{name} did not stop cleanly");
    }
}

async fn simulate_and_check(
    stack: &StackInfo,
    brokers: &str,
    signer: &JwtSigner,
) -> anyhow::Result<()> {
    let vault = stack.vault.public_url.as_str();
    wait_until_live(&stack.room_service.public_url, brokers, signer).await?;

    // The sandbox PSP `sandbox-b` fails every deposit: the players it should fund get a staff adjustment.
    let http = reqwest::Client::new();
    let admin: Value = http
        .post(format!("{vault}/api/v1/auth/login"))
        .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
        .send()
        .await?
        .json()
        .await?;
    let admin = admin["access_token"]
        .as_str()
        .context("admin login")?
        .to_owned();
    for currency in ["EUR", "USD", "GBP", "CAD", "JPY", "BTC"] {
        let configured = http
            .put(format!("{vault}/api/v1/admin/payments/sandbox"))
            .bearer_auth(&admin)
            .json(
                &json!({ "provider": "sandbox-b", "currency": currency, "direction": "deposit",
                           "failure_rate": 1.0, "latency_ms": 50 }),
            )
            .send()
            .await?;
        ensure!(configured.status().is_success(), "{configured:?}");
    }

    std::fs::create_dir_all(&stack.run_dir)?;
    let summary_path = stack.run_dir.join("summary.json");
    let args = sim::Args {
        players: 6,
        rate: 30.0,
        duration: 8,
        seed: 7,
        abusers: 0.34,
        connected: 0.5,
        settle: 15,
        summary_json: Some(summary_path.clone()),
        quiet: false,
    };
    let summary = sim::run(&args, stack, CancellationToken::new()).await?;
    eprintln!("{}", summary.render());

    ensure!(
        summary.server_errors == 0,
        "server errors: {:#?}",
        summary.requests
    );
    ensure!(
        (summary.players, summary.abusers, summary.connected) == (6, 2, 3),
        "players, abusers, connected: {} {} {}",
        summary.players,
        summary.abusers,
        summary.connected
    );
    ensure!(!summary.cancelled && summary.pushes_settled && summary.missing_pushes == 0);
    for operation in ["bet", "win", "rollback"] {
        ensure!(
            summary.count(operation, "ok") > 0,
            "no accepted {operation}: {:#?}",
            summary.requests
        );
    }
    ensure!(
        summary.count("bet", "bet_limit_exceeded") > 0,
        "abusers were never refused: {:#?}",
        summary.requests
    );
    ensure!(
        summary.count("adjustment", "ok") > 0,
        "failed deposits were not replaced by adjustments: {:#?}",
        summary.requests
    );
    ensure!(summary.events > 150, "{} events", summary.events);
    ensure!(summary.return_to_player.is_some_and(|rtp| rtp > 0.0));
    let written: sim::Summary = serde_json::from_slice(&std::fs::read(&summary_path)?)?;
    ensure!(written.connected_players == summary.connected_players);

    // Vault recorded the over-limit abuser's signals.
    let signals = get_json(
        &http,
        format!("{vault}/api/v1/admin/abuse-signals?signal=over_limit"),
        &admin,
    )
    .await?;
    ensure!(
        signals["signals"].as_array().is_some_and(|s| !s.is_empty()),
        "no over_limit signal: {signals}"
    );

    // Every transfer of a connected player was pushed to it exactly once, and nothing else was.
    // (Tokens minted with Vault's key stand in for logging in, which costs an argon2 hash each.)
    for player in &written.connected_players {
        let token = signer.issue(player.player_id, Role::Player).0;
        let listed: HashSet<Uuid> = transfers(&http, vault, &token).await?.into_iter().collect();
        let pushed: HashSet<Uuid> = player.balance_updates.iter().copied().collect();
        ensure!(
            pushed.len() == player.balance_updates.len(),
            "{}: a transfer was pushed twice",
            player.email
        );
        ensure!(!listed.is_empty(), "{} has no transfers", player.email);
        ensure!(
            pushed == listed,
            "{}: pushes and Vault's transfers differ: only pushed {:?}, only listed {:?}",
            player.email,
            pushed.difference(&listed).collect::<Vec<_>>(),
            listed.difference(&pushed).collect::<Vec<_>>()
        );
        ensure!(player.reconnects == 0, "{} reconnected", player.email);
        ensure!(
            player.known_transfers as usize == listed.len(),
            "{}: the run counted {} transfers, Vault lists {}",
            player.email,
            player.known_transfers,
            listed.len()
        );
    }

    // Ctrl-C: a second run with the same seed against the same database (the run nonce keeps emails and
    // ids apart) runs until cancelled, stops within its grace periods and still reports.
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(4)).await;
        stopper.cancel();
    });
    let started = tokio::time::Instant::now();
    let args = sim::Args {
        players: 3,
        duration: 0,
        connected: 0.34,
        summary_json: None,
        quiet: true,
        ..args
    };
    let summary = sim::run(&args, stack, cancel).await?;
    ensure!(summary.cancelled, "not cancelled");
    ensure!(
        started.elapsed() < Duration::from_secs(16),
        "took {:?} after Ctrl-C",
        started.elapsed()
    );
    ensure!(
        summary.count("register", "ok") == summary.total("register"),
        "registration collided with the first run: {:#?}",
        summary.requests
    );
    ensure!(
        summary.server_errors == 0,
        "server errors: {:#?}",
        summary.requests
    );
    Ok(())
}

#[tokio::test]
async fn an_unreachable_vault_is_a_clear_error() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = ServiceUrls {
        public_url: format!("http://127.0.0.1:{port}"),
        admin_url: format!("http://127.0.0.1:{port}"),
        log_file: "none.log".into(),
    };
    let stack = stack_info(nowhere.clone(), nowhere.clone(), nowhere, "127.0.0.1:9", "");
    let error = sim::run(&sim::Args::default(), &stack, CancellationToken::new())
        .await
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("cannot read the currencies from Vault")
            && message.contains(&port.to_string()),
        "{message}"
    );
}

//! `casino bench concierge`: Concierge's event processing against the raw read rate of the broker.
//!
//! One run, on topics and a database of its own (`bench-<id>.*`, `concierge_bench_<id>`):
//! 1. **publish** `--events` `bet.placed` events (keyed by one of `--players` players, random amounts and
//!    game categories) as fast as the broker takes them;
//! 2. **raw read**: a consumer that reads every message and discards it (same librdkafka settings as
//!    Concierge's consumer, fresh group): messages/s from its first message to its last;
//! 3. **Concierge backlog**: a Concierge (in this process) consumes the same backlog into PostgreSQL with
//!    `--batch-size` events per transaction: events/s from its first committed batch to its last, and the
//!    ratio to the raw rate (target: at least 70%);
//! 4. **lag recovery**: with Concierge caught up, a live burst of `--burst-events` events; lag at time t
//!    is t minus the publish time of the oldest event not yet committed; reported: the lag when the
//!    burst ends, its maximum, from when on it stays under 5 s (target: within 30 s) and when it is 0;
//! 5. **check**: every event is recorded exactly once and the verifier finds no discrepancy.
//!
//! Without `--brokers` it starts the embedded Kafka-protocol broker; without `--database-url` a throwaway
//! PostgreSQL with production durability (fsync on). With `--database-url` (any database on the server,
//! used only to connect), a database `concierge_bench_<id>` is created and dropped afterwards unless
//! `--keep-database`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use casino_auth::{extract::TokenVerifier, jwt::JwtSigner};
use casino_concierge::{
    config::Settings,
    db::RulesCache,
    processor::ConsumerStats,
    startup::{Application, MIGRATOR},
    verifier,
};
use casino_events::{
    Envelope,
    payloads::{TransferEvent, TransferKind, transaction_types},
};
use casino_messaging::{KafkaConfig, Producer};
use rdkafka::{
    ClientConfig, Message as _,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{Consumer as _, StreamConsumer},
};
use rust_decimal::Decimal;
use sqlx::{Connection as _, Executor as _, PgConnection};
use uuid::Uuid;

/// Arguments of `casino bench concierge`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Kafka bootstrap servers. Without it, the embedded Kafka-protocol broker is started here.
    #[arg(long)]
    pub brokers: Option<String>,
    /// A PostgreSQL URL on the server to use (a fresh database is created next to it). Without it, a
    /// throwaway server with production durability is started here.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Bet events of the backlog phase.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Bet events of the live burst (lag recovery). Default: as many as --events.
    #[arg(long)]
    pub burst_events: Option<usize>,
    /// Distinct players the events are spread over.
    #[arg(long, default_value_t = 10_000)]
    pub players: usize,
    /// Partitions of the bench topic.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// Events per Concierge database transaction (CONCIERGE_CONSUMER_BATCH_SIZE).
    #[arg(long, default_value_t = 5000)]
    pub batch_size: usize,
    /// Database transactions one batch may use at once (CONCIERGE_CONSUMER_PARALLELISM).
    #[arg(long, default_value_t = 2)]
    pub parallelism: usize,
    /// Keep the bench database afterwards (with --database-url).
    #[arg(long)]
    pub keep_database: bool,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Events published in the backlog phase per second.
    pub publish_rate: f64,
    /// Raw read-and-discard messages per second.
    pub raw_rate: f64,
    /// Concierge events per second into PostgreSQL.
    pub concierge_rate: f64,
    /// Concierge batches in the backlog phase.
    pub batches: u64,
    /// Seconds the live burst took to publish.
    pub burst_publish_seconds: f64,
    /// Lag when the burst finished publishing, seconds.
    pub lag_at_burst_end: f64,
    /// Seconds after the burst from which the lag stayed under 5 s.
    pub under_5s_after: Option<f64>,
    /// Seconds after the burst until every event was processed.
    pub drained_after: Option<f64>,
}

/// Run the benchmark and print the report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let burst = args.burst_events.unwrap_or(args.events);
    let id = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let topic = format!("bench-{id}.vault.transactions.v1");
    let players_topic = format!("bench-{id}.vault.players.v1");
    let rewards_topic = format!("bench-{id}.concierge.rewards.v1");

    // Broker and database.
    let embedded_kafka = match &args.brokers {
        Some(_) => None,
        None => Some(casino_testkit::kafka::TestKafka::start(&[])?),
    };
    let brokers = args
        .brokers
        .clone()
        .or_else(|| {
            embedded_kafka
                .as_ref()
                .map(|k| k.bootstrap_servers().to_owned())
        })
        .context("no broker")?;
    for name in [
        topic.clone(),
        format!("{topic}.dlq"),
        players_topic.clone(),
        format!("{players_topic}.dlq"),
        rewards_topic.clone(),
    ] {
        match &embedded_kafka {
            Some(kafka) => kafka.create_topic(&name, args.partitions)?,
            None => create_topic(&brokers, &name, args.partitions).await?,
        }
    }
    let database = BenchDatabase::create(args.database_url.as_deref(), &id).await?;

    println!(
        "casino bench concierge: {} backlog events + {} burst events, {} players, {} partitions, batch {}, parallelism {}",
        args.events, burst, args.players, args.partitions, args.batch_size, args.parallelism
    );
    println!("  machine: {}", machine());
    println!(
        "  broker: {}, database: {}",
        if embedded_kafka.is_some() {
            "embedded (librdkafka mock cluster over TCP)".to_owned()
        } else {
            brokers.clone()
        },
        if args.database_url.is_some() {
            "given server".to_owned()
        } else {
            "throwaway server, fsync on".to_owned()
        }
    );

    let producer = Producer::new(
        &KafkaConfig::plaintext(&brokers, "bench-concierge"),
        Duration::from_secs(60),
    )?;
    let mut events = EventSource::new(args.players.max(1), 0x5EED_C0C1E);
    let mut report = Report::default();

    // 1. Backlog.
    let started = Instant::now();
    publish(&producer, &topic, &mut events, args.events, None).await?;
    report.publish_rate = args.events as f64 / started.elapsed().as_secs_f64();
    println!(
        "  1. published {} events in {:.2} s ({:.0}/s)",
        args.events,
        started.elapsed().as_secs_f64(),
        report.publish_rate
    );

    // 2. Raw read-and-discard.
    let (raw_count, raw_elapsed) = raw_read(&brokers, &topic, args.events).await?;
    report.raw_rate = raw_count as f64 / raw_elapsed.as_secs_f64();
    println!(
        "  2. raw read-and-discard: {raw_count} messages in {:.2} s ({:.0}/s)",
        raw_elapsed.as_secs_f64(),
        report.raw_rate
    );

    // 3. Concierge on the backlog.
    let mut settings = Settings::new(
        casino_testkit::service_settings(&database.url, &brokers),
        TokenVerifier::Local(JwtSigner::generate(Duration::from_secs(60)).verifier()),
    );
    settings.common.database_max_connections = 10;
    settings.consumer.group_id = format!("bench-{id}-concierge");
    settings.consumer.transactions_topic = topic.clone();
    settings.consumer.players_topic = players_topic.clone();
    settings.consumer.rewards_topic = rewards_topic.clone();
    settings.consumer.max_batch = args.batch_size;
    settings.consumer.parallelism = args.parallelism;
    // The verifier runs at the end, on demand.
    settings.background.verify_interval = Duration::from_secs(3600);
    let app = Application::build(settings).await?;
    let stats = app.stats();
    let lifecycle = app.lifecycle().clone();
    let running = tokio::spawn(app.run_until_stopped());
    let (first, last) = wait_for(&stats, args.events as u64, Duration::from_secs(600)).await?;
    let elapsed = last - first;
    report.batches = stats.batches.load(Ordering::Relaxed);
    report.concierge_rate = args.events as f64 / elapsed.as_secs_f64().max(1e-9);
    println!(
        "  3. concierge: {} events into PostgreSQL in {:.2} s ({:.0}/s, {} batches, {:.0} events/batch), {:.0}% of the raw rate",
        args.events,
        elapsed.as_secs_f64(),
        report.concierge_rate,
        report.batches,
        args.events as f64 / report.batches.max(1) as f64,
        100.0 * report.concierge_rate / report.raw_rate
    );

    // 4. Live burst and lag recovery.
    let mut published_at = Vec::with_capacity(burst);
    let base = stats.messages.load(Ordering::Relaxed);
    let burst_started = Instant::now();
    publish(
        &producer,
        &topic,
        &mut events,
        burst,
        Some(&mut published_at),
    )
    .await?;
    let burst_end = Instant::now();
    report.burst_publish_seconds = (burst_end - burst_started).as_secs_f64();
    let lag_now = |processed: u64, now: Instant| -> f64 {
        let done = processed.saturating_sub(base) as usize;
        match published_at.get(done) {
            Some(at) => now.saturating_duration_since(*at).as_secs_f64(),
            None => 0.0,
        }
    };
    report.lag_at_burst_end = lag_now(stats.messages.load(Ordering::Relaxed), burst_end);
    let deadline = burst_end + Duration::from_secs(600);
    let mut samples = Vec::new();
    loop {
        let now = Instant::now();
        let processed = stats.messages.load(Ordering::Relaxed);
        let lag = lag_now(processed, now);
        let since = (now - burst_end).as_secs_f64();
        samples.push((since, lag));
        if processed >= base + burst as u64 {
            report.drained_after = Some(since);
            break;
        }
        if now > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // From when on the lag stayed under 5 s (it may grow after the burst before it shrinks).
    report.under_5s_after = match samples.iter().rposition(|(_, lag)| *lag >= 5.0) {
        None => Some(0.0),
        Some(last) => samples
            .get(last + 1)
            .map(|(since, _)| *since)
            .or(report.drained_after),
    };
    println!(
        "  4. burst of {burst} events published in {:.2} s; lag at its end {:.1} s, max {:.1} s; under 5 s for good after {}; drained after {}",
        report.burst_publish_seconds,
        report.lag_at_burst_end,
        samples.iter().map(|(_, lag)| *lag).fold(0.0, f64::max),
        report
            .under_5s_after
            .map(|s| format!("{s:.1} s"))
            .unwrap_or_else(|| "never".into()),
        report
            .drained_after
            .map(|s| format!("{s:.1} s"))
            .unwrap_or_else(|| "never".into()),
    );
    let mut line = String::from("     lag after the burst (s after end: lag s):");
    for (since, lag) in samples.iter().step_by((samples.len() / 12).max(1)) {
        line.push_str(&format!(" {since:.1}:{lag:.1}"));
    }
    println!("{line}");

    // 5. Exactly once, and the awards verify.
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
        .fetch_one(&database.pool)
        .await?;
    let awards: i64 = sqlx::query_scalar("SELECT count(*) FROM awards")
        .fetch_one(&database.pool)
        .await?;
    let verify = verifier::run_once(&database.pool, &RulesCache::default()).await?;
    println!(
        "  5. processed events recorded: {recorded} (expected {}), awards: {awards}, verifier: {} awards and {} players checked, {} discrepancies",
        args.events + burst,
        verify.awards_checked,
        verify.players_checked,
        verify.discrepancies
    );

    lifecycle.request_shutdown();
    running.await??;
    let ratio = report.concierge_rate / report.raw_rate;
    println!();
    println!(
        "result: concierge {:.0} events/s = {:.0}% of raw {:.0}/s (target >= 70%: {}); lag under 5 s {} after the burst (target <= 30 s: {})",
        report.concierge_rate,
        ratio * 100.0,
        report.raw_rate,
        if ratio >= 0.7 { "met" } else { "NOT met" },
        report
            .under_5s_after
            .map(|s| format!("{s:.1} s"))
            .unwrap_or_else(|| "never".into()),
        if report.under_5s_after.is_some_and(|s| s <= 30.0) {
            "met"
        } else {
            "NOT met"
        },
    );
    if recorded as usize != args.events + burst || verify.discrepancies > 0 {
        anyhow::bail!("concierge did not record every event exactly once, or awards do not verify");
    }
    database.finish(args.keep_database).await;
    drop(embedded_kafka);
    Ok(())
}

/// Wait until `stats` counts `count` messages; returns (first committed batch, last) instants.
async fn wait_for(
    stats: &Arc<ConsumerStats>,
    count: u64,
    limit: Duration,
) -> anyhow::Result<(Instant, Instant)> {
    let deadline = Instant::now() + limit;
    let mut first = None;
    loop {
        let done = stats.messages.load(Ordering::Relaxed);
        if done > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if done >= count {
            let first = first.unwrap_or_else(Instant::now);
            return Ok((first, Instant::now()));
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "concierge processed only {done} of {count} events"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Publish `count` bet events; records each event's publish time in `times` if given.
async fn publish(
    producer: &Producer,
    topic: &str,
    events: &mut EventSource,
    count: usize,
    mut times: Option<&mut Vec<Instant>>,
) -> anyhow::Result<()> {
    const IN_FLIGHT: usize = 20_000;
    let mut sent = 0;
    while sent < count {
        let n = IN_FLIGHT.min(count - sent);
        let batch: Vec<(String, Vec<u8>)> = (0..n).map(|_| events.next_bet()).collect();
        let sends = batch.iter().map(|(key, payload)| {
            if let Some(times) = times.as_deref_mut() {
                times.push(Instant::now());
            }
            producer.send(topic, key, payload, &[])
        });
        for result in futures::future::join_all(sends).await {
            result?;
        }
        sent += n;
    }
    Ok(())
}

/// Read `count` messages of `topic` with a fresh group and discard them.
async fn raw_read(brokers: &str, topic: &str, count: usize) -> anyhow::Result<(usize, Duration)> {
    let consumer: StreamConsumer = KafkaConfig::plaintext(brokers, "bench-raw-reader")
        .client_config()
        .set("group.id", format!("bench-raw-{}", Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()
        .context("creating the raw consumer")?;
    consumer.subscribe(&[topic])?;
    let mut read = 0usize;
    let mut bytes = 0usize;
    let mut first = None;
    while read < count {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .context("the raw consumer got nothing for 60 s")??;
        first.get_or_insert_with(Instant::now);
        bytes += message.payload().map_or(0, <[u8]>::len);
        read += 1;
    }
    std::hint::black_box(bytes);
    Ok((read, first.map(|f| f.elapsed()).unwrap_or_default()))
}

async fn create_topic(brokers: &str, name: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("creating a Kafka admin client")?;
    let results = admin
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?;
    for result in results {
        if let Err((topic, code)) = result {
            anyhow::ensure!(
                code == rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
                "creating topic {topic}: {code}"
            );
        }
    }
    Ok(())
}

/// The bench database: a fresh one on the given server, or a throwaway server's.
struct BenchDatabase {
    url: String,
    pool: sqlx::PgPool,
    created: Option<(String, String)>,
    _throwaway: Option<casino_testkit::postgres::TestDatabase>,
}

impl BenchDatabase {
    async fn create(server_url: Option<&str>, id: &str) -> anyhow::Result<Self> {
        match server_url {
            None => {
                casino_testkit::postgres::use_durable_server();
                let db = casino_testkit::postgres::TestDatabase::create(&MIGRATOR).await?;
                Ok(Self {
                    url: db.url.clone(),
                    pool: db.pool.clone(),
                    created: None,
                    _throwaway: Some(db),
                })
            }
            Some(server_url) => {
                let name = format!("concierge_bench_{id}");
                let mut admin = PgConnection::connect(server_url)
                    .await
                    .context("connecting to --database-url")?;
                admin
                    .execute(format!("CREATE DATABASE \"{name}\"").as_str())
                    .await
                    .with_context(|| format!("creating database {name}"))?;
                let _ = admin.close().await;
                let (base, query) = match server_url.split_once('?') {
                    Some((base, query)) => (base, format!("?{query}")),
                    None => (server_url, String::new()),
                };
                let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
                let url = format!("{base}/{name}{query}");
                let pool = sqlx::PgPool::connect(&url).await?;
                Ok(Self {
                    url,
                    pool,
                    created: Some((server_url.to_owned(), name)),
                    _throwaway: None,
                })
            }
        }
    }

    async fn finish(self, keep: bool) {
        self.pool.close().await;
        if let (Some((server_url, name)), false) = (self.created, keep)
            && let Ok(mut admin) = PgConnection::connect(&server_url).await
        {
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                .await;
        }
    }
}

/// Bet events with deterministic pseudo-random players, amounts and categories.
struct EventSource {
    players: Vec<Uuid>,
    state: u64,
}

impl EventSource {
    fn new(players: usize, seed: u64) -> Self {
        let mut source = Self {
            players: Vec::with_capacity(players),
            state: seed,
        };
        for _ in 0..players {
            let id = Uuid::from_u64_pair(source.next(), source.next());
            source.players.push(id);
        }
        source
    }

    /// xorshift64*.
    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn next_bet(&mut self) -> (String, Vec<u8>) {
        const CATEGORIES: [Option<&str>; 4] = [Some("slots"), Some("table"), Some("live"), None];
        let pick = (self.next() % self.players.len() as u64) as usize;
        let player = self.players[pick];
        let cents = (self.next() % 50_000 + 10) as i64;
        let category = CATEGORIES[(self.next() % CATEGORIES.len() as u64) as usize];
        let data = TransferEvent {
            transfer_id: Uuid::now_v7(),
            kind: TransferKind::Bet,
            currency: "EUR".into(),
            amount: cents,
            delta: -cents,
            balance_after: 0,
            amount_eur: Decimal::new(cents, 2),
            provider: Some("bench".into()),
            round_id: Some(Uuid::now_v7().to_string()),
            game_id: Some("bench-game".into()),
            game_category: category.map(str::to_owned),
            reference_transfer_id: None,
            round_closed: false,
        };
        let event = Envelope::new(transaction_types::BET_PLACED, "vault", Some(player), data);
        (event.key(), event.to_vec())
    }
}

/// CPU model and count, for the record.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} x {model}")
}

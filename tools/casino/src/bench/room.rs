//! `casino bench room`: many concurrent sockets on Room-Service, and the same scenario against a
//! reference Node server using the official `socket.io` 4.8 package, in one run.
//!
//! The scenario, per server:
//! 1. **connect** `--sockets` sockets (WebSocket, `auth: {token}` with one player token each) with
//!    `--connect-concurrency` handshakes in flight: connect rate;
//! 2. **join** every socket to one chat room (`chat.join`), then read the server's resident memory:
//!    memory per connection = (RSS after − RSS before) / sockets;
//! 3. **latency**: `--messages` chat messages, one at a time, each fanned out to every socket in the
//!    room; the latency of a delivery is its arrival time minus the sender's `chat.send` time (one clock:
//!    every socket lives in this process): p50 / p99 / max;
//! 4. **throughput**: `--burst` messages sent at once by as many players; deliveries per second until
//!    every socket got every message.
//!
//! On Room-Service a message goes through Postgres (stored, rate-limited, de-duplicated) and Kafka
//! (`room.chat.v1`) before the fan-out; the Node reference broadcasts in-process and stores nothing.
//!
//! Without `--url`, the bench starts its own PostgreSQL and embedded Kafka broker and runs the
//! `casino-room-service` binary (next to this executable, or `--server-bin`) as a child process with a
//! fresh signing key, so its memory is measured alone. With `--url`, pass the server's signing seed
//! (`--signing-key`, the value of `ROOM_SERVICE_JWT_SIGNING_KEY`) and `--admin-url` for its RSS.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use casino_auth::{Role, jwt::JwtSigner};
use casino_room_service::client::{Client, ClientOptions, EventSink};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use uuid::Uuid;

/// Arguments of `casino bench room`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Room-Service public URL. Without it, a Room-Service (with its own PostgreSQL and broker) is started.
    #[arg(long)]
    pub url: Option<String>,
    /// Room-Service admin URL, to read its RSS from /metrics (with --url).
    #[arg(long)]
    pub admin_url: Option<String>,
    /// Read the server's RSS from /proc/PID instead (with --url, same machine).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The server's token seed (base64 Ed25519, ROOM_SERVICE_JWT_SIGNING_KEY), to mint tokens (with --url).
    #[arg(long, env = "ROOM_SERVICE_JWT_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
    /// The casino-room-service binary to start (without --url). Default: next to this executable.
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Concurrent sockets.
    #[arg(long, default_value_t = 10_000)]
    pub sockets: usize,
    /// Handshakes in flight while connecting.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Messages of the latency phase (one at a time, each to every socket).
    #[arg(long, default_value_t = 20)]
    pub messages: usize,
    /// Messages of the throughput phase (all at once, each to every socket).
    #[arg(long, default_value_t = 20)]
    pub burst: usize,
    /// Chat room used.
    #[arg(long, default_value = "game:bench")]
    pub room: String,
    /// Skip the reference Node socket.io server.
    #[arg(long)]
    pub skip_node: bool,
    /// Directory with the reference server (bench-server.mjs and its package.json).
    #[arg(long)]
    pub node_dir: Option<PathBuf>,
}

/// What one scenario measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Server name.
    pub name: String,
    /// Sockets connected (and joined).
    pub connected: usize,
    /// Failed handshakes.
    pub connect_failures: usize,
    /// Time to connect them all.
    pub connect_time: Duration,
    /// Server RSS before connecting.
    pub rss_before: Option<u64>,
    /// Server RSS with every socket connected and joined.
    pub rss_after: Option<u64>,
    /// Latency phase: per-delivery latencies.
    pub latencies: Vec<Duration>,
    /// Latency phase: deliveries expected and received.
    pub latency_deliveries: (u64, u64),
    /// Latency phase, per message: the first socket's latency (the server's pipeline).
    pub first_delivery: Vec<Duration>,
    /// Latency phase, per message: the last socket's latency (pipeline plus the whole fan-out).
    pub last_delivery: Vec<Duration>,
    /// Throughput phase: deliveries received, and how long it took.
    pub burst_deliveries: (u64, u64),
    /// Throughput phase duration (first send to last delivery).
    pub burst_time: Duration,
}

impl Report {
    fn connect_rate(&self) -> f64 {
        self.connected as f64 / self.connect_time.as_secs_f64().max(1e-9)
    }
    fn bytes_per_connection(&self) -> Option<f64> {
        let (before, after) = (self.rss_before?, self.rss_after?);
        (self.connected > 0).then(|| after.saturating_sub(before) as f64 / self.connected as f64)
    }
    fn quantile(&self, q: f64) -> Duration {
        quantile(&self.latencies, q)
    }
    fn throughput(&self) -> f64 {
        self.burst_deliveries.1 as f64 / self.burst_time.as_secs_f64().max(1e-9)
    }
}

/// Nearest-rank quantile of sorted-or-not durations.
pub fn quantile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Run the benchmark and print the report.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    {
        let server = RoomServer::start(&args).await?;
        println!(
            "casino bench room: {} sockets ({} handshakes in flight), {} latency messages, burst of {}, room {}",
            args.sockets, args.connect_concurrency, args.messages, args.burst, args.room
        );
        println!("room-service at {}", server.url);
        reports.push(server.scenario("room-service", &args).await?);
        server.stop().await;
    }
    if !args.skip_node {
        let node = NodeServer::start(&args).await?;
        println!("node socket.io reference at {}", node.url);
        reports.push(node.scenario("node socket.io 4.8", &args).await?);
        node.stop().await;
    }
    print_reports(&reports);
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), |b| {
        format!("{:.1} MiB", b as f64 / 1_048_576.0)
    })
}

/// Print the table and the comparison with the targets.
pub fn print_reports(reports: &[Report]) {
    println!();
    let mut rows: Vec<(String, Vec<String>)> = vec![
        ("sockets connected (failed)".into(), vec![]),
        ("connect time / rate".into(), vec![]),
        ("server RSS before / after".into(), vec![]),
        ("memory per connection".into(), vec![]),
        ("latency p50 / p99 / max".into(), vec![]),
        ("first socket p50 / max".into(), vec![]),
        ("last socket p50 / max".into(), vec![]),
        ("latency deliveries".into(), vec![]),
        ("fan-out throughput".into(), vec![]),
    ];
    let width = 46;
    for r in reports {
        rows[0]
            .1
            .push(format!("{} ({})", r.connected, r.connect_failures));
        rows[1].1.push(format!(
            "{:.2} s / {:.0} per s",
            r.connect_time.as_secs_f64(),
            r.connect_rate()
        ));
        rows[2]
            .1
            .push(format!("{} / {}", mib(r.rss_before), mib(r.rss_after)));
        rows[3].1.push(
            r.bytes_per_connection()
                .map_or("n/a".into(), |b| format!("{:.1} KiB", b / 1024.0)),
        );
        rows[4].1.push(format!(
            "{} / {} / {}",
            ms(r.quantile(0.5)),
            ms(r.quantile(0.99)),
            ms(r.quantile(1.0))
        ));
        rows[5].1.push(format!(
            "{} / {}",
            ms(quantile(&r.first_delivery, 0.5)),
            ms(quantile(&r.first_delivery, 1.0))
        ));
        rows[6].1.push(format!(
            "{} / {}",
            ms(quantile(&r.last_delivery, 0.5)),
            ms(quantile(&r.last_delivery, 1.0))
        ));
        rows[7].1.push(format!(
            "{} of {}",
            r.latency_deliveries.1, r.latency_deliveries.0
        ));
        rows[8].1.push(format!(
            "{:.0} msg/s ({} of {} in {})",
            r.throughput(),
            r.burst_deliveries.1,
            r.burst_deliveries.0,
            ms(r.burst_time)
        ));
    }
    print!("{:<30}", "");
    for r in reports {
        print!("{:<width$}", r.name);
    }
    println!();
    for (label, cells) in rows {
        print!("{label:<30}");
        for cell in cells {
            print!("{cell:<width$}");
        }
        println!();
    }
    if let [rust, node] = reports {
        println!();
        println!(
            "throughput vs node: {:.2}x (target >= 3x)",
            rust.throughput() / node.throughput().max(1e-9)
        );
        if let (Some(a), Some(b)) = (rust.bytes_per_connection(), node.bytes_per_connection()) {
            println!(
                "memory per connection vs node: {:.2}x (target <= 0.33x)",
                a / b.max(1e-9)
            );
        }
        println!(
            "room-service p99 delivery latency: {} (target < 50 ms)",
            ms(rust.quantile(0.99))
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// The scenario.

/// Where a server's resident memory comes from.
pub enum RssSource {
    /// `/proc/<pid>/status`.
    Pid(u32),
    /// `process_resident_memory_bytes` on an admin `/metrics`.
    Metrics(String),
    /// Unknown.
    None,
}

impl RssSource {
    async fn read(&self) -> Option<u64> {
        match self {
            RssSource::Pid(pid) => {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
                let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kib * 1024)
            }
            RssSource::Metrics(admin) => {
                let text = reqwest::get(format!("{}/metrics", admin.trim_end_matches('/')))
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()?;
                let line = text
                    .lines()
                    .find(|l| l.starts_with("process_resident_memory_bytes"))?;
                line.rsplit(' ')
                    .next()?
                    .parse::<f64>()
                    .ok()
                    .map(|v| v as u64)
            }
            RssSource::None => None,
        }
    }
}

/// Deliveries per message sequence number, with the send instants.
struct Tracker {
    sent: Vec<OnceLock<Instant>>,
    received: Vec<AtomicU32>,
    /// Per message: first and last delivery, microseconds after the send.
    first: Vec<AtomicU64>,
    last: Vec<AtomicU64>,
    latencies: Mutex<Vec<Duration>>,
    total: AtomicU64,
}

impl Tracker {
    fn new(messages: usize) -> Self {
        Self {
            sent: (0..messages).map(|_| OnceLock::new()).collect(),
            received: (0..messages).map(|_| AtomicU32::new(0)).collect(),
            first: (0..messages).map(|_| AtomicU64::new(u64::MAX)).collect(),
            last: (0..messages).map(|_| AtomicU64::new(0)).collect(),
            latencies: Mutex::new(Vec::new()),
            total: AtomicU64::new(0),
        }
    }

    /// A `chat.message` event's JSON array text arrived.
    fn on_event(&self, text: &str, now: Instant) {
        if !text.starts_with("[\"chat.message\"") {
            return;
        }
        let Some(at) = text.find("\"text\":\"bench ") else {
            return;
        };
        let digits: String = text[at + 14..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let Ok(seq) = digits.parse::<usize>() else {
            return;
        };
        let (Some(sent), Some(received)) = (self.sent.get(seq), self.received.get(seq)) else {
            return;
        };
        received.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Some(sent) = sent.get() {
            let latency = now.saturating_duration_since(*sent);
            let micros = latency.as_micros() as u64;
            self.first[seq].fetch_min(micros, Ordering::Relaxed);
            self.last[seq].fetch_max(micros, Ordering::Relaxed);
            if let Ok(mut latencies) = self.latencies.lock() {
                latencies.push(latency);
            }
        }
    }

    fn received(&self, seqs: std::ops::Range<usize>) -> u64 {
        seqs.map(|s| u64::from(self.received[s].load(Ordering::Relaxed)))
            .sum()
    }
}

async fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    done()
}

/// Run the scenario against one server.
pub async fn scenario(
    name: &str,
    url: &str,
    signer: &JwtSigner,
    rss: &RssSource,
    args: &Args,
) -> anyhow::Result<Report> {
    let total_messages = args.messages + args.burst;
    let tracker = Arc::new(Tracker::new(total_messages));
    let mut report = Report {
        name: name.to_owned(),
        ..Report::default()
    };
    warm_up(url, signer, &args.room).await?;
    report.rss_before = rss.read().await;

    // 1. connect
    println!("[{name}] connecting {} sockets", args.sockets);
    let started = Instant::now();
    let sink_tracker = tracker.clone();
    let sink: EventSink = Arc::new(move |text: &str| sink_tracker.on_event(text, Instant::now()));
    let results: Vec<Result<Client, String>> = futures::stream::iter(0..args.sockets)
        .map(|_| {
            let token = signer.issue(Uuid::now_v7(), Role::Player).0;
            let mut options = ClientOptions::token(&token);
            options.sink = Some(sink.clone());
            options.timeout = Duration::from_secs(30);
            async move {
                Client::connect(url, options)
                    .await
                    .map_err(|e| e.to_string())
            }
        })
        .buffer_unordered(args.connect_concurrency.max(1))
        .collect()
        .await;
    report.connect_time = started.elapsed();
    let mut errors: HashMap<String, usize> = HashMap::new();
    let mut clients = Vec::with_capacity(args.sockets);
    for result in results {
        match result {
            Ok(client) => clients.push(client),
            Err(error) => *errors.entry(error).or_default() += 1,
        }
    }
    report.connected = clients.len();
    report.connect_failures = args.sockets - clients.len();
    if !errors.is_empty() {
        println!("[{name}] connect failures: {errors:?}");
    }

    // 2. join, then memory
    let join = json!({ "room": args.room });
    let joined: Vec<bool> = futures::stream::iter(clients.iter())
        .map(|client| {
            let join = join.clone();
            async move {
                client
                    .emit_with_ack("chat.join", &join, Duration::from_secs(30))
                    .await
                    .is_ok_and(|ack| ack["ok"] == true)
            }
        })
        .buffer_unordered(args.connect_concurrency.max(1))
        .collect()
        .await;
    let in_room = joined.iter().filter(|ok| **ok).count();
    println!(
        "[{name}] {} connected in {:.2} s, {in_room} joined {}",
        report.connected,
        report.connect_time.as_secs_f64(),
        args.room
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    report.rss_after = rss.read().await;
    if clients.len() < args.messages + args.burst {
        bail!(
            "[{name}] only {} sockets: not enough senders",
            clients.len()
        );
    }
    let expected = in_room as u64;

    // 3. latency: one message at a time
    let send = |seq: usize| {
        let client = &clients[seq];
        let tracker = tracker.clone();
        let room = args.room.clone();
        async move {
            let _ = tracker.sent[seq].set(Instant::now());
            let ack = client
                .emit_with_ack(
                    "chat.send",
                    &json!({ "room": room, "text": format!("bench {seq}"), "client_msg_id": format!("bench-{seq}-{}", Uuid::now_v7()) }),
                    Duration::from_secs(30),
                )
                .await;
            match ack {
                Ok(ack) if ack["ok"] == true => None,
                Ok(ack) => Some(format!("refused: {ack}")),
                Err(error) => Some(error.to_string()),
            }
        }
    };
    for seq in 0..args.messages {
        if let Some(error) = send(seq).await {
            println!("[{name}] message {seq} failed: {error}");
            continue;
        }
        let tracker = tracker.clone();
        if !wait_until(Duration::from_secs(20), || {
            u64::from(tracker.received[seq].load(Ordering::Relaxed)) >= expected
        })
        .await
        {
            println!(
                "[{name}] message {seq}: only {} of {expected} delivered",
                tracker.received(seq..seq + 1)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    report.latencies = tracker
        .latencies
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    for seq in 0..args.messages {
        let (first, last) = (
            tracker.first[seq].load(Ordering::Relaxed),
            tracker.last[seq].load(Ordering::Relaxed),
        );
        if first != u64::MAX {
            report.first_delivery.push(Duration::from_micros(first));
            report.last_delivery.push(Duration::from_micros(last));
        }
    }
    report.latency_deliveries = (
        expected * args.messages as u64,
        tracker.received(0..args.messages),
    );

    // 4. throughput: a burst from distinct senders
    let burst = args.messages..total_messages;
    let started = Instant::now();
    let failures: Vec<Option<String>> = futures::future::join_all(burst.clone().map(send)).await;
    for failure in failures.into_iter().flatten() {
        println!("[{name}] burst message failed: {failure}");
    }
    let target = expected * args.burst as u64;
    let range = burst.clone();
    let complete = wait_until(Duration::from_secs(60), || {
        tracker.received(range.clone()) >= target
    })
    .await;
    report.burst_time = started.elapsed();
    report.burst_deliveries = (target, tracker.received(burst));
    if !complete {
        println!("[{name}] burst incomplete after 60 s");
    }
    for client in clients {
        client.close();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(report)
}

/// Until the server delivers a chat message back (Room-Service's live consumer starts at the latest
/// offsets: a message sent before it has its partitions would not come back).
async fn warm_up(url: &str, signer: &JwtSigner, room: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_error = anyhow::anyhow!("no attempt");
    while Instant::now() < deadline {
        match echo(url, signer, room).await {
            Ok(()) => return Ok(()),
            Err(error) => last_error = error,
        }
    }
    Err(last_error.context("the server never delivered a chat message back within 60 s"))
}

/// Connect, join, send one message, wait until it comes back.
async fn echo(url: &str, signer: &JwtSigner, room: &str) -> anyhow::Result<()> {
    let token = signer.issue(Uuid::now_v7(), Role::Player).0;
    let mut client = Client::connect(url, ClientOptions::token(&token))
        .await
        .context("connecting the warm-up socket")?;
    let wait = Duration::from_secs(5);
    client
        .emit_with_ack("chat.join", &json!({ "room": room }), wait)
        .await
        .context("chat.join")?;
    let id = format!("warmup-{}", Uuid::now_v7());
    client
        .emit_with_ack(
            "chat.send",
            &json!({ "room": room, "text": "warm-up", "client_msg_id": id }),
            wait,
        )
        .await
        .context("chat.send")?;
    let came_back = async {
        loop {
            let args = client
                .wait_for("chat.message", Duration::from_secs(2))
                .await?;
            if args.first().and_then(|m| m["client_msg_id"].as_str()) == Some(id.as_str()) {
                return Ok::<_, anyhow::Error>(());
            }
        }
    }
    .await;
    client.close();
    came_back
}

// ---------------------------------------------------------------------------------------------------
// Servers.

/// Room-Service under test: given (`--url`) or started here.
pub struct RoomServer {
    url: String,
    signer: JwtSigner,
    admin_url: Option<String>,
    pid: Option<u32>,
    child: Option<tokio::process::Child>,
    _db: Option<casino_testkit::postgres::TestDatabase>,
    _kafka: Option<casino_testkit::kafka::TestKafka>,
}

impl RoomServer {
    /// Use `--url` or start one.
    pub async fn start(args: &Args) -> anyhow::Result<Self> {
        if let Some(url) = &args.url {
            let seed = args
                .signing_key
                .as_deref()
                .context("--signing-key (or ROOM_SERVICE_JWT_SIGNING_KEY) is needed with --url")?;
            return Ok(Self {
                url: url.trim_end_matches('/').to_owned(),
                signer: JwtSigner::from_seed_base64(seed, Duration::from_secs(3600))?,
                admin_url: args.admin_url.clone(),
                pid: args.server_pid,
                child: None,
                _db: None,
                _kafka: None,
            });
        }
        let binary = match &args.server_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe()?.with_file_name("casino-room-service"),
        };
        if !binary.exists() {
            bail!(
                "{} not found: build it (cargo build --release -p casino-room-service) or pass --server-bin",
                binary.display()
            );
        }
        let db =
            casino_testkit::postgres::TestDatabase::create(&casino_room_service::store::MIGRATOR)
                .await?;
        let kafka = casino_testkit::kafka::TestKafka::start(&casino_events::topics::ALL)?;
        let seed_bytes: [u8; 32] = rand::random();
        let seed = base64::engine::general_purpose::STANDARD.encode(seed_bytes);
        let mut child = tokio::process::Command::new(&binary)
            .env("ROOM_SERVICE_DATABASE_URL", &db.url)
            .env("ROOM_SERVICE_DATABASE_MAX_CONNECTIONS", "20")
            .env("ROOM_SERVICE_KAFKA_BROKERS", kafka.bootstrap_servers())
            .env("ROOM_SERVICE_PUBLIC_ADDR", "127.0.0.1:0")
            .env("ROOM_SERVICE_ADMIN_ADDR", "127.0.0.1:0")
            .env("ROOM_SERVICE_JWT_SIGNING_KEY", &seed)
            .env("ROOM_SERVICE_CONNECT_RATE_PER_IP", "0")
            .env("RUST_LOG", "warn,casino_observability::server=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let (public, admin) = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if value["message"] == "listening"
                    && let (Some(public), Some(admin)) =
                        (value["public_addr"].as_str(), value["admin_addr"].as_str())
                {
                    return Ok::<_, anyhow::Error>((public.to_owned(), admin.to_owned()));
                }
            }
            bail!("room-service exited before listening")
        })
        .await
        .context("room-service did not start within 60 s")??;
        // Keep draining its logs so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            url: format!("http://{public}"),
            signer: JwtSigner::from_seed_base64(&seed, Duration::from_secs(3600))?,
            admin_url: Some(format!("http://{admin}")),
            pid: None,
            child: Some(child),
            _db: Some(db),
            _kafka: Some(kafka),
        })
    }

    fn rss_source(&self) -> RssSource {
        match (&self.child, self.pid, &self.admin_url) {
            (Some(child), _, _) => child.id().map_or(RssSource::None, RssSource::Pid),
            (None, Some(pid), _) => RssSource::Pid(pid),
            (None, None, Some(admin)) => RssSource::Metrics(admin.clone()),
            (None, None, None) => RssSource::None,
        }
    }

    /// Run the scenario against it.
    pub async fn scenario(&self, name: &str, args: &Args) -> anyhow::Result<Report> {
        scenario(name, &self.url, &self.signer, &self.rss_source(), args).await
    }

    /// Stop it if it was started here (SIGTERM, its graceful shutdown).
    pub async fn stop(mut self) {
        if let Some(child) = &mut self.child {
            terminate(child).await;
        }
    }
}

async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// The reference Node socket.io server, started here.
pub struct NodeServer {
    url: String,
    pid: u32,
    signer: JwtSigner,
    child: tokio::process::Child,
}

/// `services/room-service/tests/node` of this checkout.
fn default_node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../services/room-service/tests/node")
}

impl NodeServer {
    /// Start it (`npm ci` first if needed).
    pub async fn start(args: &Args) -> anyhow::Result<Self> {
        let dir = args.node_dir.clone().unwrap_or_else(default_node_dir);
        if !dir.join("node_modules/socket.io").exists() {
            let status = tokio::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .await
                .context("running npm ci (is Node.js installed?)")?;
            anyhow::ensure!(status.success(), "npm ci failed in {}", dir.display());
        }
        let signer = JwtSigner::generate(Duration::from_secs(3600));
        let mut child = tokio::process::Command::new("node")
            .arg("bench-server.mjs")
            .current_dir(&dir)
            .env("PORT", "0")
            .env("BENCH_JWKS", signer.jwks().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the node reference server")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("the node server did not start")??
            .context("the node server exited")?;
        let started: Value = serde_json::from_str(&first)?;
        let port = started["port"].as_u64().context("no port")?;
        let pid = started["pid"].as_u64().context("no pid")? as u32;
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            pid,
            signer,
            child,
        })
    }

    /// Run the scenario against it.
    pub async fn scenario(&self, name: &str, args: &Args) -> anyhow::Result<Report> {
        scenario(
            name,
            &self.url,
            &self.signer,
            &RssSource::Pid(self.pid),
            args,
        )
        .await
    }

    /// Stop it.
    pub async fn stop(mut self) {
        terminate(&mut self.child).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_are_counted_per_message_with_their_latency() {
        let tracker = Tracker::new(3);
        let t0 = Instant::now();
        let _ = tracker.sent[1].set(t0);
        let event = r#"["chat.message",{"message_id":"x","room":"game:bench","text":"bench 1","client_msg_id":"c"}]"#;
        tracker.on_event(event, t0 + Duration::from_millis(7));
        tracker.on_event(r#"["balance.updated",{"text":"bench 1"}]"#, t0);
        tracker.on_event(r#"["chat.message",{"text":"bench 9"}]"#, t0);
        assert_eq!(tracker.received(0..3), 1);
        assert_eq!(
            tracker.latencies.lock().unwrap().clone(),
            vec![Duration::from_millis(7)]
        );
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&values, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&values, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&[], 0.99), Duration::ZERO);
    }
}

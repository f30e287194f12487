//! `casino probe chat`: the "customer chat is down" synthetic probe.
//!
//! One attempt: get a token for the synthetic player (log in to Vault with `PROBE_PLAYER_EMAIL` /
//! `PROBE_PLAYER_PASSWORD`, or use `--token`, or mint one with `--signing-key` on a local stack), connect
//! to Room-Service like a browser (socket.io over WebSocket), `chat.join` the probe room, `chat.send` a
//! message with a fresh `client_msg_id`, and wait until that message comes back as `chat.message`
//! (it went through Postgres and Kafka and back, like every player's). Prints the round trip and exits 0,
//! or prints what failed and exits 1.
//!
//! With `--serve ADDR` it repeats every `--interval` seconds and serves, on `http://ADDR/metrics`,
//! `probe_success{probe="chat"}` (1/0), `probe_duration_seconds{probe="chat"}` (the last attempt) and
//! `probe_runs_total{probe="chat",outcome}`, so Prometheus pages when chat stops working even though
//! every process still looks alive (`alerts/uptime.rules.yml`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use casino_room_service::client::{Client, ClientOptions};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use uuid::Uuid;

/// The player a minted probe token (`--signing-key`) is issued to.
pub const PROBE_PLAYER: Uuid = uuid::uuid!("00000000-0000-7000-8000-0000000c4a70");

/// Arguments of `casino probe chat`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Room-Service public base URL.
    #[arg(long, env = "PROBE_ROOM_URL", default_value = "http://127.0.0.1:8083")]
    pub room_url: String,
    /// Vault public base URL (where the synthetic player logs in).
    #[arg(long, env = "PROBE_VAULT_URL", default_value = "http://127.0.0.1:8081")]
    pub vault_url: String,
    /// The synthetic player's email.
    #[arg(long, env = "PROBE_PLAYER_EMAIL")]
    pub email: Option<String>,
    /// The synthetic player's password.
    #[arg(long, env = "PROBE_PLAYER_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Use this access token instead of logging in.
    #[arg(long, env = "PROBE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Local stacks: mint the token with this base64 Ed25519 seed (the value of VAULT_JWT_SIGNING_KEY /
    /// ROOM_SERVICE_JWT_SIGNING_KEY) instead of logging in.
    #[arg(long, env = "PROBE_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
    /// Chat room to probe (`lobby` or `game:{id}`).
    #[arg(long, default_value = "game:probe")]
    pub room: String,
    /// Seconds one attempt may take.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    /// Keep probing and serve /metrics on this address (for example 0.0.0.0:9115).
    #[arg(long)]
    pub serve: Option<SocketAddr>,
    /// Seconds between attempts with --serve.
    #[arg(long, default_value_t = 30)]
    pub interval: u64,
}

/// Run the probe: exit code 0 (chat works) or 1; with `--serve`, until Ctrl-C (0).
pub async fn run(args: Args) -> anyhow::Result<i32> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout))
        .build()?;
    let Some(addr) = args.serve else {
        let started = Instant::now();
        return Ok(match attempt(&args, &http).await {
            Ok(round_trip) => {
                println!(
                    "chat probe ok: message round trip {:.1} ms (room {}, {})",
                    round_trip.as_secs_f64() * 1000.0,
                    args.room,
                    args.room_url
                );
                0
            }
            Err(error) => {
                println!(
                    "chat probe failed after {:.1} ms: {error:#}",
                    started.elapsed().as_secs_f64() * 1000.0
                );
                1
            }
        });
    };
    serve(args, http, addr).await
}

/// One attempt; the message round trip (send to receipt) on success.
pub async fn attempt(args: &Args, http: &reqwest::Client) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    // Each step gets what is left, so a failure names the step; this is the backstop.
    tokio::time::timeout(
        Duration::from_secs(args.timeout + 1),
        attempt_inner(args, http, deadline),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no answer within {} s", args.timeout))?
}

async fn attempt_inner(
    args: &Args,
    http: &reqwest::Client,
    deadline: Instant,
) -> anyhow::Result<Duration> {
    let left = || deadline.saturating_duration_since(Instant::now());
    let token = token(args, http).await?;
    let mut options = ClientOptions::token(&token);
    options.timeout = left();
    let mut client = Client::connect(&args.room_url, options)
        .await
        .context("connecting to Room-Service")?;
    let joined = client
        .emit_with_ack("chat.join", &json!({ "room": args.room }), left())
        .await
        .context("chat.join")?;
    if joined["ok"] != true {
        bail!("chat.join refused: {joined}");
    }
    let client_msg_id = format!("probe-{}", Uuid::now_v7());
    let started = Instant::now();
    let ack = client
        .emit_with_ack(
            "chat.send",
            &json!({ "room": args.room, "text": format!("probe {client_msg_id}"), "client_msg_id": client_msg_id }),
            left(),
        )
        .await
        .context("chat.send")?;
    if ack["ok"] != true {
        bail!(
            "chat.send refused: {}",
            ack["error"].as_str().unwrap_or("no error code")
        );
    }
    loop {
        let args = client
            .wait_for("chat.message", left())
            .await
            .context("waiting for the message to come back")?;
        if args.first().and_then(|m| m["client_msg_id"].as_str()) == Some(client_msg_id.as_str()) {
            let round_trip = started.elapsed();
            client.close();
            return Ok(round_trip);
        }
    }
}

async fn token(args: &Args, http: &reqwest::Client) -> anyhow::Result<String> {
    if let Some(token) = &args.token {
        return Ok(token.clone());
    }
    if let Some(seed) = &args.signing_key {
        let signer = casino_auth::jwt::JwtSigner::from_seed_base64(seed, Duration::from_secs(300))?;
        return Ok(signer.issue(PROBE_PLAYER, casino_auth::Role::Player).0);
    }
    let (Some(email), Some(password)) = (&args.email, &args.password) else {
        bail!(
            "no credentials: set PROBE_PLAYER_EMAIL and PROBE_PLAYER_PASSWORD, or --token, or --signing-key"
        );
    };
    let url = format!("{}/api/v1/auth/login", args.vault_url.trim_end_matches('/'));
    let response = http
        .post(&url)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .with_context(|| format!("logging in at {url}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "login refused ({status}): {}",
            body["error"]["code"].as_str().unwrap_or("no error code")
        );
    }
    ["access_token", "token"]
        .iter()
        .find_map(|field| body[*field].as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the login answer has no access_token"))
}

#[derive(Debug, Default, Clone, Copy)]
struct Last {
    success: Option<bool>,
    duration: f64,
    ok: u64,
    failed: u64,
}

fn render(last: &Last) -> String {
    let mut text = String::new();
    if let Some(success) = last.success {
        text.push_str(
            "# HELP probe_success Whether the last chat probe succeeded (1) or not (0).\n",
        );
        text.push_str("# TYPE probe_success gauge\n");
        text.push_str(&format!(
            "probe_success{{probe=\"chat\"}} {}\n",
            u8::from(success)
        ));
        text.push_str("# HELP probe_duration_seconds Duration of the last chat probe: the message round trip, or the time until it failed.\n");
        text.push_str("# TYPE probe_duration_seconds gauge\n");
        text.push_str(&format!(
            "probe_duration_seconds{{probe=\"chat\"}} {}\n",
            last.duration
        ));
    }
    text.push_str("# HELP probe_runs_total Chat probe attempts by outcome.\n");
    text.push_str("# TYPE probe_runs_total counter\n");
    text.push_str(&format!(
        "probe_runs_total{{probe=\"chat\",outcome=\"ok\"}} {}\n",
        last.ok
    ));
    text.push_str(&format!(
        "probe_runs_total{{probe=\"chat\",outcome=\"failed\"}} {}\n",
        last.failed
    ));
    text
}

async fn serve(args: Args, http: reqwest::Client, addr: SocketAddr) -> anyhow::Result<i32> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    println!(
        "chat probe: every {} s against {}, metrics on http://{}/metrics",
        args.interval,
        args.room_url,
        listener.local_addr()?
    );
    let last = Arc::new(Mutex::new(Last::default()));
    let served = last.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let last = served.clone();
            tokio::spawn(async move {
                let mut request = vec![0u8; 2048];
                let n = stream.read(&mut request).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&request[..n]);
                let response = if head.starts_with("GET /metrics") {
                    let body = render(&last.lock().map(|l| *l).unwrap_or_default());
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_owned()
                };
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    let mut ticker = tokio::time::interval(Duration::from_secs(args.interval.max(1)));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = ticker.tick() => {}
        }
        let started = Instant::now();
        let outcome = attempt(&args, &http).await;
        let elapsed = started.elapsed();
        if let Ok(mut last) = last.lock() {
            match &outcome {
                Ok(round_trip) => {
                    last.success = Some(true);
                    last.duration = round_trip.as_secs_f64();
                    last.ok += 1;
                }
                Err(_) => {
                    last.success = Some(false);
                    last.duration = elapsed.as_secs_f64();
                    last.failed += 1;
                }
            }
        }
        match outcome {
            Ok(round_trip) => {
                println!("chat probe ok: {:.1} ms", round_trip.as_secs_f64() * 1000.0)
            }
            Err(error) => println!("chat probe failed: {error:#}"),
        }
    }
    server.abort();
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_appear_after_the_first_attempt() {
        let before = render(&Last::default());
        assert!(!before.contains("probe_success"));
        let after = render(&Last {
            success: Some(false),
            duration: 1.5,
            ok: 2,
            failed: 1,
        });
        assert!(
            after.contains("probe_success{probe=\"chat\"} 0\n"),
            "{after}"
        );
        assert!(after.contains("probe_duration_seconds{probe=\"chat\"} 1.5\n"));
        assert!(after.contains("probe_runs_total{probe=\"chat\",outcome=\"failed\"} 1\n"));
    }
}

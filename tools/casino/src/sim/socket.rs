//! Connected players: one task per socket owns its `casino_room_service::client::Client`, joins the
//! lobby, sends the chat messages the plan asks for, and connects again when the socket is lost.
//!
//! Events arrive through the client's sink (a callback on the socket's own task): every
//! `balance.updated` appends its `transfer_id` to the player's list (duplicates kept: telling them apart
//! is the point of the end-to-end check) and counts as a push.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use casino_room_service::client::{Client, ClientError, ClientEvent, ClientOptions, EventSink};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::stats::{self, Stats};
use super::world::{Player, World};

/// The chat room every connected player joins.
pub const LOBBY: &str = "lobby";

/// How long an ack may take. Generous on purpose: with Kafka down, Room-Service answers `chat.send` with
/// `unavailable` only once its producer gives up (5 s, more on a loaded machine); that answer is an
/// outcome to count, while a socket that never answers is a `transport_error`.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// What the simulation asks of a socket.
#[derive(Debug)]
pub enum Command {
    /// Send a chat message to the lobby; `done` fires once it was answered (or failed).
    Chat {
        /// Message text.
        text: String,
        /// Completion.
        done: oneshot::Sender<()>,
    },
}

fn sink(player: &Player, stats: Arc<Stats>) -> EventSink {
    let pushes = player.pushes.clone();
    let malformed = player.malformed.clone();
    Arc::new(move |text: &str| {
        // Cheap test first: lobby chat reaches every socket and is of no interest here.
        if !text.contains("balance.updated") {
            return;
        }
        let Ok(Value::Array(event)) = serde_json::from_str::<Value>(text) else {
            return;
        };
        if event.first().and_then(Value::as_str) != Some("balance.updated") {
            return;
        }
        let transfer = event
            .get(1)
            .and_then(|payload| payload["transfer_id"].as_str())
            .and_then(|id| id.parse::<Uuid>().ok());
        match transfer {
            Some(id) => {
                if let Ok(mut pushes) = pushes.lock() {
                    pushes.push(id);
                }
            }
            None => {
                malformed.fetch_add(1, Ordering::Relaxed);
            }
        }
        stats.push_received();
    })
}

/// Connect `player` and join the lobby (both counted: `connect`, `chat_join`). A refused token is
/// renewed by logging in again, once.
async fn open(world: &World, player: &Player) -> Result<Client, String> {
    let mut renewed = false;
    loop {
        let mut options = ClientOptions::token(&player.token());
        options.sink = Some(sink(player, world.stats.clone()));
        let started = std::time::Instant::now();
        let connected = Client::connect(&world.room_url, options).await;
        let outcome = match &connected {
            Ok(_) => stats::OK.to_owned(),
            Err(ClientError::Refused(message)) => message.clone(),
            Err(_) => stats::TRANSPORT_ERROR.to_owned(),
        };
        world.stats.record("connect", &outcome, started.elapsed());
        let client = match connected {
            Ok(client) => client,
            Err(ClientError::Refused(message)) if message == "unauthorized" && !renewed => {
                renewed = true;
                world.relogin(player).await;
                continue;
            }
            Err(error) => return Err(error.to_string()),
        };
        let started = std::time::Instant::now();
        let joined = client
            .emit_with_ack("chat.join", &json!({ "room": LOBBY }), ACK_TIMEOUT)
            .await;
        record_ack(world, "chat_join", &joined, started);
        return Ok(client);
    }
}

fn record_ack(
    world: &World,
    operation: &'static str,
    ack: &Result<Value, ClientError>,
    started: std::time::Instant,
) {
    let outcome = match ack {
        Ok(ack) if ack["ok"] == true => stats::OK.to_owned(),
        Ok(ack) => ack["error"].as_str().unwrap_or("refused").to_owned(),
        Err(_) => stats::TRANSPORT_ERROR.to_owned(),
    };
    world.stats.record(operation, &outcome, started.elapsed());
}

/// Connect `player` (a few attempts) and start its socket task; `None` when it could not connect.
pub async fn start(
    world: Arc<World>,
    player: Arc<Player>,
    stop: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let mut last_error = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
        }
        match open(&world, &player).await {
            Ok(client) => {
                let (tx, rx) = mpsc::unbounded_channel();
                let _ = player.socket.set(tx);
                return Some(tokio::spawn(run(world, player, client, rx, stop)));
            }
            Err(error) => last_error = error,
        }
    }
    eprintln!(
        "casino sim: player {} could not connect to Room-Service: {last_error}",
        player.index
    );
    None
}

enum Wake {
    Command(Option<Command>),
    Event(Result<ClientEvent, ClientError>),
    Stop,
}

async fn run(
    world: Arc<World>,
    player: Arc<Player>,
    mut client: Client,
    mut commands: mpsc::UnboundedReceiver<Command>,
    stop: CancellationToken,
) {
    loop {
        // Only the outcome leaves the select: the client is borrowed by one branch at a time.
        let wake = tokio::select! {
            command = commands.recv() => Wake::Command(command),
            event = client.next_event(Duration::from_secs(3600)) => Wake::Event(event),
            _ = stop.cancelled() => Wake::Stop,
        };
        match wake {
            Wake::Stop | Wake::Command(None) => break,
            Wake::Command(Some(Command::Chat { text, done })) => {
                let started = std::time::Instant::now();
                let ack = client
                    .emit_with_ack(
                        "chat.send",
                        &json!({ "room": LOBBY, "text": text, "client_msg_id": world.id("chat") }),
                        ACK_TIMEOUT,
                    )
                    .await;
                record_ack(&world, "chat", &ack, started);
                let _ = done.send(());
            }
            Wake::Event(Err(ClientError::Timeout)) => {}
            Wake::Event(Ok(ClientEvent::Event { .. })) => {}
            Wake::Event(Ok(ClientEvent::Disconnected { .. }) | Err(_)) => {
                // Lost (a Room-Service restart, a network fault): pushes sent meanwhile are missed, which
                // the summary says through the reconnect count.
                player.reconnects.fetch_add(1, Ordering::Relaxed);
                match reconnect(&world, &player, &stop).await {
                    Some(fresh) => client = fresh,
                    None => return,
                }
            }
        }
    }
    client.close();
}

async fn reconnect(world: &World, player: &Player, stop: &CancellationToken) -> Option<Client> {
    let mut delay = Duration::from_millis(200);
    loop {
        let wait_until = Instant::now() + delay;
        tokio::select! {
            _ = tokio::time::sleep_until(wait_until) => {}
            _ = stop.cancelled() => return None,
        }
        if let Ok(client) = open(world, player).await {
            return Some(client);
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Ask `player`'s socket to send a chat message and wait until it was answered.
pub async fn chat(player: &Player, text: String) {
    let Some(socket) = player.socket.get() else {
        return;
    };
    let (done, answered) = oneshot::channel();
    if socket.send(Command::Chat { text, done }).is_ok() {
        let _ = tokio::time::timeout(ACK_TIMEOUT * 2, answered).await;
    }
}

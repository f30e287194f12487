//! socket.io for the browser (socketioxide on the public port at `/socket.io/`).
//!
//! - Handshake: `auth: {token, last_notification_id?}`; a missing, malformed, expired or forged token is
//!   refused with the connect error `unauthorized`, a source over its connection rate with
//!   `rate_limited`. A socket is disconnected when its token expires (`session.expired`). An accepted socket joins `player:{id}`, gets
//!   `notifications.unread_count` and, with `last_notification_id`, every notification it missed, in order.
//! - Client events: `chat.join`, `chat.leave`, `chat.send` (answered through the ack).
//! - Server events: `balance.updated`, `level.up`, `account.locked`, `account.unlocked`, `notification`,
//!   `notifications.unread_count`, `chat.message`, `chat.message_deleted`, `session.expired`,
//!   `server.shutdown`.
//! - Shutdown: `server.shutdown` to every socket, then every transport is closed, so clients reconnect
//!   (to another task) on their own.

pub mod connect_limit;
pub mod dedupe;
pub mod sessions;

use std::sync::Arc;
use std::time::Duration;

use axum::{Router, middleware};
use casino_auth::{AuthError, Role};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use socketioxide::{
    BroadcastError, SocketIo,
    extract::{AckSender, SocketRef, State, TryData},
    handler::ConnectHandler as _,
    socket::DisconnectReason,
};
use uuid::Uuid;

use crate::{
    chat::{self, Sent},
    domain::{
        chat::{ChatRefusal, validate_room},
        live::{chat_room, player_room},
    },
    metrics,
    realtime::sessions::Session,
    state::AppState,
    store,
};

/// Sent to every socket right before the transports close at shutdown.
pub const SHUTDOWN_EVENT: &str = "server.shutdown";
/// The `reason` of [`SHUTDOWN_EVENT`] and the disconnect metric label.
pub const SHUTDOWN_REASON: &str = "server_shutdown";

/// The socket.io service at `/socket.io/` behind the connection guard, and its handle.
/// `trusted_proxy_hops`: see [`connect_limit::source_ip`].
pub fn router(state: AppState, trusted_proxy_hops: u8) -> (Router, SocketIo) {
    let (service, io) = SocketIo::builder()
        .max_payload(casino_observability::server::MAX_BODY_BYTES as u64)
        // Clients send small messages; the buffer grows for a bigger one. Held per socket.
        .ws_read_buffer_size(1024)
        .ws_max_message_size(casino_observability::server::MAX_BODY_BYTES)
        .ws_max_frame_size(casino_observability::server::MAX_BODY_BYTES)
        .with_state(state.clone())
        .build_svc();
    io.ns("/", on_connect.with(authenticate));
    let router = Router::new()
        .route_service("/socket.io/", service)
        .route_layer(middleware::from_fn_with_state(
            connect_limit::GuardState {
                app: state,
                trusted_proxy_hops,
            },
            connect_limit::guard,
        ));
    (router, io)
}

/// Why a socket was refused (the connect error's `message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Missing, malformed, expired or forged token.
    Unauthorized,
    /// The task is shutting down.
    ServerShutdown,
    /// Vault's keys could not be fetched: not the client's fault, retry later.
    AuthUnavailable,
    /// The source opened too many connections (`ROOM_SERVICE_CONNECT_RATE_PER_IP`).
    RateLimited,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Unauthorized => "unauthorized",
            Refusal::ServerShutdown => SHUTDOWN_REASON,
            Refusal::AuthUnavailable => "auth_unavailable",
            Refusal::RateLimited => "rate_limited",
        })
    }
}

/// Who a socket belongs to (set by [`authenticate`]).
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The token's subject.
    pub player_id: Uuid,
    /// The token's role.
    pub role: Role,
    /// `auth.last_notification_id`, if the client sent one.
    pub last_notification_id: Option<i64>,
    /// The token's `exp` (Unix seconds): the socket is disconnected then.
    pub expires_at: i64,
}

/// `auth.last_notification_id` as a number or a string of digits.
fn last_notification_id(auth: &Value) -> Option<i64> {
    match auth.get("last_notification_id")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|id| *id >= 0)
}

async fn authenticate(
    socket: SocketRef,
    TryData(auth): TryData<Value>,
    State(state): State<AppState>,
) -> Result<(), Refusal> {
    if state.shutdown.is_cancelled() {
        metrics::connection("server_shutdown");
        return Err(Refusal::ServerShutdown);
    }
    if socket
        .req_parts()
        .extensions
        .get::<connect_limit::OverConnectLimit>()
        .is_some()
    {
        // Logged (once per source and 10 s) by the guard.
        metrics::connection("rate_limited");
        tracing::debug!(socket_id = %socket.id, "socket refused: connection rate limit");
        return Err(Refusal::RateLimited);
    }
    let auth = auth.unwrap_or(Value::Null);
    let token = auth
        .get("token")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let result = match token {
        None => Err(AuthError::Missing),
        Some(token) => state.verifier.verify(token).await,
    };
    match result {
        Ok(claims) => {
            let auth = Authenticated {
                player_id: claims.sub,
                role: claims.role,
                last_notification_id: last_notification_id(&auth),
                expires_at: claims.exp,
            };
            accept(&socket, &state, &auth);
            socket.extensions.insert(auth);
            Ok(())
        }
        Err(AuthError::KeysUnavailable) => {
            metrics::connection("auth_unavailable");
            tracing::warn!(socket_id = %socket.id, "socket refused: token keys unavailable");
            Err(Refusal::AuthUnavailable)
        }
        Err(error) => {
            metrics::connection("unauthorized");
            tracing::info!(socket_id = %socket.id, reason = error.reason(), "socket refused: unauthorized");
            Err(Refusal::Unauthorized)
        }
    }
}

/// Set up an accepted socket. This runs in the middleware, before the server's CONNECT packet goes out:
/// the official client sends the events a page emitted early (`chat.join`...) right after CONNECT, and
/// socketioxide runs the connect handler in a task of its own, so handlers registered there could miss
/// them.
fn accept(socket: &SocketRef, state: &AppState, auth: &Authenticated) {
    let session = state.sessions.register(
        socket.clone(),
        auth.player_id,
        auth.last_notification_id,
        auth.expires_at,
    );
    socket.extensions.insert(session);
    metrics::gauge_connected(1.0);
    metrics::connection("accepted");
    socket.on_disconnect(on_disconnect);
    socket.on("chat.join", chat_join);
    socket.on("chat.leave", chat_leave);
    socket.on("chat.send", chat_send);
    socket.join(player_room(auth.player_id));
    tracing::info!(
        player_id = %auth.player_id,
        socket_id = %socket.id,
        role = auth.role.as_str(),
        transport = ?socket.transport_type(),
        last_notification_id = auth.last_notification_id,
        token_expires_at = auth.expires_at,
        instance_id = %state.instance_id,
        "socket connected"
    );
}

/// After CONNECT: the unread count and, with `last_notification_id`, the missed notifications.
async fn on_connect(socket: SocketRef, State(state): State<AppState>) {
    let (Some(auth), Some(session)) = (
        socket.extensions.get::<Authenticated>(),
        socket.extensions.get::<Arc<Session>>(),
    ) else {
        // Cannot happen: the middleware accepted it. Refuse rather than serve an anonymous socket.
        let _ = socket.disconnect();
        return;
    };
    if !socket.connected() {
        finish(&state, &session, "transport_close");
        return;
    }
    sessions::sync(&state.pool, &session, auth.last_notification_id, true).await;
}

/// Sessions whose socket is gone without a disconnect handler call (socketioxide does not call it when
/// the transport fails between the middleware and the CONNECT packet) are finished after a grace period.
pub async fn sweep_sessions(state: AppState, stop: tokio_util::sync::CancellationToken) {
    let mut ticker = tokio::time::interval(Duration::from_secs(15));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        for session in state.sessions.all() {
            if !session.is_connected() && session.connected_at.elapsed() > Duration::from_secs(10) {
                finish(&state, &session, "transport_error");
            }
        }
    }
}

fn disconnect_label(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::TransportClose => "transport_close",
        DisconnectReason::MultipleHttpPollingError => "multiple_http_polling",
        DisconnectReason::PacketParsingError => "packet_parsing_error",
        DisconnectReason::TransportError => "transport_error",
        DisconnectReason::HeartbeatTimeout => "heartbeat_timeout",
        DisconnectReason::ClientNSDisconnect => "client_disconnect",
        DisconnectReason::ServerNSDisconnect => "server_disconnect",
        DisconnectReason::ClosingServer => SHUTDOWN_REASON,
    }
}

async fn on_disconnect(socket: SocketRef, reason: DisconnectReason, State(state): State<AppState>) {
    if let Some(session) = socket.extensions.get::<Arc<Session>>() {
        finish(&state, &session, disconnect_label(reason));
    }
}

fn finish(state: &AppState, session: &Session, reason: &'static str) {
    if !state.sessions.unregister(session) {
        return;
    }
    let reason = session.ended_by_server().unwrap_or(reason);
    metrics::gauge_connected(-1.0);
    metrics::disconnect(reason);
    tracing::info!(
        player_id = %session.player_id,
        socket_id = %session.sid,
        reason,
        connected_ms = session.connected_at.elapsed().as_millis() as u64,
        "socket disconnected"
    );
}

fn authenticated(socket: &SocketRef) -> Option<Authenticated> {
    socket.extensions.get::<Authenticated>()
}

#[derive(Debug, Deserialize)]
struct RoomRequest {
    room: String,
}

fn chat_rooms_of(socket: &SocketRef) -> Vec<String> {
    socket
        .rooms()
        .into_iter()
        .filter(|r| r.starts_with("chat:"))
        .map(|r| r.into_owned())
        .collect()
}

async fn chat_join(
    socket: SocketRef,
    TryData(request): TryData<RoomRequest>,
    ack: AckSender,
    State(state): State<AppState>,
) {
    let reply = async {
        let request = request.map_err(|_| ChatRefusal::Invalid("expected {room}"))?;
        validate_room(&request.room)?;
        let room = chat_room(&request.room);
        let joined = chat_rooms_of(&socket);
        if !joined.contains(&room) && joined.len() >= state.chat.max_rooms_per_socket {
            return Err(ChatRefusal::TooManyRooms);
        }
        // Join first, then read the history: a message sent in between may be in both (clients
        // de-duplicate by message_id), but none is lost.
        socket.join(room);
        let messages = store::chat::history(
            &state.pool,
            &request.room,
            None,
            i64::from(state.chat.history_on_join),
        )
        .await
        .map_err(|error| {
            tracing::warn!(error = %error, room = %request.room, "reading chat history failed");
            ChatRefusal::Unavailable
        })?;
        if let Some(auth) = authenticated(&socket) {
            tracing::debug!(player_id = %auth.player_id, socket_id = %socket.id, room = %request.room, "joined chat room");
        }
        Ok(json!({ "ok": true, "room": request.room, "messages": messages }))
    }
    .await;
    let _ = ack.send(&reply.unwrap_or_else(|refusal| refusal.ack()));
}

async fn chat_leave(socket: SocketRef, TryData(request): TryData<RoomRequest>, ack: AckSender) {
    let reply = match request {
        Ok(request) if validate_room(&request.room).is_ok() => {
            socket.leave(chat_room(&request.room));
            json!({ "ok": true, "room": request.room })
        }
        Ok(_) => ChatRefusal::InvalidRoom.ack(),
        Err(_) => ChatRefusal::Invalid("expected {room}").ack(),
    };
    let _ = ack.send(&reply);
}

#[derive(Debug, Deserialize)]
struct SendRequest {
    room: String,
    text: String,
    client_msg_id: String,
}

async fn chat_send(
    socket: SocketRef,
    TryData(request): TryData<SendRequest>,
    ack: AckSender,
    State(state): State<AppState>,
) {
    let Some(auth) = authenticated(&socket) else {
        return;
    };
    let outcome = async {
        let request =
            request.map_err(|_| ChatRefusal::Invalid("expected {room, text, client_msg_id}"))?;
        validate_room(&request.room)?;
        if !socket
            .rooms()
            .iter()
            .any(|r| *r == chat_room(&request.room))
        {
            return Err(ChatRefusal::NotJoined);
        }
        chat::send(
            &state,
            auth.player_id,
            &request.room,
            &request.text,
            &request.client_msg_id,
        )
        .await
    }
    .await;
    let reply = match outcome {
        Ok(Sent::Accepted(message)) => {
            metrics::chat("accepted");
            json!({ "ok": true, "message_id": message.message_id })
        }
        Ok(Sent::Duplicate(message)) => {
            metrics::chat("duplicate");
            tracing::info!(player_id = %auth.player_id, socket_id = %socket.id, room = %message.room,
                message_id = %message.message_id, "duplicate chat message, original acknowledged");
            json!({ "ok": true, "message_id": message.message_id, "duplicate": true })
        }
        Err(refusal) => {
            metrics::chat(refusal.code());
            tracing::info!(player_id = %auth.player_id, socket_id = %socket.id, code = refusal.code(),
                "chat message refused");
            refusal.ack()
        }
    };
    let _ = ack.send(&reply);
}

/// Emit `event` to every socket of this task in `room`; count the deliveries and, when some socket was
/// reached, the latency since `occurred_at`. Returns how many sockets it was queued to.
pub async fn emit_to_room<T: Serialize + ?Sized>(
    io: &SocketIo,
    room: String,
    event: &'static str,
    data: &T,
    occurred_at: Option<DateTime<Utc>>,
) -> usize {
    let Some(root) = io.of("/") else {
        return 0; // closed at shutdown
    };
    let target = root.to(room);
    let sockets = target.clone().sockets().len();
    if sockets == 0 {
        return 0;
    }
    let failed = match target.emit(event, data).await {
        Ok(()) => 0,
        Err(BroadcastError::Socket(errors)) => errors.len().min(sockets),
        Err(error) => {
            tracing::warn!(event, error = %error, "broadcast failed");
            sockets
        }
    };
    if failed > 0 {
        metrics::dropped_n(event, failed as u64);
    }
    metrics::emitted(event, sockets - failed, occurred_at);
    sockets - failed
}

/// Tell every socket the server is going away, then close every transport (clients reconnect elsewhere).
pub async fn disconnect_all(io: &SocketIo, state: &AppState) {
    let Some(root) = io.of("/") else {
        return;
    };
    let sockets = root.clone().sockets().len();
    tracing::info!(sockets, "server shutting down, disconnecting sockets");
    let notice = json!({
        "reason": SHUTDOWN_REASON,
        "message": "the server is shutting down; reconnect",
    });
    if let Err(error) = root.emit(SHUTDOWN_EVENT, &notice).await {
        tracing::debug!(error = %error, "shutdown notice not queued to every socket");
    }
    metrics::emitted(SHUTDOWN_EVENT, sockets, None);
    if tokio::time::timeout(Duration::from_secs(5), io.close())
        .await
        .is_err()
    {
        tracing::warn!("closing sockets took longer than 5 s");
    }
    // socketioxide removes its namespaces before closing their sockets, so their disconnect handlers do
    // not run on this path: account for the sockets here (once: `finish` is idempotent).
    for session in state.sessions.all() {
        finish(state, &session, SHUTDOWN_REASON);
    }
    tracing::info!(sockets, "sockets disconnected");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_notification_id_is_a_number_or_digits() {
        assert_eq!(
            last_notification_id(&json!({"last_notification_id": 42})),
            Some(42)
        );
        assert_eq!(
            last_notification_id(&json!({"last_notification_id": "42"})),
            Some(42)
        );
        assert_eq!(
            last_notification_id(&json!({"last_notification_id": -1})),
            None
        );
        assert_eq!(
            last_notification_id(&json!({"last_notification_id": "x"})),
            None
        );
        assert_eq!(last_notification_id(&json!({})), None);
    }

    #[test]
    fn refusals_read_as_their_code() {
        assert_eq!(Refusal::Unauthorized.to_string(), "unauthorized");
        assert_eq!(Refusal::ServerShutdown.to_string(), "server_shutdown");
        assert_eq!(Refusal::RateLimited.to_string(), "rate_limited");
        assert_eq!(
            disconnect_label(DisconnectReason::ClosingServer),
            "server_shutdown"
        );
    }
}

//! The sockets of this task by player, and the exactly-once, in-order delivery of notifications to them.
//!
//! Each socket has a cursor: the id of the last notification it was sent. A notification reaches a socket
//! live (from the `LISTEN/NOTIFY` signal) or by replay (from the database when it connects with
//! `auth.last_notification_id`, or when the listening connection was lost and re-established). Both
//! paths only send ids above the cursor and move it forward, so nothing is sent twice.
//!
//! The connect race: the socket is registered (in the *syncing* state) *before* the database snapshot is
//! read. A notification committed before the snapshot is in it; one committed after it is announced
//! after registration and waits in the socket's buffer until the replay is sent; one in both is sent
//! once because of the cursor. Nothing is lost, nothing is duplicated, and the order is by id.
//!
//! Each session also remembers when its access token expires: [`expire_sessions`] disconnects it then
//! (`session.expired`, reason `token_expired`), one task for all of them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::json;
use socketioxide::{extract::SocketRef, socket::Sid};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    domain::notifications::Notification,
    metrics,
    store::notifications::{self as store, Snapshot},
};

/// The socket event of a notification.
pub const NOTIFICATION_EVENT: &str = "notification";
/// The socket event of the unread count.
pub const UNREAD_COUNT_EVENT: &str = "notifications.unread_count";
/// Sent right before a socket whose access token expired is disconnected.
pub const EXPIRED_EVENT: &str = "session.expired";
/// The `reason` of [`EXPIRED_EVENT`] and the disconnect metric label.
pub const TOKEN_EXPIRED: &str = "token_expired";

#[derive(Debug)]
enum Cursor {
    /// A replay is being prepared; live notifications wait in `buffer`.
    Syncing {
        after: i64,
        buffer: Vec<Notification>,
    },
    /// Live notifications are sent as they come.
    Live { after: i64 },
}

/// One connected socket of this task.
#[derive(Debug)]
pub struct Session {
    /// The socket's id.
    pub sid: Sid,
    /// Its player.
    pub player_id: Uuid,
    /// When it connected.
    pub connected_at: Instant,
    /// When its access token expires (the token's `exp`, Unix seconds).
    pub expires_at: i64,
    socket: SocketRef,
    cursor: Mutex<Cursor>,
    closed: AtomicBool,
    /// Set when the server ends the socket for a reason of its own (`token_expired`): the disconnect
    /// is counted and logged with it rather than socketioxide's generic `server_disconnect`.
    ended_by_server: OnceLock<&'static str>,
}

impl Session {
    fn emit(&self, event: &'static str, data: &serde_json::Value) -> bool {
        match self.socket.emit(event, data) {
            Ok(()) => true,
            Err(error) => {
                metrics::dropped(event);
                tracing::debug!(player_id = %self.player_id, socket_id = %self.sid, event, error = %error, "emit failed");
                false
            }
        }
    }

    fn emit_notification(&self, n: &Notification) -> bool {
        self.emit(NOTIFICATION_EVENT, &json!(n))
    }

    /// A notification announced live.
    pub fn deliver(&self, n: &Notification) {
        let Ok(mut cursor) = self.cursor.lock() else {
            return;
        };
        match &mut *cursor {
            Cursor::Syncing { buffer, .. } => buffer.push(n.clone()),
            Cursor::Live { after } => {
                if n.id > *after {
                    *after = n.id;
                    if self.emit_notification(n) {
                        metrics::emitted(NOTIFICATION_EVENT, 1, Some(n.occurred_at));
                    }
                }
            }
        }
    }

    /// The player's unread count changed.
    pub fn unread_count(&self, count: i64) {
        if self.emit(UNREAD_COUNT_EVENT, &json!({ "count": count })) {
            metrics::emitted(UNREAD_COUNT_EVENT, 1, None);
        }
    }

    /// Start a replay: live notifications are buffered until [`Session::finish_sync`]. Returns the cursor.
    pub fn begin_sync(&self) -> i64 {
        let Ok(mut cursor) = self.cursor.lock() else {
            return 0;
        };
        match &mut *cursor {
            Cursor::Syncing { after, .. } => *after,
            Cursor::Live { after } => {
                let after = *after;
                *cursor = Cursor::Syncing {
                    after,
                    buffer: Vec::new(),
                };
                after
            }
        }
    }

    /// Send what the snapshot holds above the cursor, then the unread count, then what was buffered, and
    /// go live. `from_client` says the cursor came from the client (`auth.last_notification_id`): a
    /// cursor beyond the player's newest notification is then brought back to it.
    pub fn finish_sync(&self, snapshot: Option<Snapshot>, from_client: bool) {
        let Ok(mut cursor) = self.cursor.lock() else {
            return;
        };
        let (mut after, mut buffer) =
            match std::mem::replace(&mut *cursor, Cursor::Live { after: 0 }) {
                Cursor::Syncing { after, buffer } => (after, buffer),
                Cursor::Live { after } => (after, Vec::new()),
            };
        if let Some(snapshot) = snapshot {
            if from_client && after > snapshot.max_id {
                after = snapshot.max_id;
            }
            let mut replayed = 0u64;
            for n in &snapshot.missed {
                if n.id > after {
                    after = n.id;
                    if self.emit_notification(n) {
                        replayed += 1;
                    }
                }
            }
            if replayed > 0 {
                metrics::emitted(NOTIFICATION_EVENT, replayed as usize, None);
                metrics::counter_replayed(replayed);
                tracing::info!(player_id = %self.player_id, socket_id = %self.sid, replayed, "notifications replayed");
            }
            after = after.max(snapshot.max_id);
            self.unread_count(snapshot.unread);
        }
        buffer.sort_by_key(|n| n.id);
        for n in &buffer {
            if n.id > after {
                after = n.id;
                if self.emit_notification(n) {
                    metrics::emitted(NOTIFICATION_EVENT, 1, Some(n.occurred_at));
                }
            }
        }
        *cursor = Cursor::Live { after };
    }

    /// Whether the socket is still connected.
    pub fn is_connected(&self) -> bool {
        self.socket.connected()
    }

    /// Why the server ended this socket, if it did for a reason of its own.
    pub fn ended_by_server(&self) -> Option<&'static str> {
        self.ended_by_server.get().copied()
    }

    /// The access token expired: say so and disconnect (the client refreshes its token and connects
    /// again; socket.io-client reports `io server disconnect` and does not reconnect by itself).
    pub fn expire(&self) {
        let _ = self.ended_by_server.set(TOKEN_EXPIRED);
        let notice = json!({
            "reason": TOKEN_EXPIRED,
            "message": "the access token expired; connect again with a fresh one",
        });
        if self.emit(EXPIRED_EVENT, &notice) {
            metrics::emitted(EXPIRED_EVENT, 1, None);
        }
        if let Err(error) = self.socket.clone().disconnect() {
            tracing::debug!(player_id = %self.player_id, socket_id = %self.sid, error = %error,
                "disconnecting an expired socket failed");
        }
    }

    /// The cursor (tests, logs).
    pub fn cursor(&self) -> i64 {
        match self.cursor.lock().as_deref() {
            Ok(Cursor::Syncing { after, .. } | Cursor::Live { after }) => *after,
            Err(_) => 0,
        }
    }
}

/// The sessions of this task.
#[derive(Debug, Default)]
pub struct Sessions {
    by_player: Mutex<HashMap<Uuid, Vec<Arc<Session>>>>,
    /// By token expiry, soonest first.
    by_expiry: Mutex<BTreeMap<(i64, Sid), Arc<Session>>>,
}

impl Sessions {
    /// Register a socket in the syncing state with the client's cursor.
    pub fn register(
        &self,
        socket: SocketRef,
        player_id: Uuid,
        last_notification_id: Option<i64>,
        expires_at: i64,
    ) -> Arc<Session> {
        let session = Arc::new(Session {
            sid: socket.id,
            player_id,
            connected_at: Instant::now(),
            expires_at,
            socket,
            cursor: Mutex::new(Cursor::Syncing {
                after: last_notification_id.unwrap_or(0),
                buffer: Vec::new(),
            }),
            closed: AtomicBool::new(false),
            ended_by_server: OnceLock::new(),
        });
        if let Ok(mut map) = self.by_player.lock() {
            map.entry(player_id).or_default().push(session.clone());
        }
        if let Ok(mut map) = self.by_expiry.lock() {
            map.insert((expires_at, session.sid), session.clone());
        }
        session
    }

    /// Remove and return the sessions whose token expired at `now` (Unix seconds).
    pub fn take_expired(&self, now: i64) -> Vec<Arc<Session>> {
        let Ok(mut map) = self.by_expiry.lock() else {
            return Vec::new();
        };
        let mut expired = Vec::new();
        while let Some(entry) = map.first_entry() {
            if entry.key().0 > now {
                break;
            }
            expired.push(entry.remove());
        }
        expired
    }

    /// Remove a session; `true` only the first time (disconnect handlers may race the connect handler).
    pub fn unregister(&self, session: &Session) -> bool {
        if session.closed.swap(true, Ordering::SeqCst) {
            return false;
        }
        if let Ok(mut map) = self.by_expiry.lock() {
            map.remove(&(session.expires_at, session.sid));
        }
        if let Ok(mut map) = self.by_player.lock()
            && let Some(list) = map.get_mut(&session.player_id)
        {
            list.retain(|s| s.sid != session.sid);
            if list.is_empty() {
                map.remove(&session.player_id);
            }
        }
        true
    }

    /// The sessions of `player`.
    pub fn of_player(&self, player: Uuid) -> Vec<Arc<Session>> {
        self.by_player
            .lock()
            .ok()
            .and_then(|map| map.get(&player).cloned())
            .unwrap_or_default()
    }

    /// Every session.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.by_player
            .lock()
            .map(|map| map.values().flatten().cloned().collect())
            .unwrap_or_default()
    }

    /// How many sessions.
    pub fn len(&self) -> usize {
        self.by_player
            .lock()
            .map(|map| map.values().map(Vec::len).sum())
            .unwrap_or(0)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Disconnect every socket when its token expires (checked four times a second), until `stop`.
pub async fn expire_sessions(sessions: Arc<Sessions>, stop: tokio_util::sync::CancellationToken) {
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        for session in sessions.take_expired(chrono::Utc::now().timestamp()) {
            tracing::debug!(player_id = %session.player_id, socket_id = %session.sid,
                expires_at = session.expires_at, "access token expired, disconnecting");
            session.expire();
        }
    }
}

/// Bring `session` up to date from the database. `from_client` for the first sync after connecting.
pub async fn sync(
    pool: &PgPool,
    session: &Session,
    last_notification_id: Option<i64>,
    from_client: bool,
) {
    let after = session.begin_sync();
    let query_after = if from_client {
        last_notification_id
    } else {
        Some(after)
    };
    match store::snapshot(pool, session.player_id, query_after).await {
        Ok(snapshot) => session.finish_sync(Some(snapshot), from_client),
        Err(error) => {
            tracing::warn!(player_id = %session.player_id, socket_id = %session.sid, error = %error,
                "reading notifications for a socket failed; sending live ones only");
            session.finish_sync(None, from_client);
        }
    }
}

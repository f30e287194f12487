//! Every task listens on the notifications channel and pushes what it hears to its sockets. After the
//! listening connection was (re)established, every socket of the task is re-synchronised from the
//! database, so a notification announced while the connection was down is still delivered, once.

use std::time::Duration;

use sqlx::{PgPool, postgres::PgListener};
use tokio_util::sync::CancellationToken;

use crate::{
    realtime::sessions::{self, Sessions},
    store::notifications::{self as store, CHANNEL, Signal},
};

use std::sync::Arc;

/// Listen until `stop` is cancelled.
pub async fn run(pool: PgPool, sessions: Arc<Sessions>, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(200);
    'connect: loop {
        let listener = tokio::select! {
            _ = stop.cancelled() => return,
            listener = connect(&pool) => listener,
        };
        let mut listener = match listener {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "notification listener cannot connect");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue 'connect;
            }
        };
        backoff = Duration::from_millis(200);
        tracing::info!(channel = CHANNEL, "listening for notifications");
        resync_all(&pool, &sessions).await;
        loop {
            let received = tokio::select! {
                _ = stop.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => dispatch(&pool, &sessions, notification.payload()).await,
                Ok(None) => {
                    // The connection was lost and re-established (LISTEN included): catch up.
                    tracing::warn!("notification listener reconnected, resynchronising sockets");
                    resync_all(&pool, &sessions).await;
                }
                Err(error) => {
                    tracing::warn!(error = %error, "notification listener failed");
                    continue 'connect;
                }
            }
        }
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

async fn resync_all(pool: &PgPool, sessions: &Sessions) {
    for session in sessions.all() {
        sessions::sync(pool, &session, None, false).await;
    }
}

async fn dispatch(pool: &PgPool, sessions: &Sessions, payload: &str) {
    let signal: Signal = match serde_json::from_str(payload) {
        Ok(signal) => signal,
        Err(error) => {
            tracing::warn!(error = %error, "unreadable notification signal");
            return;
        }
    };
    match signal {
        Signal::Notification {
            player_id,
            notification,
        } => {
            for session in sessions.of_player(player_id) {
                session.deliver(&notification);
            }
        }
        Signal::NotificationRef { player_id, id } => {
            let local = sessions.of_player(player_id);
            if local.is_empty() {
                return;
            }
            match store::get(pool, player_id, id).await {
                Ok(Some(notification)) => {
                    for session in local {
                        session.deliver(&notification);
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(player_id = %player_id, notification_id = id, error = %error, "fetching an announced notification failed");
                }
            }
        }
        Signal::UnreadCount { player_id, count } => {
            for session in sessions.of_player(player_id) {
                session.unread_count(count);
            }
        }
    }
}

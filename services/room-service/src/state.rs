//! What request and socket handlers share.

use std::sync::Arc;

use casino_auth::extract::{AuthState, TokenVerifier};
use casino_messaging::Producer;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{
    config::{ChatRules, ConnectRate},
    realtime::{connect_limit::ConnectLimiter, sessions::Sessions},
};

/// Shared state of one Room-Service task. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The shared parts.
pub struct Inner {
    /// The database.
    pub pool: PgPool,
    /// Publishes chat events to `room.chat.v1` (short timeout: a chat send waits for it).
    pub chat_producer: Producer,
    /// Verifies socket and API tokens.
    pub verifier: TokenVerifier,
    /// The sockets of this task by player, for notification delivery.
    pub sessions: Arc<Sessions>,
    /// Chat rules.
    pub chat: ChatRules,
    /// New-connection limiter per source IP.
    pub connect_limiter: ConnectLimiter,
    /// Cancelled when shutdown is requested: new sockets are refused from then on.
    pub shutdown: CancellationToken,
    /// This task's id.
    pub instance_id: String,
}

impl AppState {
    /// Assemble the state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pool: PgPool,
        chat_producer: Producer,
        verifier: TokenVerifier,
        chat: ChatRules,
        connect_rate: ConnectRate,
        shutdown: CancellationToken,
        instance_id: String,
    ) -> Self {
        Self(Arc::new(Inner {
            pool,
            chat_producer,
            verifier,
            sessions: Arc::new(Sessions::default()),
            chat,
            connect_limiter: ConnectLimiter::new(connect_rate),
            shutdown,
            instance_id,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

impl AuthState for AppState {
    fn token_verifier(&self) -> &TokenVerifier {
        &self.verifier
    }
    fn auth_failure_metric(&self) -> &'static str {
        crate::metrics::AUTH_FAILURES
    }
}

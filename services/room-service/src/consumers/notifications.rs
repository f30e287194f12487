//! The notifications consumer: one shared group (`room-service-notifications`) over the Vault and
//! Concierge topics, so each event is looked at by one task; an event that deserves a notification is
//! stored (idempotent by event id) and announced to every task through `LISTEN/NOTIFY`.

use casino_events::{Envelope, topics};
use casino_messaging::{Handler, HandlerError, Incoming};
use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::{domain::notifications::from_event, metrics, store};

/// Topics of the notifications consumer.
pub const TOPICS: [&str; 4] = [
    topics::VAULT_TRANSACTIONS,
    topics::CONCIERGE_REWARDS,
    topics::VAULT_PLAYERS,
    topics::VAULT_PAYMENTS,
];

/// Stores notifications.
pub struct NotificationsHandler {
    pool: PgPool,
    big_win_eur: Decimal,
}

impl NotificationsHandler {
    /// A handler storing into `pool`, with the big-win threshold.
    pub fn new(pool: PgPool, big_win_eur: Decimal) -> Self {
        Self { pool, big_win_eur }
    }
}

impl Handler for NotificationsHandler {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let event = Envelope::from_slice(&message.payload)
            .map_err(|e| HandlerError::Permanent(e.into()))?;
        let Some(new) = from_event(&message.topic, event, self.big_win_eur)
            .map_err(|e| HandlerError::Permanent(e.into()))?
        else {
            return Ok(());
        };
        match store::notifications::store(&self.pool, &new).await {
            Ok(Some(stored)) => {
                metrics::notification_stored(new.kind);
                tracing::info!(
                    player_id = %new.player_id,
                    event_id = %new.event_id,
                    notification_id = stored.id,
                    r#type = new.kind,
                    "notification stored"
                );
                Ok(())
            }
            Ok(None) => {
                tracing::debug!(event_id = %new.event_id, "notification already stored");
                Ok(())
            }
            Err(error) => Err(HandlerError::Transient(error.into())),
        }
    }
}

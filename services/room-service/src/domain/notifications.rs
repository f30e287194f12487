//! Which events become persisted notifications, and what a notification looks like on the wire.
//!
//! | source topic | event type | notification type | `data` |
//! |---|---|---|---|
//! | `concierge.rewards.v1` | `level.up` | `level_up` | `{from, to, name}` |
//! | `vault.transactions.v1` | `bet.won` with `amount_eur >= ROOM_SERVICE_BIG_WIN_EUR` | `big_win` | `{transfer_id, amount, currency, amount_eur, game_id, round_id, provider}` |
//! | `vault.players.v1` | `player.locked` | `account_locked` | `{reason}` |
//! | `vault.payments.v1` | `payment.succeeded` | `payment_succeeded` | the event's `data` object as published by Vault |
//! | `vault.payments.v1` | `payment.failed` | `payment_failed` | the event's `data` object as published by Vault |

use casino_events::{
    Envelope, EnvelopeError,
    payloads::{
        LevelUp, PlayerLockChanged, TransferEvent, player_types, reward_types, transaction_types,
    },
    topics,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// `level_up`.
pub const LEVEL_UP: &str = "level_up";
/// `big_win`.
pub const BIG_WIN: &str = "big_win";
/// `account_locked`.
pub const ACCOUNT_LOCKED: &str = "account_locked";
/// `payment_succeeded`.
pub const PAYMENT_SUCCEEDED: &str = "payment_succeeded";
/// `payment_failed`.
pub const PAYMENT_FAILED: &str = "payment_failed";

/// Every notification type (bounded metric label values).
pub const TYPES: [&str; 5] = [
    LEVEL_UP,
    BIG_WIN,
    ACCOUNT_LOCKED,
    PAYMENT_SUCCEEDED,
    PAYMENT_FAILED,
];

/// Payment event types on `vault.payments.v1` that become notifications.
pub mod payment_types {
    /// A deposit or withdrawal completed.
    pub const SUCCEEDED: &str = "payment.succeeded";
    /// A deposit or withdrawal failed.
    pub const FAILED: &str = "payment.failed";
}

/// Schema versions this build reads.
const SUPPORTED_VERSIONS: &[u32] = &[1];

/// A notification to store (once: `event_id` is unique).
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// The source event (idempotency key).
    pub event_id: Uuid,
    /// Whose.
    pub player_id: Uuid,
    /// One of [`TYPES`].
    pub kind: &'static str,
    /// Type-specific content.
    pub data: Value,
    /// When the source event happened.
    pub occurred_at: DateTime<Utc>,
}

/// A stored notification as the player sees it (REST and the `notification` socket event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Increasing id: the paging cursor and `auth.last_notification_id`.
    pub id: i64,
    /// One of [`TYPES`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Type-specific content.
    pub data: Value,
    /// When the source event happened.
    pub occurred_at: DateTime<Utc>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// Whether the player marked it read.
    pub read: bool,
}

/// Why an event that should become a notification cannot be read (the consumer dead-letters it).
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// The envelope or its data is malformed.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// A player event without a player.
    #[error("{0} without player_id")]
    NoPlayer(String),
    /// Payment data that is not a JSON object.
    #[error("{0} data is not an object")]
    NotAnObject(String),
}

/// The notification `event` (read from `topic`) gives, if any.
pub fn from_event(
    topic: &str,
    event: Envelope<Value>,
    big_win_eur: Decimal,
) -> Result<Option<NewNotification>, NotificationError> {
    let (kind, event_type) = match (topic, event.event_type.as_str()) {
        (topics::CONCIERGE_REWARDS, reward_types::LEVEL_UP) => (LEVEL_UP, reward_types::LEVEL_UP),
        (topics::VAULT_TRANSACTIONS, transaction_types::BET_WON) => {
            (BIG_WIN, transaction_types::BET_WON)
        }
        (topics::VAULT_PLAYERS, player_types::LOCKED) => (ACCOUNT_LOCKED, player_types::LOCKED),
        (topics::VAULT_PAYMENTS, payment_types::SUCCEEDED) => {
            (PAYMENT_SUCCEEDED, payment_types::SUCCEEDED)
        }
        (topics::VAULT_PAYMENTS, payment_types::FAILED) => (PAYMENT_FAILED, payment_types::FAILED),
        _ => return Ok(None),
    };
    let player_id = event
        .player_id
        .ok_or_else(|| NotificationError::NoPlayer(event_type.to_owned()))?;
    let (event_id, occurred_at) = (event.event_id, event.occurred_at);
    let data = match kind {
        LEVEL_UP => {
            let level = event.into_typed::<LevelUp>(SUPPORTED_VERSIONS)?.data;
            json!({ "from": level.from, "to": level.to, "name": level.name })
        }
        BIG_WIN => {
            let win = event.into_typed::<TransferEvent>(SUPPORTED_VERSIONS)?.data;
            if win.amount_eur < big_win_eur {
                return Ok(None);
            }
            json!({
                "transfer_id": win.transfer_id,
                "amount": win.amount,
                "currency": win.currency,
                "amount_eur": win.amount_eur,
                "game_id": win.game_id,
                "round_id": win.round_id,
                "provider": win.provider,
            })
        }
        ACCOUNT_LOCKED => {
            let lock = event
                .into_typed::<PlayerLockChanged>(SUPPORTED_VERSIONS)?
                .data;
            // `by` may be a staff id: not for the player's eyes.
            json!({ "reason": lock.reason })
        }
        _ => {
            if !SUPPORTED_VERSIONS.contains(&event.schema_version) {
                return Err(EnvelopeError::UnsupportedSchemaVersion {
                    event_type: event.event_type,
                    schema_version: event.schema_version,
                }
                .into());
            }
            if !event.data.is_object() {
                return Err(NotificationError::NotAnObject(event_type.to_owned()));
            }
            event.data
        }
    };
    Ok(Some(NewNotification {
        event_id,
        player_id,
        kind,
        data,
        occurred_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use casino_events::payloads::TransferKind;

    fn win(amount_eur: &str) -> Envelope<Value> {
        let data = TransferEvent {
            transfer_id: Uuid::now_v7(),
            kind: TransferKind::Win,
            currency: "USD".into(),
            amount: 60_000,
            delta: 60_000,
            balance_after: 61_000,
            amount_eur: amount_eur.parse().unwrap(),
            provider: Some("acme".into()),
            round_id: Some("r-1".into()),
            game_id: Some("book-of-rust".into()),
            game_category: None,
            reference_transfer_id: None,
            round_closed: true,
        };
        Envelope::new(
            transaction_types::BET_WON,
            "vault",
            Some(Uuid::now_v7()),
            serde_json::to_value(data).unwrap(),
        )
    }

    #[test]
    fn a_win_at_or_above_the_threshold_is_a_big_win() {
        let threshold = Decimal::from(500);
        let event = win("500.00");
        let n = from_event(topics::VAULT_TRANSACTIONS, event.clone(), threshold)
            .unwrap()
            .unwrap();
        assert_eq!(n.kind, BIG_WIN);
        assert_eq!(n.event_id, event.event_id);
        assert_eq!(n.player_id, event.player_id.unwrap());
        assert_eq!(n.data["amount_eur"], "500.00");
        assert_eq!(n.data["currency"], "USD");
        assert_eq!(n.data["amount"], 60_000);
        assert!(
            from_event(topics::VAULT_TRANSACTIONS, win("499.99"), threshold)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bets_and_unknown_events_are_not_notifications() {
        let mut bet = win("9000");
        bet.event_type = transaction_types::BET_PLACED.into();
        assert!(
            from_event(topics::VAULT_TRANSACTIONS, bet, Decimal::ONE)
                .unwrap()
                .is_none()
        );
        let other = Envelope::new(
            "player.registered",
            "vault",
            Some(Uuid::now_v7()),
            json!({}),
        );
        assert!(
            from_event(topics::VAULT_PLAYERS, other, Decimal::ONE)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn level_ups_locks_and_payments_become_notifications() {
        let level = Envelope::new(
            reward_types::LEVEL_UP,
            "concierge",
            Some(Uuid::now_v7()),
            json!({"from": 1, "to": 2, "name": "Silver"}),
        );
        let n = from_event(topics::CONCIERGE_REWARDS, level, Decimal::ONE)
            .unwrap()
            .unwrap();
        assert_eq!(
            (n.kind, n.data.clone()),
            (LEVEL_UP, json!({"from": 1, "to": 2, "name": "Silver"}))
        );

        let lock = Envelope::new(
            player_types::LOCKED,
            "vault",
            Some(Uuid::now_v7()),
            json!({"reason": "rollback abuse", "by": "policy"}),
        );
        let n = from_event(topics::VAULT_PLAYERS, lock, Decimal::ONE)
            .unwrap()
            .unwrap();
        assert_eq!(
            (n.kind, n.data.clone()),
            (ACCOUNT_LOCKED, json!({"reason": "rollback abuse"}))
        );

        let paid = Envelope::new(
            payment_types::SUCCEEDED,
            "vault",
            Some(Uuid::now_v7()),
            json!({"payment_id": "p-1", "amount": 1000, "currency": "EUR"}),
        );
        let n = from_event(topics::VAULT_PAYMENTS, paid, Decimal::ONE)
            .unwrap()
            .unwrap();
        assert_eq!(n.kind, PAYMENT_SUCCEEDED);
        assert_eq!(n.data["payment_id"], "p-1");
    }

    #[test]
    fn malformed_notification_events_are_errors_naming_the_problem() {
        let level = Envelope::new(
            reward_types::LEVEL_UP,
            "concierge",
            Some(Uuid::now_v7()),
            json!({"to": "x"}),
        );
        let err = from_event(topics::CONCIERGE_REWARDS, level, Decimal::ONE).unwrap_err();
        assert!(
            err.to_string().contains("malformed data for level.up"),
            "{err}"
        );
        let orphan = Envelope::new(
            player_types::LOCKED,
            "vault",
            None,
            json!({"reason": "x", "by": "policy"}),
        );
        let err = from_event(topics::VAULT_PLAYERS, orphan, Decimal::ONE).unwrap_err();
        assert_eq!(err.to_string(), "player.locked without player_id");
    }
}

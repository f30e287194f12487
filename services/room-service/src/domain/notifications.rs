//! Which events become persisted notifications, and what a notification looks like on the wire.
//!
//! | source topic | event type | notification type | `data` |
//! |---|---|---|---|
//! | `concierge.rewards.v1` | `level.up` | `level_up` | `{from, to, name}` |
//! | `vault.transactions.v1` | `bet.won` with `amount_eur >= ROOM_SERVICE_BIG_WIN_EUR` | `big_win` | `{transfer_id, amount, currency, amount_eur, game_id, round_id, provider}` |
//! | `vault.players.v1` | `player.locked` | `account_locked` | `{reason}` |
//! | `vault.payments.v1` | `payment.succeeded` | `payment_succeeded` | `{payment_id, direction, currency, amount}` ([`PaymentNotice`]) |
//! | `vault.payments.v1` | `payment.failed` | `payment_failed` | `{payment_id, direction, currency, amount, reason}` ([`PaymentNotice`]) |

use casino_events::{
    Envelope, EnvelopeError,
    payloads::{
        LevelUp, PaymentEvent, PlayerLockChanged, TransferEvent, payment_types, player_types,
        reward_types, transaction_types,
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

/// `data` of `payment_succeeded` and `payment_failed`: what the player needs to recognise the payment.
/// Vault's internal fields (provider, EUR value, review flags) stay out of the player's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentNotice {
    /// Vault's payment id.
    pub payment_id: Uuid,
    /// `deposit` or `withdrawal`.
    pub direction: String,
    /// Currency code.
    pub currency: String,
    /// Minor units of the currency.
    pub amount: i64,
    /// Why it failed (`payment_failed` only; Vault's reason, or `unknown`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Directions Vault publishes.
const DIRECTIONS: [&str; 2] = ["deposit", "withdrawal"];

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
    /// Payment data with values out of range.
    #[error("{event_type} data: {problem}")]
    Invalid {
        /// The event type.
        event_type: String,
        /// What is wrong.
        problem: String,
    },
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
            let payment = event.into_typed::<PaymentEvent>(SUPPORTED_VERSIONS)?.data;
            let notice =
                payment_notice(kind, payment).map_err(|problem| NotificationError::Invalid {
                    event_type: event_type.to_owned(),
                    problem,
                })?;
            serde_json::to_value(notice).expect("a payment notice serialises")
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

/// The notice of a payment event (`kind`: [`PAYMENT_SUCCEEDED`] or [`PAYMENT_FAILED`]).
fn payment_notice(kind: &str, payment: PaymentEvent) -> Result<PaymentNotice, String> {
    if !DIRECTIONS.contains(&payment.direction.as_str()) {
        return Err(format!("unknown direction {:?}", payment.direction));
    }
    if payment.amount <= 0 {
        return Err(format!("amount must be positive, got {}", payment.amount));
    }
    if payment.currency.is_empty() || payment.currency.len() > 8 {
        return Err(format!("bad currency {:?}", payment.currency));
    }
    let reason = (kind == PAYMENT_FAILED).then(|| {
        payment
            .reason
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    });
    Ok(PaymentNotice {
        payment_id: payment.payment_id,
        direction: payment.direction,
        currency: payment.currency,
        amount: payment.amount,
        reason,
    })
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
    fn level_ups_and_locks_become_notifications() {
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
    }

    fn payment(event_type: &str, direction: &str, reason: Option<&str>) -> Envelope<Value> {
        let data = PaymentEvent {
            payment_id: Uuid::now_v7(),
            direction: direction.into(),
            status: if event_type == payment_types::FAILED {
                "failed".into()
            } else {
                "succeeded".into()
            },
            currency: "EUR".into(),
            amount: 2_500,
            amount_eur: Decimal::new(2_500, 2),
            provider: "sandbox".into(),
            reason: reason.map(str::to_owned),
            flagged: false,
        };
        Envelope::new(
            event_type,
            "vault",
            Some(Uuid::now_v7()),
            serde_json::to_value(data).unwrap(),
        )
    }

    #[test]
    fn succeeded_and_failed_payments_become_typed_notifications() {
        let paid = payment(payment_types::SUCCEEDED, "deposit", None);
        let id = paid.data["payment_id"].clone();
        let n = from_event(topics::VAULT_PAYMENTS, paid, Decimal::ONE)
            .unwrap()
            .unwrap();
        assert_eq!(n.kind, PAYMENT_SUCCEEDED);
        assert_eq!(
            n.data,
            json!({"payment_id": id, "direction": "deposit", "currency": "EUR", "amount": 2_500})
        );

        let failed = payment(payment_types::FAILED, "withdrawal", Some("card_declined"));
        let id = failed.data["payment_id"].clone();
        let n = from_event(topics::VAULT_PAYMENTS, failed, Decimal::ONE)
            .unwrap()
            .unwrap();
        assert_eq!(n.kind, PAYMENT_FAILED);
        assert_eq!(
            n.data,
            json!({"payment_id": id, "direction": "withdrawal", "currency": "EUR", "amount": 2_500,
                   "reason": "card_declined"})
        );
        let typed: PaymentNotice = serde_json::from_value(n.data).unwrap();
        assert_eq!(typed.reason.as_deref(), Some("card_declined"));

        let no_reason = payment(payment_types::FAILED, "deposit", None);
        let n = from_event(topics::VAULT_PAYMENTS, no_reason, Decimal::ONE)
            .unwrap()
            .unwrap();
        assert_eq!(n.data["reason"], "unknown");
    }

    #[test]
    fn other_payment_events_are_not_notifications() {
        for event_type in [
            payment_types::PENDING,
            payment_types::EXPIRED,
            payment_types::IN_REVIEW,
            payment_types::REVERSED,
        ] {
            let event = payment(event_type, "deposit", None);
            assert!(
                from_event(topics::VAULT_PAYMENTS, event, Decimal::ONE)
                    .unwrap()
                    .is_none(),
                "{event_type}"
            );
        }
    }

    #[test]
    fn malformed_payment_events_are_errors_naming_the_problem() {
        let mut untyped = payment(payment_types::SUCCEEDED, "deposit", None);
        untyped.data = json!({"payment_id": "p-1", "amount": 1000, "currency": "EUR"});
        let err = from_event(topics::VAULT_PAYMENTS, untyped, Decimal::ONE).unwrap_err();
        assert!(
            err.to_string()
                .contains("malformed data for payment.succeeded"),
            "{err}"
        );
        let sideways = payment(payment_types::SUCCEEDED, "sideways", None);
        let err = from_event(topics::VAULT_PAYMENTS, sideways, Decimal::ONE).unwrap_err();
        assert_eq!(
            err.to_string(),
            "payment.succeeded data: unknown direction \"sideways\""
        );
        let mut negative = payment(payment_types::FAILED, "deposit", None);
        negative.data["amount"] = json!(-5);
        let err = from_event(topics::VAULT_PAYMENTS, negative, Decimal::ONE).unwrap_err();
        assert!(err.to_string().contains("amount must be positive"), "{err}");
        let mut future = payment(payment_types::SUCCEEDED, "deposit", None);
        future.schema_version = 2;
        assert!(from_event(topics::VAULT_PAYMENTS, future, Decimal::ONE).is_err());
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

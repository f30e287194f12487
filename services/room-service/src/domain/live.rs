//! Payloads of the live pushes (`balance.updated`, `level.up`, `account.locked`, `account.unlocked`) and
//! the socket.io room names.

use casino_events::payloads::TransferEvent;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// The room every socket of a player joins.
pub fn player_room(player_id: Uuid) -> String {
    format!("player:{player_id}")
}

/// The socket.io room of a chat room (`chat:lobby`, `chat:game:42`), kept apart from player rooms.
pub fn chat_room(room: &str) -> String {
    format!("chat:{room}")
}

/// `balance.updated`: one committed transfer as the player's wallet sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BalanceUpdated {
    /// Currency code.
    pub currency: String,
    /// Balance after the transfer, minor units.
    pub balance: i64,
    /// Signed change, minor units.
    pub delta: i64,
    /// The transfer kind (`bet`, `win`, `rollback`, `deposit`, ...).
    pub reason: &'static str,
    /// The transfer's id.
    pub transfer_id: Uuid,
    /// When Vault committed it.
    #[serde(serialize_with = "super::rfc3339_millis")]
    pub at: DateTime<Utc>,
}

impl BalanceUpdated {
    /// From a `vault.transactions.v1` event.
    pub fn from_transfer(transfer: &TransferEvent, occurred_at: DateTime<Utc>) -> Self {
        Self {
            currency: transfer.currency.clone(),
            balance: transfer.balance_after,
            delta: transfer.delta,
            reason: transfer.kind.as_str(),
            transfer_id: transfer.transfer_id,
            at: occurred_at,
        }
    }
}

/// `account.locked` / `account.unlocked`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountStatus {
    /// Why.
    pub reason: String,
    /// When.
    #[serde(serialize_with = "super::rfc3339_millis")]
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use casino_events::payloads::TransferKind;
    use rust_decimal::Decimal;

    #[test]
    fn a_bet_becomes_a_balance_update_with_the_kind_as_reason() {
        let transfer = TransferEvent {
            transfer_id: Uuid::now_v7(),
            kind: TransferKind::Bet,
            currency: "EUR".into(),
            amount: 250,
            delta: -250,
            balance_after: 750,
            amount_eur: Decimal::new(250, 2),
            provider: None,
            round_id: None,
            game_id: None,
            game_category: None,
            reference_transfer_id: None,
            round_closed: false,
        };
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z")
            .unwrap()
            .to_utc();
        let json = serde_json::to_value(BalanceUpdated::from_transfer(&transfer, at)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "currency": "EUR", "balance": 750, "delta": -250, "reason": "bet",
                "transfer_id": transfer.transfer_id, "at": "2026-01-02T03:04:05.678Z"
            })
        );
    }

    #[test]
    fn room_names_do_not_collide() {
        let id = Uuid::now_v7();
        assert_eq!(player_room(id), format!("player:{id}"));
        assert_eq!(chat_room("lobby"), "chat:lobby");
        assert_eq!(chat_room("game:7"), "chat:game:7");
    }
}

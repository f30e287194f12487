//! Typed `data` of each event type. Producers serialise these; consumers parse with
//! [`crate::Envelope::into_typed`]. Adding an optional field is compatible; anything else is a new
//! `schema_version`.
//!
//! Amounts are integers in the currency's minor units; EUR equivalents are decimals (as strings on the wire,
//! so no float ever touches money).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Event types on `vault.transactions.v1`.
pub mod transaction_types {
    /// A bet debited the player.
    pub const BET_PLACED: &str = "bet.placed";
    /// A win credited the player.
    pub const BET_WON: &str = "bet.won";
    /// A bet was rolled back (the player got the stake back).
    pub const BET_ROLLED_BACK: &str = "bet.rolled_back";
    /// Any other credit (deposit, bonus, jackpot payout, withdrawal reversal, positive adjustment).
    pub const WALLET_CREDITED: &str = "wallet.credited";
    /// Any other debit (withdrawal hold, negative adjustment).
    pub const WALLET_DEBITED: &str = "wallet.debited";
}

/// Event types on `vault.players.v1`.
pub mod player_types {
    /// A player registered.
    pub const REGISTERED: &str = "player.registered";
    /// A player was locked (no bets, no withdrawals).
    pub const LOCKED: &str = "player.locked";
    /// A player was unlocked.
    pub const UNLOCKED: &str = "player.unlocked";
}

/// Event types on `vault.payments.v1`.
pub mod payment_types {
    /// A payment was created and waits for the provider.
    pub const PENDING: &str = "payment.pending";
    /// Money moved (deposit credited, payout confirmed).
    pub const SUCCEEDED: &str = "payment.succeeded";
    /// The provider refused or failed it.
    pub const FAILED: &str = "payment.failed";
    /// A deposit got no result in time.
    pub const EXPIRED: &str = "payment.expired";
    /// A withdrawal waits for staff review.
    pub const IN_REVIEW: &str = "withdrawal.in_review";
    /// A withdrawal's hold went back to the player (payout failed or staff rejected it).
    pub const REVERSED: &str = "withdrawal.reversed";
}

/// `data` of every event on `vault.payments.v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentEvent {
    /// Vault's payment id.
    pub payment_id: Uuid,
    /// `deposit` or `withdrawal`.
    pub direction: String,
    /// New status (`pending`, `review`, `succeeded`, `failed`, `expired`, `reversed`, `rejected`).
    pub status: String,
    /// Currency code.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// EUR value.
    pub amount_eur: Decimal,
    /// Payment provider.
    pub provider: String,
    /// Why (failures, rejections).
    #[serde(default)]
    pub reason: Option<String>,
    /// Set on unusual outcomes that need a look (a success after expiry).
    #[serde(default)]
    pub flagged: bool,
}

/// Event types on `concierge.rewards.v1`.
pub mod reward_types {
    /// A player reached a higher level.
    pub const LEVEL_UP: &str = "level.up";
}

/// Event types on `room.chat.v1`.
pub mod chat_types {
    /// A chat message was accepted.
    pub const MESSAGE_SENT: &str = "chat.message";
    /// Staff deleted a chat message.
    pub const MESSAGE_DELETED: &str = "chat.message_deleted";
}

/// Ledger transfer kinds (blueprint §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// Player stakes money on a round.
    Bet,
    /// Player wins money in a round.
    Win,
    /// A bet is reversed.
    Rollback,
    /// Money arrives from a payment provider.
    Deposit,
    /// Money is held for a payout.
    Withdrawal,
    /// A failed payout returns the hold.
    WithdrawalReversal,
    /// A bonus credit.
    Bonus,
    /// A jackpot payout.
    JackpotPayout,
    /// A staff correction.
    Adjustment,
}

impl TransferKind {
    /// The kind's name (database value, metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::Bet => "bet",
            TransferKind::Win => "win",
            TransferKind::Rollback => "rollback",
            TransferKind::Deposit => "deposit",
            TransferKind::Withdrawal => "withdrawal",
            TransferKind::WithdrawalReversal => "withdrawal_reversal",
            TransferKind::Bonus => "bonus",
            TransferKind::JackpotPayout => "jackpot_payout",
            TransferKind::Adjustment => "adjustment",
        }
    }

    /// Every kind.
    pub const ALL: [TransferKind; 9] = [
        TransferKind::Bet,
        TransferKind::Win,
        TransferKind::Rollback,
        TransferKind::Deposit,
        TransferKind::Withdrawal,
        TransferKind::WithdrawalReversal,
        TransferKind::Bonus,
        TransferKind::JackpotPayout,
        TransferKind::Adjustment,
    ];
}

impl std::str::FromStr for TransferKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TransferKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown transfer kind {s:?}"))
    }
}

/// Game categories (reward rates differ per category).
pub mod game_categories {
    /// Slot machines.
    pub const SLOTS: &str = "slots";
    /// Table games (blackjack, roulette...).
    pub const TABLE: &str = "table";
    /// Live-dealer games.
    pub const LIVE: &str = "live";
}

/// `data` of every event on `vault.transactions.v1`: one committed transfer as the player sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferEvent {
    /// The transfer's id (unique; a rollback names the bet in `reference_transfer_id`).
    pub transfer_id: Uuid,
    /// Its kind.
    pub kind: TransferKind,
    /// ISO-4217-style code (`EUR`, `BTC`).
    pub currency: String,
    /// Amount moved, minor units, always positive.
    pub amount: i64,
    /// Signed change of the player's balance (negative for bets and withdrawals).
    pub delta: i64,
    /// The player's balance in this currency after the transfer, minor units.
    pub balance_after: i64,
    /// EUR value of `amount` at the rate used by Vault (reporting currency).
    pub amount_eur: Decimal,
    /// Game provider, for game transfers.
    #[serde(default)]
    pub provider: Option<String>,
    /// Provider's round id, for game transfers.
    #[serde(default)]
    pub round_id: Option<String>,
    /// Game id, for game transfers.
    #[serde(default)]
    pub game_id: Option<String>,
    /// Game category (`slots`, `table`, `live`, or other), for game transfers.
    #[serde(default)]
    pub game_category: Option<String>,
    /// The transfer this one compensates (a rollback's bet).
    #[serde(default)]
    pub reference_transfer_id: Option<Uuid>,
    /// A win that closed its round.
    #[serde(default)]
    pub round_closed: bool,
}

/// `data` of `player.registered`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerRegistered {
    /// The player's preferred currency.
    pub currency: String,
}

/// `data` of `player.locked` and `player.unlocked`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerLockChanged {
    /// Why (the abuse policy or the staff member's reason).
    pub reason: String,
    /// Who did it: `policy` or a staff id.
    pub by: String,
}

/// `data` of `level.up`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelUp {
    /// Previous level number (0 = the first tier).
    pub from: u32,
    /// New level number.
    pub to: u32,
    /// New level's name.
    pub name: String,
}

/// `data` of `chat.message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Message id.
    pub message_id: Uuid,
    /// `lobby` or `game:{id}`.
    pub room: String,
    /// Author.
    pub player_id: Uuid,
    /// Text (1-500 characters after trimming).
    pub text: String,
    /// The sender's idempotency id.
    pub client_msg_id: String,
}

/// `data` of `chat.message_deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessageDeleted {
    /// Message id.
    pub message_id: Uuid,
    /// Room it was in.
    pub room: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Envelope;

    #[test]
    fn a_transfer_event_round_trips_with_the_eur_amount_as_a_string() {
        let data = TransferEvent {
            transfer_id: Uuid::now_v7(),
            kind: TransferKind::Bet,
            currency: "EUR".into(),
            amount: 250,
            delta: -250,
            balance_after: 750,
            amount_eur: Decimal::new(250, 2),
            provider: Some("acme".into()),
            round_id: Some("r-1".into()),
            game_id: Some("book-of-rust".into()),
            game_category: Some(game_categories::SLOTS.into()),
            reference_transfer_id: None,
            round_closed: false,
        };
        let event = Envelope::new(
            transaction_types::BET_PLACED,
            "vault",
            Some(Uuid::now_v7()),
            data,
        );
        let wire: serde_json::Value = serde_json::from_slice(&event.to_vec()).unwrap();
        assert_eq!(wire["data"]["amount_eur"], "2.50");
        assert_eq!(wire["data"]["kind"], "bet");
        let back = Envelope::from_slice(&event.to_vec())
            .unwrap()
            .into_typed::<TransferEvent>(&[1])
            .unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn transfer_kinds_parse_from_their_names() {
        for kind in TransferKind::ALL {
            assert_eq!(kind.as_str().parse::<TransferKind>().unwrap(), kind);
        }
        assert!("refund".parse::<TransferKind>().is_err());
    }
}

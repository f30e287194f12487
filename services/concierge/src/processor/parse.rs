//! Turning a Kafka message into something to apply, to ignore, or to refuse (DLQ) with a reason.

use casino_events::{
    Envelope,
    payloads::{
        PlayerLockChanged, PlayerRegistered, TransferEvent, TransferKind, player_types,
        transaction_types,
    },
};
use casino_messaging::Incoming;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::domain::money::EurAmount;

/// Schema versions of `data` this build understands.
pub const SUPPORTED_VERSIONS: &[u32] = &[1];

/// Largest `amount_eur` accepted for one transfer (anything above is a producer bug, not a bet).
/// One trillion EUR (`0xE8_D4A5_1000`).
pub const MAX_AMOUNT_EUR: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);

/// The topics Concierge reads.
#[derive(Debug, Clone)]
pub struct Topics {
    /// `vault.transactions.v1`.
    pub transactions: String,
    /// `vault.players.v1`.
    pub players: String,
}

/// The `event_type` label of an event (bounded: unknown types are `other`).
pub fn event_type_label(event_type: &str) -> &'static str {
    match event_type {
        transaction_types::BET_PLACED => transaction_types::BET_PLACED,
        transaction_types::BET_WON => transaction_types::BET_WON,
        transaction_types::BET_ROLLED_BACK => transaction_types::BET_ROLLED_BACK,
        transaction_types::WALLET_CREDITED => transaction_types::WALLET_CREDITED,
        transaction_types::WALLET_DEBITED => transaction_types::WALLET_DEBITED,
        player_types::REGISTERED => player_types::REGISTERED,
        player_types::LOCKED => player_types::LOCKED,
        player_types::UNLOCKED => player_types::UNLOCKED,
        _ => "other",
    }
}

/// What an event asks Concierge to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A bet: award it.
    Bet {
        /// The bet's transfer id (rollbacks name it).
        transfer_id: Uuid,
        /// Stake in EUR.
        amount_eur: EurAmount,
        /// Game category, if any.
        game_category: Option<String>,
    },
    /// A win: lifetime winnings.
    Win {
        /// Amount in EUR.
        amount_eur: EurAmount,
    },
    /// A rollback: reverse the named bet's award.
    Rollback {
        /// The bet's transfer id.
        bet_transfer_id: Uuid,
    },
    /// A player registered.
    Registered {
        /// Preferred currency.
        currency: String,
    },
    /// A player was locked (`true`) or unlocked (`false`).
    Lock(bool),
}

/// An event to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Index in the batch.
    pub index: usize,
    /// Idempotency key.
    pub event_id: Uuid,
    /// `event_type` label.
    pub event_type: &'static str,
    /// The player.
    pub player_id: Uuid,
    /// When it happened (Vault's commit time of the transfer).
    pub occurred_at: DateTime<Utc>,
    /// What to do.
    pub action: Action,
}

/// The verdict on one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// Apply it.
    Apply(Event),
    /// Nothing to do (an event type Concierge does not act on).
    Ignore {
        /// `event_type` label.
        event_type: &'static str,
    },
    /// Can never be processed: DLQ with `reason`.
    Invalid {
        /// `event_type` label (`other` when not even the envelope parses).
        event_type: &'static str,
        /// Why, for the DLQ header and the log.
        reason: String,
    },
}

fn invalid(event_type: &'static str, reason: impl Into<String>) -> Classified {
    Classified::Invalid {
        event_type,
        reason: reason.into(),
    }
}

/// Decide what to do with `message` (pure: no I/O).
pub fn classify(index: usize, message: &Incoming, topics: &Topics) -> Classified {
    let envelope = match Envelope::from_slice(&message.payload) {
        Ok(envelope) => envelope,
        Err(error) => return invalid("other", error.to_string()),
    };
    let label = event_type_label(&envelope.event_type);
    if message.topic == topics.transactions {
        classify_transfer(index, envelope, label)
    } else if message.topic == topics.players {
        classify_player(index, envelope, label)
    } else {
        Classified::Ignore { event_type: label }
    }
}

fn classify_transfer(index: usize, envelope: Envelope, label: &'static str) -> Classified {
    let expected_kind = match label {
        transaction_types::BET_PLACED => TransferKind::Bet,
        transaction_types::BET_WON => TransferKind::Win,
        transaction_types::BET_ROLLED_BACK => TransferKind::Rollback,
        _ => return Classified::Ignore { event_type: label },
    };
    let envelope = match envelope.into_typed::<TransferEvent>(SUPPORTED_VERSIONS) {
        Ok(envelope) => envelope,
        Err(error) => return invalid(label, error.to_string()),
    };
    let Some(player_id) = envelope.player_id else {
        return invalid(label, format!("{label} without player_id"));
    };
    let data = envelope.data;
    if data.kind != expected_kind {
        return invalid(
            label,
            format!("{label} carries a transfer of kind {}", data.kind.as_str()),
        );
    }
    let amount_eur = match EurAmount::try_from(data.amount_eur) {
        Ok(amount) if amount.get() <= MAX_AMOUNT_EUR => amount,
        Ok(amount) => return invalid(label, format!("amount_eur {amount} is out of range")),
        Err(error) => return invalid(label, error.to_string()),
    };
    if data.amount < 0 {
        return invalid(label, format!("negative amount {}", data.amount));
    }
    let action = match expected_kind {
        TransferKind::Bet => Action::Bet {
            transfer_id: data.transfer_id,
            amount_eur,
            game_category: data.game_category,
        },
        TransferKind::Win => Action::Win { amount_eur },
        _ => match data.reference_transfer_id {
            Some(bet_transfer_id) => Action::Rollback { bet_transfer_id },
            None => return invalid(label, "bet.rolled_back without reference_transfer_id"),
        },
    };
    Classified::Apply(Event {
        index,
        event_id: envelope.event_id,
        event_type: label,
        player_id,
        occurred_at: envelope.occurred_at,
        action,
    })
}

fn classify_player(index: usize, envelope: Envelope, label: &'static str) -> Classified {
    let action = match label {
        player_types::REGISTERED => envelope
            .clone()
            .into_typed::<PlayerRegistered>(SUPPORTED_VERSIONS)
            .map(|e| Action::Registered {
                currency: e.data.currency,
            }),
        player_types::LOCKED | player_types::UNLOCKED => envelope
            .clone()
            .into_typed::<PlayerLockChanged>(SUPPORTED_VERSIONS)
            .map(|_| Action::Lock(label == player_types::LOCKED)),
        _ => return Classified::Ignore { event_type: label },
    };
    let action = match action {
        Ok(action) => action,
        Err(error) => return invalid(label, error.to_string()),
    };
    let Some(player_id) = envelope.player_id else {
        return invalid(label, format!("{label} without player_id"));
    };
    Classified::Apply(Event {
        index,
        event_id: envelope.event_id,
        event_type: label,
        player_id,
        occurred_at: envelope.occurred_at,
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use casino_events::payloads::game_categories;
    use serde_json::json;

    fn topics() -> Topics {
        Topics {
            transactions: "vault.transactions.v1".into(),
            players: "vault.players.v1".into(),
        }
    }

    fn message(topic: &str, payload: Vec<u8>) -> Incoming {
        Incoming {
            topic: topic.into(),
            partition: 0,
            offset: 0,
            key: None,
            payload,
            headers: vec![],
            timestamp_ms: None,
        }
    }

    fn transfer(kind: TransferKind, amount_eur: &str) -> TransferEvent {
        TransferEvent {
            transfer_id: Uuid::now_v7(),
            kind,
            currency: "EUR".into(),
            amount: 1000,
            delta: -1000,
            balance_after: 0,
            amount_eur: amount_eur.parse().unwrap(),
            provider: Some("acme".into()),
            round_id: Some("r1".into()),
            game_id: Some("g1".into()),
            game_category: Some(game_categories::SLOTS.into()),
            reference_transfer_id: None,
            round_closed: false,
        }
    }

    fn tx(event_type: &str, data: impl serde::Serialize) -> Incoming {
        let envelope = Envelope::new(event_type, "vault", Some(Uuid::now_v7()), data);
        message("vault.transactions.v1", envelope.to_vec())
    }

    fn reason(classified: Classified) -> String {
        match classified {
            Classified::Invalid { reason, .. } => reason,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_bet_becomes_an_award_action() {
        let data = transfer(TransferKind::Bet, "10.00");
        let Classified::Apply(event) = classify(3, &tx("bet.placed", data.clone()), &topics())
        else {
            panic!("not applied")
        };
        assert_eq!(event.index, 3);
        assert_eq!(event.event_type, "bet.placed");
        assert_eq!(
            event.action,
            Action::Bet {
                transfer_id: data.transfer_id,
                amount_eur: "10".parse().unwrap(),
                game_category: Some("slots".into())
            }
        );
    }

    #[test]
    fn garbage_unknown_versions_negative_amounts_and_missing_fields_are_invalid() {
        let t = topics();
        assert!(
            reason(classify(
                0,
                &message(&t.transactions, b"{nope".to_vec()),
                &t
            ))
            .starts_with("malformed envelope")
        );

        let mut envelope = Envelope::new(
            "bet.placed",
            "vault",
            Some(Uuid::now_v7()),
            transfer(TransferKind::Bet, "1"),
        );
        envelope.schema_version = 2;
        assert_eq!(
            reason(classify(
                0,
                &message(&t.transactions, envelope.to_vec()),
                &t
            )),
            "unsupported schema_version 2 for bet.placed"
        );

        assert_eq!(
            reason(classify(
                0,
                &tx("bet.placed", transfer(TransferKind::Bet, "-5.00")),
                &t
            )),
            "negative amount_eur -5.00"
        );

        let mut missing = serde_json::to_value(transfer(TransferKind::Bet, "1")).unwrap();
        missing.as_object_mut().unwrap().remove("amount_eur");
        assert!(reason(classify(0, &tx("bet.placed", missing), &t)).contains("amount_eur"));

        let rollback = transfer(TransferKind::Rollback, "1");
        assert_eq!(
            reason(classify(0, &tx("bet.rolled_back", rollback), &t)),
            "bet.rolled_back without reference_transfer_id"
        );

        let anonymous = Envelope::new(
            "bet.placed",
            "vault",
            None,
            transfer(TransferKind::Bet, "1"),
        );
        assert_eq!(
            reason(classify(
                0,
                &message(&t.transactions, anonymous.to_vec()),
                &t
            )),
            "bet.placed without player_id"
        );

        assert_eq!(
            reason(classify(
                0,
                &tx("bet.placed", transfer(TransferKind::Win, "1")),
                &t
            )),
            "bet.placed carries a transfer of kind win"
        );

        assert_eq!(MAX_AMOUNT_EUR, Decimal::from(1_000_000_000_000_i64));
        let huge = transfer(TransferKind::Bet, "1000000000000.01");
        assert!(reason(classify(0, &tx("bet.placed", huge), &t)).contains("out of range"));
    }

    #[test]
    fn other_event_types_are_ignored_and_player_events_are_read() {
        let t = topics();
        assert_eq!(
            classify(0, &tx("wallet.credited", json!({"anything": 1})), &t),
            Classified::Ignore {
                event_type: "wallet.credited"
            }
        );
        assert_eq!(
            classify(0, &tx("bet.cashback", json!({})), &t),
            Classified::Ignore {
                event_type: "other"
            }
        );
        let player = Uuid::now_v7();
        let locked = Envelope::new(
            "player.locked",
            "vault",
            Some(player),
            json!({"reason": "velocity", "by": "policy"}),
        );
        let Classified::Apply(event) = classify(0, &message(&t.players, locked.to_vec()), &t)
        else {
            panic!("not applied")
        };
        assert_eq!(
            (event.player_id, event.action),
            (player, Action::Lock(true))
        );
        let bad = Envelope::new("player.registered", "vault", Some(player), json!({}));
        assert!(reason(classify(0, &message(&t.players, bad.to_vec()), &t)).contains("currency"));
    }
}

//! The contract between casino services.
//!
//! Every message on Kafka is an [`Envelope`]: a small, versioned JSON wrapper with a UUID v7 `event_id`
//! (the idempotency key of every consumer), an `event_type` such as `bet.placed`, the `schema_version` of
//! `data`, the time it happened, the producing service and the player it concerns (also the Kafka key, so
//! one player's events stay ordered).
//!
//! - [`topics`]: the topic names, shared by producers, consumers, Terraform and tests.
//! - [`payloads`]: the typed `data` of each event type.
//! - [`Envelope`]: build with [`Envelope::new`], parse with [`Envelope::from_slice`], which returns an
//!   [`EnvelopeError`] saying exactly what is wrong (the reason ends up in the DLQ header).

pub mod payloads;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

/// Kafka topic names (blueprint §5). Keys are player ids.
pub mod topics {
    /// Every committed ledger transfer (`bet.placed`, `bet.won`, `bet.rolled_back`, `wallet.credited`, ...).
    pub const VAULT_TRANSACTIONS: &str = "vault.transactions.v1";
    /// Player lifecycle (`player.registered`, `player.locked`, ...).
    pub const VAULT_PLAYERS: &str = "vault.players.v1";
    /// Deposit and withdrawal lifecycle.
    pub const VAULT_PAYMENTS: &str = "vault.payments.v1";
    /// Points, level-ups, promotions, jackpots.
    pub const CONCIERGE_REWARDS: &str = "concierge.rewards.v1";
    /// Chat messages fanned out across Room-Service tasks.
    pub const ROOM_CHAT: &str = "room.chat.v1";

    /// Every topic of the platform, in the order they are created.
    pub const ALL: [&str; 5] = [
        VAULT_TRANSACTIONS,
        VAULT_PLAYERS,
        VAULT_PAYMENTS,
        CONCIERGE_REWARDS,
        ROOM_CHAT,
    ];

    /// The dead-letter topic of `topic`.
    pub fn dlq(topic: &str) -> String {
        format!("{topic}.dlq")
    }
}

/// The schema version this build writes for every event type.
pub const CURRENT_SCHEMA_VERSION: u32 = 1;

/// A message on the bus. `T` is the typed payload; use `serde_json::Value` when the type is not known yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<T = serde_json::Value> {
    /// UUID v7: unique, time-ordered; consumers deduplicate on it.
    pub event_id: Uuid,
    /// Dotted name such as `bet.placed`.
    pub event_type: String,
    /// Version of the `data` schema for this `event_type`.
    pub schema_version: u32,
    /// When the fact happened (RFC 3339 with milliseconds on the wire).
    #[serde(with = "rfc3339_millis")]
    pub occurred_at: DateTime<Utc>,
    /// Service that produced the event (`vault`, `concierge`, `room-service`).
    pub producer: String,
    /// The player the event concerns; also the Kafka key.
    pub player_id: Option<Uuid>,
    /// The payload.
    pub data: T,
}

/// Why a message could not be read as an event. The `Display` text is what goes into the DLQ header.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Not JSON, or missing/ill-typed envelope fields.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// The envelope is fine but `data` does not match the payload type.
    #[error("malformed data for {event_type} v{schema_version}: {reason}")]
    MalformedData {
        /// Event type of the message.
        event_type: String,
        /// Schema version of the message.
        schema_version: u32,
        /// What serde said.
        reason: String,
    },
    /// A schema version this build does not understand.
    #[error("unsupported schema_version {schema_version} for {event_type}")]
    UnsupportedSchemaVersion {
        /// Event type of the message.
        event_type: String,
        /// Schema version found.
        schema_version: u32,
    },
}

impl<T> Envelope<T> {
    /// A new event happening now, with a fresh UUID v7 and the current schema version.
    pub fn new(
        event_type: impl Into<String>,
        producer: impl Into<String>,
        player_id: Option<Uuid>,
        data: T,
    ) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: CURRENT_SCHEMA_VERSION,
            // Truncate to milliseconds so a round trip through JSON is lossless.
            occurred_at: truncate_millis(Utc::now()),
            producer: producer.into(),
            player_id,
            data,
        }
    }

    /// The Kafka key: the player id, or the event id for events that concern no player.
    pub fn key(&self) -> String {
        self.player_id.unwrap_or(self.event_id).to_string()
    }
}

impl<T: Serialize> Envelope<T> {
    /// JSON bytes for the wire.
    pub fn to_vec(&self) -> Vec<u8> {
        // Serialising our own types to JSON cannot fail (string keys, no non-finite floats).
        serde_json::to_vec(self).expect("envelope serialises to JSON")
    }
}

impl Envelope<serde_json::Value> {
    /// Parse the envelope, leaving `data` untyped.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Malformed(e.to_string()))
    }

    /// Check the schema version and parse `data` as `T`.
    pub fn into_typed<T: DeserializeOwned>(
        self,
        supported_versions: &[u32],
    ) -> Result<Envelope<T>, EnvelopeError> {
        if !supported_versions.contains(&self.schema_version) {
            return Err(EnvelopeError::UnsupportedSchemaVersion {
                event_type: self.event_type,
                schema_version: self.schema_version,
            });
        }
        let data = serde_json::from_value(self.data).map_err(|e| EnvelopeError::MalformedData {
            event_type: self.event_type.clone(),
            schema_version: self.schema_version,
            reason: e.to_string(),
        })?;
        Ok(Envelope {
            event_id: self.event_id,
            event_type: self.event_type,
            schema_version: self.schema_version,
            occurred_at: self.occurred_at,
            producer: self.producer,
            player_id: self.player_id,
            data,
        })
    }
}

fn truncate_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

mod rfc3339_millis {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct BetPlaced {
        amount: i64,
        currency: String,
    }

    fn sample() -> Envelope<BetPlaced> {
        Envelope::new(
            "bet.placed",
            "vault",
            Some(Uuid::now_v7()),
            BetPlaced {
                amount: 150,
                currency: "EUR".into(),
            },
        )
    }

    #[test]
    fn an_envelope_survives_a_json_round_trip_unchanged() {
        let event = sample();
        let parsed = Envelope::from_slice(&event.to_vec())
            .unwrap()
            .into_typed::<BetPlaced>(&[1])
            .unwrap();
        assert_eq!(parsed, event);
    }

    #[test]
    fn the_wire_format_has_exactly_the_blueprint_fields() {
        let value: serde_json::Value = serde_json::from_slice(&sample().to_vec()).unwrap();
        let mut keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "data",
                "event_id",
                "event_type",
                "occurred_at",
                "player_id",
                "producer",
                "schema_version"
            ]
        );
        let occurred_at = value["occurred_at"].as_str().unwrap();
        // RFC 3339 with millisecond precision and a Z offset, e.g. 2026-11-21T18:40:25.123Z
        assert_eq!(occurred_at.len(), 24, "{occurred_at}");
        assert!(occurred_at.ends_with('Z'));
    }

    #[test]
    fn event_ids_are_uuid_v7_and_time_ordered() {
        let a = sample();
        let b = sample();
        assert_eq!(a.event_id.get_version_num(), 7);
        assert!(a.event_id < b.event_id);
    }

    #[test]
    fn the_key_is_the_player_id() {
        let event = sample();
        assert_eq!(event.key(), event.player_id.unwrap().to_string());
    }

    #[test]
    fn garbage_is_reported_as_malformed() {
        let err = Envelope::from_slice(b"{not json").unwrap_err();
        assert!(matches!(err, EnvelopeError::Malformed(_)), "{err}");
    }

    #[test]
    fn a_missing_envelope_field_is_named_in_the_error() {
        let bytes = serde_json::to_vec(&json!({
            "event_id": Uuid::now_v7(), "event_type": "bet.placed", "schema_version": 1,
            "producer": "vault", "player_id": null, "data": {}
        }))
        .unwrap();
        let err = Envelope::from_slice(&bytes).unwrap_err();
        assert!(err.to_string().contains("occurred_at"), "{err}");
    }

    #[test]
    fn an_unknown_schema_version_is_refused() {
        let mut event = sample();
        event.schema_version = 9;
        let err = Envelope::from_slice(&event.to_vec())
            .unwrap()
            .into_typed::<BetPlaced>(&[1])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported schema_version 9 for bet.placed"
        );
    }

    #[test]
    fn data_of_the_wrong_shape_is_reported_with_the_event_type() {
        let event = Envelope::new("bet.placed", "vault", None, json!({"amount": "lots"}));
        let err = Envelope::from_slice(&event.to_vec())
            .unwrap()
            .into_typed::<BetPlaced>(&[1])
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("malformed data for bet.placed v1"),
            "{err}"
        );
    }

    #[test]
    fn dlq_topics_are_suffixed() {
        assert_eq!(
            topics::dlq(topics::VAULT_TRANSACTIONS),
            "vault.transactions.v1.dlq"
        );
    }
}

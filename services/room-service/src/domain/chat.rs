//! Chat rules: room names, message text, client message ids, and the refusal codes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// The lobby.
pub const LOBBY: &str = "lobby";

/// Why a chat request was refused. [`ChatRefusal::code`] is the `error` of the ack and the metric outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatRefusal {
    /// Nothing left after trimming.
    Empty,
    /// Longer than the limit after trimming.
    TooLong {
        /// The limit, in characters.
        max_chars: usize,
    },
    /// Not `lobby` nor `game:{id}`.
    InvalidRoom,
    /// `chat.send` to a room the socket has not joined.
    NotJoined,
    /// The socket is in too many rooms already.
    TooManyRooms,
    /// The request is not the documented shape.
    Invalid(&'static str),
    /// The player is muted.
    Muted {
        /// Until when.
        until: DateTime<Utc>,
    },
    /// More than the allowed messages in the window.
    RateLimited {
        /// When the next message would be accepted, roughly.
        retry_after_ms: u64,
    },
    /// The database or Kafka is unavailable; retry with the same `client_msg_id`.
    Unavailable,
}

impl ChatRefusal {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ChatRefusal::Empty => "empty",
            ChatRefusal::TooLong { .. } => "too_long",
            ChatRefusal::InvalidRoom => "invalid_room",
            ChatRefusal::NotJoined => "not_joined",
            ChatRefusal::TooManyRooms => "too_many_rooms",
            ChatRefusal::Invalid(_) => "invalid",
            ChatRefusal::Muted { .. } => "muted",
            ChatRefusal::RateLimited { .. } => "rate_limited",
            ChatRefusal::Unavailable => "unavailable",
        }
    }

    /// For humans.
    pub fn message(&self) -> String {
        match self {
            ChatRefusal::Empty => "the message is empty".into(),
            ChatRefusal::TooLong { max_chars } => {
                format!("the message is longer than {max_chars} characters")
            }
            ChatRefusal::InvalidRoom => "rooms are `lobby` or `game:{id}`".into(),
            ChatRefusal::NotJoined => "join the room with chat.join first".into(),
            ChatRefusal::TooManyRooms => "this socket is in too many chat rooms".into(),
            ChatRefusal::Invalid(what) => (*what).into(),
            ChatRefusal::Muted { until } => format!("you are muted until {}", until.to_rfc3339()),
            ChatRefusal::RateLimited { .. } => "too many messages, slow down".into(),
            ChatRefusal::Unavailable => "chat is unavailable, retry".into(),
        }
    }

    /// The ack sent for this refusal: `{ok: false, error, message, ...}`.
    pub fn ack(&self) -> serde_json::Value {
        let mut ack =
            serde_json::json!({ "ok": false, "error": self.code(), "message": self.message() });
        match self {
            ChatRefusal::Muted { until } => {
                ack["muted_until"] =
                    serde_json::json!(until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            }
            ChatRefusal::RateLimited { retry_after_ms } => {
                ack["retry_after_ms"] = serde_json::json!(retry_after_ms);
            }
            _ => {}
        }
        ack
    }
}

/// Check a room name: `lobby` or `game:{id}` with an id of 1-64 letters, digits, `_`, `-` or `.`.
pub fn validate_room(room: &str) -> Result<(), ChatRefusal> {
    if room == LOBBY {
        return Ok(());
    }
    match room.strip_prefix("game:") {
        Some(id)
            if (1..=64).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) =>
        {
            Ok(())
        }
        _ => Err(ChatRefusal::InvalidRoom),
    }
}

/// The text to store: trimmed, 1 to `max_chars` characters (Unicode scalar values).
pub fn normalize_text(text: &str, max_chars: usize) -> Result<String, ChatRefusal> {
    let trimmed = text.trim();
    match trimmed.chars().count() {
        0 => Err(ChatRefusal::Empty),
        n if n > max_chars => Err(ChatRefusal::TooLong { max_chars }),
        _ => Ok(trimmed.to_owned()),
    }
}

/// A client message id: 1-128 characters.
pub fn validate_client_msg_id(id: &str) -> Result<(), ChatRefusal> {
    if (1..=128).contains(&id.chars().count()) {
        Ok(())
    } else {
        Err(ChatRefusal::Invalid(
            "client_msg_id must be 1-128 characters",
        ))
    }
}

/// A chat message as clients see it (`chat.message`, `chat.join` history, REST history).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessageView {
    /// Id (UUID v7).
    pub message_id: Uuid,
    /// Room.
    pub room: String,
    /// Author.
    pub player_id: Uuid,
    /// Text.
    pub text: String,
    /// The author's idempotency id (lets the author match its own message).
    pub client_msg_id: String,
    /// When it was accepted.
    #[serde(serialize_with = "super::rfc3339_millis")]
    pub sent_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_the_lobby_or_a_game() {
        for ok in ["lobby", "game:1", "game:book-of-rust", "game:a_b.c"] {
            assert_eq!(validate_room(ok), Ok(()), "{ok}");
        }
        let long = format!("game:{}", "x".repeat(65));
        for bad in [
            "",
            "Lobby",
            "game:",
            "game:a b",
            "player:1",
            "game:ü",
            long.as_str(),
        ] {
            assert_eq!(validate_room(bad), Err(ChatRefusal::InvalidRoom), "{bad}");
        }
    }

    #[test]
    fn text_is_trimmed_and_counted_in_characters() {
        assert_eq!(normalize_text("  hi  ", 500), Ok("hi".into()));
        assert_eq!(normalize_text(" \n\t ", 500), Err(ChatRefusal::Empty));
        assert_eq!(normalize_text("", 500), Err(ChatRefusal::Empty));
        let five_hundred_euros = "€".repeat(500);
        assert_eq!(
            normalize_text(&five_hundred_euros, 500)
                .unwrap()
                .chars()
                .count(),
            500
        );
        assert_eq!(
            normalize_text(&format!("{five_hundred_euros}x"), 500),
            Err(ChatRefusal::TooLong { max_chars: 500 })
        );
        assert_eq!(
            normalize_text(&format!("  {five_hundred_euros}  "), 500)
                .unwrap()
                .len(),
            1500
        );
    }

    #[test]
    fn refusals_carry_their_code_in_the_ack() {
        let ack = ChatRefusal::RateLimited {
            retry_after_ms: 1200,
        }
        .ack();
        assert_eq!(ack["ok"], false);
        assert_eq!(ack["error"], "rate_limited");
        assert_eq!(ack["retry_after_ms"], 1200);
        assert_eq!(
            ChatRefusal::TooLong { max_chars: 500 }.ack()["error"],
            "too_long"
        );
        assert_eq!(validate_client_msg_id("").unwrap_err().code(), "invalid");
        assert_eq!(
            validate_client_msg_id(&"x".repeat(129)).unwrap_err().code(),
            "invalid"
        );
        assert!(validate_client_msg_id("abc-123").is_ok());
    }
}

//! Pure rules, no I/O: which events become notifications and what they say, the chat rules, and the
//! payloads pushed to sockets.

pub mod chat;
pub mod live;
pub mod notifications;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// Serialise a timestamp as RFC 3339 with milliseconds and a `Z`, like the event envelope.
pub fn rfc3339_millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

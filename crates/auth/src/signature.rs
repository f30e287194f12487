//! HMAC-SHA256 request signatures for server-to-server calls (game providers, payment webhooks).
//!
//! The signature is `hex(HMAC-SHA256(secret, "{timestamp}.{body}"))`, sent in [`SIGNATURE_HEADER`] with
//! the Unix timestamp in [`TIMESTAMP_HEADER`]. A timestamp more than [`MAX_SKEW_SECONDS`] away from now is
//! refused whatever the signature, so a captured request cannot be replayed later.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// Header carrying the hex signature.
pub const SIGNATURE_HEADER: &str = "x-casino-signature";
/// Header carrying the Unix timestamp (seconds).
pub const TIMESTAMP_HEADER: &str = "x-casino-timestamp";
/// Largest accepted distance between the request's timestamp and now (5 minutes).
pub const MAX_SKEW_SECONDS: i64 = 300;

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Missing or unparsable signature or timestamp headers.
    #[error("missing or malformed signature headers")]
    Malformed,
    /// Timestamp too far from now.
    #[error("stale timestamp")]
    Stale,
    /// Does not match.
    #[error("bad signature")]
    Bad,
}

impl SignatureError {
    /// The bounded `reason` label for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureError::Malformed => "malformed_signature",
            SignatureError::Stale => "stale_timestamp",
            SignatureError::Bad => "bad_signature",
        }
    }
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The hex signature of `body` at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

/// Check a signature at time `now` (Unix seconds).
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let timestamp: i64 = timestamp
        .and_then(|t| t.trim().parse().ok())
        .ok_or(SignatureError::Malformed)?;
    let signature = signature
        .and_then(|s| hex::decode(s.trim()).ok())
        .ok_or(SignatureError::Malformed)?;
    // `abs_diff`, not `(now - timestamp).abs()`: a timestamp near either end of the i64 range (sent by
    // anyone, before authentication) is stale, not an overflow.
    if now.abs_diff(timestamp) > MAX_SKEW_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let expected = mac(secret, timestamp, body).finalize().into_bytes();
    if expected.as_slice().ct_eq(&signature).into() {
        Ok(())
    } else {
        Err(SignatureError::Bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_correct_signature_verifies() {
        let sig = sign(b"secret", NOW, b"{\"amount\":100}");
        assert_eq!(
            verify(
                b"secret",
                Some(&NOW.to_string()),
                Some(&sig),
                b"{\"amount\":100}",
                NOW + 10
            ),
            Ok(())
        );
    }

    #[test]
    fn another_body_key_or_timestamp_does_not() {
        let sig = sign(b"secret", NOW, b"{\"amount\":100}");
        let ts = NOW.to_string();
        assert_eq!(
            verify(b"secret", Some(&ts), Some(&sig), b"{\"amount\":999}", NOW),
            Err(SignatureError::Bad)
        );
        assert_eq!(
            verify(b"other", Some(&ts), Some(&sig), b"{\"amount\":100}", NOW),
            Err(SignatureError::Bad)
        );
        let later = (NOW + 1).to_string();
        assert_eq!(
            verify(
                b"secret",
                Some(&later),
                Some(&sig),
                b"{\"amount\":100}",
                NOW
            ),
            Err(SignatureError::Bad)
        );
    }

    #[test]
    fn stale_timestamps_are_refused_even_with_a_valid_signature() {
        let old = NOW - MAX_SKEW_SECONDS - 1;
        let sig = sign(b"secret", old, b"{}");
        assert_eq!(
            verify(b"secret", Some(&old.to_string()), Some(&sig), b"{}", NOW),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn timestamps_at_the_ends_of_the_range_are_stale_not_an_overflow() {
        // `now - timestamp` does not fit in an i64 for these: refused as stale before any HMAC is computed.
        for (timestamp, now) in [
            (i64::MIN, NOW),
            (i64::MIN + 1, NOW),
            (i64::MAX, NOW),
            (i64::MAX, -NOW),
            (i64::MIN, i64::MAX),
            (i64::MAX, i64::MIN),
        ] {
            let sig = sign(b"secret", timestamp, b"{}");
            assert_eq!(
                verify(
                    b"secret",
                    Some(&timestamp.to_string()),
                    Some(&sig),
                    b"{}",
                    now
                ),
                Err(SignatureError::Stale),
                "timestamp {timestamp} at {now}"
            );
        }
        let sig = sign(b"secret", i64::MIN, b"{}");
        assert_eq!(
            verify(
                b"secret",
                Some(&i64::MIN.to_string()),
                Some(&sig),
                b"{}",
                i64::MIN + MAX_SKEW_SECONDS
            ),
            Ok(()),
            "the window itself is unchanged at the edge"
        );
        let edge = NOW - MAX_SKEW_SECONDS;
        let sig = sign(b"secret", edge, b"{}");
        assert_eq!(
            verify(b"secret", Some(&edge.to_string()), Some(&sig), b"{}", NOW),
            Ok(())
        );
    }

    #[test]
    fn missing_or_garbled_headers_are_malformed() {
        assert_eq!(
            verify(b"s", None, Some("ab"), b"", NOW),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(b"s", Some("x"), Some("ab"), b"", NOW),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(b"s", Some("1"), Some("zz"), b"", NOW),
            Err(SignatureError::Malformed)
        );
    }
}

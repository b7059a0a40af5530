//! Slack's request signatures (v0): `X-Slack-Signature: v0=hex(HMAC-SHA256(signing secret,
//! "v0:" + X-Slack-Request-Timestamp + ":" + raw body))`, checked in constant time, and the
//! timestamp within five minutes of now. Nothing of the body is read before this passes.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Oldest (and furthest in the future) timestamp accepted.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// A header is missing or not in Slack's format.
    Malformed(&'static str),
    /// The timestamp is outside the window (seconds off).
    Stale(i64),
    /// The signature does not match.
    Forged,
}

impl Rejection {
    /// Stable code for the audit record.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed_signature",
            Rejection::Stale(_) => "stale",
            Rejection::Forged => "bad_signature",
        }
    }

    /// What the caller is told.
    pub fn message(&self) -> String {
        match self {
            Rejection::Malformed(what) => format!("request refused: {what}"),
            Rejection::Stale(off) => format!(
                "request refused: timestamp is {off} s away from the server's clock (at most {} s)",
                WINDOW.as_secs()
            ),
            Rejection::Forged => "request refused: signature does not match".into(),
        }
    }
}

/// Checks a request's signature headers against `body`, at `now` (Unix seconds).
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Rejection> {
    let ts_text = timestamp.ok_or(Rejection::Malformed("no X-Slack-Request-Timestamp"))?;
    let ts: i64 = ts_text
        .parse()
        .map_err(|_| Rejection::Malformed("X-Slack-Request-Timestamp is not a number"))?;
    let signature = signature.ok_or(Rejection::Malformed("no X-Slack-Signature"))?;
    let hex_sig = signature.strip_prefix("v0=").ok_or(Rejection::Malformed(
        "X-Slack-Signature is not a v0 signature",
    ))?;
    let given =
        hex::decode(hex_sig).map_err(|_| Rejection::Malformed("X-Slack-Signature is not hex"))?;
    let off = now.saturating_sub(ts);
    if off.unsigned_abs() > WINDOW.as_secs() {
        return Err(Rejection::Stale(off));
    }
    let mut mac = mac(secret);
    mac.update(b"v0:");
    mac.update(ts_text.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| Rejection::Forged)
}

/// The `X-Slack-Signature` value of `body` at `timestamp` (what Slack sends; tests sign with
/// it).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    Hmac::<Sha256>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack).
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const TS: &str = "1531420618";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_documented_example_verifies() {
        assert_eq!(sign(SECRET, TS, BODY), SIG);
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY, 1_531_420_618 + 10),
            Ok(())
        );
    }

    #[test]
    fn forged_stale_and_malformed_requests_are_refused() {
        let now = 1_531_420_618;
        let mut body = BODY.to_vec();
        body[0] ^= 1;
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), &body, now),
            Err(Rejection::Forged)
        );
        assert_eq!(
            verify(b"other", Some(TS), Some(SIG), BODY, now),
            Err(Rejection::Forged)
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY, now + 301),
            Err(Rejection::Stale(301))
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY, now - 301),
            Err(Rejection::Stale(-301))
        );
        assert!(matches!(
            verify(SECRET, None, Some(SIG), BODY, now),
            Err(Rejection::Malformed(_))
        ));
        assert!(matches!(
            verify(SECRET, Some(TS), None, BODY, now),
            Err(Rejection::Malformed(_))
        ));
        assert!(matches!(
            verify(SECRET, Some("x"), Some(SIG), BODY, now),
            Err(Rejection::Malformed(_))
        ));
        assert!(matches!(
            verify(SECRET, Some(TS), Some("v1=00"), BODY, now),
            Err(Rejection::Malformed(_))
        ));
        assert!(matches!(
            verify(SECRET, Some(TS), Some("v0=zz"), BODY, now),
            Err(Rejection::Malformed(_))
        ));
        // A truncated signature is a mismatch, not a prefix match.
        assert_eq!(
            verify(SECRET, Some(TS), Some(&SIG[..41]), BODY, now),
            Err(Rejection::Forged)
        );
    }
}

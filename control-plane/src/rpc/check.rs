//! Input checks shared by the services: every failure is `invalid_argument` naming the field.

use std::time::{Duration, SystemTime};

use tonic::Status;

/// Longest free text (reasons, comments) the server stores.
pub const MAX_TEXT: usize = 2000;

/// Largest record or operation a host may send, encoded (protobuf bytes). A daemon's records
/// are a few KiB (the kernel cuts argv at 512 bytes; paths are at most 4096); an operation
/// asked ahead carries the agent's argv, at most one 64 KiB agent-socket line. The bound
/// keeps every record's export line (JSON: at most six bytes per byte when every byte needs
/// escaping) well inside the verifier's line limit (`countersign_audit::verify::MAX_LINE`).
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// `invalid_argument` with `message`.
pub fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

fn hex_digits(s: &str, n: usize) -> bool {
    s.len() == n
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A request id: `r-` and 10 lowercase hex digits.
pub fn request_id(field: &str, s: &str) -> Result<(), Status> {
    match s.strip_prefix("r-") {
        Some(rest) if hex_digits(rest, 10) => Ok(()),
        _ if s.is_empty() => Err(invalid(format!("{field} is required"))),
        _ => Err(invalid(format!(
            "{field} {:?} is not a request id (r- and 10 lowercase hex digits, e.g. r-3f9a1c02de)",
            shorten(s)
        ))),
    }
}

/// A grant id: 16 lowercase hex digits of a nonzero number.
pub fn grant_id(field: &str, s: &str) -> Result<(), Status> {
    if s.is_empty() {
        return Err(invalid(format!("{field} is required")));
    }
    if !hex_digits(s, 16) || s.bytes().all(|b| b == b'0') {
        return Err(invalid(format!(
            "{field} {:?} is not a grant id (16 lowercase hex digits, not all zero)",
            shorten(s)
        )));
    }
    Ok(())
}

/// An operation fingerprint: the operation id, 32 lowercase hex digits (128 bits of SHA-256 of
/// the exact operation; docs/architecture.md, "Grant binding"). Daemons before exact grant
/// binding sent the 16-digit kernel hash; their spooled events are still taken (as evidence:
/// they open no request, see `countersign_api::binding`).
pub fn fingerprint(field: &str, s: &str) -> Result<(), Status> {
    if hex_digits(s, 32) || hex_digits(s, 16) {
        Ok(())
    } else if s.is_empty() {
        Err(invalid(format!("{field} is required")))
    } else {
        Err(invalid(format!(
            "{field} {:?} is not a fingerprint (32 lowercase hex digits)",
            shorten(s)
        )))
    }
}

/// Free text of at most [`MAX_TEXT`] characters; `required` refuses empty (blank) text.
pub fn text(field: &str, s: &str, required: bool) -> Result<(), Status> {
    if required && s.trim().is_empty() {
        return Err(invalid(format!("{field} is required")));
    }
    if s.chars().count() > MAX_TEXT {
        return Err(invalid(format!(
            "{field} is longer than {MAX_TEXT} characters"
        )));
    }
    Ok(())
}

/// A record or operation of `len` encoded bytes: at most [`MAX_RECORD_BYTES`].
pub fn encoded_size(field: &str, len: usize) -> Result<(), Status> {
    if len > MAX_RECORD_BYTES {
        return Err(invalid(format!(
            "{field} is {len} bytes encoded; at most {MAX_RECORD_BYTES}"
        )));
    }
    Ok(())
}

/// A protobuf duration as a std one (negative or missing: invalid).
pub fn duration(field: &str, d: Option<&prost_types::Duration>) -> Result<Duration, Status> {
    let d = d.ok_or_else(|| invalid(format!("{field} is required")))?;
    Duration::try_from(*d).map_err(|_| invalid(format!("{field} must not be negative")))
}

/// A protobuf timestamp as a `SystemTime` (out of range: invalid).
pub fn time(field: &str, t: &prost_types::Timestamp) -> Result<SystemTime, Status> {
    SystemTime::try_from(*t).map_err(|_| invalid(format!("{field} is not a valid time")))
}

/// A page size: 0 means `default`, more than `max` is cut to `max`.
pub fn page_size(size: u32, default: u32, max: u32) -> u32 {
    match size {
        0 => default,
        n => n.min(max),
    }
}

/// At most 40 characters of a bad value, for messages (callers may send anything).
pub fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(request_id("request_id", "r-3f9a1c02de").is_ok());
        for bad in [
            "",
            "r-3F9A1C02DE",
            "r-3f9a1c02d",
            "x-3f9a1c02de",
            "r-3f9a1c02dex",
        ] {
            let e = request_id("request_id", bad).expect_err(bad);
            assert!(e.message().starts_with("request_id "), "{e:?}");
        }
        assert!(grant_id("grant_id", "00000000000000ff").is_ok());
        assert!(grant_id("grant_id", "0000000000000000").is_err());
        assert!(grant_id("grant_id", "ff").is_err());
        assert!(fingerprint("f", "0123456789abcdef").is_ok());
        assert!(fingerprint("f", "0123456789abcdef0123456789abcdef").is_ok());
        assert!(fingerprint("f", "0123456789abcdef0").is_err());
        assert!(fingerprint("f", "0123456789ABCDEF").is_err());
        assert!(fingerprint("f", "").is_err());
        let e = fingerprint("events[2].operation.fingerprint", "xyz").expect_err("bad");
        assert_eq!(
            e.message(),
            "events[2].operation.fingerprint \"xyz\" is not a fingerprint (32 lowercase hex digits)"
        );
    }

    #[test]
    fn texts_and_sizes() {
        assert!(text("deny.reason", " ", true).is_err());
        assert!(text("reason", "", false).is_ok());
        assert!(text("reason", &"x".repeat(MAX_TEXT + 1), false).is_err());
        assert_eq!(page_size(0, 50, 500), 50);
        assert_eq!(page_size(9999, 50, 500), 500);
        assert_eq!(shorten(&"é".repeat(50)).chars().count(), 41);
        let neg = prost_types::Duration {
            seconds: -1,
            nanos: 0,
        };
        assert!(duration("d", Some(&neg)).is_err());
        assert!(duration("d", None).is_err());
    }
}

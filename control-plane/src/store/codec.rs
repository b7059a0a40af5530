//! Conversions between Rust values and the portable column types (BIGINT, TEXT, BLOB):
//! times and durations as milliseconds, lists as JSON text, protobuf messages as bytes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;

use super::StoreError;

/// Unix milliseconds (times before 1970 become 0, after year 292 million saturate).
pub(super) fn ms(t: SystemTime) -> i64 {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// From unix milliseconds.
pub(super) fn time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// `t` truncated to what the database keeps (milliseconds): rows returned by a write then
/// equal the rows read back later.
pub(super) fn trunc(t: SystemTime) -> SystemTime {
    time(ms(t))
}

/// A duration in milliseconds.
pub(super) fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// From milliseconds.
pub(super) fn dur(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A stored counter as u32 (negative or too large: corrupt).
pub(super) fn u32_of(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} = {v} is out of range")))
}

/// A stored counter as u64.
pub(super) fn u64_of(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} = {v} is out of range")))
}

/// A u64 (sequence numbers, counters) for a BIGINT column.
pub(super) fn i64_of(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Precondition(format!("{what} {v} is too large")))
}

/// A list of names as JSON text.
pub(super) fn list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

/// Parses a list written by [`list`].
pub(super) fn parse_list(s: &str, what: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// A protobuf message as bytes.
pub(super) fn encode<M: Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}

/// Parses bytes written by [`encode`].
pub(super) fn decode<M: Message + Default>(b: &[u8], what: &str) -> Result<M, StoreError> {
    M::decode(b).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

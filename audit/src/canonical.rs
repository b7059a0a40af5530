//! The canonical serialization that record hashes are computed over.
//!
//! Canonical form of a JSON value (used for the whole record, nested objects included):
//! - objects: `{`, members sorted by key (byte-wise on the UTF-8 key), `"key":value` joined
//!   by `,`, `}`; no whitespace anywhere;
//! - arrays: `[`, elements in order joined by `,`, `]`;
//! - strings: `"` … `"`, escaping `"` as `\"`, `\` as `\\`, U+0008/09/0A/0C/0D as
//!   `\b \t \n \f \r`, other code points below U+0020 as `\u00xx` (lowercase hex);
//!   everything else (`/`, non-ASCII) is written as raw UTF-8;
//! - numbers as serde_json prints them (integers in decimal; the audit schema has no floats
//!   of its own, `details` may), `true`, `false`, `null`.
//!
//! Absent optional fields are omitted (never `null`), so adding an optional field to the
//! schema later does not change the hash of old records.
//!
//! `hash = SHA-256(canonical(record without its "hash" member))`, and the JSON Lines export
//! writes `canonical(record)` (with `hash`, which sorts between `checkpoint` and `kind`).

use serde_json::Value;
use thiserror::Error;

use super::digest::Digest;
use super::record::Record;

/// A record could not be turned into JSON (serde refused it; not expected in practice).
#[derive(Debug, Error)]
#[error("cannot encode audit record as JSON: {0}")]
pub struct EncodeError(#[from] serde_json::Error);

/// Canonical bytes of `record` without its `hash` member: the input of [`record_hash`].
pub fn hashed_bytes(record: &Record) -> Result<Vec<u8>, EncodeError> {
    let mut value = serde_json::to_value(record)?;
    if let Value::Object(members) = &mut value {
        members.remove("hash");
    }
    Ok(to_bytes(&value))
}

/// The hash a record must carry.
pub fn record_hash(record: &Record) -> Result<Digest, EncodeError> {
    Ok(Digest::of(&hashed_bytes(record)?))
}

/// Canonical bytes of the whole record, `hash` included: one JSON Lines line (without `\n`).
pub fn line_bytes(record: &Record) -> Result<Vec<u8>, EncodeError> {
    Ok(to_bytes(&serde_json::to_value(record)?))
}

/// Canonical bytes of any JSON value.
pub fn to_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            // Sorted here rather than relying on serde_json's map type: the
            // `preserve_order` feature, if any crate enables it, would change that order.
            let mut sorted: Vec<_> = members.iter().collect();
            sorted.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(item, out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if u32::from(c) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes());
            }
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_compact_escaped() {
        let v = json!({"b": [1, "x\"y\\z\n\u{1}é/"], "a": {"d": null, "c": true}});
        let text = String::from_utf8(to_bytes(&v)).expect("utf-8");
        assert_eq!(
            text,
            r#"{"a":{"c":true,"d":null},"b":[1,"x\"y\\z\n\u0001é/"]}"#
        );
        // What we write, serde_json reads back as the same value.
        let back: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(back, v);
    }
}

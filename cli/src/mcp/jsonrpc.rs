//! JSON-RPC 2.0 as MCP's stdio transport frames it: one UTF-8 JSON message per line, no
//! embedded newlines. Reading bounded lines, telling requests from notifications, and the
//! error objects of the protocol.

use std::io::{self, BufRead};

use serde_json::{json, Map, Value};

/// The message is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON, but not a JSON-RPC request (or too long, or a batch).
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The method exists; its params are missing, ill-typed or unknown.
pub const INVALID_PARAMS: i64 = -32602;

/// Longest accepted line, newline excluded: a confused client must not exhaust our memory.
pub const MAX_LINE: usize = 1 << 20;

/// One line of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A line, without its newline.
    Line(Vec<u8>),
    /// A line longer than [`MAX_LINE`], read to its end and dropped.
    TooLong,
    /// End of input.
    Eof,
}

/// Reads the next line, keeping at most [`MAX_LINE`] bytes of it. A last line without a
/// newline still counts.
pub fn read_frame(input: &mut impl BufRead) -> io::Result<Frame> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(match (too_long, line.is_empty()) {
                (true, _) => Frame::TooLong,
                (false, true) => Frame::Eof,
                (false, false) => Frame::Line(line),
            });
        }
        let newline = chunk.iter().position(|b| *b == b'\n');
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        if !too_long {
            if line.len() + part.len() > MAX_LINE {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(part);
            }
        }
        let used = newline.map_or(chunk.len(), |i| i + 1);
        input.consume(used);
        if newline.is_some() {
            return Ok(if too_long {
                Frame::TooLong
            } else {
                Frame::Line(line)
            });
        }
    }
}

/// A request (with an id: it gets exactly one answer) or a notification (none).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// A string or an integer; `None` for a notification.
    pub id: Option<Value>,
    pub method: String,
    /// The params object (empty when absent).
    pub params: Map<String, Value>,
}

/// What a line is.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Message(Message),
    /// Nothing to answer: a response from the client (we send it no requests), or a
    /// malformed notification.
    Ignore,
    /// An error response to send as is.
    Reply(Value),
}

/// An error of the protocol, answered as a JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    /// -32602, naming what is wrong.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self {
            code: INVALID_PARAMS,
            message: message.into(),
        }
    }

    /// -32601.
    pub fn method_not_found(method: &str) -> Self {
        Self {
            code: METHOD_NOT_FOUND,
            message: format!("method not found: {method:?}"),
        }
    }
}

/// Reads one line as a JSON-RPC message.
pub fn parse(line: &[u8]) -> Parsed {
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return Parsed::Reply(error(
                &Value::Null,
                PARSE_ERROR,
                format!("parse error: {e}"),
            ))
        }
    };
    let invalid = |id: &Value, why: &str| Parsed::Reply(error(id, INVALID_REQUEST, why));
    let mut object = match value {
        Value::Object(o) => o,
        Value::Array(_) => return invalid(&Value::Null, "batches are not supported"),
        _ => return invalid(&Value::Null, "a message is a JSON object"),
    };
    let id = match object.remove("id") {
        None => None,
        Some(id @ Value::String(_)) => Some(id),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(Value::Number(n)),
        Some(_) => return invalid(&Value::Null, "id must be a string or an integer"),
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid(&reply_id, "jsonrpc must be \"2.0\"");
    }
    let method = match object.remove("method") {
        Some(Value::String(m)) => m,
        None if object.contains_key("result") || object.contains_key("error") => {
            return Parsed::Ignore
        }
        _ => return invalid(&reply_id, "method must be a string"),
    };
    let params = match object.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) if id.is_none() => return Parsed::Ignore,
        Some(_) => {
            return Parsed::Reply(error(&reply_id, INVALID_PARAMS, "params must be an object"))
        }
    };
    Parsed::Message(Message { id, method, params })
}

/// A successful response.
pub fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// An error response.
pub fn error(id: &Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8]) -> Vec<Frame> {
        let mut reader = io::BufReader::with_capacity(64, input);
        let mut out = Vec::new();
        loop {
            let frame = read_frame(&mut reader).expect("read");
            if frame == Frame::Eof {
                return out;
            }
            out.push(frame);
        }
    }

    #[test]
    fn lines_are_framed_and_bounded() {
        assert_eq!(
            frames(b"{\"a\":1}\n\n{\"b\":2}"),
            vec![
                Frame::Line(b"{\"a\":1}".to_vec()),
                Frame::Line(Vec::new()),
                Frame::Line(b"{\"b\":2}".to_vec()),
            ]
        );
        let mut big = vec![b'x'; MAX_LINE + 1];
        big.extend_from_slice(b"\nnext\n");
        assert_eq!(
            frames(&big),
            vec![Frame::TooLong, Frame::Line(b"next".to_vec())]
        );
        let exact = vec![b'y'; MAX_LINE];
        assert_eq!(frames(&exact), vec![Frame::Line(exact.clone())]);
        assert_eq!(frames(&[b'z'; MAX_LINE + 5]), vec![Frame::TooLong]);
    }

    fn reply_code(line: &str) -> (Value, i64) {
        match parse(line.as_bytes()) {
            Parsed::Reply(v) => (v["id"].clone(), v["error"]["code"].as_i64().unwrap_or(0)),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn messages_and_malformed_ones() {
        let Parsed::Message(m) =
            parse(br#"{"jsonrpc":"2.0","id":7,"method":"ping","params":{"x":1}}"#)
        else {
            panic!("not a message")
        };
        assert_eq!((m.id, m.method.as_str()), (Some(json!(7)), "ping"));
        assert_eq!(m.params.get("x"), Some(&json!(1)));
        let Parsed::Message(n) =
            parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        else {
            panic!("not a notification")
        };
        assert_eq!(n.id, None);

        assert_eq!(reply_code("garbage"), (Value::Null, PARSE_ERROR));
        assert_eq!(
            reply_code("{\"jsonrpc\":\"2.0\",\"id\":1"),
            (Value::Null, PARSE_ERROR)
        );
        assert_eq!(reply_code("[1]"), (Value::Null, INVALID_REQUEST));
        assert_eq!(reply_code("42"), (Value::Null, INVALID_REQUEST));
        assert_eq!(
            reply_code(r#"{"jsonrpc":"1.0","id":"a","method":"ping"}"#),
            (json!("a"), INVALID_REQUEST)
        );
        assert_eq!(
            reply_code(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#),
            (Value::Null, INVALID_REQUEST)
        );
        assert_eq!(
            reply_code(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#),
            (Value::Null, INVALID_REQUEST)
        );
        assert_eq!(
            reply_code(r#"{"jsonrpc":"2.0","id":2,"method":3}"#),
            (json!(2), INVALID_REQUEST)
        );
        assert_eq!(
            reply_code(r#"{"jsonrpc":"2.0","id":3,"method":"ping","params":[1]}"#),
            (json!(3), INVALID_PARAMS)
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":4,"result":{}}"#),
            Parsed::Ignore,
            "a response from the client"
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","method":"x","params":[1]}"#),
            Parsed::Ignore,
            "notifications are never answered"
        );
        assert_eq!(reply_code("\u{feff}"), (Value::Null, PARSE_ERROR));
        assert!(
            matches!(parse(b"\xff\xfe"), Parsed::Reply(v) if v["error"]["code"] == PARSE_ERROR),
            "invalid UTF-8 is a parse error"
        );
    }
}

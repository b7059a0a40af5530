//! The server as a client sees it: lines in, lines out.

use std::path::PathBuf;

use serde_json::json;

use super::jsonrpc::{INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR};
use super::*;

/// A server whose daemon is not there.
fn server() -> Server {
    Server::new(PathBuf::from("/nonexistent/agent-api.sock"))
}

/// The answer to one line, as the loop gives it (tool calls included, on this thread).
fn answer_line(server: &Server, line: &[u8]) -> Option<Value> {
    match jsonrpc::parse(line) {
        Parsed::Message(message) => server.answer(&message),
        Parsed::Reply(reply) => Some(reply),
        Parsed::Ignore => None,
    }
}

fn ask(server: &Server, message: Value) -> Value {
    answer_line(server, message.to_string().as_bytes())
        .unwrap_or_else(|| panic!("no answer to {message}"))
}

fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn error_code(answer: &Value) -> i64 {
    answer["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {answer}"))
}

#[test]
fn initialize_agrees_on_a_revision() {
    let s = server();
    for version in methods::SUPPORTED_VERSIONS {
        let answer = ask(
            &s,
            request(
                1,
                "initialize",
                json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
            ),
        );
        let result = &answer["result"];
        assert_eq!(result["protocolVersion"], version, "{answer}");
        assert_eq!(result["serverInfo"]["name"], "countersign");
        assert_eq!(result["capabilities"]["tools"]["listChanged"], false);
        let instructions = result["instructions"].as_str().unwrap_or_default();
        assert!(instructions.contains("never approve"), "{instructions}");
    }
    let answer = ask(
        &s,
        request(2, "initialize", json!({"protocolVersion": "2099-01-01"})),
    );
    assert_eq!(
        answer["result"]["protocolVersion"],
        methods::PROTOCOL_VERSION
    );
    let answer = ask(&s, request(3, "initialize", json!({})));
    assert_eq!(error_code(&answer), INVALID_PARAMS, "{answer}");
}

#[test]
fn lifecycle_and_unknown_methods() {
    let s = server();
    let pong = ask(&s, request(7, "ping", json!({})));
    assert_eq!(pong, json!({"jsonrpc": "2.0", "id": 7, "result": {}}));
    let by_name = ask(&s, json!({"jsonrpc": "2.0", "id": "a-1", "method": "ping"}));
    assert_eq!(by_name["id"], "a-1");
    for notification in [
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}}),
        json!({"jsonrpc": "2.0", "method": "no/such/notification"}),
    ] {
        assert_eq!(answer_line(&s, notification.to_string().as_bytes()), None);
    }
    let unknown = ask(&s, request(8, "resources/list", json!({})));
    assert_eq!(error_code(&unknown), METHOD_NOT_FOUND);
    assert_eq!(unknown["id"], 8);
    let garbage = answer_line(&s, b"{not json").expect("answer");
    assert_eq!(
        (error_code(&garbage), &garbage["id"]),
        (PARSE_ERROR, &Value::Null)
    );
}

#[test]
fn tools_list_has_no_tool_that_decides() {
    let answer = ask(&server(), request(1, "tools/list", json!({})));
    let tools = answer["result"]["tools"].as_array().expect("tools");
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(
        names,
        ["request_approval", "approval_status", "wait_for_decision"]
    );
    for tool in tools {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
    }
}

#[test]
fn tools_call_errors() {
    let s = server();
    let call = |id: u64, params: Value| ask(&s, request(id, "tools/call", params));
    let unknown = call(
        1,
        json!({"name": "approve", "arguments": {"request_id": "r-1"}}),
    );
    assert_eq!(error_code(&unknown), INVALID_PARAMS, "{unknown}");
    assert!(unknown["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("unknown tool"));
    let missing = call(
        2,
        json!({"name": "request_approval", "arguments": {"command": ["ls"]}}),
    );
    assert_eq!(error_code(&missing), INVALID_PARAMS);
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("arguments.reason"),
        "{missing}"
    );
    assert_eq!(
        error_code(&call(3, json!({"arguments": {}}))),
        INVALID_PARAMS
    );
    assert_eq!(
        error_code(&call(
            4,
            json!({"name": "approval_status", "arguments": [1]})
        )),
        INVALID_PARAMS
    );
    // The daemon is unreachable: a failure of the tool, not of the protocol.
    let down = call(5, json!({"name": "approval_status"}));
    assert_eq!(down["result"]["isError"], true, "{down}");
    let text = down["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("is countersign-agent running?"), "{text}");
}

#[test]
fn the_loop_survives_garbage_and_ends_at_eof() {
    let mut input = Vec::new();
    input.extend_from_slice(b"garbage\n\n   \n");
    input.extend(std::iter::repeat_n(b'x', jsonrpc::MAX_LINE + 10));
    input.push(b'\n');
    for message in [
        request(1, "ping", json!({})),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        request(
            2,
            "tools/call",
            json!({"name": "approval_status", "arguments": {}}),
        ),
        request(3, "nope", json!({})),
    ] {
        input.extend_from_slice(message.to_string().as_bytes());
        input.push(b'\n');
    }
    input.extend_from_slice(br#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#);
    let output = Arc::new(Mutex::new(Vec::new()));
    let status = serve(&Arc::new(server()), &mut input.as_slice(), &output);
    assert_eq!(status, Ok(OK));
    // The tool call answered from its own thread before the server ended.
    let text = String::from_utf8(output.lock().expect("lock").clone()).expect("utf-8");
    let answers: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(answers.len(), 6, "{answers:?}");
    let by_id = |id: Value| {
        answers
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("no answer {id} in {answers:?}"))
    };
    assert_eq!(error_code(&answers[0]), PARSE_ERROR);
    assert_eq!(error_code(&answers[1]), INVALID_REQUEST);
    assert_eq!(by_id(json!(1))["result"], json!({}));
    assert_eq!(by_id(json!(2))["result"]["isError"], true);
    assert_eq!(error_code(by_id(json!(3))), METHOD_NOT_FOUND);
    assert_eq!(by_id(json!(4))["result"], json!({}));
}

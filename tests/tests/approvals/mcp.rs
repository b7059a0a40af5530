//! The MCP server an AI agent's MCP client launches (`countersign mcp`), driven the way such a
//! client does: initialize, list the tools (none approves), ask ahead with a reason the
//! approver sees, wait for the decision while a person approves, then run the command.

use std::{
    io::Write as _,
    process::ChildStdin,
    thread,
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use tests::{process::Spawned, Verdict};

use crate::{request_id, World};

/// How long an answer of the MCP server may take (a wait's answer: after the approval).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A scripted MCP client: JSON-RPC requests on the server's stdin, answers read from its
/// stdout (a file: nothing blocks on a full pipe).
struct McpClient {
    server: Spawned,
    stdin: ChildStdin,
    next_id: u64,
}

impl McpClient {
    /// `countersign mcp` started inside the session, as the agent's MCP client would.
    fn start(w: &World) -> Self {
        let mut server =
            w.t.spawn_piped(w.agent_cli(&w.session, &["mcp"]), "agent-mcp");
        let stdin = server.take_stdin();
        Self {
            server,
            stdin,
            next_id: 1,
        }
    }

    fn write(&mut self, message: &Value) {
        writeln!(self.stdin, "{message}")
            .unwrap_or_else(|e| panic!("writing {message} to `countersign mcp`: {e}"));
    }

    /// Sends a request; its id.
    fn send(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.write(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Sends a notification (no answer).
    fn notify(&mut self, method: &str) {
        self.write(&json!({"jsonrpc": "2.0", "method": method}));
    }

    /// The answer to request `id`: its `result` (panics on a JSON-RPC error).
    fn answer(&mut self, id: u64) -> Value {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let out = self.server.stdout_so_far();
            // Complete lines only: the server may be writing the next one.
            let found = out
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .map(|l| {
                    serde_json::from_str::<Value>(l)
                        .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
                })
                .find(|m| m["id"] == id);
            if let Some(message) = found {
                assert_eq!(message["jsonrpc"], "2.0", "{message}");
                assert!(message.get("error").is_none(), "error answer: {message}");
                return message["result"].clone();
            }
            assert!(
                !self.server.has_exited(),
                "`countersign mcp` exited before answering {id}: {}",
                self.server.stderr_so_far()
            );
            assert!(
                Instant::now() < deadline,
                "no answer to request {id} within {ANSWER_TIMEOUT:?}; stderr: {}",
                self.server.stderr_so_far()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// A request and its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params);
        self.answer(id)
    }

    /// Ends the input, as a client does to stop the server; the server must exit 0.
    fn close(self) {
        let Self { server, stdin, .. } = self;
        drop(stdin);
        server.wait().assert_success();
    }
}

#[test]
fn an_mcp_client_asks_waits_and_the_approved_command_runs() {
    let w = World::start("mcp", "", "");
    let reason = "clean up the release the MCP client built";
    let call = ["delete", "release"];
    let mut client = McpClient::start(&w);

    let init = client.call(
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "approvals-test", "version": "0"}}),
    );
    assert_eq!(init["protocolVersion"], "2025-06-18", "{init}");
    assert_eq!(init["serverInfo"]["name"], "countersign", "{init}");
    client.notify("notifications/initialized");

    // The agent can ask and wait; nothing it can call decides.
    let listed = client.call("tools/list", json!({}));
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {listed}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["request_approval", "approval_status", "wait_for_decision"]
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains("approve") || n.contains("deny")),
        "{names:?}"
    );

    // Asking ahead: the approver sees the request with the agent's reason.
    let command: Vec<&str> = [&[w.guarded.as_str()], &call[..]].concat();
    let asked = client.call(
        "tools/call",
        json!({"name": "request_approval",
               "arguments": {"command": command, "reason": reason}}),
    );
    assert_eq!(asked["isError"], false, "{asked}");
    let fingerprint = asked["structuredContent"]["fingerprint"]
        .as_str()
        .unwrap_or_else(|| panic!("no fingerprint: {asked}"))
        .to_owned();
    assert_eq!(asked["structuredContent"]["state"], "pending", "{asked}");
    let req = w.pending_for("alice", &call);
    assert_eq!(req["reason"], reason, "{req}");
    assert_eq!(req["attempts"], 0, "asked ahead, never tried: {req}");
    assert_eq!(
        req["operation"]["fingerprint"],
        fingerprint.as_str(),
        "{req}"
    );
    let id = request_id(&req);
    if let Some(named) = asked["structuredContent"]["request_id"].as_str() {
        assert_eq!(named, id, "{asked}");
    }

    // The wait blocks on its own thread: the server still answers meanwhile.
    let waiting = client.send(
        "tools/call",
        json!({"name": "wait_for_decision",
               "arguments": {"fingerprint": fingerprint, "timeout_seconds": 60}}),
    );
    assert_eq!(client.call("ping", json!({})), json!({}));
    let status = client.call(
        "tools/call",
        json!({"name": "approval_status", "arguments": {"fingerprint": fingerprint}}),
    );
    assert_eq!(
        status["structuredContent"]["requests"][0]["state"], "pending",
        "{status}"
    );

    w.cp.cli("alice", &["approve", &id, "--once"])
        .assert_success();
    let decided = client.answer(waiting);
    assert_eq!(decided["isError"], false, "{decided}");
    assert_eq!(
        decided["structuredContent"]["outcome"], "approved",
        "{decided}"
    );
    assert_eq!(
        decided["structuredContent"]["grant"]["uses"], 1,
        "{decided}"
    );
    let text = decided["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.starts_with("approved: run"), "{text}");
    client.close();

    // The grant is in the kernel before the tool reports it: the first try passes.
    let ran = w.exec(&call);
    assert_eq!(ran.verdict(), Verdict::Ran { code: 0 }, "{ran}");
}

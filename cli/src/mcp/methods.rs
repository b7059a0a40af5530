//! The MCP methods this server answers: the lifecycle (`initialize`, `ping`, notifications)
//! and the tools (`tools/list`, `tools/call`). Requests are served whether or not
//! `initialize` came first: the server keeps no state a client could get out of step with.

use std::path::PathBuf;

use serde_json::{json, Map, Value};

use super::jsonrpc::{self, Message, RpcError};
use super::{arguments, call, tools};

/// The protocol revision this server implements.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// Revisions a client may ask for: the tools and messages used here are the same in each.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-06-18", "2025-03-26", "2024-11-05"];

/// `instructions` of `initialize`, for the model.
const INSTRUCTIONS: &str = "Countersign guards this session: the kernel refuses sensitive \
commands and connections (\"Operation not permitted\") until a person approves them. These \
tools can only ASK for approval, never approve or deny: request_approval (with a reason the \
approvers read), approval_status, wait_for_decision. Once approved, run exactly the same \
command or connection again.";

/// The server: where the daemon's agent socket is.
#[derive(Debug, Clone)]
pub struct Server {
    socket: PathBuf,
}

impl Server {
    /// A server speaking to the agent socket at `socket`.
    pub fn new(socket: PathBuf) -> Self {
        Self { socket }
    }

    /// The answer to one message; notifications get none.
    pub fn answer(&self, message: &Message) -> Option<Value> {
        let Some(id) = &message.id else {
            // `notifications/initialized`, `notifications/cancelled` (a call runs to its end;
            // the client ignores the late answer) and any other: nothing to do.
            tracing::debug!(method = %message.method, "notification");
            return None;
        };
        tracing::debug!(method = %message.method, "request");
        Some(match self.call(&message.method, &message.params) {
            Ok(result) => jsonrpc::result(id, result),
            Err(e) => jsonrpc::error(id, e.code, e.message),
        })
    }

    fn call(&self, method: &str, params: &Map<String, Value>) -> Result<Value, RpcError> {
        match method {
            "initialize" => initialize(params),
            "ping" => Ok(json!({})),
            "tools/list" => Ok(json!({"tools": tools::definitions()})),
            "tools/call" => self.tools_call(params),
            other => Err(RpcError::method_not_found(other)),
        }
    }

    fn tools_call(&self, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("params.name must be the tool's name"))?;
        let empty = Map::new();
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(a)) => a,
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "params.arguments must be an object",
                ))
            }
        };
        let checked = arguments::parse(name, arguments)?;
        tracing::info!(tool = name, "tool call");
        Ok(call::run(&self.socket, &checked))
    }
}

/// Whether `message` is a tool call, the only request that may take long.
pub fn is_tool_call(message: &Message) -> bool {
    message.id.is_some() && message.method == "tools/call"
}

/// Agrees on the client's revision when it is one of ours, else proposes ours.
fn initialize(params: &Map<String, Value>) -> Result<Value, RpcError> {
    let asked = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("params.protocolVersion must be a string"))?;
    let version = SUPPORTED_VERSIONS
        .into_iter()
        .find(|v| *v == asked)
        .unwrap_or(PROTOCOL_VERSION);
    tracing::debug!(asked, version, client = ?params.get("clientInfo"), "initialize");
    Ok(json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": "countersign", "version": env!("CARGO_PKG_VERSION")},
        "instructions": INSTRUCTIONS,
    }))
}

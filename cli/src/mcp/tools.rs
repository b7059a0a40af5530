//! The three tools: their definitions for `tools/list` (JSON Schemas of their arguments and
//! results) and what a checked call of each is (see `arguments` for the checking). There is
//! no tool to approve or deny: nothing an agent can call decides anything.

use std::time::Duration;

use countersign_api::agent_socket::ConnectSpec;
use serde_json::{json, Value};

/// Asks ahead for an exec or a connection, with a reason.
pub const REQUEST_APPROVAL: &str = "request_approval";
/// The session's requests.
pub const APPROVAL_STATUS: &str = "approval_status";
/// Blocks until a request is decided or the time is up.
pub const WAIT_FOR_DECISION: &str = "wait_for_decision";

/// `timeout_seconds` of `wait_for_decision` when not given.
pub const DEFAULT_WAIT_SECONDS: u64 = 300;
/// Longest `timeout_seconds` (a caller may wait again).
pub const MAX_WAIT_SECONDS: u64 = 3600;

/// A checked `tools/call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCall {
    RequestApproval { target: Target, reason: String },
    ApprovalStatus { filter: Option<Subject> },
    WaitForDecision { subject: Subject, timeout: Duration },
}

/// What `request_approval` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// argv, argv[0] not resolved yet.
    Exec(Vec<String>),
    Connect(ConnectSpec),
}

/// How a request is named by the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    RequestId(String),
    Fingerprint(String),
}

/// A request as the daemon shows it to the agent (`RequestView`).
fn request_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "request_id": {"type": ["string", "null"], "description": "Server-side id; null while the daemon has not reached the control plane."},
            "fingerprint": {"type": "string", "description": "The operation's id (32 hex digits): give it to wait_for_decision."},
            "operation": {"type": "string"},
            "state": {"type": "string", "description": "pending, approved, denied or expired"},
            "rule": {"type": ["string", "null"]},
            "expires_at": {"type": ["string", "null"], "description": "RFC 3339"},
            "reason": {"type": ["string", "null"], "description": "Why it was denied, when denied."}
        },
        "required": ["fingerprint", "operation", "state"]
    })
}

/// The `tools` array of `tools/list`.
pub fn definitions() -> Value {
    json!([
        {
            "name": REQUEST_APPROVAL,
            "title": "Ask a human to approve a command or a connection",
            "description": "Asks the people who approve this session's sensitive operations to allow one exec (`command`) or one outbound connection (`connect`), with your `reason`. Give exactly one of `command` or `connect`. This only ASKS: a human decides. Then call wait_for_decision with the returned fingerprint; once approved, run exactly the same command (same arguments) or connection.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "command": {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 1,
                        "description": "The command as argv, e.g. [\"kubectl\", \"delete\", \"deploy\", \"web\"]; argv[0] is looked up in PATH as a shell would."
                    },
                    "connect": {
                        "type": "object",
                        "properties": {
                            "address": {"type": "string", "description": "IP address (not a host name: the kernel judges addresses)."},
                            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                            "protocol": {"type": "string", "enum": ["tcp", "udp"], "default": "tcp"}
                        },
                        "required": ["address", "port"],
                        "additionalProperties": false
                    },
                    "reason": {
                        "type": "string",
                        "minLength": 1,
                        "description": "Why the operation is needed; the approvers read it."
                    }
                },
                "required": ["reason"],
                "additionalProperties": false
            },
            "outputSchema": request_schema(),
            "annotations": {"readOnlyHint": false, "destructiveHint": false, "openWorldHint": false}
        },
        {
            "name": APPROVAL_STATUS,
            "title": "This session's approval requests",
            "description": "Lists this session's approval requests that are pending or were decided recently, optionally only the one with `request_id` or `fingerprint`.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "request_id": {"type": "string", "minLength": 1},
                    "fingerprint": {"type": "string", "minLength": 1}
                },
                "additionalProperties": false
            },
            "outputSchema": {
                "type": "object",
                "properties": {"requests": {"type": "array", "items": request_schema()}},
                "required": ["requests"]
            },
            "annotations": {"readOnlyHint": true, "openWorldHint": false}
        },
        {
            "name": WAIT_FOR_DECISION,
            "title": "Wait for a human's decision",
            "description": "Waits until the request named by `fingerprint` (or `request_id`) is approved, denied or expired, or `timeout_seconds` pass. Approved: the grant is in place, run the operation now, exactly as requested. Pending after the timeout: call again to keep waiting.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "fingerprint": {"type": "string", "minLength": 1, "description": "From request_approval or approval_status."},
                    "request_id": {"type": "string", "minLength": 1, "description": "Instead of fingerprint."},
                    "timeout_seconds": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_SECONDS, "default": DEFAULT_WAIT_SECONDS}
                },
                "additionalProperties": false
            },
            "outputSchema": {
                "type": "object",
                "properties": {
                    "outcome": {"type": "string", "enum": ["approved", "denied", "expired", "pending"]},
                    "fingerprint": {"type": "string"},
                    "request_id": {"type": ["string", "null"]},
                    "operation": {"type": ["string", "null"]},
                    "grant": {
                        "type": "object",
                        "properties": {
                            "grant_id": {"type": "string"},
                            "uses": {"type": "integer", "description": "Uses left (0: unlimited until it expires)."},
                            "expires_at": {"type": "string", "description": "RFC 3339"},
                            "approvers": {"type": "array", "items": {"type": "string"}}
                        }
                    },
                    "decided_by": {"type": "string"},
                    "reason": {"type": "string", "description": "Why it was denied."}
                },
                "required": ["outcome", "fingerprint"]
            },
            "annotations": {"readOnlyHint": true, "openWorldHint": false}
        }
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_three_asking_tools_with_object_schemas() {
        let defs = definitions();
        let tools = defs.as_array().expect("array");
        let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(
            names,
            [REQUEST_APPROVAL, APPROVAL_STATUS, WAIT_FOR_DECISION]
        );
        for tool in tools {
            let name = tool["name"].as_str().unwrap_or_default();
            for verb in ["approve", "deny", "decide", "grant"] {
                assert!(!name.contains(verb), "{name} would decide");
            }
            for schema in ["inputSchema", "outputSchema"] {
                assert_eq!(tool[schema]["type"], "object", "{name} {schema}");
                // Some clients refuse schemas combining alternatives at the top level.
                for combinator in ["oneOf", "anyOf", "allOf"] {
                    assert!(tool[schema].get(combinator).is_none(), "{name} {schema}");
                }
            }
            assert_eq!(tool["inputSchema"]["additionalProperties"], false, "{name}");
            assert!(
                tool["description"].as_str().is_some_and(|d| d.len() > 40),
                "{name}"
            );
        }
        assert_eq!(tools[0]["inputSchema"]["required"], json!(["reason"]));
        assert_eq!(
            tools[2]["inputSchema"]["properties"]["timeout_seconds"]["maximum"],
            3600
        );
    }
}

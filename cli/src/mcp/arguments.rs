//! Checking the arguments of a `tools/call` against the tools' schemas (`tools`). Unknown
//! tools and arguments, missing and ill-typed ones are protocol errors (-32602) naming the
//! argument, so that the model can correct its call.

use std::time::Duration;

use countersign_api::agent_socket::ConnectSpec;
use serde_json::{Map, Value};

use super::jsonrpc::RpcError;
use super::tools::{
    Subject, Target, ToolCall, APPROVAL_STATUS, DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS,
    REQUEST_APPROVAL, WAIT_FOR_DECISION,
};
use crate::commands::decide::non_empty;

/// Checks the arguments of a call of the tool `name`.
pub fn parse(name: &str, arguments: &Map<String, Value>) -> Result<ToolCall, RpcError> {
    match name {
        REQUEST_APPROVAL => {
            known(arguments, "arguments", &["command", "connect", "reason"])?;
            let reason = string(arguments, "arguments", "reason")?
                .ok_or_else(|| RpcError::invalid_params("arguments.reason is required"))?;
            let reason = non_empty(reason)
                .map_err(|e| RpcError::invalid_params(format!("arguments.reason {e}")))?;
            let target = match (arguments.get("command"), arguments.get("connect")) {
                (Some(command), None) => Target::Exec(argv(command)?),
                (None, Some(connect)) => Target::Connect(connect_spec(connect)?),
                _ => {
                    return Err(RpcError::invalid_params(
                        "give exactly one of arguments.command or arguments.connect",
                    ))
                }
            };
            Ok(ToolCall::RequestApproval { target, reason })
        }
        APPROVAL_STATUS => {
            known(arguments, "arguments", &["request_id", "fingerprint"])?;
            Ok(ToolCall::ApprovalStatus {
                filter: subject(arguments)?,
            })
        }
        WAIT_FOR_DECISION => {
            known(
                arguments,
                "arguments",
                &["fingerprint", "request_id", "timeout_seconds"],
            )?;
            let subject = subject(arguments)?.ok_or_else(|| {
                RpcError::invalid_params(
                    "arguments.fingerprint (or arguments.request_id) is required",
                )
            })?;
            let seconds = match arguments.get("timeout_seconds") {
                None => DEFAULT_WAIT_SECONDS,
                Some(v) => v
                    .as_u64()
                    .filter(|s| *s <= MAX_WAIT_SECONDS)
                    .ok_or_else(|| {
                        RpcError::invalid_params(format!(
                        "arguments.timeout_seconds must be an integer from 0 to {MAX_WAIT_SECONDS}"
                    ))
                    })?,
            };
            Ok(ToolCall::WaitForDecision {
                subject,
                timeout: Duration::from_secs(seconds),
            })
        }
        other => Err(RpcError::invalid_params(format!("unknown tool: {other:?}"))),
    }
}

/// Refuses members other than `allowed` (a misspelt argument must not be silently ignored).
fn known(object: &Map<String, Value>, at: &str, allowed: &[&str]) -> Result<(), RpcError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(RpcError::invalid_params(format!(
            "{at}.{k} is not an argument of this tool (expected {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// The string member `key`, if present.
fn string<'a>(
    object: &'a Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Option<&'a str>, RpcError> {
    match object.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(RpcError::invalid_params(format!(
            "{at}.{key} must be a string"
        ))),
    }
}

/// `request_id` or `fingerprint`, at most one, not empty.
fn subject(arguments: &Map<String, Value>) -> Result<Option<Subject>, RpcError> {
    let non_blank = |key: &str| -> Result<Option<String>, RpcError> {
        string(arguments, "arguments", key)?
            .map(|s| {
                non_empty(s).map_err(|e| RpcError::invalid_params(format!("arguments.{key} {e}")))
            })
            .transpose()
    };
    match (non_blank("request_id")?, non_blank("fingerprint")?) {
        (Some(_), Some(_)) => Err(RpcError::invalid_params(
            "give arguments.request_id or arguments.fingerprint, not both",
        )),
        (Some(id), None) => Ok(Some(Subject::RequestId(id))),
        (None, Some(fp)) => Ok(Some(Subject::Fingerprint(fp))),
        (None, None) => Ok(None),
    }
}

/// `command`: a non-empty array of strings.
fn argv(command: &Value) -> Result<Vec<String>, RpcError> {
    let Value::Array(words) = command else {
        return Err(RpcError::invalid_params(
            "arguments.command must be an array of strings (argv)",
        ));
    };
    if words.is_empty() || words.first().and_then(Value::as_str) == Some("") {
        return Err(RpcError::invalid_params(
            "arguments.command must name a program (argv[0])",
        ));
    }
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            w.as_str().map(str::to_owned).ok_or_else(|| {
                RpcError::invalid_params(format!("arguments.command[{i}] must be a string"))
            })
        })
        .collect()
}

/// `connect`: `{address, port, protocol = "tcp"}`.
fn connect_spec(connect: &Value) -> Result<ConnectSpec, RpcError> {
    let at = "arguments.connect";
    let Value::Object(c) = connect else {
        return Err(RpcError::invalid_params(format!(
            "{at} must be an object {{address, port, protocol}}"
        )));
    };
    known(c, at, &["address", "port", "protocol"])?;
    let address = string(c, at, "address")?
        .ok_or_else(|| RpcError::invalid_params(format!("{at}.address is required")))?
        .to_owned();
    let port = c
        .get("port")
        .ok_or_else(|| RpcError::invalid_params(format!("{at}.port is required")))?
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            RpcError::invalid_params(format!("{at}.port must be an integer from 1 to 65535"))
        })?;
    let protocol = match string(c, at, "protocol")? {
        None | Some("tcp") => "tcp",
        Some("udp") => "udp",
        Some(_) => {
            return Err(RpcError::invalid_params(format!(
                "{at}.protocol must be \"tcp\" or \"udp\""
            )))
        }
    };
    Ok(ConnectSpec {
        address,
        port,
        protocol: protocol.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    fn invalid(name: &str, v: Value) -> String {
        let e = parse(name, &args(v.clone())).expect_err(&format!("{name} {v} should fail"));
        assert_eq!(e.code, crate::mcp::jsonrpc::INVALID_PARAMS, "{v}");
        e.message
    }

    #[test]
    fn request_approval_arguments() {
        let exec = parse(
            REQUEST_APPROVAL,
            &args(
                json!({"command": ["kubectl", "delete", "deploy", "web"], "reason": " roll back "}),
            ),
        );
        assert_eq!(
            exec,
            Ok(ToolCall::RequestApproval {
                target: Target::Exec(vec![
                    "kubectl".into(),
                    "delete".into(),
                    "deploy".into(),
                    "web".into()
                ]),
                reason: "roll back".into()
            })
        );
        let connect = parse(
            REQUEST_APPROVAL,
            &args(json!({"connect": {"address": "10.0.0.5", "port": 5432}, "reason": "migrate"})),
        );
        assert_eq!(
            connect,
            Ok(ToolCall::RequestApproval {
                target: Target::Connect(ConnectSpec {
                    address: "10.0.0.5".into(),
                    port: 5432,
                    protocol: "tcp".into()
                }),
                reason: "migrate".into()
            })
        );
        let msg = invalid(REQUEST_APPROVAL, json!({"command": ["ls"]}));
        assert!(msg.contains("arguments.reason"), "{msg}");
        let msg = invalid(REQUEST_APPROVAL, json!({"command": ["ls"], "reason": "  "}));
        assert!(msg.contains("arguments.reason must not be empty"), "{msg}");
        let msg = invalid(REQUEST_APPROVAL, json!({"reason": "x"}));
        assert!(msg.contains("exactly one of"), "{msg}");
        let both =
            json!({"command": ["ls"], "connect": {"address": "::1", "port": 1}, "reason": "x"});
        assert!(invalid(REQUEST_APPROVAL, both).contains("exactly one of"));
        let msg = invalid(REQUEST_APPROVAL, json!({"command": "ls -l", "reason": "x"}));
        assert!(msg.contains("arguments.command must be an array"), "{msg}");
        let msg = invalid(REQUEST_APPROVAL, json!({"command": [], "reason": "x"}));
        assert!(msg.contains("argv[0]"), "{msg}");
        let msg = invalid(
            REQUEST_APPROVAL,
            json!({"command": ["ls", 3], "reason": "x"}),
        );
        assert!(msg.contains("arguments.command[1]"), "{msg}");
        let msg = invalid(REQUEST_APPROVAL, json!({"command": ["ls"], "reason": 5}));
        assert!(msg.contains("arguments.reason must be a string"), "{msg}");
        let msg = invalid(
            REQUEST_APPROVAL,
            json!({"command": ["ls"], "reason": "x", "approve": true}),
        );
        assert!(
            msg.contains("arguments.approve is not an argument"),
            "{msg}"
        );
        for (connect, field) in [
            (json!({"port": 1}), "address"),
            (json!({"address": "::1"}), "port"),
            (json!({"address": "::1", "port": 70000}), "port"),
            (json!({"address": "::1", "port": 0}), "port"),
            (json!({"address": "::1", "port": "22"}), "port"),
            (
                json!({"address": "::1", "port": 22, "protocol": "sctp"}),
                "protocol",
            ),
            (json!({"address": "::1", "port": 22, "host": "x"}), "host"),
        ] {
            let msg = invalid(REQUEST_APPROVAL, json!({"connect": connect, "reason": "x"}));
            assert!(msg.contains(&format!("arguments.connect.{field}")), "{msg}");
        }
    }

    #[test]
    fn status_and_wait_arguments() {
        assert_eq!(
            parse(APPROVAL_STATUS, &Map::new()),
            Ok(ToolCall::ApprovalStatus { filter: None })
        );
        assert_eq!(
            parse(APPROVAL_STATUS, &args(json!({"request_id": "r-1"}))),
            Ok(ToolCall::ApprovalStatus {
                filter: Some(Subject::RequestId("r-1".into()))
            })
        );
        assert_eq!(
            parse(
                WAIT_FOR_DECISION,
                &args(json!({"fingerprint": "9a3f00112233aabb"}))
            ),
            Ok(ToolCall::WaitForDecision {
                subject: Subject::Fingerprint("9a3f00112233aabb".into()),
                timeout: Duration::from_secs(300)
            })
        );
        assert_eq!(
            parse(
                WAIT_FOR_DECISION,
                &args(json!({"request_id": "r-1", "timeout_seconds": 0}))
            ),
            Ok(ToolCall::WaitForDecision {
                subject: Subject::RequestId("r-1".into()),
                timeout: Duration::ZERO
            })
        );
        let msg = invalid(WAIT_FOR_DECISION, json!({}));
        assert!(msg.contains("arguments.fingerprint"), "{msg}");
        for bad in [json!(3601), json!(-1), json!(1.5), json!("60")] {
            let msg = invalid(
                WAIT_FOR_DECISION,
                json!({"fingerprint": "x", "timeout_seconds": bad}),
            );
            assert!(msg.contains("arguments.timeout_seconds"), "{msg}");
        }
        let msg = invalid(
            WAIT_FOR_DECISION,
            json!({"fingerprint": "x", "request_id": "r-1"}),
        );
        assert!(msg.contains("not both"), "{msg}");
        let msg = invalid(APPROVAL_STATUS, json!({"fingerprint": 7}));
        assert!(
            msg.contains("arguments.fingerprint must be a string"),
            "{msg}"
        );
        let msg = invalid("approve", json!({}));
        assert!(msg.contains("unknown tool"), "{msg}");
    }
}

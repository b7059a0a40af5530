//! A checked tool call run against the daemon's agent socket, with the same requests and
//! texts as `countersign request`: the result carries text for the model, the same facts as
//! `structuredContent`, and `isError` when the tool failed (no daemon, not inside an agent
//! session, refused by the daemon, command not found).

use std::path::Path;
use std::time::{Duration, SystemTime};

use countersign_api::agent_socket::{AgentRequest, AgentResponse, RequestView, WaitOutcome};
use serde_json::{json, Value};

use super::tools::{Subject, Target, ToolCall, APPROVAL_STATUS, WAIT_FOR_DECISION};
use crate::agent_side::{request, socket, wait};
use crate::exit::Failure;
use crate::render::clean;
use crate::render::time::clock_and_relative;
use crate::when::parse_rfc3339;
use countersign_api::display::shell_join;

/// How long the daemon may take to list the session's requests.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a tool that worked returns.
struct Done {
    text: String,
    structured: Value,
}

/// Runs `call` on the agent socket at `socket`; the `tools/call` result.
pub fn run(socket: &Path, call: &ToolCall) -> Value {
    let done = match call {
        ToolCall::RequestApproval { target, reason } => request_approval(socket, target, reason),
        ToolCall::ApprovalStatus { filter } => approval_status(socket, filter.as_ref()),
        ToolCall::WaitForDecision { subject, timeout } => {
            wait_for_decision(socket, subject, *timeout)
        }
    };
    match done {
        Ok(Done { text, structured }) => json!({
            "content": [{"type": "text", "text": text}],
            "structuredContent": structured,
            "isError": false,
        }),
        Err(failure) => {
            tracing::info!(code = failure.code, "tool call failed");
            json!({
                "content": [{"type": "text", "text": failure.message}],
                "isError": true,
            })
        }
    }
}

fn request_approval(socket: &Path, target: &Target, reason: &str) -> Result<Done, Failure> {
    let (exec, connect) = match target {
        Target::Exec(argv) => (Some(request::exec_spec(argv)?), None),
        Target::Connect(spec) => (None, Some(spec.clone())),
    };
    // The reason goes to the daemon as given (it and the server bound and escape it); it is
    // never logged here.
    let view = request::ask(socket, exec, connect, reason)?;
    tracing::info!(fingerprint = %view.fingerprint, request = ?view.request_id, "asked ahead");
    let what = match target {
        Target::Exec(argv) => shell_join(argv),
        Target::Connect(spec) if view.operation.is_empty() => {
            format!("{}:{}/{}", clean(&spec.address), spec.port, spec.protocol)
        }
        Target::Connect(_) => clean(&view.operation).into_owned(),
    };
    let text = format!(
        "{}; fingerprint {}.\nA person decides: call {WAIT_FOR_DECISION} with this fingerprint, \
         then run exactly this operation once it is approved.",
        request::requested_text(&view, &what, SystemTime::now()),
        clean(&view.fingerprint)
    );
    Ok(Done {
        text,
        structured: view_json(&view),
    })
}

fn approval_status(socket: &Path, filter: Option<&Subject>) -> Result<Done, Failure> {
    let requests: Vec<RequestView> = session_requests(socket)?
        .into_iter()
        .filter(|v| filter.is_none_or(|s| names(v, s)))
        .collect();
    let now = SystemTime::now();
    let text = if requests.is_empty() {
        match filter {
            Some(_) => "no such request in this session".to_owned(),
            None => "no pending or recent requests in this session".to_owned(),
        }
    } else {
        let lines: Vec<String> = requests.iter().map(|v| status_line(v, now)).collect();
        lines.join("\n")
    };
    Ok(Done {
        text,
        structured: json!({"requests": requests.iter().map(view_json).collect::<Vec<_>>()}),
    })
}

fn wait_for_decision(socket: &Path, subject: &Subject, timeout: Duration) -> Result<Done, Failure> {
    let requests = session_requests(socket)?;
    let view = requests.iter().find(|v| names(v, subject));
    let fingerprint = match (view, subject) {
        (Some(v), _) => v.fingerprint.clone(),
        (None, Subject::Fingerprint(fp)) => fp.clone(),
        (None, Subject::RequestId(id)) => {
            return Err(Failure::refused(format!(
                "no request {} in this session ({APPROVAL_STATUS} lists them)",
                clean(id)
            )))
        }
    };
    tracing::info!(%fingerprint, ?timeout, "waiting for the decision");
    let outcome = wait::wait_at(socket, &fingerprint, timeout)?;
    let request_id = view.and_then(|v| v.request_id.clone());
    let operation = view.map(|v| v.operation.clone()).filter(|o| !o.is_empty());
    let what = operation.as_deref().map_or_else(
        || format!("fingerprint {}", clean(&fingerprint)),
        |o| clean(o).into_owned(),
    );
    let mut structured = json!({
        "outcome": outcome_name(&outcome),
        "fingerprint": fingerprint,
        "request_id": request_id,
        "operation": operation,
    });
    let text = match &outcome {
        WaitOutcome::Granted {
            grant_id,
            uses,
            expires_at,
            approvers,
        } => {
            structured["grant"] = json!({
                "grant_id": grant_id, "uses": uses, "expires_at": expires_at, "approvers": approvers,
            });
            let details = wait::granted_text(&outcome, SystemTime::now()).unwrap_or_default();
            format!("approved: run `{what}` now, exactly as requested ({details})")
        }
        other => {
            if let WaitOutcome::Denied { decided_by, reason } = other {
                structured["decided_by"] = json!(decided_by);
                structured["reason"] = json!(reason);
            }
            let mut text = wait::not_granted(other, &what, request_id.as_deref(), timeout)
                .map(|f| f.message)
                .unwrap_or_default();
            if matches!(other, WaitOutcome::TimedOut) {
                text.push_str(&format!(
                    ". Call {WAIT_FOR_DECISION} again to keep waiting."
                ));
            }
            text
        }
    };
    Ok(Done { text, structured })
}

/// The caller's session's pending and recently decided requests.
fn session_requests(socket: &Path) -> Result<Vec<RequestView>, Failure> {
    match socket::call_at(socket, &AgentRequest::Pending, LIST_TIMEOUT)? {
        AgentResponse::Requests { requests } => Ok(requests),
        other => Err(socket::unexpected(&other)),
    }
}

/// Whether `subject` names the request `v`.
fn names(v: &RequestView, subject: &Subject) -> bool {
    match subject {
        Subject::RequestId(id) => v.request_id.as_deref() == Some(id.as_str()),
        Subject::Fingerprint(fp) => v.fingerprint.eq_ignore_ascii_case(fp),
    }
}

/// `approved`, `denied`, `expired`, or `pending` when the wait timed out.
fn outcome_name(outcome: &WaitOutcome) -> &'static str {
    match outcome {
        WaitOutcome::Granted { .. } => "approved",
        WaitOutcome::Denied { .. } => "denied",
        WaitOutcome::Expired => "expired",
        WaitOutcome::TimedOut => "pending",
    }
}

fn view_json(view: &RequestView) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// `r-57be1a5362 pending: `kubectl delete deploy web` (rule kubectl-mutations), fingerprint
/// 9a3f00112233aabb, expires 18:08:40 (in 58m)`.
fn status_line(v: &RequestView, now: SystemTime) -> String {
    let id = v
        .request_id
        .as_deref()
        .map_or_else(|| "(not yet at the control plane)".into(), clean);
    let mut line = format!("{id} {}: `{}`", clean(&v.state), clean(&v.operation));
    if let Some(rule) = &v.rule {
        line.push_str(&format!(" (rule {})", clean(rule)));
    }
    line.push_str(&format!(", fingerprint {}", clean(&v.fingerprint)));
    if let Some(t) = v.expires_at.as_deref().and_then(parse_rfc3339) {
        line.push_str(&format!(", expires {}", clock_and_relative(t, now)));
    }
    if let Some(reason) = &v.reason {
        line.push_str(&format!(": {}", clean(reason)));
    }
    line
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;
    use std::thread::{self, JoinHandle};

    use countersign_api::agent_socket::ConnectSpec;

    use super::*;

    /// A daemon answering one connection per canned answer; returns the request lines.
    fn daemon(answers: &[&str]) -> (tempfile::TempDir, PathBuf, JoinHandle<Vec<String>>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("agent-api.sock");
        let listener = UnixListener::bind(&sock).expect("bind");
        let answers: Vec<String> = answers.iter().map(|a| format!("{a}\n")).collect();
        let server = thread::spawn(move || {
            answers
                .iter()
                .map(|answer| {
                    let (mut conn, _) = listener.accept().expect("accept");
                    let mut line = String::new();
                    BufReader::new(&conn).read_line(&mut line).expect("read");
                    conn.write_all(answer.as_bytes()).expect("write");
                    line
                })
                .collect()
        });
        (dir, sock, server)
    }

    const PENDING_VIEW: &str = r#"{"request_id":"r-0b1c2d3e4f","fingerprint":"9a3f00112233aabb","operation":"kubectl delete deploy web","state":"pending","rule":"kubectl-mutations","expires_at":null,"reason":null}"#;

    #[test]
    fn request_approval_asks_the_daemon_and_reports_the_request() {
        let requested = format!(r#"{{"result":"requested","request":{PENDING_VIEW}}}"#);
        let (_dir, sock, server) = daemon(&[&requested]);
        let call = ToolCall::RequestApproval {
            target: Target::Connect(ConnectSpec {
                address: "10.0.0.5".into(),
                port: 5432,
                protocol: "tcp".into(),
            }),
            reason: "migrate the \"db\"".into(),
        };
        let result = run(&sock, &call);
        assert_eq!(result["isError"], false, "{result}");
        assert_eq!(result["structuredContent"]["request_id"], "r-0b1c2d3e4f");
        assert_eq!(
            result["structuredContent"]["fingerprint"],
            "9a3f00112233aabb"
        );
        assert_eq!(result["structuredContent"]["state"], "pending");
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        assert!(
            text.contains("request r-0b1c2d3e4f, pending; fingerprint 9a3f00112233aabb"),
            "{text}"
        );
        let sent = server.join().expect("daemon");
        let sent: Value = serde_json::from_str(&sent[0]).expect("json");
        assert_eq!(
            sent,
            json!({"op": "request", "exec": null, "reason": "migrate the \"db\"",
                   "connect": {"address": "10.0.0.5", "port": 5432, "protocol": "tcp"}})
        );
    }

    #[test]
    fn failures_of_the_tool_are_results_with_is_error() {
        let none = Path::new("/nonexistent/agent-api.sock");
        let result = run(none, &ToolCall::ApprovalStatus { filter: None });
        assert_eq!(result["isError"], true);
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        assert!(text.contains("cannot reach the agent socket"), "{text}");

        let (_dir, sock, _server) =
            daemon(&[r#"{"result":"error","message":"not inside an agent session"}"#]);
        let result = run(&sock, &ToolCall::ApprovalStatus { filter: None });
        assert_eq!(result["isError"], true);
        assert_eq!(result["content"][0]["text"], "not inside an agent session");

        let missing = ToolCall::RequestApproval {
            target: Target::Exec(vec!["countersign-test-no-such-tool".into()]),
            reason: "x".into(),
        };
        let result = run(none, &missing);
        assert_eq!(result["isError"], true);
        assert_eq!(
            result["content"][0]["text"],
            "countersign-test-no-such-tool: command not found"
        );
    }

    #[test]
    fn approval_status_lists_and_filters() {
        let list = format!(r#"{{"result":"requests","requests":[{PENDING_VIEW}]}}"#);
        let (_dir, sock, _server) = daemon(&[&list, &list]);
        let all = run(&sock, &ToolCall::ApprovalStatus { filter: None });
        assert_eq!(
            all["structuredContent"]["requests"][0]["request_id"],
            "r-0b1c2d3e4f"
        );
        let text = all["content"][0]["text"].as_str().unwrap_or_default();
        assert!(
            text.starts_with("r-0b1c2d3e4f pending: `kubectl delete deploy web`"),
            "{text}"
        );
        let other = ToolCall::ApprovalStatus {
            filter: Some(Subject::RequestId("r-ffffffffff".into())),
        };
        let none = run(&sock, &other);
        assert_eq!(none["structuredContent"]["requests"], json!([]));
        assert_eq!(
            none["content"][0]["text"],
            "no such request in this session"
        );
    }

    #[test]
    fn wait_for_decision_resolves_the_request_id_and_reports_the_outcome() {
        let list = format!(r#"{{"result":"requests","requests":[{PENDING_VIEW}]}}"#);
        let granted = r#"{"result":"waited","outcome":{"state":"granted","grant_id":"51aa03bc9de01f27","uses":1,"expires_at":"2026-11-23T14:10:00.000Z","approvers":["alice"]}}"#;
        let (_dir, sock, server) = daemon(&[&list, granted]);
        let call = ToolCall::WaitForDecision {
            subject: Subject::RequestId("r-0b1c2d3e4f".into()),
            timeout: Duration::from_secs(60),
        };
        let result = run(&sock, &call);
        let s = &result["structuredContent"];
        assert_eq!(s["outcome"], "approved", "{result}");
        assert_eq!(s["grant"]["uses"], 1);
        assert_eq!(s["grant"]["approvers"], json!(["alice"]));
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        assert!(
            text.starts_with("approved: run `kubectl delete deploy web` now"),
            "{text}"
        );
        let sent = server.join().expect("daemon");
        assert_eq!(
            sent[1],
            "{\"op\":\"wait\",\"fingerprint\":\"9a3f00112233aabb\",\"timeout_ms\":60000}\n"
        );

        let denied = r#"{"result":"waited","outcome":{"state":"denied","decided_by":"bob","reason":"not now"}}"#;
        let timed_out = r#"{"result":"waited","outcome":{"state":"timed_out"}}"#;
        let (_dir, sock, _server) = daemon(&[&list, denied, &list, timed_out]);
        let by_fp = ToolCall::WaitForDecision {
            subject: Subject::Fingerprint("9a3f00112233aabb".into()),
            timeout: Duration::from_secs(5),
        };
        let result = run(&sock, &by_fp);
        assert_eq!(result["structuredContent"]["outcome"], "denied");
        assert_eq!(result["structuredContent"]["decided_by"], "bob");
        assert_eq!(
            result["content"][0]["text"],
            "`kubectl delete deploy web` was denied by bob: not now"
        );
        let result = run(&sock, &by_fp);
        assert_eq!(result["structuredContent"]["outcome"], "pending");
        assert_eq!(result["isError"], false);

        let (_dir, sock, _server) = daemon(&[r#"{"result":"requests","requests":[]}"#]);
        let unknown = ToolCall::WaitForDecision {
            subject: Subject::RequestId("r-1".into()),
            timeout: Duration::from_secs(5),
        };
        let result = run(&sock, &unknown);
        assert_eq!(result["isError"], true);
        assert_eq!(
            result["content"][0]["text"],
            "no request r-1 in this session (approval_status lists them)"
        );
    }
}

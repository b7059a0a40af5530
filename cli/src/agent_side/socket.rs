//! The daemon's agent socket: one JSON request line, one JSON response line, per connection.
//! No credentials: the daemon knows the caller's session from its peer pid.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use countersign_api::agent_socket::{AgentRequest, AgentResponse, SOCKET_NAME};

use crate::exit::Failure;
use crate::render::clean;

/// Where the daemon listens unless `COUNTERSIGN_AGENT_SOCKET` says otherwise.
pub const DEFAULT_DIR: &str = "/run/countersign";
/// Environment variable overriding the socket path.
pub const ENV: &str = countersign_api::agent_socket::SOCKET_ENV;
/// Longest accepted response line: a daemon bug must not exhaust our memory.
const MAX_RESPONSE: u64 = 1 << 20;

/// The socket path: `$COUNTERSIGN_AGENT_SOCKET` or `/run/countersign/agent-api.sock`.
pub fn path() -> PathBuf {
    match std::env::var_os(ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_DIR).join(SOCKET_NAME),
    }
}

/// Sends `request`, waits up to `timeout` for the answer. A daemon-side `error` answer is a
/// refusal (exit 1); no daemon is exit 3.
pub fn call(request: &AgentRequest, timeout: Duration) -> Result<AgentResponse, Failure> {
    call_at(&path(), request, timeout)
}

/// [`call`] on the socket at `path`.
pub fn call_at(
    path: &Path,
    request: &AgentRequest,
    timeout: Duration,
) -> Result<AgentResponse, Failure> {
    let unreachable = |e: std::io::Error| {
        Failure::unreachable(format!(
            "cannot reach the agent socket {}: {e} (is countersign-agent running?)",
            path.display()
        ))
    };
    let mut stream = UnixStream::connect(path).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(unreachable)?;
    let mut line = serde_json::to_vec(request)
        .map_err(|e| Failure::refused(format!("encoding the request: {e}")))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(unreachable)?;
    let mut reply = String::new();
    let read = BufReader::new(&stream)
        .take(MAX_RESPONSE)
        .read_line(&mut reply);
    match read {
        Ok(0) => {
            return Err(Failure::unreachable(format!(
                "the agent socket {} closed without answering",
                path.display()
            )))
        }
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            return Err(Failure::unreachable(format!(
                "the daemon did not answer within {}",
                crate::render::time::span(timeout)
            )))
        }
        Err(e) => return Err(unreachable(e)),
    }
    parse(&reply)
}

/// Decodes one response line.
pub fn parse(line: &str) -> Result<AgentResponse, Failure> {
    match serde_json::from_str(line.trim_end()) {
        Ok(AgentResponse::Error { message }) => Err(Failure::refused(clean(&message))),
        Ok(response) => Ok(response),
        Err(e) => Err(Failure::refused(format!(
            "the daemon's answer is not understood: {e}"
        ))),
    }
}

/// A response of another kind than asked: the daemon and this CLI disagree on the protocol.
pub fn unexpected(response: &AgentResponse) -> Failure {
    let kind = serde_json::to_value(response)
        .ok()
        .and_then(|v| v.get("result").and_then(|r| r.as_str()).map(str::to_owned))
        .unwrap_or_default();
    Failure::refused(format!("unexpected answer from the daemon: {kind:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_api::agent_socket::WaitOutcome;

    #[test]
    fn unreachable_socket_is_exit_3() {
        let why = AgentRequest::Why { pid: None };
        let f = call_at(
            Path::new("/nonexistent/agent-api.sock"),
            &why,
            Duration::from_secs(1),
        )
        .expect_err("no socket");
        assert_eq!(f.code, 3);
        assert!(
            f.message.contains("/nonexistent/agent-api.sock"),
            "{}",
            f.message
        );
    }

    #[test]
    fn responses() {
        let f = parse(r#"{"result":"error","message":"not inside an agent session"}"#)
            .expect_err("error");
        assert_eq!(
            (f.code, f.message.as_str()),
            (1, "not inside an agent session")
        );
        let ok = parse(r#"{"result":"waited","outcome":{"state":"expired"}}"#).expect("ok");
        assert_eq!(
            ok,
            AgentResponse::Waited {
                outcome: WaitOutcome::Expired
            }
        );
        assert_eq!(parse("garbage").map_err(|f| f.code), Err(1));
    }

    #[test]
    fn round_trip_over_a_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("agent-api.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        let server = std::thread::spawn(move || {
            let (conn, _) = listener.accept().expect("accept");
            let mut line = String::new();
            BufReader::new(&conn).read_line(&mut line).expect("read");
            let mut conn = conn;
            conn.write_all(b"{\"result\":\"refusal\",\"refusal\":null}\n")
                .expect("write");
            line
        });
        let why = AgentRequest::Why { pid: Some(7) };
        let answer = call_at(&sock, &why, Duration::from_secs(5));
        assert_eq!(answer, Ok(AgentResponse::Refusal { refusal: None }));
        let sent = server.join().expect("server");
        assert_eq!(sent, "{\"op\":\"why\",\"pid\":7}\n");
    }
}

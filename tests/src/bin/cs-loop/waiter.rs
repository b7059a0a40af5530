//! `cs-loop wait`: what an AI agent does after a refusal that raised a request — one `wait` on
//! the daemon's agent socket. The approvals run starts it inside the agent session, because
//! the socket answers for the caller's own session only (it reads the peer's cgroup).

use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::net::UnixStream,
};

use crate::{options::Flags, Failure};

/// First line printed: the request is on its way to the daemon.
pub const SENT: &str = "sent";

/// `wait --socket PATH --fingerprint FP [--timeout-ms N]`: prints [`SENT`], then the
/// daemon's answer (one JSON line) when it comes.
pub fn cmd(args: &[String]) -> Result<(), Failure> {
    let flags = Flags::parse("wait", args, &["socket", "fingerprint", "timeout-ms"])?;
    let socket = flags.path("socket")?;
    let fingerprint = flags
        .get("fingerprint")
        .ok_or_else(|| Failure::Usage("wait: --fingerprint FP is required".into()))?;
    let timeout_ms: u64 = flags.num("timeout-ms", 30_000)?;
    let mut line = serde_json::json!({
        "op": "wait",
        "fingerprint": fingerprint,
        "timeout_ms": timeout_ms,
    })
    .to_string();
    line.push('\n');
    let mut stream = UnixStream::connect(&socket)
        .map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
    stream
        .write_all(line.as_bytes())
        .map_err(|e| format!("writing to {}: {e}", socket.display()))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{SENT}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| format!("reading from {}: {e}", socket.display()))?;
    if answer.trim().is_empty() {
        return Err(Failure::Run(
            "the daemon closed the socket without an answer".into(),
        ));
    }
    writeln!(out, "{}", answer.trim_end())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Run(format!("stdout: {e}")))
}

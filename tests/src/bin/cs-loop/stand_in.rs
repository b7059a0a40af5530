//! `cs-loop agent`: a stand-in for an AI agent, started once inside the agent session. It
//! runs what the approvals run tells it, one command per line on stdin, and answers one line
//! on stdout for each:
//!
//! - `exec ARG` → runs `GUARDED ARG`; answers `refused`, `passed` or `other WHY`;
//! - `plain` → runs `/bin/true`; same answers;
//! - `wait FINGERPRINT TIMEOUT_MS` → one `wait` on the agent socket (which answers for the
//!   caller's own session only, hence a process in the session); answers `sent` once the
//!   request is written, then the daemon's answer (one JSON line).
//!
//! Its children are forked inside the session, as an agent's are: moving a process into a
//! cgroup (writing `cgroup.procs`) waits for an RCU grace period now and then, which would
//! otherwise add milliseconds to some execs and none to others.

use std::{
    io::{self, BufRead as _, BufReader, Write as _},
    os::unix::{net::UnixStream, process::ExitStatusExt as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use tests::bench::Failure;

use crate::options::Flags;

/// Answer to `exec`/`plain`: the kernel refused the exec.
pub const REFUSED: &str = "refused";
/// Answer to `exec`/`plain`: it ran and exited 0.
pub const PASSED: &str = "passed";
/// First answer to `wait`: the request is on its way to the daemon.
pub const SENT: &str = "sent";

/// `agent --socket PATH --guarded PATH`: serves commands until stdin closes.
pub fn cmd(args: &[String]) -> Result<(), Failure> {
    let flags = Flags::parse("agent", args, &["socket", "guarded"])?;
    let socket = flags.path("socket")?;
    let guarded = flags.path("guarded")?;
    let mut out = io::stdout().lock();
    for line in io::stdin().lock().lines() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["exec", arg] => run(&guarded, arg),
            ["plain"] => run(Path::new("/bin/true"), "plain"),
            ["wait", fingerprint, timeout_ms] => wait(&socket, fingerprint, timeout_ms, &mut out),
            _ => format!("other unknown command {line:?}"),
        };
        writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdout: {e}"))?;
    }
    Ok(())
}

/// Runs `program arg` to its end and says how it ended.
fn run(program: &Path, arg: &str) -> String {
    let status = Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => PASSED.into(),
        // Fallback mode: killed before the new image ran.
        Ok(s) if s.signal() == Some(libc::SIGKILL) => REFUSED.into(),
        Ok(s) => format!("other ended with {s}"),
        // LSM mode: execve failed.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => REFUSED.into(),
        Err(e) => format!("other could not start: {e}"),
    }
}

/// One `wait` on the agent socket: prints [`SENT`] at once, returns the daemon's answer.
fn wait(socket: &PathBuf, fingerprint: &str, timeout_ms: &str, out: &mut impl io::Write) -> String {
    let Ok(timeout_ms) = timeout_ms.parse::<u64>() else {
        return format!("other timeout {timeout_ms:?} is not a number");
    };
    let mut request = serde_json::json!({
        "op": "wait",
        "fingerprint": fingerprint,
        "timeout_ms": timeout_ms,
    })
    .to_string();
    request.push('\n');
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => return format!("other connecting to {}: {e}", socket.display()),
    };
    if let Err(e) = stream.write_all(request.as_bytes()) {
        return format!("other writing to {}: {e}", socket.display());
    }
    if let Err(e) = writeln!(out, "{SENT}").and_then(|()| out.flush()) {
        return format!("other stdout: {e}");
    }
    let mut answer = String::new();
    match BufReader::new(stream).read_line(&mut answer) {
        Ok(_) if !answer.trim().is_empty() => answer.trim_end().to_owned(),
        Ok(_) => "other the daemon closed the socket without an answer".into(),
        Err(e) => format!("other reading from {}: {e}", socket.display()),
    }
}

//! What happens inside the agent session: the guarded exec (refused, or let through by a
//! grant) and the waiter on the agent socket.

use std::{
    io::{BufRead as _, BufReader},
    os::unix::process::ExitStatusExt as _,
    process::{Child, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use serde_json::Value;

use super::world::World;
use crate::waiter;

/// How a guarded exec ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exec {
    /// Refused by the kernel: EPERM from execve (LSM mode) or killed before the new image
    /// ran (fallback mode).
    Refused,
    /// Ran and exited 0: a grant let it through.
    Passed,
    /// Anything else, described.
    Other(String),
}

impl World {
    /// `guarded ARG` run inside the session (the process joins the session's cgroup between
    /// fork and exec), to its end.
    pub fn exec(&self, arg: &str) -> Exec {
        self.exec_of(&self.guarded, arg)
    }

    /// `/bin/true ARG` (not guarded) inside the session.
    pub fn exec_plain(&self) -> Exec {
        self.exec_of(std::path::Path::new("/bin/true"), "plain")
    }

    fn exec_of(&self, program: &std::path::Path, arg: &str) -> Exec {
        let mut cmd = self.session.command(program);
        cmd.arg(arg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let t0 = std::time::Instant::now();
        let child = cmd.spawn();
        let t1 = std::time::Instant::now();
        let st = child.and_then(|mut c| c.wait());
        eprintln!("DBG exec {} {arg}: spawn {:?} wait {:?}", program.display(), t1 - t0, t1.elapsed());
        match st {
            Ok(s) if s.success() => Exec::Passed,
            Ok(s) if s.signal() == Some(libc::SIGKILL) => Exec::Refused,
            Ok(s) => Exec::Other(format!("ended with {s}")),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => Exec::Refused,
            Err(e) => Exec::Other(format!("could not start: {e}")),
        }
    }

    /// Starts `cs-loop wait` for `fingerprint` inside the session and waits until it has
    /// written its request to the agent socket.
    pub fn spawn_waiter(&self, fingerprint: &str, timeout: Duration) -> Result<Waiter, String> {
        let socket = self.agent.agent_socket();
        let mut cmd = self.session.command(&self.exe);
        cmd.arg("wait")
            .arg("--socket")
            .arg(&socket)
            .args(["--fingerprint", fingerprint])
            .args(["--timeout-ms", &timeout.as_millis().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting the waiter: {e}"))?;
        let stdout = child.stdout.take().ok_or("the waiter has no stdout")?;
        let (tx, lines) = mpsc::channel();
        // A thread reads, so that every wait below has a deadline.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut w = Waiter { child, lines };
        let first = w.next_line(timeout)?;
        if first != waiter::SENT {
            return Err(format!(
                "the waiter printed {first:?} instead of {:?}",
                waiter::SENT
            ));
        }
        Ok(w)
    }
}

/// A running `cs-loop wait`.
pub struct Waiter {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Waiter {
    fn next_line(&mut self, timeout: Duration) -> Result<String, String> {
        self.lines.recv_timeout(timeout).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => format!("the waiter said nothing for {timeout:?}"),
            mpsc::RecvTimeoutError::Disconnected => {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                format!("the waiter ended ({status}) without an answer")
            }
        })
    }

    /// The daemon's answer, which must be `granted`; returns its grant id.
    pub fn granted(mut self, timeout: Duration) -> Result<String, String> {
        let line = self.next_line(timeout)?;
        let _ = self.child.wait();
        let answer: Value = serde_json::from_str(&line)
            .map_err(|e| format!("the waiter's answer is not JSON ({e}): {line}"))?;
        let outcome = &answer["outcome"];
        if answer["result"] != "waited" || outcome["state"] != "granted" {
            return Err(format!("the wait did not end with a grant: {line}"));
        }
        outcome["grant_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("granted without a grant_id: {line}"))
    }
}

impl Drop for Waiter {
    /// A waiter abandoned on an error is killed and reaped, never left in the session.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

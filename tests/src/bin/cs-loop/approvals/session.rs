//! The agent session's side of the loop, played by one `cs-loop agent` process inside the
//! session (see `stand_in`): the guarded exec, refused or let through by a grant, and the
//! wait on the agent socket.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    process::{Child, ChildStdin, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use serde_json::Value;

use super::world::World;
use crate::stand_in;

/// How an exec in the session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exec {
    /// Refused by the kernel: EPERM from execve (LSM mode) or killed before the new image
    /// ran (fallback mode).
    Refused,
    /// Ran and exited 0.
    Passed,
    /// Anything else, described.
    Other(String),
}

/// The stand-in agent running in the session.
pub struct Agent {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    timeout: Duration,
}

impl World {
    /// Starts the stand-in agent inside the session (it joins the session's cgroup between
    /// fork and exec, once); `timeout` bounds every answer awaited from it.
    pub fn start_stand_in(&self, timeout: Duration) -> Result<Agent, String> {
        let mut cmd = self.session.command(&self.exe);
        cmd.arg("agent")
            .arg("--socket")
            .arg(self.rig.agent.agent_socket())
            .arg("--guarded")
            .arg(&self.guarded)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting the stand-in agent: {e}"))?;
        let stdin = child
            .stdin
            .take()
            .ok_or("the stand-in agent has no stdin")?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the stand-in agent has no stdout")?;
        let (tx, lines) = mpsc::channel();
        // A thread reads, so that every answer awaited has a deadline.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Agent {
            child,
            stdin,
            lines,
            timeout,
        })
    }
}

impl Agent {
    fn send(&mut self, command: &str) -> Result<(), String> {
        writeln!(self.stdin, "{command}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("telling the stand-in agent `{command}`: {e}"))
    }

    fn answer(&mut self) -> Result<String, String> {
        self.lines.recv_timeout(self.timeout).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => {
                format!("the stand-in agent said nothing for {:?}", self.timeout)
            }
            mpsc::RecvTimeoutError::Disconnected => {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                format!("the stand-in agent ended ({status})")
            }
        })
    }

    fn exec_answer(&mut self, command: &str) -> Result<Exec, String> {
        self.send(command)?;
        let answer = self.answer()?;
        Ok(match answer.as_str() {
            stand_in::REFUSED => Exec::Refused,
            stand_in::PASSED => Exec::Passed,
            other => Exec::Other(other.trim_start_matches("other ").to_owned()),
        })
    }

    /// `guarded ARG`, to its end.
    pub fn exec(&mut self, arg: &str) -> Result<Exec, String> {
        self.exec_answer(&format!("exec {arg}"))
    }

    /// `/bin/true`, to its end.
    pub fn plain(&mut self) -> Result<Exec, String> {
        self.exec_answer("plain")
    }

    /// Starts a `wait` for `fingerprint` and returns once the request is written to the
    /// agent socket.
    pub fn start_wait(&mut self, fingerprint: &str) -> Result<(), String> {
        let ms = self.timeout.as_millis();
        self.send(&format!("wait {fingerprint} {ms}"))?;
        match self.answer()? {
            a if a == stand_in::SENT => Ok(()),
            other => Err(format!("the wait did not start: {other}")),
        }
    }

    /// The answer of the wait, which must be `granted`; returns its grant id.
    pub fn granted(&mut self) -> Result<String, String> {
        let line = self.answer()?;
        let answer: Value = serde_json::from_str(&line)
            .map_err(|_| format!("the wait ended without an answer: {line}"))?;
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

impl Drop for Agent {
    /// Closing stdin ends the stand-in; one stuck in a wait is killed. Reaped either way.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

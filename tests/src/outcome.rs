//! What a process the test started did, classified the way a user sees it: it ran, an
//! operation failed with an errno (cs-probe prints `errno=N NAME`), or it was killed.

use std::{fmt, os::unix::process::ExitStatusExt as _, process::ExitStatus};

use crate::env::Mode;

/// cs-probe's exit code for an exec that failed with EPERM or EACCES.
pub const EXIT_EXEC_DENIED: i32 = 126;

/// A finished process and everything it printed.
#[derive(Debug)]
pub struct Outcome {
    /// Pid of the process (the exec'ing process keeps it, so events name it as `tgid`).
    pub pid: u32,
    /// The command line, for messages.
    pub label: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// The classification of an [`Outcome`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Exited normally without reporting an errno.
    Ran { code: i32 },
    /// cs-probe reported that its operation failed with `errno`.
    Failed { errno: i32, code: i32 },
    /// Terminated by a signal.
    Killed { signal: i32 },
}

impl Outcome {
    pub fn verdict(&self) -> Verdict {
        if let Some(signal) = self.status.signal() {
            return Verdict::Killed { signal };
        }
        let code = self.status.code().unwrap_or(-1);
        match self.errno() {
            Some(errno) => Verdict::Failed { errno, code },
            None => Verdict::Ran { code },
        }
    }

    /// The errno of cs-probe's `errno=N NAME` result line, if it printed one.
    pub fn errno(&self) -> Option<i32> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("errno="))
            .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .next_back()
    }

    /// Whether the process printed exactly this line.
    pub fn printed(&self, line: &str) -> bool {
        self.stdout.lines().any(|l| l == line)
    }

    /// Panics unless the process ran to exit code 0 without reporting an errno.
    pub fn assert_ran(&self) {
        assert_eq!(
            self.verdict(),
            Verdict::Ran { code: 0 },
            "expected it to run: {self}"
        );
    }

    /// Panics unless a cs-probe network operation succeeded (`ok`).
    /// Panics unless the process exited with status 0 (for commands other than cs-probe).
    pub fn assert_success(&self) {
        assert!(self.status.success(), "expected success: {self}");
    }

    /// Panics unless the process exited with `code`.
    pub fn assert_exit(&self, code: i32) {
        assert_eq!(self.status.code(), Some(code), "exit code of {self}");
    }

    pub fn assert_ok(&self) {
        self.assert_ran();
        assert!(self.printed("ok"), "expected `ok`: {self}");
    }

    /// Panics unless the operation failed with `errno` (connect refusals are EPERM in every
    /// mode).
    pub fn assert_errno(&self, errno: i32) {
        assert!(
            matches!(self.verdict(), Verdict::Failed { errno: e, .. } if e == errno),
            "expected errno {errno}: {self}"
        );
    }

    /// Panics unless this exec was refused the way a user sees it in `mode`: EPERM from execve
    /// (exit 126) with BPF LSM, SIGKILL before the new image runs in fallback mode.
    pub fn assert_exec_refused(&self, mode: Mode) {
        let expected = match mode {
            Mode::Lsm => Verdict::Failed {
                errno: libc::EPERM,
                code: EXIT_EXEC_DENIED,
            },
            Mode::Fallback => Verdict::Killed {
                signal: libc::SIGKILL,
            },
        };
        assert_eq!(
            self.verdict(),
            expected,
            "expected the exec to be refused ({mode} mode): {self}"
        );
        assert!(
            !self.stdout.lines().any(|l| l.starts_with("ran ")),
            "the refused program ran anyway: {self}"
        );
    }

    /// Whether this exec was refused as [`Self::assert_exec_refused`] expects.
    pub fn is_exec_refused(&self, mode: Mode) -> bool {
        match (mode, self.verdict()) {
            (Mode::Lsm, Verdict::Failed { errno, code }) => {
                errno == libc::EPERM && code == EXIT_EXEC_DENIED
            }
            (Mode::Fallback, Verdict::Killed { signal }) => signal == libc::SIGKILL,
            _ => false,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` (pid {}) → {:?}",
            self.label,
            self.pid,
            self.verdict()
        )?;
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if !text.trim().is_empty() {
                write!(
                    f,
                    "\n  {name}: {}",
                    text.trim_end().replace('\n', "\n          ")
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(raw_status: i32, stdout: &str) -> Outcome {
        Outcome {
            pid: 1,
            label: "test".into(),
            status: ExitStatus::from_raw(raw_status),
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn classifies_what_a_user_sees() {
        // Wait statuses: exit code in bits 8..16, terminating signal in the low bits.
        let refused = outcome(126 << 8, "errno=1 EPERM\n");
        assert_eq!(
            refused.verdict(),
            Verdict::Failed {
                errno: 1,
                code: 126
            }
        );
        assert!(refused.is_exec_refused(Mode::Lsm) && !refused.is_exec_refused(Mode::Fallback));
        let killed = outcome(libc::SIGKILL, "");
        assert_eq!(
            killed.verdict(),
            Verdict::Killed {
                signal: libc::SIGKILL
            }
        );
        assert!(killed.is_exec_refused(Mode::Fallback) && !killed.is_exec_refused(Mode::Lsm));
        let ran = outcome(0, "waiting\nran a b\n");
        assert_eq!(ran.verdict(), Verdict::Ran { code: 0 });
        assert!(ran.printed("ran a b"));
    }
}

//! Running a command with its output captured in files and a time limit.
//!
//! Files instead of pipes: nothing can block on a full pipe, output of a process that was
//! killed is still there to read, and a test can watch the output of a running process.

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::outcome::Outcome;

/// Longest a helper process may run before the test gives up on it.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// A process started by the test.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    label: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Spawned {
    /// Starts `cmd` with stdin from /dev/null and output into `<out_base>.stdout|.stderr`.
    pub fn start(cmd: Command, out_base: &Path) -> Self {
        Self::start_with_stdin(cmd, out_base, Stdio::null())
    }

    /// Like [`Self::start`], with stdin a pipe the test writes to (see [`Self::take_stdin`]):
    /// for servers that read requests on stdin, such as `countersign mcp`.
    pub fn start_piped(cmd: Command, out_base: &Path) -> Self {
        Self::start_with_stdin(cmd, out_base, Stdio::piped())
    }

    fn start_with_stdin(mut cmd: Command, out_base: &Path, stdin: Stdio) -> Self {
        let label = describe(&cmd);
        let stdout = out_base.with_extension("stdout");
        let stderr = out_base.with_extension("stderr");
        let file = |p: &Path| {
            File::create(p).unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()))
        };
        cmd.stdin(stdin).stdout(file(&stdout)).stderr(file(&stderr));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{label}`: {e}"));
        Self {
            child,
            label,
            stdout,
            stderr,
        }
    }

    /// The write end of stdin of a process started by [`Self::start_piped`]; dropping it is
    /// the end of the process's input.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.child
            .stdin
            .take()
            .unwrap_or_else(|| panic!("`{}` has no stdin pipe (left)", self.label))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process printed on stdout so far.
    pub fn stdout_so_far(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// What the process printed on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Whether the process has ended (it stays reapable by [`Self::wait`]).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits until stderr contains `text`; panics after `timeout` or if the process ends first.
    pub fn wait_for_stderr(&mut self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stderr_so_far().contains(text) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "`{}` exited ({status}) before printing {text:?} on stderr: {}",
                    self.label,
                    self.stderr_so_far()
                );
            }
            assert!(
                Instant::now() < deadline,
                "`{}` did not print {text:?} on stderr within {timeout:?}: {}",
                self.label,
                self.stderr_so_far()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until stdout has the line `line`; panics after `timeout`.
    pub fn wait_for_line(&mut self, line: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stdout_so_far().lines().any(|l| l == line) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "`{}` exited ({status}) before printing {line:?}",
                    self.label
                );
            }
            assert!(
                Instant::now() < deadline,
                "`{}` did not print {line:?}",
                self.label
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the process to end (killing it and panicking after [`PROCESS_TIMEOUT`]).
    pub fn wait(mut self) -> Outcome {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "`{}` still running after {PROCESS_TIMEOUT:?}: killed",
                        self.label
                    );
                }
                Err(e) => panic!("cannot wait for `{}`: {e}", self.label),
            }
        };
        Outcome {
            pid: self.child.id(),
            label: std::mem::take(&mut self.label),
            status,
            stdout: fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr).unwrap_or_default(),
        }
    }
}

impl Drop for Spawned {
    /// A process abandoned by a panicking test is killed and reaped, never left behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `program arg…` (with the working directory when set), for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    if let Some(dir) = cmd.get_current_dir() {
        s.push_str(&format!(" (in {})", dir.display()));
    }
    s
}

/// A directory of output files with unique names, one pair per started process.
#[derive(Debug)]
pub struct OutputDir {
    dir: PathBuf,
    next: std::sync::atomic::AtomicU64,
}

impl OutputDir {
    pub fn new(dir: PathBuf) -> Self {
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        Self {
            dir,
            next: 0.into(),
        }
    }

    /// A fresh base name (`<dir>/<n>-<tag>`); [`Spawned::start`] adds the extensions.
    pub fn next(&self, tag: &str) -> PathBuf {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag: String = tag
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        self.dir.join(format!("{n:04}-{tag}"))
    }

    /// Starts `cmd` with its output in this directory.
    pub fn start(&self, cmd: Command, tag: &str) -> Spawned {
        Spawned::start(cmd, &self.next(tag))
    }

    /// Runs `cmd` to its end.
    pub fn run(&self, cmd: Command, tag: &str) -> Outcome {
        self.start(cmd, tag).wait()
    }
}

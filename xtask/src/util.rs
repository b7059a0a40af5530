//! Running external commands: printed before they run, errors that name them.

use std::{
    io::{BufRead as _, BufReader, Read},
    path::PathBuf,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

/// The repository root (xtask lives one level below it).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}

/// The project's gitignored cache directory (`<repo>/.cache/<sub>`).
pub fn cache_dir(sub: &str) -> PathBuf {
    repo_root().join(".cache").join(sub)
}

/// How a command is shown in logs and errors.
pub fn describe(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// Runs `cmd` with inherited stdio; fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let what = describe(cmd);
    println!("    $ {what}");
    let status = cmd.status().with_context(|| format!("starting `{what}`"))?;
    if !status.success() {
        bail!("`{what}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout; fails (with stderr) unless it exits 0.
pub fn output(cmd: &mut Command) -> Result<String> {
    let what = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting `{what}`"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("`{what}` failed ({}): {}", out.status, stderr.trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// True when `cmd` can be started and exits 0 (output discarded).
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.status().is_ok_and(|s| s.success())
}

/// What [`run_tee`] saw.
pub struct Teed {
    /// Exit code; `None` when killed by a signal or by the timeout.
    pub code: Option<i32>,
    /// Every stdout line, without the prefix.
    pub lines: Vec<String>,
    /// True when the timeout expired and the command was killed.
    pub timed_out: bool,
    /// Why the watch stopped the command early (see [`Watch`]), if it did.
    pub stopped: Option<String>,
}

/// What ends a [`run_tee_watched`] command before its timeout.
pub struct Watch<'a> {
    /// A line that means the command is lost (a guest kernel's lockup report): the command is
    /// given `grace` more to print (stack traces), then killed.
    pub alarm: &'a dyn Fn(&str) -> bool,
    /// How long output may keep coming after the first alarm line.
    pub grace: Duration,
    /// No line for this long means the command is stuck: it is killed.
    pub silence: Duration,
}

/// Runs `cmd`, echoing each stdout line live with `prefix` and keeping a copy; stderr is
/// inherited, stdin is closed. The command is killed after `timeout`.
pub fn run_tee(cmd: &mut Command, prefix: &str, timeout: Duration) -> Result<Teed> {
    run_tee_watched(cmd, prefix, timeout, None)
}

/// [`run_tee`], also killing the command early when `watch` says it is lost.
pub fn run_tee_watched(
    cmd: &mut Command,
    prefix: &str,
    timeout: Duration,
    watch: Option<&Watch>,
) -> Result<Teed> {
    let what = describe(cmd);
    println!("    $ {what}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting `{what}`"))?;
    let stdout = child.stdout.take().context("child stdout")?;
    let (tx, rx) = mpsc::channel();
    // A detached thread reads, so that the deadline holds and so that a grandchild that keeps
    // the pipe open (a daemon the tests left behind) cannot make us wait forever.
    thread::spawn(move || forward_lines(stdout, &tx));
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    let mut timed_out = false;
    let mut stopped = None;
    let mut last_line = Instant::now();
    // The first alarm line and when output after it stops counting.
    let mut alarm: Option<(String, Instant)> = None;
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                last_line = Instant::now();
                if let Some(w) = watch.filter(|w| alarm.is_none() && (w.alarm)(&line)) {
                    alarm = Some((line.clone(), Instant::now() + w.grace));
                }
                echo(prefix, line, &mut lines);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break child.wait(),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for `{what}`"))?
        {
            break Ok(status);
        }
        let now = Instant::now();
        let lost = match (watch, &alarm) {
            (_, Some((line, until))) if now >= *until => Some(format!("it reported `{line}`")),
            (Some(w), None) if now.duration_since(last_line) >= w.silence => {
                Some(format!("it printed nothing for {}s", w.silence.as_secs()))
            }
            _ => None,
        };
        if lost.is_some() || now >= deadline {
            stopped = lost;
            timed_out = stopped.is_none();
            child.kill().with_context(|| format!("killing `{what}`"))?;
            break child.wait();
        }
    };
    let status = status.with_context(|| format!("waiting for `{what}`"))?;
    // What the child wrote just before it ended may still be in the channel.
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
        echo(prefix, line, &mut lines);
    }
    Ok(Teed {
        code: status.code(),
        lines,
        timed_out,
        stopped,
    })
}

fn echo(prefix: &str, line: String, lines: &mut Vec<String>) {
    println!("{prefix}{line}");
    lines.push(line);
}

/// Sends `input`'s lines (lossy UTF-8, without escapes and control characters) until EOF.
fn forward_lines(input: impl Read, tx: &mpsc::Sender<String>) {
    let mut reader = BufReader::new(input);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if tx
                    .send(strip_escapes(&String::from_utf8_lossy(&buf)))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Removes terminal escape sequences (the firmware clears the screen) and control characters.
fn strip_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            // CSI: ESC [ parameters… final byte in '@'..='~'; other escapes are two characters.
            '\x1b' => {
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Prints a step heading and returns a timer for [`done`].
pub fn heading(title: &str) -> Instant {
    println!("\n==> {title}");
    Instant::now()
}

/// Prints how long the step that began at `start` took.
pub fn done(title: &str, start: Instant, ok: bool) {
    let verdict = if ok { "ok" } else { "FAILED" };
    println!(
        "<== {title}: {verdict} in {:.1}s",
        start.elapsed().as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_removed() {
        assert_eq!(strip_escapes("\x1bc\x1b[?7l\x1b[2JSeaBIOS\r\n"), "SeaBIOS");
        assert_eq!(
            strip_escapes("test result: \x1b[32mok\x1b[0m. 1 passed"),
            "test result: ok. 1 passed"
        );
    }
}

//! Writing to stdout and stderr without panicking.
//!
//! `println!` panics when stdout is a closed pipe (`countersign pending | head`), because the
//! Rust runtime ignores SIGPIPE (it must stay ignored: a server closing the TLS connection
//! would otherwise kill the process on the next write). These end quietly instead, with the
//! status a shell gives a process killed by SIGPIPE.

use std::io::{self, Write};

/// Exit status after a closed output pipe: 128 + SIGPIPE, as if the signal had ended us.
const BROKEN_PIPE_EXIT: i32 = 128 + 13;

/// Ends the process quietly when `e` is a closed pipe.
pub fn exit_if_broken_pipe(e: &io::Error) {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(BROKEN_PIPE_EXIT);
    }
}

/// Writes `text` to stdout.
pub fn stdout(text: &str) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        exit_if_broken_pipe(&e);
    }
}

/// Writes `text` to stderr; failures are ignored (there is nowhere left to report them).
pub fn stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// `print!` that does not panic.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::stdout(&format!($($arg)*)) };
}

/// `println!` that does not panic.
macro_rules! outln {
    () => { $crate::output::stdout("\n") };
    ($($arg:tt)*) => { $crate::output::stdout(&format!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that does not panic.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::stderr(&format!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {errln, out, outln};

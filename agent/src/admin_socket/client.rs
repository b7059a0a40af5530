//! Talking to a running daemon.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use anyhow::{bail, Context, Result};

use super::protocol::{Request, Response};

/// Sends one request and returns the response; a daemon-side error becomes an `Err`.
pub fn call(socket: &Path, req: &Request) -> Result<Response> {
    let mut s = UnixStream::connect(socket).with_context(|| {
        format!(
            "connecting to {} (is countersign-agent running?)",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut reply = String::new();
    BufReader::new(&s)
        .read_line(&mut reply)
        .context("reading the daemon's reply")?;
    match serde_json::from_str(&reply).context("the daemon's reply is not valid")? {
        Response::Error { message } => bail!("{message}"),
        r => Ok(r),
    }
}

//! Serving `RUN_DIR/agent-api.sock` (mode 0666: any process may ask about its own session).
//! One JSON object per line each way; garbage and over-long lines get an error response,
//! never a panic; the number of simultaneous connections is bounded.

use std::{
    collections::HashMap,
    os::unix::fs::PermissionsExt,
    path::Path,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::Semaphore,
};

use super::{
    handler::{error, AgentApi, MAX_LINE},
    protocol::AgentResponse,
};

/// Most connections served at once (each `wait` holds one).
const MAX_CONNECTIONS: usize = 512;
/// Most connections of one session at once (one session cannot take every slot).
const MAX_PER_SESSION: usize = 64;

/// Connections per session, so that [`MAX_PER_SESSION`] holds.
#[derive(Default)]
struct PerSession {
    counts: Mutex<HashMap<String, usize>>,
}

/// A connection counted against its session; uncounted when dropped.
struct Counted<'a> {
    per: &'a PerSession,
    key: String,
}

impl PerSession {
    fn enter(&self, key: String) -> Option<Counted<'_>> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key.clone()).or_default();
        if *n >= MAX_PER_SESSION {
            return None;
        }
        *n += 1;
        Some(Counted { per: self, key })
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        let mut counts = self.per.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Binds the socket (replacing a stale one), open to every local user.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        // Agents run as any user: they must be able to reach the socket. (The admin socket
        // beside it stays 0600.)
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o005 != 0o005 {
            std::fs::set_permissions(
                dir,
                std::fs::Permissions::from_mode((mode | 0o755) & 0o7777),
            )?;
        }
    }
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(l)
}

/// Accepts connections until the task is dropped.
pub async fn serve(listener: UnixListener, api: Arc<AgentApi>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_session = Arc::new(PerSession::default());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accepting on the agent socket");
                continue;
            }
        };
        let api = api.clone();
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let per_session = per_session.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, &api, &per_session).await {
                        tracing::debug!(error = %e, "agent connection ended");
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let (_, mut w) = stream.into_split();
                    let _ = write(
                        &mut w,
                        &error("too many connections to the agent socket; try again"),
                    )
                    .await;
                });
            }
        }
    }
}

async fn write(
    w: &mut tokio::net::unix::OwnedWriteHalf,
    resp: &AgentResponse,
) -> std::io::Result<()> {
    let mut out = serde_json::to_vec(resp).map_err(std::io::Error::other)?;
    out.push(b'\n');
    w.write_all(&out).await
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// A line is in the buffer (without its `\n`).
    Line,
    /// The peer closed the connection.
    End,
    /// The line is longer than allowed.
    TooLong,
}

/// Reads one line of at most `max` bytes into `buf`.
pub async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Read> {
    buf.clear();
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            // End of stream: a last line without `\n` still counts.
            return Ok(if buf.is_empty() {
                Read::End
            } else {
                Read::Line
            });
        }
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if buf.len() + take > max {
            return Ok(Read::TooLong);
        }
        buf.extend_from_slice(&chunk[..take]);
        r.consume(if done { take + 1 } else { take });
        if done {
            return Ok(Read::Line);
        }
    }
}

async fn connection(
    stream: UnixStream,
    api: &AgentApi,
    per_session: &PerSession,
) -> std::io::Result<()> {
    let cred = stream.peer_cred()?;
    // Found once, when the peer connected (its pid is alive then).
    let caller = api.caller(cred.pid());
    let (r, mut w) = stream.into_split();
    let counted = match &caller.session {
        Ok(key) => per_session.enter(key.to_string()),
        // Callers outside sessions only ever get an error: not worth a limit of their own.
        Err(_) => per_session.enter(String::new()),
    };
    if counted.is_none() {
        let message = format!(
            "this session has {MAX_PER_SESSION} connections to the agent socket open already"
        );
        return write(&mut w, &error(message)).await;
    }
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        match read_line(&mut r, &mut buf, MAX_LINE).await? {
            Read::End => return Ok(()),
            Read::Line => {
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let resp = api.handle_line(&caller, &buf).await;
                write(&mut w, &resp).await?;
            }
            Read::TooLong => {
                // Resynchronising inside an over-long line is guesswork: answer and hang up.
                let message = format!("request line longer than {MAX_LINE} bytes");
                return write(&mut w, &error(message)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_have_a_connection_limit() {
        let per = PerSession::default();
        let held: Vec<_> = (0..MAX_PER_SESSION)
            .map(|_| per.enter("g/s1".into()).expect("room"))
            .collect();
        assert!(per.enter("g/s1".into()).is_none());
        assert!(
            per.enter("g/s2".into()).is_some(),
            "other sessions are not affected"
        );
        drop(held);
        assert!(per.enter("g/s1".into()).is_some());
        assert!(per.counts.lock().expect("lock").len() <= 1);
    }

    #[tokio::test]
    async fn lines_are_capped() {
        let input: &[u8] = b"short\nxxxxxxxxxxxxxxxxxxxx\nlast";
        let mut r = BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut r, &mut buf, 10).await.expect("io"),
            Read::Line
        );
        assert_eq!(buf, b"short");
        assert_eq!(
            read_line(&mut r, &mut buf, 10).await.expect("io"),
            Read::TooLong
        );
        let mut r = BufReader::new(&b"a\n\nlast"[..]);
        assert_eq!(
            read_line(&mut r, &mut buf, 10).await.expect("io"),
            Read::Line
        );
        assert_eq!(
            read_line(&mut r, &mut buf, 10).await.expect("io"),
            Read::Line
        );
        assert!(buf.is_empty());
        assert_eq!(
            read_line(&mut r, &mut buf, 10).await.expect("io"),
            Read::Line
        );
        assert_eq!(buf, b"last");
        assert_eq!(
            read_line(&mut r, &mut buf, 10).await.expect("io"),
            Read::End
        );
    }
}

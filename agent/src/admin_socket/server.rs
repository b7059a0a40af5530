//! Serving the admin socket. Garbage gets an error response, never a panic; lines are capped.

use std::{os::unix::fs::PermissionsExt, path::Path, sync::Arc};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
};

use super::protocol::{Request, Response};

/// Longest request line accepted.
const MAX_LINE: u64 = 64 * 1024;

/// Who is calling, from the socket's peer credentials.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub pid: Option<i32>,
    pub uid: u32,
}

pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request, peer: Peer) -> Response;
}

/// Binds the socket (replacing a stale one), root-only.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

pub async fn serve(listener: UnixListener, handler: Arc<impl Handler>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let h = handler.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, h).await {
                        tracing::debug!(error = %e, "admin connection ended");
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "accepting on the admin socket"),
        }
    }
}

async fn connection(stream: UnixStream, handler: Arc<impl Handler>) -> std::io::Result<()> {
    let cred = stream.peer_cred()?;
    let peer = Peer {
        pid: cred.pid(),
        uid: cred.uid(),
    };
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r.take(MAX_LINE)).lines();
    while let Some(line) = lines.next_line().await? {
        let resp = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let h = handler.clone();
                tokio::task::spawn_blocking(move || h.handle(req, peer))
                    .await
                    .unwrap_or_else(|e| Response::Error {
                        message: format!("internal error: {e}"),
                    })
            }
            Err(e) => Response::Error {
                message: format!("bad request: {e}"),
            },
        };
        let mut out = serde_json::to_vec(&resp).unwrap_or_else(|_| b"{}".to_vec());
        out.push(b'\n');
        w.write_all(&out).await?;
    }
    Ok(())
}

use tokio::io::AsyncReadExt as _;

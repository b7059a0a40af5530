//! The chats' inbound HTTP endpoints (Slack interactivity, the Teams bot's messaging
//! endpoint) on one listener. Plain HTTP on loopback by default: a TLS-terminating proxy
//! faces the chats (both require HTTPS), see docs/chat.md.

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{slack, teams, Bridge};

/// Bodies larger than this are refused before anything reads them.
pub const MAX_BODY: usize = 256 * 1024;

/// The routes of the configured chats.
pub fn router(
    bridge: &Bridge,
    slack: Option<&std::sync::Arc<slack::Slack>>,
    teams: Option<&teams::Teams>,
) -> Router {
    let mut router = Router::new();
    if let Some(s) = slack {
        router = router.merge(slack::interactivity::routes(bridge, s));
    }
    if let Some(t) = teams {
        router = router.merge(teams::routes(bridge, t));
    }
    router.layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

/// Serves `router` until `stopping` turns true.
pub async fn serve(listener: TcpListener, router: Router, mut stopping: watch::Receiver<bool>) {
    let shutdown = async move {
        while !*stopping.borrow() {
            if stopping.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "chat endpoints stopped");
    }
}

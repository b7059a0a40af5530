//! Slack Socket Mode: the server opens a WebSocket to Slack (`apps.connections.open` with
//! the app-level token), acknowledges every envelope at once, handles interaction payloads
//! like the HTTP endpoint does, and reconnects when Slack says `disconnect` or the socket
//! drops (with a growing pause while it keeps failing).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::{interactivity, Slack};
use crate::chat::{Bridge, ChatError};

/// Longest pause between two failed connections.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// Keeps a Socket Mode connection until `stopping` turns true.
pub async fn run(slack: Arc<Slack>, bridge: Bridge, mut stopping: watch::Receiver<bool>) {
    let mut pause = Duration::from_millis(250);
    loop {
        let session = tokio::select! {
            r = connection(&slack, &bridge) => r,
            _ = stopping.changed() => return,
        };
        match session {
            Ok(()) => {
                tracing::info!("slack socket mode: reconnecting");
                pause = Duration::from_millis(250);
            }
            Err(e) => {
                tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "slack socket mode: connection failed");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stopping.changed() => return,
                }
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
        if *stopping.borrow() {
            return;
        }
    }
}

/// One connection: returns `Ok` when Slack asked to reconnect or closed the socket.
async fn connection(slack: &Arc<Slack>, bridge: &Bridge) -> Result<(), ChatError> {
    let Some(app_token) = &slack.config().app_token else {
        return Err(ChatError("no app_token".into()));
    };
    let answer = slack
        .api()
        .call("apps.connections.open", app_token, &json!({}))
        .await?;
    let url = answer["url"]
        .as_str()
        .ok_or_else(|| ChatError("apps.connections.open answered without url".into()))?;
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| ChatError(format!("socket mode connect: {e}")))?;
    tracing::info!("slack socket mode: connected");
    while let Some(message) = socket.next().await {
        let message = message.map_err(|e| ChatError(format!("socket mode: {e}")))?;
        let text = match message {
            Message::Text(t) => t,
            Message::Close(_) => return Ok(()),
            _ => continue,
        };
        let Ok(envelope) = serde_json::from_str::<Value>(text.as_str()) else {
            tracing::warn!("slack socket mode: a message that is not JSON; ignored");
            continue;
        };
        if let Some(id) = envelope["envelope_id"].as_str() {
            let ack = json!({ "envelope_id": id }).to_string();
            socket
                .send(Message::text(ack))
                .await
                .map_err(|e| ChatError(format!("socket mode ack: {e}")))?;
        }
        match envelope["type"].as_str() {
            Some("hello") => tracing::debug!("slack socket mode: hello"),
            Some("disconnect") => {
                tracing::info!(
                    reason = envelope["reason"].as_str().unwrap_or(""),
                    "slack socket mode: Slack asked to reconnect"
                );
                let _ = socket.close(None).await;
                return Ok(());
            }
            Some("interactive") => {
                let (bridge, slack) = (bridge.clone(), slack.clone());
                let payload = envelope["payload"].clone();
                tokio::spawn(async move { interactivity::handle(&bridge, &slack, &payload).await });
            }
            _ => {}
        }
    }
    Ok(())
}

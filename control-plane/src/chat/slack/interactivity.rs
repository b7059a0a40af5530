//! Clicks from Slack: the HTTP interactivity endpoint (signature, timestamp and replay
//! checked before anything is read; acknowledged at once, handled after) and the payload
//! handling shared with Socket Mode.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::signature;
use super::{blocks, Slack};
use crate::chat::click::{self, Click, ClickAction, Reply};
use crate::chat::Bridge;
use crate::store::ChatRefusal;

/// Path of the interactivity endpoint (the Slack app's Request URL).
pub const PATH: &str = "/slack/interactivity";

#[derive(Clone)]
struct Endpoint {
    bridge: Bridge,
    slack: Arc<Slack>,
}

/// The endpoint, when the configuration has a signing secret.
pub fn routes(bridge: &Bridge, slack: &Arc<Slack>) -> Router {
    if slack.config().signing_secret.is_none() {
        return Router::new();
    }
    Router::new()
        .route(PATH, post(receive))
        .with_state(Endpoint {
            bridge: bridge.clone(),
            slack: slack.clone(),
        })
}

async fn receive(
    State(e): State<Endpoint>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let Some(secret) = &e.slack.config().signing_secret else {
        return (StatusCode::NOT_FOUND, String::new());
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let checked = signature::verify(
        secret.expose().as_bytes(),
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        now,
    );
    if let Err(rejection) = checked {
        return refuse(&e.bridge, rejection.code(), rejection.message()).await;
    }
    // Signature checked: it is Slack's. The same signed request twice is a replay.
    let digest = hex::encode(Sha256::digest(
        header("x-slack-signature").unwrap_or("").as_bytes(),
    ));
    match e
        .bridge
        .store
        .first_sight(&digest, crate::store::now(), signature::WINDOW * 2)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return refuse(
                &e.bridge,
                "replay",
                "request refused: already received (replay)".into(),
            )
            .await
        }
        Err(err) => {
            tracing::warn!(error = %err, "slack: replay check failed");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again".into());
        }
    }
    let payload = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .ok()
        .and_then(|fields| fields.into_iter().find(|(k, _)| k == "payload"))
        .and_then(|(_, p)| serde_json::from_str::<Value>(&p).ok());
    let Some(payload) = payload else {
        return (StatusCode::BAD_REQUEST, "no JSON payload field".into());
    };
    // Acknowledge now (Slack waits 3 s at most); decide and reply after.
    tokio::spawn(async move { handle(&e.bridge, &e.slack, &payload).await });
    (StatusCode::OK, String::new())
}

async fn refuse(bridge: &Bridge, code: &str, message: String) -> (StatusCode, String) {
    let record = ChatRefusal::unattributed("slack", code, message.clone());
    bridge.record_refusal(&record).await;
    tracing::warn!(code, "slack: interactivity request refused");
    (StatusCode::UNAUTHORIZED, message)
}

/// Handles one interaction payload (from HTTP or Socket Mode): a Countersign button
/// becomes a decision or a refusal told to the clicker; anything else is ignored.
pub async fn handle(bridge: &Bridge, slack: &Slack, payload: &Value) {
    if payload["type"].as_str() != Some("block_actions") {
        return;
    }
    let Some(user) = payload["user"]["id"].as_str().filter(|u| !u.is_empty()) else {
        return;
    };
    let channel = payload["channel"]["id"]
        .as_str()
        .or_else(|| payload["container"]["channel_id"].as_str())
        .unwrap_or("");
    let Some(action) = payload["actions"].as_array().and_then(|a| a.first()) else {
        return;
    };
    let Some((request_id, action)) = parse_action(action, payload) else {
        return;
    };
    let reply = click::decide(
        bridge,
        Click {
            chat: "slack",
            user: user.to_owned(),
            request_id,
            action,
        },
    )
    .await;
    if let Reply::Refused { text, .. } = &reply {
        if let Err(e) = slack.tell(channel, user, text).await {
            tracing::warn!(error = %e, "slack: could not tell the clicker why nothing happened");
        }
    }
    if let Some(view) = reply.view() {
        bridge.refresh(view).await;
    }
}

/// The request and what one of our buttons asks; `None` for other apps' actions.
fn parse_action(action: &Value, payload: &Value) -> Option<(String, ClickAction)> {
    match action["action_id"].as_str()? {
        blocks::APPROVE_ONCE => Some((
            action["value"].as_str()?.to_owned(),
            ClickAction::ApproveOnce,
        )),
        blocks::APPROVE_FOR => {
            let value = action["selected_option"]["value"].as_str()?;
            let (id, secs) = value.split_once('|')?;
            let secs: u64 = secs.parse().ok()?;
            Some((
                id.to_owned(),
                ClickAction::ApproveFor(std::time::Duration::from_secs(secs)),
            ))
        }
        blocks::DENY => {
            let reason = payload["state"]["values"][blocks::REASON_BLOCK][blocks::REASON_INPUT]
                ["value"]
                .as_str()
                .unwrap_or("");
            Some((
                action["value"].as_str()?.to_owned(),
                ClickAction::Deny(reason.to_owned()),
            ))
        }
        _ => None,
    }
}

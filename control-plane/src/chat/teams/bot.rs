//! The bot's messaging endpoint (`POST /teams/messages`, the Azure Bot's "Messaging
//! endpoint"). The connector's JWT is verified before the body is read as an activity; an
//! `adaptiveCard/action` invoke of our `Action.Execute` buttons becomes a [`Click`] of the
//! account `from.aadObjectId` (display names and e-mails in the activity are never read) and
//! is answered with an Adaptive Card invoke response. Other activities are acknowledged; when
//! the bot is added to or mentioned in a channel, the conversation id and service URL to put
//! in the chat file are logged.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::card::{self, Actions};
use super::jwt::Rejection;
use super::Bot;
use crate::chat::click::{self, Click, ClickAction, Reply};
use crate::chat::Bridge;
use crate::store::ChatRefusal;

/// Path of the messaging endpoint.
pub const PATH: &str = "/teams/messages";
/// Invoke response type of a text shown to the user who acted.
pub const MESSAGE_TYPE: &str = "application/vnd.microsoft.activity.message";

#[derive(Clone)]
struct Endpoint {
    bridge: Bridge,
    bot: Arc<Bot>,
}

/// The messaging endpoint.
pub fn routes(bridge: &Bridge, bot: &Arc<Bot>) -> Router {
    Router::new()
        .route(PATH, post(receive))
        .with_state(Endpoint {
            bridge: bridge.clone(),
            bot: bot.clone(),
        })
}

async fn receive(State(e): State<Endpoint>, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let verified = match e.bot.verifier().verify(authorization).await {
        Ok(v) => v,
        Err(r) => return refuse(&e.bridge, &r).await,
    };
    // The token is the connector's: now the body may be read.
    let Ok(activity) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not a JSON activity").into_response();
    };
    let service_url = activity["serviceUrl"].as_str().unwrap_or("");
    let channel_id = activity["channelId"].as_str().unwrap_or("");
    if let Err(r) = verified.check_activity(service_url, channel_id) {
        return refuse(&e.bridge, &r).await;
    }
    match (activity["type"].as_str(), activity["name"].as_str()) {
        (Some("invoke"), Some("adaptiveCard/action")) => {
            if let Some(refused) = replayed(&e.bridge, &activity).await {
                return refused;
            }
            Json(invoke(&e.bridge, &activity).await).into_response()
        }
        (Some("conversationUpdate" | "message" | "installationUpdate"), _) => {
            log_conversation(&activity);
            StatusCode::OK.into_response()
        }
        _ => StatusCode::OK.into_response(),
    }
}

/// How long an invoke is remembered: longer than the connector's tokens live (an hour, and
/// the JWT check's clock skew), so a click cannot be sent again while its token is valid.
const REPLAY_WINDOW: Duration = Duration::from_secs(2 * 60 * 60);

/// The refusal when this invoke (by conversation and activity id) was received before, or has
/// no id to tell; None for a first sight.
async fn replayed(bridge: &Bridge, activity: &Value) -> Option<Response> {
    let id = activity["id"].as_str().filter(|i| !i.is_empty());
    let conversation = activity["conversation"]["id"].as_str().unwrap_or("");
    let Some(id) = id else {
        return Some((StatusCode::BAD_REQUEST, "an invoke without an activity id").into_response());
    };
    let digest = hex::encode(Sha256::digest(format!("teams\0{conversation}\0{id}")));
    match bridge
        .store
        .first_sight(&digest, crate::store::now(), REPLAY_WINDOW)
        .await
    {
        Ok(true) => None,
        Ok(false) => {
            let record = ChatRefusal::unattributed(
                "teams",
                "replay",
                "invoke refused: already received (replay)",
            );
            bridge.record_refusal(&record).await;
            tracing::warn!("teams: a replayed invoke refused");
            Some((StatusCode::UNAUTHORIZED, "already received (replay)").into_response())
        }
        Err(err) => {
            tracing::warn!(error = %err, "teams: replay check failed");
            Some((StatusCode::SERVICE_UNAVAILABLE, "try again").into_response())
        }
    }
}

async fn refuse(bridge: &Bridge, r: &Rejection) -> Response {
    if let Rejection::Unavailable(why) = r {
        // Not the caller's fault: the connector retries; nothing was decided.
        tracing::warn!(why = %why, "teams: cannot verify an activity");
        return (StatusCode::SERVICE_UNAVAILABLE, r.message()).into_response();
    }
    let record = ChatRefusal::unattributed("teams", r.code(), r.message());
    bridge.record_refusal(&record).await;
    tracing::warn!(code = r.code(), "teams: activity refused");
    (StatusCode::UNAUTHORIZED, r.message()).into_response()
}

/// Decides an `Action.Execute` of our card; returns the invoke response.
async fn invoke(bridge: &Bridge, activity: &Value) -> Value {
    let action = &activity["value"]["action"];
    if action["type"] != "Action.Execute" {
        return error("only Action.Execute is handled");
    }
    let data = &action["data"];
    let Some(request_id) = data["request_id"].as_str().filter(|r| !r.is_empty()) else {
        return error("not a Countersign action (no request_id)");
    };
    let what = match action["verb"].as_str() {
        Some(card::APPROVE_ONCE) => ClickAction::ApproveOnce,
        // Missing or unreadable: zero, which the decision path refuses with its reason.
        Some(card::APPROVE_FOR) => {
            ClickAction::ApproveFor(Duration::from_secs(seconds(&data[card::DURATION])))
        }
        Some(card::DENY) => ClickAction::Deny(data[card::REASON].as_str().unwrap_or("").to_owned()),
        _ => return error("unknown verb"),
    };
    if let Some(refused) = foreign_card(bridge, request_id, activity).await {
        return refused;
    }
    // Teams sends object ids in lower case; links are compared as given.
    let Some(user) = activity["from"]["aadObjectId"]
        .as_str()
        .filter(|u| !u.is_empty())
        .map(str::to_ascii_lowercase)
    else {
        let text = "Countersign cannot tell who you are: Teams sent no Entra ID account with \
                    this click, so it cannot decide.";
        let record = ChatRefusal::unattributed("teams", "no_account", text).about(request_id);
        bridge.record_refusal(&record).await;
        return message(text);
    };
    let reply = click::decide(
        bridge,
        Click {
            chat: "teams",
            user,
            request_id: request_id.to_owned(),
            action: what,
        },
    )
    .await;
    if let Some(view) = reply.view().cloned() {
        // The other copies (other channels, other replicas' posts) after answering.
        let bridge = bridge.clone();
        tokio::spawn(async move { bridge.refresh(&view).await });
    }
    match reply {
        // Universal Actions: a card in the invoke response replaces the card for the user who
        // acted at once; the PUT of `refresh` updates it for everyone.
        Reply::Decided { view, .. } => json!({
            "statusCode": 200,
            "type": card::CONTENT_TYPE,
            "value": card::card(&view, crate::store::now(), Actions::Execute),
        }),
        // Universal Actions' message response: the client shows the text to the user who
        // acted only. (A card with the refusal in it would be overwritten by the next PUT of
        // the message, and would tell the refusal to nobody else anyway.)
        Reply::Refused { text, .. } => message(&text),
    }
}

/// The answer when the click did not come from a card Countersign posted for `request_id`:
/// the message it was on (`replyToId`, in the conversation the activity names) must be one the
/// server stored for that request. A click replayed onto another conversation, a card copied
/// elsewhere or a crafted `request_id` is refused (and recorded); None when it is ours.
async fn foreign_card(bridge: &Bridge, request_id: &str, activity: &Value) -> Option<Value> {
    // A channel thread's conversation id carries `;messageid=…` after the channel's.
    let conversation = activity["conversation"]["id"]
        .as_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("");
    let message_ref = activity["replyToId"].as_str().unwrap_or("");
    let ours = match bridge.store.chat_messages(request_id, "teams").await {
        Ok(posted) => posted.iter().any(|m| {
            !message_ref.is_empty() && m.target == conversation && m.message_ref == message_ref
        }),
        Err(err) => {
            tracing::warn!(error = %err, "teams: cannot read the posted cards");
            return Some(error("Countersign cannot check this card now: try again."));
        }
    };
    if ours {
        return None;
    }
    let text = format!(
        "This card is not one Countersign posted for request {request_id} in this \
         conversation: nothing was decided."
    );
    let record = ChatRefusal {
        chat_user: activity["from"]["aadObjectId"].as_str().map(str::to_owned),
        ..ChatRefusal::unattributed("teams", "foreign_card", text.clone()).about(request_id)
    };
    bridge.record_refusal(&record).await;
    tracing::warn!(
        request = request_id,
        conversation,
        "teams: a click on a card we did not post for this request"
    );
    Some(message(&text))
}

fn message(text: &str) -> Value {
    json!({ "statusCode": 200, "type": MESSAGE_TYPE, "value": text })
}

/// Universal Actions' error response (shown to the user who acted).
fn error(text: &str) -> Value {
    json!({
        "statusCode": 400,
        "type": "application/vnd.microsoft.error",
        "value": { "code": "BadRequest", "message": text }
    })
}

/// Seconds from a choice value (a string in Teams, a number from other clients).
fn seconds(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .unwrap_or(0)
}

/// Logs where the bot can post, for the chat file.
fn log_conversation(activity: &Value) {
    let channel = activity["channelData"]["channel"]["id"].as_str();
    let conversation = activity["conversation"]["id"].as_str().unwrap_or("");
    // A channel thread's id is the channel's plus `;messageid=…`: the channel is what posts.
    let id = channel.unwrap_or_else(|| {
        conversation
            .split_once(";messageid=")
            .map_or(conversation, |(c, _)| c)
    });
    if id.is_empty() {
        return;
    }
    tracing::info!(
        conversation_id = id,
        service_url = activity["serviceUrl"].as_str().unwrap_or(""),
        team = activity["channelData"]["team"]["id"].as_str().unwrap_or(""),
        "teams: the bot is in this conversation (teams.conversations: {{ service_url, conversation_id }})"
    );
}

//! A local Bot Framework: the Entra ID token endpoint (client credentials), the Bot
//! Connector's OpenID metadata and JWKS (with the test-only key of tests/fixtures), the
//! connector's activity endpoints (send, update; bearer tokens checked) and Workflows
//! webhooks. Every call is recorded for the test to assert on; [`sign`] mints the JWTs the
//! connector puts on the activities it sends to the bot.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// The bot's Microsoft App ID (the audience of the connector's tokens).
pub const APP_ID: &str = "0c1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8";
/// Its client secret.
pub const APP_PASSWORD: &str = "test-teams-client-secret";
/// Issuer of the connector's tokens.
pub const ISSUER: &str = "https://api.botframework.com";
/// Scope the bot asks tokens for.
pub const SCOPE: &str = "https://api.botframework.com/.default";
/// Key id of the test key in the JWKS.
pub const KID: &str = "countersign-test-key-1";

/// The key the JWKS publishes (test-only).
pub const KEY: &str = include_str!("../fixtures/botframework-test-only-key.pem");
/// A key the JWKS does not publish (test-only): tokens signed with it are forged.
pub const OTHER_KEY: &str = include_str!("../fixtures/botframework-test-only-other-key.pem");
const JWKS: &str = include_str!("../fixtures/botframework-test-only-jwks.json");

/// One call of the connector's activity endpoints.
#[derive(Clone, Debug)]
pub struct ActivityCall {
    /// `POST` (send) or `PUT` (update).
    pub method: &'static str,
    pub conversation: String,
    /// The activity id of an update.
    pub activity_id: Option<String>,
    pub body: Value,
    pub at: Instant,
}

#[derive(Default)]
struct Shared {
    token_requests: Vec<HashMap<String, String>>,
    issued: Vec<String>,
    activities: Vec<ActivityCall>,
    webhooks: Vec<(String, Value)>,
    next_id: u64,
    /// Sends still to answer with 429.
    rate_limit_sends: u32,
}

#[derive(Clone)]
struct Peer {
    shared: Arc<Mutex<Shared>>,
    addr: SocketAddr,
}

/// The running peer.
pub struct BotFrameworkPeer {
    pub addr: SocketAddr,
    peer: Peer,
    _stop: mpsc::Sender<()>,
}

impl BotFrameworkPeer {
    pub async fn start() -> BotFrameworkPeer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let peer = Peer {
            shared: Arc::new(Mutex::new(Shared {
                next_id: 1_700_000_000_000,
                ..Shared::default()
            })),
            addr,
        };
        let router = Router::new()
            .route("/botframework.com/oauth2/v2.0/token", post(token))
            .route("/v1/.well-known/openidconfiguration", get(openid))
            .route("/v1/.well-known/keys", get(keys))
            .route("/v3/conversations/{conversation}/activities", post(send))
            .route(
                "/v3/conversations/{conversation}/activities/{activity}",
                put(update),
            )
            .route("/workflows/{name}", post(webhook))
            .with_state(peer.clone());
        let (stop, mut stopped) = mpsc::channel::<()>(1);
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.recv().await;
                })
                .await
                .expect("bot framework peer");
        });
        BotFrameworkPeer {
            addr,
            peer,
            _stop: stop,
        }
    }

    /// The `token_url` of the chat file.
    pub fn token_url(&self) -> String {
        format!("http://{}/botframework.com/oauth2/v2.0/token", self.addr)
    }

    /// The `openid_url` of the chat file.
    pub fn openid_url(&self) -> String {
        format!("http://{}/v1/.well-known/openidconfiguration", self.addr)
    }

    /// The connector's service URL (with the trailing slash Teams gives).
    pub fn service_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// A Workflows webhook URL (`sig` stands for the signature real ones carry).
    pub fn webhook_url(&self, name: &str) -> String {
        format!("http://{}/workflows/{name}?sig=test-signature", self.addr)
    }

    /// Forms posted to the token endpoint.
    pub fn token_requests(&self) -> Vec<HashMap<String, String>> {
        self.peer
            .shared
            .lock()
            .expect("lock")
            .token_requests
            .clone()
    }

    /// Activity calls so far (`POST` or `PUT`).
    pub fn activities(&self, method: &str) -> Vec<ActivityCall> {
        let s = self.peer.shared.lock().expect("lock");
        s.activities
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Waits (at most `within`) until `pred` holds for an activity call of `method`.
    pub async fn wait_activity(
        &self,
        method: &str,
        within: Duration,
        pred: impl Fn(&ActivityCall) -> bool,
    ) -> ActivityCall {
        super::until(
            within,
            || {
                format!(
                    "no matching {method} activity; calls: {:#?}",
                    self.peer.shared.lock().expect("lock").activities
                )
            },
            || self.activities(method).into_iter().find(|c| pred(c)),
        )
        .await
    }

    /// Bodies posted to webhook `name`.
    pub fn webhook_posts(&self, name: &str) -> Vec<Value> {
        let s = self.peer.shared.lock().expect("lock");
        s.webhooks
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Answers the next `n` sends with HTTP 429 and `Retry-After: 1`.
    pub fn rate_limit_next_sends(&self, n: u32) {
        self.peer.shared.lock().expect("lock").rate_limit_sends = n;
    }

    /// Claims of a token the connector would send with an activity of this peer.
    pub fn claims(&self) -> Value {
        let now = unix_now();
        json!({
            "serviceurl": self.service_url(),
            "nbf": now - 5,
            "exp": now + 3600,
            "iss": ISSUER,
            "aud": APP_ID
        })
    }
}

/// A JWT of `claims` signed (RS256, kid [`KID`]) with `pem`.
pub fn sign(pem: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.into());
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("test key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

async fn token(State(peer): State<Peer>, body: Bytes) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let mut s = peer.shared.lock().expect("lock");
    s.token_requests.push(form.clone());
    let field = |k: &str| form.get(k).map(String::as_str);
    if field("grant_type") != Some("client_credentials")
        || field("client_id") != Some(APP_ID)
        || field("client_secret") != Some(APP_PASSWORD)
        || field("scope") != Some(SCOPE)
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "invalid_client", "error_description": "AADSTS7000215" })),
        )
            .into_response();
    }
    let access = format!("bf-access-token-{}", s.issued.len() + 1);
    s.issued.push(access.clone());
    Json(json!({
        "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": access
    }))
    .into_response()
}

async fn openid(State(peer): State<Peer>) -> Json<Value> {
    Json(json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://invalid.botframework.com",
        "jwks_uri": format!("http://{}/v1/.well-known/keys", peer.addr),
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"]
    }))
}

async fn keys() -> Json<Value> {
    Json(serde_json::from_str(JWKS).expect("jwks fixture"))
}

/// Whether the call carries a token the token endpoint issued.
fn authorized(peer: &Peer, headers: &HeaderMap) -> bool {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    peer.shared
        .lock()
        .expect("lock")
        .issued
        .iter()
        .any(|t| t == token)
}

/// The connector's answer to a call without a token it issued.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "error": { "code": "Unauthorized", "message": "token invalid" } })),
    )
        .into_response()
}

async fn send(
    State(peer): State<Peer>,
    Path(conversation): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&peer, &headers) {
        return unauthorized();
    }
    let mut s = peer.shared.lock().expect("lock");
    s.activities.push(ActivityCall {
        method: "POST",
        conversation,
        activity_id: None,
        body: body.clone(),
        at: Instant::now(),
    });
    if s.rate_limit_sends > 0 {
        s.rate_limit_sends -= 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            Json(json!({ "error": { "code": "TooManyRequests" } })),
        )
            .into_response();
    }
    if body["type"] != "message" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": { "code": "BadArgument" } })),
        )
            .into_response();
    }
    s.next_id += 1;
    (
        StatusCode::CREATED,
        Json(json!({ "id": s.next_id.to_string() })),
    )
        .into_response()
}

async fn update(
    State(peer): State<Peer>,
    Path((conversation, activity)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&peer, &headers) {
        return unauthorized();
    }
    let mut s = peer.shared.lock().expect("lock");
    s.activities.push(ActivityCall {
        method: "PUT",
        conversation,
        activity_id: Some(activity.clone()),
        body,
        at: Instant::now(),
    });
    Json(json!({ "id": activity })).into_response()
}

async fn webhook(
    State(peer): State<Peer>,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> StatusCode {
    peer.shared
        .lock()
        .expect("lock")
        .webhooks
        .push((name, body));
    StatusCode::ACCEPTED
}

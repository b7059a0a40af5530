//! A local Slack: the Web API methods Countersign calls (`chat.postMessage`, `chat.update`,
//! `chat.postEphemeral`, `apps.connections.open`) with Slack's JSON answers and bearer-token
//! checks, and a Socket Mode WebSocket that sends `hello`, envelopes the test pushes, and
//! `disconnect`. Every call is recorded for the test to assert on.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

pub const BOT_TOKEN: &str = "xoxb-test-bot-token";
pub const APP_TOKEN: &str = "xapp-test-app-token";
pub const SIGNING_SECRET: &str = "test-signing-secret-0123456789abcdef";

/// One Web API call received.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub body: Value,
    pub at: Instant,
}

#[derive(Default)]
struct Shared {
    calls: Vec<Call>,
    next_ts: u64,
    /// `chat.postMessage` calls still to answer with 429.
    rate_limit_posts: u32,
    /// Socket Mode: connections opened, acks received.
    sockets_opened: u32,
    acks: Vec<String>,
}

#[derive(Clone)]
struct Peer {
    shared: Arc<Mutex<Shared>>,
    addr: SocketAddr,
    /// Envelopes for the connected socket(s).
    push: broadcast::Sender<String>,
}

/// The running peer.
pub struct SlackPeer {
    pub addr: SocketAddr,
    peer: Peer,
    _stop: mpsc::Sender<()>,
}

impl SlackPeer {
    pub async fn start() -> SlackPeer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (push, _) = broadcast::channel(64);
        let peer = Peer {
            shared: Arc::new(Mutex::new(Shared {
                next_ts: 1_700_000_000_000_100,
                ..Shared::default()
            })),
            addr,
            push,
        };
        let router = Router::new()
            .route("/api/{method}", post(api))
            .route("/socket", get(socket))
            .with_state(peer.clone());
        let (stop, mut stopped) = mpsc::channel::<()>(1);
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.recv().await;
                })
                .await
                .expect("slack peer");
        });
        SlackPeer {
            addr,
            peer,
            _stop: stop,
        }
    }

    /// `http://ADDR/api`: the `api_url` of the chat file.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// Calls of `method` so far.
    pub fn calls(&self, method: &str) -> Vec<Call> {
        let s = self.peer.shared.lock().expect("lock");
        s.calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Waits (at most `within`) until `pred` holds for a call of `method`; returns it.
    pub async fn wait_call(
        &self,
        method: &str,
        within: Duration,
        pred: impl Fn(&Call) -> bool,
    ) -> Call {
        until(
            within,
            || {
                format!(
                    "no matching {method} call; calls: {:#?}",
                    self.peer.shared.lock().expect("lock").calls
                )
            },
            || self.calls(method).into_iter().find(|c| pred(c)),
        )
        .await
    }

    /// Answers the next `n` `chat.postMessage` calls with HTTP 429 and `Retry-After: 1`.
    pub fn rate_limit_next_posts(&self, n: u32) {
        self.peer.shared.lock().expect("lock").rate_limit_posts = n;
    }

    /// Sends a Socket Mode message (an envelope, `disconnect` …) to the connected sockets.
    pub fn push(&self, message: &Value) {
        let _ = self.peer.push.send(message.to_string());
    }

    /// Socket Mode connections opened so far.
    pub fn sockets_opened(&self) -> u32 {
        self.peer.shared.lock().expect("lock").sockets_opened
    }

    /// Envelope ids acknowledged so far.
    pub fn acks(&self) -> Vec<String> {
        self.peer.shared.lock().expect("lock").acks.clone()
    }
}

fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

async fn api(
    State(peer): State<Peer>,
    Path(method): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let token = bearer(&headers);
    let wanted = if method == "apps.connections.open" {
        APP_TOKEN
    } else {
        BOT_TOKEN
    };
    if token != wanted {
        return Json(json!({ "ok": false, "error": "invalid_auth" })).into_response();
    }
    let mut s = peer.shared.lock().expect("lock");
    s.calls.push(Call {
        method: method.clone(),
        body: body.clone(),
        at: Instant::now(),
    });
    match method.as_str() {
        "chat.postMessage" => {
            if s.rate_limit_posts > 0 {
                s.rate_limit_posts -= 1;
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "1")],
                    Json(json!({ "ok": false, "error": "ratelimited" })),
                )
                    .into_response();
            }
            if body["channel"].as_str().is_none_or(str::is_empty)
                || body["blocks"].as_array().is_none()
            {
                return Json(json!({ "ok": false, "error": "invalid_arguments" })).into_response();
            }
            s.next_ts += 1;
            let ts = format!("{}.{:06}", s.next_ts / 1_000_000, s.next_ts % 1_000_000);
            Json(json!({ "ok": true, "channel": body["channel"], "ts": ts, "message": { "text": body["text"] } }))
                .into_response()
        }
        "chat.update" => {
            if body["ts"].as_str().is_none_or(str::is_empty) {
                return Json(json!({ "ok": false, "error": "message_not_found" })).into_response();
            }
            Json(json!({ "ok": true, "channel": body["channel"], "ts": body["ts"] }))
                .into_response()
        }
        "chat.postEphemeral" => {
            Json(json!({ "ok": true, "message_ts": "1700000000.999999" })).into_response()
        }
        "apps.connections.open" => {
            let url = format!("ws://{}/socket", peer.addr);
            Json(json!({ "ok": true, "url": url })).into_response()
        }
        _ => Json(json!({ "ok": false, "error": "unknown_method" })).into_response(),
    }
}

async fn socket(State(peer): State<Peer>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |ws| serve_socket(peer, ws))
}

async fn serve_socket(peer: Peer, mut ws: WebSocket) {
    peer.shared.lock().expect("lock").sockets_opened += 1;
    let mut push = peer.push.subscribe();
    let hello =
        json!({ "type": "hello", "num_connections": 1, "connection_info": { "app_id": "A0TEST" } });
    if ws
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            pushed = push.recv() => {
                let Ok(text) = pushed else { return };
                let disconnect = text.contains("\"disconnect\"");
                if ws.send(Message::Text(text.into())).await.is_err() || disconnect {
                    // Slack closes its side shortly after a disconnect message.
                    let _ = ws.send(Message::Close(None)).await;
                    return;
                }
            }
            received = ws.recv() => {
                match received {
                    Some(Ok(Message::Text(t))) => {
                        if let Ok(v) = serde_json::from_str::<Value>(t.as_str()) {
                            if let Some(id) = v["envelope_id"].as_str() {
                                peer.shared.lock().expect("lock").acks.push(id.to_owned());
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    _ => {}
                }
            }
        }
    }
}

/// Polls `probe` every 10 ms until it gives a value; panics with `what()` after `within`.
pub async fn until<T>(
    within: Duration,
    what: impl Fn() -> String,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "{} within {within:?}", what());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

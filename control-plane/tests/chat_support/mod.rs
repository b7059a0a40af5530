//! Local servers that speak the chats' real protocols, for the chat tests: a Slack Web API
//! and Socket Mode peer ([`slack`]), a Bot Framework peer ([`botframework`]); and what the
//! tests of both chats read back from the server's store.

#![allow(dead_code, reason = "each test file uses a part")]

pub mod botframework;
pub mod slack;

// The poll lives with the Slack peer, which other suites include on its own.
pub use slack::until;

use std::time::{Duration, Instant, SystemTime};

use control_plane::audit::{Kind, Record};
use control_plane::store::{LinkRow, RequestState, Store};
use serde_json::json;

use crate::grpc_support::TestServer;

/// How long the tests wait for something the server does on its own.
pub const WITHIN: Duration = Duration::from_secs(5);

/// The server's store.
pub fn store(server: &TestServer) -> &Store {
    &server.running.as_ref().expect("running").store
}

/// Links `user` of `chat` to `person` (as the admin erin would), confirmed by `person`.
pub async fn link(server: &TestServer, chat: &str, user: &str, person: &str) {
    let link = LinkRow {
        channel: chat.into(),
        external_id: user.into(),
        person: person.into(),
        linked_by: "erin".into(),
        linked_at: SystemTime::now(),
        confirmed_by: String::new(),
    };
    store(server).link_chat(&link, "test").await.expect("link");
    store(server)
        .confirm_chat_link(chat, user, person, "test", SystemTime::now())
        .await
        .expect("confirm");
}

/// The state of `request` now.
pub async fn state(server: &TestServer, request: &str) -> RequestState {
    store(server)
        .get_request(request)
        .await
        .expect("read")
        .expect("request")
        .state
}

/// Waits until `request` is in state `want`.
pub async fn wait_state(server: &TestServer, request: &str, want: RequestState) {
    let deadline = Instant::now() + WITHIN;
    while state(server, request).await != want {
        assert!(Instant::now() < deadline, "{request} never became {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for the stored message of `request` in `chat`'s conversation `target`; returns
/// its reference and extra.
pub async fn stored_message(
    server: &TestServer,
    request: &str,
    chat: &str,
    target: &str,
) -> (String, String) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let stored = store(server)
            .chat_messages(request, chat)
            .await
            .expect("messages");
        if let Some(m) = stored.into_iter().find(|m| m.target == target) {
            return (m.message_ref, m.extra);
        }
        assert!(
            Instant::now() < deadline,
            "no stored {chat} message for {request} in {target}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every `chat_refusal` record so far.
pub async fn refusals(server: &TestServer) -> Vec<Record> {
    store(server)
        .audit_records(None, 0)
        .await
        .expect("audit")
        .into_iter()
        .filter(|r| r.kind == Kind::ChatRefusal)
        .collect()
}

/// Waits for a `chat_refusal` record with `code`.
pub async fn wait_refusal(server: &TestServer, code: &str) -> Record {
    let deadline = Instant::now() + WITHIN;
    loop {
        if let Some(r) = refusals(server)
            .await
            .into_iter()
            .find(|r| r.subject.details.get("code") == Some(&json!(code)))
        {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "no chat_refusal record with code {code}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

//! Approvers in chats: Slack and Microsoft Teams as clients of the one decision path.
//!
//! - [`feed`] follows the store's decision events and shows each request in the
//!   conversations of its approver groups: posted once (claimed in the store, so one replica
//!   posts), then updated in place on every change.
//! - [`click`] turns a verified button press into a decision through
//!   [`crate::decide::judge`], or a refusal the clicker sees and the audit trail keeps.
//! - [`slack`] and [`teams`] speak the chats' protocols (signatures, tokens, cards); [`http`]
//!   serves their inbound endpoints.
//!
//! The chats are configured in the chat file ([`config`]); secrets are references
//! ([`secret`]).

pub mod click;
pub mod config;
#[cfg(test)]
mod corpus;
pub mod feed;
pub mod flood;
pub mod http;
pub mod outbound;
pub mod secret;
pub mod slack;
pub mod teams;
pub mod view;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::ChatConfig;

use crate::people::People;
use crate::store::{ChatRefusal, MessageRow, Store};
use view::RequestView;

/// A failed call to a chat's API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ChatError(pub String);

/// Where a message was posted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    /// The chat's id of the message (Slack `ts`, Teams activity id).
    pub message_ref: String,
    /// What else updating it needs (Teams service URL).
    pub extra: String,
}

/// One chat's outbound side: where requests go, posting and updating their messages.
#[tonic::async_trait]
pub trait Integration: Send + Sync + fmt::Debug {
    /// Name stored with its messages: `slack`, `teams`, `teams-webhook`.
    fn chat(&self) -> &'static str;
    /// Conversations that should show `view` (from its rule's approver groups).
    fn targets(&self, view: &RequestView) -> Vec<String>;
    /// Posts `view` in `target`.
    async fn post(&self, target: &str, view: &RequestView) -> Result<Posted, ChatError>;
    /// Updates a posted message to show `view` as it now stands.
    async fn update(&self, message: &MessageRow, view: &RequestView) -> Result<(), ChatError>;
}

/// What the chat side of a server shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Bridge {
    /// The database.
    pub store: Store,
    /// The people file (links name people of it).
    pub people: Arc<People>,
    /// Every configured chat's outbound side.
    pub integrations: Vec<Arc<dyn Integration>>,
    /// The bound on records of unidentified callbacks.
    pub flood: flood::Flood,
}

impl Bridge {
    /// Writes the audit record of a refused callback (a failure is logged, not returned: the
    /// clicker's reply must not wait on it).
    pub async fn record_refusal(&self, r: &ChatRefusal) {
        let mut r = r.clone();
        if r.actor.is_empty() {
            match self.flood.admit(std::time::Instant::now()) {
                Some(left_out) => r.left_out = left_out,
                None => return,
            }
        }
        let r = &r;
        if let Err(e) = self.store.record_chat_refusal(r, crate::store::now()).await {
            tracing::warn!(chat = %r.chat, code = %r.code, error = %e, "could not record a refused chat callback");
        }
    }

    /// Shows `view` in every chat now (after a click: no need to wait for the feed).
    pub async fn refresh(&self, view: &RequestView) {
        for integration in &self.integrations {
            if let Err(e) = feed::show(&self.store, integration.as_ref(), view).await {
                tracing::warn!(chat = integration.chat(), request = %view.request.id, error = %e, "could not update the chat message");
            }
        }
    }
}

/// The chat side of a running server.
#[derive(Debug)]
pub struct Running {
    /// Address of the HTTP endpoints.
    pub addr: SocketAddr,
    /// Feed, HTTP server, Socket Mode.
    pub tasks: Vec<JoinHandle<()>>,
}

/// Starts the chats of `config`: the feed, the HTTP endpoints and Socket Mode.
pub async fn start(
    config: &ChatConfig,
    store: Store,
    people: Arc<People>,
    stopping: watch::Receiver<bool>,
) -> anyhow::Result<Running> {
    let slack = config
        .slack
        .as_ref()
        .map(|c| slack::Slack::new(c.clone()))
        .transpose()?
        .map(Arc::new);
    let teams = config
        .teams
        .as_ref()
        .map(|c| teams::Teams::new(c.clone()))
        .transpose()?;
    let mut integrations: Vec<Arc<dyn Integration>> = Vec::new();
    if let Some(s) = &slack {
        integrations.push(s.clone());
    }
    if let Some(t) = &teams {
        integrations.extend(t.integrations());
    }
    let bridge = Bridge {
        store,
        people,
        integrations,
        flood: flood::Flood::default(),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("chat endpoints: listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let router = http::router(&bridge, slack.as_ref(), teams.as_ref());
    let mut tasks = vec![
        tokio::spawn(feed::follow(bridge.clone(), stopping.clone())),
        tokio::spawn(http::serve(listener, router, stopping.clone())),
    ];
    if let Some(s) = slack.filter(|s| s.socket_mode()) {
        tasks.push(tokio::spawn(slack::socket::run(
            s,
            bridge.clone(),
            stopping,
        )));
    }
    tracing::info!(%addr, slack = config.slack.is_some(), teams = config.teams.is_some(), "chat approvers ready");
    Ok(Running { addr, tasks })
}

//! Microsoft Teams: a Bot Framework bot posts each request as an Adaptive Card with
//! `Action.Execute` buttons in the approver groups' channels and updates it in place
//! ([`connector`], with the bot's [`token`]); clicks arrive as `adaptiveCard/action` invokes
//! on the messaging endpoint ([`bot`]), authenticated by the connector's JWT ([`jwt`]) and
//! decided through [`crate::chat::click`]. Workflows webhooks ([`webhook`]) are a
//! notification-only alternative.

pub mod bot;
pub mod card;
pub mod config;
pub mod connector;
pub mod jwt;
pub mod token;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use serde_json::{json, Value};

use super::secret::Secret;
use super::view::RequestView;
use super::{Bridge, ChatError, Integration, Posted};
use crate::store::MessageRow;
use card::Actions;

/// The `teams:` section of the chat file, checked.
#[derive(Clone, Debug)]
pub struct TeamsConfig {
    /// The bot, when configured.
    pub bot: Option<BotConfig>,
    /// Approver group → Workflows webhook URL (notification only).
    pub webhooks: BTreeMap<String, Secret>,
}

/// The bot's part of the `teams:` section.
#[derive(Clone, Debug)]
pub struct BotConfig {
    /// The bot's Microsoft App ID (the audience of inbound tokens, the client of outbound).
    pub app_id: String,
    /// Its client secret.
    pub app_password: Secret,
    /// Client-credentials token endpoint (a single-tenant bot's is its tenant's).
    pub token_url: String,
    /// Scope of outbound tokens.
    pub scope: String,
    /// Where the keys of inbound tokens are.
    pub keys: KeySource,
    /// Issuer of inbound tokens.
    pub issuer: String,
    /// Approver group → channel.
    pub conversations: BTreeMap<String, Conversation>,
    /// Channel of groups not in `conversations`.
    pub default_conversation: Option<Conversation>,
}

/// Where the signing keys of inbound tokens are published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// OpenID metadata whose `jwks_uri` is the JWKS.
    OpenId(String),
    /// The JWKS itself.
    Jwks(String),
}

/// A Teams conversation the bot posts in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// The Bot Connector of its region (`https://smba.trafficmanager.net/emea/`).
    pub service_url: String,
    /// The channel's conversation id (`19:…@thread.tacv2`).
    pub conversation_id: String,
}

/// The Teams side of a server.
#[derive(Clone, Debug)]
pub struct Teams {
    bot: Option<Arc<Bot>>,
    webhooks: Option<Arc<webhook::Webhooks>>,
}

impl Teams {
    /// Prepares the clients of `config`.
    pub fn new(config: TeamsConfig) -> anyhow::Result<Teams> {
        let http = super::outbound::client()?;
        let bot = config.bot.map(|c| Arc::new(Bot::new(c, http.clone())));
        let webhooks = (!config.webhooks.is_empty())
            .then(|| Arc::new(webhook::Webhooks::new(http, config.webhooks)));
        Ok(Teams { bot, webhooks })
    }

    /// The outbound sides (bot, webhooks).
    pub fn integrations(&self) -> Vec<Arc<dyn Integration>> {
        let mut out: Vec<Arc<dyn Integration>> = Vec::new();
        if let Some(b) = &self.bot {
            out.push(b.clone());
        }
        if let Some(w) = &self.webhooks {
            out.push(w.clone());
        }
        out
    }
}

/// The bot's messaging endpoint (none without a bot).
pub fn routes(bridge: &Bridge, teams: &Teams) -> Router {
    match &teams.bot {
        Some(b) => bot::routes(bridge, b),
        None => Router::new(),
    }
}

/// The bot: posts and updates cards, verifies inbound tokens.
#[derive(Debug)]
pub struct Bot {
    config: BotConfig,
    connector: connector::Connector,
    verifier: jwt::Verifier,
}

impl Bot {
    fn new(config: BotConfig, http: reqwest::Client) -> Bot {
        let tokens = Arc::new(token::Tokens::new(
            http.clone(),
            &config.token_url,
            &config.app_id,
            config.app_password.clone(),
            &config.scope,
        ));
        let verifier = jwt::Verifier::new(
            http.clone(),
            config.keys.clone(),
            &config.issuer,
            &config.app_id,
        );
        Bot {
            connector: connector::Connector::new(http, tokens),
            verifier,
            config,
        }
    }

    /// The inbound token verifier.
    pub fn verifier(&self) -> &jwt::Verifier {
        &self.verifier
    }

    fn conversations(&self) -> impl Iterator<Item = &Conversation> {
        self.config
            .conversations
            .values()
            .chain(self.config.default_conversation.as_ref())
    }
}

/// A message activity holding `view`'s card.
fn activity(view: &RequestView) -> Value {
    let now = crate::store::now();
    json!({
        "type": "message",
        "summary": card::summary(view, now),
        "attachments": [{ "contentType": card::CONTENT_TYPE, "content": card::card(view, now, Actions::Execute) }]
    })
}

#[tonic::async_trait]
impl Integration for Bot {
    fn chat(&self) -> &'static str {
        "teams"
    }

    fn targets(&self, view: &RequestView) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for group in &view.request.spec.approver_groups {
            if let Some(c) = self.config.conversations.get(group) {
                if !out.contains(&c.conversation_id) {
                    out.push(c.conversation_id.clone());
                }
            }
        }
        if out.is_empty() {
            out.extend(
                self.config
                    .default_conversation
                    .as_ref()
                    .map(|c| c.conversation_id.clone()),
            );
        }
        out
    }

    async fn post(&self, target: &str, view: &RequestView) -> Result<Posted, ChatError> {
        let conversation = self
            .conversations()
            .find(|c| c.conversation_id == target)
            .ok_or_else(|| ChatError(format!("conversation {target} is not configured")))?;
        let id = self
            .connector
            .send(&conversation.service_url, target, &activity(view))
            .await?;
        Ok(Posted {
            message_ref: id,
            extra: conversation.service_url.clone(),
        })
    }

    async fn update(&self, message: &MessageRow, view: &RequestView) -> Result<(), ChatError> {
        let mut activity = activity(view);
        activity["id"] = json!(message.message_ref);
        self.connector
            .update(
                &message.extra,
                &message.target,
                &message.message_ref,
                &activity,
            )
            .await
    }
}

//! Slack: requests posted with Block Kit in the approver groups' channels and updated in
//! place; clicks arrive by HTTP interactivity (signed, [`signature`]) or Socket Mode
//! ([`socket`]) and go through [`crate::chat::click`].

pub mod api;
pub mod blocks;
pub mod config;
pub mod interactivity;
pub mod signature;
pub mod socket;

use std::collections::BTreeMap;

use serde_json::json;

use super::secret::Secret;
use super::view::RequestView;
use super::{ChatError, Integration, Posted};
use crate::store::MessageRow;

/// The `slack:` section of the chat file, checked.
#[derive(Clone, Debug)]
pub struct SlackConfig {
    /// Web API base (`https://slack.com/api`; a local server in tests).
    pub api_url: String,
    /// Bot token (`xoxb-…`): posts and updates messages.
    pub bot_token: Secret,
    /// Signing secret of HTTP interactivity.
    pub signing_secret: Option<Secret>,
    /// App-level token (`xapp-…`) of Socket Mode.
    pub app_token: Option<Secret>,
    /// Approver group → channel id.
    pub channels: BTreeMap<String, String>,
    /// Channel of groups not in `channels`.
    pub default_channel: Option<String>,
}

/// The Slack side of a server.
#[derive(Debug)]
pub struct Slack {
    config: SlackConfig,
    api: api::Api,
}

impl Slack {
    /// Prepares the Web API client.
    pub fn new(config: SlackConfig) -> anyhow::Result<Slack> {
        let api = api::Api::new(&config.api_url)?;
        Ok(Slack { config, api })
    }

    /// Whether Socket Mode is configured.
    pub fn socket_mode(&self) -> bool {
        self.config.app_token.is_some()
    }

    /// The checked configuration.
    pub fn config(&self) -> &SlackConfig {
        &self.config
    }

    /// The Web API client.
    pub fn api(&self) -> &api::Api {
        &self.api
    }

    /// Tells one user, in one channel, why their click did nothing.
    pub async fn tell(&self, channel: &str, user: &str, text: &str) -> Result<(), ChatError> {
        self.api
            .call(
                "chat.postEphemeral",
                &self.config.bot_token,
                &json!({ "channel": channel, "user": user, "text": text }),
            )
            .await
            .map(|_| ())
    }
}

#[tonic::async_trait]
impl Integration for Slack {
    fn chat(&self) -> &'static str {
        "slack"
    }

    fn targets(&self, view: &RequestView) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for group in &view.request.spec.approver_groups {
            if let Some(c) = self.config.channels.get(group) {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
        if out.is_empty() {
            out.extend(self.config.default_channel.clone());
        }
        out
    }

    async fn post(&self, target: &str, view: &RequestView) -> Result<Posted, ChatError> {
        let (text, blocks) = blocks::message(view, crate::store::now());
        let answer = self
            .api
            .call(
                "chat.postMessage",
                &self.config.bot_token,
                &json!({ "channel": target, "text": text, "blocks": blocks, "unfurl_links": false }),
            )
            .await?;
        let ts = answer["ts"]
            .as_str()
            .ok_or_else(|| ChatError("chat.postMessage answered without ts".into()))?;
        Ok(Posted {
            message_ref: ts.to_owned(),
            extra: String::new(),
        })
    }

    async fn update(&self, message: &MessageRow, view: &RequestView) -> Result<(), ChatError> {
        let (text, blocks) = blocks::message(view, crate::store::now());
        self.api
            .call(
                "chat.update",
                &self.config.bot_token,
                &json!({ "channel": message.target, "ts": message.message_ref, "text": text, "blocks": blocks }),
            )
            .await
            .map(|_| ())
    }
}

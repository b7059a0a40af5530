//! Notification-only Teams channels: a Workflows webhook ("Post to a channel when a webhook
//! request is received") per approver group. The request's card is posted without buttons,
//! saying where to decide: Workflows posts as the Flow bot, which cannot call Countersign back,
//! and a webhook can neither edit nor delete what it posted, so [`Integration::update`] does
//! nothing and the card shows the request as it was when it opened.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::card::{self, Actions};
use crate::chat::outbound::retry_after;
use crate::chat::secret::Secret;
use crate::chat::view::RequestView;
use crate::chat::{ChatError, Integration, Posted};
use crate::store::MessageRow;

/// Tries of one post while Workflows rate-limits it.
const TRIES: u32 = 3;
/// Longest wait honoured for one `Retry-After`.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// The webhooks of the approver groups (stored with chat `teams-webhook`, target = group).
#[derive(Debug)]
pub struct Webhooks {
    http: reqwest::Client,
    urls: BTreeMap<String, Secret>,
}

impl Webhooks {
    /// Posts to `urls` (approver group → webhook URL).
    pub fn new(http: reqwest::Client, urls: BTreeMap<String, Secret>) -> Webhooks {
        Webhooks { http, urls }
    }
}

#[tonic::async_trait]
impl Integration for Webhooks {
    fn chat(&self) -> &'static str {
        "teams-webhook"
    }

    fn targets(&self, view: &RequestView) -> Vec<String> {
        view.request
            .spec
            .approver_groups
            .iter()
            .filter(|g| self.urls.contains_key(*g))
            .cloned()
            .collect()
    }

    async fn post(&self, target: &str, view: &RequestView) -> Result<Posted, ChatError> {
        let url = self
            .urls
            .get(target)
            .ok_or_else(|| ChatError(format!("no webhook for group {target}")))?;
        let content = card::card(view, crate::store::now(), Actions::NotifyOnly);
        let body = json!({
            "type": "message",
            "attachments": [{ "contentType": card::CONTENT_TYPE, "contentUrl": null, "content": content }]
        });
        for attempt in 1..=TRIES {
            // The URL is a secret (its query signs it): errors never show it.
            let response = self
                .http
                .post(url.expose())
                .json(&body)
                .send()
                .await
                .map_err(|e| ChatError(format!("webhook {target}: {}", e.without_url())))?;
            let status = response.status();
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS && attempt < TRIES {
                tokio::time::sleep(retry_after(response.headers(), MAX_WAIT)).await;
                continue;
            }
            if !status.is_success() {
                return Err(ChatError(format!("webhook {target}: HTTP {status}")));
            }
            // Workflows answers 202 Accepted and no id: there is nothing to update later. The
            // reference only has to be non-empty (empty is an unposted claim in the store,
            // which would be posted again).
            let at = crate::store::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            return Ok(Posted {
                message_ref: format!("posted-at-{at}"),
                extra: String::new(),
            });
        }
        Err(ChatError(format!(
            "webhook {target}: still rate-limited after {TRIES} tries"
        )))
    }

    async fn update(&self, _message: &MessageRow, _view: &RequestView) -> Result<(), ChatError> {
        // Webhooks cannot edit what they posted.
        Ok(())
    }
}

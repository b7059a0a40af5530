//! Slack's Web API: JSON POSTs with a bearer token; `ok: false` is an error naming Slack's
//! code; HTTP 429 waits the `Retry-After` Slack asks for (a few times) before giving up.

use std::time::Duration;

use serde_json::Value;

use crate::chat::outbound;
use crate::chat::secret::Secret;
use crate::chat::ChatError;

/// Tries of one call while Slack rate-limits it.
const TRIES: u32 = 4;
/// Longest wait honoured for one `Retry-After`.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// A Web API client.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// A client of the Web API at `base` (`https://slack.com/api`).
    pub fn new(base: &str) -> anyhow::Result<Api> {
        let http = outbound::client()?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Calls `method` with `body`; returns Slack's answer when it says `ok: true`.
    pub async fn call(
        &self,
        method: &str,
        token: &Secret,
        body: &Value,
    ) -> Result<Value, ChatError> {
        let url = format!("{}/{method}", self.base);
        for attempt in 1..=TRIES {
            let response = self
                .http
                .post(&url)
                .bearer_auth(token.expose())
                .json(body)
                .send()
                .await
                .map_err(|e| ChatError(format!("{method}: {}", e.without_url())))?;
            if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS && attempt < TRIES {
                let wait = outbound::retry_after(response.headers(), MAX_WAIT);
                tracing::info!(
                    method,
                    wait_ms = wait.as_millis() as u64,
                    "slack rate limit: waiting as asked"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            let status = response.status();
            let answer: Value = response.json().await.map_err(|e| {
                ChatError(format!(
                    "{method}: HTTP {status}, unreadable answer: {}",
                    e.without_url()
                ))
            })?;
            if answer["ok"].as_bool() == Some(true) {
                return Ok(answer);
            }
            let code = answer["error"].as_str().unwrap_or("no error code");
            return Err(ChatError(format!(
                "{method}: Slack said {code} (HTTP {status})"
            )));
        }
        Err(ChatError(format!(
            "{method}: still rate-limited after {TRIES} tries"
        )))
    }
}

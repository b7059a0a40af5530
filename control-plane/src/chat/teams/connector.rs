//! The Bot Connector REST API (v3) at a conversation's service URL: send an activity
//! (`POST …/v3/conversations/{id}/activities`, answered with its `id`) and replace one
//! (`PUT …/activities/{activityId}`), with the bot's bearer token. HTTP 429 waits the
//! `Retry-After` asked for (a few times), as with Slack; a 401 renews the token once.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use super::token::Tokens;
use crate::chat::outbound::retry_after;
use crate::chat::ChatError;

/// Tries of one call while the connector rate-limits it.
const TRIES: u32 = 4;
/// Longest wait honoured for one `Retry-After`.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// A Bot Connector client.
#[derive(Debug, Clone)]
pub struct Connector {
    http: reqwest::Client,
    tokens: Arc<Tokens>,
}

impl Connector {
    /// A client authenticating with `tokens`.
    pub fn new(http: reqwest::Client, tokens: Arc<Tokens>) -> Connector {
        Connector { http, tokens }
    }

    /// Sends `activity` to a conversation; returns the new activity's id.
    pub async fn send(
        &self,
        service_url: &str,
        conversation: &str,
        activity: &Value,
    ) -> Result<String, ChatError> {
        let url = endpoint(service_url, &[conversation, "activities"])?;
        let answer = self.call(Method::POST, url, activity).await?;
        answer["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ChatError("send activity: answered without an id".into()))
    }

    /// Replaces activity `activity_id` of a conversation with `activity`.
    pub async fn update(
        &self,
        service_url: &str,
        conversation: &str,
        activity_id: &str,
        activity: &Value,
    ) -> Result<(), ChatError> {
        let url = endpoint(service_url, &[conversation, "activities", activity_id])?;
        self.call(Method::PUT, url, activity).await.map(|_| ())
    }

    async fn call(&self, method: Method, url: Url, body: &Value) -> Result<Value, ChatError> {
        let what = if method == Method::POST {
            "send activity"
        } else {
            "update activity"
        };
        let mut renewed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.tokens.get().await?;
            let response = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose())
                .json(body)
                .send()
                .await
                .map_err(|e| ChatError(format!("{what}: {}", e.without_url())))?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS && attempt < TRIES {
                let wait = retry_after(response.headers(), MAX_WAIT);
                tracing::info!(
                    what,
                    wait_ms = wait.as_millis() as u64,
                    "teams rate limit: waiting as asked"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED && !renewed {
                // Revoked or rotated credentials: one more try with a fresh token.
                renewed = true;
                self.tokens.forget().await;
                continue;
            }
            if !status.is_success() {
                let code = response
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "no error code".into());
                return Err(ChatError(format!(
                    "{what}: the Bot Connector said {code} (HTTP {status})"
                )));
            }
            // Some answers have an empty body (an update may); that is success too.
            let bytes = response
                .bytes()
                .await
                .map_err(|e| ChatError(format!("{what}: {}", e.without_url())))?;
            return Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null));
        }
    }
}

/// `SERVICE_URL/v3/conversations/SEGMENTS…`, each segment percent-encoded (conversation ids
/// hold `:`, `;` and `@`, and come from the configuration).
fn endpoint(service_url: &str, segments: &[&str]) -> Result<Url, ChatError> {
    let mut url = Url::parse(service_url)
        .map_err(|e| ChatError(format!("service URL {service_url:?}: {e}")))?;
    url.path_segments_mut()
        .map_err(|()| ChatError(format!("service URL {service_url:?} cannot have a path")))?
        .pop_if_empty()
        .extend(["v3", "conversations"])
        .extend(segments);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_ids_stay_one_path_segment() {
        let url = endpoint(
            "https://smba.trafficmanager.net/emea/",
            &["19:abc@thread.tacv2;messageid=1/../x?y#z", "activities"],
        )
        .expect("url");
        assert_eq!(
            url.as_str(),
            "https://smba.trafficmanager.net/emea/v3/conversations/19:abc@thread.tacv2;messageid=1%2F..%2Fx%3Fy%23z/activities"
        );
        let url = endpoint("http://127.0.0.1:9", &["a:1", "activities", "17"]).expect("url");
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/v3/conversations/a:1/activities/17"
        );
    }
}

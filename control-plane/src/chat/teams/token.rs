//! The bot's outbound token: OAuth 2.0 client credentials (App ID and password) at Microsoft
//! Entra ID for the Bot Connector's scope, cached until shortly before it expires.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::chat::secret::Secret;
use crate::chat::ChatError;

/// A token is renewed this long before it expires (Entra ID gives about an hour).
const MARGIN: Duration = Duration::from_secs(5 * 60);

/// Client of the token endpoint, with the current token.
#[derive(Debug)]
pub struct Tokens {
    http: reqwest::Client,
    url: String,
    app_id: String,
    password: Secret,
    scope: String,
    current: Mutex<Option<Current>>,
}

#[derive(Debug)]
struct Current {
    token: Secret,
    renew_at: Instant,
}

#[derive(Deserialize)]
struct Answer {
    access_token: String,
    expires_in: u64,
}

impl Tokens {
    /// Tokens of `app_id` from `url` for `scope`.
    pub fn new(
        http: reqwest::Client,
        url: &str,
        app_id: &str,
        password: Secret,
        scope: &str,
    ) -> Tokens {
        Tokens {
            http,
            url: url.to_owned(),
            app_id: app_id.to_owned(),
            password,
            scope: scope.to_owned(),
            current: Mutex::new(None),
        }
    }

    /// A valid token (the cached one, or a new one).
    pub async fn get(&self) -> Result<Secret, ChatError> {
        // Held while fetching: concurrent callers wait for the one request.
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(c.token.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.app_id.as_str()),
            ("client_secret", self.password.expose()),
            ("scope", self.scope.as_str()),
        ];
        let response = self
            .http
            .post(&self.url)
            .form(&form)
            .send()
            .await
            .map_err(|e| ChatError(format!("token endpoint: {}", e.without_url())))?;
        let status = response.status();
        if !status.is_success() {
            // Entra ID's error code (e.g. invalid_client), never the body's trace details.
            let code = response
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "no error code".into());
            return Err(ChatError(format!(
                "token endpoint: HTTP {status}, {code} (check app_id, app_password and token_url)"
            )));
        }
        let answer: Answer = response.json().await.map_err(|e| {
            ChatError(format!(
                "token endpoint: unreadable answer: {}",
                e.without_url()
            ))
        })?;
        let lifetime = Duration::from_secs(answer.expires_in);
        // Short-lived tokens (never seen from Entra ID) are used for half their life.
        let usable = lifetime.checked_sub(MARGIN).unwrap_or(lifetime / 2);
        let token = Secret::from_value(answer.access_token);
        *current = Some(Current {
            token: token.clone(),
            renew_at: Instant::now() + usable,
        });
        tracing::debug!(
            lifetime_s = lifetime.as_secs(),
            "teams: new Bot Connector token"
        );
        Ok(token)
    }

    /// Forgets the cached token (the Bot Connector refused it).
    pub async fn forget(&self) {
        *self.current.lock().await = None;
    }
}

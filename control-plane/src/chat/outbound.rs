//! What every chat's outbound HTTP shares: one client set-up (time-out, user agent, rustls
//! with the system's CA store) and reading a rate limit's `Retry-After`.

use std::time::Duration;

/// Longest a call to a chat's API may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client of the chat APIs.
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("countersign/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// `Retry-After` in seconds (1 s when missing or unreadable), capped at `max`.
pub fn retry_after(headers: &reqwest::header::HeaderMap, max: Duration) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
        .min(max)
}

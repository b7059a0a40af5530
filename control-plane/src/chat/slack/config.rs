//! The `slack:` section of the chat file.

use std::collections::BTreeMap;

use marked_yaml::Spanned;
use serde::Deserialize;

use super::SlackConfig;
use crate::chat::config::{line_of, secret, Problem};

/// Slack's Web API.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

type Str = Spanned<String>;

/// As written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    bot_token: Str,
    #[serde(default)]
    signing_secret: Option<Str>,
    #[serde(default)]
    app_token: Option<Str>,
    #[serde(default)]
    api_url: Option<Str>,
    #[serde(default)]
    channels: BTreeMap<String, Str>,
    #[serde(default)]
    default_channel: Option<Str>,
}

/// Checks the section; `None` when a problem was noted.
pub(crate) fn build(raw: &Spanned<Raw>, problems: &mut Vec<Problem>) -> Option<SlackConfig> {
    let before = problems.len();
    let bot_token = secret("slack.bot_token", &raw.bot_token, problems);
    let signing_secret = raw
        .signing_secret
        .as_ref()
        .and_then(|s| secret("slack.signing_secret", s, problems));
    let app_token = raw
        .app_token
        .as_ref()
        .and_then(|s| secret("slack.app_token", s, problems));
    if raw.signing_secret.is_none() && raw.app_token.is_none() {
        problems.push((
            line_of(raw),
            "slack: give signing_secret (HTTP interactivity) or app_token (Socket Mode), or both: \
             without them no click can reach the server"
                .into(),
        ));
    }
    let api_url = match &raw.api_url {
        None => DEFAULT_API_URL.to_owned(),
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
            u.trim_end_matches('/').to_owned()
        }
        Some(u) => {
            problems.push((
                line_of(u),
                format!("slack.api_url {:?} is not an http(s) URL", u.as_str()),
            ));
            String::new()
        }
    };
    let mut channels = BTreeMap::new();
    for (group, channel) in &raw.channels {
        if !valid_channel(channel) {
            problems.push((
                line_of(channel),
                format!(
                    "slack.channels.{}: {:?} is not a channel id (like C0123456789)",
                    group,
                    channel.as_str()
                ),
            ));
        }
        channels.insert(group.clone(), channel.as_str().to_owned());
    }
    if let Some(c) = raw.default_channel.as_ref().filter(|c| !valid_channel(c)) {
        problems.push((
            line_of(c),
            format!(
                "slack.default_channel: {:?} is not a channel id",
                c.as_str()
            ),
        ));
    }
    if channels.is_empty() && raw.default_channel.is_none() {
        problems.push((
            line_of(raw),
            "slack: give channels (approver group → channel id) or default_channel".into(),
        ));
    }
    if problems.len() > before {
        return None;
    }
    Some(SlackConfig {
        api_url,
        bot_token: bot_token?,
        signing_secret,
        app_token,
        channels,
        default_channel: raw.default_channel.as_ref().map(|c| c.as_str().to_owned()),
    })
}

/// Slack conversation ids: `C…`, `G…` or `D…`, upper-case letters and digits.
fn valid_channel(c: &str) -> bool {
    c.len() >= 2
        && c.len() <= 32
        && matches!(c.as_bytes()[0], b'C' | b'G' | b'D')
        && c.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

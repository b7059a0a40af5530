//! The `teams:` section of the chat file.
//!
//! ```yaml
//! teams:
//!   app_id: 00000000-0000-0000-0000-000000000000      # the bot's Microsoft App ID
//!   app_password: file:/etc/countersign/teams-app-password
//!   token_url: https://login.microsoftonline.com/TENANT_ID/oauth2/v2.0/token  # single tenant
//!   conversations:                                     # approver group → channel
//!     sre: { service_url: "https://smba.trafficmanager.net/emea/", conversation_id: "19:…@thread.tacv2" }
//!   default_conversation: { service_url: "…", conversation_id: "19:…" }
//!   webhooks:                                          # notification only (Workflows)
//!     dba: file:/etc/countersign/teams-dba-webhook
//! ```
//!
//! The bot (`app_id`, `app_password`, `conversations`) and the webhooks are each optional,
//! not both. The Microsoft endpoints are defaults that tests point at a local peer.

use std::collections::BTreeMap;

use marked_yaml::Spanned;
use serde::Deserialize;

use super::{BotConfig, Conversation, KeySource, TeamsConfig};
use crate::chat::config::{line_of, secret, Problem};

/// Client-credentials token endpoint of multi-tenant bots.
pub const DEFAULT_TOKEN_URL: &str =
    "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token";
/// Scope of the Bot Connector's tokens.
pub const DEFAULT_SCOPE: &str = "https://api.botframework.com/.default";
/// OpenID metadata of the Bot Connector's tokens (its `jwks_uri` gives the signing keys).
pub const DEFAULT_OPENID_URL: &str =
    "https://login.botframework.com/v1/.well-known/openidconfiguration";
/// Issuer of the Bot Connector's tokens.
pub const DEFAULT_ISSUER: &str = "https://api.botframework.com";

type Str = Spanned<String>;

/// As written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    #[serde(default)]
    app_id: Option<Str>,
    #[serde(default)]
    app_password: Option<Str>,
    #[serde(default)]
    token_url: Option<Str>,
    #[serde(default)]
    scope: Option<Str>,
    #[serde(default)]
    openid_url: Option<Str>,
    #[serde(default)]
    jwks_url: Option<Str>,
    #[serde(default)]
    issuer: Option<Str>,
    #[serde(default)]
    conversations: BTreeMap<String, Spanned<RawConversation>>,
    #[serde(default)]
    default_conversation: Option<Spanned<RawConversation>>,
    #[serde(default)]
    webhooks: BTreeMap<String, Str>,
}

/// A conversation as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConversation {
    service_url: Str,
    conversation_id: Str,
}

/// Checks the section; `None` when a problem was noted.
pub(crate) fn build(raw: &Spanned<Raw>, problems: &mut Vec<Problem>) -> Option<TeamsConfig> {
    let before = problems.len();
    let bot = bot(raw, problems);
    let mut webhooks = BTreeMap::new();
    for (group, reference) in &raw.webhooks {
        let field = format!("teams.webhooks.{group}");
        let Some(url) = secret(&field, reference, problems) else {
            continue;
        };
        // The URL is the secret (it carries its signature): never quote it.
        if !is_http_url(url.expose()) {
            problems.push((
                line_of(reference),
                format!("{field}: the secret is not an http(s) URL (a Workflows webhook URL)"),
            ));
        }
        webhooks.insert(group.clone(), url);
    }
    if raw.app_id.is_none() && raw.app_password.is_none() && raw.webhooks.is_empty() {
        problems.push((
            line_of(raw),
            "teams: give app_id and app_password (the bot, where approvers decide) or webhooks \
             (notification only), or both"
                .into(),
        ));
    }
    if problems.len() > before {
        return None;
    }
    Some(TeamsConfig { bot, webhooks })
}

/// The bot's part; `None` when not configured (or a problem was noted).
fn bot(raw: &Spanned<Raw>, problems: &mut Vec<Problem>) -> Option<BotConfig> {
    let (app_id, app_password) = match (&raw.app_id, &raw.app_password) {
        (None, None) => {
            let bot_only = [
                ("token_url", raw.token_url.as_ref()),
                ("scope", raw.scope.as_ref()),
                ("openid_url", raw.openid_url.as_ref()),
                ("jwks_url", raw.jwks_url.as_ref()),
                ("issuer", raw.issuer.as_ref()),
            ];
            for (field, value) in bot_only {
                if let Some(v) = value {
                    problems.push((
                        line_of(v),
                        format!("teams.{field}: set for a bot, but app_id and app_password are not given"),
                    ));
                }
            }
            if let Some(c) = raw.conversations.values().next() {
                problems.push((
                    line_of(c),
                    "teams.conversations: the bot posts there, but app_id and app_password are \
                     not given"
                        .into(),
                ));
            }
            if let Some(c) = &raw.default_conversation {
                problems.push((
                    line_of(c),
                    "teams.default_conversation: the bot posts there, but app_id and \
                     app_password are not given"
                        .into(),
                ));
            }
            return None;
        }
        (Some(id), Some(password)) => (id, password),
        (Some(id), None) => {
            problems.push((
                line_of(id),
                "teams: app_id is given without app_password (the bot's client secret)".into(),
            ));
            return None;
        }
        (None, Some(password)) => {
            problems.push((
                line_of(password),
                "teams: app_password is given without app_id".into(),
            ));
            return None;
        }
    };
    if !is_guid(app_id) {
        problems.push((
            line_of(app_id),
            format!(
                "teams.app_id: {:?} is not a Microsoft App ID (a GUID like \
                 00000000-0000-0000-0000-000000000000)",
                app_id.as_str()
            ),
        ));
    }
    let app_password = secret("teams.app_password", app_password, problems);
    let token_url = url("token_url", &raw.token_url, DEFAULT_TOKEN_URL, problems);
    let keys = match (&raw.openid_url, &raw.jwks_url) {
        (Some(_), Some(j)) => {
            problems.push((
                line_of(j),
                "teams: give openid_url or jwks_url, not both".into(),
            ));
            KeySource::Jwks(String::new())
        }
        (_, Some(_)) => KeySource::Jwks(url("jwks_url", &raw.jwks_url, "", problems)),
        (_, None) => KeySource::OpenId(url(
            "openid_url",
            &raw.openid_url,
            DEFAULT_OPENID_URL,
            problems,
        )),
    };
    let scope = raw
        .scope
        .as_ref()
        .map_or(DEFAULT_SCOPE, |s| s.as_str())
        .to_owned();
    let issuer = raw
        .issuer
        .as_ref()
        .map_or(DEFAULT_ISSUER, |s| s.as_str())
        .to_owned();
    let mut conversations = BTreeMap::new();
    for (group, c) in &raw.conversations {
        if let Some(c) = conversation(&format!("teams.conversations.{group}"), c, problems) {
            conversations.insert(group.clone(), c);
        }
    }
    let default_conversation = raw
        .default_conversation
        .as_ref()
        .and_then(|c| conversation("teams.default_conversation", c, problems));
    if raw.conversations.is_empty() && raw.default_conversation.is_none() {
        problems.push((
            line_of(app_id),
            "teams: give conversations (approver group → channel) or default_conversation: \
             the bot has nowhere to post"
                .into(),
        ));
    }
    Some(BotConfig {
        app_id: app_id.as_str().to_owned(),
        app_password: app_password?,
        token_url,
        scope,
        keys,
        issuer,
        conversations,
        default_conversation,
    })
}

fn conversation(
    field: &str,
    raw: &Spanned<RawConversation>,
    problems: &mut Vec<Problem>,
) -> Option<Conversation> {
    let before = problems.len();
    if !is_http_url(&raw.service_url) {
        problems.push((
            line_of(&raw.service_url),
            format!(
                "{field}.service_url {:?} is not an http(s) URL (like \
                 https://smba.trafficmanager.net/emea/)",
                raw.service_url.as_str()
            ),
        ));
    }
    let id = raw.conversation_id.as_str();
    if id.is_empty() || !id.contains(':') || id.chars().any(|c| c.is_whitespace()) {
        problems.push((
            line_of(&raw.conversation_id),
            format!(
                "{field}.conversation_id {id:?} is not a Teams conversation id (like \
                 19:…@thread.tacv2)"
            ),
        ));
    }
    (problems.len() == before).then(|| Conversation {
        service_url: raw.service_url.as_str().to_owned(),
        conversation_id: id.to_owned(),
    })
}

/// `value`, checked, or `default` when not given.
fn url(field: &str, value: &Option<Str>, default: &str, problems: &mut Vec<Problem>) -> String {
    match value {
        None => default.to_owned(),
        Some(u) if is_http_url(u) => u.as_str().to_owned(),
        Some(u) => {
            problems.push((
                line_of(u),
                format!("teams.{field} {:?} is not an http(s) URL", u.as_str()),
            ));
            String::new()
        }
    }
}

fn is_http_url(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://")) && reqwest::Url::parse(u).is_ok()
}

/// `8-4-4-4-12` hexadecimal digits (App IDs, Entra object ids).
pub(crate) fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use crate::chat::config::parse;

    const APP: &str = "0c1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8";

    fn secret_file(dir: &std::path::Path, name: &str, value: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, value).expect("write");
        format!("file:{}", path.display())
    }

    #[test]
    fn a_teams_section_gets_microsofts_endpoints_by_default() {
        let dir = tempfile::tempdir().expect("dir");
        let password = secret_file(dir.path(), "p", "client-secret-value");
        let hook = secret_file(
            dir.path(),
            "h",
            "https://prod.example.invalid/workflows/1?sig=x",
        );
        let config = parse(&format!(
            "teams:\n  app_id: {APP}\n  app_password: {password}\n  conversations:\n    sre: \
             {{ service_url: \"https://smba.trafficmanager.net/emea/\", conversation_id: \
             \"19:abc@thread.tacv2\" }}\n  webhooks:\n    dba: {hook}\n"
        ))
        .expect("valid");
        let teams = config.teams.expect("teams");
        let bot = teams.bot.expect("bot");
        assert_eq!(bot.token_url, super::DEFAULT_TOKEN_URL);
        assert_eq!(bot.scope, super::DEFAULT_SCOPE);
        assert_eq!(bot.issuer, super::DEFAULT_ISSUER);
        assert_eq!(
            bot.keys,
            super::KeySource::OpenId(super::DEFAULT_OPENID_URL.into())
        );
        assert_eq!(
            bot.conversations["sre"].conversation_id,
            "19:abc@thread.tacv2"
        );
        assert_eq!(
            teams.webhooks["dba"].expose(),
            "https://prod.example.invalid/workflows/1?sig=x"
        );
        let shown = format!("{bot:?} {:?}", teams.webhooks);
        assert!(
            !shown.contains("client-secret-value") && !shown.contains("sig=x"),
            "{shown}"
        );
    }

    #[test]
    fn webhooks_alone_are_enough() {
        let dir = tempfile::tempdir().expect("dir");
        let hook = secret_file(dir.path(), "h", "https://prod.example.invalid/workflows/1");
        let teams = parse(&format!("teams:\n  webhooks: {{ sre: {hook} }}\n"))
            .expect("valid")
            .teams
            .expect("teams");
        assert!(teams.bot.is_none());
    }

    #[test]
    fn errors_name_their_lines() {
        let dir = tempfile::tempdir().expect("dir");
        let not_url = secret_file(dir.path(), "h", "not a url, but secret-ish");
        let text = format!(
            "teams:\n  app_id: my-bot\n  app_password: hunter2\n  jwks_url: ftp://keys\n  \
             conversations:\n    sre:\n      service_url: smba\n      conversation_id: general\n  \
             webhooks:\n    dba: {not_url}\n"
        );
        let problems = parse(&text).expect_err("invalid");
        let text: Vec<String> = problems.iter().map(|(l, m)| format!("{l}: {m}")).collect();
        let text = text.join("\n");
        for want in [
            "2: teams.app_id: \"my-bot\" is not a Microsoft App ID",
            "3: teams.app_password: secrets are given as env:NAME or file:PATH",
            "4: teams.jwks_url \"ftp://keys\" is not an http(s) URL",
            "7: teams.conversations.sre.service_url \"smba\" is not an http(s) URL",
            "8: teams.conversations.sre.conversation_id \"general\" is not a Teams conversation id",
            "10: teams.webhooks.dba: the secret is not an http(s) URL",
        ] {
            assert!(text.contains(want), "{want:?} not in:\n{text}");
        }
        assert!(!text.contains("secret-ish"), "a secret was quoted:\n{text}");

        let missing = parse(&format!("teams:\n  app_id: {APP}\n")).expect_err("no password");
        assert_eq!(missing[0].0, 2, "{missing:?}");
        let nowhere = parse("teams:\n  scope: x\n").expect_err("nothing");
        let nowhere: Vec<String> = nowhere.iter().map(|(l, m)| format!("{l}: {m}")).collect();
        assert!(
            nowhere
                .iter()
                .any(|m| m.starts_with("2: teams.scope: set for a bot")),
            "{nowhere:?}"
        );
        assert!(
            nowhere
                .iter()
                .any(|m| m.contains("give app_id and app_password")),
            "{nowhere:?}"
        );
        let unknown = parse("teams:\n  app_idd: x\n").expect_err("unknown field");
        assert_eq!(unknown[0].0, 2, "{unknown:?}");
        let both = parse(&format!(
            "teams:\n  app_id: {APP}\n  app_password: env:COUNTERSIGN_SURELY_UNSET\n  \
             openid_url: https://a/\n  jwks_url: https://b/\n  default_conversation: \
             {{ service_url: \"https://s/\", conversation_id: \"19:x\" }}\n"
        ))
        .expect_err("both key sources");
        let both: Vec<String> = both.iter().map(|(l, m)| format!("{l}: {m}")).collect();
        assert!(
            both.iter()
                .any(|m| m == "5: teams: give openid_url or jwks_url, not both"),
            "{both:?}"
        );
    }
}

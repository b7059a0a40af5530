//! The chat file (`--chat FILE`, default `DATA_DIR/chat.yaml` when present): which chats
//! are connected, their secrets (as references) and where each approver group's requests go.
//!
//! ```yaml
//! listen: 127.0.0.1:7480          # HTTP endpoints for Slack interactivity and Teams
//! slack:
//!   bot_token: env:SLACK_BOT_TOKEN
//!   signing_secret: file:/etc/countersign/slack-signing-secret   # HTTP interactivity
//!   app_token: env:SLACK_APP_TOKEN                                # and/or Socket Mode
//!   channels: { sre: C0123456789 }                                # approver group → channel
//!   default_channel: C0999999999                                  # groups not listed
//! teams:
//!   app_id: 00000000-0000-0000-0000-000000000000
//!   app_password: file:/etc/countersign/teams-app-password
//!   conversations:
//!     sre: { service_url: "https://smba.trafficmanager.net/emea/", conversation_id: "19:…" }
//! ```
//!
//! Unknown fields are refused; every error names the file and line.

use std::net::SocketAddr;
use std::path::Path;

use marked_yaml::{from_node, parse_yaml_with_options, LoaderOptions, Spanned};
use serde::Deserialize;

use super::{slack, teams};

/// Default address of the chat HTTP endpoints (loopback: put a TLS proxy in front).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7480";

/// The chat configuration.
#[derive(Clone, Debug)]
pub struct ChatConfig {
    /// Where the HTTP endpoints listen.
    pub listen: SocketAddr,
    /// Slack, when configured.
    pub slack: Option<slack::SlackConfig>,
    /// Microsoft Teams, when configured.
    pub teams: Option<teams::TeamsConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    listen: Option<Spanned<String>>,
    #[serde(default)]
    slack: Option<Spanned<slack::config::Raw>>,
    #[serde(default)]
    teams: Option<Spanned<teams::config::Raw>>,
}

/// Line of a spanned value (0: unknown).
pub(super) fn line_of<T>(s: &Spanned<T>) -> usize {
    s.span().start().map_or(0, |m| m.line())
}

/// A problem at a line of the chat file.
pub(super) type Problem = (usize, String);

/// Reads the chat file.
pub fn load(path: &Path) -> anyhow::Result<ChatConfig> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{name}: cannot read the chat file: {e}"))?;
    parse(&text).map_err(|problems| {
        let lines: Vec<String> = problems
            .iter()
            .map(|(line, m)| {
                if *line == 0 {
                    format!("{name}: {m}")
                } else {
                    format!("{name}:{line}: {m}")
                }
            })
            .collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    })
}

/// Parses a chat file's text.
pub fn parse(text: &str) -> Result<ChatConfig, Vec<Problem>> {
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    let root = parse_yaml_with_options(0, text, options).map_err(|e| vec![(0, e.to_string())])?;
    let raw: RawFile = from_node(&root).map_err(|e| {
        let line = e.start_mark().map_or(0, |m| m.line());
        vec![(line, e.to_string())]
    })?;
    let mut problems = Vec::new();
    let listen = match &raw.listen {
        None => DEFAULT_LISTEN.parse().ok(),
        Some(l) => match l.as_str().parse() {
            Ok(a) => Some(a),
            Err(_) => {
                problems.push((
                    line_of(l),
                    format!(
                        "listen: {:?} is not an address like 127.0.0.1:7480",
                        l.as_str()
                    ),
                ));
                None
            }
        },
    };
    let slack = raw
        .slack
        .as_ref()
        .and_then(|s| slack::config::build(s, &mut problems));
    let teams = raw
        .teams
        .as_ref()
        .and_then(|t| teams::config::build(t, &mut problems));
    if raw.slack.is_none() && raw.teams.is_none() {
        problems.push((0, "neither slack nor teams is configured".into()));
    }
    match (listen, problems.is_empty()) {
        (Some(listen), true) => Ok(ChatConfig {
            listen,
            slack,
            teams,
        }),
        _ => Err(problems),
    }
}

/// Resolves a secret reference of the file, noting a problem at its line.
pub(super) fn secret(
    field: &str,
    value: &Spanned<String>,
    problems: &mut Vec<Problem>,
) -> Option<super::secret::Secret> {
    super::secret::Secret::resolve(value.as_str())
        .map_err(|e| problems.push((line_of(value), format!("{field}: {e}"))))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_file(dir: &Path, value: &str) -> String {
        let path = dir.join("s");
        std::fs::write(&path, value).expect("write");
        format!("file:{}", path.display())
    }

    #[test]
    fn a_slack_section_is_checked() {
        let dir = tempfile::tempdir().expect("dir");
        let s = secret_file(dir.path(), "xoxb-1");
        let ok = parse(&format!(
            "slack:\n  bot_token: {s}\n  signing_secret: {s}\n  channels: {{ sre: C0123 }}\n"
        ))
        .expect("valid");
        let slack = ok.slack.expect("slack");
        assert_eq!(slack.api_url, "https://slack.com/api");
        assert_eq!(slack.channels["sre"], "C0123");
        assert_eq!(ok.listen.to_string(), DEFAULT_LISTEN);
        assert!(format!("{slack:?}").contains("[redacted]"));
        assert!(!format!("{slack:?}").contains("xoxb-1"));
    }

    #[test]
    fn errors_name_their_lines() {
        let dir = tempfile::tempdir().expect("dir");
        let s = secret_file(dir.path(), "xoxb-1");
        let problems = parse(&format!(
            "listen: nowhere\nslack:\n  bot_token: xoxb-literal\n  channels:\n    sre: general\n  api_url: {s}\n"
        ))
        .expect_err("invalid");
        let text: Vec<String> = problems.iter().map(|(l, m)| format!("{l}: {m}")).collect();
        let text = text.join("\n");
        for want in [
            "1: listen: \"nowhere\" is not an address",
            "3: slack.bot_token: secrets are given as env:NAME or file:PATH",
            "5: slack.channels.sre: \"general\" is not a channel id",
            "not an http(s) URL",
            "give signing_secret (HTTP interactivity) or app_token (Socket Mode)",
        ] {
            assert!(text.contains(want), "{want:?} not in:\n{text}");
        }
        let unknown = parse("slack:\n  bot_tokne: x\n").expect_err("unknown field");
        assert_eq!(unknown[0].0, 2, "{unknown:?}");
        assert!(parse("# nothing\n").is_err());
    }
}

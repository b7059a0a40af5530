//! What the approver reads, end to end: every command line of the adversarial corpus
//! (`countersign_api::adversarial`), run by an agent and refused by the kernel, reaches the
//! approvers through the CLI, a local Slack and a local Teams (Bot Framework) — and all three
//! show the same escaped text, with no hidden character raw. `cargo xtask test` runs this as
//! its own stage ("approver views").

use std::time::Duration;

use countersign_api::adversarial::{strings, ARGVS};
use countersign_api::display::{hidden, shell_join};
use serde_json::Value;

use crate::slack::{free_port, secret_file, secrets_dir};
use crate::slack_peer::{SlackPeer, BOT_TOKEN, SIGNING_SECRET};
use crate::teams_peer::{BotFrameworkPeer, APP_ID, APP_PASSWORD};
use crate::{request_id, World};

const SLACK_CHANNEL: &str = "C0SRE";
const TEAMS_CONVERSATION: &str = "19:sre-approvals@thread.tacv2";
const WITHIN: Duration = Duration::from_secs(30);

/// Fails when any string of `message` shows a hidden character raw.
fn assert_nothing_hidden(channel: &str, message: &Value) {
    for (at, s) in strings(message, channel) {
        assert!(
            !s.chars().any(hidden),
            "{at} shows a hidden character raw: {s:?}"
        );
    }
}

#[test]
fn the_cli_slack_and_teams_show_the_same_escaped_command() {
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    let slack = runtime.block_on(SlackPeer::start());
    let teams = runtime.block_on(BotFrameworkPeer::start());
    let secrets = secrets_dir("views");
    let secret = |name: &str, value: &str| secret_file(&secrets, name, value);
    let chat = format!(
        "listen: 127.0.0.1:{}\n\
         slack:\n  api_url: {}\n  bot_token: {}\n  signing_secret: {}\n  channels: {{ sre: {SLACK_CHANNEL} }}\n\
         teams:\n  app_id: {APP_ID}\n  app_password: {}\n  token_url: {}\n  openid_url: {}\n  \
         conversations:\n    sre: {{ service_url: \"{}\", conversation_id: \"{TEAMS_CONVERSATION}\" }}\n",
        free_port(),
        slack.api_url(),
        secret("bot", BOT_TOKEN),
        secret("signing", SIGNING_SECRET),
        secret("app-password", APP_PASSWORD),
        teams.token_url(),
        teams.openid_url(),
        teams.service_url(),
    );
    let w = World::start_with_chat("views", &chat);
    for argv in ARGVS {
        // The world's rule asks approval for `guarded delete …`.
        let args: Vec<&str> = std::iter::once("delete")
            .chain(argv[1..].iter().copied())
            .collect();
        let args = args.as_slice();
        let refused = w.exec(args);
        w.t.assert_exec_refused(&refused);
        let full: Vec<&str> = std::iter::once(w.guarded.as_str())
            .chain(args.iter().copied())
            .collect();
        let shown = shell_join(&full);
        assert!(!shown.chars().any(hidden), "the escaping itself: {shown:?}");

        // The CLI: `show` of the request the approver lists.
        let request = w.pending_for("alice", args);
        let id = request_id(&request);
        let cli = w.cp.cli("alice", &["show", &id]);
        cli.assert_success();
        assert!(
            cli.stdout.contains(&shown),
            "the CLI shows {shown:?}: {cli}"
        );
        assert!(
            !cli.stdout.lines().any(|l| l.chars().any(hidden)),
            "the CLI shows a hidden character raw: {cli}"
        );

        // Slack: the message posted for this request, its blocks and its fallback text.
        let post = runtime.block_on(slack.wait_call("chat.postMessage", WITHIN, |c| {
            c.body["channel"] == SLACK_CHANNEL
                && c.body["text"].as_str().is_some_and(|t| t.contains(&id))
        }));
        assert_nothing_hidden("slack", &post.body);
        let texts = strings(&post.body["blocks"], "slack");
        assert!(
            texts.iter().any(|(_, s)| *s == format!("What: {shown}")),
            "Slack shows {shown:?}: {}",
            post.body
        );
        let fallback = post.body["text"].as_str().unwrap_or_default();
        assert!(
            !fallback.contains('<') && !fallback.contains('>'),
            "Slack reads its fallback text as mrkdwn: {fallback:?}"
        );

        // Teams: the Adaptive Card sent to the approvers' conversation.
        let card = runtime.block_on(teams.wait_activity("POST", WITHIN, |c| {
            c.conversation == TEAMS_CONVERSATION && c.body.to_string().contains(&id)
        }));
        assert_nothing_hidden("teams", &card.body);
        let texts = strings(&card.body, "teams");
        assert!(
            texts.iter().any(|(_, s)| s.contains(&shown)),
            "Teams shows {shown:?}: {}",
            card.body
        );
    }
}

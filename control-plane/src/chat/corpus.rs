//! The adversarial corpus every channel is tested with: argv an agent crafts so that the
//! approver reads another command than the one that runs (bidirectional overrides,
//! zero-width characters, newlines, terminal escapes, chat markup and mentions). Slack, Teams
//! and the CLI must all show the text of `countersign_api::display`, and none may show a
//! hidden character raw.

use std::time::{Duration, SystemTime};

use countersign_api::display::{hidden, shell_join};
use serde_json::Value;

use crate::chat::view::RequestView;
use crate::rpc::pb;
use crate::store::{DecisionRow, RequestRow, RequestSpec, RequestState, Verdict};

/// The nastiest argv we know, each shown to an approver.
pub const ARGVS: &[&[&str]] = &[
    &["kubectl", "delete", "pod", "web\u{202e}lo\u{202c}"],
    &["kubectl", "get", "pods\u{200b}", "--all"],
    &["kubectl", "apply", "-f", "ok.yaml\nkubectl delete ns prod"],
    &["kubectl", "\u{1b}[2K\rkubectl get pods"],
    &[
        "kubectl",
        "<!channel>",
        "<@U012AB3CD>",
        "<https://evil.example|ok>",
    ],
    &[
        "kubectl",
        "**bold**",
        "[x](https://evil.example)",
        "`code`",
        "&amp;",
    ],
    &["kubectl", "\u{2066}get\u{2069}", "\u{feff}", "it's"],
];

/// Every string in `v` (a Slack message or a Teams card), with where it is.
fn strings(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((at.to_owned(), s.clone())),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| strings(x, &format!("{at}[{i}]"), out)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| strings(x, &format!("{at}.{k}"), out)),
        _ => {}
    }
}

/// A request in `state` by the `coding` group whose reason tries Markdown, a link and a
/// mention.
pub fn view(state: RequestState) -> RequestView {
    let now = SystemTime::now();
    let request = RequestRow {
        id: "r-0123456789".into(),
        host: "web_01".into(),
        agent_group: "coding".into(),
        session: "s1".into(),
        fingerprint: "00000000000000f1".into(),
        kind: "exec".into(),
        operation: pb::Operation {
            binary: "/usr/bin/kubectl".into(),
            argv: vec!["/usr/bin/kubectl".into(), "delete".into(), "*".into()],
            ..pb::Operation::default()
        },
        spec: RequestSpec {
            rule: "kubectl".into(),
            rule_description: "cluster changes".into(),
            approver_groups: vec!["sre".into()],
            approvals_required: 1,
            expires_in: Duration::from_secs(600),
            max_grant_ttl: Duration::from_secs(600),
            max_grant_uses: 3,
            allow_launcher: false,
        },
        reason: "**urgent** [click](https://evil.example) <at>everyone</at>".into(),
        state,
        attempts: 2,
        first_seen: now,
        last_seen: now,
        expires_at: now + Duration::from_secs(600),
        grant_id: None,
        launching_user: "mallory".into(),
    };
    let decisions = if state == RequestState::Denied {
        vec![DecisionRow {
            request_id: request.id.clone(),
            decided_by: "alice".into(),
            channel: "teams".into(),
            time: now,
            verdict: Verdict::Deny {
                reason: "not now".into(),
            },
            grant_id: None,
        }]
    } else {
        Vec::new()
    };
    RequestView {
        request,
        decisions,
        grant: None,
    }
}

/// [`view`] of an exec of `argv`.
pub fn exec_view(argv: &[&str]) -> RequestView {
    let mut v = view(RequestState::Pending);
    v.request.operation.binary = argv[0].to_owned();
    v.request.operation.argv = argv.iter().map(|a| (*a).to_owned()).collect();
    v
}

#[test]
fn every_channel_shows_the_same_escaped_command() {
    let now = SystemTime::now();
    for argv in ARGVS {
        let v = exec_view(argv);
        let shown = shell_join(argv);
        assert!(!shown.chars().any(hidden), "{shown:?}");
        assert_eq!(v.what(), shown, "the chats' text is the CLI's");
        let (text, blocks) = crate::chat::slack::blocks::message(&v, now);
        let card =
            crate::chat::teams::card::card(&v, now, crate::chat::teams::card::Actions::Execute);
        let mut all = vec![("slack.text".to_owned(), text.clone())];
        strings(&blocks, "slack", &mut all);
        strings(&card, "teams", &mut all);
        all.push((
            "teams.summary".into(),
            crate::chat::teams::card::summary(&v, now),
        ));
        for (at, s) in &all {
            assert!(
                !s.chars().any(hidden),
                "{at} shows a hidden character raw: {s:?}"
            );
        }
        assert!(
            all.iter()
                .any(|(at, s)| at.starts_with("slack[") && *s == format!("What: {shown}")),
            "Slack shows {shown:?}: {all:?}"
        );
        let teams_what = card
            .to_string()
            .contains(&serde_json::to_string(&shown).expect("json"));
        assert!(teams_what, "Teams shows {shown:?}: {card}");
        // Slack reads its fallback text as mrkdwn: no mention, link or entity survives.
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
    }
}

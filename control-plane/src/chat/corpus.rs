//! The adversarial corpus (`countersign_api::adversarial`) through every channel's renderer:
//! Slack, Teams and the CLI must all show the text of `countersign_api::display`, and none may
//! show a hidden character raw. (The `approvals` suite's `views` stage runs the same corpus
//! end to end: kernel refusal, server, a local Slack and Teams, the CLI binary.)

use std::time::{Duration, SystemTime};

use countersign_api::adversarial::{strings, ARGVS};
use countersign_api::display::{hidden, shell_join};

use crate::chat::view::RequestView;
use crate::rpc::pb;
use crate::store::{DecisionRow, RequestRow, RequestSpec, RequestState, Verdict};

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
        over_cap: 0,
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
        all.extend(strings(&blocks, "slack"));
        all.extend(strings(&card, "teams"));
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

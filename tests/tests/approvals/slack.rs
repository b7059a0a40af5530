//! An approver in Slack, end to end: the refusal is posted to the sre channel of a local
//! Slack, a signed click of the linked approver approves it, and the agent's waiting retry
//! passes in the kernel.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use control_plane::chat::slack::signature;
use serde_json::json;

use crate::slack_peer::{SlackPeer, BOT_TOKEN, SIGNING_SECRET};
use crate::{finish, World};

/// A free loopback port for the chat endpoints (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("free port: {e}"))
}

#[test]
fn a_slack_click_approves_and_the_retry_passes() {
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    let peer = runtime.block_on(SlackPeer::start());
    let secrets = secrets_dir("slack");
    let write = |name: &str, value: &str| secret_file(&secrets, name, value);
    let port = free_port();
    let chat = format!(
        "listen: 127.0.0.1:{port}\nslack:\n  api_url: {}\n  bot_token: {}\n  signing_secret: {}\n  channels: {{ sre: C0SRE }}\n",
        peer.api_url(),
        write("bot", BOT_TOKEN),
        write("signing", SIGNING_SECRET)
    );
    let w = World::start_with_chat("slack", &chat);
    // The server announced its chat listener at registration: agents cannot reach it.
    crate::isolation::assert_builtin_refuses(&w, "127.0.0.1", port);
    // The security admin links alice's Slack account (the CLI, over mTLS).
    w.cp.cli("carol", &["people", "link", "alice", "--slack", "UALICE"])
        .assert_success();
    // A link acts once its person confirms it, with her own credential.
    w.cp.cli("alice", &["people", "link", "alice", "--slack", "UALICE"])
        .assert_success();

    let started = Instant::now();
    let waiting = w.spawn_exec(&["delete", "cache"]);
    let post = runtime.block_on(
        peer.wait_call("chat.postMessage", Duration::from_secs(30), |c| {
            c.body["channel"] == "C0SRE"
        }),
    );
    eprintln!("refusal → Slack message in {:?}", started.elapsed());
    let text = post.body["text"].as_str().unwrap_or_default().to_owned();
    let id = text
        .rsplit_once("(r-")
        .map(|(_, rest)| format!("r-{}", rest.trim_end_matches(')')))
        .unwrap_or_else(|| panic!("no request id in {text:?}"));
    assert!(
        post.body["blocks"].to_string().contains("delete cache"),
        "{post:?}"
    );

    let payload = json!({
        "type": "block_actions",
        "user": { "id": "UALICE", "name": "somebody-else" },
        "channel": { "id": "C0SRE" },
        "actions": [{ "action_id": "approve_once", "value": id }],
        "trigger_id": "1.1.1"
    });
    let body = format!("payload={}", url_encode(&payload.to_string()));
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .unwrap_or_default();
    let sig = signature::sign(SIGNING_SECRET.as_bytes(), &ts, body.as_bytes());
    let clicked = Instant::now();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/slack/interactivity"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", &ts)
            .header("x-slack-signature", &sig)
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    assert_eq!(status.ok(), Some(200), "interactivity answer");
    let (outcome, _) = finish(waiting, clicked);
    outcome.assert_success();
    eprintln!("Slack click → retry passed in {:?}", clicked.elapsed());
    let update = runtime.block_on(peer.wait_call("chat.update", Duration::from_secs(10), |c| {
        c.body["blocks"]
            .to_string()
            .contains("Approved by alice via slack")
    }));
    assert!(!update.body["blocks"].to_string().contains("Approve once"));
    let decision =
        w.cp.audit()
            .into_iter()
            .find(|r| r["kind"] == "decision" && r["subject"]["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no decision record of {id}"));
    assert_eq!(decision["actor"]["id"], "alice");
    assert_eq!(decision["actor"]["channel"], "slack");
}

/// A directory for the secret files that lives as long as the test process.
pub fn secrets_dir(test: &str) -> String {
    let dir = std::env::temp_dir().join(format!("cs-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir.display().to_string()
}

/// Writes a chat secret to `dir/name`; returns its `file:` reference for the chat file.
pub fn secret_file(dir: &str, name: &str, value: &str) -> String {
    let path = format!("{dir}/{name}");
    std::fs::write(&path, value).unwrap_or_else(|e| panic!("{path}: {e}"));
    format!("file:{path}")
}

/// `application/x-www-form-urlencoded` value encoding.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

//! Slack approvers against a local Slack peer: requests posted with Block Kit and updated in
//! place, signed interactivity callbacks (forged, stale and replayed ones refused), refused
//! clicks answered ephemerally and recorded, Socket Mode with reconnects, rate limits.

mod chat_support;
mod grpc_support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chat_support::slack::{SlackPeer, APP_TOKEN, BOT_TOKEN, SIGNING_SECRET};
use control_plane::audit::{Kind, Record};
use control_plane::chat::slack::signature;
use control_plane::store::{RequestState, Store};
use grpc_support::{raise, TestServer, POLICY};
use serde_json::{json, Value};

/// The chat file of the tests: secrets in files, the peer's API, sre's channel.
fn chat_yaml(dir: &std::path::Path, peer: &SlackPeer, socket_mode: bool) -> String {
    let secret = |name: &str, value: &str| {
        let path = dir.join(name);
        std::fs::write(&path, value).expect("secret file");
        format!("file:{}", path.display())
    };
    let access = if socket_mode {
        format!("  app_token: {}\n", secret("app-token", APP_TOKEN))
    } else {
        format!(
            "  signing_secret: {}\n",
            secret("signing-secret", SIGNING_SECRET)
        )
    };
    format!(
        "slack:\n  api_url: {}\n  bot_token: {}\n{access}  channels:\n    sre: C0SRE\n    dba: C0DBA\n",
        peer.api_url(),
        secret("bot-token", BOT_TOKEN)
    )
}

struct Setup {
    server: TestServer,
    peer: SlackPeer,
    _secrets: tempfile::TempDir,
}

impl Setup {
    async fn start(socket_mode: bool) -> Setup {
        let peer = SlackPeer::start().await;
        let secrets = tempfile::tempdir().expect("dir");
        let yaml = chat_yaml(secrets.path(), &peer, socket_mode);
        let server = TestServer::start_with_chat(Some(POLICY), Some(&yaml)).await;
        for (user, person) in [("UALICE", "alice"), ("UBOB", "bob"), ("UCAROL", "carol")] {
            link(&server, user, person).await;
        }
        Setup {
            server,
            peer,
            _secrets: secrets,
        }
    }

    fn store(&self) -> &Store {
        chat_support::store(&self.server)
    }

    /// Waits for the request's message in `channel`; returns its `ts`.
    async fn posted(&self, request: &str, channel: &str) -> String {
        self.peer
            .wait_call("chat.postMessage", Duration::from_secs(1), |c| {
                c.body["channel"] == channel
                    && c.body["text"].as_str().is_some_and(|t| t.contains(request))
            })
            .await;
        chat_support::stored_message(&self.server, request, "slack", channel)
            .await
            .0
    }

    async fn state(&self, request: &str) -> RequestState {
        chat_support::state(&self.server, request).await
    }

    async fn wait_state(&self, request: &str, want: RequestState) {
        chat_support::wait_state(&self.server, request, want).await;
    }

    /// POSTs a signed interactivity callback (`ts_offset` seconds from now; `forge` breaks
    /// the signature); returns the HTTP status and the raw body sent.
    async fn send(&self, payload: &Value, ts_offset: i64, forge: bool) -> (u16, String, String) {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form");
        let ts = (unix_now() + ts_offset).to_string();
        let mut sig = signature::sign(SIGNING_SECRET.as_bytes(), &ts, body.as_bytes());
        if forge {
            sig = signature::sign(b"not-the-secret", &ts, body.as_bytes());
        }
        let status = self.post_raw(&body, &ts, &sig).await;
        (status, body, format!("{ts} {sig}"))
    }

    async fn post_raw(&self, body: &str, ts: &str, sig: &str) -> u16 {
        reqwest::Client::new()
            .post(format!("{}/slack/interactivity", self.server.chat_url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", sig)
            .body(body.to_owned())
            .send()
            .await
            .expect("interactivity call")
            .status()
            .as_u16()
    }

    /// Waits for an ephemeral reply to `user` containing `words`.
    async fn told(&self, user: &str, words: &str) {
        self.peer
            .wait_call("chat.postEphemeral", Duration::from_secs(5), |c| {
                c.body["user"] == user && c.body["text"].as_str().is_some_and(|t| t.contains(words))
            })
            .await;
    }

    async fn wait_refusal(&self, code: &str) -> Record {
        chat_support::wait_refusal(&self.server, code).await
    }
}

async fn link(server: &TestServer, user: &str, person: &str) {
    chat_support::link(server, "slack", user, person).await;
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A `block_actions` payload as Slack sends it for one of our buttons (each with its own
/// trigger id, as two real clicks have).
fn click(user: &str, channel: &str, action: Value, reason: Option<&str>) -> Value {
    static TRIGGER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let trigger = TRIGGER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    json!({
        "type": "block_actions",
        // Names and e-mails are never trusted: they claim to be somebody else here.
        "user": { "id": user, "username": "alice", "name": "alice", "team_id": "T0TEST" },
        "team": { "id": "T0TEST" },
        "channel": { "id": channel, "name": "sre-approvals" },
        "container": { "type": "message", "channel_id": channel, "message_ts": "1700000000.000101" },
        "actions": [action],
        "state": { "values": { "countersign_reason": { "reason": { "type": "plain_text_input", "value": reason } } } },
        "response_url": "https://hooks.slack.invalid/actions/T0TEST/1/x",
        "trigger_id": format!("{trigger}.2.3")
    })
}

fn approve_once(id: &str) -> Value {
    json!({ "type": "button", "action_id": "approve_once", "block_id": "countersign_actions", "value": id })
}

fn approve_for(id: &str, secs: u64) -> Value {
    json!({ "type": "static_select", "action_id": "approve_for", "block_id": "countersign_actions",
            "selected_option": { "value": format!("{id}|{secs}") } })
}

fn deny(id: &str) -> Value {
    json!({ "type": "button", "action_id": "deny", "block_id": "countersign_actions", "value": id })
}

fn blocks_text(call_body: &Value) -> String {
    call_body["blocks"].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_posted_and_a_valid_click_approves_it() {
    let s = Setup::start(false).await;
    let started = Instant::now();
    let id = raise(&s.server, 1, "kubectl", "/usr/bin/kubectl", "x", "mallory").await;
    let post = s
        .peer
        .wait_call("chat.postMessage", Duration::from_secs(1), |c| {
            c.body["channel"] == "C0SRE"
        })
        .await;
    eprintln!(
        "refusal → Slack message: {:?}",
        post.at.duration_since(started)
    );
    let blocks = blocks_text(&post.body);
    for words in [
        "coding/s1 on web-01, launched by mallory",
        "/usr/bin/kubectl delete pod x",
        "kubectl — cluster changes",
        "1 refused attempt",
        "Approve once",
        "Approve for…",
        "Deny",
        &id,
    ] {
        assert!(blocks.contains(words), "message lacks {words:?}: {blocks}");
    }
    // Not the dba channel: kubectl's approvers are sre only.
    assert!(s
        .peer
        .calls("chat.postMessage")
        .iter()
        .all(|c| c.body["channel"] == "C0SRE"));
    let ts = s.posted(&id, "C0SRE").await;

    let (status, ..) = s
        .send(&click("UALICE", "C0SRE", approve_once(&id), None), 0, false)
        .await;
    assert_eq!(status, 200);
    s.wait_state(&id, RequestState::Approved).await;
    let update = s
        .peer
        .wait_call("chat.update", Duration::from_secs(5), |c| {
            c.body["ts"] == ts.as_str()
                && blocks_text(&c.body).contains("Approved by alice via slack")
        })
        .await;
    let blocks = blocks_text(&update.body);
    assert!(
        !blocks.contains("Approve once"),
        "a decided card keeps its buttons: {blocks}"
    );
    assert!(blocks.contains("1 use"), "{blocks}");
    // The audit trail says who and through which channel.
    let records = s.store().audit_records(None, 0).await.expect("audit");
    let decision = records
        .iter()
        .find(|r| r.kind == Kind::Decision && r.subject.request_id.as_deref() == Some(id.as_str()))
        .expect("decision record");
    assert_eq!(decision.actor.id, "alice");
    assert_eq!(decision.actor.channel.as_deref(), Some("slack"));
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_and_replayed_callbacks_are_refused_and_recorded() {
    let s = Setup::start(false).await;
    let id = raise(
        &s.server,
        1,
        "kubectl",
        "/usr/bin/kubectl",
        "00000000000000a2",
        "mallory",
    )
    .await;
    s.posted(&id, "C0SRE").await;
    let payload = click("UALICE", "C0SRE", approve_once(&id), None);

    let (status, ..) = s.send(&payload, 0, true).await;
    assert_eq!(status, 401, "forged signature");
    s.wait_refusal("bad_signature").await;
    let (status, ..) = s.send(&payload, -6 * 60, false).await;
    assert_eq!(status, 401, "six minutes old");
    s.wait_refusal("stale").await;
    let status = s
        .post_raw("payload=%7B%7D", &unix_now().to_string(), "v0=00")
        .await;
    assert_eq!(status, 401, "garbage signature");
    assert_eq!(s.post_raw("payload=x", "", "").await, 401, "no headers");
    assert_eq!(
        s.state(&id).await,
        RequestState::Pending,
        "nothing decided by bad callbacks"
    );

    // A genuine callback sent twice: the second is a replay.
    let (status, body, ts_sig) = s.send(&payload, 0, false).await;
    assert_eq!(status, 200);
    let (ts, sig) = ts_sig.split_once(' ').expect("ts sig");
    assert_eq!(s.post_raw(&body, ts, sig).await, 401, "replay");
    let replay = s.wait_refusal("replay").await;
    assert_eq!(replay.actor.channel.as_deref(), Some("slack"));
    s.wait_state(&id, RequestState::Approved).await;
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_clicks_are_told_to_the_clicker_and_recorded() {
    let s = Setup::start(false).await;
    let id = raise(
        &s.server,
        1,
        "kubectl",
        "/usr/bin/kubectl",
        "00000000000000a3",
        "bob",
    )
    .await;
    s.posted(&id, "C0SRE").await;

    // Not linked.
    s.send(
        &click("UNOBODY", "C0SRE", approve_once(&id), None),
        0,
        false,
    )
    .await;
    s.told("UNOBODY", "not linked").await;
    let r = s.wait_refusal("not_linked").await;
    assert_eq!(r.actor.id, "slack:UNOBODY");
    assert_eq!(r.subject.request_id.as_deref(), Some(id.as_str()));
    // Carol is a dba approver, not sre.
    s.send(&click("UCAROL", "C0SRE", approve_once(&id), None), 0, false)
        .await;
    s.told("UCAROL", "not in an approver group of rule 'kubectl'")
        .await;
    assert_eq!(s.wait_refusal("not_allowed").await.actor.id, "carol");
    // Bob launched the session.
    s.send(&click("UBOB", "C0SRE", approve_once(&id), None), 0, false)
        .await;
    s.told("UBOB", "launched this agent session").await;
    s.wait_refusal("launcher").await;
    // Deny without a reason.
    s.send(&click("UALICE", "C0SRE", deny(&id), Some("  ")), 0, false)
        .await;
    s.told("UALICE", "Type a reason").await;
    assert_eq!(s.state(&id).await, RequestState::Pending);

    // Alice approves for 5 minutes (kubectl grants at most 10m, 3 uses); her double click changes nothing.
    s.send(
        &click("UALICE", "C0SRE", approve_for(&id, 300), None),
        0,
        false,
    )
    .await;
    s.wait_state(&id, RequestState::Approved).await;
    s.send(
        &click("UALICE", "C0SRE", approve_for(&id, 300), None),
        0,
        false,
    )
    .await;
    s.told("UALICE", "You already decided this request").await;
    s.wait_refusal("already_decided").await;
    let grant = s.store().decisions_of(&id).await.expect("decisions");
    assert_eq!(grant.len(), 1, "one decision: {grant:?}");
    // Bob (launcher aside) clicks the stale card: already approved, by whom.
    link(&s.server, "ULENA", "lena").await;
    s.send(
        &click("ULENA", "C0SRE", deny(&id), Some("too late")),
        0,
        false,
    )
    .await;
    s.told("ULENA", "already approved by alice").await;

    // A request that expired (rule quick: 1 s).
    let quick = raise(
        &s.server,
        2,
        "quick",
        "/usr/bin/quick",
        "00000000000000a4",
        "mallory",
    )
    .await;
    s.posted(&quick, "C0SRE").await;
    s.wait_state(&quick, RequestState::Expired).await;
    s.send(
        &click("UALICE", "C0SRE", approve_once(&quick), None),
        0,
        false,
    )
    .await;
    s.told("UALICE", "expired").await;
    s.peer
        .wait_call("chat.update", Duration::from_secs(5), |c| {
            blocks_text(&c.body).contains("Expired undecided")
        })
        .await;
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_with_its_reason_updates_the_card() {
    let s = Setup::start(false).await;
    let id = raise(
        &s.server,
        1,
        "kubectl",
        "/usr/bin/kubectl",
        "00000000000000a5",
        "mallory",
    )
    .await;
    let ts = s.posted(&id, "C0SRE").await;
    s.send(
        &click(
            "UALICE",
            "C0SRE",
            deny(&id),
            Some("not during the freeze <!channel>"),
        ),
        0,
        false,
    )
    .await;
    s.wait_state(&id, RequestState::Denied).await;
    let update = s
        .peer
        .wait_call("chat.update", Duration::from_secs(5), |c| {
            c.body["ts"] == ts.as_str()
        })
        .await;
    let blocks = blocks_text(&update.body);
    assert!(blocks.contains("Denied by alice via slack"), "{blocks}");
    assert!(
        blocks.contains("not during the freeze <!channel>"),
        "{blocks}"
    );
    // The reason sits in plain_text only: no mrkdwn object could turn it into a mention.
    assert!(!blocks.contains("mrkdwn"), "{blocks}");
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_posts_wait_as_slack_asks() {
    let s = Setup::start(false).await;
    s.peer.rate_limit_next_posts(1);
    let started = Instant::now();
    let id = raise(
        &s.server,
        1,
        "kubectl",
        "/usr/bin/kubectl",
        "00000000000000a6",
        "mallory",
    )
    .await;
    s.posted(&id, "C0SRE").await;
    let calls = s.peer.calls("chat.postMessage");
    assert_eq!(calls.len(), 2, "one refused, one retried: {calls:?}");
    let waited = calls[1].at.duration_since(calls[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}, Retry-After said 1 s"
    );
    eprintln!("posted after a 429 in {:?}", started.elapsed());
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_acknowledges_clicks_and_reconnects() {
    let s = Setup::start(true).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.peer.sockets_opened() < 1 {
        assert!(Instant::now() < deadline, "no Socket Mode connection");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // No HTTP endpoint without a signing secret.
    let id = raise(
        &s.server,
        1,
        "kubectl",
        "/usr/bin/kubectl",
        "00000000000000a7",
        "mallory",
    )
    .await;
    s.posted(&id, "C0SRE").await;
    assert_eq!(
        s.post_raw("payload=%7B%7D", &unix_now().to_string(), "v0=00")
            .await,
        404
    );

    s.peer
        .push(&json!({ "type": "disconnect", "reason": "refresh_requested" }));
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.peer.sockets_opened() < 2 {
        assert!(Instant::now() < deadline, "no reconnect after disconnect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.peer.calls("apps.connections.open").len(), 2);
    // Give the new socket its hello before pushing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.peer.push(&json!({
        "envelope_id": "env-1",
        "type": "interactive",
        "accepts_response_payload": false,
        "payload": click("UALICE", "C0SRE", approve_once(&id), None)
    }));
    s.wait_state(&id, RequestState::Approved).await;
    assert!(
        s.peer.acks().contains(&"env-1".to_owned()),
        "envelope not acknowledged"
    );
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_storm_updates_the_card_at_a_bounded_pace() {
    let s = Setup::start(false).await;
    let id = raise(
        &s.server,
        1,
        "kubectl",
        "/usr/bin/kubectl",
        "00000000000000a8",
        "mallory",
    )
    .await;
    let ts = s.posted(&id, "C0SRE").await;
    let started = Instant::now();
    let mut agent = s.server.agent().await;
    for n in 2..=40u64 {
        agent
            .upload_events(countersign_api::pb::UploadEventsRequest {
                events: vec![grpc_support::refused(
                    n,
                    "kubectl",
                    "/usr/bin/kubectl",
                    "00000000000000a8",
                    "mallory",
                )],
            })
            .await
            .expect("upload");
    }
    // The last count shows within a few seconds …
    s.peer
        .wait_call("chat.update", Duration::from_secs(8), |c| {
            c.body["ts"] == ts.as_str() && blocks_text(&c.body).contains("40 refused attempts")
        })
        .await;
    // … after a handful of updates, not forty.
    let updates = s.peer.calls("chat.update").len();
    eprintln!(
        "40 attempts shown with {updates} updates in {:?}",
        started.elapsed()
    );
    assert!(updates <= 5, "{updates} updates for one storm");
    assert_eq!(
        s.peer.calls("chat.postMessage").len(),
        1,
        "one message per request"
    );
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_given_elsewhere_shows_as_progress_on_the_card() {
    let s = Setup::start(false).await;
    // prod-db needs two approvals from sre or dba: posted in both channels.
    let id = raise(
        &s.server,
        1,
        "prod-db",
        "/usr/bin/psql",
        "00000000000000a9",
        "mallory",
    )
    .await;
    let ts = s.posted(&id, "C0SRE").await;
    s.posted(&id, "C0DBA").await;
    s.server
        .approvals("alice")
        .await
        .decide(grpc_support::approve_once(&id))
        .await
        .expect("alice approves through the API");
    s.peer
        .wait_call("chat.update", Duration::from_secs(8), |c| {
            c.body["ts"] == ts.as_str() && blocks_text(&c.body).contains("1 of 2 approvals (alice)")
        })
        .await;
    assert_eq!(s.state(&id).await, RequestState::Pending);
    s.send(&click("UCAROL", "C0DBA", approve_once(&id), None), 0, false)
        .await;
    s.wait_state(&id, RequestState::Approved).await;
    s.peer
        .wait_call("chat.update", Duration::from_secs(5), |c| {
            blocks_text(&c.body).contains("Approved by alice via api")
                && blocks_text(&c.body).contains("and carol via slack")
        })
        .await;
    s.server.stop().await;
}

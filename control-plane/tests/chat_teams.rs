//! Microsoft Teams approvers against a local Bot Framework peer: requests posted as Adaptive
//! Cards with `Action.Execute` and updated in place through the Bot Connector (with a
//! client-credentials token), invokes authenticated by the connector's JWT (forged, expired,
//! misdirected ones refused and recorded), refused clicks answered to the clicker, and
//! notification-only Workflows webhooks.

mod chat_support;
mod grpc_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chat_support::botframework::{self, BotFrameworkPeer, APP_ID, APP_PASSWORD, KEY, OTHER_KEY};
use control_plane::audit::{Kind, Record};
use control_plane::store::{RequestState, Store};
use countersign_api::pb;
use grpc_support::{raise, TestServer, POLICY};
use serde_json::{json, Value};

const SRE: &str = "19:sre-approvals@thread.tacv2";
/// Teams gives every activity its own id.
static NEXT_INVOKE: AtomicU64 = AtomicU64::new(1);
const DBA: &str = "19:dba-approvals@thread.tacv2";
/// Entra ID object ids of the people (Teams sends them in `from.aadObjectId`).
const ALICE: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const BOB: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const CAROL: &str = "cccccccc-0000-4000-8000-000000000003";
const NOBODY: &str = "dddddddd-0000-4000-8000-000000000004";

fn secret(dir: &std::path::Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value).expect("secret file");
    format!("file:{}", path.display())
}

/// The chat file of the tests: the bot pointed at the peer, sre's and dba's channels.
fn bot_yaml(dir: &std::path::Path, peer: &BotFrameworkPeer) -> String {
    let service = peer.service_url();
    format!(
        "teams:\n  app_id: {APP_ID}\n  app_password: {}\n  token_url: {}\n  openid_url: {}\n  \
         conversations:\n    sre: {{ service_url: \"{service}\", conversation_id: \"{SRE}\" }}\n    \
         dba: {{ service_url: \"{service}\", conversation_id: \"{DBA}\" }}\n",
        secret(dir, "app-password", APP_PASSWORD),
        peer.token_url(),
        peer.openid_url(),
    )
}

struct Setup {
    server: TestServer,
    peer: BotFrameworkPeer,
    _secrets: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Setup {
        let peer = BotFrameworkPeer::start().await;
        let secrets = tempfile::tempdir().expect("dir");
        let yaml = bot_yaml(secrets.path(), &peer);
        Setup::with(peer, secrets, &yaml).await
    }

    async fn with(peer: BotFrameworkPeer, secrets: tempfile::TempDir, yaml: &str) -> Setup {
        let server = TestServer::start_with_chat(Some(POLICY), Some(yaml)).await;
        for (user, person) in [(ALICE, "alice"), (BOB, "bob"), (CAROL, "carol")] {
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

    /// Waits for the request's card in `conversation`; returns the activity id stored.
    async fn posted(&self, request: &str, conversation: &str) -> String {
        self.peer
            .wait_activity("POST", Duration::from_secs(2), |c| {
                c.conversation == conversation && c.body.to_string().contains(request)
            })
            .await;
        let (reference, service_url) =
            chat_support::stored_message(&self.server, request, "teams", conversation).await;
        assert_eq!(service_url, self.peer.service_url(), "service URL kept");
        reference
    }

    async fn state(&self, request: &str) -> RequestState {
        chat_support::state(&self.server, request).await
    }

    /// POSTs an activity to the messaging endpoint with `authorization`; returns the status
    /// and the JSON answer (Null when empty).
    async fn send(&self, activity: &Value, authorization: Option<String>) -> (u16, Value) {
        let mut call = reqwest::Client::new()
            .post(format!("{}/teams/messages", self.server.chat_url()))
            .json(activity);
        if let Some(a) = authorization {
            call = call.header("authorization", a);
        }
        let response = call.send().await.expect("messaging endpoint");
        let status = response.status().as_u16();
        let body = response.bytes().await.expect("body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Sends `activity` with a token the connector would give it.
    async fn send_signed(&self, activity: &Value) -> (u16, Value) {
        let token = botframework::sign(KEY, &self.peer.claims());
        self.send(activity, Some(format!("Bearer {token}"))).await
    }

    /// An `adaptiveCard/action` invoke of one of our buttons, as Teams sends it: on the card
    /// posted for `request` in the SRE channel.
    async fn invoke(&self, user: &str, request: &str, verb: &str, inputs: Value) -> Value {
        let card = self.posted(request, SRE).await;
        self.invoke_on(user, request, verb, inputs, SRE, &card)
    }

    /// [`Self::invoke`] on message `card` of `conversation`, whatever was posted there.
    fn invoke_on(
        &self,
        user: &str,
        request: &str,
        verb: &str,
        inputs: Value,
        conversation: &str,
        card: &str,
    ) -> Value {
        let mut data = json!({ "request_id": request });
        if let (Some(d), Some(i)) = (data.as_object_mut(), inputs.as_object()) {
            d.extend(i.clone());
        }
        json!({
            "type": "invoke",
            "name": "adaptiveCard/action",
            "id": format!("f:invoke-{}", NEXT_INVOKE.fetch_add(1, Ordering::Relaxed)),
            "timestamp": "2026-01-01T10:00:00.000Z",
            "channelId": "msteams",
            "serviceUrl": self.peer.service_url(),
            // Names and e-mails are never trusted: this one claims to be alice.
            "from": { "id": "29:1-some-teams-user-id", "name": "alice", "aadObjectId": user,
                      "userPrincipalName": "alice@example.com" },
            "conversation": { "isGroup": true, "conversationType": "channel",
                              "tenantId": "72f988bf-0000-0000-0000-000000000000",
                              "id": format!("{conversation};messageid={card}") },
            "recipient": { "id": format!("28:{APP_ID}"), "name": "Countersign" },
            "replyToId": card,
            "channelData": { "channel": { "id": SRE }, "team": { "id": "19:team@thread.tacv2" },
                             "tenant": { "id": "72f988bf-0000-0000-0000-000000000000" },
                             "source": { "name": "message" } },
            "value": { "action": { "type": "Action.Execute", "title": verb, "verb": verb, "data": data },
                       "trigger": "manual" },
            "locale": "en-US"
        })
    }

    async fn wait_refusal(&self, code: &str) -> Record {
        chat_support::wait_refusal(&self.server, code).await
    }
}

async fn link(server: &TestServer, user: &str, person: &str) {
    chat_support::link(server, "teams", user, person).await;
}

fn card_of(activity: &Value) -> &Value {
    let attachment = &activity["attachments"][0];
    assert_eq!(
        attachment["contentType"], "application/vnd.microsoft.card.adaptive",
        "{activity}"
    );
    &attachment["content"]
}

fn verbs(card: &Value) -> Vec<String> {
    card["actions"]
        .as_array()
        .map(|a| {
            a.iter()
                .inspect(|a| assert_eq!(a["type"], "Action.Execute", "{a}"))
                .map(|a| a["verb"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_posted_as_a_card_and_a_valid_invoke_approves_it() {
    let s = Setup::start().await;
    let started = Instant::now();
    let id = raise(&s.server, 1, "kubectl", "/usr/bin/kubectl", "x", "mallory").await;
    let post = s
        .peer
        .wait_activity("POST", Duration::from_secs(2), |c| c.conversation == SRE)
        .await;
    eprintln!(
        "refusal → Teams card: {:?}",
        post.at.duration_since(started)
    );
    assert_eq!(post.body["type"], "message");
    let card = card_of(&post.body);
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert_eq!(verbs(card), ["approve_once", "approve_for", "deny"]);
    assert_eq!(card["actions"][0]["data"]["request_id"], id.as_str());
    let text = card.to_string();
    for words in [
        "coding/s1 on web-01, launched by mallory",
        "/usr/bin/kubectl delete pod x",
        "kubectl — cluster changes",
        "1 refused attempt",
        "\"id\":\"reason\"",
        "\"id\":\"duration\"",
    ] {
        assert!(text.contains(words), "card lacks {words:?}: {text}");
    }
    // kubectl's approvers are sre only.
    assert!(s
        .peer
        .activities("POST")
        .iter()
        .all(|c| c.conversation == SRE));
    // The bot authenticated with client credentials.
    let forms = s.peer.token_requests();
    assert_eq!(forms.len(), 1, "{forms:?}");
    assert_eq!(forms[0]["grant_type"], "client_credentials");
    let activity_id = s.posted(&id, SRE).await;

    let (status, answer) = s
        .send_signed(
            &s.invoke(ALICE, &id, "approve_once", json!({ "reason": "" }))
                .await,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(answer["type"], "application/vnd.microsoft.card.adaptive");
    let refreshed = answer["value"].to_string();
    assert!(
        refreshed.contains("Approved by alice via teams"),
        "{refreshed}"
    );
    assert!(
        verbs(&answer["value"]).is_empty(),
        "buttons left: {refreshed}"
    );
    assert!(!refreshed.contains("Input."), "{refreshed}");

    // The request is approved for the gRPC API as for the store.
    let r = s
        .server
        .approvals("alice")
        .await
        .get_request(pb::GetRequestRequest {
            request_id: id.clone(),
        })
        .await
        .expect("get request")
        .into_inner();
    assert_eq!(r.state, pb::RequestState::Approved as i32);
    assert_eq!(s.state(&id).await, RequestState::Approved);
    let records = s.store().audit_records(None, 0).await.expect("audit");
    let decision = records
        .iter()
        .find(|r| r.kind == Kind::Decision && r.subject.request_id.as_deref() == Some(id.as_str()))
        .expect("decision record");
    assert_eq!(decision.actor.id, "alice");
    assert_eq!(decision.actor.channel.as_deref(), Some("teams"));

    // The posted card is replaced for everybody.
    let update = s
        .peer
        .wait_activity("PUT", Duration::from_secs(5), |c| {
            c.activity_id.as_deref() == Some(activity_id.as_str())
                && c.body.to_string().contains("Approved by alice via teams")
        })
        .await;
    assert_eq!(update.conversation, SRE);
    assert!(verbs(card_of(&update.body)).is_empty());
    assert!(update.body.to_string().contains("1 use"), "{}", update.body);
    assert_eq!(
        s.peer.token_requests().len(),
        1,
        "the token is reused until it nears expiry"
    );
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invokes_without_a_valid_connector_token_are_refused_and_recorded() {
    let s = Setup::start().await;
    let id = raise(
        &s.server,
        1,
        "kubectl",
        "/usr/bin/kubectl",
        "00000000000000b2",
        "mallory",
    )
    .await;
    s.posted(&id, SRE).await;
    let approve = s.invoke(ALICE, &id, "approve_once", json!({})).await;
    let bearer =
        |pem: &str, claims: &Value| Some(format!("Bearer {}", botframework::sign(pem, claims)));

    let (status, _) = s.send(&approve, bearer(OTHER_KEY, &s.peer.claims())).await;
    assert_eq!(status, 401, "signed by a key not in the JWKS");
    s.wait_refusal("bad_token").await;

    let mut claims = s.peer.claims();
    claims["iss"] = json!("https://sts.windows.net/attacker/");
    let (status, _) = s.send(&approve, bearer(KEY, &claims)).await;
    assert_eq!(status, 401, "another issuer");
    s.wait_refusal("wrong_issuer").await;

    let mut claims = s.peer.claims();
    claims["aud"] = json!("99999999-9999-4999-8999-999999999999");
    let (status, _) = s.send(&approve, bearer(KEY, &claims)).await;
    assert_eq!(status, 401, "a token for another bot");
    s.wait_refusal("wrong_audience").await;

    let mut claims = s.peer.claims();
    claims["exp"] = json!(botframework::unix_now() - 10 * 60);
    let (status, _) = s.send(&approve, bearer(KEY, &claims)).await;
    assert_eq!(status, 401, "expired ten minutes ago");
    let expired = s.wait_refusal("expired").await;
    assert_eq!(expired.actor.channel.as_deref(), Some("teams"));

    let mut claims = s.peer.claims();
    claims["serviceurl"] = json!("https://smba.example.invalid/");
    let (status, _) = s.send(&approve, bearer(KEY, &claims)).await;
    assert_eq!(status, 401, "a token for another service URL");
    let mut claims = s.peer.claims();
    if let Some(c) = claims.as_object_mut() {
        c.remove("serviceurl");
    }
    let (status, _) = s.send(&approve, bearer(KEY, &claims)).await;
    assert_eq!(status, 401, "a token that names no service URL");
    let (status, _) = s.send(&approve, None).await;
    assert_eq!(status, 401, "no token");

    assert_eq!(
        s.state(&id).await,
        RequestState::Pending,
        "nothing decided by bad invokes"
    );
    assert!(
        s.store()
            .decisions_of(&id)
            .await
            .expect("decisions")
            .is_empty(),
        "no decision recorded"
    );
    assert!(s.peer.activities("PUT").is_empty(), "no card changed");
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_clicks_are_told_to_the_clicker_and_recorded() {
    let s = Setup::start().await;
    let id = raise(
        &s.server,
        1,
        "kubectl",
        "/usr/bin/kubectl",
        "00000000000000b3",
        "bob",
    )
    .await;
    s.posted(&id, SRE).await;
    let told = |answer: &Value, words: &str| {
        assert_eq!(answer["statusCode"], 200, "{answer}");
        assert_eq!(
            answer["type"], "application/vnd.microsoft.activity.message",
            "{answer}"
        );
        let text = answer["value"].as_str().unwrap_or("");
        assert!(text.contains(words), "{words:?} not in {text:?}");
    };

    // Not linked.
    let (status, answer) = s
        .send_signed(&s.invoke(NOBODY, &id, "approve_once", json!({})).await)
        .await;
    assert_eq!(status, 200);
    told(&answer, "not linked");
    let r = s.wait_refusal("not_linked").await;
    assert_eq!(r.actor.id, format!("teams:{NOBODY}"));
    assert_eq!(r.subject.request_id.as_deref(), Some(id.as_str()));
    assert_eq!(s.state(&id).await, RequestState::Pending);
    // Carol is a dba approver, not sre.
    let (_, answer) = s
        .send_signed(&s.invoke(CAROL, &id, "approve_once", json!({})).await)
        .await;
    told(&answer, "not in an approver group of rule 'kubectl'");
    // Bob launched the session.
    let (_, answer) = s
        .send_signed(&s.invoke(BOB, &id, "approve_once", json!({})).await)
        .await;
    told(&answer, "launched this agent session");
    // Deny without a reason.
    let (_, answer) = s
        .send_signed(
            &s.invoke(
                ALICE,
                &id,
                "deny",
                json!({ "reason": " ", "duration": "300" }),
            )
            .await,
        )
        .await;
    told(&answer, "Type a reason");
    assert_eq!(s.state(&id).await, RequestState::Pending);
    assert!(s
        .store()
        .decisions_of(&id)
        .await
        .expect("decisions")
        .is_empty());

    // Alice approves for 5 minutes (the choice's value, in seconds); her second click is told.
    let (_, answer) = s
        .send_signed(
            &s.invoke(
                ALICE,
                &id,
                "approve_for",
                json!({ "reason": "", "duration": "300" }),
            )
            .await,
        )
        .await;
    assert_eq!(
        answer["type"], "application/vnd.microsoft.card.adaptive",
        "{answer}"
    );
    assert_eq!(s.state(&id).await, RequestState::Approved);
    let grant = s
        .store()
        .get_request(&id)
        .await
        .expect("read")
        .and_then(|r| r.grant_id)
        .expect("grant");
    let grant = s
        .store()
        .get_grant(&grant)
        .await
        .expect("read")
        .expect("grant");
    assert_eq!(grant.ttl, Duration::from_secs(300));
    let (_, answer) = s
        .send_signed(
            &s.invoke(ALICE, &id, "approve_for", json!({ "duration": "300" }))
                .await,
        )
        .await;
    told(&answer, "You already decided this request");
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_with_its_reason_updates_the_card_and_rate_limits_are_honoured() {
    let s = Setup::start().await;
    s.peer.rate_limit_next_sends(1);
    let id = raise(
        &s.server,
        1,
        "kubectl",
        "/usr/bin/kubectl",
        "00000000000000b4",
        "mallory",
    )
    .await;
    let activity_id = s.posted(&id, SRE).await;
    let sends = s.peer.activities("POST");
    assert_eq!(sends.len(), 2, "one refused, one retried: {sends:?}");
    let waited = sends[1].at.duration_since(sends[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}, Retry-After said 1 s"
    );

    let reason = "not during the **freeze** [see](https://evil.example)";
    let (_, answer) = s
        .send_signed(
            &s.invoke(ALICE, &id, "deny", json!({ "reason": reason }))
                .await,
        )
        .await;
    assert_eq!(s.state(&id).await, RequestState::Denied, "{answer}");
    let update = s
        .peer
        .wait_activity("PUT", Duration::from_secs(5), |c| {
            c.activity_id.as_deref() == Some(activity_id.as_str())
        })
        .await;
    let text = card_of(&update.body).to_string();
    assert!(text.contains("Denied by alice via teams"), "{text}");
    // The reason is shown as typed, in a TextRun (never read as Markdown).
    assert!(text.contains(reason), "{text}");
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflows_webhook_gets_the_card_without_buttons() {
    let peer = BotFrameworkPeer::start().await;
    let secrets = tempfile::tempdir().expect("dir");
    let yaml = format!(
        "teams:\n  webhooks:\n    sre: {}\n",
        secret(secrets.path(), "sre-webhook", &peer.webhook_url("sre"))
    );
    let s = Setup::with(peer, secrets, &yaml).await;
    let id = raise(
        &s.server,
        1,
        "kubectl",
        "/usr/bin/kubectl",
        "00000000000000b5",
        "mallory",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while s.peer.webhook_posts("sre").is_empty() {
        assert!(Instant::now() < deadline, "nothing posted to the webhook");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body = &s.peer.webhook_posts("sre")[0];
    assert_eq!(body["type"], "message");
    let card = card_of(body);
    assert!(
        verbs(card).is_empty(),
        "a webhook card cannot call back: {card}"
    );
    let text = card.to_string();
    assert!(
        text.contains(&id) && text.contains("Decide with the Countersign CLI"),
        "{text}"
    );
    // Stored as posted (not as a claim that another replica would post again).
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let stored = s
            .store()
            .chat_messages(&id, "teams-webhook")
            .await
            .expect("messages");
        if let Some(m) = stored.first() {
            assert_eq!(m.target, "sre");
            break;
        }
        assert!(Instant::now() < deadline, "webhook post not stored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // No bot: no messaging endpoint, no token asked.
    let click = s.invoke_on(ALICE, &id, "approve_once", json!({}), SRE, "1700000000001");
    let (status, _) = s.send_signed(&click).await;
    assert_eq!(status, 404);
    assert!(s.peer.token_requests().is_empty());

    // Decided in the CLI: the webhook cannot edit its card, and posts nothing more.
    s.server
        .approvals("alice")
        .await
        .decide(grpc_support::approve_once(&id))
        .await
        .expect("approve");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(s.peer.webhook_posts("sre").len(), 1);
    s.server.stop().await;
}

/// A click the connector delivered once cannot be delivered again, even with a fresh valid
/// token: the second copy is refused and recorded, and nothing more is decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_invoke_is_refused() {
    let s = Setup::start().await;
    let id = raise(
        &s.server,
        1,
        "kubectl",
        "/usr/bin/kubectl",
        "00000000000000b7",
        "mallory",
    )
    .await;
    s.posted(&id, SRE).await;
    link(&s.server, ALICE, "alice").await;
    let deny = s
        .invoke(ALICE, &id, "deny", json!({ "reason": "no" }))
        .await;
    let (status, _) = s.send_signed(&deny).await;
    assert_eq!(status, 200);
    assert_eq!(s.state(&id).await, RequestState::Denied);
    let (status, _) = s.send_signed(&deny).await;
    assert_eq!(status, 401, "the same activity again");
    s.wait_refusal("replay").await;
    let decisions = s.store().decisions_of(&id).await.expect("decisions");
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    s.server.stop().await;
}

/// A click counts only on the card Countersign posted for that request, in that conversation:
/// a `request_id` put on another request's card, the card's click sent as if from another
/// conversation, or a message nobody posted decides nothing and is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_must_come_from_the_card_posted_for_its_request() {
    let s = Setup::start().await;
    let first = raise(&s.server, 1, "kubectl", "/usr/bin/kubectl", "c1", "mallory").await;
    let second = raise(&s.server, 2, "kubectl", "/usr/bin/kubectl", "c2", "mallory").await;
    let first_card = s.posted(&first, SRE).await;
    s.posted(&second, SRE).await;
    for forged in [
        // The second request, clicked on the first request's card.
        s.invoke_on(ALICE, &second, "approve_once", json!({}), SRE, &first_card),
        // The first request's card, as if in another conversation.
        s.invoke_on(
            ALICE,
            &first,
            "approve_once",
            json!({}),
            "19:elsewhere@thread.tacv2",
            &first_card,
        ),
        // A message that was never posted.
        s.invoke_on(
            ALICE,
            &first,
            "approve_once",
            json!({}),
            SRE,
            "1699999999999",
        ),
    ] {
        let (status, answer) = s.send_signed(&forged).await;
        assert_eq!(status, 200, "{answer}");
        let text = answer["value"].as_str().unwrap_or("");
        assert!(text.contains("not one Countersign posted"), "{answer}");
        let r = s.wait_refusal("foreign_card").await;
        assert!(r.subject.request_id.is_some(), "{r:?}");
    }
    assert_eq!(s.state(&first).await, RequestState::Pending);
    assert_eq!(s.state(&second).await, RequestState::Pending);
    // The real card still works.
    let (status, _) = s
        .send_signed(&s.invoke(ALICE, &second, "approve_once", json!({})).await)
        .await;
    assert_eq!(status, 200);
    assert_eq!(s.state(&second).await, RequestState::Approved);
}

//! The approver in Slack (`--via slack|both`): a local Slack (the control plane's test peer,
//! `slack_peer`) that the server posts its requests to, the server's chat file pointing at it,
//! alice's Slack account linked to her — and her two moves there: seeing the request's
//! message, clicking "Approve once" (a signed POST to the server's interactivity endpoint, as
//! Slack sends it).

use std::{
    fs,
    path::Path,
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use control_plane::{
    chat::slack::{blocks, interactivity, signature},
    rpc::pb::{people_service_client::PeopleServiceClient, LinkRequest},
};
use reqwest::header::HeaderValue;
use serde_json::json;
use tokio::runtime::Runtime;
use tonic::transport::Channel;

use super::world::APPROVER;
use crate::{
    grpc,
    slack_peer::{Call, SlackPeer, BOT_TOKEN, SIGNING_SECRET},
};

/// The approvers' channel (group `sre` of the rule).
const CHANNEL: &str = "C0SRE";
/// Alice's Slack account.
const USER: &str = "UALICE";
/// Pause between two looks at what the peer received. It does not blur the figures (each
/// call carries the time it arrived), only how soon the loop goes on; each look copies every
/// call so far, hence not 1 ms.
const LOOK_PAUSE: Duration = Duration::from_millis(5);

/// The local Slack and the way to the server's interactivity endpoint.
pub struct Slack {
    peer: SlackPeer,
    /// `http://127.0.0.1:PORT/slack/interactivity`.
    endpoint: String,
    client: reqwest::Client,
}

/// The request's message, as the peer received it.
pub struct Post {
    pub request_id: String,
    /// When `chat.postMessage` arrived.
    pub at: Instant,
}

impl Slack {
    /// Starts the local Slack on `rt` and writes the server's chat file, `DATA_DIR/chat.yaml`
    /// (the server reads it when it starts), with the secrets in files under `secrets`.
    pub fn start(rt: &Runtime, data_dir: &Path, secrets: &Path) -> Result<Self, String> {
        let peer = rt.block_on(SlackPeer::start());
        fs::create_dir_all(secrets).map_err(|e| format!("creating {}: {e}", secrets.display()))?;
        let write = |name: &str, value: &str| {
            let path = secrets.join(name);
            fs::write(&path, value)
                .map(|()| format!("file:{}", path.display()))
                .map_err(|e| format!("writing {}: {e}", path.display()))
        };
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("a free port for the chat endpoints: {e}"))?;
        let chat = format!(
            "listen: {listen}\nslack:\n  api_url: {}\n  bot_token: {}\n  signing_secret: {}\n  channels: {{ sre: {CHANNEL} }}\n",
            peer.api_url(),
            write("slack-bot-token", BOT_TOKEN)?,
            write("slack-signing-secret", SIGNING_SECRET)?,
        );
        let path = data_dir.join("chat.yaml");
        fs::write(&path, chat).map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(Self {
            peer,
            endpoint: format!("http://{listen}{}", interactivity::PATH),
            client: reqwest::Client::new(),
        })
    }

    /// Links alice's Slack account to her, as the security admin (`carol`) does, and alice
    /// confirms it (a link acts only then).
    pub async fn link(admin: &Channel, approver: &Channel) -> Result<(), String> {
        for (who, step) in [(admin, "link"), (approver, "confirm")] {
            PeopleServiceClient::new(who.clone())
                .link(LinkRequest {
                    person: APPROVER.into(),
                    chat: "slack".into(),
                    external_id: USER.into(),
                })
                .await
                .map(drop)
                .map_err(|s| grpc::failed(&format!("PeopleService.Link ({step})"), &s))?;
        }
        Ok(())
    }

    /// Waits until the approvers' channel received the message of `guarded LABEL`.
    pub fn wait_post(&self, label: &str, within: Duration) -> Result<Post, String> {
        // The fallback text: `Approval needed: …/guarded LABEL (r-…)`.
        let what = format!("guarded {label} (");
        let call = self.wait_call("chat.postMessage", within, |c| {
            c.body["channel"] == CHANNEL && text(c).contains(&what)
        })?;
        let request_id = text(&call)
            .rsplit_once('(')
            .map(|(_, id)| id.trim_end_matches(')').to_owned())
            .filter(|id| id.starts_with("r-"))
            .ok_or_else(|| format!("no request id in the message {:?}", text(&call)))?;
        Ok(Post {
            request_id,
            at: call.at,
        })
    }

    /// Alice's click on "Approve once" of `request_id`, signed; ready to send.
    pub fn click(&self, request_id: &str) -> Result<reqwest::Request, String> {
        let payload = json!({
            "type": "block_actions",
            "user": { "id": USER, "name": APPROVER },
            "channel": { "id": CHANNEL },
            "actions": [{ "action_id": blocks::APPROVE_ONCE, "value": request_id }],
            "trigger_id": "1.1.1"
        });
        let mut request = self
            .client
            .post(&self.endpoint)
            .form(&[("payload", payload.to_string())])
            .build()
            .map_err(|e| format!("building the click: {e}"))?;
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs().to_string())
            .unwrap_or_default();
        let body = request
            .body()
            .and_then(reqwest::Body::as_bytes)
            .ok_or("the click has no body")?;
        let sig = signature::sign(SIGNING_SECRET.as_bytes(), &ts, body);
        for (name, value) in [
            ("x-slack-request-timestamp", ts),
            ("x-slack-signature", sig),
        ] {
            let value = HeaderValue::from_str(&value).map_err(|e| format!("{name}: {e}"))?;
            request.headers_mut().insert(name, value);
        }
        Ok(request)
    }

    /// Sends a click; the endpoint acknowledges it at once (as Slack wants) and decides after.
    pub fn send(&self, rt: &Runtime, click: reqwest::Request) -> Result<(), String> {
        let status = rt
            .block_on(self.client.execute(click))
            .map_err(|e| format!("POST {}: {e}", self.endpoint))?
            .status();
        if !status.is_success() {
            return Err(format!("POST {}: {status}", self.endpoint));
        }
        Ok(())
    }

    /// Waits until the message of `request_id` was updated to say alice approved it through
    /// `channel` (the audit trail's name of it: `slack`).
    pub fn wait_approved(
        &self,
        request_id: &str,
        channel: &str,
        within: Duration,
    ) -> Result<(), String> {
        let by = format!("Approved by {APPROVER} via {channel}");
        let of = format!("Request {request_id} ");
        self.wait_call("chat.update", within, |c| {
            let blocks = c.body["blocks"].to_string();
            blocks.contains(&of) && blocks.contains(&by)
        })
        .map(drop)
    }

    fn wait_call(
        &self,
        method: &str,
        within: Duration,
        pred: impl Fn(&Call) -> bool,
    ) -> Result<Call, String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(c) = self.peer.calls(method).into_iter().find(|c| pred(c)) {
                return Ok(c);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the local Slack received no matching {method} within {within:?}"
                ));
            }
            thread::sleep(LOOK_PAUSE);
        }
    }
}

/// The fallback text of a posted or updated message.
fn text(call: &Call) -> &str {
    call.body["text"].as_str().unwrap_or_default()
}

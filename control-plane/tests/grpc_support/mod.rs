//! A real server on loopback (mutual TLS, development certificates, SQLite in a temp dir)
//! and clients for each kind of caller. Shared by the `grpc_*` test files.

#![allow(dead_code, reason = "each test file uses a part")]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use control_plane::certs;
use control_plane::people::TokenDigest;
use control_plane::server::{self, Config, Running};
use control_plane::tls::identity::{PeerIdentity, Role};
use countersign_api::pb;
use pb::agent_service_client::AgentServiceClient;
use pb::approval_service_client::ApprovalServiceClient;
use pb::audit_service_client::AuditServiceClient;
use pb::policy_service_client::PolicyServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::Request;

/// Host certificate used by the "daemon" of the tests.
pub const HOST: &str = "web-01";
/// Bearer token of alice (the people file holds its SHA-256 only).
pub const ALICE_TOKEN: &str = "cst_alice_0123456789abcdef0123456789abcdef";
/// Bearer token of dave, the auditor.
pub const DAVE_TOKEN: &str = "cst_dave_0123456789abcdef0123456789abcdef";

/// The test policy: `kubectl` needs one approval from sre (grants up to 3 uses / 10m),
/// `prod-db` two from sre or dba, `quick` expires after 1s, `own` lets the launcher approve.
pub const POLICY: &str = "\
version: 1
agents:
  - name: coding
    cgroup: /agents/coding
rules:
  - id: kubectl
    description: cluster changes
    exec: { binary: /usr/bin/kubectl }
    action: approve
    approvers: { groups: [sre], min: 1, grant: { uses: 3, ttl: 10m } }
  - id: prod-db
    network: { cidr: [10.20.0.0/16], ports: [5432], protocol: tcp }
    action: approve
    approvers: { groups: [sre, dba], min: 2 }
  - id: quick
    exec: { binary: /usr/bin/quick }
    action: approve
    approvers: { groups: [sre], expires: 1s }
  - id: own
    exec: { binary: /usr/bin/own }
    action: approve
    approvers: { groups: [sre], allow_launcher: true }
";

fn people_yaml() -> String {
    format!(
        "default_approvers: [security]
people:
  - name: alice
    groups: [sre]
    roles: [approver]
    tokens: [\"{}\"]
  - name: bob
    groups: [sre]
    roles: [approver]
  - name: carol
    groups: [dba]
    roles: [approver]
  - name: dave
    roles: [auditor]
    tokens: [\"{}\"]
  - name: erin
    roles: [admin]
  - name: lena
    groups: [sre]
    roles: [approver]
",
        TokenDigest::of(ALICE_TOKEN),
        TokenDigest::of(DAVE_TOKEN)
    )
}

/// A running server and its files.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub running: Option<Running>,
    pub url: String,
}

impl TestServer {
    /// Starts a server with the test people file and (if given) a seed policy.
    pub async fn start(policy: Option<&str>) -> TestServer {
        TestServer::start_with_chat(policy, None).await
    }

    /// Starts a server as [`TestServer::start`] does, with `chat` as its `DATA_DIR/chat.yaml`
    /// (listen on 127.0.0.1:0 unless the text says otherwise).
    pub async fn start_with_chat(policy: Option<&str>, chat: Option<&str>) -> TestServer {
        TestServer::start_configured(policy, chat, |_| {}).await
    }

    /// Starts a server as [`TestServer::start_with_chat`] does, after `configure` had its say
    /// on the configuration.
    pub async fn start_configured(
        policy: Option<&str>,
        chat: Option<&str>,
        configure: impl FnOnce(&mut Config),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        if let Some(text) = chat {
            let text = if text.contains("listen:") {
                text.to_owned()
            } else {
                format!("listen: 127.0.0.1:0\n{text}")
            };
            std::fs::write(data.join("chat.yaml"), text).expect("chat file");
        }
        let people = dir.path().join("people.yaml");
        std::fs::write(&people, people_yaml()).expect("people file");
        let mut config = Config::new(&data, "127.0.0.1:0".parse().expect("addr"));
        config.people = Some(people);
        if let Some(text) = policy {
            let path = dir.path().join("policy.yaml");
            std::fs::write(&path, text).expect("policy file");
            config.policy = Some(path);
        }
        configure(&mut config);
        let running = server::start(config).await.expect("server starts");
        // The daemon of the tests.
        certs::issue_client(&data.join("certs"), &PeerIdentity::new(Role::Host, HOST))
            .expect("host certificate");
        let url = format!("https://{}", running.addr);
        TestServer {
            dir,
            running: Some(running),
            url,
        }
    }

    /// `http://ADDR` of the chat endpoints.
    pub fn chat_url(&self) -> String {
        let addr = self
            .running
            .as_ref()
            .and_then(|r| r.chat_addr)
            .expect("the server has chat endpoints");
        format!("http://{addr}")
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The development certificates.
    pub fn certs(&self) -> PathBuf {
        self.data().join("certs")
    }

    fn ca(&self) -> Certificate {
        Certificate::from_pem(std::fs::read(self.certs().join("ca.pem")).expect("ca.pem"))
    }

    /// A channel presenting `ROLE-NAME.pem` from `dir`.
    pub async fn channel_with(
        &self,
        dir: &Path,
        role: &str,
        name: &str,
    ) -> Result<Channel, tonic::Status> {
        let cert = std::fs::read(dir.join(format!("{role}-{name}.pem"))).expect("cert");
        let key = std::fs::read(dir.join(format!("{role}-{name}-key.pem"))).expect("key");
        let tls = ClientTlsConfig::new()
            .ca_certificate(self.ca())
            .identity(Identity::from_pem(cert, key))
            .domain_name("localhost");
        connect(&self.url, tls).await
    }

    /// A channel without a client certificate (token clients).
    pub async fn anonymous(&self) -> Channel {
        let tls = ClientTlsConfig::new()
            .ca_certificate(self.ca())
            .domain_name("localhost");
        connect(&self.url, tls)
            .await
            .expect("TLS without client certificate")
    }

    /// A channel as person `name` (certificate).
    pub async fn person(&self, name: &str) -> Channel {
        let dir = self.certs();
        self.channel_with(&dir, "person", name)
            .await
            .expect("person channel")
    }

    /// A channel as the test host.
    pub async fn host(&self) -> Channel {
        let dir = self.certs();
        self.channel_with(&dir, "host", HOST)
            .await
            .expect("host channel")
    }

    pub async fn agent(&self) -> AgentServiceClient<Channel> {
        AgentServiceClient::new(self.host().await)
    }

    pub async fn approvals(&self, person: &str) -> ApprovalServiceClient<Channel> {
        ApprovalServiceClient::new(self.person(person).await)
    }

    pub async fn policies(&self, person: &str) -> PolicyServiceClient<Channel> {
        PolicyServiceClient::new(self.person(person).await)
    }

    pub async fn audit(&self, person: &str) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(self.person(person).await)
    }

    /// Stops the server gracefully; open decision streams must not hold it up.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            tokio::time::timeout(Duration::from_secs(5), r.stop())
                .await
                .expect("shutdown within 5 s")
                .expect("clean shutdown");
        }
    }
}

async fn connect(url: &str, tls: ClientTlsConfig) -> Result<Channel, tonic::Status> {
    Endpoint::from_shared(url.to_owned())
        .expect("endpoint")
        .tls_config(tls)
        .expect("client TLS")
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connect: {e:?}")))
}

/// `msg` with `authorization: Bearer TOKEN`.
pub fn with_token<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    r
}

/// The id of the exec `operation(_, label, _)` builds: `delete pod <label>` of file 8:1/4242
/// under the group default (rule number 0), as the daemon computes it.
pub fn op_id(label: &str) -> String {
    agent_common::binding::Binding::exec(0, (8 << 20) | 1, 4242, &["", "delete", "pod", label]).id()
}

/// An exec of `binary delete pod <label>` by the `coding` group, session `s1`, launched by
/// `launcher`, with its id as fingerprint ([`op_id`]).
pub fn operation(binary: &str, label: &str, launcher: &str) -> pb::Operation {
    pb::Operation {
        agent_group: "coding".into(),
        session: "s1".into(),
        cgroup: "/agents/coding/s1".into(),
        cgroup_id: 4242,
        launching_user: launcher.into(),
        uid: 1000,
        gid: 1000,
        pid: 77,
        tgid: 77,
        comm: binary.rsplit('/').next().unwrap_or(binary).into(),
        binary: binary.into(),
        device: "8:1".into(),
        inode: 4242,
        argv: vec![binary.into(), "delete".into(), "pod".into(), label.into()],
        fingerprint: op_id(label),
        ..Default::default()
    }
}

/// A refused `approve` attempt of `rule` as the daemon uploads it ([`operation`]).
pub fn refused(
    sequence: u64,
    rule: &str,
    binary: &str,
    label: &str,
    launcher: &str,
) -> pb::EventRecord {
    let mut e = pb::EventRecord {
        sequence,
        time: Some(SystemTime::now().into()),
        kind: pb::OperationKind::Exec.into(),
        operation: Some(operation(binary, label, launcher)),
        rule: rule.into(),
        ..Default::default()
    };
    countersign_api::verdict::Judged {
        action: countersign_api::verdict::Action::Approve,
        outcome: countersign_api::verdict::Outcome::Refused,
        mode: countersign_api::verdict::Mode::Lsm,
    }
    .stamp(&mut e);
    e
}

/// Uploads one refused attempt and returns the id of the request it opened or joined,
/// read from the host's decision stream.
pub async fn raise(
    server: &TestServer,
    sequence: u64,
    rule: &str,
    binary: &str,
    label: &str,
    launcher: &str,
) -> String {
    let mut agent = server.agent().await;
    let ack = agent
        .upload_events(pb::UploadEventsRequest {
            events: vec![refused(sequence, rule, binary, label, launcher)],
        })
        .await
        .expect("upload")
        .into_inner();
    assert!(ack.acked_sequence >= sequence, "acked {ack:?}");
    pending_id(server, &op_id(label)).await
}

/// The id of the pending request with `fingerprint` (as alice, an sre approver, sees them;
/// falls back to carol for dba-only rules).
pub async fn pending_id(server: &TestServer, fingerprint: &str) -> String {
    for who in ["alice", "bob", "carol"] {
        let list = server
            .approvals(who)
            .await
            .list_pending(pb::ListPendingRequest::default())
            .await
            .expect("list pending")
            .into_inner();
        if let Some(r) = list
            .requests
            .iter()
            .find(|r| r.operation.as_ref().map(|o| o.fingerprint.as_str()) == Some(fingerprint))
        {
            return r.request_id.clone();
        }
    }
    panic!("no pending request for {fingerprint}")
}

/// Approve-once decision.
pub fn approve_once(id: &str) -> pb::DecideRequest {
    pb::DecideRequest {
        request_id: id.into(),
        verdict: Some(pb::decide_request::Verdict::ApproveOnce(pb::ApproveOnce {})),
    }
}

/// Approve-for decision.
pub fn approve_for(id: &str, duration: Duration, uses: u32) -> pb::DecideRequest {
    pb::DecideRequest {
        request_id: id.into(),
        verdict: Some(pb::decide_request::Verdict::ApproveForDuration(
            pb::ApproveForDuration {
                duration: Some(duration.try_into().expect("duration")),
                uses,
            },
        )),
    }
}

/// Deny decision.
pub fn deny(id: &str, reason: &str) -> pb::DecideRequest {
    pb::DecideRequest {
        request_id: id.into(),
        verdict: Some(pb::decide_request::Verdict::Deny(pb::Deny {
            reason: reason.into(),
        })),
    }
}

/// Reads decision events from a fresh stream (from `cursor`) until `pred` holds for one,
/// or panics after 10 s.
pub async fn wait_event(
    server: &TestServer,
    cursor: &str,
    pred: impl Fn(&pb::DecisionEvent) -> bool,
) -> pb::DecisionEvent {
    let mut stream = server
        .agent()
        .await
        .decisions(pb::DecisionsRequest {
            cursor: cursor.into(),
        })
        .await
        .expect("decisions stream")
        .into_inner();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = stream.message().await.expect("stream item") {
            if pred(&event) {
                return event;
            }
        }
        panic!("stream ended")
    })
    .await;
    found.expect("decision event within 10 s")
}

/// The bytes of an export, chunk after chunk.
pub async fn collect(response: tonic::Response<tonic::Streaming<pb::ExportChunk>>) -> Vec<u8> {
    let mut stream = response.into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.message().await.expect("chunk") {
        out.extend_from_slice(&chunk.data);
    }
    out
}

/// The whole audit trail as JSON Lines, exported by the auditor dave.
pub async fn export_audit(server: &TestServer) -> String {
    let response = server
        .audit("dave")
        .await
        .export(pb::ExportRequest {
            filter: None,
            format: pb::ExportFormat::Jsonl.into(),
        })
        .await
        .expect("export");
    String::from_utf8(collect(response).await).expect("utf-8")
}

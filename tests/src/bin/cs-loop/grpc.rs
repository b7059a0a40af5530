//! gRPC clients of the benchmarks: one mutual-TLS channel per identity, made from the
//! certificates `countersign certs` wrote, and the tokio runtime that drives them.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use countersign_api::pb::{
    agent_service_client::AgentServiceClient, approval_service_client::ApprovalServiceClient,
    audit_service_client::AuditServiceClient, policy_service_client::PolicyServiceClient,
};
use countersign_api::tls::{self, TlsFiles};
use tonic::transport::{Channel, Endpoint};

/// Upload batches of realistic events are a few hundred kilobytes; allow plenty.
const MAX_MESSAGE: usize = 64 << 20;

/// The certificates of one test CA (`countersign certs init|host|person --dir DIR`).
#[derive(Clone, Debug)]
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn files(&self, stem: &str) -> TlsFiles {
        TlsFiles {
            ca: self.dir.join("ca.pem"),
            cert: self.dir.join(format!("{stem}.pem")),
            key: self.dir.join(format!("{stem}-key.pem")),
        }
    }

    /// A person's certificate (`person-NAME.pem`).
    pub fn person(&self, name: &str) -> TlsFiles {
        self.files(&format!("person-{name}"))
    }

    /// A host daemon's certificate (`host-NAME.pem`).
    pub fn host(&self, name: &str) -> TlsFiles {
        self.files(&format!("host-{name}"))
    }
}

/// Connects to `url` presenting `files` (the handshake happens now, not at the first call,
/// so that no measured call pays for it).
pub async fn connect(url: &str, files: &TlsFiles) -> Result<Channel, String> {
    let tls = tls::client_config(files).map_err(|e| format!("TLS material: {e}"))?;
    Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("server URL {url}: {e}"))?
        .tls_config(tls)
        .map_err(|e| format!("TLS configuration: {e}"))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| format!("connecting to {url} with {}: {e:?}", files.cert.display()))
}

pub fn agent(ch: &Channel) -> AgentServiceClient<Channel> {
    AgentServiceClient::new(ch.clone())
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}

pub fn approval(ch: &Channel) -> ApprovalServiceClient<Channel> {
    ApprovalServiceClient::new(ch.clone())
}

pub fn audit(ch: &Channel) -> AuditServiceClient<Channel> {
    AuditServiceClient::new(ch.clone()).max_decoding_message_size(MAX_MESSAGE)
}

pub fn policy(ch: &Channel) -> PolicyServiceClient<Channel> {
    PolicyServiceClient::new(ch.clone())
}

/// A gRPC error as a sentence naming the call.
pub fn failed(call: &str, status: &tonic::Status) -> String {
    format!("{call}: {:?}: {}", status.code(), status.message())
}

/// A multi-threaded runtime with `workers` threads (the machine has few cores and the server
/// needs them more than the client).
pub fn runtime(workers: usize) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

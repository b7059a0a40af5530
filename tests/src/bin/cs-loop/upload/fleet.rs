//! N synthetic daemons uploading at once, each as the real uplink does: its own mTLS
//! connection with its host certificate, Register, then one UploadEvents call at a time,
//! the next batch after the previous one was acknowledged.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use countersign_api::pb::{
    agent_service_client::AgentServiceClient, EnforcementMode, RegisterRequest, UploadEventsRequest,
};
use tokio::sync::Barrier;
use tonic::transport::Channel;

use super::{
    cpu,
    synth::{self, Log},
};
use crate::grpc::{self, Pki};

/// What one daemon saw.
pub struct Uploaded {
    pub host: String,
    /// The last `acked_sequence` the server returned.
    pub acked: u64,
    /// Batches acknowledged short of their last sequence (the server lost or held back
    /// records): `(last sequence sent, acked)`.
    pub short: Vec<(u64, u64)>,
    /// Round trip of every UploadEvents call.
    pub latencies: Vec<Duration>,
}

/// The whole fleet's upload.
pub struct Run {
    /// From the moment every daemon was registered until the last one's last ack.
    pub elapsed: Duration,
    pub daemons: Vec<Uploaded>,
    /// CPU time the server used meanwhile (`None`: its process was not found).
    pub server_cpu: Option<Duration>,
    /// CPU time this client (the synthetic daemons) used meanwhile.
    pub client_cpu: Duration,
}

/// What a daemon announces.
pub fn hello() -> RegisterRequest {
    RegisterRequest {
        agent_version: "cs-loop".into(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        mode: EnforcementMode::Fallback as i32,
        agent_groups: vec![synth::GROUP.into()],
        policy_revision: String::new(),
        previous_outage: None,
    }
}

/// Connects and registers every daemon (not timed: a real daemon does it once), then lets
/// them all upload at once and times that (and the CPU time of `server_pid` and ours).
pub async fn upload(
    url: &str,
    pki: &Pki,
    logs: Vec<Log>,
    server_pid: Option<u32>,
) -> Result<Run, String> {
    let mut clients: Vec<AgentServiceClient<Channel>> = Vec::new();
    for log in &logs {
        let ch = grpc::connect(url, &pki.host(&log.host)).await?;
        let mut client = grpc::agent(&ch);
        let resume = client
            .register(hello())
            .await
            .map_err(|s| grpc::failed(&format!("Register as {}", log.host), &s))?
            .into_inner();
        if resume.last_acked_sequence != 0 {
            return Err(format!(
                "{} has acked sequence {} on a fresh store",
                log.host, resume.last_acked_sequence
            ));
        }
        clients.push(client);
    }
    let start = Arc::new(Barrier::new(logs.len() + 1));
    let mut tasks = Vec::new();
    for (log, client) in logs.into_iter().zip(clients) {
        tasks.push(tokio::spawn(daemon(log, client, Arc::clone(&start))));
    }
    let server_before = server_pid.and_then(cpu::process);
    let client_before = cpu::own();
    start.wait().await;
    let began = Instant::now();
    let mut daemons = Vec::new();
    for task in tasks {
        daemons.push(task.await.map_err(|e| format!("upload task: {e}"))??);
    }
    let elapsed = began.elapsed();
    let server_after = server_pid.and_then(cpu::process);
    Ok(Run {
        elapsed,
        daemons,
        server_cpu: server_before
            .zip(server_after)
            .map(|(b, a)| a.saturating_sub(b)),
        client_cpu: cpu::own().saturating_sub(client_before),
    })
}

async fn daemon(
    log: Log,
    mut client: AgentServiceClient<Channel>,
    start: Arc<Barrier>,
) -> Result<Uploaded, String> {
    let mut up = Uploaded {
        host: log.host,
        acked: 0,
        short: Vec::new(),
        latencies: Vec::with_capacity(log.batches.len()),
    };
    start.wait().await;
    for batch in log.batches {
        let last = batch.last().map_or(0, |e| e.sequence);
        let sent = Instant::now();
        let ack = client
            .upload_events(UploadEventsRequest { events: batch })
            .await
            .map_err(|s| grpc::failed(&format!("UploadEvents as {}", up.host), &s))?
            .into_inner();
        up.latencies.push(sent.elapsed());
        up.acked = ack.acked_sequence;
        if ack.acked_sequence != last {
            up.short.push((last, ack.acked_sequence));
        }
    }
    Ok(up)
}

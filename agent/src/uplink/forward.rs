//! Ask-ahead requests from the agent socket on their way to the control plane
//! (`ForwardRequest`): queued in memory and sent as soon as (and whenever) the link is up.

use std::{collections::VecDeque, sync::Mutex, time::Duration};

use countersign_api::pb::{self, agent_service_client::AgentServiceClient};
use tokio::sync::Notify;
use tonic::transport::Channel;

use super::{
    convert,
    error::{retryable, LinkError},
    Link,
};
use crate::session::SessionKey;

/// Most asks waiting for the link (the oldest is dropped, and its session told, beyond).
const MAX_QUEUED: usize = 1024;
/// Most asks one session may have waiting (one session cannot crowd out the others).
pub const MAX_PER_SESSION: usize = 32;
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// One ask.
#[derive(Clone, Debug)]
pub struct Ask {
    pub key: SessionKey,
    /// 16 hex digits.
    pub fingerprint: String,
    pub request: pb::ForwardRequestRequest,
}

/// The queue.
#[derive(Default)]
pub struct Forwarder {
    queue: Mutex<VecDeque<Ask>>,
    ready: Notify,
}

impl Forwarder {
    /// Queues an ask (replacing a queued one for the same operation of the same session).
    /// Returns an ask pushed out by the limit, if any; Err when the session has too many
    /// asks waiting already.
    pub fn submit(&self, ask: Ask) -> Result<Option<Ask>, String> {
        let dropped = {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.retain(|a| !(a.key == ask.key && a.fingerprint == ask.fingerprint));
            if q.iter().filter(|a| a.key == ask.key).count() >= MAX_PER_SESSION {
                return Err(format!(
                    "{MAX_PER_SESSION} requests of this session already wait for the control plane"
                ));
            }
            let dropped = (q.len() >= MAX_QUEUED).then(|| q.pop_front()).flatten();
            q.push_back(ask);
            dropped
        };
        self.ready.notify_one();
        Ok(dropped)
    }

    /// Number of asks waiting.
    pub fn len(&self) -> usize {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The oldest ask, waiting for one.
    async fn front(&self) -> Ask {
        loop {
            let notified = self.ready.notified();
            if let Some(a) = self
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .front()
                .cloned()
            {
                return a;
            }
            notified.await;
        }
    }

    /// Removes `ask` once it was sent (unless a newer one replaced it meanwhile).
    fn done(&self, ask: &Ask) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = q.iter().position(|a| {
            a.key == ask.key && a.fingerprint == ask.fingerprint && a.request == ask.request
        }) {
            q.remove(i);
        }
    }
}

/// Sends queued asks while the link is up; returns (and keeps the ask queued) when the link
/// fails.
pub async fn run(link: &Link, mut client: AgentServiceClient<Channel>) -> Result<(), LinkError> {
    loop {
        let ask = link.forwarder.front().await;
        let call = client.forward_request(ask.request.clone());
        let result = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| LinkError::Timeout("ForwardRequest"))?;
        match result {
            Ok(resp) => {
                let resp = resp.into_inner();
                link.forwarder.done(&ask);
                let expires = resp.expires_at.as_ref().and_then(convert::system_time);
                tracing::info!(request_id = %resp.request_id, session = %ask.key, fingerprint = %ask.fingerprint, "ask-ahead request forwarded");
                link.table
                    .opened(&ask.key, &ask.fingerprint, &resp.request_id, None, expires);
            }
            Err(status) if retryable(status.code()) => {
                return Err(LinkError::rpc("ForwardRequest", status));
            }
            Err(status) => {
                link.forwarder.done(&ask);
                tracing::warn!(session = %ask.key, fingerprint = %ask.fingerprint, code = ?status.code(), error = status.message(), "the control plane refused an ask-ahead request");
                let message = format!(
                    "the control plane refused the request: {}",
                    status.message()
                );
                link.table.update(&ask.key, &ask.fingerprint, |e| {
                    e.error = Some(message);
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(session: &str, fp: &str, reason: &str) -> Ask {
        Ask {
            key: SessionKey::new("g", session),
            fingerprint: fp.into(),
            request: pb::ForwardRequestRequest {
                reason: reason.into(),
                ..Default::default()
            },
        }
    }

    #[tokio::test]
    async fn asks_queue_and_replace() {
        let f = Forwarder::default();
        assert_eq!(
            f.submit(ask("s1", "a", "first")).map(|d| d.is_none()),
            Ok(true)
        );
        assert_eq!(
            f.submit(ask("s2", "a", "other session"))
                .map(|d| d.is_none()),
            Ok(true)
        );
        assert_eq!(
            f.submit(ask("s1", "a", "second")).map(|d| d.is_none()),
            Ok(true)
        );
        assert_eq!(f.len(), 2);
        let front = f.front().await;
        assert_eq!(front.request.reason, "other session");
        f.done(&front);
        let next = f.front().await;
        assert_eq!(next.request.reason, "second");
        f.done(&next);
        assert!(f.is_empty());
    }

    #[test]
    fn the_queue_is_bounded() {
        let f = Forwarder::default();
        for i in 0..MAX_QUEUED {
            let session = format!("s{}", i / MAX_PER_SESSION);
            let dropped = f.submit(ask(&session, &i.to_string(), "")).expect("room");
            assert!(dropped.is_none());
        }
        let dropped = f
            .submit(ask("new", "new", ""))
            .expect("room for a new session");
        assert_eq!(dropped.expect("oldest dropped").fingerprint, "0");
        assert_eq!(f.len(), MAX_QUEUED);
    }

    #[test]
    fn one_session_cannot_fill_the_queue() {
        let f = Forwarder::default();
        for i in 0..MAX_PER_SESSION {
            assert!(f.submit(ask("s", &i.to_string(), "")).is_ok());
        }
        assert!(f.submit(ask("s", "one more", "")).is_err());
        // Replacing a queued ask of the session is still fine, and others are not affected.
        assert!(f.submit(ask("s", "0", "new reason")).is_ok());
        assert!(f.submit(ask("t", "x", "")).is_ok());
    }
}

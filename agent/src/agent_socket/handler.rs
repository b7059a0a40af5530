//! Answers on the agent socket. Every answer is about the caller's own session only; the
//! session comes from the caller's cgroup, never from the request.

use std::sync::Arc;

use agent_common::Action;

use super::{
    host::Host,
    protocol::{AgentRequest, AgentResponse, RequestView},
    view,
};
use crate::session::{locate, SessionKey};
use crate::{
    approvals::{Refusals, RequestTable},
    uplink::Link,
};

/// The message for callers outside every agent session.
pub const NOT_IN_SESSION: &str = "not inside an agent session";

/// Longest request line.
pub const MAX_LINE: usize = 64 * 1024;

/// The agent socket's state.
pub struct AgentApi {
    pub host: Arc<dyn Host>,
    pub table: Arc<RequestTable>,
    pub refusals: Arc<Refusals>,
    /// Where asked-for operations are remembered for the grant orders that name them.
    pub bindings: Arc<crate::approvals::Bindings>,
    /// None when the daemon runs without a control plane.
    pub link: Option<Arc<Link>>,
}

/// Who is calling, as found at connection time.
#[derive(Clone, Debug)]
pub struct Caller {
    pub pid: u32,
    pub session: Result<SessionKey, String>,
}

impl AgentApi {
    /// The caller's session, from its pid's cgroup.
    pub fn caller(&self, pid: Option<i32>) -> Caller {
        let Some(pid) = pid.and_then(|p| u32::try_from(p).ok()).filter(|p| *p > 0) else {
            return Caller {
                pid: 0,
                session: Err(format!("{NOT_IN_SESSION} (the caller's pid is unknown)")),
            };
        };
        let session = match self.host.cgroup_of(pid) {
            Ok(path) => locate(&self.host.groups(), &path).ok_or_else(|| NOT_IN_SESSION.to_owned()),
            Err(e) => Err(format!(
                "{NOT_IN_SESSION} (cannot read the caller's cgroup: {e})"
            )),
        };
        Caller { pid, session }
    }

    /// Answers one request line.
    pub async fn handle_line(&self, caller: &Caller, line: &[u8]) -> AgentResponse {
        let req = match serde_json::from_slice::<AgentRequest>(line) {
            Ok(r) => r,
            Err(e) => return error(format!("bad request: {e}")),
        };
        let key = match &caller.session {
            Ok(k) => k,
            Err(message) => return error(message.clone()),
        };
        self.handle(caller.pid, key, req).await
    }

    async fn handle(&self, pid: u32, key: &SessionKey, req: AgentRequest) -> AgentResponse {
        match req {
            AgentRequest::Whoami => AgentResponse::Whoami {
                agent_group: key.group.clone(),
                session: key.session.clone(),
                connected: self.link.as_ref().is_some_and(|l| l.connected()),
            },
            AgentRequest::Why { pid } => self.why(key, pid),
            AgentRequest::Pending => self.pending(key),
            AgentRequest::Request {
                exec,
                connect,
                reason,
            } => self
                .ask(pid, key, exec, connect, reason)
                .await
                .unwrap_or_else(error),
            AgentRequest::Wait {
                fingerprint,
                timeout_ms,
            } => self
                .wait(key, &fingerprint, timeout_ms)
                .await
                .unwrap_or_else(error),
        }
    }

    fn why(&self, key: &SessionKey, pid: Option<u32>) -> AgentResponse {
        let refusal = self.refusals.latest(key, pid).map(|r| {
            let request = self
                .table
                .get(key, &r.fingerprint)
                .map(|e| self.request_view(key, &e))
                .or_else(|| {
                    (r.action == Action::Approve && self.link.is_some())
                        .then(|| view::unseen_request(&r))
                });
            view::refusal(r, request)
        });
        AgentResponse::Refusal { refusal }
    }

    /// A table entry as the agent sees it, named from the refusal when the decision stream
    /// did not say what the operation was.
    fn request_view(&self, key: &SessionKey, e: &crate::approvals::Entry) -> RequestView {
        let mut v = view::request(e);
        if v.operation.is_empty() {
            v.operation = self
                .refusals
                .operation(key, &e.fingerprint)
                .unwrap_or_default();
        }
        v
    }

    fn pending(&self, key: &SessionKey) -> AgentResponse {
        let mut requests: Vec<_> = self
            .table
            .session(key)
            .iter()
            .map(|e| self.request_view(key, e))
            .collect();
        if self.link.is_some() {
            // Refusals the control plane has not reported back yet are requests to be.
            for r in self.refusals.approvable(key) {
                if !requests.iter().any(|v| v.fingerprint == r.fingerprint) {
                    requests.push(view::unseen_request(&r));
                }
            }
        }
        AgentResponse::Requests { requests }
    }
}

/// An error response.
pub fn error(message: impl Into<String>) -> AgentResponse {
    AgentResponse::Error {
        message: message.into(),
    }
}

//! Per-session kernel counters on their way to the control plane (`ReportSessions`): every
//! [`PERIOD`], the sessions whose counts changed since the server last took them. The server
//! audits every increase of the events the kernel could not send, so a flood that crowded
//! events out of the ring buffer still leaves its count in the trail.

use std::{collections::HashMap, sync::Arc, time::Duration};

use countersign_api::pb::{self, agent_service_client::AgentServiceClient};
use tonic::transport::Channel;

use super::{error::LinkError, Enforcer};

/// How often the counters are read.
pub const PERIOD: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Names remembered for sessions whose cgroup may go away before a report.
const MAX_NAMES: usize = agent_common::session::MAX_SESSIONS as usize;

/// Reports changed counters while the link is up; returns when a call fails.
pub async fn run(
    enforcer: &Arc<dyn Enforcer>,
    mut client: AgentServiceClient<Channel>,
) -> Result<(), LinkError> {
    // What the server holds (a new connection sends everything once; the server diffs).
    let mut reported: HashMap<u64, pb::SessionCounters> = HashMap::new();
    let mut names = Names::default();
    loop {
        let e = enforcer.clone();
        let counts = tokio::task::spawn_blocking(move || e.session_counters())
            .await
            .map_err(|e| LinkError::Io(e.to_string()))?;
        let changed: Vec<pb::SessionCounters> = counts
            .into_iter()
            .map(|s| names.complete(s))
            .filter(|s| reported.get(&s.cgroup_id) != Some(s))
            .collect();
        if !changed.is_empty() {
            let call = client.report_sessions(pb::ReportSessionsRequest {
                sessions: changed.clone(),
            });
            match tokio::time::timeout(CALL_TIMEOUT, call)
                .await
                .map_err(|_| LinkError::Timeout("ReportSessions"))?
            {
                Ok(_) => {}
                Err(s) if s.code() == tonic::Code::Unimplemented => {
                    // A server older than this daemon: the rest of the link works without.
                    tracing::warn!("the control plane does not take session counters (an older server); they stay in `status`");
                    return std::future::pending().await;
                }
                Err(s) => return Err(LinkError::rpc("ReportSessions", s)),
            }
            tracing::debug!(sessions = changed.len(), "session counters reported");
            for s in changed {
                reported.insert(s.cgroup_id, s);
            }
        }
        tokio::time::sleep(PERIOD).await;
    }
}

/// The group and session of each cgroup id seen, so that a session whose cgroup is removed
/// keeps its name in later reports.
#[derive(Default)]
struct Names {
    by_id: HashMap<u64, (String, String)>,
}

impl Names {
    /// `s` with its names: remembered when the daemon could name it, filled in when it could
    /// not (the cgroup is gone), or marked unknown.
    fn complete(&mut self, mut s: pb::SessionCounters) -> pb::SessionCounters {
        if !s.agent_group.is_empty() {
            if self.by_id.len() >= MAX_NAMES {
                self.by_id.clear();
            }
            self.by_id
                .insert(s.cgroup_id, (s.agent_group.clone(), s.session.clone()));
        } else if let Some((group, session)) = self.by_id.get(&s.cgroup_id) {
            s.agent_group = group.clone();
            s.session = session.clone();
        } else {
            s.agent_group = UNKNOWN_GROUP.to_owned();
            s.session = format!("cgroup-{}", s.cgroup_id);
        }
        s
    }
}

/// Group name reported for a session whose cgroup was gone before the daemon could name it.
pub const UNKNOWN_GROUP: &str = "(gone)";

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(group: &str, session: &str, id: u64) -> pb::SessionCounters {
        pb::SessionCounters {
            agent_group: group.into(),
            session: session.into(),
            cgroup_id: id,
            events_lost: 3,
            ..Default::default()
        }
    }

    #[test]
    fn a_session_keeps_its_name_after_its_cgroup_is_gone() {
        let mut names = Names::default();
        assert_eq!(
            names.complete(counters("ai", "s1", 7)),
            counters("ai", "s1", 7)
        );
        assert_eq!(names.complete(counters("", "", 7)), counters("ai", "s1", 7));
        assert_eq!(
            names.complete(counters("", "", 8)),
            counters("(gone)", "cgroup-8", 8)
        );
    }
}

//! Per-session kernel counters, named by agent group and session: what `status` shows and
//! what the uplink reports to the control plane (docs/architecture.md, "Evidence under a
//! flood").

use agent_common::session::SessionStats;

use super::names::GroupInfo;
use crate::cgroup::Hierarchy;

/// One session's counters and where it sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub cgroup_id: u64,
    /// Its agent group and session (empty: the group's own cgroup); None when the cgroup is
    /// gone or outside every group of the policy in force.
    pub names: Option<(String, String)>,
    /// Its path inside the hierarchy, when it still exists.
    pub cgroup: Option<String>,
    pub stats: SessionStats,
}

/// Names `counts` (session cgroup id, counters) after the agent groups `groups`: a session's
/// cgroup is a group's cgroup or one of its children.
pub fn named(
    hierarchy: &Hierarchy,
    groups: &[GroupInfo],
    counts: Vec<(u64, SessionStats)>,
) -> Vec<Named> {
    counts
        .into_iter()
        .map(|(id, stats)| {
            let found = groups
                .iter()
                .find_map(|g| hierarchy.find(&g.cgroup, id, 1).map(|path| (g, path)));
            let names = found.as_ref().map(|(g, path)| {
                let session = if *path == g.cgroup {
                    String::new()
                } else {
                    path.rsplit('/').next().unwrap_or_default().to_owned()
                };
                (g.name.clone(), session)
            });
            Named {
                cgroup_id: id,
                names,
                cgroup: found.map(|(_, path)| path),
                stats,
            }
        })
        .collect()
}

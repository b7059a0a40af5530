//! Per-session kernel counters, named by agent group and session: what `status` shows and
//! what the uplink reports to the control plane (docs/architecture.md, "Evidence under a
//! flood").

use std::collections::HashMap;

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
/// cgroup is a group's cgroup or one of its children. Each group's cgroup is listed once.
pub fn named(
    hierarchy: &Hierarchy,
    groups: &[GroupInfo],
    counts: Vec<(u64, SessionStats)>,
) -> Vec<Named> {
    if counts.is_empty() {
        return Vec::new();
    }
    let mut known: HashMap<u64, (&GroupInfo, String)> = HashMap::new();
    for g in groups {
        for (id, path) in hierarchy.index(&g.cgroup, 1) {
            known.entry(id).or_insert((g, path));
        }
    }
    counts
        .into_iter()
        .map(|(id, stats)| {
            let found = known.get(&id);
            let names = found.map(|(g, path)| {
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
                cgroup: found.map(|(_, path)| path.clone()),
                stats,
            }
        })
        .collect()
}

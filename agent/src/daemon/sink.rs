//! Where kernel events go: decoded, enriched (cgroup path, session, parent chain) and appended
//! to the event log.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
};

use tokio::sync::Notify;

use super::names::Generations;
use crate::{
    approvals::Refusals,
    cgroup::{parent_chain, Hierarchy},
    events::{
        decode,
        log::EventLog,
        reader::Sink,
        record::{Parent, Record},
    },
};

/// Deepest a session's own sub-cgroups are searched for an event's cgroup path.
const MAX_SEARCH_DEPTH: usize = 6;

pub struct EventSink {
    pub log: EventLog,
    pub generations: Arc<RwLock<Generations>>,
    pub hierarchy: Hierarchy,
    pub logged: Arc<AtomicU64>,
    /// Wall clock minus CLOCK_MONOTONIC, in nanoseconds, at start.
    pub clock_offset: u64,
    /// Where refusals are remembered for the agent socket's `why`.
    pub refusals: Option<Arc<Refusals>>,
    /// Where the exact operations of approval refusals are remembered for grant orders.
    pub bindings: Option<Arc<crate::approvals::Bindings>>,
    /// Told after every synced batch (the uplink uploads at once).
    pub appended: Option<Arc<Notify>>,
    paths: HashMap<u64, String>,
}

impl EventSink {
    pub fn new(
        log: EventLog,
        generations: Arc<RwLock<Generations>>,
        hierarchy: Hierarchy,
        logged: Arc<AtomicU64>,
    ) -> Self {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mono = crate::grants::monotonic_ns().unwrap_or(0);
        Self {
            log,
            generations,
            hierarchy,
            logged,
            clock_offset: wall.saturating_sub(mono),
            refusals: None,
            bindings: None,
            appended: None,
            paths: HashMap::new(),
        }
    }

    fn enrich(&mut self, r: &mut Record, generation: u32, group: u32) {
        let group_cgroup = {
            let g = self.generations.read().unwrap_or_else(|p| p.into_inner());
            g.group_info(generation, group).map(|i| i.cgroup.clone())
        };
        if let Some(group_cgroup) = group_cgroup {
            if let Some(path) = self.cgroup_path(&group_cgroup, r.cgroup_id) {
                r.session = path
                    .strip_prefix(group_cgroup.trim_end_matches('/'))
                    .and_then(|rest| rest.trim_start_matches('/').split('/').next())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string);
                r.cgroup = Some(path);
            }
        }
        if let Some(ppid) = r.ppid {
            r.parents = parent_chain(ppid, 4)
                .into_iter()
                .map(|p| Parent {
                    pid: p.pid,
                    comm: p.comm,
                    exe: p.exe,
                })
                .collect();
        }
    }

    /// Path (inside the hierarchy) of the cgroup with this id, searched below the group's.
    fn cgroup_path(&mut self, group_cgroup: &str, id: u64) -> Option<String> {
        if let Some(p) = self.paths.get(&id) {
            return Some(p.clone());
        }
        let rel = self.hierarchy.find(group_cgroup, id, MAX_SEARCH_DEPTH)?;
        self.paths.insert(id, rel.clone());
        Some(rel)
    }
}

impl Sink for EventSink {
    fn event(&mut self, bytes: &[u8]) {
        let Some(e) = decode::parse(bytes) else {
            tracing::warn!(len = bytes.len(), "malformed event from the kernel");
            return;
        };
        let decoded = {
            let g = self.generations.read().unwrap_or_else(|p| p.into_inner());
            let offset = self.clock_offset;
            decode::record(&e, &*g, |t| t + offset)
        };
        let mut r = match decoded {
            Ok(r) => r,
            Err(unknown) => {
                tracing::error!(
                    ?unknown,
                    "event of another build from the kernel: not logged"
                );
                return;
            }
        };
        self.enrich(&mut r, e.generation, e.group);
        if let Err(err) = self.log.append(&r) {
            tracing::error!(error = %err, path = %self.log.path().display(), "writing the event log");
        }
        self.logged.fetch_add(1, Ordering::Relaxed);
        if let Some(refusals) = &self.refusals {
            refusals.record(&r);
        }
        if let Some(bindings) = &self.bindings {
            if r.action == agent_common::Action::Approve {
                if let Some(b) = agent_common::binding::Binding::of_event(&e) {
                    bindings.remember_as(r.fingerprint.clone(), b);
                }
            }
        }
    }

    fn drained(&mut self) {
        if let Err(err) = self.log.sync() {
            tracing::error!(error = %err, "syncing the event log");
        }
        if let Some(appended) = &self.appended {
            // A stored permit: an upload in progress looks again when it is done.
            appended.notify_one();
        }
    }
}

//! Answers on the admin socket.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use super::Daemon;
use crate::{
    admin_socket::{
        protocol::{
            Counters, GroupStatus, ProgramStatus, Request, Response, SessionEvidence, Status,
        },
        server::{Handler, Peer},
    },
    grants::{self, NewGrant},
    session::registry::SessionRecord,
    session::{scope_cgroup, SessionKey},
};

impl Handler for Daemon {
    fn handle(&self, req: Request, peer: Peer) -> Response {
        let result = match req {
            Request::Status => {
                let mut status = self.status();
                // Outside the map lock: counting the spool reads the event log.
                status.uplink = self.link.as_ref().map(|l| l.status());
                Ok(Response::Status(Box::new(status)))
            }
            Request::Group { agent } => self.group(&agent),
            Request::Reload => self.refuse_agents(peer).and_then(|()| {
                let (generation, warnings) = self.reload()?;
                Ok(Response::Reloaded {
                    generation,
                    warnings,
                })
            }),
            Request::Grant {
                agent,
                session,
                fingerprint,
                uses,
                ttl_ms,
            } => self
                .refuse_agents(peer)
                .and_then(|()| self.grant(&agent, session.as_deref(), &fingerprint, uses, ttl_ms)),
            Request::Session {
                agent,
                session,
                user,
                uid,
                runs_as,
            } => self
                .refuse_agents(peer)
                .and_then(|()| self.opts.root_agents.check(self.attached.mode, runs_as))
                .and_then(|()| self.record_session(&agent, &session, user, uid, runs_as)),
        };
        result.unwrap_or_else(|e| Response::Error {
            message: format!("{e:#}"),
        })
    }
}

impl Daemon {
    /// Nothing that changes enforcement may come from inside an agent group.
    fn refuse_agents(&self, peer: Peer) -> Result<()> {
        if peer.uid != 0 {
            bail!("permission denied: only root may change enforcement");
        }
        let pid = peer
            .pid
            .ok_or_else(|| anyhow!("permission denied: the caller's pid is unknown"))?;
        let cgroup = self
            .hierarchy
            .of_pid(pid as u32)
            .map_err(|e| anyhow!("permission denied: cannot tell the caller's cgroup ({e})"))?;
        let g = self.generations.read().unwrap_or_else(|p| p.into_inner());
        if let Some(names) = g.current() {
            for group in &names.groups {
                let base = group.cgroup.trim_end_matches('/');
                if cgroup == base || cgroup.starts_with(&format!("{base}/")) {
                    bail!(
                        "permission denied: the caller runs inside agent group {}",
                        group.name
                    );
                }
            }
        }
        Ok(())
    }

    fn group_cgroup(&self, agent: &str) -> Result<String> {
        let g = self.generations.read().unwrap_or_else(|p| p.into_inner());
        let names = g
            .current()
            .ok_or_else(|| anyhow!("no policy is installed"))?;
        names
            .groups
            .iter()
            .find(|x| x.name == agent)
            .map(|x| x.cgroup.clone())
            .ok_or_else(|| {
                let known: Vec<&str> = names.groups.iter().map(|x| x.name.as_str()).collect();
                anyhow!(
                    "no agent group {agent:?} in the policy (known: {})",
                    known.join(", ")
                )
            })
    }

    fn group(&self, agent: &str) -> Result<Response> {
        Ok(Response::Group {
            cgroup: self.group_cgroup(agent)?,
            mount: self.hierarchy.root().display().to_string(),
        })
    }

    fn grant(
        &self,
        agent: &str,
        session: Option<&str>,
        fp: &str,
        uses: u32,
        ttl_ms: u64,
    ) -> Result<Response> {
        if let Some(server) = &self.opts.server {
            // Approvers, separation of duties and the audit trail live there: a grant made
            // here would pass by all three.
            bail!(
                "this host takes its grants from the control plane at {}: approve the request \
                 there (countersign approve REQUEST); a local grant would pass by its approvers \
                 and its audit trail",
                server.server
            );
        }
        let binding = self.binding(fp)?;
        let group = self.group_cgroup(agent)?;
        let scope_rel = match session {
            Some(s) => {
                crate::session::launch::validate_session(s)?;
                format!("{}/{s}", group.trim_end_matches('/'))
            }
            None => group,
        };
        let scope = self.hierarchy.open(&scope_rel)?.id;
        let grant_id = grants::new_id()?;
        let g = NewGrant {
            scope,
            binding,
            uses,
            ttl: Duration::from_millis(ttl_ms),
            grant_id,
        };
        let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        grants::install(&mut maps, &g)?;
        tracing::info!(grant_id, agent, scope = %scope_rel, fingerprint = %fp, uses, ttl_ms, "grant installed");
        Ok(Response::Granted { grant_id })
    }

    /// Writes `STATE_DIR/sessions/<group>/<session>.json`, unless a live session of that
    /// name already has its launcher on record (joining it does not make you its launcher).
    fn record_session(
        &self,
        agent: &str,
        session: &str,
        user: String,
        uid: u32,
        runs_as: Option<u32>,
    ) -> Result<Response> {
        crate::session::launch::validate_session(session)?;
        let warnings = self.account_warnings(agent, runs_as);
        let group = self.group_cgroup(agent)?;
        let key = SessionKey::new(agent, session);
        let live = self
            .hierarchy
            .open(&scope_cgroup(&group, session))
            .ok()
            .and_then(|cg| cg.pids().ok())
            .is_some_and(|pids| !pids.is_empty());
        if live {
            if let Some(existing) = self.sessions.read(&key) {
                tracing::info!(session = %key, launcher = %existing.user, joining = %user, "a live session keeps its first launcher");
                return Ok(Response::Session {
                    path: String::new(),
                    recorded: false,
                    warnings,
                });
            }
        }
        self.sessions.forget(&key);
        let record = SessionRecord {
            user,
            uid,
            started: crate::uplink::convert::rfc3339(std::time::SystemTime::now()),
        };
        let path = self
            .sessions
            .record(&key, &record)
            .map_err(|e| anyhow!("recording session {key}: {e}"))?;
        tracing::info!(session = %key, user = %record.user, uid, "session launched");
        Ok(Response::Session {
            path: path.display().to_string(),
            recorded: true,
            warnings,
        })
    }

    /// A warning for a session whose command runs as an account that the group's policy does
    /// not name while it names others: what that account hands to processes outside the
    /// session would not be judged (docs/policy.md, "Accounts").
    fn account_warnings(&self, agent: &str, runs_as: Option<u32>) -> Vec<String> {
        let g = self.generations.read().unwrap_or_else(|p| p.into_inner());
        let Some(group) = g
            .current()
            .and_then(|n| n.groups.iter().find(|x| x.name == agent))
        else {
            return Vec::new();
        };
        match runs_as {
            Some(uid)
                if uid != 0 && !group.accounts.is_empty() && !group.accounts.contains(&uid) =>
            {
                let named: Vec<String> = group.accounts.iter().map(u32::to_string).collect();
                vec![format!(
                    "the command runs as uid {uid}, which agent group {agent} does not name in \
                     its accounts (uids {}): what it hands to processes outside the session \
                     (systemd --user, cron, tmux, ssh) is not judged",
                    named.join(", ")
                )]
            }
            _ => Vec::new(),
        }
    }

    fn status(&self) -> Status {
        // Before the map lock: installs take the policy lock, then the map lock.
        let policy_revision = self.server_revision();
        let maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        let g = self.generations.read().unwrap_or_else(|p| p.into_inner());
        let current = g.current();
        Status {
            pid: std::process::id(),
            mode: self.attached.mode.as_str().into(),
            mode_reason: self.attached.reason.clone(),
            kernel: self.kernel.clone(),
            programs: self
                .attached
                .programs
                .iter()
                .map(|(name, hook, pinned)| ProgramStatus {
                    name: (*name).into(),
                    hook: hook.clone(),
                    pinned: *pinned,
                })
                .collect(),
            groups: current
                .map(|n| {
                    n.groups
                        .iter()
                        .map(|x| GroupStatus {
                            name: x.name.clone(),
                            cgroup: x.cgroup.clone(),
                            cgroup_id: x.id,
                            monitor: x.monitor,
                            accounts: x.accounts.clone(),
                            permit: x.permit.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            policy_files: current.map(|n| n.files.clone()).unwrap_or_default(),
            generation: g.active,
            rules: current.map_or(0, |n| n.rules.len()),
            event_log: self.opts.event_log().display().to_string(),
            counters: Counters::from_kernel(
                &maps.counters(),
                self.events_logged
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
            policy_revision,
            agent_socket: self.opts.agent_socket().display().to_string(),
            uplink: None,
            previous_outage: self.outage.clone(),
            protections: self.protections(current.map(|n| n.groups.as_slice()).unwrap_or_default()),
            sessions: super::evidence::named(
                &self.hierarchy,
                current.map(|n| n.groups.as_slice()).unwrap_or_default(),
                maps.session_evidence(),
            )
            .into_iter()
            .map(|n| SessionEvidence {
                cgroup: n
                    .cgroup
                    .unwrap_or_else(|| format!("(gone; id {})", n.cgroup_id)),
                cgroup_id: n.cgroup_id,
                refused: n.stats.refused,
                granted: n.stats.granted,
                events_lost: n.stats.events_lost,
                events_limited: n.stats.events_limited,
            })
            .collect(),
        }
    }
}

//! The latest refusals of each agent session, kept in memory from the event sink, so that an
//! agent can ask "why was I refused?" without reading the (root-only) event log.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::Instant,
};

use agent_common::Action;

use crate::{agent_socket::protocol::Refusal, events::Record, session::SessionKey};

/// Refusals remembered per session.
pub const PER_SESSION: usize = 64;
/// Sessions remembered (the one refused longest ago goes first).
const MAX_SESSIONS: usize = 4096;

/// A refusal (as the agent socket shows it, its `request` filled in when shown) and when the
/// daemon logged it.
struct Kept {
    seen: Instant,
    refused: Refusal,
}

/// Recent refusals by session.
#[derive(Default)]
pub struct Refusals {
    sessions: Mutex<HashMap<SessionKey, VecDeque<Kept>>>,
}

impl Refusals {
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers `r` when it is a refusal of a process in an agent group.
    pub fn record(&self, r: &Record) {
        if !r.outcome.refused() {
            return;
        }
        let Some(group) = &r.agent else { return };
        let key = SessionKey::new(group, r.session.clone().unwrap_or_default());
        let refused = Refusal {
            time: r.time.clone(),
            pid: r.pid,
            kind: r.kind,
            action: r.action,
            rule: r.rule.clone(),
            fingerprint: r.fingerprint.clone(),
            operation: describe(r),
            request: None,
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if !sessions.contains_key(&key) && sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, q)| q.back().map(|k| k.seen))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                sessions.remove(&k);
            }
        }
        let q = sessions.entry(key).or_default();
        if q.len() >= PER_SESSION {
            q.pop_front();
        }
        q.push_back(Kept {
            seen: Instant::now(),
            refused,
        });
    }

    /// The latest refusal of the session (of process `pid` when given).
    pub fn latest(&self, key: &SessionKey, pid: Option<u32>) -> Option<Refusal> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .get(key)?
            .iter()
            .rev()
            .find(|k| pid.is_none_or(|p| k.refused.pid == p))
            .map(|k| k.refused.clone())
    }

    /// When the session was last refused `fingerprint`.
    pub fn last_seen(&self, key: &SessionKey, fingerprint: &str) -> Option<Instant> {
        self.latest_of(key, fingerprint, |k| k.seen)
    }

    /// What the operation `fingerprint` of the session was, from its latest refusal.
    pub fn operation(&self, key: &SessionKey, fingerprint: &str) -> Option<String> {
        self.latest_of(key, fingerprint, |k| k.refused.operation.clone())
    }

    /// `pick` of the session's latest refusal of `fingerprint`.
    fn latest_of<T>(
        &self,
        key: &SessionKey,
        fingerprint: &str,
        pick: impl FnOnce(&Kept) -> T,
    ) -> Option<T> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .get(key)?
            .iter()
            .rev()
            .find(|k| k.refused.fingerprint == fingerprint)
            .map(pick)
    }

    /// The latest refusal of each operation of the session that asked for approval.
    pub fn approvable(&self, key: &SessionKey) -> Vec<Refusal> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = std::collections::HashSet::new();
        sessions
            .get(key)
            .map(|q| {
                q.iter()
                    .rev()
                    .map(|k| &k.refused)
                    .filter(|r| r.action == Action::Approve && seen.insert(r.fingerprint.clone()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `kubectl delete pod x` for an exec, `10.0.0.1:5432/tcp` for a connect.
pub fn describe(r: &Record) -> String {
    if let Some(d) = &r.destination {
        return connect_text(&d.address, d.port, &d.protocol);
    }
    if r.argv.is_empty() {
        return r.binary.clone().unwrap_or_else(|| r.comm.clone());
    }
    r.argv.join(" ")
}

/// `ADDR:PORT/PROTO`, with brackets around an IPv6 address.
pub fn connect_text(address: &str, port: u16, protocol: &str) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}/{protocol}")
    } else {
        format!("{address}:{port}/{protocol}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::record::Destination;

    fn record(outcome: &str, session: Option<&str>, pid: u32, fp: &str) -> Record {
        Record {
            time: "2026-01-01T00:00:00.000Z".into(),
            kind: agent_common::event::EventKind::Exec,
            action: Action::Approve,
            outcome: agent_common::Outcome::parse(outcome).expect("an outcome"),
            mode: agent_common::Mode::Lsm,
            rule: Some("r".into()),
            rule_number: 1,
            agent: Some("coding".into()),
            session: session.map(str::to_owned),
            cgroup: None,
            cgroup_id: 1,
            pid,
            tgid: pid,
            ppid: None,
            uid: 0,
            gid: 0,
            comm: "kubectl".into(),
            binary: Some("/usr/bin/kubectl".into()),
            dev: None,
            ino: None,
            argv: vec!["kubectl".into(), "delete".into()],
            argv_truncated: false,
            fingerprint: fp.into(),
            grant_id: None,
            destination: None,
            parents: vec![],
            flags: vec![],
            generation: 0,
            tamper: None,
            agent_written: false,
            copy_of: None,
            write_stamp: None,
        }
    }

    #[test]
    fn only_refusals_are_kept_per_session() {
        let r = Refusals::new();
        r.record(&record("allowed", Some("s1"), 1, "a"));
        r.record(&record("refused", Some("s1"), 2, "b"));
        r.record(&record("killed", Some("s2"), 3, "c"));
        r.record(&record("would_refuse", Some("s1"), 4, "d"));
        let s1 = SessionKey::new("coding", "s1");
        let latest = r.latest(&s1, None).expect("a refusal");
        assert_eq!(
            (latest.pid, latest.operation.as_str()),
            (2, "kubectl delete")
        );
        assert!(
            r.latest(&s1, Some(3)).is_none(),
            "pid 3 is another session's"
        );
        assert!(r.latest(&SessionKey::new("coding", ""), None).is_none());
        assert!(r.last_seen(&s1, "b").is_some());
        assert!(r.last_seen(&s1, "c").is_none());
    }

    #[test]
    fn memory_is_bounded() {
        let r = Refusals::new();
        for i in 0..(PER_SESSION as u32 + 5) {
            r.record(&record("refused", Some("s"), i, &format!("{i}")));
        }
        let key = SessionKey::new("coding", "s");
        assert!(r.last_seen(&key, "0").is_none(), "the oldest went first");
        assert_eq!(r.approvable(&key).len(), PER_SESSION);
    }

    #[test]
    fn connects_read_like_addresses() {
        let mut c = record("refused", None, 1, "x");
        c.destination = Some(Destination {
            address: "fd00::1".into(),
            port: 443,
            protocol: "tcp".into(),
            family: "ipv6".into(),
        });
        assert_eq!(describe(&c), "[fd00::1]:443/tcp");
        assert_eq!(connect_text("10.0.0.1", 5432, "tcp"), "10.0.0.1:5432/tcp");
    }
}

//! What the daemon knows about the approval requests of each agent session, from the control
//! plane's decision stream (`opened`, `grant`, `closed`, `revocation`) and from the agent's own
//! asks. Waiters on the agent socket subscribe to [`RequestTable::subscribe`] and re-check
//! the moment anything changes, so an approval reaches a waiting agent without polling.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant, SystemTime},
};

use tokio::sync::watch;

use crate::session::SessionKey;

/// Decided entries are forgotten this long after their decision.
const KEEP_DECIDED: Duration = Duration::from_secs(3600);
/// Most requests remembered per session (oldest decided ones go first).
const MAX_PER_SESSION: usize = 256;
/// Most sessions remembered (the least recently changed goes first).
const MAX_SESSIONS: usize = 4096;

/// Where a request stands, as far as this daemon knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Asked or refused, waiting for people.
    Pending,
    Approved,
    Denied,
    Expired,
    /// Approved, then the grant was revoked.
    Revoked,
}

impl State {
    /// The name the agent socket uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// A grant as the decision stream described it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantInfo {
    /// 16 hex digits.
    pub grant_id: String,
    pub uses: u32,
    pub expires_at: SystemTime,
    pub approvers: Vec<String>,
}

/// One request of a session, keyed by the operation's fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// None until the control plane named it.
    pub request_id: Option<String>,
    pub fingerprint: String,
    pub state: State,
    pub rule: Option<String>,
    /// When the pending request expires.
    pub expires_at: Option<SystemTime>,
    /// Who denied.
    pub decided_by: Option<String>,
    /// The denier's reason.
    pub reason: Option<String>,
    /// The operation for a person, when this daemon saw or was asked for it.
    pub operation: Option<String>,
    pub grant: Option<GrantInfo>,
    /// The control plane refused to take the ask (bad rule, ...): the message.
    pub error: Option<String>,
    /// When this entry last changed (local, monotonic): a decision older than the session's
    /// latest refusal of the operation is about an earlier attempt.
    pub changed: Instant,
}

impl Entry {
    fn new(fingerprint: &str) -> Self {
        Self {
            request_id: None,
            fingerprint: fingerprint.to_owned(),
            state: State::Pending,
            rule: None,
            expires_at: None,
            decided_by: None,
            reason: None,
            operation: None,
            grant: None,
            error: None,
            changed: Instant::now(),
        }
    }

    fn stale(&self, now: Instant, wall: SystemTime) -> bool {
        match self.state {
            State::Pending => self.expires_at.is_some_and(|t| t + KEEP_DECIDED < wall),
            _ => now.duration_since(self.changed) > KEEP_DECIDED,
        }
    }
}

/// The requests of every session.
pub struct RequestTable {
    sessions: Mutex<HashMap<SessionKey, HashMap<String, Entry>>>,
    changed: watch::Sender<u64>,
}

impl Default for RequestTable {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestTable {
    pub fn new() -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            changed: watch::channel(0).0,
        }
    }

    /// A receiver that sees a new value after every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Wakes the waiters without a change (e.g. the link came up: queued asks move).
    pub fn touch(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// The entry of `fingerprint` in `key`'s session.
    pub fn get(&self, key: &SessionKey, fingerprint: &str) -> Option<Entry> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.get(key)?.get(fingerprint).cloned()
    }

    /// Every remembered request of a session, newest change first.
    pub fn session(&self, key: &SessionKey) -> Vec<Entry> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<Entry> = sessions
            .get(key)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by_key(|e| std::cmp::Reverse(e.changed));
        v
    }

    /// Changes (or creates) one entry and wakes the waiters.
    pub fn update(&self, key: &SessionKey, fingerprint: &str, f: impl FnOnce(&mut Entry)) {
        {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            if !sessions.contains_key(key) && sessions.len() >= MAX_SESSIONS {
                evict_oldest_session(&mut sessions);
            }
            let entries = sessions.entry(key.clone()).or_default();
            let now = Instant::now();
            let wall = SystemTime::now();
            entries.retain(|_, e| !e.stale(now, wall));
            if !entries.contains_key(fingerprint) && entries.len() >= MAX_PER_SESSION {
                evict_oldest_entry(entries);
            }
            let entry = entries
                .entry(fingerprint.to_owned())
                .or_insert_with(|| Entry::new(fingerprint));
            f(entry);
            entry.changed = now;
        }
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A request was opened (or an attempt joined it).
    pub fn opened(
        &self,
        key: &SessionKey,
        fingerprint: &str,
        request_id: &str,
        rule: Option<String>,
        expires_at: Option<SystemTime>,
    ) {
        self.update(key, fingerprint, |e| {
            let same = e.request_id.as_deref() == Some(request_id);
            if !same {
                // A new request for the same operation: the old decision no longer applies.
                e.decided_by = None;
                e.reason = None;
                e.grant = None;
            }
            e.request_id = Some(request_id.to_owned());
            e.state = State::Pending;
            e.error = None;
            if rule.is_some() {
                e.rule = rule;
            }
            if expires_at.is_some() {
                e.expires_at = expires_at;
            }
        });
    }

    /// A request ended without a grant.
    pub fn closed(
        &self,
        key: &SessionKey,
        fingerprint: &str,
        request_id: &str,
        state: State,
        decided_by: Option<String>,
        reason: Option<String>,
    ) {
        self.update(key, fingerprint, |e| {
            e.request_id = Some(request_id.to_owned());
            e.state = state;
            e.decided_by = decided_by;
            e.reason = reason;
            e.grant = None;
        });
    }

    /// A request was approved and its grant installed.
    pub fn granted(&self, key: &SessionKey, fingerprint: &str, request_id: &str, g: GrantInfo) {
        self.update(key, fingerprint, |e| {
            e.request_id = Some(request_id.to_owned());
            e.state = State::Approved;
            e.grant = Some(g);
            e.error = None;
        });
    }

    /// A grant was revoked: the entries that hold it say so.
    pub fn revoked(&self, grant_id: &str) {
        let mut touched = false;
        {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            for e in sessions.values_mut().flat_map(|m| m.values_mut()) {
                if e.grant.as_ref().is_some_and(|g| g.grant_id == grant_id) {
                    e.grant = None;
                    e.state = State::Revoked;
                    e.changed = Instant::now();
                    touched = true;
                }
            }
        }
        if touched {
            self.changed.send_modify(|v| *v = v.wrapping_add(1));
        }
    }
}

fn evict_oldest_session(sessions: &mut HashMap<SessionKey, HashMap<String, Entry>>) {
    let oldest = sessions
        .iter()
        .map(|(k, m)| (k, m.values().map(|e| e.changed).max()))
        .min_by_key(|(_, t)| *t)
        .map(|(k, _)| k.clone());
    if let Some(k) = oldest {
        sessions.remove(&k);
    }
}

fn evict_oldest_entry(entries: &mut HashMap<String, Entry>) {
    // Decided entries go before pending ones.
    let oldest = entries
        .iter()
        .min_by_key(|(_, e)| (e.state == State::Pending, e.changed))
        .map(|(k, _)| k.clone());
    if let Some(k) = oldest {
        entries.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        SessionKey::new("coding", "s1")
    }

    #[test]
    fn a_decision_wakes_subscribers() {
        let t = RequestTable::new();
        let mut rx = t.subscribe();
        t.opened(&key(), "00000000000000ab", "r-0000000001", None, None);
        assert!(rx.has_changed().expect("sender alive"));
        rx.mark_unchanged();
        t.closed(
            &key(),
            "00000000000000ab",
            "r-0000000001",
            State::Denied,
            Some("alice".into()),
            Some("no".into()),
        );
        assert!(rx.has_changed().expect("sender alive"));
        let e = t.get(&key(), "00000000000000ab").expect("entry");
        assert_eq!(e.state, State::Denied);
        assert_eq!(e.decided_by.as_deref(), Some("alice"));
        // Other sessions see nothing of it.
        assert!(t
            .get(&SessionKey::new("coding", "s2"), "00000000000000ab")
            .is_none());
        assert!(t.session(&SessionKey::new("coding", "")).is_empty());
    }

    #[test]
    fn a_new_request_forgets_the_old_decision() {
        let t = RequestTable::new();
        t.closed(&key(), "f", "r-1", State::Denied, Some("bob".into()), None);
        t.opened(&key(), "f", "r-2", Some("rule".into()), None);
        let e = t.get(&key(), "f").expect("entry");
        assert_eq!((e.state, e.decided_by), (State::Pending, None));
        assert_eq!(e.request_id.as_deref(), Some("r-2"));
    }

    #[test]
    fn revocations_find_their_grant() {
        let t = RequestTable::new();
        let g = GrantInfo {
            grant_id: "00000000000000aa".into(),
            uses: 1,
            expires_at: SystemTime::now(),
            approvers: vec!["alice".into()],
        };
        t.granted(&key(), "f", "r-1", g);
        t.revoked("00000000000000aa");
        let e = t.get(&key(), "f").expect("entry");
        assert_eq!((e.state, e.grant), (State::Revoked, None));
    }

    #[test]
    fn sessions_are_bounded() {
        let t = RequestTable::new();
        for i in 0..(MAX_PER_SESSION + 10) {
            t.opened(&key(), &format!("{i:016x}"), &format!("r-{i}"), None, None);
        }
        assert_eq!(t.session(&key()).len(), MAX_PER_SESSION);
    }
}

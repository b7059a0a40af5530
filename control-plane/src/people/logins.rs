//! Login audit records, at most one per person per hour per server process.
//!
//! Authentication runs in a synchronous tonic interceptor, which cannot write to the store:
//! it reports each authenticated person here, and a background task of the server drains
//! the channel into `login` audit records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::Credential;

/// How long after a login record the same person is not recorded again.
pub const LOGIN_INTERVAL: Duration = Duration::from_secs(3600);

/// A person authenticated; the server turns it into a `login` audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// The person's name.
    pub person: String,
    /// How they proved it.
    pub credential: Credential,
    /// `cli` or `api` (the client's `countersign-channel` metadata).
    pub channel: String,
}

/// Remembers who was recorded when, and forwards due logins to the audit writer.
#[derive(Clone, Debug)]
pub struct Logins {
    last: Arc<Mutex<HashMap<String, Instant>>>,
    sink: mpsc::UnboundedSender<Login>,
}

impl Logins {
    /// A tracker and the receiving end the audit writer drains.
    pub fn new() -> (Logins, mpsc::UnboundedReceiver<Login>) {
        let (sink, rx) = mpsc::unbounded_channel();
        let logins = Logins {
            last: Arc::new(Mutex::new(HashMap::new())),
            sink,
        };
        (logins, rx)
    }

    /// Records `login` unless the same person was recorded less than an hour ago.
    pub fn seen(&self, login: Login) {
        self.seen_at(login, Instant::now());
    }

    fn seen_at(&self, login: Login, now: Instant) {
        // A poisoned lock only means another thread panicked while holding a plain map.
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let due = last
            .get(&login.person)
            .is_none_or(|t| now.saturating_duration_since(*t) >= LOGIN_INTERVAL);
        if due {
            last.insert(login.person.clone(), now);
            // The receiver is gone only while the server shuts down: nothing left to record.
            let _ = self.sink.send(login);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(name: &str) -> Login {
        Login {
            person: name.to_owned(),
            credential: Credential::Token,
            channel: "cli".to_owned(),
        }
    }

    #[test]
    fn once_per_person_per_hour() {
        let (logins, mut rx) = Logins::new();
        let t0 = Instant::now();
        logins.seen_at(login("alice"), t0);
        logins.seen_at(login("alice"), t0 + Duration::from_secs(10));
        logins.seen_at(login("bob"), t0 + Duration::from_secs(20));
        logins.seen_at(login("alice"), t0 + LOGIN_INTERVAL);
        let got: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|l| l.person)
            .collect();
        assert_eq!(got, ["alice", "bob", "alice"]);
    }
}

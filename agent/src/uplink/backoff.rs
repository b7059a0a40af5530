//! Waiting between reconnection attempts, and logging the link's state once per change
//! rather than once per attempt (a server down for an hour must not fill the journal).

use std::time::Duration;

/// First wait after a failure.
pub const FIRST: Duration = Duration::from_millis(100);
/// Longest wait between attempts.
pub const MAX: Duration = Duration::from_secs(5);

/// Doubling waits from [`FIRST`] to [`MAX`].
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST }
    }
}

impl Backoff {
    /// The wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX);
        wait
    }

    /// After a success: the next failure waits [`FIRST`] again.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

/// What was last logged about the link.
#[derive(Debug, Default, PartialEq, Eq)]
enum Logged {
    #[default]
    Nothing,
    Up,
    /// Down for a reason of this kind.
    Down(String),
}

/// Logs transitions of the link: up, down, and down for another kind of reason.
#[derive(Debug, Default)]
pub struct StateLog {
    last: Logged,
}

impl StateLog {
    /// The link works (registered with the server). Returns whether this was logged.
    pub fn up(&mut self, server: &str, host: &str) -> bool {
        if self.last == Logged::Up {
            return false;
        }
        tracing::info!(server, host, "connected to the control plane");
        self.last = Logged::Up;
        true
    }

    /// The link failed. `kind` groups errors that are the same situation (e.g. "connect"),
    /// `detail` says what happened. Returns whether this was logged.
    pub fn down(&mut self, server: &str, kind: &str, detail: &str) -> bool {
        let state = Logged::Down(kind.to_owned());
        if self.last == state {
            tracing::debug!(server, error = detail, "control plane still unreachable");
            return false;
        }
        let was_up = self.last == Logged::Up;
        self.last = state;
        if was_up {
            tracing::warn!(
                server,
                error = detail,
                "lost the control plane; enforcing on, events spooled, retrying"
            );
        } else {
            tracing::warn!(
                server,
                error = detail,
                "control plane unreachable; enforcing on, events spooled, retrying"
            );
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_reset() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..8).map(|_| b.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_wait(), FIRST);
    }

    #[test]
    fn one_log_line_per_state_change() {
        let mut l = StateLog::default();
        assert!(l.down("s", "connect", "refused"));
        assert!(!l.down("s", "connect", "refused again"));
        assert!(l.down("s", "tls", "bad certificate"));
        assert!(l.up("s", "h"));
        assert!(!l.up("s", "h"));
        assert!(l.down("s", "tls", "bad certificate"));
    }
}

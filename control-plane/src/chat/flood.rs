//! A bound on the audit records of callbacks nobody could be identified for (bad signatures,
//! stale timestamps, replays, bad tokens): anyone on the network can send those, and each
//! would otherwise add a record. At most [`PER_MINUTE`] are recorded per minute; the first
//! record of the next minute says how many were left out (and the log says it at once).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Records of unidentified callbacks per minute.
pub const PER_MINUTE: u32 = 60;
const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Window {
    started: Instant,
    recorded: u32,
    left_out: u32,
}

/// Shared by every endpoint of a server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Flood {
    window: Arc<Mutex<Window>>,
}

impl Default for Flood {
    fn default() -> Flood {
        Flood {
            window: Arc::new(Mutex::new(Window {
                started: Instant::now(),
                recorded: 0,
                left_out: 0,
            })),
        }
    }
}

impl Flood {
    /// `Some(n)`: record this one, noting `n` left out before it; `None`: leave it out.
    pub fn admit(&self, now: Instant) -> Option<u32> {
        let mut w = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.duration_since(w.started) >= WINDOW {
            w.started = now;
            w.recorded = 0;
        }
        if w.recorded < PER_MINUTE {
            w.recorded += 1;
            Some(std::mem::take(&mut w.left_out))
        } else {
            w.left_out += 1;
            if w.left_out == 1 {
                tracing::warn!("more than {PER_MINUTE} unidentified chat callbacks this minute: leaving the rest out of the audit trail (the next record counts them)");
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_counted_not_recorded() {
        let f = Flood::default();
        let t0 = Instant::now();
        for _ in 0..PER_MINUTE {
            assert_eq!(f.admit(t0), Some(0));
        }
        assert_eq!(f.admit(t0), None);
        assert_eq!(f.admit(t0 + Duration::from_secs(59)), None);
        assert_eq!(f.admit(t0 + WINDOW), Some(2));
        assert_eq!(f.admit(t0 + WINDOW), Some(0));
    }
}

//! Reading the `EVENTS` ring buffer with tokio's `AsyncFd`: wait until readable, drain,
//! clear readiness. No polling.

use aya::maps::{MapData, RingBuf};
use tokio::io::{unix::AsyncFd, Interest};

/// Where drained records go.
pub trait Sink {
    /// One raw record.
    fn event(&mut self, bytes: &[u8]);
    /// The ring buffer is empty for now: a good moment to make things durable.
    fn drained(&mut self);
}

/// Feeds `sink` with every record until the task is dropped.
pub async fn run(ring: RingBuf<MapData>, sink: &mut impl Sink) -> std::io::Result<()> {
    // SAFETY: the ring buffer's fd stays open for as long as the AsyncFd owns it, and only
    // this task reads it.
    let mut fd = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    loop {
        let mut guard = fd.readable_mut().await?;
        let ring = guard.get_inner_mut();
        while let Some(item) = ring.next() {
            sink.event(&item);
        }
        guard.clear_ready();
        sink.drained();
    }
}

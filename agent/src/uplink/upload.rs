//! Uploading the event log: from where the server says it stopped, in batches, as soon as the
//! sink appends. The log is the spool: nothing is lost while the server is away, and the
//! acknowledged position survives restarts in `uplink.json`.

use std::{path::Path, sync::Arc, time::Duration};

use countersign_api::pb::{self, agent_service_client::AgentServiceClient};
use tonic::transport::Channel;

use super::{
    convert,
    error::LinkError,
    spool::{self, Position},
    Link,
};
use crate::session::registry::Registry;

/// Most events per `UploadEvents` call.
pub const MAX_BATCH: usize = 1000;
/// About the most log bytes per call (the server's default message limit is 4 MiB).
const MAX_BATCH_BYTES: usize = 2 << 20;
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A look at the log even without a notification (appends by a previous daemon, missed
/// wake-ups): cheap, and bounds any delay.
const IDLE_CHECK: Duration = Duration::from_secs(2);

/// Where to resume after `server_acked` (the server's `last_acked_sequence`), given what was
/// saved locally. Correctness over speed: when the server knows less than we saved, the log is
/// scanned from its start.
pub fn resume(log: &Path, saved: Position, server_acked: u64) -> std::io::Result<Position> {
    let size = spool::len(log)?;
    let base = if saved.offset > size {
        tracing::warn!(log = %log.display(), saved_offset = saved.offset, size, "the event log is shorter than the uploaded part: it was truncated or replaced; counting lines from its start");
        Position::default()
    } else {
        saved
    };
    let from = if server_acked >= base.seq {
        base
    } else {
        tracing::info!(
            server_acked,
            local_acked = base.seq,
            "the server has fewer events than were acknowledged before; uploading again from there"
        );
        Position::default()
    };
    let pos = spool::seek(log, from, server_acked)?;
    if pos.seq < server_acked {
        tracing::error!(log = %log.display(), lines = pos.seq, server_acked, "the server stored more events than the log holds (was it rotated or removed?); the server will take lines past {server_acked} only");
    }
    Ok(pos)
}

/// The position after the server acknowledged `acked` for a batch of `lines` sent from `pos`.
pub fn advance(pos: Position, lines: &[spool::Line], acked: u64) -> Result<Position, LinkError> {
    let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
        return Ok(pos);
    };
    if acked < first.seq {
        return Err(LinkError::NotStored {
            first: first.seq,
            last: last.seq,
            acked,
        });
    }
    let line = lines.iter().rev().find(|l| l.seq <= acked).unwrap_or(last);
    Ok(Position {
        seq: line.seq,
        offset: line.end,
    })
}

/// Reads the next batch and converts it (blocking: file reads).
fn next_batch(
    log: &Path,
    pos: Position,
    sessions: &Registry,
) -> std::io::Result<(Vec<spool::Line>, Vec<pb::EventRecord>)> {
    let lines = spool::read_after(log, pos, MAX_BATCH, MAX_BATCH_BYTES)?;
    let records = lines
        .iter()
        .map(|l| convert::event_record(l.seq, &l.text, |k| sessions.user(k)))
        .collect();
    Ok((lines, records))
}

/// Uploads until the link fails.
pub async fn run(
    link: &Arc<Link>,
    mut client: AgentServiceClient<Channel>,
    mut pos: Position,
) -> Result<(), LinkError> {
    loop {
        let (log, sessions) = (link.event_log.clone(), link.sessions.clone());
        let (lines, records) =
            tokio::task::spawn_blocking(move || next_batch(&log, pos, &sessions))
                .await
                .map_err(|e| LinkError::Io(e.to_string()))??;
        if lines.is_empty() {
            let _ = tokio::time::timeout(IDLE_CHECK, link.appended.notified()).await;
            continue;
        }
        let call = client.upload_events(pb::UploadEventsRequest { events: records });
        let acked = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| LinkError::Timeout("UploadEvents"))?
            .map_err(|s| LinkError::rpc("UploadEvents", s))?
            .into_inner()
            .acked_sequence;
        let next = if lines.last().is_some_and(|l| acked > l.seq) {
            // The server holds more than we sent (another writer for this host?): follow it.
            let (log, target) = (link.event_log.clone(), acked);
            tokio::task::spawn_blocking(move || spool::seek(&log, pos, target))
                .await
                .map_err(|e| LinkError::Io(e.to_string()))??
        } else {
            advance(pos, &lines, acked)?
        };
        tracing::debug!(sent = lines.len(), acked, "events uploaded");
        pos = next;
        link.set_acked(pos).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(name: &str, lines: usize) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("cs-upload-{}-{name}", std::process::id()));
        let text: String = (1..=lines).map(|i| format!("line{i}\n")).collect();
        std::fs::write(&p, text).expect("write");
        p
    }

    /// Offset after line n of [`log`] (lines 1..=9 are 6 bytes).
    fn after(n: u64) -> Position {
        Position {
            seq: n,
            offset: 6 * n,
        }
    }

    #[test]
    fn resume_follows_the_server() {
        let p = log("resume", 9);
        // Same knowledge: stay.
        assert_eq!(resume(&p, after(4), 4).expect("resume"), after(4));
        // The server knows more (uplink.json lost or old): move forward.
        assert_eq!(resume(&p, after(2), 5).expect("resume"), after(5));
        assert_eq!(
            resume(&p, Position::default(), 3).expect("resume"),
            after(3)
        );
        // The server knows less (its store was restored): scan from the start.
        assert_eq!(resume(&p, after(7), 2).expect("resume"), after(2));
        assert_eq!(resume(&p, after(7), 0).expect("resume"), after(0));
        // A truncated log: the saved offset is past its end.
        std::fs::write(&p, "line1\nline2\n").expect("truncate");
        assert_eq!(resume(&p, after(7), 7).expect("resume"), after(2));
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn acks_move_the_position() {
        let p = log("acks", 5);
        let lines = spool::read_after(&p, after(1), 10, 1 << 20).expect("read");
        assert_eq!(advance(after(1), &lines, 5).expect("all"), after(5));
        assert_eq!(advance(after(1), &lines, 3).expect("part"), after(3));
        assert!(matches!(
            advance(after(1), &lines, 1),
            Err(LinkError::NotStored {
                first: 2,
                last: 5,
                acked: 1
            })
        ));
        assert_eq!(advance(after(1), &[], 9).expect("nothing sent"), after(1));
        let _ = std::fs::remove_file(&p);
    }
}

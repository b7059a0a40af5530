//! Appending to the chain: sequence numbers, `prev` links, hashes and periodic checkpoints.
//!
//! [`ChainState`] is the whole state a writer needs (next seq, head hash, records since the
//! last checkpoint, signing key): the server keeps it next to its SQL table and stores the
//! records it returns. [`Chain`] is the same plus an in-memory `Vec` of records.

use std::num::NonZeroU64;

use ed25519_dalek::SigningKey;
use thiserror::Error;

use super::canonical::{record_hash, EncodeError};
use super::checkpoint::Checkpoint;
use super::digest::Digest;
use super::record::{Actor, ActorKind, Kind, Record, Subject};
use super::time::Timestamp;

/// Why an append was refused.
#[derive(Debug, Error)]
pub enum ChainError {
    /// Only the chain writes checkpoints (they must be signed and point at the head).
    #[error("checkpoint records are written by the chain itself, not appended")]
    CheckpointKind,
    /// A checkpoint needs at least one record to vouch for.
    #[error("cannot checkpoint an empty chain")]
    Empty,
    /// The sequence number space is exhausted.
    #[error("audit chain is full (sequence number overflow)")]
    Full,
    /// The record could not be serialized.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// What a caller supplies for a new record; the chain adds seq, prev and hash.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Record kind (anything but [`Kind::Checkpoint`]).
    pub kind: Kind,
    /// Who did it.
    pub actor: Actor,
    /// What it was about.
    pub subject: Subject,
}

/// The writer's state, without the records themselves.
pub struct ChainState {
    key: SigningKey,
    interval: NonZeroU64,
    next_seq: u64,
    head: Digest,
    since_checkpoint: u64,
    server_id: String,
}

impl ChainState {
    /// A new, empty chain. A checkpoint is written after every `interval` records, signed
    /// with `key`; `server_id` is the actor id of checkpoint records.
    pub fn new(key: SigningKey, interval: NonZeroU64, server_id: impl Into<String>) -> Self {
        ChainState {
            key,
            interval,
            next_seq: 0,
            head: Digest::GENESIS,
            since_checkpoint: 0,
            server_id: server_id.into(),
        }
    }

    /// Continues a stored chain after `last`, its last record; `since_checkpoint` is the
    /// number of non-checkpoint records after the last checkpoint (0 if `last` is one).
    pub fn resume(
        key: SigningKey,
        interval: NonZeroU64,
        server_id: impl Into<String>,
        last: &Record,
        since_checkpoint: u64,
    ) -> Self {
        ChainState {
            next_seq: last.seq.saturating_add(1),
            head: last.hash,
            since_checkpoint,
            ..ChainState::new(key, interval, server_id)
        }
    }

    /// Sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Hash of the last record ([`Digest::GENESIS`] when empty).
    pub fn head(&self) -> Digest {
        self.head
    }

    /// Seals `entry` at `time` into the next record. Returns it, followed by a checkpoint
    /// record when this one completes an interval.
    pub fn append(&mut self, entry: Entry, time: Timestamp) -> Result<Vec<Record>, ChainError> {
        if entry.kind == Kind::Checkpoint {
            return Err(ChainError::CheckpointKind);
        }
        let mut out = vec![self.seal(entry.kind, entry.actor, entry.subject, None, time)?];
        self.since_checkpoint += 1;
        if self.since_checkpoint >= self.interval.get() {
            out.push(self.checkpoint(time)?);
        }
        Ok(out)
    }

    /// Writes a checkpoint over the current head now (e.g. right before an export, so that
    /// the export ends with a signed head). Errors on an empty chain.
    pub fn checkpoint(&mut self, time: Timestamp) -> Result<Record, ChainError> {
        let head_seq = self.next_seq.checked_sub(1).ok_or(ChainError::Empty)?;
        let cp = Checkpoint::sign(&self.key, head_seq, self.head);
        let actor = Actor {
            kind: ActorKind::Server,
            id: self.server_id.clone(),
            channel: None,
        };
        let record = self.seal(Kind::Checkpoint, actor, Subject::default(), Some(cp), time)?;
        self.since_checkpoint = 0;
        Ok(record)
    }

    fn seal(
        &mut self,
        kind: Kind,
        actor: Actor,
        subject: Subject,
        checkpoint: Option<Checkpoint>,
        time: Timestamp,
    ) -> Result<Record, ChainError> {
        let following = self.next_seq.checked_add(1).ok_or(ChainError::Full)?;
        let mut record = Record {
            seq: self.next_seq,
            time,
            kind,
            actor,
            subject,
            checkpoint,
            prev: self.head,
            hash: Digest::GENESIS,
        };
        record.hash = record_hash(&record)?;
        self.next_seq = following;
        self.head = record.hash;
        Ok(record)
    }
}

/// An in-memory chain: [`ChainState`] plus the records it produced.
pub struct Chain {
    state: ChainState,
    records: Vec<Record>,
}

impl Chain {
    /// A new, empty chain (see [`ChainState::new`]).
    pub fn new(key: SigningKey, interval: NonZeroU64, server_id: impl Into<String>) -> Self {
        Chain {
            state: ChainState::new(key, interval, server_id),
            records: Vec::new(),
        }
    }

    /// Appends one record (and a checkpoint when one is due); returns the new records.
    pub fn append(&mut self, entry: Entry, time: Timestamp) -> Result<&[Record], ChainError> {
        let start = self.records.len();
        let new = self.state.append(entry, time)?;
        self.records.extend(new);
        Ok(&self.records[start..])
    }

    /// Writes a checkpoint over the current head now.
    pub fn checkpoint(&mut self, time: Timestamp) -> Result<&Record, ChainError> {
        let record = self.state.checkpoint(time)?;
        let index = self.records.len();
        self.records.push(record);
        Ok(&self.records[index])
    }

    /// Every record, in order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The writer state (next seq, head).
    pub fn state(&self) -> &ChainState {
        &self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::jsonl;
    use crate::{verify, Filter};

    fn entry() -> Entry {
        Entry {
            kind: Kind::Login,
            actor: Actor {
                kind: ActorKind::Person,
                id: "alice".into(),
                channel: Some("cli".into()),
            },
            subject: Subject::default(),
        }
    }

    #[test]
    fn resume_continues_the_same_chain() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let every = NonZeroU64::new(3).expect("non-zero");
        let mut first = Chain::new(key.clone(), every, "cs-1");
        assert!(matches!(
            first.checkpoint(Timestamp::now()),
            Err(ChainError::Empty)
        ));
        let mut records = Vec::new();
        for _ in 0..4 {
            records.extend_from_slice(first.append(entry(), Timestamp::now()).expect("append"));
        }
        // A restarted server: state rebuilt from the last stored record.
        let last = records.last().expect("records").clone();
        let mut resumed = ChainState::resume(key.clone(), every, "cs-1", &last, 1);
        for _ in 0..2 {
            records.extend(resumed.append(entry(), Timestamp::now()).expect("append"));
        }
        assert_eq!(records.len(), 8); // 6 entries + checkpoints after the 3rd and 6th
        assert_eq!(records[7].kind, Kind::Checkpoint);
        assert!(matches!(
            resumed.append(
                Entry {
                    kind: Kind::Checkpoint,
                    ..entry()
                },
                Timestamp::now()
            ),
            Err(ChainError::CheckpointKind)
        ));

        let mut out = Vec::new();
        jsonl::write(&records, &Filter::default(), &mut out).expect("export");
        let summary = verify(out.as_slice(), &key.verifying_key()).expect("verifies");
        assert_eq!(
            (summary.last_seq, summary.checkpoints, summary.unsigned_tail),
            (7, 2, 1)
        );
    }
}

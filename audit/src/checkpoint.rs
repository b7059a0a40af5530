//! Signed checkpoints: an Ed25519 signature over the chain head.
//!
//! Ed25519 through `ed25519-dalek` v2 rather than `ring`: both are well maintained, but
//! dalek is pure Rust (no C/assembly build), its keys are plain 32-byte values (a signing
//! key is a 32-byte seed, easy for the server to store and load without PKCS#8 plumbing),
//! it shares `sha2` with the hash chain, and it offers `verify_strict`, which also rejects
//! weak (small-order) public keys and non-canonical signatures. Verifying needs only the
//! 32-byte public key.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::digest::Digest;

/// Domain separation: a checkpoint signature cannot be replayed as any other signature
/// made with the same key (and vice versa).
const CONTEXT: &[u8] = b"countersign-audit-checkpoint-v1\0";

/// The payload of a `checkpoint` record: the chain head it vouches for, signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Sequence number of the last record covered (the record just before the checkpoint).
    pub head_seq: u64,
    /// Hash of that record; through the chain it covers every earlier record too.
    pub head: Digest,
    /// Which key signed ([`key_id`]): lets a verifier holding several keys pick the right one
    /// and report a key mismatch as such rather than as a forgery.
    pub key_id: String,
    /// Ed25519 signature of [`message`]`(head_seq, head)`, 128 hex digits.
    pub signature: String,
}

/// Why a checkpoint does not verify.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CheckpointError {
    /// Signed by another key than the one given.
    #[error("signed by key {found}, expected key {expected}")]
    WrongKey {
        /// Key id in the checkpoint.
        found: String,
        /// Id of the verifying key.
        expected: String,
    },
    /// The signature is not 128 hex digits.
    #[error("signature is not 128 hex digits")]
    MalformedSignature,
    /// The signature does not match the head (forged or altered).
    #[error("signature does not verify (forged or altered checkpoint)")]
    BadSignature,
}

/// Short public identifier of a key: the first 8 bytes of SHA-256(public key), in hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Digest::of(key.as_bytes()).0[..8])
}

/// The exact bytes signed: `CONTEXT || head_seq (u64 big-endian) || head (32 bytes)`.
pub fn message(head_seq: u64, head: &Digest) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTEXT.len() + 8 + 32);
    m.extend_from_slice(CONTEXT);
    m.extend_from_slice(&head_seq.to_be_bytes());
    m.extend_from_slice(&head.0);
    m
}

impl Checkpoint {
    /// Signs the head `(head_seq, head)` with `key`.
    pub fn sign(key: &SigningKey, head_seq: u64, head: Digest) -> Checkpoint {
        let signature = key.sign(&message(head_seq, &head));
        Checkpoint {
            head_seq,
            head,
            key_id: key_id(&key.verifying_key()),
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// Checks the signature with the public key alone.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        let expected = key_id(key);
        if self.key_id != expected {
            return Err(CheckpointError::WrongKey {
                found: self.key_id.clone(),
                expected,
            });
        }
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(&self.signature, &mut bytes)
            .map_err(|_| CheckpointError::MalformedSignature)?;
        let signature = Signature::from_bytes(&bytes);
        key.verify_strict(&message(self.head_seq, &self.head), &signature)
            .map_err(|_| CheckpointError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn sign_then_verify_and_tamper() {
        let k = key(7);
        let cp = Checkpoint::sign(&k, 41, Digest::of(b"head"));
        assert_eq!(cp.verify(&k.verifying_key()), Ok(()));

        let mut moved = cp.clone();
        moved.head_seq = 40;
        assert_eq!(
            moved.verify(&k.verifying_key()),
            Err(CheckpointError::BadSignature)
        );

        let mut other_head = cp.clone();
        other_head.head = Digest::of(b"other");
        assert_eq!(
            other_head.verify(&k.verifying_key()),
            Err(CheckpointError::BadSignature)
        );

        let mut garbage = cp.clone();
        garbage.signature = "zz".into();
        assert_eq!(
            garbage.verify(&k.verifying_key()),
            Err(CheckpointError::MalformedSignature)
        );

        assert!(matches!(
            cp.verify(&key(8).verifying_key()),
            Err(CheckpointError::WrongKey { .. })
        ));
    }
}

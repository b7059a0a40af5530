//! Unit tests of the whole library: parse → validate → match / explain / compile.

mod approvers;
mod compile;
mod example;
mod kernel_twin;
mod matching;
mod parse;
mod validate;
mod validate_rules;

use agent_common::identity::HEAD_LEN;
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use crate::{FileId, Policy, Resolver};

/// Paths and identities of a made-up host: test input for matching and compiling.
#[derive(Default)]
pub struct MapResolver(pub HashMap<PathBuf, FileId>);

impl MapResolver {
    pub fn with(files: &[(&str, u64)]) -> Self {
        Self(
            files
                .iter()
                .map(|(p, ino)| (PathBuf::from(p), id(*ino)))
                .collect(),
        )
    }
}

impl Resolver for MapResolver {
    fn identity(&self, path: &Path) -> Option<FileId> {
        self.0.get(path).copied()
    }

    /// [`elf_head`] of the file's inode; a `#!` script for paths ending in `.sh`.
    fn head(&self, path: &Path) -> Option<[u8; HEAD_LEN]> {
        let id = self.identity(path)?;
        if path.extension().is_some_and(|e| e == "sh") {
            let mut head = [0u8; HEAD_LEN];
            head[..10].copy_from_slice(b"#!/bin/sh\n");
            return Some(head);
        }
        Some(elf_head(id.ino))
    }
}

/// A 64-bit ELF head whose entry point is `ino`, with padding that normalising clears.
pub fn elf_head(ino: u64) -> [u8; HEAD_LEN] {
    let mut head = [0u8; HEAD_LEN];
    head[..5].copy_from_slice(b"\x7fELF\x02");
    head[9] = 0x5a;
    head[24..32].copy_from_slice(&ino.to_le_bytes());
    head
}

/// A file identity on device 8:1.
pub fn id(ino: u64) -> FileId {
    FileId {
        dev: (8 << 20) | 1,
        ino,
    }
}

pub const HEADER: &str = "version: 1\nagents:\n  - name: ai\n    cgroup: /agents/ai\n";

/// A valid policy from text (panics with the errors otherwise).
pub fn policy(text: &str) -> Policy {
    Policy::from_str("p.yaml", text).unwrap_or_else(|e| panic!("policy should be valid:\n{e}"))
}

/// The error lines for an invalid policy.
pub fn errors(text: &str) -> Vec<String> {
    match Policy::from_str("p.yaml", text) {
        Ok(_) => panic!("policy should be invalid:\n{text}"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

/// The single error of an invalid policy.
pub fn error(text: &str) -> String {
    let e = errors(text);
    assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
    e.into_iter().next().expect("one error")
}

/// HEADER plus rules.
pub fn with_rules(rules: &str) -> String {
    format!("{HEADER}rules:\n{rules}")
}

//! Exec rules → `BINARIES` and `EXEC_RULES` entries.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
};

use agent_common::{
    hash,
    identity::{self, ContentKey},
    policy::{
        BinaryKey, ExecRules, ExecRulesKey, ExecSlot, ANY_BINARY, EXEC_SLOTS, MAX_ARG_PATTERNS,
    },
};

use super::{describe, group_ids};
use crate::{
    error::{PolicyError, Subject},
    model::{ArgPattern, Match, Policy, Rule, RulePath},
    resolve::{FileId, Resolver},
};

/// The exec part of a compiled policy.
pub(super) struct Exec {
    pub binaries: Vec<(BinaryKey, u32)>,
    pub contents: Vec<(ContentKey, u32)>,
    /// First path naming each binary, by id - 1.
    pub paths: Vec<PathBuf>,
    pub rules: Vec<(ExecRulesKey, ExecRules)>,
}

/// Binary ids: one per distinct file identity, from 1, in order of first mention.
struct Binaries<'a> {
    generation: u32,
    resolver: &'a dyn Resolver,
    ids: HashMap<FileId, u32>,
    keys: Vec<(BinaryKey, u32)>,
    contents: Vec<(ContentKey, u32)>,
    paths: Vec<PathBuf>,
}

impl Binaries<'_> {
    /// Ids of the files `paths` name here (each once). Missing files are warnings; None when
    /// paths were given and none exists (the rule cannot match on this host).
    fn resolve(
        &mut self,
        rule: &Rule,
        paths: &[RulePath],
        what: &str,
        warnings: &mut Vec<PolicyError>,
    ) -> Option<Vec<u32>> {
        let mut found = Vec::new();
        for p in paths {
            let Some(f) = self.resolver.identity(&p.path) else {
                let msg = format!(
                    "{what} {} does not exist on this host: ignored here",
                    p.path.display()
                );
                warnings.push(error(rule, p.line, msg));
                continue;
            };
            let next = self.paths.len() as u32 + 1;
            let id = *self.ids.entry(f).or_insert(next);
            if id == next {
                self.paths.push(p.path.clone());
                let key = BinaryKey {
                    generation: self.generation,
                    _pad: 0,
                    dev: f.dev,
                    ino: f.ino,
                };
                self.keys.push((key, id));
                self.content(&p.path, id);
            }
            if !found.contains(&id) {
                found.push(id);
            }
        }
        if !paths.is_empty() && found.is_empty() {
            let msg =
                format!("no {what} of this rule exists on this host: the rule never matches here");
            warnings.push(error(rule, rule.location.line, msg));
            return None;
        }
        Some(found)
    }
}

impl Binaries<'_> {
    /// Files binary `id` under its content too, when it is an ELF executable whose head no
    /// earlier binary has (two identical files are one program: the first named wins).
    fn content(&mut self, path: &std::path::Path, id: u32) {
        let Some(mut head) = self.resolver.head(path) else {
            return;
        };
        if !identity::is_elf64(&head) {
            return;
        }
        identity::normalise(&mut head);
        if self.contents.iter().any(|(k, _)| k.head == head) {
            return;
        }
        let key = ContentKey {
            generation: self.generation,
            _pad: 0,
            head,
        };
        self.contents.push((key, id));
    }
}

/// The slots filed under one binary id, and how many each rule contributed.
#[derive(Default)]
struct List {
    slots: Vec<ExecSlot>,
    counts: Vec<(usize, usize)>,
}

pub(super) fn compile(
    policy: &Policy,
    generation: u32,
    resolver: &dyn Resolver,
    warnings: &mut Vec<PolicyError>,
    errors: &mut Vec<PolicyError>,
) -> Exec {
    let mut bins = Binaries {
        generation,
        resolver,
        ids: HashMap::new(),
        keys: vec![],
        contents: vec![],
        paths: vec![],
    };
    let mut lists: BTreeMap<u32, List> = BTreeMap::new();
    for (index, rule) in policy.rules.iter().enumerate() {
        let Match::Exec(m) = &rule.matcher else {
            continue;
        };
        let Some(binaries) = bins.resolve(rule, &m.binaries, "binary", warnings) else {
            continue;
        };
        let Some(parents) = bins.resolve(rule, &m.parents, "parent", warnings) else {
            continue;
        };
        let Some(combinations) = expand(&m.args) else {
            let msg = "an argument literal has no kernel hash (too long or NUL)".to_owned();
            errors.push(error(rule, rule.location.line, msg));
            continue;
        };
        let mut slots = Vec::new();
        for group in group_ids(policy, rule) {
            for &parent in or_any(&parents) {
                for &args in &combinations {
                    slots.push(ExecSlot {
                        args,
                        rule: index as u32 + 1,
                        action: rule.action as u32,
                        parent,
                        group,
                        nargs: m.args.len() as u32,
                        _pad: 0,
                    });
                }
            }
        }
        for &b in or_any(&binaries) {
            let list = lists.entry(b).or_default();
            list.slots.extend_from_slice(&slots);
            list.counts.push((index, slots.len()));
        }
    }
    let mut rules = Vec::new();
    for (binary, List { slots, counts }) in lists {
        if slots.len() > EXEC_SLOTS {
            errors.push(overflow(policy, &bins.paths, binary, slots.len(), &counts));
            continue;
        }
        let mut value = ExecRules {
            count: slots.len() as u32,
            ..ExecRules::default()
        };
        value.slots[..slots.len()].copy_from_slice(&slots);
        rules.push((ExecRulesKey { generation, binary }, value));
    }
    Exec {
        binaries: bins.keys,
        contents: bins.contents,
        paths: bins.paths,
        rules,
    }
}

/// The ids, or [`ANY_BINARY`] alone when the rule names none.
fn or_any(ids: &[u32]) -> &[u32] {
    if ids.is_empty() {
        &[ANY_BINARY]
    } else {
        ids
    }
}

/// Every combination of the alternatives, first position varying slowest; None when a
/// literal has no kernel hash (validation refuses those).
fn expand(patterns: &[ArgPattern]) -> Option<Vec<[u64; MAX_ARG_PATTERNS]>> {
    let mut out = vec![[hash::ANY_ARG; MAX_ARG_PATTERNS]];
    for (i, p) in patterns.iter().enumerate() {
        let ArgPattern::OneOf(literals) = p else {
            continue;
        };
        let hashes: Vec<u64> = literals
            .iter()
            .map(|l| hash::arg(l.as_bytes()))
            .collect::<Option<_>>()?;
        out = out
            .into_iter()
            .flat_map(|base| {
                hashes.iter().map(move |h| {
                    let mut a = base;
                    a[i] = *h;
                    a
                })
            })
            .collect();
    }
    Some(out)
}

fn error(rule: &Rule, line: usize, message: String) -> PolicyError {
    PolicyError::at(
        &rule.location.file,
        line,
        Some(Subject::Rule(rule.id.clone())),
        message,
    )
}

/// Error at the rule that made a binary's list overflow.
fn overflow(
    policy: &Policy,
    paths: &[PathBuf],
    binary: u32,
    total: usize,
    counts: &[(usize, usize)],
) -> PolicyError {
    let rule = super::culprit(policy, counts, EXEC_SLOTS);
    let what = match paths.get((binary as usize).wrapping_sub(1)) {
        Some(p) if binary != ANY_BINARY => format!("binary {}", p.display()),
        _ => "rules without a binary".to_owned(),
    };
    let message = format!(
        "{what} would need {total} kernel slots, at most {EXEC_SLOTS}: rules {}; \
         reduce argument alternatives or split by binary",
        describe(policy, counts)
    );
    error(rule, rule.location.line, message)
}

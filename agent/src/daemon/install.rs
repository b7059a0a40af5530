//! Installing a policy into the kernel maps without a window: the new generation is written
//! completely while the old one is in force, one map update flips `State::active`, and the old
//! generation is cleared after a grace period longer than any program run.

use std::{sync::Arc, time::Duration};

use agent_common::{
    policy::{group_flags, AccountKey, NetKey, WatchKey},
    Mode, MAX_CGROUP_LEVEL, MAX_SESSION_DEPTH,
};
use anyhow::{bail, Context, Result};
use aya::{
    maps::{lpm_trie::Key, HashMap, MapData},
    Pod,
};

use super::names::{GenNames, GroupInfo};
use crate::{cgroup::Hierarchy, maps::Maps};

/// Programs that read the old generation finish within microseconds; this is generous.
const GRACE: Duration = Duration::from_millis(20);

/// What an install did.
pub struct Installed {
    pub generation: u32,
    pub warnings: Vec<String>,
}

/// Compiles a validated `policy` (read from `files`, named in `status`), resolves the agent
/// groups' cgroups (creating them), and installs the result. On any error nothing changes:
/// the policy in force stays in force. `publish` receives the names of the new generation
/// before the kernel starts judging with it, so that no event of it reaches the log (and the
/// control plane) without its group and rule names. Grants bound to a rule number that names
/// another rule in the new policy than in `previous` (the names in force) are removed before
/// the new policy takes over: a grant is earned under one rule, never under its successor.
#[allow(clippy::too_many_arguments)]
pub fn install(
    maps: &mut Maps,
    hierarchy: &Hierarchy,
    policy: &policy::Policy,
    files: Vec<String>,
    mode: Mode,
    previous: Option<Arc<GenNames>>,
    publish: impl FnOnce(u32, &Arc<GenNames>),
) -> Result<Installed> {
    let mut state = maps.read_state();
    let old = state.active & 1;
    let first = state.levels == [0, 0];
    let generation = if first { old } else { old ^ 1 };
    let compiled = policy::compile(
        policy,
        generation,
        &crate::kernel::identity::KernelResolver::new(&mut maps.identify),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;

    let mut groups = Vec::new();
    let mut levels = 0u32;
    for g in &compiled.groups {
        let cg = hierarchy
            .ensure(&g.cgroup)
            .with_context(|| format!("agent group {}: creating its cgroup", g.name))?;
        if cg.level == 0 || cg.level >= MAX_CGROUP_LEVEL {
            bail!(
                "agent group {}: cgroup {} must sit at level 1 to {}",
                g.name,
                g.cgroup,
                MAX_CGROUP_LEVEL - 1
            );
        }
        cg.limit_depth(MAX_SESSION_DEPTH)
            .with_context(|| format!("agent group {}", g.name))?;
        levels |= 1 << cg.level;
        let mut value = g.group;
        value.level = cg.level;
        let accounts = g
            .accounts
            .iter()
            .map(|a| account_uid(a).with_context(|| format!("agent group {}", g.name)))
            .collect::<Result<Vec<u32>>>()?;
        groups.push((
            cg.id,
            value,
            GroupInfo {
                name: g.name.clone(),
                cgroup: g.cgroup.clone(),
                id: cg.id,
                monitor: g.group.flags & group_flags::MONITOR != 0,
                accounts,
                permit: group_flags::PERMITS
                    .iter()
                    .filter(|(_, bit)| g.group.flags & bit != 0)
                    .map(|(name, _)| (*name).to_owned())
                    .collect(),
            },
        ));
    }

    clear_generation(maps, generation);
    for (id, value, info) in &groups {
        maps.watched.insert(
            WatchKey {
                generation,
                _pad: 0,
                cgroup_id: *id,
            },
            value,
            0,
        )?;
        for &uid in &info.accounts {
            maps.accounts
                .insert(AccountKey { generation, uid }, id, 0)?;
        }
    }
    for (k, v) in &compiled.binaries {
        maps.binaries.insert(k, v, 0)?;
    }
    for (k, v) in &compiled.contents {
        maps.contents.insert(k, v, 0)?;
    }
    for (k, v) in &compiled.exec_rules {
        maps.exec_rules.insert(k, v, 0)?;
    }
    for (prefix_len, k, v) in &compiled.net_rules {
        maps.net_rules.insert(&Key::new(*prefix_len, *k), v, 0)?;
    }
    state.levels[generation as usize] = levels;
    state.mode = mode as u32;
    maps.write_state(state)?;
    let names = Arc::new(GenNames {
        rules: compiled.rule_ids.clone(),
        groups: groups.into_iter().map(|(_, _, info)| info).collect(),
        files,
        binaries: compiled
            .binary_paths
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    });
    if let Some(prev) = previous {
        fn rule(names: &GenNames, n: u32) -> Option<&String> {
            names.rules.get((n as usize).wrapping_sub(1))
        }
        let retired = crate::grants::retire_where(maps, |g| {
            g.rule != 0 && rule(&prev, g.rule) != rule(&names, g.rule)
        })?;
        if retired > 0 {
            tracing::warn!(
                retired,
                "grants removed: their rule number names another rule in the new policy"
            );
        }
    }
    publish(generation, &names);
    state.active = generation;
    maps.write_state(state)?;
    if !first {
        std::thread::sleep(GRACE);
        clear_generation(maps, old);
        state.levels[old as usize] = 0;
        maps.write_state(state)?;
    }
    Ok(Installed {
        generation,
        warnings: compiled.warnings.iter().map(ToString::to_string).collect(),
    })
}

/// The uid of a policy account (a user name, or a numeric uid). Root is refused here too: the
/// password database may give another name uid 0.
fn account_uid(account: &str) -> Result<u32> {
    let uid = crate::session::account::Account::resolve(account)
        .map_err(|_| anyhow::anyhow!("account {account}: no such user"))?
        .uid;
    if uid == 0 {
        bail!("account {account} is uid 0: every root process of the host would be judged as an agent");
    }
    Ok(uid)
}

/// Removes every entry of `generation` from the policy maps.
fn clear_generation(maps: &mut Maps, generation: u32) {
    remove_where(&mut maps.watched, |k| k.generation == generation);
    remove_where(&mut maps.accounts, |k| k.generation == generation);
    remove_where(&mut maps.binaries, |k| k.generation == generation);
    remove_where(&mut maps.contents, |k| k.generation == generation);
    remove_where(&mut maps.exec_rules, |k| k.generation == generation);
    let be = generation.to_be_bytes();
    let stale: Vec<Key<NetKey>> = maps
        .net_rules
        .keys()
        .flatten()
        .filter(|k| k.data().generation == be)
        .collect();
    for k in stale {
        let _ = maps.net_rules.remove(&k);
    }
}

/// Removes the keys of a hash map that match `stale` (collected first: deleting while
/// iterating would restart the kernel's iteration).
fn remove_where<K: Pod, V: Pod>(map: &mut HashMap<MapData, K, V>, stale: impl Fn(&K) -> bool) {
    let keys: Vec<K> = map.keys().flatten().filter(|k| stale(k)).collect();
    for k in keys {
        let _ = map.remove(&k);
    }
}

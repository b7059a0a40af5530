//! Installing a policy into the kernel maps without a window: the new generation is written
//! completely while the old one is in force, one map update flips `State::active`, and the old
//! generation is cleared after a grace period longer than any program run.

use std::{path::PathBuf, sync::Arc, time::Duration};

use agent_common::{
    policy::{NetKey, WatchKey},
    Mode, MAX_CGROUP_LEVEL,
};
use anyhow::{bail, Context, Result};
use aya::maps::lpm_trie::Key;

use super::names::{GenNames, GroupInfo};
use crate::{cgroup::Hierarchy, maps::Maps};

/// Programs that read the old generation finish within microseconds; this is generous.
const GRACE: Duration = Duration::from_millis(20);

/// What an install did.
pub struct Installed {
    pub generation: u32,
    pub names: Arc<GenNames>,
    pub warnings: Vec<String>,
}

/// Validates and compiles `files`, resolves the agent groups' cgroups (creating them), and
/// installs the result. On any error nothing changes: the policy in force stays in force.
pub fn install(
    maps: &mut Maps,
    hierarchy: &Hierarchy,
    files: &[PathBuf],
    mode: Mode,
) -> Result<Installed> {
    let policy = policy::Policy::load(files).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut state = maps.read_state();
    let old = state.active & 1;
    let first = state.levels == [0, 0];
    let generation = if first { old } else { old ^ 1 };
    let compiled = policy::compile(&policy, generation, &policy::HostResolver)
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
        levels |= 1 << cg.level;
        let mut value = g.group;
        value.level = cg.level;
        groups.push((
            cg.id,
            value,
            GroupInfo {
                name: g.name.clone(),
                cgroup: g.cgroup.clone(),
                id: cg.id,
                monitor: g.group.flags & agent_common::policy::group_flags::MONITOR != 0,
            },
        ));
    }

    clear_generation(maps, generation);
    for (id, value, _) in &groups {
        maps.watched.insert(
            WatchKey {
                generation,
                _pad: 0,
                cgroup_id: *id,
            },
            value,
            0,
        )?;
    }
    for (k, v) in &compiled.binaries {
        maps.binaries.insert(k, v, 0)?;
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
    state.active = generation;
    maps.write_state(state)?;
    if !first {
        std::thread::sleep(GRACE);
        clear_generation(maps, old);
        state.levels[old as usize] = 0;
        maps.write_state(state)?;
    }
    let names = GenNames {
        rules: compiled.rule_ids.clone(),
        groups: groups.into_iter().map(|(_, _, info)| info).collect(),
        files: files.iter().map(|p| p.display().to_string()).collect(),
    };
    Ok(Installed {
        generation,
        names: Arc::new(names),
        warnings: compiled.warnings.iter().map(ToString::to_string).collect(),
    })
}

/// Removes every entry of `generation` from the policy maps.
fn clear_generation(maps: &mut Maps, generation: u32) {
    let w: Vec<_> = maps
        .watched
        .keys()
        .flatten()
        .filter(|k| k.generation == generation)
        .collect();
    for k in w {
        let _ = maps.watched.remove(&k);
    }
    let b: Vec<_> = maps
        .binaries
        .keys()
        .flatten()
        .filter(|k| k.generation == generation)
        .collect();
    for k in b {
        let _ = maps.binaries.remove(&k);
    }
    let e: Vec<_> = maps
        .exec_rules
        .keys()
        .flatten()
        .filter(|k| k.generation == generation)
        .collect();
    for k in e {
        let _ = maps.exec_rules.remove(&k);
    }
    let be = generation.to_be_bytes();
    let n: Vec<Key<NetKey>> = maps
        .net_rules
        .keys()
        .flatten()
        .filter(|k| k.data().generation == be)
        .collect();
    for k in n {
        let _ = maps.net_rules.remove(&k);
    }
}

//! The marks on files that sessions wrote (agent-ebpf `identity`) live in an LRU map, so
//! writing many files could age a copy's mark out. The programs count new marks per CPU
//! (`MARKS`); when a CPU's count reaches the threshold written here, they set the flag in
//! `MARKS_LOST`, and from then on every exec of a file no rule names by inode is looked up by
//! content (`agent_common::identity::MARKS_SAFE`): stricter, never an allow.

use agent_common::{identity::MARKS_SAFE, names};
use aya::maps::Array;

use super::{LoadError, Loaded};

/// Index of the per-CPU threshold in `MARKS_LOST`, and of the flag.
const THRESHOLD: u32 = 0;
const LOST: u32 = 1;

/// Writes the per-CPU threshold: `MARKS_SAFE` shared by the possible CPUs (when the marks
/// given reach `MARKS_SAFE`, at least one CPU gave that share).
pub fn set_threshold(loaded: &mut Loaded) -> Result<(), LoadError> {
    let cpus = aya::util::nr_cpus()
        .map_err(|(what, e)| LoadError::Other(format!("counting CPUs ({what}): {e}")))?;
    let threshold = (MARKS_SAFE / cpus.max(1) as u64).max(1);
    let name = names::MARKS_LOST;
    let map = loaded
        .ebpf
        .map_mut(name)
        .ok_or(LoadError::MissingMap(name))?;
    let mut map: Array<_, u64> =
        Array::try_from(map).map_err(|source| LoadError::Map { name, source })?;
    map.set(THRESHOLD, threshold, 0)
        .map_err(|source| LoadError::Map { name, source })
}

/// Whether the programs said that marks may have been lost (false when it cannot be read).
pub fn lost(loaded: &Loaded) -> bool {
    loaded
        .ebpf
        .map(names::MARKS_LOST)
        .and_then(|m| Array::<_, u64>::try_from(m).ok())
        .and_then(|a| a.get(&LOST, 0).ok())
        .is_some_and(|v| v != 0)
}

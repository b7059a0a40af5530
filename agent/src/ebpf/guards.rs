//! LSM mode's guards (`agent-ebpf/src/guard`): a watched process may not leave its session or
//! tamper with the enforcer. A guard the kernel refuses is left out and said (status lists the
//! protection as absent); it never costs the exec and connect enforcement.

use agent_common::{names, tamper::GuardedFile};
use aya::{
    maps::HashMap,
    programs::{links::FdLink, Lsm},
    Btf, Pod,
};

use super::{attach::program, pins, LoadError, Loaded};

/// Writes what the guards protect, before they attach: this daemon's pid into `PROTECTED`
/// and `files` into `GUARDED_FILES`, replacing a previous daemon's (whose pid may now be
/// anyone's, and whose files may have moved).
pub fn protect(loaded: &mut Loaded, files: &[(GuardedFile, u32)]) -> Result<(), LoadError> {
    replace(loaded, names::PROTECTED, &[(std::process::id(), 0)])?;
    replace(loaded, names::GUARDED_FILES, files)
}

/// Makes the pinned hash map `name` hold exactly `entries`: the new ones first, then the
/// stale ones go (never an empty moment).
fn replace<K: Pod + PartialEq, V: Pod>(
    loaded: &mut Loaded,
    name: &'static str,
    entries: &[(K, V)],
) -> Result<(), LoadError> {
    let map_err = |source| LoadError::Map { name, source };
    let map = loaded
        .ebpf
        .map_mut(name)
        .ok_or(LoadError::MissingMap(name))?;
    let mut map: HashMap<_, K, V> = HashMap::try_from(map).map_err(map_err)?;
    let stale: Vec<K> = map.keys().filter_map(Result::ok).collect();
    for (k, v) in entries {
        map.insert(k, v, 0).map_err(map_err)?;
    }
    for k in stale
        .iter()
        .filter(|k| !entries.iter().any(|(e, _)| e == *k))
    {
        map.remove(k).map_err(map_err)?;
    }
    Ok(())
}

/// Attaches every guard it can and pins its link; returns the guards attached.
pub fn attach(loaded: &mut Loaded, btf: &Btf) -> Vec<&'static str> {
    let mut attached = Vec::new();
    for &hook in names::GUARDS {
        let started = std::time::Instant::now();
        match attach_one(loaded, btf, hook) {
            Ok(()) => {
                tracing::info!(
                    guard = hook,
                    ms = started.elapsed().as_millis() as u64,
                    "guard attached"
                );
                attached.push(hook)
            }
            Err(e) => tracing::warn!(
                guard = hook,
                error = %e,
                "the kernel refused a guard: status lists what it protects as absent"
            ),
        }
    }
    attached
}

fn attach_one(loaded: &mut Loaded, btf: &Btf, hook: &'static str) -> Result<(), LoadError> {
    let err = |source| LoadError::Program {
        program: hook,
        source,
    };
    let p: &mut Lsm = program(loaded, hook)?;
    p.load(hook, btf).map_err(err)?;
    let id = p.attach().map_err(err)?;
    let link = p.take_link(id).map_err(err)?;
    pins::replace(&loaded.bpffs, hook, FdLink::from(link))
}

//! LSM mode's guards (`agent-ebpf/src/guard`): a watched process may not leave its session or
//! tamper with the enforcer. A guard the kernel refuses is left out and said (status lists the
//! protection as absent); it never costs the exec and connect enforcement.

use agent_common::names;
use aya::{
    maps::HashMap,
    programs::{links::FdLink, Lsm},
    Btf,
};

use super::{attach::program, pins, LoadError, Loaded};

/// Writes this daemon's pid into `PROTECTED` (and only it: a previous daemon's pid may now be
/// anyone's), before the guards that read it are attached.
pub fn protect_self(loaded: &mut Loaded) -> Result<(), LoadError> {
    let map = loaded
        .ebpf
        .map_mut(names::PROTECTED)
        .ok_or(LoadError::MissingMap(names::PROTECTED))?;
    let mut protected: HashMap<_, u32, u32> =
        HashMap::try_from(map).map_err(|source| LoadError::Map {
            name: names::PROTECTED,
            source,
        })?;
    let map_err = |source| LoadError::Map {
        name: names::PROTECTED,
        source,
    };
    let stale: Vec<u32> = protected.keys().filter_map(Result::ok).collect();
    let me = std::process::id();
    protected.insert(me, 0, 0).map_err(map_err)?;
    for pid in stale.into_iter().filter(|p| *p != me) {
        protected.remove(&pid).map_err(map_err)?;
    }
    Ok(())
}

/// Attaches every guard it can and pins its link; returns the guards attached.
pub fn attach(loaded: &mut Loaded, btf: &Btf) -> Vec<&'static str> {
    let mut attached = Vec::new();
    for &hook in names::GUARDS {
        match attach_one(loaded, btf, hook) {
            Ok(()) => attached.push(hook),
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

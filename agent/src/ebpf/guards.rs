//! LSM mode's guards (`agent-ebpf/src/guard`): a watched process may not leave its session or
//! tamper with the enforcer. A guard the kernel refuses is left out and said (status lists the
//! protection as absent); it never costs the exec and connect enforcement.

use std::{any::Any, path::Path};

use agent_common::{
    identity::FileKey,
    names,
    tamper::{delegator::NAME_MAX, syscall, GuardedFile},
};
use aya::{
    maps::{lpm_trie::Key, HashMap, LpmTrie, Map, MapError},
    programs::{links::FdLink, Lsm},
    Btf, Pod,
};

use super::{
    attach::{attach_tracepoint, program},
    pins, LoadError, Loaded,
};

/// Writes what the guards protect, before they attach: this daemon's pid into `PROTECTED`,
/// `files` into `GUARDED_FILES` and `delegators` into `DELEGATORS`, replacing a previous
/// daemon's (whose pid may now be anyone's, and whose files may have moved).
pub fn protect(
    loaded: &mut Loaded,
    files: &[(GuardedFile, u32)],
    delegators: &[DelegatorKey],
    loaders: &[(FileKey, u32)],
) -> Result<(), LoadError> {
    replace(loaded, names::PROTECTED, &[(std::process::id(), 0)])?;
    replace(loaded, names::GUARDED_FILES, files)?;
    replace(loaded, names::LOADERS, loaders)?;
    replace_delegators(loaded, delegators)
}

/// Adds `files` to `GUARDED_FILES` and `loaders` to `LOADERS`, keeping what they hold: the
/// kernel's identities of the files [`protect`] wrote with `stat()`'s, once the programs that
/// answer for the kernel's view are attached.
pub fn add_identities(
    loaded: &mut Loaded,
    files: &[(GuardedFile, u32)],
    loaders: &[(FileKey, u32)],
) -> Result<(), LoadError> {
    insert(loaded, names::GUARDED_FILES, files)?;
    insert(loaded, names::LOADERS, loaders)
}

/// A `DELEGATORS` key (`agent_common::tamper::delegator::key`): prefix length in bits, and
/// the zero-padded name.
pub type DelegatorKey = (u32, [u8; NAME_MAX]);

/// Makes the pinned hash map `name` hold exactly `entries`.
fn replace<K: Pod + PartialEq, V: Pod>(
    loaded: &mut Loaded,
    name: &'static str,
    entries: &[(K, V)],
) -> Result<(), LoadError> {
    put(loaded, name, entries, true)
}

/// Inserts `entries` into the pinned hash map `name`, keeping what else it holds.
fn insert<K: Pod + PartialEq, V: Pod>(
    loaded: &mut Loaded,
    name: &'static str,
    entries: &[(K, V)],
) -> Result<(), LoadError> {
    put(loaded, name, entries, false)
}

/// Puts `entries` into the pinned hash map `name`; with `exactly`, then removes the rest.
fn put<K: Pod + PartialEq, V: Pod>(
    loaded: &mut Loaded,
    name: &'static str,
    entries: &[(K, V)],
    exactly: bool,
) -> Result<(), LoadError> {
    let map_err = |source| LoadError::Map { name, source };
    let mut map: HashMap<_, K, V> = HashMap::try_from(map_mut(loaded, name)?).map_err(map_err)?;
    let stale = if exactly {
        map.keys().filter_map(Result::ok).collect()
    } else {
        Vec::new()
    };
    sync(
        &mut map,
        stale,
        entries,
        |m, k, v| m.insert(k, v, 0),
        |m, k| m.remove(k),
    )
    .map_err(map_err)
}

/// Makes the pinned trie `DELEGATORS` hold exactly `keys`.
fn replace_delegators(loaded: &mut Loaded, keys: &[DelegatorKey]) -> Result<(), LoadError> {
    let name = names::DELEGATORS;
    let map_err = |source| LoadError::Map { name, source };
    let mut map: LpmTrie<_, [u8; NAME_MAX], u32> =
        LpmTrie::try_from(map_mut(loaded, name)?).map_err(map_err)?;
    let stale = map
        .keys()
        .filter_map(Result::ok)
        .map(|k| (k.prefix_len(), k.data()))
        .collect();
    let wanted: Vec<(DelegatorKey, u32)> = keys.iter().map(|k| (*k, 1)).collect();
    sync(
        &mut map,
        stale,
        &wanted,
        |m, (bits, data), v| m.insert(&Key::new(*bits, *data), v, 0),
        |m, (bits, data)| m.remove(&Key::new(*bits, *data)),
    )
    .map_err(map_err)
}

/// Puts `wanted` into `map`, which holds `stale` now: the new entries first, then the stale
/// ones that are not wanted go (never an empty moment).
fn sync<M, K: PartialEq, V>(
    map: &mut M,
    stale: Vec<K>,
    wanted: &[(K, V)],
    insert: impl Fn(&mut M, &K, &V) -> Result<(), MapError>,
    remove: impl Fn(&mut M, &K) -> Result<(), MapError>,
) -> Result<(), MapError> {
    for (k, v) in wanted {
        insert(map, k, v)?;
    }
    for k in stale
        .iter()
        .filter(|k| !wanted.iter().any(|(w, _)| w == *k))
    {
        remove(map, k)?;
    }
    Ok(())
}

fn map_mut<'a>(loaded: &'a mut Loaded, name: &'static str) -> Result<&'a mut Map, LoadError> {
    loaded.ebpf.map_mut(name).ok_or(LoadError::MissingMap(name))
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
    if p.fd().is_err() {
        p.load(hook, btf).map_err(err)?;
    }
    let id = p.attach().map_err(err)?;
    let link = p.take_link(id).map_err(err)?;
    pins::replace(&loaded.bpffs, hook, FdLink::from(link))
}

/// Fallback mode's guarded syscall tracepoints: each one's syscall number on this
/// architecture, and what it guards. (The kernel hands BPF programs on syscall tracepoints a
/// record whose first word is a `pt_regs` pointer, not the event id: the syscall number is
/// what tells the calls apart.)
pub const SYSCALL_TRACEPOINTS: &[(&str, libc::c_long, u32)] = &[
    ("sys_enter_bpf", libc::SYS_bpf, syscall::BPF),
    ("sys_enter_mmap", libc::SYS_mmap, syscall::MMAP),
    ("sys_enter_kill", libc::SYS_kill, syscall::KILL),
    ("sys_enter_tkill", libc::SYS_tkill, syscall::TKILL),
    ("sys_enter_tgkill", libc::SYS_tgkill, syscall::TGKILL),
    ("sys_enter_ptrace", libc::SYS_ptrace, syscall::PTRACE),
    (
        "sys_enter_process_vm_readv",
        libc::SYS_process_vm_readv,
        syscall::PROCESS_VM,
    ),
    (
        "sys_enter_process_vm_writev",
        libc::SYS_process_vm_writev,
        syscall::PROCESS_VM,
    ),
    (
        "sys_enter_pidfd_open",
        libc::SYS_pidfd_open,
        syscall::PIDFD_OPEN,
    ),
    (
        "sys_enter_init_module",
        libc::SYS_init_module,
        syscall::INIT_MODULE,
    ),
    (
        "sys_enter_finit_module",
        libc::SYS_finit_module,
        syscall::FINIT_MODULE,
    ),
    (
        "sys_enter_delete_module",
        libc::SYS_delete_module,
        syscall::DELETE_MODULE,
    ),
    (
        "sys_enter_kexec_load",
        libc::SYS_kexec_load,
        syscall::KEXEC_LOAD,
    ),
    (
        "sys_enter_kexec_file_load",
        libc::SYS_kexec_file_load,
        syscall::KEXEC_FILE_LOAD,
    ),
    ("sys_enter_reboot", libc::SYS_reboot, syscall::REBOOT),
    ("sys_enter_mount", libc::SYS_mount, syscall::MOUNT),
    ("sys_enter_fsopen", libc::SYS_fsopen, syscall::FSOPEN),
    ("sys_enter_umount", libc::SYS_umount2, syscall::UMOUNT),
    ("sys_enter_socket", libc::SYS_socket, syscall::SOCKET),
    ("sys_enter_clone3", libc::SYS_clone3, syscall::CLONE3),
    (
        "sys_enter_io_uring_setup",
        libc::SYS_io_uring_setup,
        syscall::IO_URING_SETUP,
    ),
];

/// Fallback mode: attaches `tamper_syscall` to every guarded syscall tracepoint this kernel
/// has, after telling it (`SYSCALL_GUARDS`) which syscall number guards what; returns the
/// tracepoints attached and whether each link is pinned. A tracepoint the kernel lacks (no
/// module or kexec support) guards nothing; one it refuses is said and left out (status lists
/// what it protects as absent).
pub fn attach_syscalls(
    loaded: &mut Loaded,
    tracefs: &Path,
    unpinned: &mut Vec<Box<dyn Any + Send + Sync>>,
) -> Vec<(&'static str, bool)> {
    let present: Vec<(&'static str, u32, u32)> = SYSCALL_TRACEPOINTS
        .iter()
        .filter(|(tp, _, _)| tracefs.join("events/syscalls").join(tp).exists())
        .map(|&(tp, nr, guard)| (tp, nr as u32, guard))
        .collect();
    let numbers: Vec<(u32, u32)> = present.iter().map(|&(_, nr, guard)| (nr, guard)).collect();
    if let Err(e) = replace(loaded, names::SYSCALL_GUARDS, &numbers) {
        tracing::warn!(error = %e, "fallback guards not attached: status lists them as absent");
        return Vec::new();
    }
    let mut attached = Vec::new();
    for (tp, _, _) in present {
        match attach_tracepoint(loaded, names::PROG_TAMPER_SYSCALL, tp, unpinned) {
            Ok(pinned) => attached.push((tp, pinned)),
            Err(e) => tracing::warn!(
                tracepoint = tp,
                error = %e,
                "the kernel refused a fallback guard: status lists what it protects as absent"
            ),
        }
    }
    attached
}

//! Attaching the programs for a mode. Cgroup socket programs are attached once, at the root
//! of the cgroup v2 hierarchy (multi-attach), and look the agent group up themselves: agent
//! groups added by a reload need no new attachment, and a socket created outside an agent
//! cgroup and handed to an agent is still judged when the agent connects it.

use std::{any::Any, fs::File, path::Path};

use agent_common::{names, Mode};
use aya::maps::ProgramArray;
use aya::programs::{
    links::FdLink, CgroupAttachMode, CgroupSock, CgroupSockAddr, Lsm, RawTracePoint, TracePoint,
};

use super::{guards, pins, verify, LoadError, Loaded};

/// What is attached, for `status`.
pub struct Attached {
    pub mode: Mode,
    /// Why this mode (e.g. why LSM mode was not possible).
    pub reason: String,
    /// `(program, hook, pinned)`.
    pub programs: Vec<(&'static str, String, bool)>,
    /// The guards attached: LSM hooks in LSM mode (`agent_common::names::GUARDS`), syscall
    /// tracepoints in fallback mode (`guards::SYSCALL_TRACEPOINTS`).
    pub guards: Vec<&'static str>,
    /// Links the kernel cannot pin (tracepoints before 5.15): they live as long as the daemon.
    _unpinned: Vec<Box<dyn Any + Send + Sync>>,
}

/// The programs [`attach`] loads in `mode` (and `guards`: the LSM guards, fallback mode's
/// `tamper_syscall`), the longest to verify first: what [`verify::preload`] loads on every
/// core. A program attached below but missing here is still loaded, one after another.
fn programs(mode: Mode) -> Vec<&'static str> {
    let mut out = vec![
        names::PROG_EXEC_JUDGE,
        names::PROG_ENTER_EXECVE,
        names::PROG_ENTER_EXECVEAT,
        names::PROG_PROCESS_EXEC,
        names::PROG_CONNECT4,
        names::PROG_CONNECT6,
        names::PROG_SENDMSG4,
        names::PROG_SENDMSG6,
    ];
    match mode {
        Mode::Lsm => {
            out.insert(1, names::PROG_BPRM_CHECK);
            out.extend(names::GUARDS);
        }
        Mode::Fallback => out.extend([
            names::PROG_TAMPER_SYSCALL,
            names::PROG_MARK_WRITTEN,
            names::PROG_SOCK_CREATE,
        ]),
    }
    out
}

/// Attaches every program the mode needs. With `lsm_optional`, an LSM program the kernel
/// refuses makes the daemon fall back (and say why) instead of failing.
pub fn attach(
    loaded: &mut Loaded,
    mode: Mode,
    lsm_optional: bool,
    reason: String,
    cgroup_root: &Path,
    tracefs: &Path,
) -> Result<Attached, LoadError> {
    let mut a = Attached {
        mode,
        reason,
        programs: Vec::new(),
        guards: Vec::new(),
        _unpinned: Vec::new(),
    };
    let btf = (mode == Mode::Lsm).then(|| {
        aya::Btf::from_sys_fs().map_err(|e| LoadError::Other(format!("reading kernel BTF: {e}")))
    });
    let ready_btf = btf.as_ref().and_then(|b| b.as_ref().ok());
    verify::preload(loaded, &programs(mode), ready_btf);
    if let Some(btf) = btf {
        match btf.and_then(|btf| attach_lsm(loaded, btf)) {
            Ok(btf) => {
                a.programs.push((
                    names::PROG_BPRM_CHECK,
                    "lsm/bprm_check_security".into(),
                    true,
                ));
                a.guards = guards::attach(loaded, &btf);
                a.programs
                    .extend(a.guards.iter().map(|g| (*g, format!("lsm/{g}"), true)));
            }
            Err(e) if lsm_optional => {
                let why = e.to_string();
                let why = why
                    .trim_end()
                    .trim_end_matches("Verifier output:")
                    .trim_end();
                a.mode = Mode::Fallback;
                a.reason = format!(
                    "the kernel refused the BPF LSM program ({why}); \
                     exec refusals kill the process instead"
                );
                tracing::warn!(error = %why, "BPF LSM unavailable, falling back");
            }
            Err(e) => return Err(e),
        }
    }
    for (prog, syscall) in [
        (names::PROG_ENTER_EXECVE, "sys_enter_execve"),
        (names::PROG_ENTER_EXECVEAT, "sys_enter_execveat"),
    ] {
        let pinned = attach_tracepoint(loaded, prog, syscall, &mut a._unpinned)?;
        a.programs
            .push((prog, format!("tracepoint/syscalls/{syscall}"), pinned));
    }
    install_exec_judge(loaded)?;
    let p: &mut RawTracePoint = program(loaded, names::PROG_PROCESS_EXEC)?;
    if p.fd().is_err() {
        p.load().map_err(prog_err(names::PROG_PROCESS_EXEC))?;
    }
    let id = p
        .attach("sched_process_exec")
        .map_err(prog_err(names::PROG_PROCESS_EXEC))?;
    let link = p
        .take_link(id)
        .map_err(prog_err(names::PROG_PROCESS_EXEC))?;
    pins::replace(&loaded.bpffs, names::PROG_PROCESS_EXEC, FdLink::from(link))?;
    a.programs.push((
        names::PROG_PROCESS_EXEC,
        "raw_tracepoint/sched_process_exec".into(),
        true,
    ));

    let root = File::open(cgroup_root).map_err(|e| {
        LoadError::Other(format!(
            "opening cgroup root {}: {e}",
            cgroup_root.display()
        ))
    })?;
    for prog in [
        names::PROG_CONNECT4,
        names::PROG_CONNECT6,
        names::PROG_SENDMSG4,
        names::PROG_SENDMSG6,
    ] {
        let p: &mut CgroupSockAddr = program(loaded, prog)?;
        if p.fd().is_err() {
            p.load().map_err(prog_err(prog))?;
        }
        let link = p
            .attach(&root, CgroupAttachMode::Single)
            .and_then(|id| p.take_link(id))
            .map_err(prog_err(prog))?;
        a.programs
            .push(pin_at_root(loaded, prog, link, cgroup_root)?);
    }
    if a.mode == Mode::Fallback {
        let prog = names::PROG_SOCK_CREATE;
        let p: &mut CgroupSock = program(loaded, prog)?;
        if p.fd().is_err() {
            p.load().map_err(prog_err(prog))?;
        }
        let link = p
            .attach(&root, CgroupAttachMode::Single)
            .and_then(|id| p.take_link(id))
            .map_err(prog_err(prog))?;
        a.programs
            .push(pin_at_root(loaded, prog, link, cgroup_root)?);
        for tp in WRITE_OPENS {
            if tp != "sys_exit_openat" && !tracefs.join("events/syscalls").join(tp).exists() {
                continue;
            }
            let pinned = attach_tracepoint(loaded, names::PROG_MARK_WRITTEN, tp, &mut a._unpinned)?;
            a.programs.push((
                tp,
                format!("tracepoint/syscalls/{tp} ({})", names::PROG_MARK_WRITTEN),
                pinned,
            ));
        }
        for (tp, pinned) in guards::attach_syscalls(loaded, tracefs, &mut a._unpinned) {
            a.guards.push(tp);
            a.programs.push((
                tp,
                format!("tracepoint/syscalls/{tp} ({})", names::PROG_TAMPER_SYSCALL),
                pinned,
            ));
        }
    }
    let keep: Vec<String> = a
        .programs
        .iter()
        .filter(|p| p.2)
        .map(|p| p.0.to_string())
        .collect();
    pins::drop_stale(&loaded.bpffs, &keep);
    Ok(a)
}

/// Fallback mode: the exits of the system calls that open files, where `mark_written` marks
/// the ones a watched process opened for writing (LSM mode marks them in `file_open`). Every
/// kernel has `openat`; the others are attached where the architecture has them. `io_uring`
/// opens pass no system call exit: setting up a ring is a fallback guard (`io_uring`).
const WRITE_OPENS: [&str; 4] = [
    "sys_exit_openat",
    "sys_exit_openat2",
    "sys_exit_open",
    "sys_exit_creat",
];

/// Pins the link of the cgroup program `prog` (named after its hook) attached at the root;
/// returns its `status` line.
fn pin_at_root<L>(
    loaded: &Loaded,
    prog: &'static str,
    link: L,
    cgroup_root: &Path,
) -> Result<(&'static str, String, bool), LoadError>
where
    FdLink: TryFrom<L>,
    <FdLink as TryFrom<L>>::Error: std::fmt::Display,
{
    let fd = FdLink::try_from(link)
        .map_err(|e| LoadError::Other(format!("{prog}: cannot pin cgroup link: {e}")))?;
    pins::replace(&loaded.bpffs, prog, fd)?;
    Ok((
        prog,
        format!("cgroup/{prog} at {}", cgroup_root.display()),
        true,
    ))
}

/// Loads `exec_judge` (unless [`verify::preload`] did) and puts it where
/// `sched_process_exec` tail-calls it (before that one is attached, so that no exec meets an
/// empty slot).
fn install_exec_judge(loaded: &mut Loaded) -> Result<(), LoadError> {
    let judge: &mut RawTracePoint = program(loaded, names::PROG_EXEC_JUDGE)?;
    if judge.fd().is_err() {
        judge.load().map_err(prog_err(names::PROG_EXEC_JUDGE))?;
    }
    let fd = judge
        .fd()
        .map_err(prog_err(names::PROG_EXEC_JUDGE))?
        .try_clone()
        .map_err(|e| LoadError::Other(format!("duplicating the exec_judge fd: {e}")))?;
    let map = loaded
        .ebpf
        .map_mut(names::EXEC_TAIL)
        .ok_or(LoadError::MissingMap(names::EXEC_TAIL))?;
    let mut tail = ProgramArray::try_from(map).map_err(|source| LoadError::Map {
        name: names::EXEC_TAIL,
        source,
    })?;
    tail.set(0, &fd, 0).map_err(|source| LoadError::Map {
        name: names::EXEC_TAIL,
        source,
    })
}

/// Attaches the exec hook; returns the kernel's BTF `btf` for the guards.
fn attach_lsm(loaded: &mut Loaded, btf: aya::Btf) -> Result<aya::Btf, LoadError> {
    let p: &mut Lsm = program(loaded, names::PROG_BPRM_CHECK)?;
    if p.fd().is_err() {
        p.load(names::PROG_BPRM_CHECK, &btf)
            .map_err(prog_err(names::PROG_BPRM_CHECK))?;
    }
    let id = p.attach().map_err(prog_err(names::PROG_BPRM_CHECK))?;
    let link = p.take_link(id).map_err(prog_err(names::PROG_BPRM_CHECK))?;
    pins::replace(&loaded.bpffs, names::PROG_BPRM_CHECK, FdLink::from(link))?;
    Ok(btf)
}

/// Attaches the program `prog` (loaded on its first attachment) to a syscall tracepoint; pins
/// the link under the tracepoint's name when the kernel makes it a bpf_link (5.15+).
pub(super) fn attach_tracepoint(
    loaded: &mut Loaded,
    prog: &'static str,
    syscall: &str,
    unpinned: &mut Vec<Box<dyn Any + Send + Sync>>,
) -> Result<bool, LoadError> {
    let p: &mut TracePoint = program(loaded, prog)?;
    if p.fd().is_err() {
        p.load().map_err(prog_err(prog))?;
    }
    let id = p.attach("syscalls", syscall).map_err(prog_err(prog))?;
    let link = p.take_link(id).map_err(prog_err(prog))?;
    match FdLink::try_from(link) {
        Ok(fd) => {
            pins::replace(&loaded.bpffs, syscall, fd)?;
            Ok(true)
        }
        Err(_) => {
            // A perf-event attachment: re-attach it to keep it (TryFrom consumed the link).
            let id = p.attach("syscalls", syscall).map_err(prog_err(prog))?;
            let link = p.take_link(id).map_err(prog_err(prog))?;
            unpinned.push(Box::new(link));
            Ok(false)
        }
    }
}

pub(super) fn program<'a, T>(
    loaded: &'a mut Loaded,
    name: &'static str,
) -> Result<&'a mut T, LoadError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let p = loaded
        .ebpf
        .program_mut(name)
        .ok_or_else(|| LoadError::Other(format!("program {name} is missing from the object")))?;
    p.try_into().map_err(prog_err(name))
}

fn prog_err(program: &'static str) -> impl Fn(aya::programs::ProgramError) -> LoadError {
    move |source| LoadError::Program { program, source }
}

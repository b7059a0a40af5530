//! Attempts on the enforcement itself by a watched process (LSM mode): leaving the session,
//! blinding or unloading the programs, reaching around the socket hooks. Each is refused by
//! the kernel programs of `agent-ebpf/src/guard` and reported as an event of kind
//! [`crate::event::EventKind::Tamper`], whose [`crate::event::Event::detail`] is a [`Tamper`]
//! and whose `ino`/`dev`/`path` say the target (see [`Tamper`]'s variants).

/// What was tried. Stable numbers and names: they are stored in event logs.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tamper {
    /// Opened a cgroup's `cgroup.procs` or `cgroup.threads` for writing (moving a process
    /// between cgroups). `ino`: cgroup id of the directory; `path`: the file name.
    CgroupMove = 1,
    /// `clone3(CLONE_INTO_CGROUP)`. `dev`: the clone flags.
    CloneIntoCgroup = 2,
    /// Mounted a cgroup, bpf, debugfs, tracefs or securityfs file system. `ino`: its magic.
    Mount = 3,
    /// Unmounted one. `ino`: its magic.
    Unmount = 4,
    /// Called `bpf()`. `ino`: the command.
    Bpf = 5,
    /// Sent a signal to the daemon. `ino`: target pid; `dev`: the signal.
    Signal = 6,
    /// `ptrace`, `process_vm_*`, `pidfd_getfd` or `/proc/PID/mem` on the daemon. `ino`: target
    /// pid; `dev`: the ptrace access mode.
    Ptrace = 7,
    /// Loaded a kernel module, a kexec image, firmware or a security policy. `ino`: the
    /// kernel's `kernel_read_file_id`/`kernel_load_data_id`; `dev`: 0 from a file, 1 from memory.
    KernelLoad = 8,
    /// Created a packet socket or a raw IPv4/IPv6 socket. `family`, `protocol`; `dev`: type.
    RawSocket = 9,
    /// Unlinked or renamed a file of a bpf file system (the pins). `ino`: its inode; `path`:
    /// its name.
    PinRemoval = 10,
    /// Wrote, created, removed, renamed, linked or truncated one of the daemon's files (state
    /// and run directories, policy files, certificates, its binary; [`GuardedFile`]). `dev`,
    /// `ino`: the file's identity (0 for a name that does not exist yet); `path`: its name.
    EnforcerFile = 11,
}

crate::verdict::names!(Tamper {
    CgroupMove => "cgroup_move",
    CloneIntoCgroup => "clone_into_cgroup",
    Mount => "mount",
    Unmount => "unmount",
    Bpf => "bpf",
    Signal => "signal",
    Ptrace => "ptrace",
    KernelLoad => "kernel_load",
    RawSocket => "raw_socket",
    PinRemoval => "pin_removal",
    EnforcerFile => "enforcer_file",
});

impl Tamper {
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::CgroupMove),
            2 => Some(Self::CloneIntoCgroup),
            3 => Some(Self::Mount),
            4 => Some(Self::Unmount),
            5 => Some(Self::Bpf),
            6 => Some(Self::Signal),
            7 => Some(Self::Ptrace),
            8 => Some(Self::KernelLoad),
            9 => Some(Self::RawSocket),
            10 => Some(Self::PinRemoval),
            11 => Some(Self::EnforcerFile),
            _ => None,
        }
    }
}

/// A file or directory of the daemon's, by the identity the kernel gives it (`dev` in the
/// kernel's encoding, `major << 20 | minor`): the key of the pinned `GUARDED_FILES` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GuardedFile {
    pub dev: u64,
    pub ino: u64,
}

/// Values of `GUARDED_FILES`: what the identity is.
pub mod guarded {
    /// A file: it may not be written, truncated, removed, renamed or linked.
    pub const FILE: u32 = 1;
    /// A directory: nothing in it may be written, created, removed, renamed or linked, and
    /// nothing may be renamed into it.
    pub const DIRECTORY: u32 = 2;
}

const _: () = assert!(core::mem::size_of::<GuardedFile>() == 16);

/// File system magics (uapi `linux/magic.h`) of the file systems a watched process may not
/// mount or unmount: they hold the session's cgroups, the pins, or the kernel's tracing and
/// security controls.
pub mod magic {
    pub const CGROUP: u64 = 0x0027_e0eb;
    pub const CGROUP2: u64 = 0x6367_7270;
    pub const BPF_FS: u64 = 0xcafe_4a11;
    pub const DEBUGFS: u64 = 0x6462_6720;
    pub const TRACEFS: u64 = 0x7472_6163;
    pub const SECURITYFS: u64 = 0x7363_6673;

    /// Whether `m` is one of the guarded file systems.
    pub const fn guarded(m: u64) -> bool {
        matches!(
            m,
            CGROUP | CGROUP2 | BPF_FS | DEBUGFS | TRACEFS | SECURITYFS
        )
    }

    /// The file system's name, for events.
    pub const fn name(m: u64) -> Option<&'static str> {
        match m {
            CGROUP => Some("cgroup"),
            CGROUP2 => Some("cgroup2"),
            BPF_FS => Some("bpf"),
            DEBUGFS => Some("debugfs"),
            TRACEFS => Some("tracefs"),
            SECURITYFS => Some("securityfs"),
            _ => None,
        }
    }
}

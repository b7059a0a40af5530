//! The compiled policy as the kernel programs read it.
//!
//! The policy is double-buffered: every key carries a generation (0 or 1) and [`State::active`]
//! says which one the programs use. A reload writes the inactive generation completely, then
//! flips `active` with one map update, then clears the old generation after a grace period, so
//! there is never a moment in which a half-written policy is judged.

/// Rules one binary (or "any binary") may carry after `a|b|c` alternatives are expanded.
pub const EXEC_SLOTS: usize = 16;
/// Argument patterns per exec rule (argv[1] ..= argv[8]).
pub const MAX_ARG_PATTERNS: usize = 8;
/// Network rules that may cover one address prefix.
pub const NET_SLOTS: usize = 16;
/// Binary id meaning "any binary" in [`ExecRulesKey`] and "any parent" in [`ExecSlot`].
pub const ANY_BINARY: u32 = 0;
/// Group value meaning "every agent group" in rule slots.
pub const ANY_GROUP: u32 = 0;
/// Protocol value meaning "TCP and UDP" in [`NetSlot`].
pub const ANY_PROTOCOL: u16 = 0;

/// Bits of [`Group::flags`].
pub mod group_flags {
    /// Nothing is refused; every would-be refusal is reported.
    pub const MONITOR: u32 = 1 << 0;
    /// `permit: [ping]`: ICMP datagram ("ping") sockets.
    pub const PERMIT_PING: u32 = 1 << 1;
    /// `permit: [raw_sockets]`: raw IPv4/IPv6 sockets and `CAP_NET_RAW`.
    pub const PERMIT_RAW_SOCKETS: u32 = 1 << 2;
    /// `permit: [packet_sockets]`: `AF_PACKET` sockets and `CAP_NET_RAW`.
    pub const PERMIT_PACKET_SOCKETS: u32 = 1 << 3;
    /// `permit: [delegators]`: connecting to the delegators' unix sockets (docker…).
    pub const PERMIT_DELEGATORS: u32 = 1 << 4;
    /// `permit: [io_uring]`: setting up an io_uring in fallback mode (what a ring writes is
    /// then not marked, so not checked by content when executed).
    pub const PERMIT_IO_URING: u32 = 1 << 5;

    /// The names a policy group's `permit:` takes, with their flags.
    pub const PERMITS: &[(&str, u32)] = &[
        ("ping", PERMIT_PING),
        ("raw_sockets", PERMIT_RAW_SOCKETS),
        ("packet_sockets", PERMIT_PACKET_SOCKETS),
        ("delegators", PERMIT_DELEGATORS),
        ("io_uring", PERMIT_IO_URING),
    ];
}

/// Index of the single entry of the `STATE` array.
pub const STATE_INDEX: u32 = 0;

/// Global switch of the `STATE` array map (one entry).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Generation in force (0 or 1).
    pub active: u32,
    /// [`crate::Mode`] the daemon chose.
    pub mode: u32,
    /// Per generation, the set of cgroup levels (bit n = level n) at which agent groups sit:
    /// the programs look up only those ancestors, so unwatched processes cost a few
    /// instructions.
    pub levels: [u32; 2],
}

/// Key of `WATCHED`: an agent group's cgroup in one generation.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WatchKey {
    pub generation: u32,
    /// Alignment only.
    pub _pad: u32,
    pub cgroup_id: u64,
}

/// Key of `ACCOUNTS`: an account (real uid) whose processes belong to an agent group wherever
/// they run, in one generation. The value is the group's cgroup id (its key in `WATCHED`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccountKey {
    pub generation: u32,
    pub uid: u32,
}

const _: () = assert!(core::mem::size_of::<AccountKey>() == 8);

/// Value of `WATCHED`: what the programs need to know about an agent group.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Group {
    /// Group number + 1 (as used by [`ExecSlot::group`] and [`NetSlot::group`]).
    pub id: u32,
    /// [`group_flags`].
    pub flags: u32,
    /// [`crate::Action`] for execs no rule matches.
    pub default_exec: u32,
    /// [`crate::Action`] for connects no rule matches.
    pub default_net: u32,
    /// cgroup level of the group's cgroup (root = 0); sessions sit at `level + 1`.
    pub level: u32,
    /// [`crate::Action`] at least applied to an exec of a file a watched process wrote
    /// (policy `agent_written`; allow = no floor).
    pub agent_written: u32,
}

/// The rule number events and grants carry when the group's `agent_written` floor, not a
/// rule, decided an exec (rule numbers are indexes + 1, far below this).
pub const AGENT_WRITTEN_RULE: u32 = u32::MAX - 1;
/// The rule id events name for [`AGENT_WRITTEN_RULE`].
pub const AGENT_WRITTEN_RULE_ID: &str = "agent-written";

/// Key of `BINARIES`: the identity of a file named by a rule. Value: its binary id (`u32`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BinaryKey {
    pub generation: u32,
    /// Alignment only.
    pub _pad: u32,
    /// Kernel device number: `major << 20 | minor`.
    pub dev: u64,
    pub ino: u64,
}

/// Key of `EXEC_RULES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExecRulesKey {
    pub generation: u32,
    /// Binary id, or [`ANY_BINARY`] for rules that name no binary.
    pub binary: u32,
}

/// One exec rule (one expansion of its argument alternatives).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecSlot {
    /// Hash of argv[i + 1] required, or [`crate::hash::ANY_ARG`].
    pub args: [u64; MAX_ARG_PATTERNS],
    /// Rule index + 1: lower wins when several rules match (policy order).
    pub rule: u32,
    /// [`crate::Action`].
    pub action: u32,
    /// Binary id the parent process must run, or [`ANY_BINARY`].
    pub parent: u32,
    /// Group id the rule is limited to, or [`ANY_GROUP`].
    pub group: u32,
    /// Number of meaningful entries in `args`; argc must be greater than it.
    pub nargs: u32,
    /// Alignment only.
    pub _pad: u32,
}

/// Value of `EXEC_RULES`: the rules of one binary, in policy order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecRules {
    pub count: u32,
    /// Alignment only.
    pub _pad: u32,
    pub slots: [ExecSlot; EXEC_SLOTS],
}

impl Default for ExecRules {
    fn default() -> Self {
        Self {
            count: 0,
            _pad: 0,
            slots: [ExecSlot::default(); EXEC_SLOTS],
        }
    }
}

/// Data part of the `NET_RULES` LPM trie key; the prefix length counts the 32 generation bits
/// plus the address prefix (IPv4 rules are stored IPv4-mapped: `/n` becomes `/96 + n`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetKey {
    /// Generation, big endian (the trie compares bytes most significant first).
    pub generation: [u8; 4],
    /// IPv6 address or IPv4-mapped IPv6 address, network byte order.
    pub addr: [u8; 16],
}

/// Bits of the generation and the address prefix that make up an LPM key's prefix length.
pub const NET_GENERATION_BITS: u32 = 32;

/// One network rule as stored under a prefix.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetSlot {
    /// Rule index + 1.
    pub rule: u32,
    /// [`crate::Action`].
    pub action: u32,
    /// Group id the rule is limited to, or [`ANY_GROUP`].
    pub group: u32,
    pub port_lo: u16,
    pub port_hi: u16,
    /// `IPPROTO_TCP`, `IPPROTO_UDP` or [`ANY_PROTOCOL`].
    pub protocol: u16,
    /// Alignment only.
    pub _pad: [u16; 3],
}

/// Value of `NET_RULES`: every rule whose CIDR covers the key's prefix, in policy order (the
/// longest-prefix match then yields all rules that can apply to an address).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetRules {
    pub count: u32,
    /// Alignment only.
    pub _pad: u32,
    pub slots: [NetSlot; NET_SLOTS],
}

impl Default for NetRules {
    fn default() -> Self {
        Self {
            count: 0,
            _pad: 0,
            slots: [NetSlot::default(); NET_SLOTS],
        }
    }
}

/// Indices of the per-CPU `STATS` array.
pub mod stats {
    pub const EXEC_JUDGED: u32 = 0;
    pub const EXEC_REFUSED: u32 = 1;
    pub const CONNECT_JUDGED: u32 = 2;
    pub const CONNECT_REFUSED: u32 = 3;
    pub const GRANTS_USED: u32 = 4;
    pub const EVENTS_LOST: u32 = 5;
    pub const ARGV_MISMATCH: u32 = 6;
    pub const FAILED_CLOSED: u32 = 7;
    /// The cgroup of an exec'ing process could not be read; its exec was refused (it may
    /// have been watched).
    pub const WATCH_ERRORS: u32 = 8;
    pub const COUNT: u32 = 9;
}

const _: () = assert!(core::mem::size_of::<ExecSlot>() == 88);
const _: () = assert!(core::mem::size_of::<NetSlot>() == 24);
const _: () = assert!(core::mem::size_of::<NetKey>() == 20);

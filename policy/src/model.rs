//! The validated policy. Values of these types satisfy every rule of the format (see
//! `docs/policy.md`); they are only built by [`crate::Policy::load`] and friends.

use std::{path::PathBuf, sync::Arc, time::Duration};

pub use crate::cidr::Cidr;
pub use agent_common::Action;

/// Where an item was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<str>,
    /// 1-based.
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A whole policy: the agent groups and rules of every file, in the order given.
#[derive(Clone, Debug)]
pub struct Policy {
    pub agents: Vec<AgentGroup>,
    /// In policy order: the first matching rule wins.
    pub rules: Vec<Rule>,
}

/// A cgroup whose processes (and their descendants) are AI agents.
#[derive(Clone, Debug)]
pub struct AgentGroup {
    pub name: String,
    /// Path inside the cgroup v2 hierarchy: absolute, no trailing `/`, no `.`/`..`.
    pub cgroup: String,
    pub default_exec: Action,
    pub default_network: Action,
    /// Nothing is refused; would-be refusals are reported.
    pub monitor: bool,
    /// Accounts (user names or numeric uids) whose processes belong to the group wherever
    /// they run: work an agent hands to its account's systemd manager, cron, a tmux server
    /// or ssh outside the session is judged by the group's rules.
    pub accounts: Vec<String>,
    /// Guards the group opts out of (`agent_common::policy::group_flags::PERMITS` names:
    /// `ping`, `raw_sockets`, `packet_sockets`, `delegators`, `io_uring`).
    pub permit: Vec<String>,
    /// What at least happens when a session executes a file a session wrote (or a memfd):
    /// the stricter of this and what the rules say. Allow (the default) adds nothing.
    pub agent_written: Action,
    pub location: Location,
}

impl AgentGroup {
    /// The group's flags for the kernel (`agent_common::policy::group_flags`).
    pub fn flags(&self) -> u32 {
        use agent_common::policy::group_flags::{MONITOR, PERMITS};
        let monitor = if self.monitor { MONITOR } else { 0 };
        PERMITS
            .iter()
            .filter(|(name, _)| self.permit.iter().any(|p| p == name))
            .fold(monitor, |flags, (_, bit)| flags | bit)
    }

    /// Number of components of the cgroup path: its cgroup level when the hierarchy root is
    /// the kernel's root cgroup (not inside a cgroup namespace).
    pub fn depth(&self) -> u32 {
        self.cgroup.split('/').filter(|c| !c.is_empty()).count() as u32
    }
}

/// One rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    pub description: Option<String>,
    /// Agent groups the rule applies to; empty = every group.
    pub agents: Vec<String>,
    pub matcher: Match,
    pub action: Action,
    pub approvers: Option<Approvers>,
    pub location: Location,
}

impl Rule {
    /// Whether the rule applies to processes of the agent group `name`.
    pub fn applies_to(&self, name: &str) -> bool {
        self.agents.is_empty() || self.agents.iter().any(|a| a == name)
    }
}

/// What a rule looks at.
#[derive(Clone, Debug)]
pub enum Match {
    Exec(ExecMatch),
    Network(NetMatch),
}

/// A file path named by a rule, with the line it was written on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulePath {
    pub path: PathBuf,
    pub line: usize,
}

/// Conditions on an exec; every condition given must hold.
#[derive(Clone, Debug, Default)]
pub struct ExecMatch {
    /// The executed file is one of these (by identity); empty = any file.
    pub binaries: Vec<RulePath>,
    /// Pattern `i` applies to argv[i + 1]; argc must exceed the number of patterns.
    pub args: Vec<ArgPattern>,
    /// The parent process runs one of these; empty = any parent.
    pub parents: Vec<RulePath>,
}

impl ExecMatch {
    /// Number of kernel slots one (binary, group) pair of this rule takes: the product of the
    /// argument alternatives times the number of parents.
    pub fn expansions(&self) -> usize {
        let args: usize = self.args.iter().map(ArgPattern::alternatives).product();
        args * self.parents.len().max(1)
    }
}

/// A positional argument pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgPattern {
    /// `*`: the argument must exist, any value.
    Any,
    /// `a|b|c`: one of these literals (non-empty, distinct).
    OneOf(Vec<String>),
}

impl ArgPattern {
    /// Kernel slots this position multiplies a rule into.
    pub fn alternatives(&self) -> usize {
        match self {
            Self::Any => 1,
            Self::OneOf(l) => l.len(),
        }
    }
}

impl std::fmt::Display for ArgPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::OneOf(l) => f.write_str(&l.join("|")),
        }
    }
}

/// Conditions on a connect (or a UDP sendmsg); every condition given must hold.
#[derive(Clone, Debug, Default)]
pub struct NetMatch {
    /// Destination in one of these; empty = any address.
    pub cidrs: Vec<Cidr>,
    /// Destination port in one of these; empty = any port.
    pub ports: Vec<PortRange>,
    pub protocol: Protocol,
}

/// Inclusive port range (`lo == hi` for one port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    /// Every port, as stored for rules without `ports`.
    pub const ALL: Self = Self {
        lo: 0,
        hi: u16::MAX,
    };

    /// Whether `port` lies in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.lo..=self.hi).contains(&port)
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// Transport protocol a network rule applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    #[default]
    Any,
}

impl Protocol {
    /// `IPPROTO_*` number, or [`agent_common::policy::ANY_PROTOCOL`].
    pub fn number(self) -> u16 {
        match self {
            Self::Tcp => libc::IPPROTO_TCP as u16,
            Self::Udp => libc::IPPROTO_UDP as u16,
            Self::Any => agent_common::policy::ANY_PROTOCOL,
        }
    }

    /// Whether a rule for this protocol applies to an operation over `t`.
    pub fn admits(self, t: crate::Transport) -> bool {
        use crate::Transport;
        matches!(
            (self, t),
            (Self::Any, _) | (Self::Tcp, Transport::Tcp) | (Self::Udp, Transport::Udp)
        )
    }

    /// The name as written in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Any => "any",
        }
    }
}

/// Who may approve an `approve` rule's requests (enforced by the control plane).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approvers {
    pub groups: Vec<String>,
    /// Distinct approvals required.
    pub min: u32,
    pub grant: GrantSpec,
    /// How long a request stays pending before it expires undecided (default 1h).
    pub expires: Duration,
    /// Whether the person who launched the agent session may approve its requests
    /// (default false: separation of duties).
    pub allow_launcher: bool,
}

impl Approvers {
    /// Lifetime of a pending request when the rule does not say.
    pub const DEFAULT_EXPIRES: Duration = Duration::from_secs(3600);
}

/// What an approval grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantSpec {
    /// Uses, `1..=8`; 0 = any number of uses until the grant expires.
    pub uses: u32,
    pub ttl: Duration,
}

impl Default for GrantSpec {
    fn default() -> Self {
        Self {
            uses: 1,
            ttl: Duration::from_secs(600),
        }
    }
}

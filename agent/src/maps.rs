//! Typed handles on the pinned maps the daemon reads and writes.

use agent_common::{
    grant::{Grant, GrantKey},
    identity::{ContentKey, FileKey, Identify},
    names,
    policy::{
        AccountKey, BinaryKey, ExecRules, ExecRulesKey, Group, NetKey, NetRules, State, WatchKey,
    },
    session::SessionStats,
};
use aya::{
    maps::{Array, HashMap, LpmTrie, Map, MapData, PerCpuArray, PerCpuHashMap, RingBuf},
    Ebpf,
};

use crate::ebpf::LoadError;

/// Every map the daemon uses, taken out of the loaded object.
pub struct Maps {
    pub state: Array<MapData, State>,
    pub watched: HashMap<MapData, WatchKey, Group>,
    /// Accounts judged as a group's wherever they run → the group's cgroup id.
    pub accounts: HashMap<MapData, AccountKey, u64>,
    pub binaries: HashMap<MapData, BinaryKey, u32>,
    /// Guarded ELF binaries by normalised head (`agent_common::identity`).
    pub contents: HashMap<MapData, ContentKey, u32>,
    /// The daemon's questions on file identities (`kernel::identity`).
    pub identify: Array<MapData, Identify>,
    /// Write stamps of files watched processes wrote (`agent_common::identity`; an LRU map).
    pub written: HashMap<MapData, FileKey, u64>,
    pub exec_rules: HashMap<MapData, ExecRulesKey, ExecRules>,
    pub net_rules: LpmTrie<MapData, NetKey, NetRules>,
    pub grants: HashMap<MapData, GrantKey, Grant>,
    /// Per-session evidence (`agent_common::session`), one copy per CPU.
    pub session_stats: PerCpuHashMap<MapData, u64, SessionStats>,
    /// One-use tickets of grant slots (`agent_common::grant`).
    pub tickets: HashMap<MapData, u64, u32>,
    pub stats: PerCpuArray<MapData, u64>,
    /// Taken by the event reader.
    pub events: Option<RingBuf<MapData>>,
}

impl Maps {
    pub fn take(ebpf: &mut Ebpf) -> Result<Self, LoadError> {
        Ok(Self {
            state: typed(ebpf, names::STATE)?,
            watched: typed(ebpf, names::WATCHED)?,
            accounts: typed(ebpf, names::ACCOUNTS)?,
            binaries: typed(ebpf, names::BINARIES)?,
            contents: typed(ebpf, names::CONTENTS)?,
            identify: typed(ebpf, names::IDENTIFY)?,
            written: typed(ebpf, names::WRITTEN)?,
            exec_rules: typed(ebpf, names::EXEC_RULES)?,
            net_rules: typed(ebpf, names::NET_RULES)?,
            grants: typed(ebpf, names::GRANTS)?,
            tickets: typed(ebpf, names::TICKETS)?,
            session_stats: typed(ebpf, names::SESSION_STATS)?,
            stats: typed(ebpf, names::STATS)?,
            events: Some(typed(ebpf, names::EVENTS)?),
        })
    }

    /// The switch of the active policy generation and mode (zeroed before the first policy).
    pub fn read_state(&self) -> State {
        self.state
            .get(&agent_common::policy::STATE_INDEX, 0)
            .unwrap_or_default()
    }

    pub fn write_state(&mut self, s: State) -> Result<(), LoadError> {
        self.state
            .set(agent_common::policy::STATE_INDEX, s, 0)
            .map_err(|source| LoadError::Map {
                name: names::STATE,
                source,
            })
    }

    /// The write stamp of file `(dev, ino)` (kernel encoding): when a watched process last
    /// opened it for writing, as far as the marks remember; 0 when none did.
    pub fn write_stamp(&self, dev: u64, ino: u64) -> u64 {
        self.written.get(&FileKey { dev, ino }, 0).unwrap_or(0)
    }

    /// Sum over CPUs of each counter of `STATS`.
    /// Each session's evidence, summed over the CPUs, by session cgroup id.
    pub fn session_evidence(&self) -> Vec<(u64, SessionStats)> {
        self.session_stats
            .iter()
            .filter_map(Result::ok)
            .map(|(id, per_cpu)| {
                let mut sum = SessionStats::default();
                for s in per_cpu.iter() {
                    sum.add(s);
                }
                (id, sum)
            })
            .collect()
    }

    pub fn counters(&self) -> Vec<u64> {
        (0..agent_common::policy::stats::COUNT)
            .map(|i| self.stats.get(&i, 0).map(|v| v.iter().sum()).unwrap_or(0))
            .collect()
    }
}

fn typed<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, LoadError>
where
    T: TryFrom<Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(LoadError::MissingMap(name))?;
    T::try_from(map).map_err(|source| LoadError::Map { name, source })
}

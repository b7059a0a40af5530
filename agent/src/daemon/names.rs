//! What the daemon knows about each installed policy generation, for turning events into
//! records a person can read.

use std::{path::Path, sync::Arc};

use serde::{Deserialize, Serialize};

use crate::events::decode::Names;

/// An agent group as installed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupInfo {
    pub name: String,
    /// Path inside the cgroup v2 hierarchy.
    pub cgroup: String,
    pub id: u64,
    pub monitor: bool,
    /// Uids of the accounts judged as this group's wherever they run.
    #[serde(default)]
    pub accounts: Vec<u32>,
    /// The guards the group opted out of (policy `permit:`).
    #[serde(default)]
    pub permit: Vec<String>,
}

/// Names of one installed generation.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GenNames {
    /// Rule ids by index (rule number - 1).
    pub rules: Vec<String>,
    /// Groups by index (group id - 1).
    pub groups: Vec<GroupInfo>,
    pub files: Vec<String>,
    /// A path naming each binary, by binary id - 1 (events name the original of a copy).
    #[serde(default)]
    pub binaries: Vec<String>,
}

/// Both generations (events in flight may carry the previous one).
#[derive(Clone, Debug, Default)]
pub struct Generations {
    pub active: u32,
    pub by_generation: [Option<Arc<GenNames>>; 2],
}

/// Where the names of generation `g` are kept, so that a restarted daemon can still name
/// the rules of events the kernel queued under the previous daemon's policy.
fn file(state_dir: &Path, g: u32) -> std::path::PathBuf {
    state_dir.join(format!("generation-{}.json", g & 1))
}

impl Generations {
    /// The names a previous daemon installed (missing or unreadable files are skipped).
    pub fn load(state_dir: &Path, active: u32) -> Self {
        let mut g = Generations {
            active: active & 1,
            ..Default::default()
        };
        for n in 0..2u32 {
            if let Ok(text) = std::fs::read_to_string(file(state_dir, n)) {
                match serde_json::from_str::<GenNames>(&text) {
                    Ok(names) => g.by_generation[n as usize] = Some(Arc::new(names)),
                    Err(e) => {
                        tracing::warn!(error = %e, generation = n, "ignoring unreadable generation names")
                    }
                }
            }
        }
        g
    }

    /// Records the names of a newly installed generation.
    pub fn save(state_dir: &Path, generation: u32, names: &GenNames) -> std::io::Result<()> {
        std::fs::create_dir_all(state_dir)?;
        let path = file(state_dir, generation);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(names).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, path)
    }

    pub fn current(&self) -> Option<&Arc<GenNames>> {
        self.by_generation[(self.active & 1) as usize].as_ref()
    }

    fn of(&self, generation: u32) -> Option<&Arc<GenNames>> {
        self.by_generation[(generation & 1) as usize].as_ref()
    }

    /// The group with this id in `generation`.
    pub fn group_info(&self, generation: u32, group: u32) -> Option<&GroupInfo> {
        self.of(generation)?
            .groups
            .get((group as usize).checked_sub(1)?)
    }
}

impl Names for Generations {
    fn rule(&self, generation: u32, rule: u32) -> Option<String> {
        if rule == agent_common::policy::AGENT_WRITTEN_RULE {
            return Some(agent_common::policy::AGENT_WRITTEN_RULE_ID.to_owned());
        }
        self.of(generation)?
            .rules
            .get((rule as usize).checked_sub(1)?)
            .cloned()
    }

    fn group(&self, generation: u32, group: u32) -> Option<String> {
        self.group_info(generation, group).map(|g| g.name.clone())
    }

    fn binary(&self, generation: u32, binary: u32) -> Option<String> {
        self.of(generation)?
            .binaries
            .get((binary as usize).checked_sub(1)?)
            .cloned()
    }
}

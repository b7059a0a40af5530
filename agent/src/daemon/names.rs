//! What the daemon knows about each installed policy generation, for turning events into
//! records a person can read.

use std::sync::Arc;

use crate::events::decode::Names;

/// An agent group as installed.
#[derive(Clone, Debug)]
pub struct GroupInfo {
    pub name: String,
    /// Path inside the cgroup v2 hierarchy.
    pub cgroup: String,
    pub id: u64,
    pub monitor: bool,
}

/// Names of one installed generation.
#[derive(Clone, Debug, Default)]
pub struct GenNames {
    /// Rule ids by index (rule number - 1).
    pub rules: Vec<String>,
    /// Groups by index (group id - 1).
    pub groups: Vec<GroupInfo>,
    pub files: Vec<String>,
}

/// Both generations (events in flight may carry the previous one).
#[derive(Clone, Debug, Default)]
pub struct Generations {
    pub active: u32,
    pub by_generation: [Option<Arc<GenNames>>; 2],
}

impl Generations {
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
        self.of(generation)?
            .rules
            .get((rule as usize).checked_sub(1)?)
            .cloned()
    }

    fn group(&self, generation: u32, group: u32) -> Option<String> {
        self.group_info(generation, group).map(|g| g.name.clone())
    }
}

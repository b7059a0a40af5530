//! Finding agent groups and rules by name.

use crate::{
    error::GroupLookupError,
    model::{AgentGroup, Policy, Rule},
};

impl Policy {
    /// The agent group of that name.
    pub fn group(&self, name: &str) -> Option<&AgentGroup> {
        self.agents.iter().find(|a| a.name == name)
    }

    /// The group named, or the only group when none is named (CLI `--agent`).
    pub fn pick_group(&self, name: Option<&str>) -> Result<&AgentGroup, GroupLookupError> {
        let known = || {
            self.agents
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (name, self.agents.as_slice()) {
            (Some(n), _) => self.group(n).ok_or_else(|| GroupLookupError::Unknown {
                name: n.to_owned(),
                known: known(),
            }),
            (None, [only]) => Ok(only),
            (None, []) => Err(GroupLookupError::Empty),
            (None, _) => Err(GroupLookupError::Ambiguous { known: known() }),
        }
    }

    /// The rule with that id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

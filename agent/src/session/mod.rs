//! Agent sessions: the child cgroups of an agent group that one agent runs in.
//!
//! - [`launch`]: `countersign-agent launch`, which starts a command in a session's cgroup;
//! - [`registry`]: who launched each session (kept in the state directory);
//! - here: which session a process belongs to, from its cgroup path (the session is the first
//!   path component below the agent group's cgroup), and the cgroup a session's grants are
//!   scoped to. This is the only way the agent socket learns who is asking; nothing the
//!   caller sends can change it.

pub mod account;
pub mod environment;
pub mod launch;
pub mod registry;

pub use registry::Registry;

/// An agent group as the socket needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupCgroup {
    pub name: String,
    /// Path inside the cgroup v2 hierarchy, e.g. `/countersign/coding-agents`.
    pub cgroup: String,
}

/// The caller's agent group and session.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub group: String,
    /// Empty for a process directly in the group's cgroup (not launched into a session).
    pub session: String,
}

impl SessionKey {
    pub fn new(group: impl Into<String>, session: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            session: session.into(),
        }
    }
}

impl std::fmt::Display for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.session.is_empty() {
            write!(f, "{} (no session)", self.group)
        } else {
            write!(f, "{}/{}", self.group, self.session)
        }
    }
}

/// The session of a process in cgroup `path` (as `/proc/PID/cgroup` writes it), or None when
/// it is in no agent group. With nested groups the deepest (most specific) group wins, as in
/// the kernel, which judges a process by the nearest watched ancestor.
pub fn locate(groups: &[GroupCgroup], path: &str) -> Option<SessionKey> {
    let path = path.trim_end_matches(" (deleted)");
    groups
        .iter()
        .filter_map(|g| {
            let base = g.cgroup.trim_end_matches('/');
            let rest = if base.is_empty() {
                // A group at the root of the hierarchy: every process is in it.
                Some(path)
            } else {
                path.strip_prefix(base)
            }?;
            let session = if rest.is_empty() {
                ""
            } else {
                rest.strip_prefix('/')?
                    .split('/')
                    .next()
                    .unwrap_or_default()
            };
            Some((base.len(), SessionKey::new(&g.name, session)))
        })
        .max_by_key(|(depth, _)| *depth)
        .map(|(_, key)| key)
}

/// The cgroup (relative path) a grant for `key` is scoped to: the session's, or the group's
/// when the session is empty.
pub fn scope_cgroup(group_cgroup: &str, session: &str) -> String {
    let base = group_cgroup.trim_end_matches('/');
    if session.is_empty() {
        if base.is_empty() {
            "/".to_owned()
        } else {
            base.to_owned()
        }
    } else {
        format!("{base}/{session}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Vec<GroupCgroup> {
        vec![
            GroupCgroup {
                name: "coding".into(),
                cgroup: "/countersign/coding".into(),
            },
            GroupCgroup {
                name: "ops".into(),
                cgroup: "/countersign/ops/".into(),
            },
            GroupCgroup {
                name: "inner".into(),
                cgroup: "/countersign/ops/s9/inner".into(),
            },
        ]
    }

    #[test]
    fn sessions_are_the_first_component_below_the_group() {
        let g = groups();
        assert_eq!(
            locate(&g, "/countersign/coding/s-1-2"),
            Some(SessionKey::new("coding", "s-1-2"))
        );
        assert_eq!(
            locate(&g, "/countersign/coding/s-1-2/docker/abc"),
            Some(SessionKey::new("coding", "s-1-2"))
        );
        assert_eq!(
            locate(&g, "/countersign/coding"),
            Some(SessionKey::new("coding", ""))
        );
        assert_eq!(
            locate(&g, "/countersign/ops/dev"),
            Some(SessionKey::new("ops", "dev"))
        );
    }

    #[test]
    fn lookalike_prefixes_are_not_inside() {
        let g = groups();
        assert_eq!(locate(&g, "/countersign/coding-other/s1"), None);
        assert_eq!(locate(&g, "/countersign/codin"), None);
        assert_eq!(locate(&g, "/"), None);
        assert_eq!(locate(&g, "/user.slice/user-0.slice"), None);
        assert_eq!(locate(&g, ""), None);
    }

    #[test]
    fn the_nearest_group_wins() {
        let g = groups();
        assert_eq!(
            locate(&g, "/countersign/ops/s9/inner/s2/x"),
            Some(SessionKey::new("inner", "s2"))
        );
        assert_eq!(
            locate(&g, "/countersign/ops/s9/x"),
            Some(SessionKey::new("ops", "s9"))
        );
    }

    #[test]
    fn deleted_cgroups_keep_their_session() {
        assert_eq!(
            locate(&groups(), "/countersign/coding/s1 (deleted)"),
            Some(SessionKey::new("coding", "s1"))
        );
    }

    #[test]
    fn grant_scopes() {
        assert_eq!(scope_cgroup("/a/b", "s1"), "/a/b/s1");
        assert_eq!(scope_cgroup("/a/b/", ""), "/a/b");
        assert_eq!(scope_cgroup("/", ""), "/");
        assert_eq!(scope_cgroup("/", "s"), "/s");
    }
}

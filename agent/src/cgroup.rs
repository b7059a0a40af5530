//! cgroup v2 hierarchy: mount point, ids, levels, sessions.

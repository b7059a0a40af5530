//! The benchmark policy: one agent group whose defaults allow, and 100 rules (60 exec, 40
//! network) that the workloads never match, so the hooks do their full lookup work and then
//! let everything through.

use std::{
    fmt::Write as _,
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

/// Exec rules in the policy.
pub const EXEC_RULES: usize = 60;
/// Network rules in the policy.
pub const NETWORK_RULES: usize = 40;
/// Decoy files the suite creates for exec rules (binaries that exist in every environment).
const DECOYS: usize = 12;

/// Binaries that exist on a typical Debian host (not in the VM's busybox userland, where
/// rules naming them are ignored, as on any host that lacks them).
const SYSTEM_BINARIES: &[&str] = &[
    "/usr/bin/ssh",
    "/usr/bin/scp",
    "/usr/bin/curl",
    "/usr/bin/wget",
    "/usr/bin/git",
    "/usr/bin/python3",
    "/usr/bin/perl",
    "/usr/bin/rsync",
    "/usr/bin/sudo",
    "/usr/bin/apt-get",
    "/usr/bin/dpkg",
    "/usr/bin/tar",
    "/usr/bin/dd",
    "/usr/bin/openssl",
    "/usr/bin/systemctl",
    "/usr/bin/kubectl",
    "/usr/bin/docker",
    "/usr/bin/nc",
];

/// Argument patterns cycled through the exec rules (`a|b` alternatives, `*` wildcards).
const ARG_PATTERNS: &[&str] = &[
    r#"["delete|apply|scale", "*"]"#,
    r#"["push", "--force|-f"]"#,
    r#"["-c", "*"]"#,
    r#"["install|remove|purge"]"#,
    r#"["*", "*", "--yes"]"#,
];

/// Inputs of [`write`].
pub struct Spec<'a> {
    /// Agent group name.
    pub group: &'a str,
    /// The group's cgroup (path inside the hierarchy).
    pub cgroup: &'a str,
    /// Where decoy binaries are created.
    pub decoy_dir: &'a Path,
    /// Files the workloads run (`/bin/true`, cs-bench itself): no rule may name them, also
    /// not through a link (in the VM every busybox applet is the same file as `/bin/true`).
    pub spared: &'a [PathBuf],
}

/// Creates the decoys and returns the policy YAML.
pub fn write(spec: &Spec<'_>) -> Result<String, String> {
    fs::create_dir_all(spec.decoy_dir)
        .map_err(|e| format!("creating {}: {e}", spec.decoy_dir.display()))?;
    let mut binaries: Vec<String> = Vec::new();
    for i in 0..DECOYS {
        let path = spec.decoy_dir.join(format!("tool-{i:02}"));
        // The policy only needs a regular file to resolve; nothing ever runs it.
        fs::write(&path, b"#!/bin/sh\nexit 0\n")
            .map_err(|e| format!("creating {}: {e}", path.display()))?;
        binaries.push(path.to_string_lossy().into_owned());
    }
    let spared: Vec<(u64, u64)> = spec.spared.iter().filter_map(|p| identity(p)).collect();
    binaries.extend(
        SYSTEM_BINARIES
            .iter()
            .filter(|p| identity(Path::new(p)).is_none_or(|id| !spared.contains(&id)))
            .map(|p| (*p).to_owned()),
    );
    let mut missing = 0;
    while binaries.len() < EXEC_RULES {
        binaries.push(format!("/opt/cs-bench-missing/tool-{missing:02}"));
        missing += 1;
    }
    Ok(yaml(spec, &binaries))
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn yaml(spec: &Spec<'_>, binaries: &[String]) -> String {
    let mut y = format!(
        "version: 1\nagents:\n  - name: {}\n    cgroup: {}\n    \
         default: {{ exec: allow, network: allow }}\n    monitor: false\nrules:\n",
        spec.group, spec.cgroup
    );
    for (i, binary) in binaries.iter().take(EXEC_RULES).enumerate() {
        let args = ARG_PATTERNS[i % ARG_PATTERNS.len()];
        let action = if i % 4 == 3 { "audit" } else { "deny" };
        let _ = write!(
            y,
            "  - id: exec-{i:02}\n    exec:\n      binary: [{binary}]\n      args: {args}\n"
        );
        // Some rules only apply under a given parent, as real policies do for interpreters.
        if i % 7 == 0 {
            y.push_str("      parent: [/usr/bin/python3, /usr/bin/node]\n");
        }
        let _ = writeln!(y, "    action: {action}");
    }
    for i in 0..NETWORK_RULES {
        let _ = write!(y, "  - id: net-{i:02}\n    network: {}\n", network(i));
        let action = if i % 5 == 4 { "audit" } else { "deny" };
        let _ = writeln!(y, "    action: {action}");
    }
    y
}

/// Network rule `i`: other private ranges and documentation prefixes, IPv6 too, and a few
/// loopback rules on privileged ports (the listener's port is ephemeral, so never matched).
fn network(i: usize) -> String {
    match i % 5 {
        0 => format!("{{ cidr: [10.{i}.0.0/16], ports: [5432, \"8000-8100\"], protocol: tcp }}"),
        1 => format!("{{ cidr: [\"fd00:{i:x}::/32\"], ports: [443], protocol: any }}"),
        2 => format!("{{ cidr: [192.168.{i}.0/24, 198.51.100.{i}/32], protocol: udp }}"),
        3 => format!(
            "{{ cidr: [127.0.0.0/8], ports: [\"{}-1023\"], protocol: tcp }}",
            1 + i
        ),
        _ => format!(
            "{{ cidr: [172.{}.0.0/16], ports: [22, 3306, 6379] }}",
            16 + i % 16
        ),
    }
}

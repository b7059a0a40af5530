//! The VM's `/init`: prepares the kernel interfaces the agent uses, runs one command with
//! the given environment, reports its exit code on the console and powers off.

use anyhow::{bail, Result};

/// The line `/init` prints after the command, followed by its exit code.
pub const RESULT_MARKER: &str = "COUNTERSIGN-VM-RESULT: ";

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The `/init` shell script: mounts, then `env` exported, `cmd` run, its exit code printed
/// after [`RESULT_MARKER`], and the VM powered off.
pub fn script(env: &[(String, String)], cmd: &[String]) -> Result<String> {
    let mut s = String::from(INIT_PROLOGUE);
    for (key, value) in env {
        let valid = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && key.chars().next().is_some_and(|c| !c.is_ascii_digit());
        if !valid {
            bail!("invalid environment variable name {key:?}");
        }
        s.push_str(&format!("export {key}={}\n", sh_quote(value)));
    }
    if cmd.is_empty() {
        bail!("no command given for the VM");
    }
    let words: Vec<String> = cmd.iter().map(|w| sh_quote(w)).collect();
    s.push_str(&format!(
        "set -- {}\n\"$@\"\nrc=$?\necho\necho \"{RESULT_MARKER}$rc\"\npoweroff -f\n",
        words.join(" ")
    ));
    Ok(s)
}

const INIT_PROLOGUE: &str = r#"#!/bin/sh
export PATH=/bin:/sbin HOME=/root
# The firmware leaves the cursor mid-line; start the command output on a line of its own.
echo
try() { "$@" || echo "init: '$*' failed"; }
try mount -t proc proc /proc
try mount -t sysfs sysfs /sys
try mount -t devtmpfs devtmpfs /dev
try mount -t securityfs securityfs /sys/kernel/security
try mount -t cgroup2 cgroup2 /sys/fs/cgroup
try mount -t bpf bpf /sys/fs/bpf
# tracefs has its own mount point since 4.1; older setups only reach it through debugfs.
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || try mount -t debugfs debugfs /sys/kernel/debug
try mount -t tmpfs tmpfs /tmp
# Modules of the booted kernel that the tests need (loop devices, btrfs, overlayfs), named so
# that name order loads every dependency first.
for m in /lib/modules/*.ko; do [ -e "$m" ] && try insmod "$m"; done
try mount -t tmpfs tmpfs /run
try ip link set lo up
cd /tmp
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_arguments_and_env() {
        let env = [("A_B".to_owned(), "it's".to_owned())];
        let cmd = ["sh", "-c", "echo $x"].map(String::from);
        let init = script(&env, &cmd).expect("script");
        assert!(init.contains(r"export A_B='it'\''s'"));
        assert!(init.contains("set -- 'sh' '-c' 'echo $x'"));
    }

    #[test]
    fn rejects_bad_env_names() {
        let env = [("1X".to_owned(), String::new())];
        assert!(script(&env, &["true".to_owned()]).is_err());
    }
}

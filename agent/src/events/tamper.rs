//! What a tamper event's numbers mean, in words (`agent_common::tamper`).

use agent_common::{
    event::Event,
    tamper::{capability, cgroup_dir, delegator, magic, socket, syscall, Tamper},
};

use super::{decode::c_string, record::TamperAttempt};

/// The attempt a tamper event reports; None for an attempt this build does not know.
pub fn attempt(e: &Event) -> Option<TamperAttempt> {
    let what = Tamper::from_u32(e.detail)?;
    let name = || c_string(&e.path);
    let target = match what {
        Tamper::CgroupMove | Tamper::CgroupWrite => format!("{} of cgroup {}", name(), e.ino),
        Tamper::CloneIntoCgroup => format!("clone flags {:#x}", e.dev),
        Tamper::Mount | Tamper::Unmount => match magic::name(e.ino) {
            Some(fs) => format!("{fs} file system"),
            // Fallback mode kills on entry to umount2(), before the mount is known.
            None if e.ino == 0 => "a file system (not known on entry to umount2)".to_owned(),
            None => format!("file system with magic {:#x}", e.ino),
        },
        Tamper::Bpf => format!("bpf command {}", bpf_command(e.ino)),
        Tamper::Signal if e.ino == syscall::EVERY_PROCESS => {
            format!("every process (pid -1), signal {}", e.dev)
        }
        // Fallback mode: `pidfd_open` of the daemon, the handle a signal would be sent through.
        Tamper::Signal if e.dev == 0 => format!("pid {} (the daemon), through a pidfd", e.ino),
        Tamper::Signal => format!("pid {} (the daemon), signal {}", e.ino, e.dev),
        Tamper::Ptrace => format!("pid {} (the daemon), access mode {:#x}", e.ino, e.dev),
        Tamper::KernelLoad => format!(
            "{} from {}",
            kernel_load(e.ino),
            if e.dev == 0 { "a file" } else { "memory" }
        ),
        Tamper::RawSocket => format!(
            "{} socket, type {}, protocol {}",
            match e.family {
                socket::AF_INET => "IPv4".to_owned(),
                socket::AF_INET6 => "IPv6".to_owned(),
                socket::AF_PACKET => "packet".to_owned(),
                f => format!("family {f}"),
            },
            match e.dev as u16 {
                socket::SOCK_RAW => "raw".to_owned(),
                socket::SOCK_DGRAM => "datagram".to_owned(),
                socket::SOCK_PACKET => "packet".to_owned(),
                t => t.to_string(),
            },
            e.protocol
        ),
        Tamper::PinRemoval => format!("{} (inode {}) on a bpf file system", name(), e.ino),
        Tamper::EnforcerFile => format!(
            "{} (device {}:{}, inode {}): the daemon's",
            name(),
            e.dev >> 20,
            e.dev & 0xfffff,
            e.ino
        ),
        Tamper::Capability => match capability::name(e.ino) {
            Some(cap) => cap.to_owned(),
            None => format!("capability {}", e.ino),
        },
        Tamper::CgroupDir if e.dev == cgroup_dir::CREATE => {
            format!("create {} in cgroup {}", name(), e.ino)
        }
        Tamper::CgroupDir => format!("remove {} from cgroup {}", name(), e.ino),
        Tamper::Delegator if e.dev == delegator::ABSTRACT => {
            format!("unix socket @{} (abstract)", name())
        }
        Tamper::Delegator if e.dev == delegator::SPOOL => {
            format!("{} in a cron or at spool (inode {})", name(), e.ino)
        }
        Tamper::Delegator => format!("unix socket {}", name()),
        Tamper::Loader => format!(
            "{} (device {}:{}, inode {}) mapped executable: {}",
            name(),
            e.dev >> 20,
            e.dev & 0xfffff,
            e.ino,
            if e.protocol == agent_common::tamper::loader::WRITTEN {
                "a file a session wrote, by the dynamic loader run as a program"
            } else {
                "a binary exec rules guard"
            }
        ),
        Tamper::IoUring => format!(
            "an io_uring of {} entries (fallback mode cannot mark the files it writes)",
            e.ino
        ),
    };
    Some(TamperAttempt { what, target })
}

/// uapi `enum bpf_cmd`, as far as 6.12.
fn bpf_command(cmd: u64) -> String {
    const NAMES: &[&str] = &[
        "BPF_MAP_CREATE",
        "BPF_MAP_LOOKUP_ELEM",
        "BPF_MAP_UPDATE_ELEM",
        "BPF_MAP_DELETE_ELEM",
        "BPF_MAP_GET_NEXT_KEY",
        "BPF_PROG_LOAD",
        "BPF_OBJ_PIN",
        "BPF_OBJ_GET",
        "BPF_PROG_ATTACH",
        "BPF_PROG_DETACH",
        "BPF_PROG_TEST_RUN",
        "BPF_PROG_GET_NEXT_ID",
        "BPF_MAP_GET_NEXT_ID",
        "BPF_PROG_GET_FD_BY_ID",
        "BPF_MAP_GET_FD_BY_ID",
        "BPF_OBJ_GET_INFO_BY_FD",
        "BPF_PROG_QUERY",
        "BPF_RAW_TRACEPOINT_OPEN",
        "BPF_BTF_LOAD",
        "BPF_BTF_GET_FD_BY_ID",
        "BPF_TASK_FD_QUERY",
        "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
        "BPF_MAP_FREEZE",
        "BPF_BTF_GET_NEXT_ID",
        "BPF_MAP_LOOKUP_BATCH",
        "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
        "BPF_MAP_UPDATE_BATCH",
        "BPF_MAP_DELETE_BATCH",
        "BPF_LINK_CREATE",
        "BPF_LINK_UPDATE",
        "BPF_LINK_GET_FD_BY_ID",
        "BPF_LINK_GET_NEXT_ID",
        "BPF_ENABLE_STATS",
        "BPF_ITER_CREATE",
        "BPF_LINK_DETACH",
        "BPF_PROG_BIND_MAP",
        "BPF_TOKEN_CREATE",
    ];
    usize::try_from(cmd)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| cmd.to_string(), |n| (*n).to_owned())
}

/// `enum kernel_read_file_id` / `kernel_load_data_id` (the same order since 5.10).
fn kernel_load(id: u64) -> String {
    match id {
        1 => "firmware".into(),
        2 => "kernel module".into(),
        3 => "kexec image".into(),
        4 => "kexec initramfs".into(),
        5 => "security policy".into(),
        6 => "X.509 certificate".into(),
        i => format!("kernel data {i}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::decode::tests::event;

    #[test]
    fn every_attempt_reads_as_words() {
        let mut e = event();
        e.detail = Tamper::Signal as u32;
        e.ino = 812;
        e.dev = 9;
        assert_eq!(
            attempt(&e).expect("a known attempt").target,
            "pid 812 (the daemon), signal 9"
        );
        e.detail = Tamper::Bpf as u32;
        e.ino = 2;
        assert_eq!(
            attempt(&e).expect("a known attempt").target,
            "bpf command BPF_MAP_UPDATE_ELEM"
        );
        e.detail = Tamper::Unmount as u32;
        e.ino = magic::BPF_FS;
        assert_eq!(
            attempt(&e).expect("a known attempt").target,
            "bpf file system"
        );
        e.detail = Tamper::RawSocket as u32;
        e.family = 17;
        e.dev = 3;
        e.protocol = 768;
        assert_eq!(
            attempt(&e).expect("a known attempt").target,
            "packet socket, type raw, protocol 768"
        );
        e.detail = Tamper::CgroupMove as u32;
        e.ino = 1;
        e.path[..13].copy_from_slice(b"cgroup.procs\0");
        assert_eq!(
            attempt(&e).expect("a known attempt").target,
            "cgroup.procs of cgroup 1"
        );
        e.detail = Tamper::EnforcerFile as u32;
        e.dev = (254 << 20) | 1;
        e.ino = 77;
        e.path[..13].copy_from_slice(b"events.jsonl\0");
        assert_eq!(
            attempt(&e).expect("a known attempt").target,
            "events.jsonl (device 254:1, inode 77): the daemon's"
        );
        e.detail = Tamper::Capability as u32;
        e.ino = 22;
        assert_eq!(attempt(&e).expect("a known attempt").target, "CAP_SYS_BOOT");
        e.detail = Tamper::Delegator as u32;
        e.dev = 0;
        e.path[..17].copy_from_slice(b"/run/docker.sock\0");
        assert_eq!(
            attempt(&e).expect("a known attempt").target,
            "unix socket /run/docker.sock"
        );
        e.detail = Tamper::CgroupDir as u32;
        e.dev = cgroup_dir::REMOVE;
        e.ino = 1;
        e.path[..11].copy_from_slice(b"ai-agents\0\0");
        assert_eq!(
            attempt(&e).expect("a known attempt").target,
            "remove ai-agents from cgroup 1"
        );
        e.detail = 99;
        assert_eq!(attempt(&e), None);
    }
}

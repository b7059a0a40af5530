//! Which enforcement mode the running kernel allows: BPF LSM (exec refused with EPERM) or
//! the tracepoint fallback (exec killed before the new image runs).

use std::path::Path;

use agent_common::Mode;

use super::btf::VMLINUX_BTF;

/// The active LSMs, in order (securityfs).
pub const LSM_LIST: &str = "/sys/kernel/security/lsm";

/// What the operator asked for with `--mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeChoice {
    /// BPF LSM when the kernel offers it, else the fallback.
    #[default]
    Auto,
    /// BPF LSM or nothing: refuse to start without it.
    Lsm,
    /// The tracepoint fallback, even where BPF LSM would work.
    Fallback,
}

/// What [`detect`] found, and why, in words an operator can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModeReport {
    pub lsm_possible: bool,
    pub reason: String,
}

/// `--mode lsm` on a kernel that cannot do it.
#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    #[error("BPF LSM mode was requested but is not possible: {reason}")]
    LsmUnavailable { reason: String },
}

/// Whether BPF LSM can be used here: `bpf` among the active LSMs and the kernel's BTF
/// present (LSM programs attach through BTF). Loading can still fail (e.g. lockdown gives
/// EPERM); the loader falls back then when the choice was `auto`.
pub fn detect() -> ModeReport {
    detect_at(Path::new(LSM_LIST), Path::new(VMLINUX_BTF))
}

/// [`detect`] on other paths (tests, or a chroot).
pub fn detect_at(lsm_list: &Path, btf: &Path) -> ModeReport {
    let mut missing = Vec::new();
    let active = match std::fs::read_to_string(lsm_list) {
        Ok(list) => {
            let list = list.trim().to_owned();
            if !list.split(',').any(|lsm| lsm == "bpf") {
                missing.push(format!(
                    "the kernel's active LSMs ({list}) do not include bpf: boot with lsm={list},bpf \
                     (the kernel also needs CONFIG_BPF_LSM=y)"
                ));
            }
            Some(list)
        }
        Err(e) => {
            missing.push(format!(
                "cannot read {} ({e}): securityfs is not mounted or the kernel has no LSM support",
                lsm_list.display()
            ));
            None
        }
    };
    if !btf.exists() {
        missing.push(format!(
            "{} does not exist: the kernel was built without CONFIG_DEBUG_INFO_BTF",
            btf.display()
        ));
    }
    match (missing.is_empty(), active) {
        (true, Some(list)) => ModeReport {
            lsm_possible: true,
            reason: format!("bpf is an active LSM ({list}) and the kernel has BTF"),
        },
        _ => ModeReport {
            lsm_possible: false,
            reason: missing.join("; "),
        },
    }
}

/// The mode to run in, given the operator's choice and what the kernel offers.
pub fn choose(choice: ModeChoice, report: &ModeReport) -> Result<Mode, ModeError> {
    match choice {
        ModeChoice::Auto if report.lsm_possible => Ok(Mode::Lsm),
        ModeChoice::Auto | ModeChoice::Fallback => Ok(Mode::Fallback),
        ModeChoice::Lsm if report.lsm_possible => Ok(Mode::Lsm),
        ModeChoice::Lsm => Err(ModeError::LsmUnavailable {
            reason: report.reason.clone(),
        }),
    }
}

/// The running kernel's release (`uname -r`), e.g. `6.1.0-28-cloud-amd64`.
pub fn kernel_release() -> String {
    // SAFETY: `utsname` is plain old data, all zeroes is a valid value, and uname(2) only
    // writes NUL-terminated strings into the buffer we own.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return "unknown".to_owned();
    }
    let bytes: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_for(lsm: Option<&str>, btf: bool) -> ModeReport {
        let dir =
            std::env::temp_dir().join(format!("cs-mode-{}-{lsm:?}-{btf}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (list, vmlinux) = (dir.join("lsm"), dir.join("vmlinux"));
        let _ = std::fs::remove_file(&list);
        let _ = std::fs::remove_file(&vmlinux);
        if let Some(lsm) = lsm {
            std::fs::write(&list, lsm).expect("write lsm");
        }
        if btf {
            std::fs::write(&vmlinux, b"").expect("write btf");
        }
        let report = detect_at(&list, &vmlinux);
        std::fs::remove_dir_all(&dir).expect("clean up");
        report
    }

    #[test]
    fn bpf_lsm_and_btf_make_lsm_possible() {
        let r = report_for(Some("lockdown,capability,landlock,yama,bpf\n"), true);
        assert!(r.lsm_possible, "{}", r.reason);
        assert_eq!(choose(ModeChoice::Auto, &r).expect("auto"), Mode::Lsm);
        assert_eq!(choose(ModeChoice::Lsm, &r).expect("lsm"), Mode::Lsm);
        assert_eq!(
            choose(ModeChoice::Fallback, &r).expect("fallback"),
            Mode::Fallback
        );
    }

    #[test]
    fn missing_pieces_are_named() {
        let r = report_for(Some("landlock,lockdown,yama"), true);
        assert!(!r.lsm_possible);
        assert!(r.reason.starts_with(
            "the kernel's active LSMs (landlock,lockdown,yama) do not include bpf: boot with lsm=landlock,lockdown,yama,bpf"
        ), "{}", r.reason);
        let err = choose(ModeChoice::Lsm, &r)
            .expect_err("lsm impossible")
            .to_string();
        assert!(err.starts_with(
            "BPF LSM mode was requested but is not possible: the kernel's active LSMs"
        ));
        assert_eq!(choose(ModeChoice::Auto, &r).expect("auto"), Mode::Fallback);

        let r = report_for(None, false);
        assert!(!r.lsm_possible);
        assert!(
            r.reason.contains("securityfs is not mounted"),
            "{}",
            r.reason
        );
        assert!(r.reason.contains("CONFIG_DEBUG_INFO_BTF"), "{}", r.reason);
        // "bpf" must be a whole entry, not a substring of another LSM's name.
        assert!(!report_for(Some("bpfish"), true).lsm_possible);
    }

    #[test]
    fn host_detection_runs() {
        let r = detect();
        eprintln!(
            "host: kernel {}, lsm possible: {} ({})",
            kernel_release(),
            r.lsm_possible,
            r.reason
        );
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
        assert_eq!(kernel_release(), release.trim());
    }
}

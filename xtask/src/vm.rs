//! `cargo xtask vm`: boots a Debian kernel under qemu (TCG: KVM does not work on our
//! machines) with a busybox initramfs, runs one command and reports its exit code.

use std::{
    fs,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use crate::{
    init::RESULT_MARKER,
    initramfs,
    kernels::{self, Series},
    lockup, qemu, util,
};

/// A guest that prints nothing for this long is stuck (no test is silent that long; a
/// lockup the kernel itself reports ends the run much sooner).
const SILENCE: Duration = Duration::from_secs(600);
/// How long a guest that reported a lockup may go on printing (its stacks, its panic).
const LOCKUP_GRACE: Duration = Duration::from_secs(60);

/// Kernel console lines that mean the kernel itself broke, whatever the command reported.
const KERNEL_FAILURES: &[&str] = &[
    "Kernel panic",
    "BUG: ",
    "Oops: ",
    "general protection fault",
    "Call Trace:",
];

/// One VM run.
pub struct Vm {
    /// Kernel series to boot.
    pub series: Series,
    /// Put `bpf` in `lsm=` (BPF LSM available) or leave it out.
    pub bpf_lsm: bool,
    /// What to put in the initramfs and run.
    pub spec: initramfs::Spec,
    /// Kill the VM after this long.
    pub timeout: Duration,
}

/// What a VM run produced.
pub struct Outcome {
    /// Every console line.
    pub lines: Vec<String>,
    /// Why the run failed, `None` when the command exited 0 and the kernel stayed healthy.
    pub failure: Option<String>,
    /// The guest stopped making progress: it reported a lockup, fell silent or timed out.
    pub hung: bool,
}

impl Vm {
    /// A short label for logs: `6.1` or `6.1-nolsm`.
    pub fn label(&self) -> String {
        if self.bpf_lsm {
            self.series.to_string()
        } else {
            format!("{}-nolsm", self.series)
        }
    }

    /// Builds the initramfs, boots, streams the console and judges the run.
    pub fn run(&self) -> Result<Outcome> {
        let kernel = kernels::ensure(self.series)?;
        let dir = util::cache_dir("vm");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Per process: two runs at once (two developers, two terminals) must not share it.
        let initrd: PathBuf = dir.join(format!(
            "initramfs-{}-{}.cpio.gz",
            self.label(),
            std::process::id()
        ));
        initramfs::build(&self.spec, &kernel.modules, &initrd)?;
        let size = fs::metadata(&initrd).map(|m| m.len()).unwrap_or(0);
        println!(
            "vm: {} ({:.1} MiB)",
            initrd.display(),
            size as f64 / 1048576.0
        );
        let lsm = if self.bpf_lsm {
            "landlock,lockdown,yama,bpf"
        } else {
            "landlock,lockdown,yama"
        };
        let mut qemu = Command::new("qemu-system-x86_64");
        qemu.args([
            "-accel",
            &qemu::accel()?,
            "-cpu",
            "max",
            "-m",
            "1536",
            "-smp",
            "2",
        ])
        // No network card: nothing to probe for (iPXE) and nothing to reach.
        .args(["-nographic", "-no-reboot", "-net", "none", "-kernel"])
        .arg(&kernel.image)
        .arg("-initrd")
        .arg(&initrd)
        .arg("-append")
        .arg(format!(
            "console=ttyS0 {} panic=-1 {} lsm={lsm}",
            console_level(),
            lockup::BOOT_OPTIONS
        ));
        let started = Instant::now();
        let watch = util::Watch {
            alarm: &lockup::is_report,
            grace: LOCKUP_GRACE,
            silence: SILENCE,
        };
        let teed = util::run_tee_watched(
            &mut qemu,
            &format!("[{}] ", self.label()),
            self.timeout,
            Some(&watch),
        );
        let _ = fs::remove_file(&initrd);
        let teed = teed?;
        println!(
            "vm: {} finished in {:.1}s",
            self.label(),
            started.elapsed().as_secs_f64()
        );
        let lockup = lockup::summary(&teed.lines);
        let hung = teed.timed_out || teed.stopped.is_some() || lockup.is_some();
        let failure = judge(&teed, lockup, self.timeout);
        Ok(Outcome {
            lines: teed.lines,
            failure,
            hung,
        })
    }
}

/// Why the run failed; `lockup` is [`lockup::summary`] of its console.
fn judge(teed: &util::Teed, lockup: Option<String>, timeout: Duration) -> Option<String> {
    // First: a lockup is the most specific diagnosis of a run that also timed out, died or
    // printed `BUG:`.
    if let Some(stacks) = lockup {
        return Some(format!("the guest kernel locked up:\n  {stacks}"));
    }
    if let Some(why) = &teed.stopped {
        return Some(format!("the VM was stopped: {why}"));
    }
    let broken: Vec<&str> = teed
        .lines
        .iter()
        .filter(|l| KERNEL_FAILURES.iter().any(|k| l.contains(k)))
        .map(String::as_str)
        .collect();
    if !broken.is_empty() {
        return Some(format!(
            "the kernel reported a failure:\n  {}",
            broken.join("\n  ")
        ));
    }
    if teed.timed_out {
        return Some(format!("timed out after {}s", timeout.as_secs()));
    }
    let rc = teed.lines.iter().rev().find_map(|l| {
        let (_, rest) = l.split_once(RESULT_MARKER)?;
        rest.trim().parse::<i32>().ok()
    });
    match (rc, teed.code) {
        (Some(0), _) => None,
        (Some(rc), _) => Some(format!("the command exited with {rc}")),
        (None, code) => Some(format!(
            "no `{}` line: the VM died (qemu exit {code:?})",
            RESULT_MARKER.trim()
        )),
    }
}

/// `cargo xtask vm`: runs the VM and fails unless the command succeeded.
pub fn run_cli(vm: &Vm) -> Result<()> {
    let outcome = vm.run()?;
    if let Some(why) = outcome.failure {
        bail!("VM {}: {why}", vm.label());
    }
    println!("vm: {}: passed", vm.label());
    Ok(())
}

/// `quiet`, or with `COUNTERSIGN_VM_VERBOSE=1` every kernel message on the console (stack
/// traces of lockups and warnings included: they interleave with the tests' output).
fn console_level() -> &'static str {
    if std::env::var("COUNTERSIGN_VM_VERBOSE").is_ok_and(|v| v == "1") {
        "loglevel=7"
    } else {
        "quiet"
    }
}

//! A guest kernel that stopped making progress: the console lines that say so, the boot
//! options that make the kernel say it quickly and with stacks, and the stacks worth quoting
//! in the failure (docs/testing.md, "A VM that hangs").

/// Kernel command-line options for test VMs: a soft lockup (a CPU that has not scheduled for
/// 20 s) panics the guest after printing every CPU's stack, and the panic replays the whole
/// kernel log (so the stacks show even under `quiet`, which hides their log level). The VM
/// then powers off at once (`panic=-1` with qemu's `-no-reboot`) instead of spinning until
/// the run's timeout.
pub const BOOT_OPTIONS: &str = "softlockup_panic=1 softlockup_all_cpu_backtrace=1 panic_print=0x20";

/// Console lines in which the guest kernel reports a CPU, or RCU, that stopped making progress.
const REPORTS: &[&str] = &[
    "BUG: soft lockup",
    "hard LOCKUP",
    "self-detected stall on CPU",
    "detected stalls on CPUs",
    "rcu_sched detected stall",
    "rcu_preempt detected stall",
];

/// Whether `line` is a lockup or RCU-stall report.
pub fn is_report(line: &str) -> bool {
    REPORTS.iter().any(|r| line.contains(r))
}

/// The longest quote of stack lines in a failure message (the console has them all).
const MAX_STACK_LINES: usize = 80;

/// The first report and the stack lines after it (`RIP:`, `CPU:`, frames such as
/// `syscall_trace_enter+0xed/0x1d0`), for the failure message; `None` without a report.
pub fn summary(lines: &[String]) -> Option<String> {
    let first = lines.iter().position(|l| is_report(l))?;
    let mut out = vec![lines[first].trim().to_owned()];
    out.extend(
        lines[first + 1..]
            .iter()
            .map(|l| l.trim())
            .filter(|l| is_stack_line(l) || is_report(l))
            .take(MAX_STACK_LINES)
            .map(str::to_owned),
    );
    Some(out.join("\n  "))
}

fn is_stack_line(line: &str) -> bool {
    // Kernel log lines start with a timestamp only when printk.time is on; look past it.
    let body = line.rsplit_once("] ").map_or(line, |(_, b)| b).trim_start();
    let frame = body.strip_prefix("? ").unwrap_or(body);
    body.starts_with("RIP:")
        || body.starts_with("CPU:")
        || body.starts_with("NMI backtrace")
        || body.starts_with("Sending NMI")
        || (frame.contains("+0x") && frame.contains('/') && !frame.contains(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_soft_lockup_is_summarised_with_its_stacks() {
        let console = lines(
            "test grants::one_use ... \n\
             [   62.1] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [countersign-age:201]\n\
             [   62.1] Modules linked in:\n\
             [   62.1] CPU: 1 PID: 201 Comm: countersign-age Not tainted 5.10.0-33-cloud-amd64 #1\n\
             [   62.1] RIP: 0010:syscall_trace_enter.constprop.0+0xed/0x1d0\n\
             [   62.1] Code: 48 8b 45 00 a8 01 75 0e\n\
             [   62.1] Call Trace:\n\
             [   62.1]  do_syscall_64+0x3b/0xc0\n\
             [   62.1]  ? entry_SYSCALL_64_after_hwframe+0x61/0xc6\n",
        );
        let s = summary(&console).expect("a report");
        assert!(
            s.starts_with("[   62.1] watchdog: BUG: soft lockup - CPU#1"),
            "{s}"
        );
        assert!(
            s.contains("RIP: 0010:syscall_trace_enter.constprop.0+0xed/0x1d0"),
            "{s}"
        );
        assert!(s.contains("do_syscall_64+0x3b/0xc0"), "{s}");
        assert!(s.contains("entry_SYSCALL_64_after_hwframe"), "{s}");
        assert!(!s.contains("Code:") && !s.contains("Modules"), "{s}");
    }

    #[test]
    fn rcu_stalls_are_reports_and_test_output_is_not() {
        assert!(is_report("rcu: INFO: rcu_sched self-detected stall on CPU"));
        assert!(is_report(
            "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"
        ));
        assert!(!is_report("test lockup::soft_lockup_is_reported ... ok"));
        assert!(summary(&lines("test a ... ok\ntest b ... FAILED\n")).is_none());
    }
}

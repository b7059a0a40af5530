//! CPU time of the server and of this client during the timed upload: on a machine whose
//! cores everything shares, they tell whether the server was busy (CPU-bound) or waiting
//! (disk, locks), and how much of the machine the synthetic daemons took.

use std::{fs, path::Path, time::Duration};

/// The pid of the `countersign-server` whose command line names `data_dir`.
pub fn server_pid(data_dir: &Path) -> Option<u32> {
    let needle = data_dir.to_string_lossy().into_owned();
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_server = args
            .first()
            .is_some_and(|a| a.ends_with("countersign-server"));
        (is_server && args.contains(&needle)).then_some(pid)
    })
}

/// User + system CPU time of process `pid` so far (all its threads).
pub fn process(pid: u32) -> Option<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count the fields after its `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after `)` and the state.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(from_ticks(ticks))
}

/// User + system CPU time of this process so far (all its threads).
pub fn own() -> Duration {
    // SAFETY: a zeroed rusage is a valid out-buffer for getrusage.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer; RUSAGE_SELF has no other precondition.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn from_ticks(ticks: u64) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0).unwrap_or(100);
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_times() {
        // Burn a little CPU so that the clock-tick counters move.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(own() > Duration::ZERO);
        assert!(process(std::process::id()).is_some());
        assert_eq!(server_pid(Path::new("/nonexistent/cs-loop")), None);
    }
}

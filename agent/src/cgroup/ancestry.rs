//! A process's ancestors, for event enrichment. Processes come and go while we read them:
//! the chain simply stops where one has vanished.

use procfs::process::Process;

/// One process of a chain, as an event reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ParentInfo {
    pub pid: u32,
    pub comm: String,
    /// Path of its executable; `None` when unreadable (kernel thread, exited, no permission).
    pub exe: Option<String>,
}

/// Process `first` and its ancestors, nearest first, at most `max` entries: pass an event's
/// ppid to get its `parents` (the event's own process may already be gone, e.g. killed).
/// Stops early where a process has vanished; empty when `first` itself is gone.
pub fn parent_chain(first: u32, max: usize) -> Vec<ParentInfo> {
    let mut chain = Vec::new();
    let mut next = first;
    while chain.len() < max && next > 0 {
        let Some((info, ppid)) = describe(next) else {
            break;
        };
        chain.push(info);
        next = ppid;
    }
    chain
}

/// A process and its parent's pid (0 for the top of the pid namespace).
fn describe(pid: u32) -> Option<(ParentInfo, u32)> {
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;
    let stat = process.stat().ok()?;
    let exe = process.exe().ok().map(|p| p.to_string_lossy().into_owned());
    let ppid = u32::try_from(stat.ppid).unwrap_or(0);
    Some((
        ParentInfo {
            pid,
            comm: stat.comm,
            exe,
        },
        ppid,
    ))
}

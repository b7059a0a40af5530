//! What the reports of cs-loop share: the markers `cargo xtask bench` cuts them out by and a
//! line on the machine the figures come from (the verdicts are `tests::bench::report`).

/// Line printed before a report.
pub const BEGIN: &str = "<!-- cs-loop report -->";
/// Line printed after a report.
pub const END: &str = "<!-- end of cs-loop report -->";

/// `Linux 6.18.0, 2 CPUs, load average 3.10 before the run`: the load matters on a shared
/// 2-core machine, where every other process competes with the server for the same cores.
pub fn machine(load_before: &str) -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "Linux {}, {cpus} CPUs, load average {load_before} before the run",
        kernel.trim()
    )
}

/// The 1-minute load average now (`?` when unknown).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// Prints `body` between the markers.
pub fn print(body: &str) {
    println!("{BEGIN}\n{}\n{END}", body.trim_end());
}

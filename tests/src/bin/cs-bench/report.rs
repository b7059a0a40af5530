//! Turning the rounds into the markdown report: medians per configuration, the overheads
//! against the baseline with their targets, and how noisy the rounds were.

use std::fmt::Write as _;

/// Line printed before the report (`cargo xtask bench` cuts the report out of the output).
pub const BEGIN: &str = "<!-- cs-bench report -->";
/// Line printed after the report.
pub const END: &str = "<!-- end of cs-bench report -->";

/// Target overhead inside a watched cgroup, in percent.
const WATCHED_TARGET: f64 = 5.0;

/// The samples (ns/op, one per round) of one workload.
#[derive(Default)]
pub struct Samples {
    /// What was run, e.g. `exec-loop (fork+execve /bin/true)`.
    pub label: String,
    /// Operations per round.
    pub ops: u64,
    /// (a) before the agent started.
    pub before: Vec<u64>,
    /// (a) after the agent was unloaded.
    pub after: Vec<u64>,
    /// (b) agent loaded, workload outside every watched cgroup.
    pub outside: Vec<u64>,
    /// (c) agent loaded, workload inside the watched cgroup.
    pub watched: Vec<u64>,
}

impl Samples {
    fn baseline(&self) -> Vec<u64> {
        [&self.before[..], &self.after[..]].concat()
    }
}

/// What the report says about the run besides the numbers.
pub struct Context {
    /// `host` or `vm`.
    pub env: String,
    /// `fallback` or `lsm`.
    pub mode: String,
    pub rounds: usize,
    /// One line on the hooks' own counters (did they really judge the watched operations?).
    pub counters: String,
}

/// Median of `v` (mean of the middle two for an even count); 0 for no samples.
pub fn median(v: &[u64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2] as f64,
        n => (s[n / 2 - 1] as f64 + s[n / 2] as f64) / 2.0,
    }
}

/// Spread of `v` around its median: (max − min) / 2 / median, in percent.
fn spread(v: &[u64]) -> f64 {
    let (Some(min), Some(max)) = (v.iter().min(), v.iter().max()) else {
        return 0.0;
    };
    let m = median(v);
    if m == 0.0 {
        return 0.0;
    }
    (max - min) as f64 / 2.0 / m * 100.0
}

fn overhead(x: f64, base: f64) -> f64 {
    if base == 0.0 {
        return 0.0;
    }
    (x / base - 1.0) * 100.0
}

/// The markdown report.
pub fn markdown(ctx: &Context, workloads: &[Samples]) -> String {
    let mut r = String::new();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let _ = writeln!(
        r,
        "## Hook overhead: {} ({} mode)\n\nLinux {}, {cpus} CPUs, median of {} rounds per \
         configuration ({} baseline rounds: half before the agent started, half after it was \
         unloaded). Policy: 100 rules (60 exec, 40 network), none matching the workloads; \
         group defaults allow.\n",
        ctx.env,
        ctx.mode,
        kernel.trim(),
        ctx.rounds,
        2 * ctx.rounds
    );
    r.push_str(
        "| workload | ops/round | (a) no agent ns/op | (b) agent, unwatched ns/op \
         | (c) agent, watched ns/op | b/a | c/a |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for w in workloads {
        let a = median(&w.baseline());
        let (b, c) = (median(&w.outside), median(&w.watched));
        let _ = writeln!(
            r,
            "| {} | {} | {a:.0} | {b:.0} | {c:.0} | {:+.1} % | {:+.1} % |",
            w.label,
            w.ops,
            overhead(b, a),
            overhead(c, a)
        );
    }
    let _ = writeln!(
        r,
        "\nTargets: c/a ≤ {WATCHED_TARGET:.0} % (inside a watched cgroup); b/a not measurable \
         (within the baseline's noise).\n"
    );
    r.push_str(
        "| workload | watched: c/a ≤ 5 % | unwatched: b/a within noise | noise a / b / c \
         | a before → after |\n|---|---|---|---|---|\n",
    );
    for w in workloads {
        let base = w.baseline();
        let a = median(&base);
        let (b, c) = (median(&w.outside), median(&w.watched));
        let noise = spread(&base);
        let c_ok = overhead(c, a) <= WATCHED_TARGET;
        let b_ok = overhead(b, a) <= noise;
        let _ = writeln!(
            r,
            "| {} | {} | {} | ±{noise:.1} % / ±{:.1} % / ±{:.1} % | {:.0} → {:.0} ({:+.1} %) |",
            w.label,
            verdict(c_ok),
            verdict(b_ok),
            spread(&w.outside),
            spread(&w.watched),
            median(&w.before),
            median(&w.after),
            overhead(median(&w.after), median(&w.before))
        );
    }
    let _ = writeln!(
        r,
        "\nNoise: (max − min) / 2 / median of the rounds. {}",
        ctx.counters
    );
    r
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_spread() {
        assert_eq!(median(&[3, 1, 2]), 2.0);
        assert_eq!(median(&[4, 1, 2, 3]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert!((spread(&[90, 100, 110]) - 10.0).abs() < 1e-9);
        assert!((overhead(105.0, 100.0) - 5.0).abs() < 1e-9);
    }
}

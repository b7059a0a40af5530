//! Turning the rounds into the markdown report: medians per configuration, the overheads
//! against the baseline with their targets, and how noisy the rounds were.

use std::fmt::Write as _;

// `::tests`: the harness crate, not the unit-test module below.
use ::tests::bench::{report::verdict, stats::median as median_f};

/// Line printed before the report (`cargo xtask bench` cuts the report out of the output).
pub const BEGIN: &str = "<!-- cs-bench report -->";
/// Line printed after the report.
pub const END: &str = "<!-- end of cs-bench report -->";

/// Default target overhead inside a watched cgroup, in percent.
const WATCHED_TARGET: f64 = 5.0;

/// What a workload may cost inside a watched cgroup, against the baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// At most this many percent more per operation (paired ratio).
    Percent(f64),
    /// At most this many milliseconds more per operation (difference of the medians).
    ExtraMs(f64),
}

impl Default for Target {
    fn default() -> Self {
        Self::Percent(WATCHED_TARGET)
    }
}

impl Target {
    /// Whether `w`'s watched runs met the target.
    fn met(self, w: &Samples) -> bool {
        match self {
            Self::Percent(p) => median_f(&w.paired(&w.watched)) <= p,
            Self::ExtraMs(ms) => median(&w.watched) - median(&w.baseline()) <= ms * 1e6,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Percent(p) => write!(f, "c/a ≤ {p:.0} %"),
            Self::ExtraMs(ms) => write!(f, "c − a ≤ {ms:.0} ms"),
        }
    }
}

/// The samples (ns/op, one per round) of one workload.
#[derive(Default)]
pub struct Samples {
    /// What was run, e.g. `exec-loop (fork+execve /bin/true)`.
    pub label: String,
    /// Operations per round.
    pub ops: u64,
    /// What the watched runs may cost.
    pub target: Target,
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

    /// Overhead of each round of `v` (in percent) against the same round's baseline.
    fn paired(&self, v: &[u64]) -> Vec<f64> {
        v.iter()
            .zip(self.before.iter().zip(&self.after))
            .map(|(&x, (&a1, &a2))| overhead(x as f64, (a1 as f64 + a2 as f64) / 2.0))
            .collect()
    }
}

/// What the report says about the run besides the numbers.
pub struct Context {
    /// `host` or `vm`.
    pub env: String,
    /// `fallback` or `lsm`.
    pub mode: String,
    pub rounds: usize,
    /// The CPU the workloads were pinned to.
    pub cpu: usize,
    /// One line on the hooks' own counters (did they really judge the watched operations?).
    pub counters: String,
}

/// Median of `v` (mean of the middle two for an even count); 0 for no samples.
pub fn median(v: &[u64]) -> f64 {
    median_f(&v.iter().map(|&x| x as f64).collect::<Vec<_>>())
}

/// (max − min) / 2 of `v`, in the unit of `v`.
fn half_range(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    if v.is_empty() {
        0.0
    } else {
        (max - min) / 2.0
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
        "## Hook overhead: {} ({} mode)\n\nLinux {}, {cpus} CPUs, workloads pinned to CPU {}. \
         {} rounds, each: (a) without the agent, agent loaded, (b) and (c) alternating, agent \
         unloaded, (a) again; medians over the rounds. Policy: 100 rules (60 exec, 40 network), none matching the \
         workloads; group defaults allow.\n",
        ctx.env,
        ctx.mode,
        kernel.trim(),
        ctx.cpu,
        ctx.rounds,
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
        "\nTargets: each workload's own, inside a watched cgroup (c against a); b/a not \
         measurable (within the baseline's noise).\n"
    );
    r.push_str(
        "| workload | b/a paired | c/a paired | c − a | watched target | unwatched: b/a within \
         noise | noise a / b / c | a before → after the agent |\n\
         |---|---:|---:|---:|---|---|---|---|\n",
    );
    for w in workloads {
        let (pb, pc) = (w.paired(&w.outside), w.paired(&w.watched));
        let (b, c) = (median_f(&pb), median_f(&pc));
        // Within noise: the rounds' own ratios straddle zero at least as widely as b sits.
        let b_ok = b <= half_range(&pb);
        let extra_ms = (median(&w.watched) - median(&w.baseline())) / 1e6;
        let _ = writeln!(
            r,
            "| {} | {b:+.1} % ±{:.1} | {c:+.1} % ±{:.1} | {extra_ms:+.3} ms | {}: {} | {} \
             | ±{:.1} % / ±{:.1} % / ±{:.1} % | {:.0} → {:.0} ({:+.1} %) |",
            w.label,
            half_range(&pb),
            half_range(&pc),
            w.target,
            verdict(w.target.met(w)),
            verdict(b_ok),
            spread(&w.baseline()),
            spread(&w.outside),
            spread(&w.watched),
            median(&w.before),
            median(&w.after),
            overhead(median(&w.after), median(&w.before))
        );
    }
    let _ = writeln!(
        r,
        "\nPaired: the median over the rounds of each round's ratio to its own baseline (the \
         mean of its two (a) runs), ± half the range of those ratios; it cancels drift between \
         rounds and decides the verdicts. Noise: (max − min) / 2 / median of the rounds. {}\n",
        ctx.counters
    );
    rounds(&mut r, workloads);
    r
}

/// Every sample, in round order, folded away: for judging the noise and the drift.
fn rounds(r: &mut String, workloads: &[Samples]) {
    r.push_str("<details><summary>Every round (ns/op)</summary>\n\n");
    r.push_str("| workload | configuration | rounds |\n|---|---|---|\n");
    for w in workloads {
        for (config, v) in [
            ("(a) before", &w.before),
            ("(b) unwatched", &w.outside),
            ("(c) watched", &w.watched),
            ("(a) after", &w.after),
        ] {
            let list: Vec<String> = v.iter().map(u64::to_string).collect();
            let _ = writeln!(r, "| {} | {config} | {} |", w.label, list.join(" "));
        }
    }
    r.push_str("\n</details>\n");
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
        assert!((half_range(&[-1.0, 3.0, 0.5]) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn paired_ratios_use_the_rounds_own_baseline() {
        let s = Samples {
            before: vec![100, 200],
            after: vec![100, 220],
            watched: vec![105, 231],
            ..Samples::default()
        };
        let p = s.paired(&s.watched);
        assert!((p[0] - 5.0).abs() < 1e-9 && (p[1] - 10.0).abs() < 1e-9);
        // Paired median 7.5 %: over a 5 % target, under a 10 % one.
        assert!(!Target::Percent(5.0).met(&s));
        assert!(Target::Percent(10.0).met(&s));
    }

    #[test]
    fn absolute_targets_compare_the_medians() {
        let s = Samples {
            before: vec![10_000_000, 10_000_000],
            after: vec![10_000_000, 10_000_000],
            watched: vec![40_000_000, 70_000_000],
            ..Samples::default()
        };
        // Watched median 55 ms against 10 ms: 45 ms extra.
        assert!(Target::ExtraMs(50.0).met(&s));
        assert!(!Target::ExtraMs(40.0).met(&s));
    }
}

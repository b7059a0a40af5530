//! `cs-bench suite`: the whole benchmark in one process, the same on the host and in a VM.
//!
//! Every round brackets the agent with baseline runs: (a) without the agent, then the agent
//! is loaded and runs outside (b) and inside (c) the watched cgroup alternate (their order
//! flipping every round), then the agent is unloaded and (a) runs again. Whatever else the
//! machine does drifts slowly compared with a round, so it hits every configuration alike.

use std::{
    path::Path,
    process::{Command, Stdio},
};

use tests::bench::{cli, interrupt, Failure};

use crate::{
    report::{self, Context, Samples, Target},
    workload::RESULT_PREFIX,
};

/// The interpreter of the mmap-heavy start-up workload (where it exists).
pub const PYTHON: &str = "/usr/bin/python3";
/// What it imports: modules with C extensions (each one an `mmap` with `PROT_EXEC`).
const PYTHON_IMPORTS: &str = "import json, email.mime.text, http.client, decimal, asyncio, \
     sqlite3, ssl, xml.etree.ElementTree, unittest, argparse, csv, hashlib, zipfile, logging, \
     ctypes, select, socket, struct, math, datetime";

/// Exec of a file no agent wrote (the system's binaries, libraries mapped by a loader).
const UNMARKED_EXEC_TARGET: f64 = 2.0;
/// First exec of a file an agent wrote: its content is checked once.
const FIRST_WRITTEN_EXEC_EXTRA_MS: f64 = 50.0;
/// Later execs of the same unchanged agent-written file.
const REPEATED_WRITTEN_EXEC_TARGET: f64 = 1.0;

mod options;
mod world;

pub use options::Options;
use world::World;

/// One workload: its command line and its samples.
struct Workload {
    args: Vec<String>,
    samples: Samples,
}

/// `suite …`: parses the options, runs, prints the report between the markers.
pub fn cmd(args: &[String]) -> Result<(), Failure> {
    let opts = options::parse(args)?;
    cli::require_root("the suite")?;
    // The workloads keep the default actions: Ctrl-C kills the running one, its failure ends
    // the suite, and the suite cleans up.
    interrupt::install();
    let mut world = World::new(&opts)?;
    let result = run(&opts, &mut world);
    let problems = world.clean_up(result.is_err());
    let text = result?;
    if !problems.is_empty() {
        return Err(Failure::Run(format!("cleanup: {}", problems.join("; "))));
    }
    println!("{}\n{text}{}", report::BEGIN, report::END);
    Ok(())
}

fn run(opts: &Options, world: &mut World) -> Result<String, String> {
    let mut workloads = workloads(opts);
    let r = opts.rounds;
    warm_up(world, &workloads, false)?;
    let mut judged = (0, 0);
    for round in 0..r {
        progress(&format!("round {}/{r}", round + 1));
        baseline(world, &mut workloads, |s| &mut s.before)?;
        world.start_agent()?;
        warm_up(world, &workloads, true)?;
        for w in &mut workloads {
            // Alternating the order cancels any effect of going first.
            for watched in [round % 2 == 1, round % 2 == 0] {
                let ns = measure(world, &w.args, watched)?;
                let slot = if watched {
                    &mut w.samples.watched
                } else {
                    &mut w.samples.outside
                };
                slot.push(ns);
            }
        }
        let (execs, connects) = world.check_counters(opts.exec_ops, opts.connect_ops)?;
        judged = (judged.0 + execs, judged.1 + connects);
        world.stop_agent()?;
        baseline(world, &mut workloads, |s| &mut s.after)?;
    }
    let ctx = Context {
        env: opts.env.clone(),
        mode: opts.mode.as_str().to_owned(),
        rounds: r,
        cpu: world.cpu(),
        counters: format!(
            "The hooks judged {} execs and {} connects in the watched cgroup (at least {} and \
             {} expected) and refused none.",
            judged.0,
            judged.1,
            r as u64 * opts.exec_ops,
            r as u64 * opts.connect_ops
        ),
    };
    let samples: Vec<Samples> = workloads.into_iter().map(|w| w.samples).collect();
    Ok(report::markdown(&ctx, &samples))
}

/// The workloads of this environment, each with its target.
fn workloads(opts: &Options) -> Vec<Workload> {
    let exec_ops = opts.exec_ops.to_string();
    let mut all = vec![Workload::new(
        "exec-loop (fork+execve /bin/true)",
        opts.exec_ops,
        Target::Percent(UNMARKED_EXEC_TARGET),
        &["exec-loop", &exec_ops],
    )];
    if Path::new(PYTHON).exists() {
        all.push(Workload::new(
            "python3 start-up importing 20 stdlib modules (mmap-heavy)",
            opts.python_ops,
            Target::Percent(UNMARKED_EXEC_TARGET),
            &[
                "exec-loop",
                &opts.python_ops.to_string(),
                PYTHON,
                "-c",
                PYTHON_IMPORTS,
            ],
        ));
    } else {
        progress(&format!(
            "no python3 start-up workload: {PYTHON} does not exist here (the VM's busybox \
             userland has none)"
        ));
    }
    for (size, name) in [(1u64 << 20, "1 MB"), (50 << 20, "50 MB")] {
        let bytes = size.to_string();
        all.push(Workload::new(
            &format!("agent-written {name} binary, first exec"),
            opts.written_ops,
            Target::ExtraMs(FIRST_WRITTEN_EXEC_EXTRA_MS),
            &[
                "exec-written",
                &opts.written_ops.to_string(),
                &bytes,
                "first",
            ],
        ));
        let repeat = (opts.exec_ops / 4).max(1);
        all.push(Workload::new(
            &format!("agent-written {name} binary, repeated exec"),
            repeat,
            Target::Percent(REPEATED_WRITTEN_EXEC_TARGET),
            &["exec-written", &repeat.to_string(), &bytes, "repeat"],
        ));
    }
    all.push(Workload::new(
        "connect-loop (TCP, loopback)",
        opts.connect_ops,
        Target::default(),
        &[
            "connect-loop",
            &opts.connect_ops.to_string(),
            "127.0.0.1",
            "0",
        ],
    ));
    all.push(Workload::new(
        "file-loop (write, open, stat, rename, truncate, unlink)",
        opts.file_ops,
        Target::default(),
        &["file-loop", &opts.file_ops.to_string()],
    ));
    all
}

impl Workload {
    fn new(label: &str, ops: u64, target: Target, args: &[&str]) -> Self {
        Self {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            samples: Samples {
                label: label.to_owned(),
                ops,
                target,
                ..Samples::default()
            },
        }
    }
}

/// One baseline run of each workload (unwatched cgroup, no agent), stored where `slot` says.
fn baseline(
    world: &World,
    workloads: &mut [Workload],
    slot: fn(&mut Samples) -> &mut Vec<u64>,
) -> Result<(), String> {
    for w in workloads.iter_mut() {
        let ns = measure(world, &w.args, false)?;
        slot(&mut w.samples).push(ns);
    }
    Ok(())
}

/// One short unmeasured run per configuration: page cache, map entries, lazy allocations.
fn warm_up(world: &World, workloads: &[Workload], with_watched: bool) -> Result<(), String> {
    for w in workloads {
        let mut args = w.args.clone();
        if let Some(n) = args.get_mut(1) {
            *n = (w.samples.ops / 10).max(10).to_string();
        }
        measure(world, &args, false)?;
        if with_watched {
            measure(world, &args, true)?;
        }
    }
    Ok(())
}

/// Runs `cs-bench ARGS…` in the watched or the unwatched cgroup and returns its ns/op.
fn measure(world: &World, args: &[String], watched: bool) -> Result<u64, String> {
    interrupt::check()?;
    let mut cmd: Command = world.command(watched);
    cmd.args(args).stdin(Stdio::null()).stderr(Stdio::inherit());
    let what = format!("cs-bench {}", args.join(" "));
    let out = cmd
        .output()
        .map_err(|e| format!("starting `{what}`: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("`{what}` failed ({}): {stdout}", out.status));
    }
    let ns = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX)?.trim().parse().ok())
        .ok_or_else(|| format!("`{what}` printed no {RESULT_PREFIX} line: {stdout}"))?;
    let cgroup = if watched { "watched" } else { "unwatched" };
    progress(&format!("  {what} ({cgroup}): {ns} ns/op"));
    Ok(ns)
}

fn progress(msg: &str) {
    eprintln!("cs-bench: {msg}");
}

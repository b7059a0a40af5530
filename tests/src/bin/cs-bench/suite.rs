//! `cs-bench suite`: the whole benchmark in one process, the same on the host and in a VM.
//!
//! Loading the agent takes seconds (minutes under emulation), so it is loaded once: baseline
//! rounds (a) run before it starts and again after it is unloaded, and while it runs, rounds
//! outside (b) and inside (c) the watched cgroup alternate, their order flipping every round,
//! so that drift of the machine hits every configuration alike.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use tests::env::Mode;

use crate::{
    parse_num,
    report::{self, Context, Samples},
    workload::RESULT_PREFIX,
    Failure,
};

mod world;

use world::World;

/// Set by SIGINT/SIGTERM/SIGHUP: the suite stops after the current run and cleans up.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Options of `suite`.
pub struct Options {
    /// Path of `countersign-agent`.
    pub agent: PathBuf,
    /// Mode forced on the daemon (and expected in its status).
    pub mode: Mode,
    /// `host` or `vm`, for the report.
    pub env: String,
    pub rounds: usize,
    pub exec_ops: u64,
    pub connect_ops: u64,
    /// How long the daemon may take to become ready.
    pub ready_timeout: Duration,
}

/// One workload: its command line and its samples.
struct Workload {
    args: Vec<String>,
    samples: Samples,
}

/// `suite …`: parses the options, runs, prints the report between the markers.
pub fn cmd(args: &[String]) -> Result<(), Failure> {
    let opts = parse(args)?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Failure::Run(
            "the suite needs root (BPF programs, cgroups)".into(),
        ));
    }
    install_signal_handlers();
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

fn parse(args: &[String]) -> Result<Options, Failure> {
    let mut agent = None;
    let mut mode = None;
    let mut env = None;
    let mut rounds = None;
    let mut exec_ops = None;
    let mut connect_ops = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next();
        let missing = || Failure::Usage(format!("{flag} needs a value"));
        match flag.as_str() {
            "--agent" => agent = Some(PathBuf::from(value.ok_or_else(missing)?)),
            "--mode" => mode = Some(value.ok_or_else(missing)?.clone()),
            "--env" => env = Some(value.ok_or_else(missing)?.clone()),
            "--rounds" => rounds = Some(parse_num::<usize>(flag, value)?),
            "--exec-ops" => exec_ops = Some(parse_num::<u64>(flag, value)?),
            "--connect-ops" => connect_ops = Some(parse_num::<u64>(flag, value)?),
            _ => return Err(Failure::Usage(format!("suite: unknown option {flag}"))),
        }
    }
    let agent = agent.ok_or_else(|| Failure::Usage("suite: --agent PATH is required".into()))?;
    let mode = match mode.as_deref() {
        Some("lsm") => Mode::Lsm,
        Some("fallback") => Mode::Fallback,
        _ => return Err(Failure::Usage("suite: --mode lsm|fallback".into())),
    };
    let env = env.unwrap_or_else(|| "host".into());
    // Under software emulation an exec costs milliseconds: fewer operations per round.
    let in_vm = env == "vm";
    Ok(Options {
        agent,
        mode,
        rounds: rounds.unwrap_or(7).max(1),
        exec_ops: exec_ops.unwrap_or(if in_vm { 200 } else { 2000 }),
        connect_ops: connect_ops.unwrap_or(if in_vm { 1000 } else { 5000 }),
        ready_timeout: Duration::from_secs(if in_vm { 300 } else { 60 }),
        env,
    })
}

fn run(opts: &Options, world: &mut World) -> Result<String, String> {
    let mut workloads = [
        Workload {
            args: vec!["exec-loop".into(), opts.exec_ops.to_string()],
            samples: Samples {
                label: "exec-loop (fork+execve /bin/true)".into(),
                ops: opts.exec_ops,
                ..Samples::default()
            },
        },
        Workload {
            args: [
                "connect-loop",
                &opts.connect_ops.to_string(),
                "127.0.0.1",
                "0",
            ]
            .map(String::from)
            .to_vec(),
            samples: Samples {
                label: "connect-loop (TCP, loopback)".into(),
                ops: opts.connect_ops,
                ..Samples::default()
            },
        },
    ];
    let r = opts.rounds;
    warm_up(world, &workloads, false)?;
    for round in 0..r {
        progress(&format!("baseline round {}/{r} (no agent)", round + 1));
        for w in &mut workloads {
            w.samples.before.push(measure(world, &w.args, false)?);
        }
    }
    world.start_agent()?;
    warm_up(world, &workloads, true)?;
    for round in 0..r {
        progress(&format!(
            "agent round {}/{r} (unwatched, watched)",
            round + 1
        ));
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
    }
    // The measured rounds alone are a lower bound of what the hooks must have judged.
    let counters = world.check_counters(r as u64 * opts.exec_ops, r as u64 * opts.connect_ops)?;
    world.stop_agent()?;
    for round in 0..r {
        progress(&format!(
            "baseline round {}/{r} (agent unloaded)",
            round + 1
        ));
        for w in &mut workloads {
            w.samples.after.push(measure(world, &w.args, false)?);
        }
    }
    let ctx = Context {
        env: opts.env.clone(),
        mode: opts.mode.as_str().to_owned(),
        rounds: r,
        counters,
    };
    let samples: Vec<Samples> = workloads.into_iter().map(|w| w.samples).collect();
    Ok(report::markdown(&ctx, &samples))
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
    if INTERRUPTED.load(Ordering::Relaxed) {
        return Err("interrupted".into());
    }
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
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX)?.trim().parse().ok())
        .ok_or_else(|| format!("`{what}` printed no {RESULT_PREFIX} line: {stdout}"))
}

fn progress(msg: &str) {
    eprintln!("cs-bench: {msg}");
}

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// The workload children keep the default actions (exec resets handlers): Ctrl-C kills the
/// running workload, its failure ends the suite, and the suite cleans up.
fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

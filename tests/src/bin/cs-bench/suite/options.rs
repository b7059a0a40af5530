//! The command line of `cs-bench suite`.

use std::{path::PathBuf, time::Duration};

use tests::{bench::Failure, env::Mode};

use crate::parse_num;

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
    pub file_ops: u64,
    /// Interpreter start-ups per round.
    pub python_ops: u64,
    /// Fresh agent-written binaries executed per round (each size).
    pub written_ops: u64,
    /// How long the daemon may take to become ready.
    pub ready_timeout: Duration,
}

/// Parses `suite`'s arguments; defaults depend on `--env` (the VM emulates its CPU).
pub fn parse(args: &[String]) -> Result<Options, Failure> {
    let mut agent = None;
    let mut mode = None;
    let mut env = None;
    let mut rounds = None;
    let mut exec_ops = None;
    let mut connect_ops = None;
    let mut file_ops = None;
    let mut python_ops = None;
    let mut written_ops = None;
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
            "--file-ops" => file_ops = Some(parse_num::<u64>(flag, value)?),
            "--python-ops" => python_ops = Some(parse_num::<u64>(flag, value)?),
            "--written-ops" => written_ops = Some(parse_num::<u64>(flag, value)?),
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
        exec_ops: exec_ops.unwrap_or(if in_vm { 400 } else { 2000 }),
        connect_ops: connect_ops.unwrap_or(if in_vm { 2000 } else { 5000 }),
        file_ops: file_ops.unwrap_or(if in_vm { 1000 } else { 10000 }),
        python_ops: python_ops.unwrap_or(20),
        written_ops: written_ops.unwrap_or(if in_vm { 3 } else { 8 }),
        ready_timeout: Duration::from_secs(if in_vm { 300 } else { 60 }),
        env,
    })
}

//! The command line shape both benchmark programs have: `PROGRAM SUBCOMMAND ARGS…`, and the
//! exit codes `cargo xtask bench` reads: 0 success, 1 the run failed, 2 bad usage.

use std::process::ExitCode;

/// Why a subcommand failed.
pub enum Failure {
    /// Bad command line: exit 2.
    Usage(String),
    /// The benchmark itself failed: exit 1.
    Run(String),
}

impl From<String> for Failure {
    /// The steps of a run report their trouble as a `String`; that is a failed run.
    fn from(msg: String) -> Self {
        Self::Run(msg)
    }
}

/// A subcommand: its name and what runs it on the arguments after that name.
pub type Subcommand = (&'static str, fn(&[String]) -> Result<(), Failure>);

/// Runs the subcommand the process's first argument names and turns its result into the exit
/// code; failures go to stderr prefixed with `program`.
pub fn main(program: &str, subcommands: &[Subcommand]) -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let rest = args.get(2..).unwrap_or_default();
    let wanted = args.get(1).map(String::as_str);
    let result = match subcommands.iter().find(|(name, _)| Some(*name) == wanted) {
        Some((_, cmd)) => cmd(rest),
        None => Err(Failure::Usage(format!(
            "unknown subcommand {wanted:?}: expected {}",
            one_of(subcommands)
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("{program}: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Run(msg)) => {
            eprintln!("{program}: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// An error unless this process runs as root, which loading BPF programs and creating
/// cgroups need; `what` names the run (`the suite`).
pub fn require_root(what: &str) -> Result<(), Failure> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        Ok(())
    } else {
        Err(Failure::Run(format!(
            "{what} needs root (BPF programs, cgroups)"
        )))
    }
}

/// The names as a sentence: `a, b or c`.
fn one_of(subcommands: &[Subcommand]) -> String {
    let names: Vec<&str> = subcommands.iter().map(|(name, _)| *name).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(_: &[String]) -> Result<(), Failure> {
        Ok(())
    }

    #[test]
    fn names_the_subcommands_as_a_sentence() {
        assert_eq!(one_of(&[]), "");
        assert_eq!(one_of(&[("suite", ok)]), "suite");
        assert_eq!(
            one_of(&[("exec-loop", ok), ("connect-loop", ok), ("suite", ok)]),
            "exec-loop, connect-loop or suite"
        );
    }
}

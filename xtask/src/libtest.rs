//! Running libtest binaries and reading their summary lines
//! (`test result: ok. 12 passed; 0 failed; 1 ignored; …`).

use std::{ops::AddAssign, process::Command, time::Duration};

use anyhow::Result;

use crate::util;

/// What one test run produced.
#[derive(Default)]
pub struct Run {
    /// Its summed summary lines.
    pub counts: Counts,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
}

/// Runs `cmd` (a test binary or `cargo test`), echoing its output with `prefix`.
pub fn run(cmd: &mut Command, prefix: &str, timeout: Duration) -> Result<Run> {
    let teed = util::run_tee(cmd, prefix, timeout)?;
    let failure = match teed.code {
        Some(0) => None,
        _ if teed.timed_out => Some(format!("timed out after {}s", timeout.as_secs())),
        Some(code) => Some(format!("exited with code {code}")),
        None => Some("killed by a signal".to_owned()),
    };
    Ok(Run {
        counts: sum(&teed.lines),
        failure,
    })
}

/// Test counts summed over summary lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests that were ignored.
    pub ignored: u64,
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Self) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
    }
}

/// Sums every summary line found in `lines` (a line may carry a prefix or colour codes).
pub fn sum<'a>(lines: impl IntoIterator<Item = &'a String>) -> Counts {
    let mut total = Counts::default();
    for line in lines {
        if let Some((_, rest)) = line.split_once("test result: ") {
            total += parse(rest);
        }
    }
    total
}

fn parse(summary: &str) -> Counts {
    let mut counts = Counts::default();
    let words: Vec<&str> = summary
        .split([' ', ';', '.'])
        .filter(|w| !w.is_empty())
        .collect();
    for pair in words.windows(2) {
        let Ok(n) = pair[0].parse::<u64>() else {
            continue;
        };
        match pair[1] {
            "passed" => counts.passed += n,
            "failed" => counts.failed += n,
            "ignored" => counts.ignored += n,
            _ => {}
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_summary_lines() {
        let lines = [
            "[6.1] test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 3.01s".to_owned(),
            "noise".to_owned(),
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out".to_owned(),
        ];
        assert_eq!(
            sum(&lines),
            Counts {
                passed: 15,
                failed: 2,
                ignored: 1
            }
        );
    }
}

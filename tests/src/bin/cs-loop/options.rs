//! Command-line flags of the subcommands: `--name value` pairs, each flag known in advance.

use std::{collections::HashMap, path::PathBuf, str::FromStr};

// `::tests`: the harness crate, not the unit-test module below.
use ::tests::bench::Failure;

/// The flags of one subcommand, parsed.
pub struct Flags {
    command: &'static str,
    values: HashMap<String, String>,
}

impl Flags {
    /// Parses `args` as `--flag value` pairs; every flag must be one of `known`.
    pub fn parse(command: &'static str, args: &[String], known: &[&str]) -> Result<Self, Failure> {
        let mut values = HashMap::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let name = flag
                .strip_prefix("--")
                .filter(|n| known.contains(n))
                .ok_or_else(|| Failure::Usage(format!("{command}: unknown option {flag}")))?;
            let value = it
                .next()
                .ok_or_else(|| Failure::Usage(format!("{command}: {flag} needs a value")))?;
            values.insert(name.to_owned(), value.clone());
        }
        Ok(Self { command, values })
    }

    /// The value of `--name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The path of `--name`, which must be given.
    pub fn path(&self, name: &str) -> Result<PathBuf, Failure> {
        self.get(name)
            .map(PathBuf::from)
            .ok_or_else(|| Failure::Usage(format!("{}: --{name} PATH is required", self.command)))
    }

    /// The number of `--name`, or `default`.
    pub fn num<T: FromStr>(&self, name: &str, default: T) -> Result<T, Failure> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                Failure::Usage(format!(
                    "{}: --{name} {v:?} is not a valid number",
                    self.command
                ))
            }),
        }
    }

    /// A comma-separated list of numbers (`1,4,16`), or `default`.
    pub fn list<T: FromStr + Clone>(&self, name: &str, default: &[T]) -> Result<Vec<T>, Failure> {
        let Some(v) = self.get(name) else {
            return Ok(default.to_vec());
        };
        v.split(',')
            .map(|p| {
                p.trim().parse().map_err(|_| {
                    Failure::Usage(format!(
                        "{}: --{name} {v:?}: {p:?} is not a valid number",
                        self.command
                    ))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_known_flags() {
        let f = Flags::parse("t", &args(&["--n", "3", "--l", "1,4"]), &["n", "l", "p"])
            .unwrap_or_else(|_| panic!("valid flags"));
        assert_eq!(f.num("n", 0_u32).ok(), Some(3));
        assert_eq!(f.num("p", 7_u32).ok(), Some(7));
        assert_eq!(f.list("l", &[9_u32]).ok(), Some(vec![1, 4]));
        assert!(f.path("p").is_err());
        assert!(Flags::parse("t", &args(&["--x", "1"]), &["n"]).is_err());
        assert!(Flags::parse("t", &args(&["--n"]), &["n"]).is_err());
    }
}

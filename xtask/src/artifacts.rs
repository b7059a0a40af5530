//! Building with cargo and finding the executables it produced from its JSON messages
//! (robust to the target directory and to the hash in test binary names).

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

/// One executable cargo reported.
pub struct Executable {
    /// Target name (`countersign-agent`, `enforcement`, …).
    pub name: String,
    /// Target kinds (`bin`, `test`, …).
    pub kinds: Vec<String>,
    /// Path of the executable.
    pub path: PathBuf,
}

/// Runs `cargo <args> --message-format=json-render-diagnostics` (diagnostics still reach the
/// terminal) and returns the executables it reported.
pub fn cargo_build(args: &[&str]) -> Result<Vec<Executable>> {
    let mut cargo = Command::new("cargo");
    cargo
        .args(args)
        .arg("--message-format=json-render-diagnostics");
    // An empty eBPF object would make every enforcement test fail for a confusing reason.
    cargo.env_remove("AYA_BUILD_SKIP");
    let what = crate::util::describe(&cargo);
    println!("    $ {what}");
    let out = cargo
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting `{what}`"))?;
    if !out.status.success() {
        bail!("`{what}` failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(parse)
        .collect())
}

fn parse(line: &str) -> Option<Executable> {
    let msg: Value = serde_json::from_str(line).ok()?;
    if msg["reason"] != "compiler-artifact" {
        return None;
    }
    let path = PathBuf::from(msg["executable"].as_str()?);
    let target = &msg["target"];
    let name = target["name"].as_str()?.to_owned();
    let kinds = target["kind"]
        .as_array()?
        .iter()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    Some(Executable { name, kinds, path })
}

/// The executable of target `name` of kind `kind` among `built`.
pub fn find(built: &[Executable], name: &str, kind: &str) -> Result<PathBuf> {
    built
        .iter()
        .find(|e| e.name == name && e.kinds.iter().any(|k| k == kind))
        .map(|e| e.path.clone())
        .with_context(|| format!("cargo built no {kind} target named `{name}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_executable() {
        let line = r#"{"reason":"compiler-artifact","target":{"name":"enforcement","kind":["test"]},"executable":"/t/enforcement-0a1b"}"#;
        let built: Vec<_> = [line, r#"{"reason":"build-finished","success":true}"#]
            .into_iter()
            .filter_map(parse)
            .collect();
        assert_eq!(
            find(&built, "enforcement", "test").expect("found"),
            PathBuf::from("/t/enforcement-0a1b")
        );
        assert!(find(&built, "enforcement", "bin").is_err());
    }
}

//! apt run against a private sources list and private package lists, so that the machine's
//! own sources and lists are never touched (test kernels, the newer qemu).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result};

/// Debian's archive key, for `signed-by=` in private sources.
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// A private apt configuration rooted in a cache directory.
pub struct PrivateApt {
    root: PathBuf,
}

impl PrivateApt {
    /// Writes `sources` (sources.list lines) into `root` and creates its list directory.
    pub fn new(root: &Path, sources: &str) -> Result<Self> {
        fs::create_dir_all(root.join("lists/partial"))
            .with_context(|| format!("creating {}", root.display()))?;
        fs::write(root.join("sources.list"), sources)
            .context("writing the private sources.list")?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// The directory holding the configuration and lists.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `tool` (apt-get, apt-cache) with the private configuration.
    pub fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        let opt = |k: &str, v: &str| ["-o".to_owned(), format!("{k}={v}")];
        cmd.args(opt(
            "Dir::Etc::SourceList",
            &self.root.join("sources.list").to_string_lossy(),
        ))
        .args(opt("Dir::Etc::SourceParts", "-"))
        .args(opt(
            "Dir::State::Lists",
            &self.root.join("lists").to_string_lossy(),
        ))
        // No binary caches: they would otherwise replace the machine's in /var/cache/apt.
        .args(opt("Dir::Cache::pkgcache", ""))
        .args(opt("Dir::Cache::srcpkgcache", ""))
        // The private directories belong to root; apt's `_apt` user could not write them.
        .args(opt("APT::Sandbox::User", "root"));
        cmd
    }
}

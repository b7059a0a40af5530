//! Where the daemon's policy comes from: the `--policy` files, or — once a control plane has
//! sent one — `STATE_DIR/policy/server.yaml`. Every install goes through here, adds the
//! built-in rule, and swaps generations atomically; a policy that fails changes nothing.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{anyhow, Context, Result};
use policy::Policy;

use super::{
    install,
    names::{GenNames, Generations},
    Daemon,
};

/// Where the policy in force was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The `--policy` files.
    Files(Vec<PathBuf>),
    /// `STATE_DIR/policy/server.yaml`, revision `revision` of the control plane.
    Server { revision: String },
}

/// The policy in force and where it came from.
pub struct PolicyState {
    pub source: Source,
    /// As installed, the built-in rule included.
    pub policy: Option<Arc<Policy>>,
    /// As read (without the built-in rule) and the files it was read from, so that the
    /// built-in rule can follow the server's addresses without re-reading anything.
    pub base: Option<(Arc<Policy>, Vec<String>)>,
}

/// `STATE_DIR/policy/server.yaml`.
pub fn server_file(state_dir: &Path) -> PathBuf {
    state_dir.join("policy").join("server.yaml")
}

/// `STATE_DIR/policy/server.revision`: the revision of `server.yaml`.
pub fn revision_file(state_dir: &Path) -> PathBuf {
    state_dir.join("policy").join("server.revision")
}

/// The source to start with: the server's file when there is one and a server is configured
/// (it is newer than `--policy` by construction), else the `--policy` files.
pub fn initial(state_dir: &Path, files: &[PathBuf], with_server: bool) -> Source {
    let file = server_file(state_dir);
    if with_server && file.is_file() {
        let revision = std::fs::read_to_string(revision_file(state_dir))
            .map(|r| r.trim().to_owned())
            .unwrap_or_default();
        tracing::info!(file = %file.display(), revision, "using the policy last received from the control plane instead of --policy");
        return Source::Server { revision };
    }
    Source::Files(files.to_vec())
}

impl Daemon {
    fn policy_state(&self) -> std::sync::MutexGuard<'_, PolicyState> {
        self.policy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Revision of the server policy in force (None: local files).
    pub fn server_revision(&self) -> Option<String> {
        match &self.policy_state().source {
            Source::Server { revision } => Some(revision.clone()),
            Source::Files(_) => None,
        }
    }

    /// The policy in force (built-in rule included).
    pub fn current_policy(&self) -> Option<Arc<Policy>> {
        self.policy_state().policy.clone()
    }

    /// Re-reads the policy source and installs it as a new generation.
    pub fn reload(&self) -> Result<(u32, Vec<String>)> {
        let mut state = self.policy_state();
        let source = state.source.clone();
        let result = self.install_source(&mut state, &source);
        if let (Err(e), Source::Server { .. }) = (&result, &source) {
            // A damaged server.yaml must not leave the host on no policy at all at start.
            if state.policy.is_none() {
                tracing::error!(error = %format!("{e:#}"), "the control plane's saved policy cannot be installed; falling back to --policy");
                let files = Source::Files(self.opts.policy.clone());
                return self.install_source(&mut state, &files);
            }
        }
        result
    }

    fn install_source(
        &self,
        state: &mut PolicyState,
        source: &Source,
    ) -> Result<(u32, Vec<String>)> {
        let (policy, files) = match source {
            Source::Files(files) => (
                Policy::load(files).map_err(|e| anyhow!("{e}"))?,
                files.iter().map(|p| p.display().to_string()).collect(),
            ),
            Source::Server { revision } => {
                let file = server_file(&self.opts.state_dir);
                let policy =
                    Policy::load(std::slice::from_ref(&file)).map_err(|e| anyhow!("{e}"))?;
                (policy, vec![described(&file, revision)])
            }
        };
        let installed = self.install_policy(state, policy, files)?;
        state.source = source.clone();
        Ok(installed)
    }

    /// Installs a policy received from the control plane; on success it is saved as
    /// `server.yaml` and becomes the policy source (also after a restart).
    pub fn install_server(&self, revision: &str, yaml: &str) -> Result<Vec<String>> {
        let file = server_file(&self.opts.state_dir);
        let policy =
            Policy::from_str(&file.display().to_string(), yaml).map_err(|e| anyhow!("{e}"))?;
        let mut state = self.policy_state();
        let (generation, warnings) =
            self.install_policy(&mut state, policy, vec![described(&file, revision)])?;
        let dir = file.parent().unwrap_or(&self.opts.state_dir);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        crate::atomic_file::write(&file, yaml.as_bytes())
            .with_context(|| format!("saving {}", file.display()))?;
        let rev_file = revision_file(&self.opts.state_dir);
        crate::atomic_file::write(&rev_file, format!("{revision}\n").as_bytes())
            .with_context(|| format!("saving {}", rev_file.display()))?;
        state.source = Source::Server {
            revision: revision.to_owned(),
        };
        tracing::info!(revision, generation, file = %file.display(), "policy source is now the control plane");
        Ok(warnings)
    }

    /// Installs the policy in force again (with a changed built-in rule).
    pub fn reinstall(&self) -> Result<(u32, Vec<String>)> {
        let mut state = self.policy_state();
        let (base, files) = state
            .base
            .clone()
            .ok_or_else(|| anyhow!("no policy is installed"))?;
        self.install_policy(&mut state, (*base).clone(), files)
    }

    /// Adds the built-in rules and installs `policy` (nothing changes on error).
    fn install_policy(
        &self,
        state: &mut PolicyState,
        policy: Policy,
        files: Vec<String>,
    ) -> Result<(u32, Vec<String>)> {
        let base = Arc::new(policy.clone());
        let mut policy = policy;
        let local = crate::kernel::interfaces::addresses();
        super::local_ssh::inject(&mut policy, &local, super::local_ssh::ports())
            .map_err(|e| anyhow!("{e}"))?;
        if let Some(rule) = self
            .control_plane
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()).clone())
        {
            rule.inject(&mut policy, &local)
                .map_err(|e| anyhow!("{e}"))?;
        }
        let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        let publish = |generation: u32, names: &Arc<GenNames>| {
            if let Err(e) = Generations::save(&self.opts.state_dir, generation, names) {
                tracing::warn!(error = %e, "recording the names of the new policy generation");
            }
            let mut g = self.generations.write().unwrap_or_else(|p| p.into_inner());
            g.by_generation[generation as usize] = Some(names.clone());
        };
        let previous = self
            .generations
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .current()
            .cloned();
        let i = install::install(
            &mut maps,
            &self.hierarchy,
            &policy,
            files.clone(),
            self.attached.mode,
            previous,
            publish,
        )?;
        drop(maps);
        let mut g = self.generations.write().unwrap_or_else(|p| p.into_inner());
        g.active = i.generation;
        state.policy = Some(Arc::new(policy));
        state.base = Some((base, files));
        Ok((i.generation, i.warnings))
    }
}

fn described(file: &Path, revision: &str) -> String {
    if revision.is_empty() {
        file.display().to_string()
    } else {
        format!("{} (control plane revision {revision})", file.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_file_wins_only_with_a_server() {
        let dir = std::env::temp_dir().join(format!("cs-policy-source-{}", std::process::id()));
        let local = vec![PathBuf::from("/etc/countersign/policy.yaml")];
        assert_eq!(initial(&dir, &local, true), Source::Files(local.clone()));
        std::fs::create_dir_all(dir.join("policy")).expect("dir");
        std::fs::write(server_file(&dir), "version: 1\n").expect("write");
        std::fs::write(revision_file(&dir), "rev-7\n").expect("write");
        assert_eq!(
            initial(&dir, &local, true),
            Source::Server {
                revision: "rev-7".into()
            }
        );
        assert_eq!(initial(&dir, &local, false), Source::Files(local));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

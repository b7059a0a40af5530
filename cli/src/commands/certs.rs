//! `countersign certs`: a development CA and certificates for the server, hosts and people
//! (never for production: long validity, keys on disk).

use std::path::{Path, PathBuf};

use countersign_certs::identity::{PeerIdentity, Role};
use countersign_certs::{self as certs, CertError, PemPair};

use crate::exit::{Failure, Outcome, OK};
use crate::output::outln;

/// `certs` subcommands; each creates only what is missing, never overwrites.
#[derive(Debug, clap::Subcommand)]
pub enum CertsCommand {
    /// The CA, the server certificate (localhost, 127.0.0.1, ::1) and a sample host and person.
    Init {
        /// Directory of the PEM files [default: CERTS_DIR].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// A host daemon's client certificate (countersign://host/NAME).
    Host {
        /// Host name ([a-z0-9][a-z0-9._-]*), as the server will know the host.
        name: String,
        /// Directory of the PEM files [default: CERTS_DIR].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// A person's client certificate (countersign://person/NAME).
    Person {
        /// User name ([a-z0-9][a-z0-9._-]*), as in the server's people file.
        name: String,
        /// Directory of the PEM files [default: CERTS_DIR].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Runs a `certs` subcommand; `default_dir` is the global certificates directory.
pub fn run(command: &CertsCommand, default_dir: &Path) -> Outcome {
    let pick = |dir: &Option<PathBuf>| dir.clone().unwrap_or_else(|| default_dir.to_owned());
    match command {
        CertsCommand::Init { dir } => {
            let dir = pick(dir);
            let before = Existing::of(&dir);
            let dev = certs::generate_dev(&dir).map_err(failure)?;
            for (what, pair) in [
                ("CA", &dev.ca),
                ("server", &dev.server),
                ("host", &dev.host),
                ("person", &dev.person),
            ] {
                print_pair(what, pair, &before);
            }
        }
        CertsCommand::Host { name, dir } => issue(&pick(dir), Role::Host, name)?,
        CertsCommand::Person { name, dir } => issue(&pick(dir), Role::Person, name)?,
    }
    Ok(OK)
}

fn issue(dir: &Path, role: Role, name: &str) -> Result<(), Failure> {
    let before = Existing::of(dir);
    let pair = certs::issue_client(dir, &PeerIdentity::new(role, name)).map_err(failure)?;
    if !before.had(&dir.join("ca.pem")) {
        outln!("CA      {} (created)", dir.join("ca.pem").display());
    }
    print_pair(role.as_str(), &pair, &before);
    Ok(())
}

fn failure(e: CertError) -> Failure {
    match e {
        CertError::InvalidName(_) => Failure::usage(e.to_string()),
        e => Failure::refused(e.to_string()),
    }
}

/// Which PEM files were there before, to say what was created.
struct Existing(Vec<PathBuf>);

impl Existing {
    fn of(dir: &Path) -> Self {
        let files = std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        Existing(files)
    }

    fn had(&self, path: &Path) -> bool {
        self.0.iter().any(|p| p == path)
    }
}

fn print_pair(what: &str, pair: &PemPair, before: &Existing) {
    let state = if before.had(&pair.cert) {
        "kept"
    } else {
        "created"
    };
    outln!(
        "{what:7} {} {} ({state})",
        pair.cert.display(),
        pair.key.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_then_people_and_hosts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let init = CertsCommand::Init { dir: None };
        assert_eq!(run(&init, dir.path()), Ok(OK));
        assert!(dir.path().join("server.pem").exists());
        let alice = CertsCommand::Person {
            name: "alice".into(),
            dir: Some(dir.path().to_owned()),
        };
        assert_eq!(run(&alice, Path::new("/nonexistent")), Ok(OK));
        let pem = std::fs::read_to_string(dir.path().join("person-alice.pem")).expect("pem");
        let id = countersign_certs::identity::from_pem(&pem).expect("identity");
        assert_eq!(id, PeerIdentity::new(Role::Person, "alice"));
        let bad = CertsCommand::Host {
            name: "Web/01".into(),
            dir: None,
        };
        assert_eq!(run(&bad, dir.path()).map_err(|f| f.code), Err(2));
    }
}

//! Development certificates in `DATA_DIR/certs`, used when the server is started without
//! `--tls-*` flags: a CA, the server certificate (localhost, 127.0.0.1, ::1), a client
//! certificate for every person of the people file and one for this machine's host name.

use std::path::Path;

use anyhow::Context as _;

use crate::certs;
use crate::people::People;
use crate::tls::identity::valid_name;
use crate::tls::identity::{PeerIdentity, Role};
use countersign_api::tls::TlsFiles;

/// Creates what is missing in `dir` and returns the server's TLS files.
pub fn ensure(dir: &Path, people: &People) -> anyhow::Result<TlsFiles> {
    let dev = certs::generate_dev(dir)
        .with_context(|| format!("creating development certificates in {}", dir.display()))?;
    for person in people.iter() {
        certs::issue_client(dir, &PeerIdentity::new(Role::Person, person.name.clone()))
            .with_context(|| format!("certificate for person '{}'", person.name))?;
    }
    match machine_name() {
        Some(host) => {
            certs::issue_client(dir, &PeerIdentity::new(Role::Host, host.clone()))
                .with_context(|| format!("certificate for host '{host}'"))?;
        }
        None => tracing::warn!(
            "this machine's host name is not a valid identity name ([a-z0-9][a-z0-9._-]*): no host certificate for it"
        ),
    }
    Ok(TlsFiles {
        ca: dev.ca.cert,
        cert: dev.server.cert,
        key: dev.server.key,
    })
}

/// This machine's host name, lower-cased, when it can name a certificate identity.
pub fn machine_name() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let name = raw.trim().to_ascii_lowercase();
    valid_name(&name).then_some(name)
}

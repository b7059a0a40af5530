//! The server's TLS: client certificates optional at the handshake (so that people with a
//! bearer token can connect without one), but a certificate that is presented must chain to
//! the CA — a certificate from another CA still fails the handshake. Who may call what is
//! then decided per call by [`crate::people::Authenticator`].

use anyhow::Context as _;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use countersign_api::tls::TlsFiles;

/// The rustls configuration of the gRPC server.
pub fn config(files: &TlsFiles) -> anyhow::Result<ServerTlsConfig> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    };
    let ca = Certificate::from_pem(read(&files.ca)?);
    let identity = Identity::from_pem(read(&files.cert)?, read(&files.key)?);
    Ok(ServerTlsConfig::new()
        .identity(identity)
        .client_ca_root(ca)
        .client_auth_optional(true))
}

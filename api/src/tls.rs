//! Mutual TLS (rustls through tonic): the PEM files of one side, and the client configuration
//! every caller of the API uses (present its certificate, trust only the CA).

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// Errors while loading TLS material or configuring tonic.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// tonic/rustls refused the configuration (bad PEM, key mismatch...).
    #[error("TLS configuration: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// PEM material for one side of a mutual TLS connection.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// CA the peer's certificate must chain to.
    pub ca: PathBuf,
    /// Own certificate (PEM).
    pub cert: PathBuf,
    /// Own private key (PEM).
    pub key: PathBuf,
}

impl TlsFiles {
    fn load(&self) -> Result<(Certificate, Identity), TlsError> {
        let ca = Certificate::from_pem(read(&self.ca)?);
        let identity = Identity::from_pem(read(&self.cert)?, read(&self.key)?);
        Ok((ca, identity))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Client configuration presenting `files.cert` and trusting only `files.ca` for the server.
pub fn client_config(files: &TlsFiles) -> Result<ClientTlsConfig, TlsError> {
    let (ca, identity) = files.load()?;
    Ok(ClientTlsConfig::new().ca_certificate(ca).identity(identity))
}

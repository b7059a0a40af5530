//! PEM file helpers: never overwrite a certificate, keep private keys private.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::{CertError, PemPair};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io {
        path: path.to_owned(),
        source,
    }
}

pub(super) fn create_dir(dir: &Path) -> Result<(), CertError> {
    fs::create_dir_all(dir).map_err(io(dir))
}

pub(super) fn read(path: &Path) -> Result<String, CertError> {
    fs::read_to_string(path).map_err(io(path))
}

pub(super) fn pair(dir: &Path, stem: &str) -> PemPair {
    PemPair {
        cert: dir.join(format!("{stem}.pem")),
        key: dir.join(format!("{stem}-key.pem")),
    }
}

/// Writes the key first (0600, replacing a key left without certificate by an interrupted run),
/// then the certificate with `create_new`, so an existing certificate is never replaced.
pub(super) fn write_pair(pair: &PemPair, cert: &str, key: &str) -> Result<(), CertError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    write_with(&options, &pair.key, key)?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    write_with(&options, &pair.cert, cert)
}

fn write_with(options: &fs::OpenOptions, path: &Path, text: &str) -> Result<(), CertError> {
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(text.as_bytes()).map_err(io(path))
}

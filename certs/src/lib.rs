//! Countersign's certificates: the identity a verified client certificate names
//! ([`identity`], read by the server on every call) and development certificates — a private
//! CA, a server certificate and client certificates for one host and one person, so the mTLS
//! server can be tried without a real PKI (issued by the server's dev mode and by
//! `countersign certs`, without linking the server).
//!
//! Identities are carried by a SAN URI, `countersign://host/NAME` or `countersign://person/NAME`
//! (see [`crate::identity`]); the subject (CN = NAME, OU = role) only helps humans reading
//! the certificate. Generation is idempotent: an existing certificate is never overwritten,
//! and missing ones are signed by the existing CA.

mod files;
pub mod identity;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::identity::{valid_name, PeerIdentity, Role};

/// Host identity written by [`generate_dev`].
pub const DEV_HOST: &str = "dev-host";
/// Person identity written by [`generate_dev`].
pub const DEV_PERSON: &str = "dev-person";

/// Errors while creating development certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Reading or writing a PEM file failed.
    #[error("{path}: {source}")]
    Io {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// rcgen refused the parameters or could not parse an existing CA.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// The identity name cannot be used in a file name and URI.
    #[error("invalid identity name {0:?}: expected [a-z0-9][a-z0-9._-]*")]
    InvalidName(String),
}

/// A certificate and its private key, as files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemPair {
    /// Certificate (PEM).
    pub cert: PathBuf,
    /// PKCS#8 private key (PEM, mode 0600).
    pub key: PathBuf,
}

/// The files written by [`generate_dev`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCerts {
    /// The development CA (clients and server trust only it).
    pub ca: PemPair,
    /// Server certificate for localhost, 127.0.0.1 and ::1.
    pub server: PemPair,
    /// Client certificate of the host [`DEV_HOST`].
    pub host: PemPair,
    /// Client certificate of the person [`DEV_PERSON`].
    pub person: PemPair,
}

/// Creates (if missing) the development CA, server, host and person certificates in `dir`.
pub fn generate_dev(dir: &Path) -> Result<DevCerts, CertError> {
    files::create_dir(dir)?;
    let ca = ca_pair(dir);
    let issuer = load_or_create_ca(&ca)?;
    let server = files::pair(dir, "server");
    if !server.cert.exists() {
        let key = KeyPair::generate()?;
        let cert = server_params()?.signed_by(&key, &issuer)?;
        files::write_pair(&server, &cert.pem(), &key.serialize_pem())?;
    }
    let host = issue_with(dir, &issuer, &PeerIdentity::new(Role::Host, DEV_HOST))?;
    let person = issue_with(dir, &issuer, &PeerIdentity::new(Role::Person, DEV_PERSON))?;
    Ok(DevCerts {
        ca,
        server,
        host,
        person,
    })
}

/// Creates (if missing) a client certificate for `identity`, signed by the CA of `dir`
/// (created if missing too). Files: `ROLE-NAME.pem` and `ROLE-NAME-key.pem`.
pub fn issue_client(dir: &Path, identity: &PeerIdentity) -> Result<PemPair, CertError> {
    files::create_dir(dir)?;
    let issuer = load_or_create_ca(&ca_pair(dir))?;
    issue_with(dir, &issuer, identity)
}

fn ca_pair(dir: &Path) -> PemPair {
    files::pair(dir, "ca")
}

fn issue_with(
    dir: &Path,
    issuer: &Issuer<'_, KeyPair>,
    identity: &PeerIdentity,
) -> Result<PemPair, CertError> {
    if !valid_name(&identity.name) {
        return Err(CertError::InvalidName(identity.name.clone()));
    }
    let pair = files::pair(dir, &format!("{}-{}", identity.role, identity.name));
    if !pair.cert.exists() {
        let key = KeyPair::generate()?;
        let cert = client_params(identity)?.signed_by(&key, issuer)?;
        files::write_pair(&pair, &cert.pem(), &key.serialize_pem())?;
    }
    Ok(pair)
}

/// Loads the CA of `pair`, or creates it when its certificate does not exist yet.
fn load_or_create_ca(pair: &PemPair) -> Result<Issuer<'static, KeyPair>, CertError> {
    if pair.cert.exists() {
        let key = KeyPair::from_pem(&files::read(&pair.key)?)?;
        return Ok(Issuer::from_ca_cert_pem(&files::read(&pair.cert)?, key)?);
    }
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = name("Countersign development CA", "ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key)?;
    files::write_pair(pair, &cert.pem(), &key.serialize_pem())?;
    Ok(Issuer::new(params, key))
}

fn server_params() -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    params.distinguished_name = name("localhost", "server");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    Ok(params)
}

fn client_params(identity: &PeerIdentity) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::default();
    let uri = identity.uri().try_into()?;
    params.subject_alt_names = vec![SanType::URI(uri)];
    params.distinguished_name = name(&identity.name, identity.role.as_str());
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    Ok(params)
}

fn name(common_name: &str, unit: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Countersign");
    dn.push(DnType::OrganizationalUnitName, unit);
    dn.push(DnType::CommonName, common_name);
    dn
}

#[cfg(test)]
mod tests;

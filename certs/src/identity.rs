//! Who is calling: the role and name carried by a verified client certificate.
//!
//! A client certificate names its holder with exactly one SAN URI of the form
//! `countersign://host/NAME` (a host daemon) or `countersign://person/NAME` (a human). The TLS
//! layer has already checked that the certificate chains to the configured CA; this module only
//! reads the identity out of it and maps failures to gRPC statuses.

use std::fmt;

use x509_parser::extensions::GeneralName;

/// Scheme and authority prefix of identity URIs.
const URI_PREFIX: &str = "countersign://";

/// Kind of principal a certificate identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A host daemon (`countersign-agent`): uses AgentService only.
    Host,
    /// A human: approvals, policy and audit.
    Person,
}

impl Role {
    /// The URI path segment and certificate OU for this role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Person => "person",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "host" => Some(Role::Host),
            "person" => Some(Role::Person),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    /// Host or person.
    pub role: Role,
    /// Host name or user name, as in the certificate URI.
    pub name: String,
}

impl PeerIdentity {
    /// An identity from its parts.
    pub fn new(role: Role, name: impl Into<String>) -> Self {
        Self {
            role,
            name: name.into(),
        }
    }

    /// The SAN URI naming this identity.
    pub fn uri(&self) -> String {
        format!("{URI_PREFIX}{}/{}", self.role, self.name)
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} '{}'", self.role, self.name)
    }
}

/// Why a certificate carries no usable identity.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    /// Not a parsable X.509 certificate (or PEM block).
    #[error("client certificate cannot be parsed: {0}")]
    Parse(String),
    /// No `countersign://` SAN URI.
    #[error("client certificate has no countersign:// identity URI")]
    Missing,
    /// Several identity URIs: ambiguous, so refused.
    #[error("client certificate has several countersign:// identity URIs")]
    Ambiguous,
    /// A `countersign://` URI that is not `countersign://host|person/NAME`.
    #[error("client certificate identity URI {0:?} is not countersign://host|person/NAME")]
    Malformed(String),
}

/// Reads the identity of a DER certificate.
pub fn from_der(der: &[u8]) -> Result<PeerIdentity, IdentityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| IdentityError::Parse(e.to_string()))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| IdentityError::Parse(e.to_string()))?;
    let mut uris = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) if uri.starts_with(URI_PREFIX) => Some(*uri),
            _ => None,
        });
    let uri = uris.next().ok_or(IdentityError::Missing)?;
    if uris.next().is_some() {
        return Err(IdentityError::Ambiguous);
    }
    parse_uri(uri)
}

/// Reads the identity of the first certificate of a PEM text.
pub fn from_pem(pem: &str) -> Result<PeerIdentity, IdentityError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| IdentityError::Parse(e.to_string()))?;
    from_der(&block.contents)
}

/// Whether `name` may name a host or a person in a certificate (and in the files issued for
/// it): the shape of agent group and rule names, safe in file names and URIs. Certificates
/// are issued and read only with names that pass.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

fn parse_uri(uri: &str) -> Result<PeerIdentity, IdentityError> {
    let malformed = || IdentityError::Malformed(uri.to_owned());
    let rest = uri.strip_prefix(URI_PREFIX).ok_or_else(malformed)?;
    let (role, name) = rest.split_once('/').ok_or_else(malformed)?;
    let role = Role::parse(role).ok_or_else(malformed)?;
    if !valid_name(name) {
        return Err(malformed());
    }
    Ok(PeerIdentity::new(role, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse() {
        assert_eq!(
            parse_uri("countersign://host/web-01"),
            Ok(PeerIdentity::new(Role::Host, "web-01"))
        );
        assert_eq!(
            parse_uri("countersign://person/alice"),
            Ok(PeerIdentity::new(Role::Person, "alice"))
        );
        for bad in [
            "countersign://agent/x",
            "countersign://host/",
            "countersign://host/a/b",
            "countersign://host",
        ] {
            assert!(
                matches!(parse_uri(bad), Err(IdentityError::Malformed(_))),
                "{bad}"
            );
        }
    }
}

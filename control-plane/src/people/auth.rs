//! Who is calling: a host (certificate `countersign://host/NAME`) or a person (certificate
//! `countersign://person/NAME`, or `authorization: Bearer TOKEN` metadata without any client
//! certificate).
//!
//! The TLS layer makes client certificates optional (so that token clients can connect) but
//! still refuses a certificate that does not chain to the CA. [`Authenticator`] is the tonic
//! interceptor in front of every service: it decides who the caller is, refuses callers of the
//! wrong kind for the service, and puts a [`Caller`] into the request extensions.

use std::sync::Arc;

use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use super::logins::{Login, Logins};
use super::{People, Person};
use crate::tls::identity::{self, PeerIdentity, Role as CertRole};

/// Metadata key of the bearer token.
pub const AUTHORIZATION: &str = "authorization";
/// Metadata key where clients say which channel they are (`cli` or `api`, the default);
/// it only labels audit records.
pub const CHANNEL: &str = "countersign-channel";

/// How a person proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A client certificate `countersign://person/NAME`.
    Certificate,
    /// A bearer token whose SHA-256 is in the people file.
    Token,
}

impl Credential {
    /// `certificate` or `token`, for audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Credential::Certificate => "certificate",
            Credential::Token => "token",
        }
    }
}

/// An authenticated person, with their roles and groups as of this call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonCaller {
    /// The person (without roles when the people file does not list them).
    pub person: Person,
    /// Certificate or token.
    pub credential: Credential,
    /// `cli` or `api`.
    pub channel: String,
}

/// The authenticated caller of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A host daemon, by the host name of its certificate.
    Host(String),
    /// A human.
    Person(PersonCaller),
}

impl Caller {
    /// The host name of a host caller (`unauthenticated` if the interceptor did not run,
    /// `permission_denied` for a person; the interceptor already refuses those).
    pub fn host<T>(request: &Request<T>) -> Result<String, Status> {
        match request.extensions().get::<Caller>() {
            Some(Caller::Host(name)) => Ok(name.clone()),
            Some(Caller::Person(p)) => Err(Status::permission_denied(format!(
                "person '{}' may not call this method: it requires a host certificate",
                p.person.name
            ))),
            None => Err(Status::unauthenticated("caller identity unknown")),
        }
    }

    /// The person calling (see [`Caller::host`] for the errors).
    pub fn person<T>(request: &Request<T>) -> Result<PersonCaller, Status> {
        match request.extensions().get::<Caller>() {
            Some(Caller::Person(p)) => Ok(p.clone()),
            Some(Caller::Host(name)) => Err(Status::permission_denied(format!(
                "host '{name}' may not call this method: it is for people"
            ))),
            None => Err(Status::unauthenticated("caller identity unknown")),
        }
    }
}

/// Which kind of caller a service serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// AgentService: host certificates only.
    Hosts,
    /// Approval, policy and audit services: person certificates or tokens.
    People,
}

/// The interceptor: one per service (it knows the service's name and audience).
#[derive(Clone, Debug)]
pub struct Authenticator {
    people: Arc<People>,
    logins: Logins,
    audience: Audience,
    service: &'static str,
}

impl Authenticator {
    /// An interceptor for `service` (its name is used in error messages).
    pub fn new(
        people: Arc<People>,
        logins: Logins,
        audience: Audience,
        service: &'static str,
    ) -> Self {
        Authenticator {
            people,
            logins,
            audience,
            service,
        }
    }

    /// Decides who `metadata` and `certificate` (the verified leaf, if any) stand for.
    pub fn identify(
        &self,
        certificate: Option<&[u8]>,
        metadata: &MetadataMap,
    ) -> Result<Caller, Status> {
        let from_cert = certificate
            .map(identity::from_der)
            .transpose()
            .map_err(|e| Status::unauthenticated(e.to_string()))?;
        let from_token = bearer(metadata)?
            .map(|token| {
                // The token itself is never logged nor echoed back.
                self.people.by_token(token).cloned().ok_or_else(|| {
                    Status::unauthenticated("the bearer token is not valid on this server")
                })
            })
            .transpose()?;
        let channel = channel(metadata);
        let person = |person: Person, credential| {
            Caller::Person(PersonCaller {
                person,
                credential,
                channel: channel.clone(),
            })
        };
        let caller = match (from_cert, from_token) {
            (
                Some(PeerIdentity {
                    role: CertRole::Host,
                    name,
                }),
                _,
            ) => Caller::Host(name),
            (
                Some(PeerIdentity {
                    role: CertRole::Person,
                    name,
                }),
                token,
            ) => {
                if let Some(other) = token.filter(|t| t.name != name) {
                    return Err(Status::unauthenticated(format!(
                        "the certificate names person '{name}' but the token belongs to '{}'",
                        other.name
                    )));
                }
                person(self.people.person_or_nobody(&name), Credential::Certificate)
            }
            (None, Some(p)) => person(p, Credential::Token),
            (None, None) => return Err(Status::unauthenticated(match self.audience {
                Audience::Hosts => "a host client certificate is required (mutual TLS)",
                Audience::People => {
                    "a person client certificate or an 'authorization: Bearer TOKEN' is required"
                }
            })),
        };
        match (&caller, self.audience) {
            (Caller::Host(_), Audience::Hosts) => Ok(caller),
            (Caller::Person(p), Audience::People) => {
                self.logins.seen(Login {
                    person: p.person.name.clone(),
                    credential: p.credential,
                    channel: p.channel.clone(),
                });
                Ok(caller)
            }
            (Caller::Person(p), Audience::Hosts) => Err(Status::permission_denied(format!(
                "person '{}' may not call {}: it requires a host certificate",
                p.person.name, self.service
            ))),
            (Caller::Host(name), Audience::People) => Err(Status::permission_denied(format!(
                "host '{name}' may not call {}: it is for people (a host may only call AgentService)",
                self.service
            ))),
        }
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        // rustls puts the end-entity certificate first; the rest is its chain.
        let certs = request.peer_certs();
        let leaf = certs.as_ref().and_then(|c| c.first()).map(|c| c.as_ref());
        let caller = self.identify(leaf, request.metadata())?;
        if let Caller::Person(p) = &caller {
            tracing::debug!(person = %p.person.name, credential = p.credential.as_str(), service = self.service, "authenticated");
        }
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// The bearer token of the `authorization` metadata, if any.
fn bearer(metadata: &MetadataMap) -> Result<Option<&str>, Status> {
    let Some(value) = metadata.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || Status::unauthenticated("the authorization metadata must be 'Bearer TOKEN'");
    let text = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = text.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token))
}

/// `cli` when the client says so, else `api`.
fn channel(metadata: &MetadataMap) -> String {
    match metadata.get(CHANNEL).and_then(|v| v.to_str().ok()) {
        Some("cli") => "cli",
        _ => "api",
    }
    .to_owned()
}

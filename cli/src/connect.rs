//! Reaching the control plane: server URL, CA and credentials from flags, environment and
//! defaults, then one mutual-TLS channel shared by every client of a command.

use std::path::{Path, PathBuf};
use std::time::Duration;

use countersign_api::pb::{
    approval_service_client::ApprovalServiceClient, audit_service_client::AuditServiceClient,
    people_service_client::PeopleServiceClient, policy_service_client::PolicyServiceClient,
};
use countersign_api::tls::{self, TlsFiles};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::exit::{chain, Failure};

/// Default server address.
pub const DEFAULT_SERVER: &str = "https://localhost:7443";
/// Default directory of the development certificates (`countersign certs`).
pub const DEFAULT_CERTS_DIR: &str = "/var/lib/countersign-server/certs";

/// How to reach and authenticate to the server (global flags, each with its environment
/// variable).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Control-plane server (https://HOST:PORT).
    #[arg(long, global = true, help_heading = "Server connection (people's commands)", env = "COUNTERSIGN_SERVER", default_value = DEFAULT_SERVER, value_name = "URL")]
    pub server: String,
    /// CA the server's certificate must chain to [default: CERTS_DIR/ca.pem].
    #[arg(
        long,
        global = true,
        help_heading = "Server connection (people's commands)",
        env = "COUNTERSIGN_CA",
        value_name = "FILE"
    )]
    pub ca: Option<PathBuf>,
    /// Client certificate of a person (PEM; with --key).
    #[arg(
        long,
        global = true,
        help_heading = "Server connection (people's commands)",
        env = "COUNTERSIGN_CERT",
        value_name = "FILE"
    )]
    pub cert: Option<PathBuf>,
    /// Private key of --cert (PEM).
    #[arg(
        long,
        global = true,
        help_heading = "Server connection (people's commands)",
        env = "COUNTERSIGN_KEY",
        value_name = "FILE"
    )]
    pub key: Option<PathBuf>,
    /// Bearer token instead of a client certificate.
    #[arg(
        long,
        global = true,
        help_heading = "Server connection (people's commands)",
        env = "COUNTERSIGN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Use CERTS_DIR/person-NAME.pem and person-NAME-key.pem [default: $USER, if present].
    #[arg(
        long = "as",
        global = true,
        help_heading = "Server connection (people's commands)",
        env = "COUNTERSIGN_AS",
        value_name = "NAME"
    )]
    pub as_person: Option<String>,
    /// Where `--as` certificates (and the default CA) are found.
    #[arg(long, global = true, help_heading = "Server connection (people's commands)", env = "COUNTERSIGN_CERTS_DIR", default_value = DEFAULT_CERTS_DIR, value_name = "DIR")]
    pub certs_dir: PathBuf,
}

/// How the caller proves who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Client certificate and key (mutual TLS).
    Cert {
        /// Certificate (PEM).
        cert: PathBuf,
        /// Key (PEM).
        key: PathBuf,
    },
    /// `authorization: Bearer TOKEN` on every call.
    Token(String),
}

/// Resolved TLS trust and login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// CA of the server certificate.
    pub ca: PathBuf,
    /// Caller identity.
    pub login: Login,
}

/// Picks the credentials: `--cert/--key`, `--token` or `--as NAME` (at most one of them),
/// else the certificate of the login user `user` if it exists in the certificates directory.
pub fn resolve(args: &ServerArgs, user: Option<&str>) -> Result<Credentials, Failure> {
    let dir = &args.certs_dir;
    let ca = args.ca.clone().unwrap_or_else(|| dir.join("ca.pem"));
    let explicit = args.cert.is_some() || args.key.is_some();
    let given = [explicit, args.token.is_some(), args.as_person.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(Failure::usage(
            "choose one way to log in: --cert/--key, --token or --as \
             (check COUNTERSIGN_CERT, COUNTERSIGN_KEY, COUNTERSIGN_TOKEN, COUNTERSIGN_AS)",
        ));
    }
    let login = if explicit {
        match (&args.cert, &args.key) {
            (Some(cert), Some(key)) => Login::Cert {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => return Err(Failure::usage("--cert and --key go together")),
        }
    } else if let Some(token) = &args.token {
        Login::Token(token.trim().to_owned())
    } else if let Some(name) = &args.as_person {
        person_files(dir, name)?
    } else {
        match user.map(|u| person_files(dir, u)) {
            Some(Ok(Login::Cert { cert, key })) if cert.exists() => Login::Cert { cert, key },
            _ => {
                return Err(Failure::usage(format!(
                    "no credentials: pass --as NAME (uses {}/person-NAME.pem), \
                     --cert FILE --key FILE, or --token TOKEN",
                    dir.display()
                )))
            }
        }
    };
    Ok(Credentials { ca, login })
}

fn person_files(dir: &Path, name: &str) -> Result<Login, Failure> {
    if name.is_empty() || name.contains(['/', '\0']) || name.starts_with('.') {
        return Err(Failure::usage(format!("--as {name:?}: not a person name")));
    }
    Ok(Login::Cert {
        cert: dir.join(format!("person-{name}.pem")),
        key: dir.join(format!("person-{name}-key.pem")),
    })
}

/// Adds `authorization: Bearer …` to every call when logging in by token.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The transport every client uses.
pub type Transport = InterceptedService<Channel, Bearer>;

/// A live channel to the server.
pub struct Connection {
    channel: Channel,
    bearer: Bearer,
}

impl Connection {
    /// ApprovalService client.
    pub fn approvals(&self) -> ApprovalServiceClient<Transport> {
        ApprovalServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// PolicyService client.
    pub fn policy(&self) -> PolicyServiceClient<Transport> {
        PolicyServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// PeopleService client.
    pub fn people(&self) -> PeopleServiceClient<Transport> {
        PeopleServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// AuditService client.
    pub fn audit(&self) -> AuditServiceClient<Transport> {
        AuditServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }
}

fn bearer(login: &Login) -> Result<Bearer, Failure> {
    let Login::Token(token) = login else {
        return Ok(Bearer(None));
    };
    if token.is_empty() {
        return Err(Failure::usage("--token is empty"));
    }
    // Never echo the token itself in an error.
    let mut value = MetadataValue::try_from(format!("Bearer {token}"))
        .map_err(|_| Failure::usage("--token holds characters not allowed in a header"))?;
    value.set_sensitive(true);
    Ok(Bearer(Some(value)))
}

fn tls_config(creds: &Credentials) -> Result<ClientTlsConfig, Failure> {
    let bad = |e: tls::TlsError| Failure::usage(format!("TLS credentials: {}", chain(&e)));
    match &creds.login {
        Login::Cert { cert, key } => tls::client_config(&TlsFiles {
            ca: creds.ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
        })
        .map_err(bad),
        Login::Token(_) => {
            let ca = std::fs::read(&creds.ca).map_err(|e| {
                Failure::usage(format!("TLS credentials: {}: {e}", creds.ca.display()))
            })?;
            Ok(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
        }
    }
}

/// Connects (TCP and TLS) so that an unreachable server is reported before any call.
pub async fn connect(args: &ServerArgs) -> Result<Connection, Failure> {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok();
    let creds = resolve(args, user.as_deref())?;
    let bearer = bearer(&creds.login)?;
    let url = args.server.trim_end_matches('/');
    if !url.starts_with("https://") {
        return Err(Failure::usage(format!(
            "--server {url:?}: expected https://HOST:PORT (the server speaks mutual TLS only)"
        )));
    }
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| Failure::usage(format!("--server {url:?}: {}", chain(&e))))?
        .connect_timeout(Duration::from_secs(5))
        .tls_config(tls_config(&creds)?)
        .map_err(|e| Failure::usage(format!("TLS configuration: {}", chain(&e))))?;
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| Failure::unreachable(format!("cannot reach {url}: {}", chain(&e))))?;
    Ok(Connection { channel, bearer })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServerArgs {
        ServerArgs {
            server: DEFAULT_SERVER.into(),
            ca: None,
            cert: None,
            key: None,
            token: None,
            as_person: None,
            certs_dir: PathBuf::from("/certs"),
        }
    }

    #[test]
    fn as_name_picks_person_files() {
        let a = ServerArgs {
            as_person: Some("alice".into()),
            ..args()
        };
        let c = resolve(&a, None).expect("resolve");
        assert_eq!(c.ca, PathBuf::from("/certs/ca.pem"));
        assert_eq!(
            c.login,
            Login::Cert {
                cert: "/certs/person-alice.pem".into(),
                key: "/certs/person-alice-key.pem".into()
            }
        );
        let bad = ServerArgs {
            as_person: Some("../x".into()),
            ..args()
        };
        assert_eq!(resolve(&bad, None).map_err(|f| f.code), Err(2));
    }

    #[test]
    fn one_login_only() {
        let both = ServerArgs {
            cert: Some("c.pem".into()),
            key: Some("k.pem".into()),
            token: Some("t".into()),
            ..args()
        };
        assert_eq!(resolve(&both, None).map_err(|f| f.code), Err(2));
        let half = ServerArgs {
            cert: Some("c.pem".into()),
            ..args()
        };
        assert_eq!(resolve(&half, None).map_err(|f| f.code), Err(2));
        let token = ServerArgs {
            token: Some(" secret\n".into()),
            ca: Some("/etc/ca.pem".into()),
            ..args()
        };
        let c = resolve(&token, None).expect("token");
        assert_eq!(c.login, Login::Token("secret".into()));
        assert_eq!(c.ca, PathBuf::from("/etc/ca.pem"));
    }

    #[test]
    fn login_user_certificate_only_when_present() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = ServerArgs {
            certs_dir: dir.path().to_owned(),
            ..args()
        };
        let err = resolve(&a, Some("bob")).expect_err("no file");
        assert!(err.message.contains("--as NAME"), "{}", err.message);
        std::fs::write(dir.path().join("person-bob.pem"), "x").expect("write");
        let c = resolve(&a, Some("bob")).expect("found");
        assert!(matches!(c.login, Login::Cert { cert, .. } if cert.ends_with("person-bob.pem")));
    }

    #[test]
    fn bearer_header_is_sensitive() {
        let b = bearer(&Login::Token("abc".into())).expect("bearer");
        let value = b.0.expect("value");
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().expect("ascii"), "Bearer abc");
        assert!(bearer(&Login::Token("a\nb".into())).is_err());
    }
}

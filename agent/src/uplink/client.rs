//! The connection to the control plane: its URL, mutual TLS, and where it resolves to (for
//! the built-in rule that keeps agents away from it).

use std::{net::IpAddr, path::PathBuf, time::Duration};

use countersign_api::{
    pb::agent_service_client::AgentServiceClient,
    tls::{client_config, TlsFiles},
};
use tonic::transport::{Channel, Endpoint, Uri};

use super::error::{chain, LinkError};

/// How long a connection attempt (TCP + TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 pings on an idle connection, so that a vanished server is noticed while the
/// decision stream waits.
const KEEPALIVE: Duration = Duration::from_secs(20);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the control plane is and how to prove who we are.
#[derive(Clone, Debug)]
pub struct Config {
    /// `https://HOST:PORT`.
    pub server: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    /// Never logged, never read except by rustls through [`client_config`].
    pub key: PathBuf,
}

impl Config {
    fn tls_files(&self) -> TlsFiles {
        TlsFiles {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }

    /// Checks the URL and the TLS files (at start-up: a typo should stop `run` at once, while
    /// a server that is merely down should not).
    pub fn validate(&self) -> Result<(), LinkError> {
        self.host_port()?;
        client_config(&self.tls_files()).map_err(|e| LinkError::Tls(chain(&e)))?;
        Ok(())
    }

    /// Host (without IPv6 brackets) and port of the server URL.
    pub fn host_port(&self) -> Result<(String, u16), LinkError> {
        let bad = |reason: &str| LinkError::Url {
            url: self.server.clone(),
            reason: reason.to_owned(),
        };
        let uri = self
            .server
            .parse::<Uri>()
            .map_err(|e| bad(&e.to_string()))?;
        if uri.scheme_str() != Some("https") {
            return Err(bad("must start with https:// (the link is mutual TLS)"));
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok((host, uri.port_u16().unwrap_or(443)))
    }

    /// Opens a channel (TLS handshake included).
    pub async fn connect(&self) -> Result<AgentServiceClient<Channel>, LinkError> {
        // Re-read at every connection: renewed certificates are picked up without a restart.
        let tls = client_config(&self.tls_files()).map_err(|e| LinkError::Tls(chain(&e)))?;
        let endpoint = Endpoint::from_shared(self.server.clone())
            .map_err(|e| LinkError::Url {
                url: self.server.clone(),
                reason: chain(&e),
            })?
            .tls_config(tls)
            .map_err(|e| LinkError::Tls(chain(&e)))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_keepalive(Some(KEEPALIVE))
            .http2_keep_alive_interval(KEEPALIVE)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| LinkError::Connect(chain(&e)))?;
        Ok(AgentServiceClient::new(channel))
    }

    /// The server's addresses (all of them, IPv4 and IPv6), sorted.
    pub async fn resolve(&self) -> Result<(Vec<IpAddr>, u16), LinkError> {
        let (host, port) = self.host_port()?;
        let mut addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| LinkError::Connect(format!("resolving {host}: {e}")))?
                .map(|a| a.ip())
                .collect(),
        };
        addrs.sort();
        addrs.dedup();
        Ok((addrs, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> Config {
        Config {
            server: url.into(),
            ca: "/nonexistent/ca.pem".into(),
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            config("https://cp.example:7443").host_port().expect("url"),
            ("cp.example".into(), 7443)
        );
        assert_eq!(
            config("https://[::1]:7443").host_port().expect("url"),
            ("::1".into(), 7443)
        );
        assert_eq!(
            config("https://cp.example").host_port().expect("url"),
            ("cp.example".into(), 443)
        );
        for bad in ["http://cp:80", "cp:7443", "https://", ""] {
            assert!(config(bad).host_port().is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_tls_files_are_named() {
        let e = config("https://cp:7443").validate().expect_err("no files");
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }

    #[tokio::test]
    async fn literal_addresses_need_no_resolver() {
        let (addrs, port) = config("https://127.0.0.1:7543")
            .resolve()
            .await
            .expect("ip");
        assert_eq!((addrs, port), (vec![IpAddr::from([127, 0, 0, 1])], 7543));
    }
}

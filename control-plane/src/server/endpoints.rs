//! What the server tells each daemon about itself at registration: every place of the control
//! plane an agent could reach — the gRPC and chat listeners and the database — so that the
//! daemon's built-in rule denies agents all of them, not only the address it dialled.

use std::net::SocketAddr;

use crate::rpc::pb;

/// A listener at `addr` serving `role`; a listener on every address is sent with an empty
/// address (the daemon knows the server's addresses: it dialled one).
pub fn listener(addr: SocketAddr, role: &str) -> pb::Endpoint {
    pb::Endpoint {
        address: if addr.ip().is_unspecified() {
            String::new()
        } else {
            addr.ip().to_string()
        },
        port: u32::from(addr.port()),
        role: role.to_owned(),
    }
}

/// The database of `url` (PostgreSQL: its host's addresses and port; SQLite is a file and
/// has none). A host name is resolved now; one that does not resolve is left out with a
/// warning (the store could not have been opened with it anyway).
pub async fn database(url: &str) -> Vec<pb::Endpoint> {
    let Some((host, port)) = postgres_host(url) else {
        return Vec::new();
    };
    let found = tokio::net::lookup_host((host.as_str(), port)).await;
    match found {
        Ok(addrs) => {
            let mut out: Vec<pb::Endpoint> = addrs.map(|a| listener(a, "database")).collect();
            out.dedup();
            out
        }
        Err(e) => {
            tracing::warn!(host = %host, error = %e, "cannot resolve the database host: agents are not told away from it");
            Vec::new()
        }
    }
}

/// `(host, port)` of a `postgres://` or `postgresql://` URL (default port 5432); None for
/// anything else, or a URL naming a Unix socket directory.
fn postgres_host(url: &str) -> Option<(String, u16)> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.is_empty() {
        return None;
    }
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6.split_once(']')?;
            (h, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => 5432,
    };
    Some((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_on_every_address_are_sent_without_one() {
        let all = listener("0.0.0.0:8443".parse().expect("addr"), "grpc");
        assert_eq!((all.address.as_str(), all.port), ("", 8443));
        let v6 = listener("[::]:9000".parse().expect("addr"), "chat");
        assert_eq!(v6.address, "");
        let one = listener("10.0.0.5:8443".parse().expect("addr"), "grpc");
        assert_eq!(one.address, "10.0.0.5");
    }

    #[test]
    fn database_hosts_come_out_of_the_url() {
        for (url, want) in [
            (
                "postgres://cs:secret@db.internal:6432/cs",
                Some(("db.internal", 6432)),
            ),
            ("postgresql://db/cs?sslmode=require", Some(("db", 5432))),
            ("postgres://u@[fd00::5]:5433/cs", Some(("fd00::5", 5433))),
            ("postgres://10.0.0.9/cs", Some(("10.0.0.9", 5432))),
            ("postgres:///cs?host=/run/postgresql", None),
            ("sqlite:///var/lib/countersign/countersign.db", None),
        ] {
            let got = postgres_host(url);
            assert_eq!(got.as_ref().map(|(h, p)| (h.as_str(), *p)), want, "{url}");
        }
    }
}

//! Operations to judge, as the kernel sees them, and how the CLI builds them from a command
//! line (`--exec "kubectl delete pod x"`) or a destination (`--connect 10.0.0.1:5432`).

use std::{
    ffi::OsStr,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
};

use crate::resolve::{FileId, Resolver};

/// An exec as the kernel sees it.
#[derive(Clone, Debug)]
pub struct ExecAttempt {
    /// Identity of the file executed.
    pub binary: FileId,
    /// Its path, for messages only.
    pub binary_path: Option<PathBuf>,
    /// argv[0] included (it takes no part in decisions).
    pub argv: Vec<Vec<u8>>,
    /// Identity of the parent process's binary, when known.
    pub parent: Option<FileId>,
    /// A session wrote the file (the kernel's mark on it): the group's `agent_written` floor
    /// applies.
    pub agent_written: bool,
}

impl ExecAttempt {
    /// The exec a shell would do for `argv`: argv[0] is looked up in `path` (a `PATH` value)
    /// unless it contains a `/`, and resolved to its identity.
    pub fn for_command(
        argv: &[String],
        path: Option<&OsStr>,
        resolver: &dyn Resolver,
    ) -> Result<Self, String> {
        let cmd = argv.first().ok_or("empty command")?;
        let candidates: Vec<PathBuf> = if cmd.contains('/') {
            vec![PathBuf::from(cmd)]
        } else {
            let path = path.ok_or_else(|| format!("{cmd}: no PATH to search"))?;
            std::env::split_paths(path).map(|d| d.join(cmd)).collect()
        };
        let (binary, found) = candidates
            .iter()
            .find_map(|p| resolver.identity(p).map(|id| (id, p)))
            .ok_or_else(|| format!("{cmd}: no such executable file"))?;
        Ok(Self {
            binary,
            binary_path: Some(found.to_path_buf()),
            argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
            parent: None,
            agent_written: false,
        })
    }

    /// The same exec, as a child of a process running `parent`.
    pub fn with_parent(mut self, parent: &Path, resolver: &dyn Resolver) -> Result<Self, String> {
        let id = resolver.identity(parent);
        self.parent = Some(id.ok_or_else(|| format!("{}: no such file", parent.display()))?);
        Ok(self)
    }
}

/// Transport of a connect or sendmsg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    /// `tcp` or `udp`, as in event records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// A connect (or UDP sendmsg) as the kernel sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectAttempt {
    /// IPv4, IPv6 or IPv4-mapped IPv6 (the latter two judged alike for IPv4 rules).
    pub addr: IpAddr,
    pub port: u16,
    pub transport: Transport,
}

impl ConnectAttempt {
    /// Parses `ADDR:PORT` (`[V6]:PORT` for IPv6).
    pub fn parse(s: &str, transport: Transport) -> Result<Self, String> {
        let a: SocketAddr = s
            .parse()
            .map_err(|_| format!("'{s}' is not ADDR:PORT (IPv6: [ADDR]:PORT)"))?;
        Ok(Self {
            addr: a.ip(),
            port: a.port(),
            transport,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{id, MapResolver};

    #[test]
    fn command_is_looked_up_in_path() {
        let r = MapResolver::with(&[("/usr/local/bin/kubectl", 1), ("/usr/bin/python3", 2)]);
        let argv = ["kubectl".to_owned(), "get".to_owned()];
        let e = ExecAttempt::for_command(&argv, Some(OsStr::new("/bin:/usr/local/bin")), &r)
            .expect("found");
        assert_eq!(
            (e.binary, e.binary_path.as_deref()),
            (id(1), Some(Path::new("/usr/local/bin/kubectl")))
        );
        assert_eq!(e.argv, [b"kubectl".to_vec(), b"get".to_vec()]);
        let e = e
            .with_parent(Path::new("/usr/bin/python3"), &r)
            .expect("parent");
        assert_eq!(e.parent, Some(id(2)));
        let err = ExecAttempt::for_command(&["nope".to_owned()], Some(OsStr::new("/bin")), &r);
        assert_eq!(err.expect_err("missing"), "nope: no such executable file");
        let direct = ExecAttempt::for_command(&["/usr/bin/python3".to_owned()], None, &r);
        assert_eq!(direct.expect("absolute").binary, id(2));
    }

    #[test]
    fn destinations() {
        let c = ConnectAttempt::parse("10.0.0.1:5432", Transport::Tcp).expect("v4");
        assert_eq!((c.addr.to_string(), c.port), ("10.0.0.1".to_owned(), 5432));
        let c = ConnectAttempt::parse("[fd00::1]:53", Transport::Udp).expect("v6");
        assert_eq!(
            (c.addr.to_string(), c.port, c.transport),
            ("fd00::1".to_owned(), 53, Transport::Udp)
        );
        assert!(ConnectAttempt::parse("10.0.0.1", Transport::Tcp).is_err());
    }
}

//! A throw-away PostgreSQL server for the control plane's store tests: a fresh cluster in a
//! temporary directory, trust authentication, listening on a unix socket in that directory
//! and on 127.0.0.1 only; stopped and deleted when the handle is dropped.
//!
//! The Debian package provides the binaries; its own cluster (`/var/lib/postgresql`) is
//! neither used nor started. `initdb` refuses to run as root, so as root every server
//! command runs as the `postgres` user (created by the package).

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use crate::util;

/// Debian 12's PostgreSQL.
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// Port tried first (a free one is taken when it is busy).
const PORT: u16 = 55432;

/// True when the server binaries are there.
fn installed() -> bool {
    Path::new(BIN).join("initdb").exists()
}

/// Installs PostgreSQL when its binaries are missing.
pub fn install() -> Result<()> {
    let present = installed();
    if !present {
        util::run(Command::new("apt-get").args(["-q", "update"]))?;
        let mut apt = Command::new("apt-get");
        apt.args(["install", "-y", "--no-install-recommends", "postgresql"]);
        util::run(apt.env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    let state = if present { "already present" } else { "done" };
    println!("setup: postgresql (store tests): {state}");
    Ok(())
}

/// A running test server. Dropping it stops the server and deletes its directory.
pub struct Postgres {
    dir: PathBuf,
    url: String,
}

impl Postgres {
    /// Creates and starts a cluster in `/tmp/countersign-pg-<pid>`.
    pub fn start() -> Result<Postgres> {
        if !installed() {
            install()?;
        }
        let dir = std::env::temp_dir().join(format!("countersign-pg-{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        if is_root()? {
            util::run(Command::new("chown").arg("postgres:postgres").arg(&dir))?;
        }
        // From here on, Drop cleans up whatever got started.
        let port = free_port()?;
        let pg = Postgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
        };
        let data = pg.dir.join("data");
        let mut initdb = pg.command("initdb")?;
        initdb.arg("-D").arg(&data);
        initdb.args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-instructions",
        ]);
        util::output(&mut initdb)?;
        let mut start = pg.command("pg_ctl")?;
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(pg.dir.join("server.log"));
        start.arg("-o").arg(format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            pg.dir.display()
        ));
        if let Err(e) = util::run(start.args(["-w", "-t", "60", "start"])) {
            // Quoted now: the directory and its log go when `pg` is dropped.
            let log = fs::read_to_string(pg.dir.join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!("{e:#}; server log:\n{}", tail.join("\n"));
        }
        println!("postgres: test server at {}", pg.url);
        Ok(pg)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres` (trust auth, no password).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A server binary, run as `postgres` when we are root.
    fn command(&self, name: &str) -> Result<Command> {
        let program = Path::new(BIN).join(name);
        Ok(if is_root()? {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if data.join("postmaster.pid").exists() {
            if let Ok(mut stop) = self.command("pg_ctl") {
                stop.arg("-D").arg(&data).args(["-m", "fast", "-w", "stop"]);
                if let Err(e) = util::output(&mut stop) {
                    eprintln!("postgres: stopping the test server: {e:#}");
                }
            }
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("postgres: removing {}: {e}", self.dir.display());
        }
    }
}

fn is_root() -> Result<bool> {
    Ok(util::output(Command::new("id").arg("-u"))?.trim() == "0")
}

/// [`PORT`] if nothing listens there, else one the kernel picks.
fn free_port() -> Result<u16> {
    if TcpListener::bind(("127.0.0.1", PORT)).is_ok() {
        return Ok(PORT);
    }
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
    let port = listener.local_addr()?.port();
    if port == 0 {
        bail!("the kernel gave port 0");
    }
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::Postgres;

    /// Starts a server, connects over TCP, stops it. Ignored by default: it installs
    /// packages when PostgreSQL is missing (`cargo test -p xtask -- --ignored`).
    #[test]
    #[ignore = "starts a PostgreSQL server (and may apt-get install it)"]
    fn starts_and_stops() {
        let pg = Postgres::start().expect("start");
        let port = pg
            .url()
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.split('/').next())
            .and_then(|p| p.parse::<u16>().ok())
            .expect("port in URL");
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        let dir = pg.dir.clone();
        drop(pg);
        assert!(!dir.exists(), "directory removed");
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}

//! Who launched each agent session: `countersign-agent launch` tells the daemon, which keeps
//! `STATE_DIR/sessions/<group>/<session>.json`, and the uplink puts the name into every
//! operation it reports (`Operation.launching_user`), so that the control plane can keep the
//! launcher from approving their own agent's requests.

use std::{
    collections::HashMap,
    io,
    path::{Path, PathBuf},
    sync::Mutex,
};

use serde::{Deserialize, Serialize};

use crate::session::SessionKey;

/// One session's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRecord {
    /// User name of the person who launched the session.
    pub user: String,
    pub uid: u32,
    /// RFC 3339.
    pub started: String,
}

/// The person running this process: `SUDO_USER` when root runs it through sudo, else the
/// name of the real uid (from /etc/passwd), else `uid:N`.
pub fn invoking_user() -> (String, u32) {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    resolve_user(
        uid,
        std::env::var("SUDO_USER").ok().as_deref(),
        std::env::var("SUDO_UID").ok().as_deref(),
        &passwd,
    )
}

/// [`invoking_user`] on given inputs.
pub fn resolve_user(
    uid: u32,
    sudo_user: Option<&str>,
    sudo_uid: Option<&str>,
    passwd: &str,
) -> (String, u32) {
    if uid == 0 {
        if let Some(name) = sudo_user.filter(|n| valid_user(n)) {
            let uid = sudo_uid
                .and_then(|u| u.parse().ok())
                .or_else(|| passwd_uid(passwd, name))
                .unwrap_or(0);
            return (name.to_owned(), uid);
        }
    }
    let name = passwd_name(passwd, uid).unwrap_or_else(|| format!("uid:{uid}"));
    (name, uid)
}

fn valid_user(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.chars().any(|c| c.is_control() || c == ':' || c == '/')
}

/// The name of `uid` in a passwd file.
fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid && valid_user(name)).then(|| name.to_owned())
    })
}

fn passwd_uid(passwd: &str, name: &str) -> Option<u32> {
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// A group or session name that is safe as one path component.
fn component_ok(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 255
        && !s.contains('/')
        && !s.contains('\0')
}

/// The session records under `STATE_DIR/sessions`.
pub struct Registry {
    dir: PathBuf,
    /// Users already read, by session (a session's launcher never changes while it lives).
    cache: Mutex<HashMap<SessionKey, String>>,
}

impl Registry {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("sessions"),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn file(&self, key: &SessionKey) -> Option<PathBuf> {
        (component_ok(&key.group) && component_ok(&key.session)).then(|| {
            self.dir
                .join(&key.group)
                .join(format!("{}.json", key.session))
        })
    }

    /// Writes a session's record (write + rename: never half a file).
    pub fn record(&self, key: &SessionKey, rec: &SessionRecord) -> io::Result<PathBuf> {
        let path = self.file(key).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("bad session {key}"))
        })?;
        let dir = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(dir)?;
        crate::atomic_file::write(&path, &serde_json::to_vec_pretty(rec)?)?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), rec.user.clone());
        Ok(path)
    }

    /// The record of a session, if one was written.
    pub fn read(&self, key: &SessionKey) -> Option<SessionRecord> {
        let text = std::fs::read(self.file(key)?).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// The user who launched a session; None when unknown (not launched by
    /// `countersign-agent launch`, or no session).
    pub fn user(&self, key: &SessionKey) -> Option<String> {
        if let Some(u) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            return Some(u.clone());
        }
        let user = self.read(key)?.user;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), user.clone());
        Some(user)
    }

    /// Forgets the cached launcher of a session (a new launch with the same name).
    pub fn forget(&self, key: &SessionKey) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          alice:x:1000:1000:Alice:/home/alice:/bin/bash\n\
                          broken line\n\
                          bob:x:1001:1001::/home/bob:/bin/sh\n";

    #[test]
    fn users_are_resolved_like_the_contract_says() {
        assert_eq!(
            resolve_user(1000, None, None, PASSWD),
            ("alice".into(), 1000)
        );
        // sudo: the person behind it, with their uid.
        assert_eq!(
            resolve_user(0, Some("bob"), Some("1001"), PASSWD),
            ("bob".into(), 1001)
        );
        assert_eq!(
            resolve_user(0, Some("bob"), None, PASSWD),
            ("bob".into(), 1001)
        );
        // SUDO_USER means nothing for a non-root caller (anyone can set it).
        assert_eq!(
            resolve_user(1000, Some("bob"), Some("1001"), PASSWD),
            ("alice".into(), 1000)
        );
        assert_eq!(resolve_user(0, Some(""), None, PASSWD), ("root".into(), 0));
        assert_eq!(
            resolve_user(4242, None, None, PASSWD),
            ("uid:4242".into(), 4242)
        );
    }

    #[test]
    fn records_round_trip_and_paths_stay_inside() {
        let dir = std::env::temp_dir().join(format!("cs-sessions-{}", std::process::id()));
        let reg = Registry::new(&dir);
        let key = SessionKey::new("coding", "s1");
        let rec = SessionRecord {
            user: "alice".into(),
            uid: 1000,
            started: "2026-01-01T00:00:00.000Z".into(),
        };
        let path = reg.record(&key, &rec).expect("write");
        assert_eq!(path, dir.join("sessions/coding/s1.json"));
        assert_eq!(Registry::new(&dir).user(&key).as_deref(), Some("alice"));
        assert_eq!(reg.read(&key), Some(rec.clone()));
        for bad in [
            SessionKey::new("coding", "../x"),
            SessionKey::new("..", "s"),
            SessionKey::new("coding", ""),
        ] {
            assert!(reg.record(&bad, &rec).is_err(), "{bad:?}");
            assert!(reg.user(&bad).is_none());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

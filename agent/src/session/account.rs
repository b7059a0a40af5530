//! `launch --user NAME|UID`: the account a session's command runs as. The launcher (root)
//! enters the session first, then the command starts with the account's uid, primary gid and
//! no supplementary groups, and with its HOME, USER and LOGNAME.

use std::ffi::{CStr, CString, OsString};

/// An account to run a session's command as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: OsString,
}

impl Account {
    /// The account named `user` in the password database, or a bare numeric uid (gid = uid,
    /// HOME = /) for a uid without an entry.
    pub fn resolve(user: &str) -> Result<Self, String> {
        if let Some(a) = lookup(user) {
            return Ok(a);
        }
        match user.parse::<u32>() {
            Ok(uid) => Ok(Self {
                name: user.to_owned(),
                uid,
                gid: uid,
                home: "/".into(),
            }),
            Err(_) => Err(format!("--user {user}: no such user")),
        }
    }

    /// The variables that name the account, replacing the launcher's.
    pub fn env(&self) -> [(OsString, OsString); 3] {
        [
            ("HOME".into(), self.home.clone()),
            ("USER".into(), self.name.clone().into()),
            ("LOGNAME".into(), self.name.clone().into()),
        ]
    }
}

/// `getpwnam_r(name)`.
fn lookup(name: &str) -> Option<Account> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: zeroed passwd is a valid out-parameter.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: valid pointers, buffer length as given; the strings point into `buf`.
    let rc = unsafe {
        libc::getpwnam_r(
            c.as_ptr(),
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return None;
    }
    // SAFETY: getpwnam_r filled these with NUL-terminated strings inside `buf`.
    let (pw_name, home) = unsafe { (CStr::from_ptr(pw.pw_name), CStr::from_ptr(pw.pw_dir)) };
    Some(Account {
        name: pw_name.to_string_lossy().into_owned(),
        uid: pw.pw_uid,
        gid: pw.pw_gid,
        home: std::os::unix::ffi::OsStringExt::from_vec(home.to_bytes().to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_resolve() {
        let root = Account::resolve("root").expect("root");
        assert_eq!((root.uid, root.gid), (0, 0));
        let bare = Account::resolve("4000123").expect("a bare uid");
        assert_eq!(
            (bare.uid, bare.gid, bare.home.as_os_str()),
            (4000123, 4000123, "/".as_ref())
        );
        assert_eq!(
            Account::resolve("no-such-user-here"),
            Err("--user no-such-user-here: no such user".to_owned())
        );
    }
}

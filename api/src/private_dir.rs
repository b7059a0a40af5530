//! State directories that only their service may enter (mode 0700): the server's data
//! directory (signing key, store) and the daemon's state directory (event log with every
//! session's argv, policy copies). Whoever creates them, they end up private.

use std::{
    fs, io,
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::Path,
};

/// Creates `dir` (and its parents) with mode 0700, or makes an existing `dir` that others
/// could enter 0700. Returns the mode it had when it was tightened, for the caller to say.
pub fn ensure(dir: &Path) -> io::Result<Option<u32>> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    Ok(Some(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_private_and_tightened() {
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        let tmp = std::env::temp_dir().join(format!("cs-private-dir-{}", std::process::id()));
        let dir = tmp.join("a/b");
        assert_eq!(ensure(&dir).expect("create"), None);
        assert_eq!(mode(&dir), 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(ensure(&dir).expect("tighten"), Some(0o755));
        assert_eq!(mode(&dir), 0o700);
        let _ = fs::remove_dir_all(&tmp);
    }
}

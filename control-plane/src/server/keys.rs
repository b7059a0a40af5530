//! The audit signing key: an Ed25519 seed in `DATA_DIR/audit-key` (64 hex digits, mode
//! 0600, created on first start) and its public half in `DATA_DIR/audit-key.pub` (64 hex
//! digits) for `countersign audit verify --key` on another machine.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::RngCore as _;

/// File name of the signing key inside the data directory.
pub const KEY_FILE: &str = "audit-key";
/// File name of the public key inside the data directory.
pub const PUBLIC_KEY_FILE: &str = "audit-key.pub";

/// Loads the signing key of `dir`, creating it (and its public file) when missing.
pub fn load_or_create(dir: &Path) -> anyhow::Result<SigningKey> {
    let path = dir.join(KEY_FILE);
    let key = if path.exists() {
        let text = fs::read_to_string(&path)
            .with_context(|| format!("reading the audit signing key {}", path.display()))?;
        let seed = parse_hex32(&text)
            .with_context(|| format!("{}: not an audit signing key", path.display()))?;
        check_private(&path)?;
        SigningKey::from_bytes(&seed)
    } else {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        write_new(&path, &format!("{}\n", hex::encode(seed)), 0o600)?;
        tracing::info!(path = %path.display(), "created the audit signing key");
        SigningKey::from_bytes(&seed)
    };
    // Rewritten every start, so it always matches the key in use.
    let public = dir.join(PUBLIC_KEY_FILE);
    let text = format!("{}\n", hex::encode(key.verifying_key().as_bytes()));
    if fs::read_to_string(&public).ok().as_deref() != Some(text.as_str()) {
        fs::write(&public, text).with_context(|| format!("writing {}", public.display()))?;
    }
    Ok(key)
}

/// Reads a public key file written by [`load_or_create`] (64 hex digits).
pub fn read_public_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("reading the audit public key {}", path.display()))?;
    parse_public_key(&text).with_context(|| format!("{}: not an audit public key", path.display()))
}

/// Parses 64 hex digits of an Ed25519 public key.
pub fn parse_public_key(text: &str) -> anyhow::Result<VerifyingKey> {
    let bytes = parse_hex32(text)?;
    Ok(VerifyingKey::from_bytes(&bytes)?)
}

/// The public key file of a data directory.
pub fn public_key_path(dir: &Path) -> PathBuf {
    dir.join(PUBLIC_KEY_FILE)
}

fn parse_hex32(text: &str) -> anyhow::Result<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex::decode_to_slice(text.trim(), &mut out).is_err() {
        bail!("expected 64 hex digits");
    }
    Ok(out)
}

fn write_new(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Refuses a signing key that others can read: whoever holds it can rewrite history.
fn check_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by others (mode {:o}): chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create(dir.path()).expect("create");
        let b = load_or_create(dir.path()).expect("load");
        assert_eq!(a.to_bytes(), b.to_bytes());
        let public = read_public_key(&public_key_path(dir.path())).expect("public");
        assert_eq!(public, a.verifying_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let path = dir.path().join(KEY_FILE);
            let mode = fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
            let e = load_or_create(dir.path()).expect_err("too open");
            assert!(e.to_string().contains("readable by others"), "{e:#}");
        }
        assert!(parse_public_key("zz").is_err());
    }
}

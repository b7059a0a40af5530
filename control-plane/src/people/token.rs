//! Bearer tokens, kept only as SHA-256 digests (`sha256:<64 hex>` in the people file).
//!
//! A token is a high-entropy random string, so a plain SHA-256 (no salt, no slow hash) is
//! enough: nobody can guess a token from its digest, and a leaked people file grants nothing.
//! Digests are compared in constant time so that response timing does not reveal how much
//! of a guessed digest matched.

use std::fmt;

use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// Prefix of a digest as written in the people file.
const PREFIX: &str = "sha256:";

/// The SHA-256 of a bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// Digest of a presented token.
    pub fn of(token: &str) -> TokenDigest {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }

    /// Parses `sha256:<64 hex digits>` (either case).
    pub fn parse(text: &str) -> Result<TokenDigest, String> {
        let hex_part = text.strip_prefix(PREFIX).ok_or_else(|| {
            "a token must be written as sha256:<64 hex digits> (the SHA-256 of the token, never the token itself)".to_owned()
        })?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes)
            .map_err(|_| "a token digest must be sha256: followed by 64 hex digits".to_owned())?;
        Ok(TokenDigest(bytes))
    }

    /// Constant-time equality.
    pub fn matches(&self, other: &TokenDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Display for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest is not a secret, but keeping it out of debug logs costs nothing.
        f.write_str("TokenDigest(..)")
    }
}

/// A new random bearer token (256 bits, hex) and the line to put in the people file.
pub fn generate() -> (String, TokenDigest) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("cst_{}", hex::encode(bytes));
    let digest = TokenDigest::of(&token);
    (token, digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let (token, digest) = generate();
        let written = digest.to_string();
        assert!(written.starts_with("sha256:") && written.len() == 7 + 64);
        let parsed = TokenDigest::parse(&written).expect("parses");
        assert!(parsed.matches(&TokenDigest::of(&token)));
        assert!(!parsed.matches(&TokenDigest::of("other")));
        let upper = format!("sha256:{}", written[7..].to_uppercase());
        assert!(TokenDigest::parse(&upper)
            .expect("upper case")
            .matches(&parsed));
        assert!(TokenDigest::parse(&written[7..]).is_err());
        assert!(TokenDigest::parse("sha256:abcd").is_err());
        assert!(TokenDigest::parse(&format!("{written}00")).is_err());
        assert_eq!(format!("{parsed:?}"), "TokenDigest(..)");
    }

    #[test]
    fn known_vector() {
        // printf %s secret | sha256sum
        let d = TokenDigest::of("secret");
        assert_eq!(
            d.to_string(),
            "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
        );
    }
}
